// Models: one experiment end to end — build a machine and a process image (VMAs, faults, fork,
// swap-out, mlock, CPU accesses), run one teardown operation (or two threads interleaved at
// page-table-lock granularity, ordered by mmap_lock, with the kernel's nested-flush rule), and report.
// A concurrent "revoke" is a driver's kernel thread unmapping its device file (unmap_mapping_range, see
// ops.ts) — every VMA of every mm mapping it — and then freeing the device memory.
// Omits: YAML parsing (the CLI app's job); specs are plain objects.
import { isMmgatherError, type PcpPolicy, type RmapPolicy } from "@mmgather/folio";
import type { ArchTlb, BatchAllocPolicy, CostProfile, GatherCounters } from "@mmgather/mmu-gather";
import { createGatherCounters } from "@mmgather/mmu-gather";
import type { TrailEventSink } from "./checker.js";
import { TeardownError } from "./errors.js";
import {
  type Collapse,
  type CollapseCounters,
  collapse,
  createCollapseCounters,
  khugepagedScanSteps,
} from "./khugepaged.js";
import { type KvmFault, KvmMmu, kvmFault, kvmFaultSteps } from "./kvm.js";
import { createMachine, type Machine } from "./machine.js";
import {
  createMigrateCounters,
  type MigrateCounters,
  type Migration,
  migratePagesSteps,
  migration,
} from "./migrate.js";
import type { Mm } from "./mm.js";
import type { OpSteps } from "./mmap-lock.js";
import {
  createNumaScanCounters,
  type NumaScan,
  type NumaScanCounters,
  numaScan,
  numaScanSteps,
} from "./numa.js";
import {
  checkRevokeVma,
  createRevokeResult,
  ensureAnchors,
  exitMmap,
  madviseDontneed,
  type OpResult,
  type RevokeResult,
  resolveVariant,
  revokeSteps,
  startOp,
  type TeardownOp,
  type VariantSpec,
} from "./ops.js";
import { buildReport, delta, type LayerSnapshot, snapshotLayers, type TeardownReport } from "./report.js";
import { createRng, type Rng } from "./rng.js";
import { createSwapoffCounters, type SwapoffCounters, swapoffSteps } from "./swapoff.js";
import type { Vma, VmaKind } from "./vma.js";
import {
  bindDevice,
  type FolioPolicy,
  faultIn,
  forkMm,
  gupFastWalk,
  mlockVma,
  mmapVma,
  swapOut,
  touch,
  touchDevice,
  touchKvm,
} from "./workload.js";
import {
  checkWritebackVma,
  createWritebackCounters,
  type WritebackCounters,
  writebackSteps,
} from "./writeback.js";
import type { ZapWalk } from "./zap/steps.js";

/** One VMA of a scenario. */
export interface VmaSpec {
  /** Mapping kind. */
  readonly kind: VmaKind;
  /** Size in bytes (a multiple of the arch's page size). */
  readonly size: number;
  /** Folio sizes (default: order 0). */
  readonly folio?: FolioPolicy;
  /** Map PMD-sized folios with a PMD (default false). */
  readonly pmdMapped?: boolean;
  /** Fraction of file/shmem folios dirtied through the mapping (default 0). */
  readonly dirtyFraction?: number;
  /** Fraction of anon folios swapped out (default 0; needs `swap`). */
  readonly swapFraction?: number;
  /** Keep swapped-out folios in the swap cache (default false: dropped after writeback). */
  readonly keepInSwapCache?: boolean;
  /** mlock the VMA (default false). */
  readonly mlock?: boolean;
  /** Fraction of pages faulted in (default 1). */
  readonly populate?: number;
  /**
   * Anon VMAs only: fraction of the fault-ins that are read faults (default 0). A read fault maps the
   * shared zero page (a special PTE per page: no rss, no rmap) or, for a PMD-mapped folio's range, the
   * huge zero folio (one PMD and a deposited table; the mm's huge-zero reference is dropped at exit).
   */
  readonly readFraction?: number;
  /** Split the VMA at this byte offset after fault-in (a VMA boundary through a large folio). */
  readonly splitAt?: number;
  /**
   * With `fork`: the fraction of this private VMA's pages the forked child still maps (default 1).
   * The child has dropped the rest — its own copy-on-write copies, or an unmap — modelled as
   * MADV_DONTNEED of the VMA's tail in the child before the operation (not measured), whole PMDs
   * for a PMD-mapped VMA.
   */
  readonly sharedFraction?: number;
}

/** One operation of a scenario: exit, or munmap / madvise of [offset, offset + length) of VMA `vma`. */
export interface OpSpec {
  readonly kind: TeardownOp;
  /** Index of the VMA (in the spec's list) the range is relative to (default 0). */
  readonly vma?: number;
  /** Byte offset inside that VMA (default 0). */
  readonly offset?: number;
  /** Length in bytes (default: the rest of the VMA). */
  readonly length?: number;
}

/**
 * What a second thread runs concurrently with `op`: munmap / madvise of a range, writeback of the
 * file pages a file VMA maps in [offset, offset + length) (a flusher thread writing the file's dirty
 * folios, see writeback.ts), swapoff of the machine's swap device (swapoff.ts), or a revoke of the device pages a pfnmap VMA maps in [offset, offset +
 * length): the driver's kernel thread runs unmap_mapping_range over its device file — zapping that
 * range in every VMA of every mm that maps it (a forked child's too), each with its own gather — and
 * then frees the device memory. The revoke's gather and walk counters are merged into the report's like
 * a concurrent munmap's (its gathers included; they may belong to other mms than the target).
 */
export interface ConcurrentOpSpec extends Omit<OpSpec, "kind"> {
  /**
   * munmap, madvise, writeback, swapoff, revoke, numa, migrate, kvm-fault or khugepaged ("exit" is
   * refused: it takes the whole mm).
   */
  readonly kind:
    | TeardownOp
    | "writeback"
    | "swapoff"
    | "revoke"
    | "numa"
    | "migrate"
    | "kvm-fault"
    | "khugepaged";
}

/** A whole experiment. */
export interface ScenarioSpec {
  /** Physical memory in bytes. */
  readonly memory: number;
  /** Swap space in bytes (default 0). */
  readonly swap?: number;
  /** Arch adapter (default genericArch). */
  readonly arch?: ArchTlb;
  /** Cost profile of the report's estimate (default: the arch's `cost`). */
  readonly costProfile?: CostProfile;
  /** Gather variant name or object (default "encoded-nr-pages"). */
  readonly variant?: VariantSpec;
  /** Zap walk (default: the variant's). */
  readonly walk?: ZapWalk;
  /** Seed for every random choice (default 1). */
  readonly seed?: number;
  /** The VMAs, in address order. */
  readonly vmas: readonly VmaSpec[];
  /** fork() after fault-in; the operation then runs on `target` (default "parent"). */
  readonly fork?: boolean;
  /** Which mm the operation tears down when forked. */
  readonly target?: "parent" | "child";
  /**
   * Children forked after the workload is built (fault-in, swap-out) that exit again before the
   * operation, as the fork + exec children of make or a compiler driver do: their page tables and
   * mapcounts come and go, and their own exit_mmap is part of building the workload, not measured
   * (default 0).
   */
  readonly exitedChildren?: number;
  /** CPUs running threads of the target mm (default 0). */
  readonly cpus?: number;
  /**
   * Of those CPUs, how many (the last ones) switched to a kernel thread before the operation and keep
   * the mm loaded in lazy-TLB mode (default 0). CPU 0 runs the operation (and CPU 1 `concurrentOp`),
   * so at most `cpus` − 1 (− 2 with a concurrent operation).
   */
  readonly lazyCpus?: number;
  /**
   * Devices sharing the target mm's page tables through their IOMMU (shared virtual addressing: a GPU
   * or accelerator bound with `iommu_sva_bind_device`), each with its own TLB (default 0). Bound after
   * the CPUs' accesses, each then accesses `touch` of the mapped pages too. Needs `cpus` ≥ 1 and an
   * arch that invalidates secondary TLBs (not s390).
   */
  readonly devices?: number;
  /**
   * Threads of the target mm inside a `gup_fast` walk of the operation's range when it starts
   * (default 0): interrupts off, no lock, each holding the page-table pages on its path until an IPI,
   * an RCU grace period or its own end lets it finish. They run on the CPUs after the operation's (and
   * the concurrent one's), which must not be lazy; not with `exit`.
   */
  readonly gupFast?: number;
  /** TLB entries per CPU (default 2048). */
  readonly tlbEntries?: number;
  /** Fraction of mapped pages each CPU accesses before the teardown (default 1). */
  readonly touch?: number;
  /** Safety checker (default: on when CPUs are modelled). */
  readonly checker?: boolean;
  /** Page-allocator free-side rules of the machine's kernel (`MachineConfig.pcpPolicy`, default "v6.5"). */
  readonly pcpPolicy?: PcpPolicy;
  /** `MachineConfig.pcpFreeHighBatch` (v6.7 policy only; default false). */
  readonly pcpFreeHighBatch?: boolean;
  /**
   * Deferred-split rule of the folio layer's 7.x rmap (`MachineConfig.rmapPolicy`). Default: the rule
   * of the design's kernel — "v6.9" for a design following 6.9, else "v6.18". Naming the other one
   * runs the design on a folio layer of another kernel: "v6.9" under a 6.18 design is the rmap without
   * v6.10's partially-mapped gate (98046944a159), which the checker reports (`deferredSplitFullyUnmapped`).
   */
  readonly rmapPolicy?: RmapPolicy;
  /** The operation. */
  readonly op: OpSpec;
  /**
   * A second thread, run concurrently with `op` on another CPU: munmap / madvise of the target mm,
   * writeback of a file VMA's pages, swapoff of the swap device, a driver's revoke of a pfnmap VMA's
   * device memory (these three also next to `exit`), or NUMA balancing's hinting scan of a range of the
   * target mm (numa.ts), a migration of its anon folios (migrate.ts), a KVM vCPU's faults (kvm.ts), or
   * khugepaged retracting the page tables of PTE-mapped file THPs in a file or shmem VMA's range
   * (khugepaged.ts; also next to `exit`).
   */
  readonly concurrentOp?: ConcurrentOpSpec;
  /**
   * The NUMA hinting scan a `concurrentOp` of kind "numa" runs (default: the kernel's `numaScan`; build
   * another with `defineNumaScan`).
   */
  readonly numaScan?: NumaScan;
  /**
   * The collapse a `concurrentOp` of kind "khugepaged" runs (default: the kernel's `collapse`; build
   * another with `defineCollapse`).
   */
  readonly collapse?: Collapse;
  /**
   * The migration a `concurrentOp` of kind "migrate" runs (default: the kernel's `migration`; build
   * another with `defineMigration`).
   */
  readonly migration?: Migration;
  /**
   * A KVM guest whose memory is the target mm (kvm.ts): built after the CPUs' and devices' accesses,
   * the guest maps `touch` of the mapped pages in KVM's sptes, and every teardown's mmu notifier calls
   * reach it (default false). Needs `cpus` ≥ 1 (its sptes are checked with the CPUs').
   */
  readonly kvm?: boolean;
  /**
   * The vCPU fault path a `concurrentOp` of kind "kvm-fault" runs (default: the kernel's `kvmFault`;
   * build another with `defineKvmFault`).
   */
  readonly kvmFault?: KvmFault;
  /** Batch-page allocation outcomes. */
  readonly alloc?: BatchAllocPolicy;
  /**
   * Receives every event of the teardown phase, in order: the gather's (PTE cleared, range recorded,
   * rmap removed immediate / delayed, page queued, TLB flushed, rmaps flushed, pages freed, tables
   * freed, forced flush with reason, …) and the teardown layer's (op started / returned, PTE lock
   * taken / released, huge PMD zapped, the walk's forced flush with reason, page returned to the
   * allocator, CPU TLB invalidated). Not called while the workload is built. When absent, no event
   * object or closure is created.
   */
  readonly events?: TrailEventSink;
  /**
   * Progress of a long run, for a progress bar: called while the workload is built (`"build"`: pages
   * of the VMAs faulted in so far, of their total) and while the operation runs (`"teardown"`: pages
   * the operation has unmapped so far — the mm's rss drop — of those mapped when it started), every
   * 65,536 pages built and every 256 page-table-lock sections, and once at the end of each phase.
   * Not called for the concurrent thread's progress. When absent nothing is counted.
   */
  readonly progress?: ScenarioProgress;
}

/** See `ScenarioSpec.progress`: `done` of `total` pages in `phase`. */
export type ScenarioProgress = (phase: "build" | "teardown", done: number, total: number) => void;

/** A built scenario, before its operation runs. */
export interface BuiltScenario {
  readonly machine: Machine;
  readonly parent: Mm;
  readonly child: Mm | null;
  readonly target: Mm;
  readonly vmas: readonly Vma[];
  readonly rng: Rng;
  /** The spec it was built from (`sharesBuild` compares another spec with it). */
  readonly spec: ScenarioSpec;
}

/**
 * The folio layer's rmap rule a scenario runs on: `spec.rmapPolicy`, else the rule of the kernel tree
 * the design follows. BAD_SPEC for anything but "v6.9" / "v6.18".
 */
export function rmapPolicyOf(spec: ScenarioSpec): RmapPolicy {
  const p = spec.rmapPolicy;
  if (p === undefined) return resolveVariant(spec.variant).policy.kernel === "6.9" ? "v6.9" : "v6.18";
  if (p !== "v6.9" && p !== "v6.18") fail(`spec.rmapPolicy must be "v6.9" or "v6.18", got ${String(p)}`);
  return p;
}

function fail(msg: string): never {
  throw new TeardownError("BAD_SPEC", "scenario", "runScenario", msg);
}

/** Builds the machine and the process image of a spec. */
export function buildScenario(spec: ScenarioSpec): BuiltScenario {
  if (typeof spec !== "object" || spec === null) fail("spec must be an object");
  if (!Array.isArray(spec.vmas) || spec.vmas.length === 0) fail("spec.vmas must be a non-empty array");
  const rng = createRng(spec.seed ?? 1);
  let deviceBytes = 0;
  for (const v of spec.vmas) if (v.kind === "pfnmap" && Number.isSafeInteger(v.size)) deviceBytes += v.size;
  const machine = createMachine({
    memoryBytes: spec.memory,
    // Device memory for the pfnmap VMAs' device files, above RAM (none without pfnmap VMAs).
    deviceBytes,
    swapBytes: spec.swap,
    arch: spec.arch,
    cpus: spec.cpus,
    devices: spec.devices,
    tlbEntries: spec.tlbEntries,
    checker: spec.checker,
    pcpPolicy: spec.pcpPolicy,
    pcpFreeHighBatch: spec.pcpFreeHighBatch,
    rmapPolicy: rmapPolicyOf(spec),
  });
  const parent = machine.createMm();
  const vmas: Vma[] = [];
  const progress = spec.progress;
  if (progress !== undefined && typeof progress !== "function") fail("spec.progress must be a function");
  let pagesBuilt = 0;
  const buildTotal = spec.vmas.reduce(
    (a, v) => a + (Number.isSafeInteger(v.size) ? Math.floor(v.size / machine.pageSize) : 0),
    0,
  );
  for (let i = 0; i < spec.vmas.length; i++) {
    const vs = spec.vmas[i];
    const rf = vs.readFraction;
    if (rf !== undefined) {
      if (typeof rf !== "number" || !(rf >= 0 && rf <= 1))
        fail(`vmas[${i}].readFraction must be in [0, 1], got ${String(rf)}`);
      if (rf > 0 && vs.kind !== "anon")
        fail(
          `vmas[${i}].readFraction applies to anon VMAs only (a read fault of a ${vs.kind} VMA maps its page cache), got ${rf}`,
        );
    }
    const v = mmapVma(parent, vs.kind, vs.size);
    faultIn(
      parent,
      v,
      {
        policy: vs.folio ?? { order: 0 },
        pmdMapped: vs.pmdMapped,
        dirtyFraction: vs.dirtyFraction,
        populate: vs.populate,
        readFraction: vs.readFraction,
        progress:
          progress === undefined
            ? undefined
            : (pages: number) => progress("build", pagesBuilt + pages, buildTotal),
      },
      rng,
    );
    pagesBuilt += v.end - v.start;
    progress?.("build", pagesBuilt, buildTotal);
    if (vs.mlock === true) mlockVma(parent, v);
    vmas.push(v);
    if (vs.splitAt !== undefined) {
      if (vs.splitAt % machine.pageSize !== 0 || vs.splitAt <= 0 || vs.splitAt >= vs.size)
        fail("splitAt must be a page offset inside the VMA");
      parent.splitVma(v.start + vs.splitAt / machine.pageSize);
    }
  }
  const child = spec.fork === true ? forkMm(parent) : null;
  if (child !== null) {
    for (let i = 0; i < spec.vmas.length; i++) {
      const f = spec.vmas[i].sharedFraction ?? 1;
      if (!(f >= 0 && f <= 1)) fail(`vmas[${i}].sharedFraction must be in [0, 1], got ${f}`);
      const v = vmas[i];
      if (f === 1 || v.shared) continue;
      const ps = machine.pageSize;
      const pages = spec.vmas[i].size / ps; // the whole VMA, even when splitAt cut it in two
      const unit = spec.vmas[i].pmdMapped === true ? child.pt.geo.ptrsPerPte : 1;
      const keep = Math.floor((pages * f) / unit) * unit;
      if (keep < pages) {
        madviseDontneed(child, (v.start + keep) * ps, (pages - keep) * ps, {
          variant: spec.variant,
          walk: spec.walk,
        });
      }
    }
  } else if (spec.vmas.some((v) => (v.sharedFraction ?? 1) !== 1)) fail("sharedFraction needs fork: true");
  for (let i = 0; i < spec.vmas.length; i++) {
    const f = spec.vmas[i].swapFraction ?? 0;
    if (f > 0) swapOut(parent, f, spec.vmas[i].keepInSwapCache === true, rng);
  }
  const exited = spec.exitedChildren ?? 0;
  if (!Number.isInteger(exited) || exited < 0 || exited > 64)
    fail(`exitedChildren must be an integer in [0, 64], got ${exited}`);
  for (let i = 0; i < exited; i++) exitMmap(forkMm(parent), { variant: spec.variant, walk: spec.walk });
  const target = spec.target === "child" ? (child ?? fail("target 'child' needs fork: true")) : parent;
  const cpus = spec.cpus ?? 0;
  for (let c = 0; c < cpus; c++) touch(target, c, spec.touch ?? 1, rng);
  const lazy = spec.lazyCpus ?? 0;
  const maxLazy = Math.max(0, cpus - (spec.concurrentOp === undefined ? 1 : 2));
  if (!Number.isInteger(lazy) || lazy < 0 || lazy > maxLazy)
    fail(
      `lazyCpus must be an integer in [0, ${maxLazy}] (CPU 0 runs the operation${spec.concurrentOp === undefined ? "" : ", CPU 1 the concurrent one"}), got ${lazy}`,
    );
  for (let c = cpus - lazy; c < cpus; c++) machine.tlbs!.enterLazy(c, target.id);
  for (let d = 0; d < (spec.devices ?? 0); d++) {
    bindDevice(target, d);
    touchDevice(target, d, spec.touch ?? 1, rng);
  }
  if (spec.kvm !== undefined && typeof spec.kvm !== "boolean") fail("kvm must be true or false");
  if (spec.kvm === true) {
    if (cpus < 1) fail("kvm needs cpus >= 1: the guest's sptes are checked with the CPU model");
    const kvm = new KvmMmu(target.id, machine.nrPages);
    machine.kvm = kvm;
    machine.checker!.kvm = kvm;
    touchKvm(target, kvm, spec.touch ?? 1, rng);
  }
  const built: BuiltScenario = { machine, parent, child, target, vmas, rng, spec };
  startGupFast(built, spec, cpus, lazy);
  return built;
}

/**
 * `spec.gupFast` threads of the target mm, on the CPUs after the operations' ones, are inside a
 * gup_fast walk when the operation starts: walk k at page (k + ½)·len/n of the operation's range.
 */
function startGupFast(b: BuiltScenario, spec: ScenarioSpec, cpus: number, lazy: number): void {
  const n = spec.gupFast ?? 0;
  const first = spec.concurrentOp === undefined ? 1 : 2;
  const max = Math.max(0, cpus - lazy - first);
  if (!Number.isInteger(n) || n < 0 || n > max)
    fail(
      `gupFast must be an integer in [0, ${max}]: the walks run on CPUs of the target mm that neither run the operation${spec.concurrentOp === undefined ? "" : "s"} nor are lazy, got ${n}`,
    );
  if (n === 0) return;
  if (spec.op.kind === "exit")
    fail(
      "gupFast needs munmap or madvise: gup_fast walks the calling thread's mm, and no thread of an exiting mm runs",
    );
  const [start, len] = opRange(b, spec, spec.op);
  const ps = b.machine.pageSize;
  const pages = Math.ceil(len / ps);
  for (let k = 0; k < n; k++) {
    const page = Math.floor(start / ps) + Math.floor(((k + 0.5) * pages) / n);
    gupFastWalk(b.target, first + k, page * ps);
  }
}

function opRange(b: BuiltScenario, spec: ScenarioSpec, op: OpSpec | ConcurrentOpSpec): [number, number] {
  if (op.kind === "exit") return [0, 0];
  const vi = op.vma ?? 0;
  if (!Number.isInteger(vi) || vi < 0 || vi >= spec.vmas.length) fail(`op.vma ${vi} is not a VMA index`);
  const v = b.vmas[vi];
  const offset = op.offset ?? 0;
  const length = op.length ?? spec.vmas[vi].size - offset;
  return [v.start * b.machine.pageSize + offset, length];
}

/** The pages [first, end) an operation's byte range touches (opRange rounded out to whole pages). */
function pagesOf(b: BuiltScenario, spec: ScenarioSpec, op: OpSpec | ConcurrentOpSpec): [number, number] {
  const [start, len] = opRange(b, spec, op);
  const ps = b.machine.pageSize;
  return [Math.floor(start / ps), Math.ceil((start + len) / ps)];
}

/** Runs one scenario and reports on its teardown. */
export function runScenario(spec: ScenarioSpec): TeardownReport {
  const b = buildScenario(spec);
  return runBuilt(b, spec);
}

/** Runs the operation(s) of a built scenario. */
export function runBuilt(b: BuiltScenario, spec: ScenarioSpec): TeardownReport {
  return runBuiltWith(b, spec, (threads) => interleave(threads, b.rng));
}

/**
 * Runs two concurrent threads to completion (or until one throws), deciding which advances at each
 * step; it must end every generator it leaves unfinished (`Generator.return`).
 */
export type Scheduler = (threads: OpSteps[]) => void;

/** runBuilt with the concurrent threads' order decided by `schedule` (the explorer's entry). */
export function runBuiltWith(b: BuiltScenario, spec: ScenarioSpec, schedule: Scheduler): TeardownReport {
  const { machine, target } = b;
  const opts = { variant: spec.variant, walk: spec.walk, alloc: spec.alloc };
  const [s0, l0] = opRange(b, spec, spec.op);
  const mapped = target.rssPages();
  const stateBytes = machine.stateBytes();
  const freed0 = { ...machine.freed };
  const ptl0 = target.ptlAcquisitions;
  const v0 = machine.checker?.violations.length ?? 0;
  const layers0 = snapshotLayers(machine);
  const events = spec.events;
  if (events !== undefined && typeof events !== "function") fail("spec.events must be a function");
  const prevEvents = machine.events;
  machine.events = events ?? null;
  try {
    return runOps(b, spec, opts, s0, l0, mapped, stateBytes, freed0, ptl0, v0, layers0, schedule);
  } finally {
    machine.events = prevEvents;
  }
}

function runOps(
  b: BuiltScenario,
  spec: ScenarioSpec,
  opts: { variant?: VariantSpec; walk?: ZapWalk; alloc?: BatchAllocPolicy },
  s0: number,
  l0: number,
  mapped: number,
  stateBytes: number,
  freed0: { folios: number; pages: number },
  ptl0: number,
  v0: number,
  layers0: LayerSnapshot,
  schedule: Scheduler,
): TeardownReport {
  const { machine, target } = b;
  // The process's one-time hidden-class anchors (ops.ts) are built before the clock starts.
  ensureAnchors();
  // performance.now(): a monotonic clock in Node ≥ 16 and every browser (fractional ms).
  const t0 = performance.now();
  const kvm0 = machine.kvm === null ? null : { ...machine.kvm.counters };
  const a = startOp(target, spec.op.kind, s0, l0, { ...opts, thread: 0 });
  let result: OpResult = a.result;
  let writeback: WritebackCounters | null = null;
  let swapoff: SwapoffCounters | null = null;
  let numa: NumaScanCounters | null = null;
  let migrate: MigrateCounters | null = null;
  let khugepaged: CollapseCounters | null = null;
  let revoke: RevokeResult | null = null;
  try {
    if (spec.concurrentOp === undefined) {
      const progress = spec.progress;
      if (progress === undefined) {
        for (let s = a.steps.next(); s.done !== true; s = a.steps.next()) {
          /* run */
        }
      } else {
        let n = 0;
        for (let s = a.steps.next(); s.done !== true; s = a.steps.next())
          if ((++n & 255) === 0) progress("teardown", mapped - target.rssPages(), mapped);
        progress("teardown", mapped - target.rssPages(), mapped);
      }
    } else if (spec.concurrentOp.kind === "numa") {
      if (spec.op.kind === "exit")
        fail(
          "concurrentOp: the NUMA hinting scan runs in a thread of the mm (task_numa_work), not next to exit",
        );
      const nc = createNumaScanCounters();
      numa = nc;
      const [s1, l1] = opRange(b, spec, spec.concurrentOp);
      const ps = machine.pageSize;
      const scan = spec.numaScan ?? numaScan;
      if (typeof scan !== "object" || scan === null || typeof scan.steps?.changeHugePmd !== "function")
        fail("spec.numaScan must be a NumaScan built with defineNumaScan");
      schedule([a.steps, numaScanSteps(target, s1 / ps, (s1 + l1) / ps, scan, nc)]);
    } else if (spec.concurrentOp.kind === "migrate") {
      const mc = createMigrateCounters();
      migrate = mc;
      const [vs, ve] = pagesOf(b, spec, spec.concurrentOp);
      const mig = spec.migration ?? migration;
      if (typeof mig !== "object" || mig === null || typeof mig.steps?.tryToUnmapFlush !== "function")
        fail("spec.migration must be a Migration built with defineMigration");
      schedule([a.steps, migratePagesSteps(target, vs, ve, 1, mig, mc)]);
    } else if (spec.concurrentOp.kind === "khugepaged") {
      const kc = createCollapseCounters();
      khugepaged = kc;
      const [vs, ve] = pagesOf(b, spec, spec.concurrentOp);
      checkCollapseVma(spec, spec.concurrentOp.vma ?? 0);
      const col = spec.collapse ?? collapse;
      if (typeof col !== "object" || col === null || typeof col.steps?.pteFreeDefer !== "function")
        fail("spec.collapse must be a Collapse built with defineCollapse");
      schedule([a.steps, khugepagedScanSteps(target, vs, ve, col, kc)]);
    } else if (spec.concurrentOp.kind === "kvm-fault") {
      if (spec.op.kind === "exit")
        fail("concurrentOp: a vCPU is a thread of the process: it does not run next to exit");
      if (machine.kvm === null) fail("concurrentOp kvm-fault needs a KVM guest: kvm: true");
      const [vs, ve] = pagesOf(b, spec, spec.concurrentOp);
      const f = spec.kvmFault ?? kvmFault;
      if (typeof f !== "object" || f === null || typeof f.steps?.mmuInvalidateRetry !== "function")
        fail("spec.kvmFault must be a KvmFault built with defineKvmFault");
      schedule([a.steps, kvmFaultSteps(machine, target, vs, ve, f, 1)]);
    } else if (spec.concurrentOp.kind === "swapoff") {
      const so = createSwapoffCounters();
      swapoff = so;
      schedule([a.steps, swapoffSteps(machine, so)]);
    } else if (spec.concurrentOp.kind === "writeback") {
      const wb = createWritebackCounters();
      writeback = wb;
      schedule([a.steps, startWriteback(b, spec, spec.concurrentOp, wb)]);
    } else if (spec.concurrentOp.kind === "revoke") {
      const rv = createRevokeResult({ ...opts, thread: 1 });
      revoke = rv;
      schedule([a.steps, startRevoke(b, spec, spec.concurrentOp, { ...opts, thread: 1 }, rv)]);
    } else {
      const kind = spec.concurrentOp.kind as string;
      if (spec.op.kind === "exit" || kind === "exit") fail("exit cannot run concurrently");
      if (kind !== "munmap" && kind !== "madvise")
        fail(
          `concurrentOp.kind must be munmap, madvise, writeback, swapoff, revoke, numa, migrate, kvm-fault or khugepaged, got "${kind}"`,
        );
      const [s1, l1] = opRange(b, spec, spec.concurrentOp);
      const c = startOp(target, spec.concurrentOp.kind, s1, l1, { ...opts, thread: 1 });
      schedule([a.steps, c.steps]);
      result = mergeResults(a.result, c.result);
    }
  } catch (e) {
    // In checking mode a guard deep in the model (a count underflow, freeing a mapped folio, a
    // double swap free, a batch crossing a folio) is a broken safety property like any other: a
    // Violation with the events that led to it; the operation stops there. Without the checker, and
    // for what the system call itself returns (a TeardownError: EINVAL, ENOMEM, …), the error
    // propagates; the teardown layer's own consistency guard (INVARIANT) is a violation too.
    const checker = machine.checker;
    const guard = isMmgatherError(e) && (e.name !== "TeardownError" || e.code === "INVARIANT");
    if (checker === null || !guard) throw e;
    // The folio count guards are the checker's count rules, caught at the put that broke them.
    const code = (e as { code: string }).code;
    const kind =
      code === "REFCOUNT_BELOW_MAPCOUNT"
        ? "mapcountExceedsRefcount"
        : code === "REFCOUNT_UNDERFLOW" || code === "MAPCOUNT_UNDERFLOW"
          ? "negativeCount"
          : code === "DEVICE_FREED"
            ? "swapDeviceUseAfterFree"
            : "modelGuard";
    checker.report(kind, e.message, -1, -1);
  }
  if (revoke !== null)
    result = mergeResults(result, {
      ...result,
      gather: revoke.gather,
      walkCounters: revoke.walkCounters,
      gathers: revoke.gathers,
    });
  const simWallNs = Math.round((performance.now() - t0) * 1e6);
  const freed = { folios: machine.freed.folios - freed0.folios, pages: machine.freed.pages - freed0.pages };
  return buildReport(
    machine,
    target,
    result,
    freed,
    target.ptlAcquisitions - ptl0,
    simWallNs,
    stateBytes,
    mapped,
    v0,
    layers0,
    spec.costProfile ?? machine.arch.cost,
    writeback,
    swapoff,
    numa,
    migrate,
    kvm0 === null ? null : delta(machine.kvm!.counters, kvm0),
    khugepaged,
  );
}

/**
 * khugepaged collapses the THPs of shmem and of files nobody has open for writing
 * (CONFIG_READ_ONLY_THP_FOR_FS: file_thp_enabled); a file VMA with dirty pages is one opened for writing.
 */
function checkCollapseVma(spec: ScenarioSpec, vi: number): void {
  const v = spec.vmas[vi];
  if (v.kind !== "shmem" && v.kind !== "file-shared" && v.kind !== "file-private")
    fail(
      `concurrentOp: khugepaged collapses file and shmem THPs and needs a file or shmem VMA, got ${v.kind}`,
    );
  if (v.kind !== "shmem" && (v.dirtyFraction ?? 0) > 0)
    fail(
      "concurrentOp: khugepaged collapses only files nobody has open for writing (CONFIG_READ_ONLY_THP_FOR_FS), and this file VMA was written to (dirtyFraction > 0)",
    );
}

/**
 * The file range a concurrent writeback or revoke covers: the pages its VMA maps in [offset, offset +
 * length), as file indices from the VMA's pgoff — the VMA, and [first, end).
 */
function fileRangeOf(b: BuiltScenario, spec: ScenarioSpec, op: ConcurrentOpSpec): [Vma, number, number] {
  const [start, len] = opRange(b, spec, op);
  const v = b.vmas[op.vma ?? 0];
  const ps = b.machine.pageSize;
  if (start % ps !== 0 || !Number.isSafeInteger(len) || len <= 0)
    fail(`concurrentOp: ${op.kind} needs a page-aligned offset and a positive length`);
  const first = v.pgoff + (start / ps - v.start);
  return [v, first, first + Math.ceil(len / ps)];
}

/** The writeback thread of `op`: the file pages its VMA maps, written on thread 1. */
function startWriteback(
  b: BuiltScenario,
  spec: ScenarioSpec,
  op: ConcurrentOpSpec,
  wb: WritebackCounters,
): OpSteps {
  const [v, first, end] = fileRangeOf(b, spec, op);
  checkWritebackVma(v.kind);
  return writebackSteps(b.machine, v.mapping, first, end, 1, wb);
}

/**
 * The revoke thread of `op`: the device file pages its pfnmap VMA maps, unmapped on kernel thread 1
 * (no CPU quiesced).
 */
function startRevoke(
  b: BuiltScenario,
  spec: ScenarioSpec,
  op: ConcurrentOpSpec,
  opts: { variant?: VariantSpec; walk?: ZapWalk; alloc?: BatchAllocPolicy; thread: number },
  r: RevokeResult,
): OpSteps {
  const [v, first, end] = fileRangeOf(b, spec, op);
  checkRevokeVma(v.kind, `concurrentOp.vma (${op.vma ?? 0})`);
  return revokeSteps(b.machine, v.mapping, first, end, opts, r);
}

/**
 * Runs generators to completion, picking which advances next with `rng` — one page-table-lock
 * section (or one gather setup / finish) per step.
 */
export function interleave(threads: OpSteps[], rng: Rng): void {
  const live = threads.slice();
  // Threads whose last step was a wait, since the last step that did something (which may have released
  // what they wait for). All of them waiting: none can ever go on.
  const waiting = live.map(() => false);
  try {
    while (live.length > 0) {
      const i = rng.int(live.length);
      const r = live[i].next();
      if (r.done === true) {
        live.splice(i, 1);
        waiting.splice(i, 1);
        waiting.fill(false);
      } else if (r.value === "wait") {
        waiting[i] = true;
        if (waiting.every((w) => w))
          throw new TeardownError(
            "DEADLOCK",
            "scenario",
            "interleave",
            "every live thread waits for another and none can go on (a swapoff waiting for swap entries that no page table maps any more never finishes)",
          );
      } else waiting.fill(false);
    }
  } finally {
    // A thread that threw leaves the others mid-way: end them so they drop mmap_lock and PTLs.
    for (const g of live) g.return(undefined);
  }
}

function mergeResults(a: OpResult, b: OpResult): OpResult {
  const g: GatherCounters = createGatherCounters();
  for (const src of [a.gather, b.gather]) {
    for (const [k, v] of Object.entries(src)) {
      const t = g as unknown as Record<string, number | Record<string, number>>;
      if (typeof v === "number") t[k] = (t[k] as number) + v;
      else
        for (const [kk, vv] of Object.entries(v as Record<string, number>))
          (t[k] as Record<string, number>)[kk] += vv;
    }
  }
  const w = { ...a.walkCounters };
  for (const [k, v] of Object.entries(b.walkCounters)) {
    const t = w as unknown as Record<string, number | number[]>;
    if (typeof v === "number") t[k] = (t[k] as number) + v;
    else t[k] = (t[k] as number[]).map((x, i) => x + (v as number[])[i]);
  }
  return {
    op: a.op,
    variant: a.variant,
    walk: a.walk,
    gather: g,
    walkCounters: w,
    gathers: a.gathers + b.gathers,
    start: Math.min(a.start, b.start),
    end: Math.max(a.end, b.end),
  };
}
