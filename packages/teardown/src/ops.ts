// Models: exit_mmap (mm/mmap.c), munmap → do_vmi_align_munmap → unmap_region (mm/mmap.c) and
// MADV_DONTNEED → madvise_dontneed_single_vma → zap_page_range_single (mm/madvise.c, mm/memory.c),
// each with its per-operation setup (lru_add_drain, tlb_gather_mmu[_fullmm], tlb_finish_mmu).
// Every operation is a generator yielding at page-table-lock granularity, so the concurrency driver
// can interleave two threads; the synchronous forms run it to the end.
// Each takes mmap_lock as v6.18 does (mmap-lock.ts): munmap detaches under the write lock and zaps
// under the downgraded read lock; MADV_DONTNEED looks its VMAs up and zaps under the read lock; exit
// unmaps under the read lock and frees page tables under the write lock.
// Zapping a VM_LOCKED VMA munlocks its folios through rmap removal (munlock_vma_folio; folio layer).
// After exit_mmap, __mmput's mm_put_huge_zero_folio drops the mm's huge-zero reference (v6.18).
// A driver revoking its device memory (v6.18 mm/memory.c): unmap_mapping_range(mapping, holebegin,
// holelen, even_cows = 0) → unmap_mapping_pages: i_mmap_lock_read, unmap_mapping_range_tree over the
// file's i_mmap — for each VMA overlapping the file range, unmap_mapping_range_vma →
// zap_page_range_single (its own tlb_gather_mmu, unmap_single_vma, tlb_finish_mmu), whatever mm it
// belongs to —, i_mmap_unlock_read; then the driver frees the device memory. A kernel thread: no
// mmap_lock, and no CPU of a target mm is quiesced by it. free_pgtables of munmap / exit runs
// tlb_flush_mmu_pfnmap, then waits for the revoke's read side before unlinking a VMA of that file;
// munmap's __split_vma of a file VMA (vma_prepare: i_mmap_lock_write) waits for it too.
// mmu notifiers: mmu_notifier_release at the start of exit_mmap (devices, KVM), and
// invalidate_range_start / _end around unmap_vmas and zap_page_range_single (the zap walk's steps).
// Omits: VM_ACCOUNT, uprobes, hugetlb, the OOM reaper, -ENOMEM for holes in a madvise
// range (holes are skipped), zap_details filtering (even_cows = 0 skips private COW copies: a revoke
// here only zaps VM_PFNMAP VMAs, which have none), PAT (pfnmap_untrack when the VMA is freed).

import { PG } from "@mmgather/folio";
import type {
  BatchAllocPolicy,
  GatherCounters,
  GatherVariant,
  MmuGather,
  VariantName,
} from "@mmgather/mmu-gather";
import { createGatherCounters, createMmuGather, getVariant, isGatherError } from "@mmgather/mmu-gather";
import { TeardownError } from "./errors.js";
import { mmPutHugeZeroFolio } from "./huge-memory.js";
import { createMachine, type Machine } from "./machine.js";
import type { Mm } from "./mm.js";
import {
  mmapReadLock,
  mmapReadUnlock,
  mmapWriteDowngrade,
  mmapWriteLock,
  mmapWriteUnlock,
  type OpSteps,
} from "./mmap-lock.js";
import { createRng } from "./rng.js";
import { isPfnmap, type Vma } from "./vma.js";
import { faultIn, forEachPresent, mmapVma } from "./workload.js";
import { createWalkCounters, splitAccountingFor, type WalkCounters, ZapContext } from "./zap/context.js";
import { folioBatchWalk, perPteWalk, type ZapWalk } from "./zap/steps.js";
import { freePgtables, unmapVmas } from "./zap/walk.js";

/** A gather variant by name or object. */
export type VariantSpec = VariantName | GatherVariant;

/** Options of one teardown operation. */
export interface TeardownOptions {
  /** Gather variant (default "encoded-nr-pages"). */
  readonly variant?: VariantSpec;
  /** Zap walk (default: folio-batch walk when the variant batches folio PTEs, else per-PTE). */
  readonly walk?: ZapWalk;
  /** GFP_NOWAIT outcome of batch-page allocations (default: always succeed). */
  readonly alloc?: BatchAllocPolicy;
  /** Thread number, for events (default 0). */
  readonly thread?: number;
}

/** The operations. */
export type TeardownOp = "exit" | "munmap" | "madvise";

/** What one operation did, before it is turned into a report. */
export interface OpResult {
  readonly op: TeardownOp;
  readonly variant: GatherVariant;
  readonly walk: ZapWalk;
  /** Gather counters summed over every gather the operation used. */
  readonly gather: GatherCounters;
  /** Walk counters. */
  readonly walkCounters: WalkCounters;
  /** Gathers used (madvise: one per VMA, as zap_page_range_single does). */
  gathers: number;
  /** Pages [start, end) the operation covered. */
  readonly start: number;
  readonly end: number;
}

// ---------------------------------------------------------------------------------------------------
// Hidden-class anchors (a JIT concern, nothing the kernel does).
//
// V8 keeps the hidden classes ("maps") of class instances alive only while an instance holds them;
// optimized code refers to maps weakly. Every scenario builds a fresh machine, mm, page tables, gather,
// batch storage and walk context; once the previous run's are garbage, a GC drops their maps, the next
// run recreates them, and every optimized function of the walk, the gather and the allocator is thrown
// away ("weak objects" / "code dependencies" deopts) and re-tiered from bytecode. That cost ~40% of a
// 1 GiB teardown. So the first operation of a process first tears down one tiny mm per kernel variant
// (4K, 64K, PTE- and PMD-mapped 2M anon folios; munmap then exit) and retains those objects: real runs
// then reuse the same maps and the code compiled against them. About 3 × 16 MiB of model memory.
// Still needed when runs start from copies of one kept build (cloneBuilt): the kept build holds the
// machine's, mm's and page tables' maps, but the gather, its batch storage and the walk context are
// made per operation and die with it, so between two designs a GC could still drop their maps. They
// are built before a run's clock starts (runOps), so they are no part of the first run's simWallNs;
// what they cost is mostly the first execution of the fault and zap paths, which the run would pay.

const ANCHOR_VARIANTS: readonly VariantName[] = ["encoded-page", "contig-range", "encoded-nr-pages"];
let anchors: unknown[] | null = null;
/** Non-null while the anchors are built: every operation's gather and walk context is pushed here. */
let anchorCapture: unknown[] | null = null;

/** Builds the anchors once per process (the first operation does it otherwise). */
export function ensureAnchors(): void {
  if (anchors !== null) return;
  const keep: unknown[] = [];
  anchors = keep;
  anchorCapture = keep;
  try {
    for (const variant of ANCHOR_VARIANTS) {
      const machine = createMachine({ memoryBytes: 16 << 20 });
      const mm = machine.createMm();
      const rng = createRng(1);
      for (const [order, pmdMapped] of [
        [0, false],
        [4, false],
        [9, false],
        [9, true],
      ] as const) {
        faultIn(mm, mmapVma(mm, "anon", 2 << 20), { policy: { order }, pmdMapped }, rng);
      }
      munmap(mm, mm.vmas[0].start * machine.pageSize, 2 << 20, { variant });
      exitMmap(mm, { variant });
      keep.push(machine, mm);
    }
  } finally {
    anchorCapture = null;
  }
}

/** Resolves a variant name or object; throws UNKNOWN_VARIANT. */
export function resolveVariant(v: VariantSpec | undefined): GatherVariant {
  if (v === undefined) return getVariant("encoded-nr-pages");
  if (typeof v === "string") {
    try {
      return getVariant(v);
    } catch (e) {
      if (isGatherError(e)) {
        throw new TeardownError(
          "UNKNOWN_VARIANT",
          "ops",
          "resolveVariant",
          `unknown gather variant "${v}"`,
          e,
        );
      }
      throw e;
    }
  }
  if (typeof v !== "object" || v === null || typeof v.steps !== "object" || typeof v.policy !== "object") {
    throw new TeardownError(
      "UNKNOWN_VARIANT",
      "ops",
      "resolveVariant",
      "variant must be a name or a GatherVariant",
    );
  }
  return v;
}

/** The default walk of a variant. */
export function walkForVariant(v: GatherVariant): ZapWalk {
  return v.policy.walkBatchesFolioPtes ? folioBatchWalk : perPteWalk;
}

function newResult(op: TeardownOp, opts: TeardownOptions, start: number, end: number): OpResult {
  const variant = resolveVariant(opts.variant);
  return {
    op,
    variant,
    walk: opts.walk ?? walkForVariant(variant),
    gather: createGatherCounters(),
    walkCounters: createWalkCounters(),
    gathers: 0,
    start,
    end,
  };
}

function gatherFor(
  mm: Mm,
  r: { gathers: number; readonly variant: GatherVariant },
  opts: TeardownOptions,
  fullmm: boolean,
): MmuGather {
  const machine = mm.machine;
  r.gathers++;
  const tlbs = machine.tlbs;
  const cpu = tlbs?.cpuOfThread(opts.thread ?? 0) ?? -1;
  mm.tlbMm.attachedElsewhere = tlbs?.attachedElsewhere(cpu, mm.id) ?? false;
  mm.tlbMm.cpumask = tlbs?.cpumask(mm.id) ?? [];
  mm.tlbMm.lazyCpus = tlbs?.lazyCpus(mm.id) ?? [];
  mm.tlbMm.hasNotifiers = (tlbs?.secondary?.boundTo(mm.id) ?? 0) > 0;
  const checker = machine.checker;
  if (checker !== null) checker.partialDeferredSplitOnly = r.variant.policy.kernel === "6.18";
  const sink = machine.gatherSink();
  return createMmuGather({
    mem: machine.mem,
    swap: machine.swap ?? undefined,
    mm: mm.tlbMm,
    arch: machine.arch,
    variant: r.variant,
    fullmm,
    alloc: opts.alloc,
    events: sink ?? undefined,
    tlbListener: machine.tlbs ?? undefined,
    tableSync: machine.rcu,
    cpu,
  });
}

function addCounters(into: GatherCounters, from: Readonly<GatherCounters>): void {
  const a = into as unknown as Record<string, number | Record<string, number>>;
  const b = from as unknown as Record<string, number | Record<string, number>>;
  for (const k of Object.keys(b)) {
    const v = b[k];
    if (typeof v === "number") a[k] = (a[k] as number) + v;
    else {
      const t = a[k] as Record<string, number>;
      for (const kk of Object.keys(v)) t[kk] = (t[kk] ?? 0) + v[kk];
    }
  }
}

function checkLive(mm: Mm, method: string): void {
  if (mm.dead) throw new TeardownError("DEAD_MM", "ops", method, `mm ${mm.id} has already exited`);
}

/** Validates a user byte range against the arch's page size; returns [startPage, endPage). */
export function pageRange(start: number, len: number, pageSize: number, method: string): [number, number] {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(len) || start < 0 || len <= 0) {
    throw new TeardownError("EINVAL", "ops", method, `bad range start=${start} len=${len}`);
  }
  if (start % pageSize !== 0) {
    throw new TeardownError("MISALIGNED", "ops", method, `start 0x${start.toString(16)} is not page aligned`);
  }
  return [start / pageSize, Math.ceil(len / pageSize) + start / pageSize];
}

/** remove_vma of each VMA after the unmap: vm_ops->close, fput for a file VMA, vm_area_free. */
function removeVmas(c: WalkCounters, vmas: readonly Vma[]): void {
  for (const v of vmas) {
    c.vmasFreed++;
    if (v.mapping >= 0) c.fputs++;
  }
}

/** exit_mmap as a generator. */
export function* exitMmapSteps(mm: Mm, opts: TeardownOptions, r: OpResult): OpSteps {
  checkLive(mm, "exitMmap");
  mm.exiting = true;
  const machine = mm.machine;
  const checker = machine.checker;
  const trace = machine.traceSink();
  if (trace !== null) trace({ type: "opStarted", op: "exit", mmId: mm.id, start: 0, end: 0 });
  checker?.onResched(); // entering the kernel: nothing freed yet
  // mm_users is 0: no user code of this mm runs anywhere again (lazy-TLB CPUs may still walk its
  // tables, so walk caches stay checked).
  machine.tlbs?.retireMm(mm.id);
  // mmu_notifier_release: every device sharing the page tables is detached before anything is zapped.
  const devices = machine.tlbs?.secondary ?? null;
  if (devices !== null && devices.boundTo(mm.id) > 0) {
    const n = devices.release(mm.id);
    if (trace !== null) trace({ type: "mmuNotifierRelease", mmId: mm.id, devices: n });
  }
  // ... and a KVM guest on it drops every spte (kvm_mmu_notifier_release).
  machine.kvm?.release(mm.id);
  yield* mmapReadLock(mm);
  const vmas = mm.vmas.slice();
  machine.mem.lruAddDrain();
  const tlb = gatherFor(mm, r, opts, true);
  const ctx = new ZapContext(mm, tlb, checker, r.walkCounters, opts.thread ?? 0);
  if (anchorCapture !== null) anchorCapture.push(tlb, ctx);
  try {
    yield* unmapVmas(ctx, r.walk, vmas, 0, Number.POSITIVE_INFINITY);
  } finally {
    mmapReadUnlock(mm);
  }
  yield* mmapWriteLock(mm);
  try {
    yield* freePgtablesStart(tlb, machine, vmas);
    freePgtables(ctx, r.walk, vmas, 0, Number.POSITIVE_INFINITY);
    tlb.finish();
    addCounters(r.gather, tlb.counters);
    removeVmas(r.walkCounters, vmas);
    mm.vmas.length = 0;
  } finally {
    mmapWriteUnlock(mm);
  }
  // mmdrop → pgd_free: the top-level table goes last, after every flush.
  machine.mem.folioPut(mm.pt.tablePfn[mm.pt.pgd]);
  mm.pt.releaseId(mm.pt.pgd);
  r.walkCounters.pgdsFreed++;
  r.walkCounters.mmsFreed++;
  mm.dead = true;
  // __mmput: mm_put_huge_zero_folio right after exit_mmap.
  mmPutHugeZeroFolio(mm);
  if (machine.tlbs !== null) {
    for (let c = 0; c < machine.tlbs.nrCpus; c++) {
      if (machine.tlbs.cpuMm[c] === mm.id) machine.tlbs.cpuMm[c] = -1;
      if (machine.tlbs.cpuLazy[c] === mm.id) machine.tlbs.cpuLazy[c] = -1;
    }
  }
  if (trace !== null) trace({ type: "opReturned", op: "exit", mmId: mm.id });
  rcuGracePeriod(machine);
}

/**
 * munmap / madvise return: the user's event, then the checker's stale-TLB check over `ranges` (page
 * [start, end) pairs the operation found mapped by its VMAs; the checker records its own event).
 */
function opReturn(
  mm: Mm,
  op: "munmap" | "madvise",
  ranges: readonly number[],
  present: readonly [number, number] = firstPresent(mm, ranges),
): void {
  const machine = mm.machine;
  if (machine.events !== null) machine.events({ type: "opReturned", op, mmId: mm.id });
  if (machine.checker !== null)
    machine.checker.onOpReturn(
      op,
      mm.id,
      ranges,
      present[0],
      present[1],
      op === "madvise" ? (vpn, pfn, writable) => refaultMapsSame(mm, vpn, pfn, writable) : null,
    );
  rcuGracePeriod(machine);
}

/**
 * After MADV_DONTNEED the VMA stays: a fault at `vpn` maps the page-cache page of a file or shmem VMA at
 * that index. A translation still cached there is indistinguishable from that fault when it maps that
 * very page and no write through it can go unrecorded (read-only, or shmem, whose folios are dirty).
 */
function refaultMapsSame(mm: Mm, vpn: number, pfn: number, writable: boolean): boolean {
  const v = mm.findVma(vpn);
  if (v === null || v.mapping < 0 || v.kind === "pfnmap") return false;
  const mem = mm.machine.mem;
  const index = v.pgoff + (vpn - v.start);
  const head = mem.filemapGetFolio(v.mapping, index);
  if (head < 0 || head + (index - mem.folioIndex(head)) !== pfn) return false;
  return !writable || mem.folioTest(head, PG.swapbacked);
}

/**
 * After the operation the RCU grace period runs its course: lockless walks still running end, and the
 * table frees that waited for them go (with the event, when any did).
 */
function rcuGracePeriod(machine: Machine): void {
  const n = machine.rcu.gracePeriod();
  if (n > 0) machine.traceSink()?.({ type: "rcuGracePeriod", callbacks: n });
}

/**
 * The first virtual page of `ranges` ([start, end) pairs) still mapped by a present PTE or huge PMD,
 * and its pfn; [-1, -1] when the zap left none (or no checker is on: nothing is looked at then).
 * munmap asks between the zap and free_pgtables, which would free a table with the entry in it.
 */
function firstPresent(mm: Mm, ranges: readonly number[]): [number, number] {
  const out: [number, number] = [-1, -1];
  if (mm.machine.checker === null) return out;
  for (let i = 0; i + 1 < ranges.length && out[0] < 0; i += 2) {
    forEachPresent(mm, ranges[i], ranges[i + 1], (pfn, vpn) => {
      if (out[0] < 0) {
        out[0] = vpn;
        out[1] = pfn;
      }
    });
  }
  return out;
}

/** [start, end) page pairs of `vmas` clipped to [vs, ve). */
function clipped(vmas: readonly { start: number; end: number }[], vs: number, ve: number): number[] {
  const out: number[] = [];
  for (const v of vmas) {
    const s = Math.max(vs, v.start);
    const e = Math.min(ve, v.end);
    if (s < e) out.push(s, e);
  }
  return out;
}

/**
 * The calling thread is in the kernel for the whole operation: its CPU's cached translations of the mm
 * cannot be used by user code until it returns (CpuTlbs.quiesce / resume).
 */
function* inKernel(mm: Mm, thread: number, body: OpSteps): OpSteps {
  const tlbs = mm.machine.tlbs;
  const cpu = tlbs === null ? -1 : tlbs.cpuOfThread(thread);
  if (tlbs !== null) tlbs.quiesce(cpu, mm.id);
  try {
    yield* body;
  } finally {
    if (tlbs !== null) tlbs.resume(cpu, mm.id);
  }
}

/**
 * The start of free_pgtables: tlb_flush_mmu_pfnmap (a VM_PFNMAP VMA zapped by this gather is flushed
 * before it leaves i_mmap), then unlink_file_vma's i_mmap_lock_write of `vmas`, which waits while a
 * revoke holds the read side of one of their files. Never yields while no revoke runs.
 */
function* freePgtablesStart(tlb: MmuGather, machine: Machine, vmas: readonly Vma[]): OpSteps {
  tlb.tlbFlushMmuPfnmap();
  const readers = machine.iMmapReaders;
  if (readers.size === 0) return;
  for (const v of vmas) {
    if (v.mapping < 0) continue;
    while ((readers.get(v.mapping) ?? 0) > 0) yield "wait";
  }
}

/** munmap as a generator: split at the edges, detach, unmap_region, free page tables. */
export function munmapSteps(mm: Mm, start: number, len: number, opts: TeardownOptions, r: OpResult): OpSteps {
  return inKernel(mm, opts.thread ?? 0, munmapBody(mm, start, len, opts, r));
}

function* munmapBody(mm: Mm, start: number, len: number, opts: TeardownOptions, r: OpResult): OpSteps {
  checkLive(mm, "munmap");
  const [vs, ve] = [r.start, r.end];
  const machine = mm.machine;
  const checker = machine.checker;
  machine.traceSink()?.({ type: "opStarted", op: "munmap", mmId: mm.id, start, end: start + len });
  checker?.onResched(); // entering the system call: nothing freed yet
  yield* mmapWriteLock(mm);
  let write = true;
  let present: [number, number] = [-1, -1];
  try {
    const acct = splitAccountingFor(r.walkCounters, r.variant);
    // __split_vma → vma_prepare takes i_mmap_lock_write of a file VMA's mapping: a split waits while a
    // revoke's unmap_mapping_range walks that file's VMAs (its read side), which must not see one VMA
    // become two halfway through.
    for (const at of [vs, ve]) {
      const v = mm.findVma(at);
      if (v === null || v.start === at || v.mapping < 0) continue;
      while ((machine.iMmapReaders.get(v.mapping) ?? 0) > 0) yield "wait";
    }
    mm.splitVma(vs, acct);
    mm.splitVma(ve, acct);
    const vmas = mm.detachVmas(vs, ve);
    if (vmas.length > 0) {
      let prev = null;
      let next = null;
      for (const v of mm.vmas) {
        if (v.end <= vs) prev = v;
        else if (v.start >= ve && next === null) next = v;
      }
      const floor = prev === null ? 0 : prev.end;
      const ceiling = next === null ? Number.POSITIVE_INFINITY : next.start;
      // The VMAs are detached: nobody can find them, so the zap needs only the read side.
      mmapWriteDowngrade(mm);
      write = false;
      machine.mem.lruAddDrain();
      const tlb = gatherFor(mm, r, opts, false);
      const ctx = new ZapContext(mm, tlb, checker, r.walkCounters, opts.thread ?? 0);
      if (anchorCapture !== null) anchorCapture.push(tlb, ctx);
      yield* unmapVmas(ctx, r.walk, vmas, vs, ve);
      present = firstPresent(mm, [vs, ve]);
      yield* freePgtablesStart(tlb, machine, vmas);
      freePgtables(ctx, r.walk, vmas, floor, ceiling);
      tlb.finish();
      addCounters(r.gather, tlb.counters);
      removeVmas(r.walkCounters, vmas);
    }
  } finally {
    if (write) mmapWriteUnlock(mm);
    else mmapReadUnlock(mm);
  }
  // Under the write lock nobody else could detach part of [vs, ve): it is all this munmap's.
  opReturn(mm, "munmap", [vs, ve], present);
}

/** MADV_DONTNEED as a generator: one zap_page_range_single (own gather) per VMA. */
export function madviseSteps(
  mm: Mm,
  start: number,
  len: number,
  opts: TeardownOptions,
  r: OpResult,
): OpSteps {
  return inKernel(mm, opts.thread ?? 0, madviseBody(mm, start, len, opts, r));
}

function* madviseBody(mm: Mm, start: number, len: number, opts: TeardownOptions, r: OpResult): OpSteps {
  checkLive(mm, "madvise");
  const [vs, ve] = [r.start, r.end];
  const machine = mm.machine;
  const checker = machine.checker;
  machine.traceSink()?.({ type: "opStarted", op: "madvise", mmId: mm.id, start, end: start + len });
  checker?.onResched(); // entering the system call: nothing freed yet
  yield* mmapReadLock(mm);
  let vmas: Vma[];
  try {
    vmas = mm.vmas.filter((v) => v.start < ve && v.end > vs);
    for (const v of vmas) {
      if (v.locked) {
        throw new TeardownError(
          "EINVAL",
          "ops",
          "madvise",
          "MADV_DONTNEED on a VM_LOCKED VMA fails with -EINVAL",
        );
      }
    }
    for (const v of vmas) {
      machine.mem.lruAddDrain();
      const tlb = gatherFor(mm, r, opts, false);
      const ctx = new ZapContext(mm, tlb, checker, r.walkCounters, opts.thread ?? 0);
      if (anchorCapture !== null) anchorCapture.push(tlb, ctx);
      yield* unmapVmas(ctx, r.walk, [v], vs, ve);
      tlb.finish();
      addCounters(r.gather, tlb.counters);
    }
  } finally {
    mmapReadUnlock(mm);
  }
  opReturn(mm, "madvise", clipped(vmas, vs, ve));
}

/** Creates the generator and its result record for one operation. */
export function startOp(
  mm: Mm,
  op: TeardownOp,
  start: number,
  len: number,
  opts: TeardownOptions,
): { readonly steps: OpSteps; readonly result: OpResult } {
  if (anchors === null) ensureAnchors();
  if (op === "exit") {
    const r = newResult(op, opts, 0, Number.POSITIVE_INFINITY);
    return { steps: exitMmapSteps(mm, opts, r), result: r };
  }
  if (op !== "munmap" && op !== "madvise") {
    throw new TeardownError("EINVAL", "ops", "startOp", `unknown operation "${String(op)}"`);
  }
  const [vs, ve] = pageRange(start, len, mm.machine.pageSize, op);
  const r = newResult(op, opts, vs, ve);
  const steps =
    op === "munmap" ? munmapSteps(mm, start, len, opts, r) : madviseSteps(mm, start, len, opts, r);
  return { steps, result: r };
}

function drain(g: OpSteps): void {
  for (let s = g.next(); s.done !== true; s = g.next()) {
    /* run to completion */
  }
}

/** exit_mmap: tears the whole mm down. */
export function exitMmap(mm: Mm, opts: TeardownOptions = {}): OpResult {
  const { steps, result } = startOp(mm, "exit", 0, 0, opts);
  drain(steps);
  return result;
}

/** munmap(start, len) (bytes). */
export function munmap(mm: Mm, start: number, len: number, opts: TeardownOptions = {}): OpResult {
  const { steps, result } = startOp(mm, "munmap", start, len, opts);
  drain(steps);
  return result;
}

/** madvise(start, len, MADV_DONTNEED) (bytes). */
export function madviseDontneed(mm: Mm, start: number, len: number, opts: TeardownOptions = {}): OpResult {
  const { steps, result } = startOp(mm, "madvise", start, len, opts);
  drain(steps);
  return result;
}

/** What one revoke (a driver's unmap_mapping_range) did; every count exact. */
export interface RevokeResult {
  readonly variant: GatherVariant;
  readonly walk: ZapWalk;
  /** Gather counters summed over its gathers (one per VMA, zap_page_range_single). */
  readonly gather: GatherCounters;
  /** Walk counters of those zaps. */
  readonly walkCounters: WalkCounters;
  /** Gathers used: one per VMA zapped. */
  gathers: number;
  /** VMAs unmap_mapping_range_tree found overlapping the file range (in every mm mapping the file). */
  vmasZapped: number;
  /** Distinct mms those VMAs belong to. */
  mmsZapped: number;
  /** Device pages the driver freed after the unmap returned (the file range, clipped to the file). */
  devicePagesFreed: number;
}

/** A fresh revoke result for a revoke run with `opts` (variant and walk as an operation's). */
export function createRevokeResult(opts: TeardownOptions): RevokeResult {
  const variant = resolveVariant(opts.variant);
  return {
    variant,
    walk: opts.walk ?? walkForVariant(variant),
    gather: createGatherCounters(),
    walkCounters: createWalkCounters(),
    gathers: 0,
    vmasZapped: 0,
    mmsZapped: 0,
    devicePagesFreed: 0,
  };
}

/** Validates a revoke target: only a VM_PFNMAP VMA's device file. */
export function checkRevokeVma(kind: string, field: string): void {
  if (kind !== "pfnmap") {
    throw new TeardownError(
      "BAD_SPEC",
      "ops",
      "revoke",
      `${field}: a revoke unmaps a driver's device file and needs a pfnmap VMA, got ${kind}${kind === "file-shared" ? " (truncate's unmap of page cache, and the folios it frees afterwards, is not modelled)" : ""}`,
    );
  }
}

/**
 * A driver revoking file pages [first, end) of its device file `mapping` (unmap_mapping_range, even_cows
 * = 0), on kernel thread `opts.thread`, as a generator of lock sections; then the device memory is freed
 * and the checker looks at every device pfn of the range. `r` receives what it did.
 */
export function* revokeSteps(
  machine: Machine,
  mapping: number,
  first: number,
  end: number,
  opts: TeardownOptions,
  r: RevokeResult,
): OpSteps {
  if (anchors === null) ensureAnchors();
  const dev = machine.deviceFiles.get(mapping);
  if (dev === undefined)
    throw new TeardownError("BAD_SPEC", "ops", "revoke", `mapping ${mapping} is no device file`);
  const checker = machine.checker;
  const thread = opts.thread ?? 0;
  const trace = machine.traceSink();
  if (trace !== null) trace({ type: "opStarted", op: "revoke", mmId: -1, start: first, end });
  checker?.onResched(); // a kernel thread entering the driver's path: nothing freed yet
  // i_mmap_lock_read: the VMAs found now stay in the tree until i_mmap_unlock_read (free_pgtables waits).
  const readers = machine.iMmapReaders;
  readers.set(mapping, (readers.get(mapping) ?? 0) + 1);
  const mms = new Set<number>();
  try {
    const vmas = (machine.iMmap.get(mapping) ?? []).slice();
    for (const { mm, vma } of vmas) {
      if (!isPfnmap(vma)) continue;
      // unmap_mapping_range_tree: the VMA's file range [vba, vea) clipped to the hole.
      const vba = vma.pgoff;
      const vea = vba + (vma.end - vma.start);
      const zba = Math.max(first, vba);
      const zea = Math.min(end, vea);
      if (zba >= zea) continue;
      const s = vma.start + (zba - vba);
      const e = vma.start + (zea - vba);
      r.vmasZapped++;
      mms.add(mm.id);
      // zap_page_range_single: tlb_gather_mmu, unmap_single_vma, tlb_finish_mmu.
      const tlb = gatherFor(mm, r, opts, false);
      const ctx = new ZapContext(mm, tlb, checker, r.walkCounters, thread);
      yield* unmapVmas(ctx, r.walk, [vma], s, e);
      tlb.finish();
      addCounters(r.gather, tlb.counters);
      yield;
    }
  } finally {
    const n = (readers.get(mapping) ?? 1) - 1;
    if (n === 0) readers.delete(mapping);
    else readers.set(mapping, n);
  }
  r.mmsZapped = mms.size;
  // The driver frees the device memory of the range (the part its file has).
  const lo = Math.min(first, dev.nrPages);
  const hi = Math.min(end, dev.nrPages);
  r.devicePagesFreed = hi - lo;
  // The user's sink gets the return here; the checker records its own (onDeviceMemoryFreed).
  if (machine.events !== null) machine.events({ type: "opReturned", op: "revoke", mmId: -1 });
  if (checker !== null) {
    // Every VMA of the file now, not only those the walk zapped: one it missed maps freed memory too.
    const present: number[] = [];
    for (const { mm, vma } of machine.iMmap.get(mapping) ?? []) {
      const s = vma.start + Math.max(0, first - vma.pgoff);
      const e = vma.start + Math.min(vma.end - vma.start, end - vma.pgoff);
      if (present.length === 0 && s < e)
        forEachPresent(mm, s, e, (pfn, vpn) => {
          if (present.length === 0) present.push(mm.id, vpn, pfn);
        });
    }
    checker.onDeviceMemoryFreed(dev.pfn + lo, hi - lo, present);
  }
  rcuGracePeriod(machine);
}
