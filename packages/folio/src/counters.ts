// Models: the units of primitive work the teardown cost model weighs (atomics by field, statistic
// updates, lock round trips, struct-page cache lines, allocator traffic). Omits: pcp/zone locks of the
// page allocator, memcg charge/uncharge atomics, per-CPU vm-event counters other than those below.

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
  /** +1 per `munlock_folio` call made by rmap removal from a VM_LOCKED VMA. */
  munlockCalls = 0;
  /** +1 per stale PG_mlocked cleared at free (`UNEVICTABLE_PGCLEARED`). */
  mlockClearedAtFree = 0;
}

/** Names of the counter fields, in declaration order. */
export type FolioCounterName = keyof FolioCounters;

/** Zero every counter of `c` in place (keeps the object's shape). */
export function resetFolioCounters(c: FolioCounters): void {
  c.refcountAtomics = 0;
  c.mapcountAtomics = 0;
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
  c.munlockCalls = 0;
  c.mlockClearedAtFree = 0;
}
