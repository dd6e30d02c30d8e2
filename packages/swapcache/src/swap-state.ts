// Models: mm/swap_state.c (v6.5; free_swap_cache takes a page there and a folio in 7.x, so any pfn of
// the folio is accepted): the swap cache — add_to_swap_cache, swap_cache_get_folio,
// delete_from_swap_cache / __delete_from_swap_cache, free_swap_cache — over the per-slot cache index
// of each SwapDevice (the swapper_spaces xarrays).
// Omits: swap readahead, shadow entries (workingset), the xarray's own locking and node memory.

import { PG } from "@mmgather/folio";
import { SWP_OFFSET_MASK } from "./entry.js";
import { SwapError } from "./errors.js";
import { anyPfnHead, deviceOfEntryTrusted, folioHeadOf, type SwapState, swapDevice } from "./state.js";
import type { SwapDevice } from "./swap-device.js";
import { folioFreeSwapLocked, putSwapFolio, swapcachePrepare } from "./swapfile.js";

const MODULE = "swap-state";

/**
 * Head pfn of the folio the swap cache holds for `entry`, or −1; not counted and takes no reference
 * (for tests, invariant checks and visualisation; model code uses {@link swapCacheGetFolio}).
 */
export function swapCacheFolio(s: SwapState, entry: number): number {
  const d = swapDevice(s, entry, 1, MODULE, "swapCacheFolio");
  return d.cache[entry & SWP_OFFSET_MASK]!;
}

/**
 * swap_cache_get_folio(): looks the entry up in the swap cache (counted in swapCacheLookups). On a hit
 * returns the head pfn **with a new folio reference** the caller must drop (mem.folioPut); else −1.
 */
export function swapCacheGetFolio(s: SwapState, entry: number): number {
  const d = swapDevice(s, entry, 1, MODULE, "swapCacheGetFolio");
  s.counters.swapCacheLookups++;
  const head = d.cache[entry & SWP_OFFSET_MASK]!;
  if (head >= 0) s.mem.folioGet(head);
  return head;
}

/**
 * swapcache_prepare() + add_to_swap_cache() on the swap-in path: puts a folio that is not in the swap
 * cache into it for the already-used slots [entry, entry + folio_nr_pages). The first offset must be a
 * multiple of the folio size; every slot must be in use (count > 0) and have no cached folio.
 */
export function addToSwapCache(s: SwapState, head: number, entry: number): void {
  const mem = s.mem;
  const h = folioHeadOf(s, head, MODULE, "addToSwapCache");
  checkMayEnterSwapCache(s, h, MODULE, "addToSwapCache");
  const nr = mem.folioNrPages(h);
  const d = swapDevice(s, entry, nr, MODULE, "addToSwapCache");
  const off = entry & SWP_OFFSET_MASK;
  if (off % nr !== 0) {
    throw new SwapError(
      "EINVAL",
      MODULE,
      "addToSwapCache",
      `entry ${entry}: offset ${off} is not aligned to the folio's ${nr} pages`,
    );
  }
  swapcachePrepare(s, d, off, nr, "addToSwapCache");
  addToSwapCacheLocked(s, d, off, h, nr, entry);
}

/**
 * A folio may enter the swap cache only once, and only an anon or shmem folio out of the page cache
 * (add_to_swap / add_to_swap_cache preconditions).
 */
export function checkMayEnterSwapCache(s: SwapState, h: number, module: string, method: string): void {
  const mem = s.mem;
  if (mem.folioTest(h, PG.swapcache)) {
    throw new SwapError(
      "IN_SWAPCACHE",
      module,
      method,
      `folio ${h} is already in the swap cache (entry ${mem.folioSwap(h)})`,
    );
  }
  if (!mem.folioTest(h, PG.anon) && mem.folioMapping(h) >= 0) {
    throw new SwapError(
      "IN_PAGE_CACHE",
      module,
      method,
      `folio ${h} is in page cache mapping ${mem.folioMapping(h)}; remove it from the page cache first`,
    );
  }
}

/**
 * add_to_swap_cache() once the slots are reserved: nr folio references for the cache, PG_swapcache,
 * folio->swap, and the cache index of every slot pointing at the folio.
 */
export function addToSwapCacheLocked(
  s: SwapState,
  d: SwapDevice,
  off: number,
  h: number,
  nr: number,
  entry: number,
): void {
  const mem = s.mem;
  mem.folioRefAdd(h, nr);
  mem.folioSet(h, PG.swapcache);
  mem.folioSetSwap(h, entry);
  const cache = d.cache;
  for (let i = 0; i < nr; i++) cache[off + i] = h;
  s.counters.swapCacheAdds++;
}

/**
 * free_swap_cache(): called for each page / folio the gather frees. If the folio is in the swap cache,
 * not mapped anywhere and folio_trylock succeeds, runs folio_free_swap and unlocks. Accepts any pfn of
 * the folio. Returns whether the folio left the swap cache. The caller must hold a folio reference.
 */
export function freeSwapCache(s: SwapState, pfn: number): boolean {
  const mem = s.mem;
  const c = s.counters;
  c.freeSwapCacheCalls++;
  const h = anyPfnHead(s, pfn, MODULE, "freeSwapCache");
  if (!mem.folioTest(h, PG.swapcache) || mem.folioMapped(h)) return false;
  c.folioTrylocks++;
  if (mem.folioTest(h, PG.locked)) {
    c.folioTrylockFails++;
    return false;
  }
  mem.folioSet(h, PG.locked);
  try {
    return folioFreeSwapLocked(s, h);
  } finally {
    mem.folioClear(h, PG.locked);
  }
}

/**
 * delete_from_swap_cache() (+ put_swap_folio): removes a folio from the swap cache whatever its swap
 * counts. Slots still referenced by swap PTEs stay in use without the cache bit; the others are freed.
 * Drops the cache's nr folio references; the caller must hold another one. Throws if the folio is not
 * in the swap cache or is under writeback.
 */
export function deleteFromSwapCache(s: SwapState, head: number): void {
  const mem = s.mem;
  const h = folioHeadOf(s, head, MODULE, "deleteFromSwapCache");
  if (!mem.folioTest(h, PG.swapcache)) {
    throw new SwapError(
      "NOT_IN_SWAPCACHE",
      MODULE,
      "deleteFromSwapCache",
      `folio ${h} is not in the swap cache`,
    );
  }
  if (mem.folioTest(h, PG.writeback)) {
    throw new SwapError(
      "WRITEBACK",
      MODULE,
      "deleteFromSwapCache",
      `folio ${h} is under writeback and may not leave the swap cache`,
    );
  }
  checkCallerRef(s, h, MODULE, "deleteFromSwapCache");
  deleteFromSwapCacheLocked(s, h);
}

/** Deleting from the swap cache drops its nr references: the caller must hold one more. */
export function checkCallerRef(s: SwapState, h: number, module: string, method: string): void {
  const nr = s.mem.folioNrPages(h);
  const ref = s.mem.folioRef(h);
  if (ref <= nr) {
    throw new SwapError(
      "NO_CALLER_REF",
      module,
      method,
      `folio ${h} has refcount ${ref}, only the swap cache's ${nr}; the caller must hold a reference`,
    );
  }
}

/** __delete_from_swap_cache + put_swap_folio + folio_ref_sub(nr). Preconditions already checked. */
export function deleteFromSwapCacheLocked(s: SwapState, h: number): void {
  const mem = s.mem;
  const entry = mem.folioSwap(h);
  const d = deviceOfEntryTrusted(s, entry);
  const off = entry & SWP_OFFSET_MASK;
  const nr = mem.folioNrPages(h);
  const cache = d.cache;
  for (let i = 0; i < nr; i++) cache[off + i] = -1;
  mem.folioSetSwap(h, 0);
  mem.folioClear(h, PG.swapcache);
  s.counters.swapCacheDeletes++;
  putSwapFolio(s, d, off, nr);
  mem.folioRefSubAndTest(h, nr);
}
