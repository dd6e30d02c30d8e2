// Models: the units of primitive work the teardown cost model weighs (atomics by field, statistic
// updates, lock round trips, struct-page cache lines, allocator traffic including the v6.5 free side of
// the per-CPU page lists and the zone lock, memcg uncharge batches). Omits: memcg charge, per-CPU
// vm-event counters other than those below, the allocation side of the pcp lists (`rmqueue_bulk`).

/**
 * `pcp->batch` of the modelled zone: v6.5 `zone_batchsize` = rounddown_pow_of_two(b + b/2) - 1 with
 * b = min(managed_pages >> 10, SZ_1M / PAGE_SIZE) / 4 = 64 for any zone of ≥ 1 GiB (4 KiB pages): 63.
 * Other page sizes: {@link pcpZoneSizes}.
 */
export const PCP_BATCH = 63;

/**
 * `pcp->high` of the modelled zone: v6.5 `zone_highsize` with the default
 * `percpu_pagelist_high_fraction` = 0, i.e. max(low_wmark_pages / CPUs of the node, 4 × batch).
 * Assumed zone: one 16 GiB ZONE_NORMAL (4,194,304 pages) as all of lowmem, so min_free_kbytes =
 * sqrt(16 GiB in KiB × 16) = 16384 → min = 4096 pages, low = min + max(min / 4, managed × 10 / 10000)
 * = 4096 + 4194 = 8290 pages, shared by the 20 CPUs of a Xeon Silver 4210R node: 8290 / 20 = 414.
 * With 4 KiB pages; other page sizes: {@link pcpZoneSizes}.
 */
export const PCP_HIGH = 414;

/**
 * `pcp->high_max` of the modelled zone under the v6.7+ pcp policy: `zone_highsize` with
 * MIN_PERCPU_PAGELIST_HIGH_FRACTION (8) = managed / 8 / CPUs of the node = 4,194,304 / 8 / 20 (same
 * assumed zone as {@link PCP_HIGH}, which is v6.7's `high_min`). Not exported from the package.
 */
export const PCP_HIGH_MAX_V67 = 26214;

/**
 * `pcp->batch`, `pcp->high` (v6.5, and v6.7's `high_min`) and v6.7's `high_max` of the modelled zone —
 * the 16 GiB ZONE_NORMAL shared by 20 CPUs of {@link PCP_HIGH} — with pages of 2^`pageShift` bytes. The
 * zone's size in pages and `SZ_1M / PAGE_SIZE` in `zone_batchsize`, and `min_free_kbytes` (16384 KiB
 * whatever the page size) in pages, all scale with the page size: {@link PCP_BATCH} / {@link PCP_HIGH} /
 * 26214 at 4 KiB, 15 / 103 / 6553 at 16 KiB, 3 / 25 / 1638 at 64 KiB.
 */
export function pcpZoneSizes(pageShift: number): { batch: number; high: number; highMax: number } {
  const cpus = 20;
  const managed = 2 ** (34 - pageShift);
  // zone_batchsize: min(managed >> 10, SZ_1M / PAGE_SIZE) / 4, at least 1, rounddown_pow_of_two(b + b / 2) - 1.
  let b = Math.floor(Math.min(Math.floor(managed / 1024), 2 ** (20 - pageShift)) / 4);
  if (b < 1) b = 1;
  const batch = 2 ** Math.floor(Math.log2(b + Math.floor(b / 2))) - 1;
  // __setup_per_zone_wmarks: min = min_free_kbytes in pages, low = min + max(min / 4, mult_frac(managed, 10, 10000)).
  const min = 16384 / 2 ** (pageShift - 10);
  const scaled = Math.floor(managed / 10000) * 10 + Math.floor(((managed % 10000) * 10) / 10000);
  const low = min + Math.max(Math.floor(min / 4), scaled);
  // zone_highsize: max(low / CPUs of the node, batch << 2); high_max: managed / MIN_PERCPU_PAGELIST_HIGH_FRACTION (8) / CPUs.
  const high = Math.max(Math.floor(low / cpus), batch * 4);
  const highMax = Math.floor(managed / 8 / cpus);
  return { batch, high, highMax };
}

/** CONFIG_PCP_BATCH_SCALE_MAX (default 5): caps `free_count` and a `free_high` drain at batch << 5. Not exported from the package. */
export const PCP_BATCH_SCALE_MAX = 5;

/**
 * Exact primitive counters of one `PhysMem`. Every field is a plain number incremented by the
 * primitives listed in its comment; `resetCounters()` zeroes all of them.
 *
 * "Cache lines" (`metadataLines`): each model primitive call (a public method, or a modelled kernel
 * function it runs internally, such as `deferred_split_folio` or `__page_cache_release`) adds the number
 * of DISTINCT 64-byte `struct page`s the kernel function reads or writes, laid out as the kernel does:
 * per-page `_mapcount` in each page; flags, `_refcount`, `mapping`, `index`, `swap`, `memcg_data`, `lru`
 * in the head page; `_entire_mapcount`, `_nr_pages_mapped`, `_large_mapcount` in page[1];
 * `_deferred_list` in page[2]. A page touched by two separate primitive calls counts twice.
 */
export class FolioCounters {
  /** +1 per atomic read-modify-write of a folio's `_refcount` (get, ref_add, put_testzero, ref_sub_and_test). Plain stores at allocation are not counted. */
  refcountAtomics = 0;
  /** +1 per atomic RMW of one page's `_mapcount` (one per page per PTE rmap add/remove). */
  mapcountAtomics = 0;
  /**
   * +1 per rmap-removal decrement of a page's `_mapcount` (PTE) or a THP's `_entire_mapcount` (PMD)
   * that leaves it ≥ 0: the page is still mapped elsewhere (fork-shared, or a shared file / shmem page
   * mapped by another VMA), so the line is likely shared with another CPU. Fault and fork adds are not
   * counted.
   */
  mapcountSharedDrops = 0;
  /** +1 per atomic RMW of a large folio's `_nr_pages_mapped`. */
  nrPagesMappedAtomics = 0;
  /** +1 per atomic RMW of a large folio's `_large_mapcount` (7.x add/remove functions only; 6.5 and the series had no such field and the model's shadow update is not counted). */
  largeMapcountAtomics = 0;
  /** +1 per atomic RMW of a large folio's `_entire_mapcount` (PMD map/unmap). */
  entireMapcountAtomics = 0;
  /** +1 per statistics update call (`__lruvec_stat_mod_folio`, or 7.x's `__mod_node_page_state` for file PMD-mapped counters). */
  statUpdates = 0;
  /** +1 per acquisition of any lruvec lock (relock to a different lruvec counts; holding it across folios does not). */
  lruvecLockAcquisitions = 0;
  /** +1 per acquisition of a deferred-split `split_queue_lock`. */
  splitQueueLockAcquisitions = 0;
  /** +1 per acquisition of an address_space's `i_pages` xa_lock (page-cache add and remove). */
  pageCacheLockAcquisitions = 0;
  /** +1 per distinct 64-byte `struct page` read or written by one primitive call (see the class comment). */
  metadataLines = 0;
  /** +1 per folio handed out by the buddy allocator. */
  foliosAllocated = 0;
  /** +nr per folio handed out (pages). */
  pagesAllocated = 0;
  /** +1 per folio returned to the buddy allocator. */
  foliosFreed = 0;
  /** +nr per folio returned to the buddy allocator (pages). */
  pagesFreed = 0;
  /** +1 per buddy block split in two while allocating. */
  buddySplits = 0;
  /** +1 per buddy merge of two free blocks while freeing. */
  buddyMerges = 0;
  /** +1 per `free_unref_page_list` (6.5 / series) or `free_unref_folios` (7.x) batch call, as the algorithm makes it. */
  freeListCalls = 0;
  /** +1 per call of `deferred_split_folio` (whether or not it queues). */
  deferredSplitCalls = 0;
  /** +1 per folio added to a deferred-split queue (`list_add_tail` on `_deferred_list`). */
  deferredSplitQueued = 0;
  /** +1 per folio removed from a deferred-split queue at free (`folio_undo_large_rmappable` / `folio_unqueue_deferred_split`). */
  deferredSplitDequeued = 0;
  /** +1 per `lruvec_add_folio` (folio put on an LRU list). */
  lruAdds = 0;
  /** +1 per `lruvec_del_folio` (folio taken off an LRU list). */
  lruDels = 0;
  /** +1 per `lru_add_drain()` call. */
  lruAddDrainCalls = 0;
  /**
   * +1 per folio put on a per-CPU list by v6.5 `free_unref_page_commit`: orders ≤
   * PAGE_ALLOC_COSTLY_ORDER (3) and pageblock_order (the model's pmdOrder), as `pcp_allowed_order`.
   */
  pcpFrees = 0;
  /** +1 per `pcp_spin_trylock` on the free side (`free_unref_page`; per zone change and per SWAP_CLUSTER_MAX pages in `free_unref_page_list`; per zone change in `free_unref_folios`). */
  pcpLockAcquisitions = 0;
  /** +1 per `zone->lock` acquisition on the free side: `free_one_page` of an order pcp lists do not take (4 … pageblock_order-1, via `__free_pages_ok` / `free_unref_folios`), and every `free_pcppages_bulk`. */
  zoneLockAcquisitions = 0;
  /** +1 per `free_pcppages_bulk` (pcp count reached `high`; v6.5 `nr_pcp_high` / `nr_pcp_free` with `free_factor`, or under `pcpPolicy: "v6.7"` with `free_count`, auto-tuned `high` and the PCPF_* flags). */
  pcpBulkDrains = 0;
  /** +nr per pcp entry of nr pages handed to the buddy by `free_pcppages_bulk` (pages). */
  pcpPagesDrained = 0;
  /** +1 per memcg `uncharge_batch` (one per run of same-memcg folios in `mem_cgroup_uncharge_list` / `_folios`, one per single-folio `mem_cgroup_uncharge`). */
  memcgUnchargeBatches = 0;
  /**
   * +1 per `munlock_folio` call made by rmap removal from a VM_LOCKED VMA (`munlock_vma_folio`; v6.5
   * only for a small folio or a PMD mapping): a folio reference and a slot of the mlock batch.
   */
  munlockCalls = 0;
  /** +1 per `mlock_folio_batch` drain of the mlock batch (full, a large folio, or `lru_add_drain`). */
  mlockBatchDrains = 0;
  /** +pages per folio whose PG_mlocked `__munlock_folio` cleared (`UNEVICTABLE_PGMUNLOCKED`). */
  munlockedPages = 0;
  /** +1 per stale PG_mlocked cleared at free (`UNEVICTABLE_PGCLEARED`). */
  mlockClearedAtFree = 0;
}

/** Names of the counter fields, in declaration order. */
export type FolioCounterName = keyof FolioCounters;

/** Zero every counter of `c` in place (keeps the object's shape). */
export function resetFolioCounters(c: FolioCounters): void {
  c.refcountAtomics = 0;
  c.mapcountAtomics = 0;
  c.mapcountSharedDrops = 0;
  c.nrPagesMappedAtomics = 0;
  c.largeMapcountAtomics = 0;
  c.entireMapcountAtomics = 0;
  c.statUpdates = 0;
  c.lruvecLockAcquisitions = 0;
  c.splitQueueLockAcquisitions = 0;
  c.pageCacheLockAcquisitions = 0;
  c.metadataLines = 0;
  c.foliosAllocated = 0;
  c.pagesAllocated = 0;
  c.foliosFreed = 0;
  c.pagesFreed = 0;
  c.buddySplits = 0;
  c.buddyMerges = 0;
  c.freeListCalls = 0;
  c.deferredSplitCalls = 0;
  c.deferredSplitQueued = 0;
  c.deferredSplitDequeued = 0;
  c.lruAdds = 0;
  c.lruDels = 0;
  c.lruAddDrainCalls = 0;
  c.pcpFrees = 0;
  c.pcpLockAcquisitions = 0;
  c.zoneLockAcquisitions = 0;
  c.pcpBulkDrains = 0;
  c.pcpPagesDrained = 0;
  c.memcgUnchargeBatches = 0;
  c.munlockCalls = 0;
  c.mlockBatchDrains = 0;
  c.munlockedPages = 0;
  c.mlockClearedAtFree = 0;
}
