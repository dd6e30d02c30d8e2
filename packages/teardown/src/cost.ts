// Models: the time a kernel spends in one teardown, as Σ counter × cost-per-primitive. Each term
// multiplies one or more exact counters of the teardown report by one field of a `CostProfile` (ns).
// Omits: contention (the zone lock is costed uncontended), cache effects beyond the per-line terms,
// anything the counters do not count (pcp refills on allocation, 6.7+'s auto-tuned pcp high).
//
// No fudge: an estimate is only ever counters × profile — no per-scenario factor, no lookup of a
// published number. `estimateCost` is linear in every counter, and a test checks each term.
import type { CostProfile, CostTermName } from "@mmgather/mmu-gather";

/** One term of the cost model. */
export interface CostTerm {
  /** The `CostProfile` field (ns per unit). */
  readonly name: CostTermName;
  /** Flattened report counters ("layer.name") whose sum is the term's count. */
  readonly counters: readonly string[];
  /** What one unit of the count is. */
  readonly unit: string;
}

/** Every term, in report order. The README and `teardown-lab fidelity` list the same. */
export const COST_TERMS: readonly CostTerm[] = [
  { name: "pteClear", counters: ["walk.ptesCleared", "walk.swapPtesCleared"], unit: "PTE cleared" },
  {
    name: "zapIteration",
    counters: ["walk.presentBatches"],
    unit: "zap-loop iteration (run of present PTEs: vm_normal_page, page_folio, folio_test_* once per run)",
  },
  { name: "pteTable", counters: ["walk.pteTableVisits"], unit: "PTE table walked" },
  { name: "ptlLock", counters: ["teardown.ptlAcquisitions"], unit: "page-table-lock round trip" },
  {
    name: "atomic",
    counters: [
      "folio.refcountAtomics",
      "folio.nrPagesMappedAtomics",
      "folio.largeMapcountAtomics",
      "folio.entireMapcountAtomics",
    ],
    unit: "atomic RMW on a folio-level field",
  },
  {
    name: "pageMapcount",
    counters: ["folio.mapcountAtomics"],
    unit: "per-page _mapcount atomic (first line touch)",
  },
  { name: "structPageLine", counters: ["folio.metadataLines"], unit: "struct page cache line touched" },
  { name: "statUpdate", counters: ["folio.statUpdates"], unit: "statistics update" },
  { name: "lruvecLock", counters: ["folio.lruvecLockAcquisitions"], unit: "lruvec lock round trip" },
  {
    name: "splitQueueLock",
    counters: ["folio.splitQueueLockAcquisitions"],
    unit: "split_queue_lock round trip",
  },
  { name: "pageCacheLock", counters: ["folio.pageCacheLockAcquisitions"], unit: "i_pages lock round trip" },
  { name: "swapClusterLock", counters: ["swap.clusterLocks"], unit: "swap cluster lock round trip" },
  { name: "swapDeviceLock", counters: ["swap.deviceLocks"], unit: "swap device lock round trip" },
  { name: "lruDel", counters: ["folio.lruDels"], unit: "folio taken off an LRU list" },
  { name: "deferredSplitCall", counters: ["folio.deferredSplitCalls"], unit: "deferred_split_folio call" },
  { name: "munlock", counters: ["folio.munlockCalls"], unit: "munlock_folio call" },
  { name: "splitHugePmd", counters: ["walk.hugePmdsSplit"], unit: "huge PMD split into PTEs" },
  { name: "folioPteBatch", counters: ["walk.folioPteBatchCalls"], unit: "folio_pte_batch call" },
  { name: "folioPteBatchPte", counters: ["walk.folioPteBatchPtes"], unit: "PTE taken in by folio_pte_batch" },
  { name: "vmaFree", counters: ["walk.vmasFreed"], unit: "VMA freed (remove_vma)" },
  { name: "anonVmaUnlink", counters: ["walk.anonVmaUnlinks"], unit: "unlink_anon_vmas with an anon_vma" },
  { name: "fileVmaUnlink", counters: ["walk.fileVmaUnlinks"], unit: "unlink_file_vma" },
  { name: "fput", counters: ["walk.fputs"], unit: "fput of a file VMA" },
  { name: "mmFree", counters: ["walk.mmsFreed"], unit: "mm_struct freed at exit" },
  {
    name: "sharedMapcountDrop",
    counters: ["folio.mapcountSharedDrops"],
    unit: "mapcount drop of a page still mapped elsewhere",
  },
  { name: "markAccessed", counters: ["walk.markAccessedCalls"], unit: "folio_mark_accessed call" },
  { name: "gatherEntry", counters: ["gather.entriesQueued"], unit: "gather batch slot written" },
  {
    name: "rmapCall",
    counters: ["gather.rmapCallsImmediate", "gather.rmapCallsDelayed"],
    unit: "rmap-removal call",
  },
  {
    name: "batchAlloc",
    counters: ["gather.batchPagesAllocated", "gather.tableBatchAllocated"],
    unit: "batch page allocated",
  },
  { name: "swapCacheCheck", counters: ["gather.freeSwapCacheCalls"], unit: "free_swap_cache check" },
  { name: "swapCacheDelete", counters: ["swap.swapCacheDeletes"], unit: "folio removed from the swap cache" },
  { name: "swapEntryFree", counters: ["swap.swapPutEntries"], unit: "swap-PTE reference dropped" },
  { name: "folioFree", counters: ["folio.foliosFreed"], unit: "folio freed to the allocator" },
  { name: "pageFree", counters: ["folio.pagesFreed"], unit: "page freed to the allocator" },
  { name: "buddyMerge", counters: ["folio.buddyMerges"], unit: "buddy merge" },
  {
    name: "freeBatch",
    counters: ["folio.freeListCalls"],
    unit: "free_unref_page_list / free_unref_folios call",
  },
  { name: "pcpFree", counters: ["folio.pcpFrees"], unit: "folio put on a per-CPU page list" },
  { name: "pcpLock", counters: ["folio.pcpLockAcquisitions"], unit: "free-side pcp lock round trip" },
  {
    name: "zoneLock",
    counters: ["folio.zoneLockAcquisitions"],
    unit: "zone->lock round trip (free_one_page, pcp bulk drain)",
  },
  { name: "pcpBulkDrain", counters: ["folio.pcpBulkDrains"], unit: "free_pcppages_bulk call" },
  { name: "memcgUncharge", counters: ["folio.memcgUnchargeBatches"], unit: "memcg uncharge_batch" },
  { name: "lruAddDrain", counters: ["folio.lruAddDrainCalls"], unit: "lru_add_drain call" },
  { name: "flushMmu", counters: ["gather.flushMmuCalls"], unit: "tlb_flush_mmu call" },
  { name: "freeChunk", counters: ["gather.chunksFreed"], unit: "≤ 512-entry free chunk (+ cond_resched)" },
  { name: "tlbFlushRange", counters: ["gather.tlbFlushRange"], unit: "range TLB flush (local part)" },
  { name: "tlbFlushRangeEntry", counters: ["gather.tlbFlushRangeEntries"], unit: "range-flush stride entry" },
  { name: "tlbFlushMm", counters: ["gather.tlbFlushMm"], unit: "whole-mm TLB flush (local part)" },
  {
    name: "tlbRemoteCpu",
    counters: ["cpu.remoteCpuFlushes"],
    unit: "remote CPU flushed (IPI / broadcast wait)",
  },
  { name: "ipte", counters: ["gather.ipte"], unit: "s390 IPTE (one PTE)" },
  { name: "idte", counters: ["gather.idte"], unit: "s390 IDTE" },
  { name: "tlbiVa", counters: ["gather.tlbiVaOps"], unit: "arm64 TLBI by address (VAE1IS / VALE1IS)" },
  { name: "tlbiRange", counters: ["gather.tlbiRangeOps"], unit: "arm64 range TLBI (RVAE1IS / RVALE1IS)" },
  {
    name: "contpteConvertPte",
    counters: ["gather.contpteConvertedPtes"],
    unit: "PTE rewritten by arm64 contpte_convert (fold / unfold)",
  },
  { name: "tableFree", counters: ["gather.tablesFreed"], unit: "page-table page freed" },
  { name: "rcuCall", counters: ["gather.rcuCalls"], unit: "call_rcu of a table batch" },
  { name: "tableSyncOne", counters: ["gather.tableSyncOne"], unit: "tlb_remove_table_one fallback" },
  {
    name: "secondaryTlbInvalidate",
    counters: ["cpu.secondaryTlbInvalidations"],
    unit: "device TLB invalidation (IOMMU command + completion wait)",
  },
];

/** An estimate: the profile used, the total and every term's share (ns). */
export interface CostEstimate {
  /** `CostProfile.name`. */
  readonly profile: string;
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
  return { profile: profile.name, totalNs: total, terms };
}
