// Models: the lock round trips and swap-cache traffic of mm/swapfile.c and mm/swap_state.c (v6.5, v6.10)
// as exact counters. Omits: per-CPU slot-cache traffic, memcg swap accounting, xarray node allocations.

/** Exact primitive-work counters of one SwapSpace; every field starts at 0 and only grows until reset. */
export interface SwapCounters {
  /** +1 each time a swap cluster lock is taken (lock_cluster / lock_cluster_or_swap_info). */
  clusterLocks: number;
  /** +1 each time a device lock (si->lock) is taken: slot allocation and whole-range slot frees. */
  deviceLocks: number;
  /** +1 per swap-cache lookup of one entry: swapCacheGetFolio and the lookup in __try_to_reclaim_swap. */
  swapCacheLookups: number;
  /** +1 per folio added to the swap cache (add_to_swap_cache), whatever its size. */
  swapCacheAdds: number;
  /** +1 per folio removed from the swap cache (__delete_from_swap_cache), whatever its size. */
  swapCacheDeletes: number;
  /** +1 per swap slot handed out by the allocator (folioAllocSwap). */
  slotsAllocated: number;
  /** +1 per swap slot returned to the free pool (its swap_map byte went to 0). */
  slotsFreed: number;
  /** +1 per swap-PTE reference added to a slot (swap_duplicate, per entry). */
  swapDuplicates: number;
  /** +1 per swap-PTE reference dropped from a slot (free_swap_and_cache(_nr), swap_free_nr, per entry). */
  swapPutEntries: number;
  /** +1 per free_swap_cache call (freeSwapCache), including those that return at the flag test. */
  freeSwapCacheCalls: number;
  /** +1 per folio_trylock attempt on a swap-cache folio (free_swap_cache, __try_to_reclaim_swap). */
  folioTrylocks: number;
  /** +1 per folio_trylock that failed because PG_locked was already set. */
  folioTrylockFails: number;
  /** +1 per folio_free_swap call that reached its checks (folioFreeSwap, directly or via the two above). */
  folioFreeSwapCalls: number;
}

/** A counters record with every field at 0. */
export function createSwapCounters(): SwapCounters {
  return {
    clusterLocks: 0,
    deviceLocks: 0,
    swapCacheLookups: 0,
    swapCacheAdds: 0,
    swapCacheDeletes: 0,
    slotsAllocated: 0,
    slotsFreed: 0,
    swapDuplicates: 0,
    swapPutEntries: 0,
    freeSwapCacheCalls: 0,
    folioTrylocks: 0,
    folioTrylockFails: 0,
    folioFreeSwapCalls: 0,
  };
}

/** Sets every counter of `c` back to 0 in place (the object identity is kept). */
export function resetSwapCounters(c: SwapCounters): void {
  c.clusterLocks = 0;
  c.deviceLocks = 0;
  c.swapCacheLookups = 0;
  c.swapCacheAdds = 0;
  c.swapCacheDeletes = 0;
  c.slotsAllocated = 0;
  c.slotsFreed = 0;
  c.swapDuplicates = 0;
  c.swapPutEntries = 0;
  c.freeSwapCacheCalls = 0;
  c.folioTrylocks = 0;
  c.folioTrylockFails = 0;
  c.folioFreeSwapCalls = 0;
}
