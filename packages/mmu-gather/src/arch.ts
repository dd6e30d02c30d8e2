// Models: include/asm-generic/tlb.h (the #ifndef defaults and #error checks) and the hook points an
// arch/<arch>/include/asm/tlb.h overrides. Omits: MMU_GATHER_NO_RANGE, MMU_GATHER_PAGE_SIZE, hugetlb unsharing.
//
// ORDERING INVARIANT (the contract every adapter keeps):
//
//     1. unhook page          (clear the PTE / unhook the table)
//     2. TLB invalidate page  (tlbFlush, or pteClear when the arch invalidates at clear time: s390 IPTE)
//     3. free page            (only after every CPU's translation to it is gone)
//
// A dirty shared file page additionally keeps its rmap until step 2 is done and before the PTL is
// dropped (delayed rmap). Page-table pages are freed only after the walk caches are invalidated and,
// with RCU table free, after a grace period.
//
// HOOKS (each receives a read-only GatherView and TlbOps; never the engine):
//
//   pteClear(tlb, addr, nr, ops)   TLB side effect of clearing nr PTEs.
//                                  may read: fullmm, mm.        default: nothing (asm-generic)
//   tlbFlush(tlb, ops)             `tlb_flush()`: invalidate what was recorded; called only when a
//                                  cleared_* bit or freed_tables is set.
//                                  may read: start, end, fullmm, needFlushAll, freedTables, cleared*,
//                                  vmaExec, vmaHuge, mm, cpu (the initiating CPU), flushReason
//                                  (why: endVma, batchFull, dirtyShared, tableFree, nested, finish,
//                                  caller).
//                                  An empty range (end 0, not fullmm) means nothing to invalidate by
//                                  address.                      default: genericTlbFlush
//   tableFreed(tlb, level, ops)    arch part of pte/pmd/pud/p4d_free_tlb after the generic range update.
//                                  may read: fullmm, mm.        default: nothing
//
// PTE-AWARE HOOKS (optional; null keeps every fast path of an arch that never looks at PTE values):
//
//   setPtes(ptes, index, nr, ops)  arch side of set_ptes() once the caller wrote nr entries (arm64
//                                  contpte_set_ptes / contpte_try_fold).          default: null
//   clearPtes(tlb, ptes, index, nr, ops)
//                                  arch side of [get_and_]clear_full_ptes before the caller clears nr
//                                  entries (arm64 contpte_try_unfold_partial). Through
//                                  MmuGather.clearFullPtes; turns the fused zap path off.
//                                  may read: fullmm, mm.        default: null
//   The hooks see a PteTableView: the table's entries in the caller's encoding, with pte_t helpers.
//   contPte (ContPteInfo | null) tells the page-table owner the arch maps contiguous blocks (CONT_PTES
//   entries under one TLB entry); an arch with it must have both hooks.
//
// CAPABILITIES (named flags, checked by defineArch like the kernel's #error):
//   noGather   MMU_GATHER_NO_GATHER     free pages on queue; the queue is never full.
//   mergeVmas  MMU_GATHER_MERGE_VMAS    no flush at tlb_end_vma.
//   delayRmap  tlb_delay_rmap()         dirty file rmaps removed after the flush (6.5, 7.x).
//   batchRmap  tlb_batch_rmap()         every rmap removed at tlb_flush_rmaps (the series).
//   tableFree  "rcu" | "direct"         MMU_GATHER_RCU_TABLE_FREE or free after the flush.
//   tlbFlushIpi                         range / mm flushes interrupt the remote CPUs (x86 IPIs), so they
//                                       wait out gup_fast walks; false for broadcast invalidation.
//   flushSkipsLazyCpus                  a flush that freed no table leaves lazy-TLB CPUs out (x86's
//                                       should_flush_tlb), for the actors that flush outside a gather.
//   tlbBatch                            CONFIG_ARCH_WANT_BATCHED_UNMAP_TLB_FLUSH: how rmap walks that
//                                       unmap (migration) defer their flushes (TlbBatchInfo), or null.
//   invalidatesSecondaryTlbs            tlbFlush also calls ops.invalidateSecondaryTlbs for what it
//                                       invalidated (mmu_notifier_arch_invalidate_secondary_tlbs, from
//                                       the arch flush since v6.6): devices sharing the page tables.

import { TLB_FLUSH_ALL } from "./constants.js";
import { ArchConfigError } from "./errors.js";
import type {
  ArchConfigErrorCode,
  ArchGeometry,
  ArchOverrides,
  ArchTlb,
  CostProfile,
  GatherView,
  TlbLevel,
  TlbOps,
} from "./types.js";

/** x86-64 geometry with 4 KiB pages (the asm-generic default here). */
export const defaultGeometry: ArchGeometry = {
  pageShift: 12,
  ptrsPerPte: 512,
  pmdOrder: 9,
  ptrsPerPmd: 512,
  ptrsPerPud: 512,
  ptrsPerPgd: 512,
  taskSize: 2 ** 47 - 2 ** 12,
};

/**
 * Default cost profile: the documented priors for a ~2.4–3.2 GHz x86-64 server core, in ns, from
 * public micro-benchmark orders of magnitude (uncontended locked RMW on an L1 line ~5–20 ns; spinlock
 * round trip ~20–40 ns; L2/L3 line fill ~10–40 ns; INVLPG ~50–200 ns; an IPI-based remote shootdown
 * ~1–3 µs; an IOMMU invalidation with its completion wait ~1–5 µs). INVLPGB and TLBSYNC (AMD broadcast
 * invalidation, which no calibrated machine here has) are priors with nothing published to fit them to:
 * an INVLPGB is issued like an INVLPG and completes asynchronously (~100 ns, the per-INVLPG figure
 * arch/x86/mm/tlb.c quotes for its 33-entry ceiling), a TLBSYNC waits for every CPU to finish them (~1 µs,
 * below an IPI round trip: no interrupt entry, no remote handler).
 * The arm64 TLBI terms, which only an
 * arm64 adapter counts, are priors for issuing one broadcast TLBI (~10–30 ns by address; a range TLBI
 * costed at twice that, being one DVM message that every receiver turns into a walk of its TLB). Uncalibrated: the calibrated
 * profiles (`x86-64-4210r`, `arm64-altra`) start from these values and fit a few terms to published
 * measurements (`teardown-lab calibrate`).
 */
export const defaultCost: CostProfile = {
  name: "default-priors",
  source: "documented priors (order-of-magnitude micro-benchmark figures), not fitted",
  // Unfitted: an order-of-magnitude prior per primitive can misjudge a design-to-design ratio by half
  // (a term twice or half its real cost that dominates one design and not the other).
  ratioError: 0.5,
  pteClear: 4,
  zapIteration: 4,
  pteTable: 40,
  ptlLock: 20,
  atomic: 8,
  pageMapcount: 12,
  structPageLine: 1,
  statUpdate: 4,
  lruvecLock: 25,
  splitQueueLock: 30,
  pageCacheLock: 30,
  swapClusterLock: 25,
  swapDeviceLock: 30,
  lruDel: 8,
  deferredSplitCall: 2,
  munlock: 40,
  splitHugePmd: 600,
  folioPteBatch: 5,
  folioPteBatchPte: 1,
  vmaFree: 100,
  anonVmaUnlink: 150,
  fileVmaUnlink: 100,
  fput: 20,
  mmFree: 1000,
  markAccessed: 15,
  sharedMapcountDrop: 20,
  gatherEntry: 2,
  rmapCall: 4,
  batchAlloc: 200,
  swapCacheCheck: 1,
  swapCacheDelete: 60,
  swapEntryFree: 20,
  folioFree: 50,
  pageFree: 2,
  buddyMerge: 10,
  freeBatch: 100,
  pcpFree: 5,
  pcpLock: 10,
  zoneLock: 40,
  pcpBulkDrain: 50,
  memcgUncharge: 60,
  lruAddDrain: 50,
  flushMmu: 100,
  freeChunk: 50,
  tlbFlushRange: 300,
  tlbFlushRangeEntry: 60,
  tlbFlushMm: 500,
  tlbRemoteCpu: 2000,
  ipte: 150,
  idte: 1500,
  invlpgb: 100,
  tlbsync: 1000,
  tlbiVa: 20,
  tlbiRange: 40,
  contpteConvertPte: 9,
  tableFree: 100,
  rcuCall: 50,
  tableSyncOne: 3000,
  secondaryTlbInvalidate: 3000,
};

/** No TLB effect at PTE clear: the invalidation waits for the flush (asm-generic). */
export function genericPteClear(_tlb: GatherView, _addr: number, _nr: number, _ops: TlbOps): void {}

/** No arch work on table free beyond the generic range update. */
export function genericTableFreed(_tlb: GatherView, _level: TlbLevel, _ops: TlbOps): void {}

/**
 * `tlb_get_unmap_shift`: the flush stride from the smallest level that had entries cleared.
 */
export function tlbGetUnmapShift(tlb: GatherView, geometry: ArchGeometry): number {
  const pmdShift = geometry.pageShift + Math.log2(geometry.ptrsPerPte);
  const pudShift = pmdShift + Math.log2(geometry.ptrsPerPmd);
  const p4dShift = pudShift + Math.log2(geometry.ptrsPerPud);
  if (tlb.clearedPtes) return geometry.pageShift;
  if (tlb.clearedPmds) return pmdShift;
  if (tlb.clearedPuds) return pudShift;
  if (tlb.clearedP4ds) return p4dShift;
  return geometry.pageShift;
}

/**
 * Build the asm-generic / x86 `tlb_flush`: fullmm or need_flush_all → whole mm; otherwise the
 * recorded range with the unmap stride, promoted to a whole-mm flush above `ceiling` entries
 * (x86 `flush_tlb_mm_range`, ceiling 0 = never). Walk caches are flushed iff `freedTables`. Then, as
 * x86 `flush_tlb_mm_range` of v6.18 ends, the secondary TLBs: [0, TLB_FLUSH_ALL) for a whole-mm flush,
 * the recorded range otherwise — also above the ceiling: since v6.15 (4a02ed8e1cc3, "x86/mm:
 * Consolidate full flush threshold decision") the promotion lives in get_flush_tlb_info and the
 * devices get the range asked for; v6.6 to v6.14 told them [0, TLB_FLUSH_ALL) then.
 */
export function makeGenericTlbFlush(
  geometry: ArchGeometry,
  ceiling: number,
): (tlb: GatherView, ops: TlbOps) => void {
  return (tlb, ops) => {
    if (tlb.fullmm || tlb.needFlushAll) {
      ops.flushMm(tlb.freedTables);
      ops.invalidateSecondaryTlbs(0, TLB_FLUSH_ALL);
      return;
    }
    if (tlb.end === 0) return;
    const shift = tlbGetUnmapShift(tlb, geometry);
    const stride = 2 ** shift;
    const entries = Math.ceil((tlb.end - tlb.start) / stride);
    if (ceiling > 0 && entries > ceiling) ops.flushMm(tlb.freedTables);
    else ops.flushRange(tlb.start, tlb.end, stride, tlb.freedTables);
    // flush_tlb_mm_range's last step (v6.15+): the devices get the range asked for, even when the CPUs
    // got a whole-mm flush instead.
    ops.invalidateSecondaryTlbs(tlb.start, tlb.end);
  };
}

/**
 * `ops` with some operations replaced, for an adapter that reuses a flush (e.g. `genericArch.tlbFlush`)
 * but changes what one operation does — which CPUs it targets, what it tells the devices. The others
 * still reach the gather (its `TlbOps` are methods of one object, so they are bound, not copied).
 */
export function withTlbOps(ops: TlbOps, replace: Partial<TlbOps>): TlbOps {
  return {
    flushRange: (start, end, stride, walkCaches, cpus) =>
      ops.flushRange(start, end, stride, walkCaches, cpus),
    flushMm: (walkCaches, cpus) => ops.flushMm(walkCaches, cpus),
    flushTlbFunc: (start, end, stride, walkCaches, cpus) =>
      ops.flushTlbFunc(start, end, stride, walkCaches, cpus),
    invlpgb: (start, end, stride, walkCaches) => ops.invlpgb(start, end, stride, walkCaches),
    tlbsync: () => ops.tlbsync(),
    ipte: (addr, nr) => ops.ipte(addr, nr),
    invalidateLazy: (nr) => ops.invalidateLazy(nr),
    idte: () => ops.idte(),
    setFlushMm: (value) => ops.setFlushMm(value),
    tlbiIssued: (vaOps, rangeOps) => ops.tlbiIssued(vaOps, rangeOps),
    tlbiLimitExcess: () => ops.tlbiLimitExcess(),
    contpteFold: (blocks) => ops.contpteFold(blocks),
    contpteConvert: (fold, ptes, vaOps, rangeOps) => ops.contpteConvert(fold, ptes, vaOps, rangeOps),
    contpteClear: (blocks) => ops.contpteClear(blocks),
    invalidateSecondaryTlbs: (start, end) => ops.invalidateSecondaryTlbs(start, end),
    ...replace,
  };
}

/** asm-generic `tlb_flush` on the default geometry without a ceiling. */
export const genericTlbFlush = makeGenericTlbFlush(defaultGeometry, 0);

/** The asm-generic defaults every `defineArch` call starts from (the `#ifndef` path). */
export const genericArchDefaults: Omit<ArchTlb, "name"> = {
  noGather: false,
  mergeVmas: false,
  delayRmap: true,
  batchRmap: true,
  tableFree: "rcu",
  tableInvalidate: true,
  invalidatesSecondaryTlbs: true,
  tlbFlushIpi: true,
  flushSkipsLazyCpus: false,
  fullFlushCeiling: 0,
  geometry: defaultGeometry,
  cost: defaultCost,
  pteClear: genericPteClear,
  tlbFlush: genericTlbFlush,
  tableFreed: genericTableFreed,
  contPte: null,
  setPtes: null,
  clearPtes: null,
  tlbBatch: null,
};

/** Refuses an impossible arch definition, as the kernel's `#error` does at build time. */
function refuse(code: ArchConfigErrorCode, name: string, message: string): never {
  throw new ArchConfigError(code, "arch", "defineArch", `arch "${name}": ${message}`);
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/**
 * Build an adapter: missing hooks/flags come from `genericArchDefaults`; impossible combinations
 * throw `ArchConfigError`. When geometry or ceiling change and no `tlbFlush` is given, the generic
 * flush is rebuilt for them.
 */
export function defineArch(overrides: ArchOverrides): ArchTlb {
  const name = overrides.name;
  const geometry: ArchGeometry = { ...defaultGeometry, ...overrides.geometry };
  const cost: CostProfile = { ...defaultCost, ...overrides.cost };
  const fullFlushCeiling = overrides.fullFlushCeiling ?? genericArchDefaults.fullFlushCeiling;
  const arch: ArchTlb = {
    ...genericArchDefaults,
    ...overrides,
    name,
    geometry,
    cost,
    fullFlushCeiling,
    tlbFlush: overrides.tlbFlush ?? makeGenericTlbFlush(geometry, fullFlushCeiling),
  };
  if (arch.noGather && arch.delayRmap)
    refuse(
      "NO_GATHER_WITH_DELAYED_RMAP",
      name,
      "MMU_GATHER_NO_GATHER frees pages at queue time, so their rmap cannot be removed after the flush",
    );
  if (arch.noGather && arch.batchRmap)
    refuse(
      "NO_GATHER_WITH_BATCHED_RMAP",
      name,
      "tlb_batch_rmap needs gathered pages; NO_GATHER frees them at once",
    );
  const g = geometry;
  if (
    !Number.isInteger(g.pageShift) ||
    g.pageShift < 12 ||
    g.pageShift > 16 ||
    !isPow2(g.ptrsPerPte) ||
    !isPow2(g.ptrsPerPmd) ||
    !isPow2(g.ptrsPerPud) ||
    !isPow2(g.ptrsPerPgd) ||
    !Number.isInteger(g.pmdOrder) ||
    g.pmdOrder < 1 ||
    2 ** g.pmdOrder !== g.ptrsPerPte ||
    !(g.taskSize > 0)
  )
    refuse(
      "BAD_GEOMETRY",
      name,
      `impossible geometry ${JSON.stringify(g)}: table sizes must be powers of two and PMD order = log2(ptrsPerPte)`,
    );
  if (typeof cost.name !== "string" || cost.name === "" || typeof cost.source !== "string")
    refuse("BAD_COST", name, "cost.name must be a non-empty string and cost.source a string");
  for (const [k, v] of Object.entries(cost))
    if (
      k !== "name" &&
      k !== "source" &&
      k !== "ratioError" &&
      (typeof v !== "number" || !Number.isFinite(v) || v < 0)
    )
      refuse("BAD_COST", name, `cost.${k} must be a finite number of ns >= 0`);
  if (typeof cost.ratioError !== "number" || !(cost.ratioError >= 0 && cost.ratioError <= 10))
    refuse("BAD_COST", name, "cost.ratioError must be a fraction in [0, 10] (0.2 = ratios within ±20 %)");
  if (!Number.isInteger(fullFlushCeiling) || fullFlushCeiling < 0)
    refuse("BAD_CEILING", name, "fullFlushCeiling must be an integer >= 0");
  for (const hook of ["pteClear", "tlbFlush", "tableFreed"] as const)
    if (typeof arch[hook] !== "function") refuse("BAD_HOOK", name, `${hook} must be a function`);
  for (const hook of ["setPtes", "clearPtes"] as const)
    if (arch[hook] !== null && typeof arch[hook] !== "function")
      refuse("BAD_HOOK", name, `${hook} must be a function or null`);
  const cp = arch.contPte;
  if (cp !== null) {
    if (
      typeof cp !== "object" ||
      !isPow2(cp.contPtes) ||
      cp.contPtes < 2 ||
      g.ptrsPerPte % cp.contPtes !== 0 ||
      typeof cp.bbml2NoAbort !== "boolean"
    )
      refuse(
        "BAD_GEOMETRY",
        name,
        `contPte ${JSON.stringify(cp)}: contPtes must be a power of two >= 2 dividing ptrsPerPte, bbml2NoAbort a boolean`,
      );
    if (arch.setPtes === null || arch.clearPtes === null)
      refuse(
        "BAD_HOOK",
        name,
        "an arch with contiguous PTE blocks must make them in setPtes and unfold them in clearPtes",
      );
  }
  const tb = arch.tlbBatch ?? null;
  if (
    tb !== null &&
    (typeof tb !== "object" ||
      (tb.shouldDefer !== "remoteCpus" && tb.shouldDefer !== "smp") ||
      typeof tb.nosync !== "boolean")
  )
    refuse(
      "BAD_OPTION",
      name,
      `tlbBatch ${JSON.stringify(tb)}: shouldDefer must be "remoteCpus" or "smp" and nosync a boolean, or tlbBatch null`,
    );
  return Object.freeze(arch);
}
