// Models: nothing of the kernel by itself — the model's differential check. The three mmu_gather designs
// (encoded-page: mm-unstable of August 2023; contig-range: the 2023 series; encoded-nr-pages: v6.18,
// torvalds/linux, Nov 2025) tear the same workload down: whatever they count differently, they must leave
// the machine in the same state (pages, folios, LRU, page cache, swap) and none may break a safety rule.
// `randomScenario` draws valid workloads with every actor a scenario can have — a concurrent munmap,
// MADV_DONTNEED, writeback, swapoff, revoke, NUMA hinting scan, migration or a KVM vCPU fault (one entry
// each in CONCURRENT_ACTORS), gup_fast walkers, devices behind mmu notifiers, a KVM guest, lazy-TLB CPUs, fork and exited children, mlock, VMA
// splits, pfnmap VMAs, the zero page and the huge zero folio — on the arch adapters it is given;
// `runDifferential` runs one workload on every design and compares.
// Omits: what the designs legitimately do differently (DIGEST_IGNORED_FLAGS); workloads the kernel
// refuses or never builds are not drawn: MADV_DONTNEED of a VM_LOCKED or VM_PFNMAP VMA (-EINVAL,
// madvise_dontneed_free_valid_vma), swap-out of mlocked anon folios (reclaim keeps them on the
// unevictable list); knobs of ScenarioSpec no scenario file has (pcpPolicy, alloc, walk, numaScan).
import { genericArch } from "@mmgather/arch-generic";
import { PG, type PhysMem } from "@mmgather/folio";
import { folioState } from "@mmgather/folio/internal";
import type { ArchTlb } from "@mmgather/mmu-gather";
import { SWAP_FREED, type SwapSpace, swpEntry } from "@mmgather/swapcache";
import type { Violation } from "./checker.js";
import { isTeardownError, TeardownError } from "./errors.js";
import type { TeardownOp } from "./ops.js";
import { createRng, type Rng } from "./rng.js";
import {
  buildScenario,
  type ConcurrentOpSpec,
  type OpSpec,
  runBuilt,
  type ScenarioSpec,
  type VmaSpec,
} from "./scenario.js";
import type { VmaKind } from "./vma.js";
import type { FolioPolicy } from "./workload.js";

/**
 * What the differential digest leaves out, and why.
 *
 * `PG.partiallyMapped` — 7.x's `PG_partially_mapped` (mm/rmap.c `__folio_remove_rmap` calls
 * `deferred_split_folio(folio, true)`, which sets it; v6.9+ mm/huge_memory.c). Linux 6.5's
 * `page_remove_rmap` and the 2023 series' `folio_remove_rmap_range` queue the same folio on the same
 * deferred-split queue without recording why: the flag does not exist there. Which folios are queued
 * (`PG.deferredQueued` + the queue length) is still compared, as are mapcounts, refcounts, LRU, stats,
 * page cache and swap; so a partial munmap / MADV_DONTNEED through a large anon folio must leave the
 * same folios mapped, referenced and queued in every design. The flag only steers what the
 * deferred-split shrinker later does with a queued folio (split vs. "underused" accounting), which no
 * teardown observes.
 *
 * `PG.mlocked` — v6.5's `munlock_vma_folio` (mm/internal.h: `folio_test_large` and not PMD-mapped → no
 * munlock) skips a PTE-mapped large folio whose last mapping in a VM_LOCKED VMA goes, which v6.18
 * munlocks: kernel behaviour of the two trees, not a difference of the designs; the flag only steers
 * reclaim. The folio's mapcount, refcount and LRU are still compared.
 *
 * Besides the mask, both digests are taken after `lru_add_drain`: v6.18's free path no longer drains the
 * per-CPU batches (no `lru_add_drain` in `free_pages_and_swap_cache`), so until the next drain they still
 * hold the folios `munlock_folio` queued, where the older trees' free path has drained them already.
 *
 * Nothing else is normalised: the digests are `PhysMem.stateDigest` and `SwapSpace.stateDigest` —
 * except next to an actor that allocates memory while the teardown frees (`ConcurrentActor.allocates`:
 * swapoff reads swapped pages back in). The designs free the same folios in another order (their
 * batches differ), so the buddy and per-CPU lists hand the actor other page frames; a pfn-exact digest
 * then differs although nothing but placement does. Such a case is compared placement-free
 * (`DesignOutcome.comparison`): every folio by its head's fields (flags, order, refcount, mapcount,
 * mapping, index, swap entry) and its pages' mapcounts, as a multiset; the number of free pages; the
 * statistics, LRU and deferred-split counts; each page-cache index and its folio's order; each swap
 * slot's count and whether the swap cache holds a folio for it.
 */
export const DIGEST_IGNORED_FLAGS: number = PG.partiallyMapped | PG.mlocked;

/** One design of a differential run: its name and the spec fields that make it. */
export interface DifferentialDesign {
  /** How outputs name it. */
  readonly name: string;
  /** Applied over the case's spec: `variant`, and for a deliberately broken design `walk` or `numaScan`. */
  readonly override: Partial<ScenarioSpec>;
}

/** The three designs, oldest first. */
export const DIFFERENTIAL_DESIGNS: readonly DifferentialDesign[] = Object.freeze([
  Object.freeze({ name: "encoded-page", override: Object.freeze({ variant: "encoded-page" }) }),
  Object.freeze({ name: "contig-range", override: Object.freeze({ variant: "contig-range" }) }),
  Object.freeze({ name: "encoded-nr-pages", override: Object.freeze({ variant: "encoded-nr-pages" }) }),
]);

/** How one design ended a case. */
export interface DesignOutcome {
  /** `DifferentialDesign.name`. */
  readonly design: string;
  /** The safety checker ran (it does when the spec models CPUs). */
  readonly checked: boolean;
  /** What the checker found (`report.violations`). */
  readonly violations: readonly Violation[];
  /** Final-state problems in words (`report.finalState.problems`). */
  readonly problems: readonly string[];
  /**
   * The system call's own failure — MADV_DONTNEED of a VM_LOCKED VMA is -EINVAL, an allocation may be
   * -ENOMEM — else null. The kernel refuses alike under every design, so the case is then skipped.
   */
  readonly refused: string | null;
  /** Anything else the run threw (a model guard without the checker, a broken design's code), else null. */
  readonly error: string | null;
  /**
   * How the final state was digested: "exact" (page frame by page frame), or "placement-free" next to an
   * actor that allocates while the teardown frees (see DIGEST_IGNORED_FLAGS).
   */
  readonly comparison: "exact" | "placement-free";
  /** `PhysMem.stateDigest(DIGEST_IGNORED_FLAGS)` after `lru_add_drain` (or its placement-free form). */
  readonly folioDigest: string;
  /** `SwapSpace.stateDigest()` (or its placement-free form), "" without swap. */
  readonly swapDigest: string;
  /** The final state had a flag of DIGEST_IGNORED_FLAGS set: the comparison left something out. */
  readonly ignoredFlagsSet: boolean;
}

/** What one case gave on every design. */
export interface DifferentialResult {
  /** One per design, in design order. */
  readonly outcomes: readonly DesignOutcome[];
  /** Designs grouped by equal final state (digests and refusal), in design order: one group when all agree. */
  readonly groups: readonly (readonly string[])[];
  /** Every design reached the same final state (and refused alike). */
  readonly agree: boolean;
  /**
   * Whether the designs must agree: false next to an actor whose outcome races the teardown
   * (`ConcurrentActor.outcomeRaces`), where only silence is required.
   */
  readonly agreementRequired: boolean;
  /** The case passed: silent (or refused alike) under every design, and agreeing where that is required. */
  readonly passed: boolean;
  /** Which part of the state told the groups apart: "folio", "swap", "refusal"; empty when they agree. */
  readonly differsIn: readonly ("folio" | "swap" | "refusal")[];
  /** No violation, no final-state problem and no error under any design. */
  readonly silent: boolean;
  /** Every design refused the operation alike: nothing was compared beyond that. */
  readonly refused: boolean;
  /** What the case has, for a tally (`caseFeatures(spec)`). */
  readonly features: CaseFeatures;
}

/** Options of `runDifferential`. */
export interface DifferentialOptions {
  /** The designs compared (default DIFFERENTIAL_DESIGNS); at least two. */
  readonly designs?: readonly DifferentialDesign[];
  /** The actor table that says which concurrent actor allocates (default CONCURRENT_ACTORS). */
  readonly actors?: readonly ConcurrentActor[];
}

/**
 * Runs `spec` once per design (each on its own freshly built machine) and compares their final states.
 * `spec.variant` is replaced by each design's. A spec that cannot be built throws, as runScenario does.
 */
export function runDifferential(spec: ScenarioSpec, options: DifferentialOptions = {}): DifferentialResult {
  const designs = options.designs ?? DIFFERENTIAL_DESIGNS;
  if (!Array.isArray(designs) || designs.length < 2)
    throw new TeardownError("BAD_SPEC", "differential", "runDifferential", "give at least two designs");
  const kind = spec.concurrentOp?.kind;
  const actor = (options.actors ?? CONCURRENT_ACTORS).find((a) => a.kind === kind);
  const placementFree = actor?.allocates === true;
  const agreementRequired = actor?.outcomeRaces !== true;
  const outcomes = designs.map((d) => runDesign({ ...spec, ...d.override }, d.name, placementFree));
  const keyOf = (o: DesignOutcome) => `${o.refused ?? ""}|${o.folioDigest}|${o.swapDigest}`;
  const groups: string[][] = [];
  const keys: string[] = [];
  for (const o of outcomes) {
    const k = keyOf(o);
    const g = keys.indexOf(k);
    if (g >= 0) groups[g].push(o.design);
    else {
      keys.push(k);
      groups.push([o.design]);
    }
  }
  const differsIn: ("folio" | "swap" | "refusal")[] = [];
  const first = outcomes[0];
  if (outcomes.some((o) => o.refused !== first.refused)) differsIn.push("refusal");
  if (outcomes.some((o) => o.folioDigest !== first.folioDigest)) differsIn.push("folio");
  if (outcomes.some((o) => o.swapDigest !== first.swapDigest)) differsIn.push("swap");
  const agree = groups.length === 1;
  const silent = outcomes.every(
    (o) => o.violations.length === 0 && o.problems.length === 0 && o.error === null,
  );
  const refused = outcomes.every((o) => o.refused !== null);
  return {
    outcomes,
    groups,
    agree,
    agreementRequired,
    passed: (agree || !agreementRequired) && (silent || (refused && agree)),
    differsIn,
    silent,
    refused,
    features: caseFeatures(spec),
  };
}

function runDesign(spec: ScenarioSpec, design: string, placementFree: boolean): DesignOutcome {
  const b = buildScenario(spec);
  let violations: readonly Violation[] = [];
  let problems: readonly string[] = [];
  let refused: string | null = null;
  let error: string | null = null;
  try {
    const r = runBuilt(b, spec);
    violations = r.violations;
    problems = r.finalState.problems;
  } catch (e) {
    if (isTeardownError(e) && (e.code === "EINVAL" || e.code === "ENOMEM")) refused = e.message;
    else error = e instanceof Error ? e.message : String(e);
  }
  const mem = b.machine.mem;
  const swap = b.machine.swap;
  mem.lruAddDrain();
  const exact = mem.stateDigest(DIGEST_IGNORED_FLAGS);
  return {
    design,
    checked: b.machine.checker !== null,
    violations,
    problems,
    refused,
    error,
    comparison: placementFree ? "placement-free" : "exact",
    folioDigest: placementFree ? placementFreeFolioDigest(mem) : exact,
    swapDigest: swap === null ? "" : placementFree ? placementFreeSwapDigest(swap) : swap.stateDigest(),
    ignoredFlagsSet: mem.stateDigest() !== exact,
  };
}

/** FNV-style 64-bit digest of a list of numbers, as hex. */
class Digest {
  private h1 = 0x811c9dc5;
  private h2 = 0x9e3779b9;
  mix(v: number): void {
    this.h1 = Math.imul(this.h1 ^ v, 0x01000193);
    this.h2 = Math.imul(this.h2 ^ v, 0x85ebca6b) ^ (this.h2 >>> 13);
  }
  hex(): string {
    return (this.h1 >>> 0).toString(16).padStart(8, "0") + (this.h2 >>> 0).toString(16).padStart(8, "0");
  }
}

const F_TAIL = 1 << 13;
const F_FREE = 1 << 14;
const ORDER_SHIFT = 16;
const ORDER_MASK = 0xf;

/** The folio state without page frame numbers (see DIGEST_IGNORED_FLAGS). */
function placementFreeFolioDigest(mem: PhysMem): string {
  const s = folioState(mem);
  const keep = ~DIGEST_IGNORED_FLAGS;
  const folios: string[] = [];
  let free = 0;
  for (let pfn = 0; pfn < s.nrPages; pfn++) {
    const f = s.flags[pfn];
    if ((f & F_FREE) !== 0) {
      free++;
      continue;
    }
    if ((f & F_TAIL) !== 0) continue;
    const nr = 1 << ((f >>> ORDER_SHIFT) & ORDER_MASK);
    let d = `${f & keep} ${s.refcount[pfn]} ${s.mapping[pfn]} ${s.index[pfn]} ${s.priv[pfn]} ${s.mapcount[pfn]}`;
    for (let i = 1; i < nr; i++) d += `,${s.mapcount[pfn + i]}`;
    folios.push(d);
  }
  folios.sort();
  const h = new Digest();
  h.mix(free);
  for (const d of folios) for (let i = 0; i < d.length; i++) h.mix(d.charCodeAt(i));
  for (let i = 0; i < s.stats.length; i++) h.mix(s.stats[i]);
  for (let i = 0; i < s.nrLruvecs; i++) {
    h.mix(s.lruFolios[i]);
    h.mix(s.lruPages[i]);
  }
  for (let i = 0; i < s.nrMemcgs; i++) h.mix(s.splitQueueLen[i]);
  h.mix(s.lruBatchNr);
  for (let id = 0; id < s.spaces.length; id++) {
    const entries = [...s.spaces[id].folios].sort((a, b) => a[0] - b[0]);
    h.mix(entries.length);
    for (const [index, head] of entries) {
      h.mix(index);
      h.mix((s.flags[head] >>> ORDER_SHIFT) & ORDER_MASK);
    }
  }
  return h.hex();
}

/** The swap state without page frame numbers: each slot's swap_map byte and whether it is cached. */
function placementFreeSwapDigest(swap: SwapSpace): string {
  const h = new Digest();
  for (let type = 0; type < swap.nrDevices; type++) {
    // A device swapoff has finished with is gone, its swap_map freed.
    const state = swap.swapoffState(type);
    h.mix(state);
    if (state === SWAP_FREED) continue;
    // totalSlots leaves out each device's header slot (offset 0).
    for (let offset = 1; offset <= swap.totalSlots; offset++) {
      const e = swpEntry(type, offset);
      h.mix(swap.swapMapValue(e));
      h.mix(swap.swapCacheFolio(e) >= 0 ? 1 : 0);
    }
  }
  return h.hex();
}

/** The knobs a case's tally counts (see `caseFeatures`). */
export const CASE_KNOBS = [
  "noCpus",
  "lazyCpus",
  "gupFast",
  "devices",
  "kvm",
  "fork",
  "childTarget",
  "exitedChildren",
  "mlock",
  "splitAt",
  "pfnmap",
  "zeroPage",
  "hugeZero",
  "largeFolios",
  "pmdMapped",
  "swap",
  "swapCache",
  "swapDevice",
  "dirty",
  "sparse",
  "sharedFraction",
  "partialRange",
  "smallTlb",
  "partialTouch",
] as const;
/** One of CASE_KNOBS. */
export type CaseKnob = (typeof CASE_KNOBS)[number];

/** Which actor, arch, operation and knobs a case has, for a tally. */
export interface CaseFeatures {
  /** The arch adapter's name. */
  readonly arch: string;
  /** `op.kind`. */
  readonly op: TeardownOp;
  /** `concurrentOp.kind`, or "none". */
  readonly actor: string;
  /** The knobs set, in CASE_KNOBS order. */
  readonly knobs: readonly CaseKnob[];
}

function ordersOf(p: FolioPolicy | undefined): number[] {
  if (p === undefined) return [0];
  return "order" in p ? [p.order] : p.mix.map((m) => m.order);
}

/**
 * The features of a spec: `noCpus` no CPU (and so no checker), `lazyCpus` / `gupFast` / `devices` /
 * `exitedChildren` more than 0, `fork`, `childTarget` the forked child torn down, `mlock` / `splitAt` /
 * `pfnmap` a VMA that has it, `zeroPage` read faults of an anon VMA, `hugeZero` read faults of a PMD-mapped
 * anon VMA with PMD-sized folios (the huge zero folio), `largeFolios` a folio order above 0, `pmdMapped`
 * PMD-mapped PMD-sized folios, `swap` swap-out, `swapCache` swapped folios kept in the swap cache,
 * `swapDevice` a swap device, `dirty` dirtied file / shmem pages, `sparse` populate below 1,
 * `sharedFraction` a forked child that dropped part of a VMA, `partialRange` an operation's range that
 * is not its whole VMA, `smallTlb` fewer than 2048 TLB entries, `partialTouch` touch below 1.
 */
export function caseFeatures(spec: ScenarioSpec): CaseFeatures {
  const arch = spec.arch ?? genericArch;
  const pmdOrder = arch.geometry.pmdOrder;
  const vmas = spec.vmas;
  const some = (f: (v: VmaSpec) => boolean) => vmas.some(f);
  const pmdSized = (v: VmaSpec) => v.pmdMapped === true && ordersOf(v.folio).includes(pmdOrder);
  const partial = (op: OpSpec | ConcurrentOpSpec | undefined): boolean => {
    if (op === undefined || op.kind === "exit" || op.kind === "swapoff") return false;
    const v = vmas[op.vma ?? 0];
    return v !== undefined && ((op.offset ?? 0) > 0 || (op.length ?? v.size) < v.size - (op.offset ?? 0));
  };
  const has: Record<CaseKnob, boolean> = {
    noCpus: (spec.cpus ?? 0) === 0,
    lazyCpus: (spec.lazyCpus ?? 0) > 0,
    gupFast: (spec.gupFast ?? 0) > 0,
    devices: (spec.devices ?? 0) > 0,
    kvm: spec.kvm === true,
    fork: spec.fork === true,
    childTarget: spec.fork === true && spec.target === "child",
    exitedChildren: (spec.exitedChildren ?? 0) > 0,
    mlock: some((v) => v.mlock === true),
    splitAt: some((v) => v.splitAt !== undefined),
    pfnmap: some((v) => v.kind === "pfnmap"),
    zeroPage: some((v) => (v.readFraction ?? 0) > 0),
    hugeZero: some((v) => (v.readFraction ?? 0) > 0 && pmdSized(v)),
    largeFolios: some((v) => ordersOf(v.folio).some((o) => o > 0)),
    pmdMapped: some(pmdSized),
    swap: some((v) => (v.swapFraction ?? 0) > 0),
    swapCache: some((v) => (v.swapFraction ?? 0) > 0 && v.keepInSwapCache === true),
    swapDevice: (spec.swap ?? 0) > 0,
    dirty: some((v) => (v.dirtyFraction ?? 0) > 0),
    sparse: some((v) => (v.populate ?? 1) < 1),
    sharedFraction: spec.fork === true && some((v) => (v.sharedFraction ?? 1) < 1),
    partialRange: partial(spec.op) || partial(spec.concurrentOp),
    smallTlb: (spec.tlbEntries ?? 2048) < 2048,
    partialTouch: (spec.touch ?? 1) < 1,
  };
  return {
    arch: arch.name,
    op: spec.op.kind,
    actor: spec.concurrentOp?.kind ?? "none",
    knobs: CASE_KNOBS.filter((k) => has[k]),
  };
}

/**
 * A thread that runs concurrently with the operation (`ScenarioSpec.concurrentOp`), as the generator
 * draws it: one entry of CONCURRENT_ACTORS each. Adding an actor to the model and to this table is all
 * `randomScenario` needs to draw it.
 */
export interface ConcurrentActor {
  /** `ConcurrentOpSpec.kind`. */
  readonly kind: ConcurrentOpSpec["kind"];
  /** It may run next to exit too (a kernel thread, not a thread of the mm); else only next to munmap / madvise. */
  readonly besideExit: boolean;
  /** The VMA kinds its range may lie in; null when it takes no range (swapoff: the whole device). */
  readonly vmaKinds: readonly VmaKind[] | null;
  /** The kernel refuses it on a VM_LOCKED VMA (MADV_DONTNEED: -EINVAL), so its VMA is never mlocked. */
  readonly refusesLocked: boolean;
  /**
   * What gives it work: dirty page cache in its VMA (`dirty`), PMD-mapped THPs there (`pmd`), PTE-mapped
   * file THPs there (`pteThp`), swapped-out anon pages anywhere (`swap`). The generator makes sure the
   * case has it.
   */
  readonly wants: {
    readonly dirty?: boolean;
    readonly pmd?: boolean;
    readonly swap?: boolean;
    /** A KVM guest on the mm (`ScenarioSpec.kvm`). */
    readonly kvm?: boolean;
    /**
     * PMD-sized folios mapped by PTEs in its VMA, of shmem or of a file nobody writes (what khugepaged
     * collapses): no PMD mapping there, no dirty file pages.
     */
    readonly pteThp?: boolean;
  };
  /**
   * File VMAs stay PTE-mapped next to it: v6.18's zap_huge_pmd removes a dirty file PMD's rmap before
   * its TLB flush, a window of the kernel (not of a design) that writeback turns into a lost write and
   * that writeback's own tests report on purpose; the differential run is about the designs.
   */
  readonly filePmdRace?: boolean;
  /**
   * It allocates memory while the teardown frees (swapoff reads pages in): the designs' states are then
   * compared placement-free (see DIGEST_IGNORED_FLAGS).
   */
  readonly allocates: boolean;
  /**
   * What it leaves behind depends on where the teardown is when it looks (migration puts a folio back,
   * -EAGAIN, while a gather still holds a page of it, and moves it otherwise). The designs take different
   * steps, so the same seed interleaves them differently: their final states may differ without either
   * being wrong. Such a case must be silent; agreement is reported, not required.
   */
  readonly outcomeRaces?: boolean;
}

const DATA_KINDS: readonly VmaKind[] = ["anon", "file-shared", "file-private", "shmem"];
const ALL_KINDS: readonly VmaKind[] = [...DATA_KINDS, "pfnmap"];

/** The concurrent actors `randomScenario` draws from (and "none", as often as each of them). */
export const CONCURRENT_ACTORS: readonly ConcurrentActor[] = Object.freeze([
  {
    kind: "munmap",
    besideExit: false,
    vmaKinds: ALL_KINDS,
    refusesLocked: false,
    wants: {},
    allocates: false,
  },
  // madvise_dontneed_free_valid_vma: -EINVAL on VM_LOCKED and VM_PFNMAP.
  {
    kind: "madvise",
    besideExit: false,
    vmaKinds: DATA_KINDS,
    refusesLocked: true,
    wants: {},
    allocates: false,
  },
  {
    kind: "writeback",
    besideExit: true,
    vmaKinds: ["file-shared", "file-private"],
    refusesLocked: false,
    wants: { dirty: true },
    allocates: false,
    filePmdRace: true,
  },
  {
    kind: "swapoff",
    besideExit: true,
    vmaKinds: null,
    refusesLocked: false,
    wants: { swap: true },
    allocates: true,
  },
  {
    kind: "revoke",
    besideExit: true,
    vmaKinds: ["pfnmap"],
    refusesLocked: false,
    wants: {},
    allocates: false,
  },
  // task_numa_work runs in a thread of the mm: not next to exit.
  {
    kind: "numa",
    besideExit: false,
    vmaKinds: DATA_KINDS,
    refusesLocked: false,
    wants: { pmd: true },
    allocates: false,
  },
  // migrate_pages(2) from another task: anon folios, next to any op; it allocates the new folios.
  {
    kind: "migrate",
    besideExit: true,
    vmaKinds: ["anon"],
    refusesLocked: false,
    wants: {},
    allocates: true,
    outcomeRaces: true,
  },
  // A vCPU is a thread of the process: not next to exit; it needs the KVM guest.
  {
    kind: "kvm-fault",
    besideExit: false,
    vmaKinds: DATA_KINDS,
    refusesLocked: false,
    wants: { kvm: true },
    allocates: false,
  },
  // khugepaged is a kernel thread (next to any op): it retracts the page tables of PTE-mapped file THPs.
  {
    kind: "khugepaged",
    besideExit: true,
    vmaKinds: ["file-shared", "file-private", "shmem"],
    refusesLocked: false,
    wants: { pteThp: true },
    allocates: false,
  },
] satisfies ConcurrentActor[]);

/** Options of `randomScenario`. */
export interface RandomScenarioOptions {
  /** Arch adapters to draw from (default: the generic one). */
  readonly arches?: readonly ArchTlb[];
  /** Concurrent actors to draw from (default CONCURRENT_ACTORS). */
  readonly actors?: readonly ConcurrentActor[];
}

/** murmur3's 32-bit finaliser over (seed, index): the case's own seed. */
function caseSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A fraction in [lo, hi] with two decimals (specs stay readable when printed). */
function frac(rng: Rng, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.round((lo + rng.next() * (hi - lo)) * 100) / 100));
}

const MiB = 1 << 20;
const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

/**
 * The workload of case `index` of a run seeded `seed`: a valid ScenarioSpec (without `variant`: every
 * design runs it) drawn from the arches and actors of `options`. The same (seed, index, options) always
 * gives the same spec, whatever other cases are drawn. VMAs are one to three PMD tables' span (some a
 * few pages short), so a case runs in milliseconds.
 */
export function randomScenario(
  seed: number,
  index: number,
  options: RandomScenarioOptions = {},
): ScenarioSpec {
  const bad = (msg: string): never => {
    throw new TeardownError("BAD_SPEC", "differential", "randomScenario", msg);
  };
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    bad(`seed must be an integer in [0, 2^32), got ${seed}`);
  if (!Number.isInteger(index) || index < 0 || index > 0x7fffffff)
    bad(`index must be an integer in [0, 2^31), got ${index}`);
  const arches = options.arches ?? [genericArch];
  const actors = options.actors ?? CONCURRENT_ACTORS;
  if (arches.length === 0) bad("options.arches is empty");
  const rng = createRng(caseSeed(seed, index));
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];

  const arch = pick(arches);
  const geo = arch.geometry;
  const pageSize = 2 ** geo.pageShift;
  const ptrs = geo.ptrsPerPte;
  const pmdOrder = geo.pmdOrder;

  const a = rng.int(actors.length + 1);
  const actor = a === 0 ? null : actors[a - 1];
  const op: TeardownOp = pick(
    actor === null || actor.besideExit ? ["exit", "munmap", "madvise"] : ["munmap", "madvise"],
  );

  // VMA kinds first (what the actor and the operation need decides some), then each VMA's fields.
  const kinds: VmaKind[] = [];
  const nVmas = 1 + rng.int(3);
  for (let i = 0; i < nVmas; i++)
    kinds.push(pick(["anon", "anon", "file-shared", "file-private", "shmem", "pfnmap"] as const));
  /** An index whose kind is one of `allowed`: an existing one, else one changed (not in `keep`), else a new one. */
  const placeIn = (allowed: readonly VmaKind[], keep: readonly number[]): number => {
    const fit = kinds.flatMap((k, i) => (allowed.includes(k) ? [i] : []));
    if (fit.length > 0) return pick(fit);
    const free = kinds.flatMap((_, i) => (keep.includes(i) ? [] : [i]));
    const i = free.length > 0 ? pick(free) : kinds.length;
    kinds[i] = pick(allowed);
    return i;
  };
  const actorVma = actor !== null && actor.vmaKinds !== null ? placeIn(actor.vmaKinds, []) : -1;
  const swapVma = actor?.wants.swap === true ? placeIn(["anon"], actorVma < 0 ? [] : [actorVma]) : -1;
  const keep = [actorVma, swapVma].filter((i) => i >= 0);
  const opVma = op === "exit" ? -1 : op === "madvise" ? placeIn(DATA_KINDS, keep) : rng.int(kinds.length);
  const unlockable = new Set<number>();
  if (op === "madvise") unlockable.add(opVma);
  if (actor?.refusesLocked === true) unlockable.add(actorVma);

  // Reclaim never swaps out mlocked folios: a process either swaps or mlocks its anon memory.
  const swapping = swapVma >= 0 || rng.next() < 0.35;
  const fork = rng.next() < 0.3;
  const vmas: VmaSpec[] = kinds.map((kind, i) => {
    let pages = (1 + rng.int(3)) * ptrs;
    if (rng.next() < 0.2) pages -= 1 + rng.int(ptrs - 1); // the last PTE table only partly used
    const size = pages * pageSize;
    const v: { -readonly [K in keyof VmaSpec]: VmaSpec[K] } = { kind, size };
    if (kind !== "pfnmap") {
      const anon = kind === "anon";
      const wantPmd = i === actorVma && actor?.wants.pmd === true;
      const wantPteThp = i === actorVma && actor?.wants.pteThp === true;
      const large =
        wantPmd || wantPteThp ? pmdOrder : pick(anon ? [0, 2, 4, pmdOrder] : [0, 1, 2, 4, pmdOrder]);
      if (large > 0)
        v.folio =
          rng.next() < 0.3
            ? { order: large }
            : {
                mix: [
                  { order: 0, weight: 1 },
                  { order: large, weight: 2 },
                ],
              };
      const pmdOk = anon || actor?.filePmdRace !== true;
      if (wantPmd || (large === pmdOrder && pmdOk && !wantPteThp && rng.next() < 0.6)) v.pmdMapped = true;
      if (!anon) {
        const wantDirty = i === actorVma && actor?.wants.dirty === true;
        if (wantDirty) v.dirtyFraction = frac(rng, 0.3, 1);
        else if (wantPteThp && kind !== "shmem") {
          // CONFIG_READ_ONLY_THP_FOR_FS: a file nobody writes.
        } else if (rng.next() < 0.5) v.dirtyFraction = frac(rng, 0.01, 1);
      } else {
        if (swapping && (i === swapVma || rng.next() < 0.6)) {
          v.swapFraction = frac(rng, 0.05, 0.5);
          if (rng.next() < 0.5) v.keepInSwapCache = true;
        }
        // Read faults: the zero page, and the huge zero folio where a PMD-sized folio is PMD-mapped.
        if (rng.next() < (v.pmdMapped === true ? 0.4 : 0.2)) v.readFraction = frac(rng, 0.1, 1);
      }
      if (rng.next() < 0.15) v.populate = frac(rng, 0.3, 0.95);
      if (!unlockable.has(i) && !(anon && swapping) && rng.next() < 0.15) v.mlock = true;
      if (fork && (anon || kind === "file-private") && rng.next() < 0.3)
        v.sharedFraction = frac(rng, 0, 0.95);
    }
    if (pages > 1 && rng.next() < 0.25) v.splitAt = (1 + rng.int(pages - 1)) * pageSize;
    return v;
  });

  /** munmap / madvise / a concurrent actor's range inside VMA `vi`: whole (a third of the time) or part. */
  const rangeIn = (vi: number): { vma: number; offset?: number; length?: number } => {
    if (rng.next() < 0.33) return { vma: vi };
    const pages = vmas[vi].size / pageSize;
    const offset = rng.int(pages);
    const length = 1 + rng.int(pages - offset);
    return { vma: vi, offset: offset * pageSize, length: length * pageSize };
  };
  const opSpec: OpSpec = op === "exit" ? { kind: "exit" } : { kind: op, ...rangeIn(opVma) };
  const concurrentOp: ConcurrentOpSpec | undefined =
    actor === null
      ? undefined
      : actor.vmaKinds === null
        ? { kind: actor.kind }
        : // khugepaged works on whole PMD-sized ranges: give it the whole VMA more often.
          actor.wants.pteThp === true && rng.next() < 0.5
          ? { kind: actor.kind, vma: actorVma }
          : { kind: actor.kind, ...rangeIn(actorVma) };

  // CPUs: 0 (no checker) only without a second thread; CPU 0 runs the op, CPU 1 the concurrent one.
  const cpus = actor === null ? rng.int(6) : 1 + rng.int(5);
  const first = actor === null ? 1 : 2;
  const maxLazy = Math.max(0, cpus - first);
  const lazyCpus = maxLazy > 0 && rng.next() < 0.4 ? 1 + rng.int(maxLazy) : 0;
  const maxGup = op === "exit" ? 0 : Math.max(0, cpus - lazyCpus - first);
  const gupFast = maxGup > 0 && rng.next() < 0.5 ? 1 + rng.int(maxGup) : 0;
  const devices = cpus > 0 && arch.invalidatesSecondaryTlbs && rng.next() < 0.35 ? 1 + rng.int(2) : 0;
  // A KVM guest behind the mmu notifiers (always for a vCPU fault).
  const kvm = cpus > 0 && (actor?.wants.kvm === true || rng.next() < 0.2);

  // Memory as the scenario files' automatic rule, with room to spare; swap for every anon page.
  let data = 0;
  let anonBytes = 0;
  for (const v of vmas) {
    data += v.size * (1 + (v.kind === "file-private" ? (v.dirtyFraction ?? 0) : 0));
    if (v.kind === "anon") anonBytes += v.size;
  }
  const memory = roundUp((data * 3) / 2 + 32 * MiB, 2 * MiB);
  const swap = swapping
    ? roundUp(anonBytes + 4 * MiB, 2 * MiB)
    : rng.next() < 0.2
      ? 4 * MiB // a swap device nothing was swapped out to
      : 0;

  const spec: { -readonly [K in keyof ScenarioSpec]: ScenarioSpec[K] } = {
    memory,
    arch,
    seed: rng.int(0x100000000),
    vmas,
    op: opSpec,
  };
  if (swap > 0) spec.swap = swap;
  if (cpus > 0) spec.cpus = cpus;
  if (lazyCpus > 0) spec.lazyCpus = lazyCpus;
  if (gupFast > 0) spec.gupFast = gupFast;
  if (devices > 0) spec.devices = devices;
  if (kvm) spec.kvm = true;
  if (fork) {
    spec.fork = true;
    if (rng.next() < 0.3) spec.target = "child";
  }
  if (rng.next() < 0.15) spec.exitedChildren = 1 + rng.int(2);
  if (cpus > 0 && rng.next() < 0.15) spec.tlbEntries = 64;
  if (cpus > 0 && rng.next() < 0.2) spec.touch = frac(rng, 0, 0.9);
  if (concurrentOp !== undefined) spec.concurrentOp = concurrentOp;
  return spec;
}
