// Models: the time a kernel spends in one teardown, as Σ counter × cost-per-primitive. Each term
// multiplies one or more exact counters of the teardown report by one field of a `CostProfile` (ns).
// Omits: contention (the zone lock is costed uncontended), cache effects beyond the per-line terms,
// anything the counters do not count (pcp refills on allocation, 6.7+'s auto-tuned pcp high).
//
// No fudge: an estimate is only ever counters × profile — no per-scenario factor, no lookup of a
// published number. `estimateCost` is linear in every counter, and a test checks each term.
import type { CostProfile, CostTermName } from "@mmgather/mmu-gather";

/**
 * Where in the teardown a term's work is done, named after the kernel code that does it:
 * - `zap_pte_range`: the page-table walk — PTE clears, the PTL, folio_pte_batch, THP splits, gather slots;
 * - `rmap`: rmap removal and the folio counters it updates (mapcounts, statistics, deferred split, munlock);
 * - `tlb_flush`: TLB and walk-cache invalidation, remote CPUs, devices, and the `tlb_flush_mmu` calls;
 * - `free_pages`: freeing data folios — refcount puts, LRU, memcg, page cache, per-CPU lists, the buddy
 *   allocator, batch pages;
 * - `swap`: swap cache and swap entries;
 * - `free_pgtables`: page-table pages and their RCU batches;
 * - `vma`: VMA and mm teardown (remove_vma, anon_vma / file unlinks, fput, the mm itself).
 * A term whose counters span two phases (`atomic`: mapcount and refcount atomics) is placed where most
 * of its units arise in a teardown; its doc says so.
 */
export type CostPhase =
  | "zap_pte_range"
  | "rmap"
  | "tlb_flush"
  | "free_pages"
  | "swap"
  | "free_pgtables"
  | "vma";

/** One term of the cost model. */
export interface CostTerm {
  /** The `CostProfile` field (ns per unit). */
  readonly name: CostTermName;
  /** The part of the teardown its work belongs to (folded stacks and the breakdown group by it). */
  readonly phase: CostPhase;
  /** Flattened report counters ("layer.name") whose sum is the term's count. */
  readonly counters: readonly string[];
  /** What one unit of the count is. */
  readonly unit: string;
}

/** Every term, in report order. The README and `teardown-lab fidelity` list the same. */
export const COST_TERMS: readonly CostTerm[] = [
  {
    name: "pteClear",
    phase: "zap_pte_range",
    counters: ["walk.ptesCleared", "walk.swapPtesCleared"],
    unit: "PTE cleared",
  },
  {
    name: "zapIteration",
    phase: "zap_pte_range",
    counters: ["walk.presentBatches"],
    unit: "zap-loop iteration (run of present PTEs: vm_normal_page, page_folio, folio_test_* once per run)",
  },
  { name: "pteTable", phase: "zap_pte_range", counters: ["walk.pteTableVisits"], unit: "PTE table walked" },
  {
    name: "ptlLock",
    phase: "zap_pte_range",
    counters: ["teardown.ptlAcquisitions"],
    unit: "page-table-lock round trip",
  },
  {
    name: "atomic",
    phase: "rmap",
    counters: [
      "folio.refcountAtomics",
      "folio.nrPagesMappedAtomics",
      "folio.largeMapcountAtomics",
      "folio.entireMapcountAtomics",
    ],
    unit: "atomic RMW on a folio-level field (rmap's mapcounts and the puts' refcount: all placed under rmap)",
  },
  {
    name: "pageMapcount",
    phase: "rmap",
    counters: ["folio.mapcountAtomics"],
    unit: "per-page _mapcount atomic (first line touch)",
  },
  {
    name: "structPageLine",
    phase: "rmap",
    counters: ["folio.metadataLines"],
    unit: "struct page cache line touched",
  },
  { name: "statUpdate", phase: "rmap", counters: ["folio.statUpdates"], unit: "statistics update" },
  {
    name: "lruvecLock",
    phase: "free_pages",
    counters: ["folio.lruvecLockAcquisitions"],
    unit: "lruvec lock round trip",
  },
  {
    name: "splitQueueLock",
    phase: "rmap",
    counters: ["folio.splitQueueLockAcquisitions"],
    unit: "split_queue_lock round trip",
  },
  {
    name: "pageCacheLock",
    phase: "free_pages",
    counters: ["folio.pageCacheLockAcquisitions"],
    unit: "i_pages lock round trip",
  },
  {
    name: "swapClusterLock",
    phase: "swap",
    counters: ["swap.clusterLocks"],
    unit: "swap cluster lock round trip",
  },
  {
    name: "swapDeviceLock",
    phase: "swap",
    counters: ["swap.deviceLocks"],
    unit: "swap device lock round trip",
  },
  { name: "lruDel", phase: "free_pages", counters: ["folio.lruDels"], unit: "folio taken off an LRU list" },
  {
    name: "deferredSplitCall",
    phase: "rmap",
    counters: ["folio.deferredSplitCalls"],
    unit: "deferred_split_folio call",
  },
  { name: "munlock", phase: "rmap", counters: ["folio.munlockCalls"], unit: "munlock_folio call" },
  {
    name: "splitHugePmd",
    phase: "zap_pte_range",
    counters: ["walk.hugePmdsSplit"],
    unit: "huge PMD split into PTEs",
  },
  {
    name: "folioPteBatch",
    phase: "zap_pte_range",
    counters: ["walk.folioPteBatchCalls"],
    unit: "folio_pte_batch call",
  },
  {
    name: "folioPteBatchPte",
    phase: "zap_pte_range",
    counters: ["walk.folioPteBatchPtes"],
    unit: "PTE taken in by folio_pte_batch",
  },
  { name: "vmaFree", phase: "vma", counters: ["walk.vmasFreed"], unit: "VMA freed (remove_vma)" },
  {
    name: "anonVmaUnlink",
    phase: "vma",
    counters: ["walk.anonVmaUnlinks"],
    unit: "unlink_anon_vmas with an anon_vma",
  },
  { name: "fileVmaUnlink", phase: "vma", counters: ["walk.fileVmaUnlinks"], unit: "unlink_file_vma" },
  { name: "fput", phase: "vma", counters: ["walk.fputs"], unit: "fput of a file VMA" },
  { name: "mmFree", phase: "vma", counters: ["walk.mmsFreed"], unit: "mm_struct freed at exit" },
  {
    name: "sharedMapcountDrop",
    phase: "rmap",
    counters: ["folio.mapcountSharedDrops"],
    unit: "mapcount drop of a page still mapped elsewhere",
  },
  {
    name: "markAccessed",
    phase: "zap_pte_range",
    counters: ["walk.markAccessedCalls"],
    unit: "folio_mark_accessed call",
  },
  {
    name: "gatherEntry",
    phase: "zap_pte_range",
    counters: ["gather.entriesQueued"],
    unit: "gather batch slot written",
  },
  {
    name: "rmapCall",
    phase: "rmap",
    counters: ["gather.rmapCallsImmediate", "gather.rmapCallsDelayed"],
    unit: "rmap-removal call",
  },
  {
    name: "batchAlloc",
    phase: "free_pages",
    counters: ["gather.batchPagesAllocated", "gather.tableBatchAllocated"],
    unit: "batch page allocated",
  },
  {
    name: "swapCacheCheck",
    phase: "swap",
    counters: ["gather.freeSwapCacheCalls"],
    unit: "free_swap_cache check",
  },
  {
    name: "swapCacheDelete",
    phase: "swap",
    counters: ["swap.swapCacheDeletes"],
    unit: "folio removed from the swap cache",
  },
  {
    name: "swapEntryFree",
    phase: "swap",
    counters: ["swap.swapPutEntries"],
    unit: "swap-PTE reference dropped",
  },
  {
    name: "folioFree",
    phase: "free_pages",
    counters: ["folio.foliosFreed"],
    unit: "folio freed to the allocator",
  },
  {
    name: "pageFree",
    phase: "free_pages",
    counters: ["folio.pagesFreed"],
    unit: "page freed to the allocator",
  },
  { name: "buddyMerge", phase: "free_pages", counters: ["folio.buddyMerges"], unit: "buddy merge" },
  {
    name: "freeBatch",
    phase: "free_pages",
    counters: ["folio.freeListCalls"],
    unit: "free_unref_page_list / free_unref_folios call",
  },
  {
    name: "pcpFree",
    phase: "free_pages",
    counters: ["folio.pcpFrees"],
    unit: "folio put on a per-CPU page list",
  },
  {
    name: "pcpLock",
    phase: "free_pages",
    counters: ["folio.pcpLockAcquisitions"],
    unit: "free-side pcp lock round trip",
  },
  {
    name: "zoneLock",
    phase: "free_pages",
    counters: ["folio.zoneLockAcquisitions"],
    unit: "zone->lock round trip (free_one_page, pcp bulk drain)",
  },
  {
    name: "pcpBulkDrain",
    phase: "free_pages",
    counters: ["folio.pcpBulkDrains"],
    unit: "free_pcppages_bulk call",
  },
  {
    name: "memcgUncharge",
    phase: "free_pages",
    counters: ["folio.memcgUnchargeBatches"],
    unit: "memcg uncharge_batch",
  },
  {
    name: "lruAddDrain",
    phase: "free_pages",
    counters: ["folio.lruAddDrainCalls"],
    unit: "lru_add_drain call",
  },
  { name: "flushMmu", phase: "tlb_flush", counters: ["gather.flushMmuCalls"], unit: "tlb_flush_mmu call" },
  {
    name: "freeChunk",
    phase: "free_pages",
    counters: ["gather.chunksFreed"],
    unit: "≤ 512-entry free chunk (+ cond_resched)",
  },
  {
    name: "tlbFlushRange",
    phase: "tlb_flush",
    counters: ["gather.tlbFlushRange"],
    unit: "range TLB flush (local part)",
  },
  {
    name: "tlbFlushRangeEntry",
    phase: "tlb_flush",
    counters: ["gather.tlbFlushRangeEntries"],
    unit: "range-flush stride entry",
  },
  {
    name: "tlbFlushMm",
    phase: "tlb_flush",
    counters: ["gather.tlbFlushMm"],
    unit: "whole-mm TLB flush (local part)",
  },
  {
    name: "tlbRemoteCpu",
    phase: "tlb_flush",
    counters: ["cpu.remoteCpuFlushes"],
    unit: "remote CPU flushed (IPI / broadcast wait)",
  },
  { name: "ipte", phase: "tlb_flush", counters: ["gather.ipte"], unit: "s390 IPTE (one PTE)" },
  { name: "idte", phase: "tlb_flush", counters: ["gather.idte"], unit: "s390 IDTE" },
  {
    name: "invlpgb",
    phase: "tlb_flush",
    counters: ["gather.invlpgb"],
    unit: "x86 INVLPGB issued (broadcast, no IPI)",
  },
  {
    name: "tlbsync",
    phase: "tlb_flush",
    counters: ["gather.tlbsync"],
    unit: "x86 TLBSYNC (wait for the INVLPGBs everywhere)",
  },
  {
    name: "tlbiVa",
    phase: "tlb_flush",
    counters: ["gather.tlbiVaOps"],
    unit: "arm64 TLBI by address (VAE1IS / VALE1IS)",
  },
  {
    name: "tlbiRange",
    phase: "tlb_flush",
    counters: ["gather.tlbiRangeOps"],
    unit: "arm64 range TLBI (RVAE1IS / RVALE1IS)",
  },
  {
    name: "contpteConvertPte",
    phase: "zap_pte_range",
    counters: ["gather.contpteConvertedPtes"],
    unit: "PTE rewritten by arm64 contpte_convert (fold / unfold)",
  },
  {
    name: "tableFree",
    phase: "free_pgtables",
    counters: ["gather.tablesFreed"],
    unit: "page-table page freed",
  },
  {
    name: "rcuCall",
    phase: "free_pgtables",
    counters: ["gather.rcuCalls"],
    unit: "call_rcu of a table batch",
  },
  {
    name: "tableSyncOne",
    phase: "free_pgtables",
    counters: ["gather.tableSyncOne"],
    unit: "tlb_remove_table_one fallback",
  },
  {
    name: "secondaryTlbInvalidate",
    phase: "tlb_flush",
    counters: ["cpu.secondaryTlbInvalidations"],
    unit: "device TLB invalidation (IOMMU command + completion wait)",
  },
];

/** An estimate: the profile used, the total and every term's share (ns). */
export interface CostEstimate {
  /** `CostProfile.name`. */
  readonly profile: string;
  /** `CostProfile.ratioError`: how far a ratio of two estimates of this profile may be off (fraction). */
  readonly ratioError: number;
  /** Σ of `terms`, ns. */
  readonly totalNs: number;
  /** Term name → count × cost, ns (every term of `COST_TERMS`, zeros included). */
  readonly terms: Readonly<Record<CostTermName, number>>;
}

/** The count a term multiplies: the sum of its counters (absent counters count 0). */
export function termCount(term: CostTerm, counters: Readonly<Record<string, number>>): number {
  let n = 0;
  for (const c of term.counters) n += counters[c] ?? 0;
  return n;
}

/** Σ counter × cost over `COST_TERMS`, from flattened report counters ("layer.name" → count). */
export function estimateCost(counters: Readonly<Record<string, number>>, profile: CostProfile): CostEstimate {
  const terms = {} as Record<CostTermName, number>;
  let total = 0;
  for (const t of COST_TERMS) {
    const ns = termCount(t, counters) * profile[t.name];
    terms[t.name] = ns;
    total += ns;
  }
  return { profile: profile.name, ratioError: profile.ratioError, totalNs: total, terms };
}
