// Models: mm/swapfile.c (v6.5, with the v6.10 free_swap_and_cache_nr and mTHP swap-out and the v6.11
// one-cluster-lock batching of entry frees): slot allocation for a folio (folio_alloc_swap →
// get_swap_pages, naturally aligned runs), swapcache_prepare, swap_duplicate, swap_free_nr,
// free_swap_and_cache(_nr) with __swap_entry_free and __try_to_reclaim_swap, folio_free_swap,
// folio_swapped, put_swap_folio, __swap_count.
// Omits: the per-CPU swap slot cache (a slot whose count reaches 0 is freed at once), count
// continuations (counts above SWAP_MAP_MAX throw), SWAP_MAP_SHMEM, memcg swap accounting (vm_swap_full
// is global), hibernation, swapoff, discard.

import { PG } from "@mmgather/folio";
import { SWAP_HAS_CACHE, SWAP_MAP_MAX, SWAPFILE_CLUSTER, SWP_OFFSET_BITS, SWP_OFFSET_MASK } from "./entry.js";
import { SwapError } from "./errors.js";
import {
  COUNT_MASK,
  deviceOfEntryTrusted,
  folioHeadOf,
  type SwapState,
  slotsFree,
  swapDevice,
  vmSwapFull,
} from "./state.js";
import { SWAP_FREED, SWAP_KILLED, SWAP_ON, SWAP_UNUSING, type SwapDevice } from "./swap-device.js";
import {
  addToSwapCacheLocked,
  checkCallerRef,
  checkMayEnterSwapCache,
  deleteFromSwapCacheLocked,
} from "./swap-state.js";

const MODULE = "swapfile";

/** __swap_count(): how many swap PTEs (and other users) reference the slot, without the cache bit. */
export function swapCount(s: SwapState, entry: number): number {
  const d = swapDevice(s, entry, 1, MODULE, "swapCount");
  return d.map[entry & SWP_OFFSET_MASK]! & COUNT_MASK;
}

/** The raw swap_map byte of a slot: swap count | SWAP_HAS_CACHE (0 = free). */
export function swapMapValue(s: SwapState, entry: number): number {
  const d = swapDevice(s, entry, 1, MODULE, "swapMapValue");
  return d.map[entry & SWP_OFFSET_MASK]!;
}

/**
 * folio_alloc_swap() + add_to_swap_cache() as add_to_swap() does them: allocates folio_nr_pages slots,
 * contiguous and naturally aligned (a run never crosses a cluster), marks them SWAP_HAS_CACHE, adds the
 * folio to the swap cache, sets PG_dirty. Returns the first entry; ENOSPC when no device has such a run.
 */
export function folioAllocSwap(s: SwapState, head: number): number {
  const mem = s.mem;
  const h = folioHeadOf(s, head, MODULE, "folioAllocSwap");
  checkMayEnterSwapCache(s, h, MODULE, "folioAllocSwap");
  const nr = mem.folioNrPages(h);
  if (nr > SWAPFILE_CLUSTER) {
    throw new SwapError(
      "EINVAL",
      MODULE,
      "folioAllocSwap",
      `folio ${h} has ${nr} pages; a folio larger than one swap cluster (${SWAPFILE_CLUSTER}) must be split first`,
    );
  }
  const c = s.counters;
  for (let t = 0; t < s.devs.length; t++) {
    const d = s.devs[t]!;
    // get_swap_pages takes only devices on the avail list (SWP_WRITEOK: not being swapped off).
    if (d.nrFree < nr || d.swapoffState !== SWAP_ON) continue;
    c.deviceLocks++;
    const off = d.findFreeRange(nr);
    if (off === 0) continue;
    c.clusterLocks++;
    const map = d.map;
    for (let i = 0; i < nr; i++) map[off + i] = SWAP_HAS_CACHE;
    d.slotsTaken(off, nr);
    c.slotsAllocated += nr;
    const entry = ((t << SWP_OFFSET_BITS) | off) >>> 0;
    addToSwapCacheLocked(s, d, off, h, nr, entry);
    // add_to_swap: the folio's only copy of the data is now about to be written out.
    mem.folioSet(h, PG.dirty);
    return entry;
  }
  throw new SwapError(
    "ENOSPC",
    MODULE,
    "folioAllocSwap",
    `no free naturally aligned run of ${nr} swap slot(s) for folio ${h} (${slotsFree(s)} of ${s.totalUsable} slots free)`,
  );
}

/**
 * swapcache_prepare(): checks that every slot of [off, off + nr) is in use and has no cached folio, then
 * sets SWAP_HAS_CACHE on them under the cluster lock (the swap-in path, before add_to_swap_cache).
 */
export function swapcachePrepare(s: SwapState, d: SwapDevice, off: number, nr: number, method: string): void {
  const map = d.map;
  for (let i = 0; i < nr; i++) {
    const v = map[off + i]!;
    if ((v & COUNT_MASK) === 0) {
      throw new SwapError(
        "DUP_FREE_SLOT",
        MODULE,
        method,
        `slot ${d.type}:${off + i} has no swap count; swapcache_prepare needs a slot in use`,
      );
    }
    if ((v & SWAP_HAS_CACHE) !== 0) {
      throw new SwapError(
        "CACHE_EXISTS",
        MODULE,
        method,
        `slot ${d.type}:${off + i} already has folio ${d.cache[off + i]} in the swap cache`,
      );
    }
  }
  s.counters.clusterLocks++;
  for (let i = 0; i < nr; i++) map[off + i]! |= SWAP_HAS_CACHE;
}

/**
 * swap_duplicate() for `nr` consecutive entries: one more swap PTE (made by the page-table owner, at
 * unmap-for-reclaim or fork) references each slot. One cluster lock per cluster the run touches.
 */
export function swapDuplicate(s: SwapState, entry: number, nr: number): void {
  const d = swapDevice(s, entry, nr, MODULE, "swapDuplicate");
  const off = entry & SWP_OFFSET_MASK;
  const map = d.map;
  for (let i = 0; i < nr; i++) {
    const v = map[off + i]!;
    const count = v & COUNT_MASK;
    if (v === 0) {
      throw new SwapError(
        "DUP_FREE_SLOT",
        MODULE,
        "swapDuplicate",
        `slot ${d.type}:${off + i} is free (unused swap offset entry); nothing to duplicate`,
      );
    }
    if (count >= SWAP_MAP_MAX) {
      throw new SwapError(
        "COUNT_OVERFLOW",
        MODULE,
        "swapDuplicate",
        `slot ${d.type}:${off + i} already has swap count ${count} = SWAP_MAP_MAX (count continuations not modelled)`,
      );
    }
  }
  const c = s.counters;
  let lastCluster = -1;
  for (let i = 0; i < nr; i++) {
    const o = off + i;
    const cl = (o / SWAPFILE_CLUSTER) | 0;
    if (cl !== lastCluster) {
      c.clusterLocks++;
      lastCluster = cl;
    }
    map[o]!++;
  }
  c.swapDuplicates += nr;
}

/**
 * swap_free_nr(): drops one swap-PTE reference from each of `nr` consecutive slots without trying to
 * reclaim their swap cache. Slots left with no count and no cache are freed.
 */
export function swapFree(s: SwapState, entry: number, nr: number): void {
  const d = swapDevice(s, entry, nr, MODULE, "swapFree");
  swapEntriesPut(s, d, entry & SWP_OFFSET_MASK, nr, "swapFree");
}

/**
 * free_swap_and_cache_nr(): `nr` consecutive swap PTEs of one device are zapped. First drops one count
 * from every slot (one cluster-lock round trip per cluster the run touches), then, only if some slot is
 * left holding nothing but SWAP_HAS_CACHE, walks the run once per folio calling __try_to_reclaim_swap.
 * `method` names the caller's entry point (free_swap_and_cache is the nr = 1 wrapper since v6.10).
 */
export function freeSwapAndCacheNr(
  s: SwapState,
  entry: number,
  nr: number,
  method: string,
  pin: boolean,
): void {
  const d = swapDevice(s, entry, nr, MODULE, method);
  // get_swap_device: the PTE being zapped holds a swap count, so swapoff cannot have killed si->users.
  if (pin) d.users++;
  try {
    freeEntriesAndCache(s, d, entry, nr, method);
  } finally {
    if (pin) d.users--;
  }
}

function freeEntriesAndCache(s: SwapState, d: SwapDevice, entry: number, nr: number, method: string): void {
  const off = entry & SWP_OFFSET_MASK;
  const onlyCache = swapEntriesPut(s, d, off, nr, method);
  // Another CPU may run swapoff right here: it can free a slot left with only its cache, and with
  // inuse_pages at 0 and no pin on si->users, free swap_map itself.
  if (s.parallelWindow !== null) s.parallelWindow(d.type, off, nr);
  if (!onlyCache) return;
  if (d.swapoffState === SWAP_FREED) {
    throw new SwapError(
      "DEVICE_FREED",
      MODULE,
      method,
      `slot ${d.type}:${off} was left with only its swap-cache bit, and swapoff freed device ${d.type}'s swap_map before this call read it again (no get_swap_device pin)`,
    );
  }
  const map = d.map;
  const end = off + nr;
  for (let o = off; o < end; ) {
    let step = 1;
    if (map[o] === SWAP_HAS_CACHE) {
      let r = tryToReclaimSwap(s, d, o);
      if (r < 0) r = -r;
      else if (r === 0) r = 1;
      // Folios sit naturally aligned in swap: skip to the next folio boundary.
      step = Math.ceil((o + 1) / r) * r - o;
    }
    o += step;
  }
}

/**
 * __swap_entries_free / swap_entry_put: drops one count from each slot of [off, off + nr) under one
 * cluster lock per cluster touched; frees slots left at 0. Returns whether any slot was left with only
 * SWAP_HAS_CACHE. Validates every slot before changing any.
 */
function swapEntriesPut(s: SwapState, d: SwapDevice, off: number, nr: number, method: string): boolean {
  const map = d.map;
  const end = off + nr;
  for (let o = off; o < end; o++) {
    if ((map[o]! & COUNT_MASK) === 0) {
      throw new SwapError(
        "DOUBLE_FREE",
        MODULE,
        method,
        map[o] === 0
          ? `slot ${d.type}:${o} is already free; no swap PTE references it`
          : `slot ${d.type}:${o} has swap count 0 (only the swap cache holds it); no swap PTE to drop`,
      );
    }
  }
  const c = s.counters;
  let anyOnlyCache = false;
  let lastCluster = -1;
  for (let o = off; o < end; o++) {
    const cl = (o / SWAPFILE_CLUSTER) | 0;
    if (cl !== lastCluster) {
      c.clusterLocks++;
      lastCluster = cl;
    }
    const usage = map[o]! - 1;
    map[o] = usage;
    if (usage === 0) {
      d.slotFreed(o);
      c.slotsFreed++;
    } else if (usage === SWAP_HAS_CACHE) {
      anyOnlyCache = true;
    }
  }
  c.swapPutEntries += nr;
  return anyOnlyCache;
}

/**
 * __try_to_reclaim_swap(si, offset, TTRS_UNMAPPED | TTRS_FULL). Returns the folio's page count if its
 * swap was freed, minus that count if a folio was found but kept, 0 if the cache held none.
 */
function tryToReclaimSwap(s: SwapState, d: SwapDevice, off: number): number {
  const mem = s.mem;
  const c = s.counters;
  c.swapCacheLookups++;
  const h = d.cache[off]!;
  if (h < 0) return 0;
  mem.folioGet(h);
  let freed = false;
  c.folioTrylocks++;
  if (mem.folioTest(h, PG.locked)) {
    c.folioTrylockFails++;
  } else {
    mem.folioSet(h, PG.locked);
    if (!mem.folioMapped(h) || vmSwapFull(s)) freed = folioFreeSwapLocked(s, h);
    mem.folioClear(h, PG.locked);
  }
  const nr = mem.folioNrPages(h);
  mem.folioPut(h);
  return freed ? nr : -nr;
}

/**
 * folio_free_swap() with the folio lock held (not tracked by the model): false if the folio is not in
 * the swap cache, is under writeback, or folio_swapped. Otherwise deletes it from the swap cache, sets
 * PG_dirty and returns true. `h` is a checked folio head.
 */
export function folioFreeSwapLocked(s: SwapState, h: number): boolean {
  const mem = s.mem;
  s.counters.folioFreeSwapCalls++;
  if (!mem.folioTest(h, PG.swapcache)) return false;
  if (mem.folioTest(h, PG.writeback)) return false;
  if (folioSwappedLocked(s, h)) return false;
  checkCallerRef(s, h, MODULE, "folioFreeSwap");
  deleteFromSwapCacheLocked(s, h);
  // The swap copy is gone: the folio's data lives only in memory again.
  mem.folioSet(h, PG.dirty);
  return true;
}

/**
 * folio_swapped(): some slot of the folio's swap range still has a nonzero swap count. False for a folio
 * not in the swap cache.
 */
export function folioSwapped(s: SwapState, head: number): boolean {
  const h = folioHeadOf(s, head, MODULE, "folioSwapped");
  if (!s.mem.folioTest(h, PG.swapcache)) return false;
  return folioSwappedLocked(s, h);
}

/** folio_swapped() body; the folio is in the swap cache. */
function folioSwappedLocked(s: SwapState, h: number): boolean {
  const mem = s.mem;
  const entry = mem.folioSwap(h);
  const d = deviceOfEntryTrusted(s, entry);
  const off = entry & SWP_OFFSET_MASK;
  const nr = mem.folioNrPages(h);
  s.counters.clusterLocks++;
  const map = d.map;
  for (let i = 0; i < nr; i++) {
    if ((map[off + i]! & COUNT_MASK) !== 0) return true;
  }
  return false;
}

/**
 * put_swap_folio(): drops SWAP_HAS_CACHE from the folio's nr slots under the cluster lock; a run left
 * with nothing else is freed whole under si->lock (swap_entry_range_free), other slots one by one.
 */
export function putSwapFolio(s: SwapState, d: SwapDevice, off: number, nr: number): void {
  const c = s.counters;
  const map = d.map;
  c.clusterLocks++;
  let onlyCache = nr > 1;
  for (let i = 0; onlyCache && i < nr; i++) onlyCache = map[off + i] === SWAP_HAS_CACHE;
  if (onlyCache) {
    c.deviceLocks++;
    for (let i = 0; i < nr; i++) map[off + i] = 0;
    for (let i = 0; i < nr; i++) d.slotFreed(off + i);
    c.slotsFreed += nr;
  } else {
    for (let i = 0; i < nr; i++) {
      const usage = map[off + i]! & ~SWAP_HAS_CACHE;
      map[off + i] = usage;
      if (usage === 0) {
        d.slotFreed(off + i);
        c.slotsFreed++;
      }
    }
  }
}

/** Device `type`, checked. */
export function deviceOf(s: SwapState, type: number, method: string): SwapDevice {
  const d = Number.isInteger(type) ? s.devs[type] : undefined;
  if (d === undefined)
    throw new SwapError("EINVAL", MODULE, method, `no swap device of type ${String(type)}`);
  return d;
}

/** get_swap_device(): pins the device of `entry`; false once swapoff has killed `si->users`. */
export function getSwapDevice(s: SwapState, entry: number): boolean {
  const d = swapDevice(s, entry, 1, MODULE, "getSwapDevice");
  if (d.swapoffState >= SWAP_KILLED) return false;
  d.users++;
  return true;
}

/** put_swap_device(). */
export function putSwapDevice(s: SwapState, entry: number): void {
  const d = s.devs[entry >>> SWP_OFFSET_BITS];
  if (d === undefined || d.users === 0) {
    throw new SwapError("EINVAL", MODULE, "putSwapDevice", `entry ${entry}: its device is not pinned`);
  }
  d.users--;
}

/** swapoff: SWP_WRITEOK cleared (del_from_avail_list): no allocation takes the device any more. */
export function swapoffStart(s: SwapState, type: number): void {
  const d = deviceOf(s, type, "swapoffStart");
  if (d.swapoffState !== SWAP_ON) {
    throw new SwapError("EINVAL", MODULE, "swapoffStart", `device ${type} is already being swapped off`);
  }
  d.swapoffState = SWAP_UNUSING;
}

/**
 * try_to_unuse's last loop over the swap cache: each slot of `type` in [from, to) (default: the whole
 * device) holding only SWAP_HAS_CACHE gets its folio locked (trylock) and freed from the swap cache when
 * folio_free_swap allows it.
 */
export function swapoffFreeCached(
  s: SwapState,
  type: number,
  from = 1,
  to = Number.POSITIVE_INFINITY,
): number {
  const d = deviceOf(s, type, "swapoffFreeCached");
  if (d.swapoffState !== SWAP_UNUSING) return 0;
  const mem = s.mem;
  const map = d.map;
  const end = Math.min(to, d.nrSlots);
  let n = 0;
  for (let o = Math.max(1, from); o < end; o++) {
    if (map[o] !== SWAP_HAS_CACHE) continue;
    const h = d.cache[o]!;
    if (h < 0 || mem.folioTest(h, PG.locked)) continue;
    mem.folioGet(h);
    mem.folioSet(h, PG.locked);
    if (folioFreeSwapLocked(s, h)) n++;
    mem.folioClear(h, PG.locked);
    mem.folioPut(h);
  }
  return n;
}

/**
 * The end of swapoff: with inuse_pages at 0, percpu_ref_kill(&si->users); once no pin is left
 * (wait_for_completion), swap_map is freed. Returns true when the device is gone.
 */
export function swapoffTryFinish(s: SwapState, type: number): boolean {
  const d = deviceOf(s, type, "swapoffTryFinish");
  if (d.swapoffState === SWAP_FREED) return true;
  if (d.swapoffState === SWAP_ON || d.nrFree !== d.nrUsable) return false;
  d.swapoffState = SWAP_KILLED;
  if (d.users > 0) return false;
  d.swapoffState = SWAP_FREED;
  return true;
}
