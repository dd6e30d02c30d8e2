// Models: folio_alloc_swap + add_to_swap + add_to_swap_cache, swapcache_prepare, swap_duplicate,
// swap_free_nr, free_swap_and_cache(_nr), __swap_entry_free, __try_to_reclaim_swap, folio_free_swap,
// folio_swapped, delete_from_swap_cache, put_swap_folio (mm/swapfile.c, mm/swap_state.c, v6.5 with the
// v6.10 free_swap_and_cache_nr and mTHP swap, and the v6.11 one-cluster-lock batching of entry frees), and
// free_swap_cache (v6.5 takes a page, 7.x a folio: any pfn of the folio is accepted).
// Omits: the per-CPU swap slot cache (a slot whose count reaches 0 is freed at once), count continuations
// (counts above SWAP_MAP_MAX throw), SWAP_MAP_SHMEM, memcg swap accounting (vm_swap_full is global),
// hibernation (pm_suspended_storage), swapoff, readahead, zswap, I/O (PG_writeback is set by the caller).

import type { PhysMem } from "@mmgather/folio";
import { PG } from "@mmgather/folio";
import { createSwapCounters, resetSwapCounters, type SwapCounters } from "./counters.js";
import {
  MAX_SWAP_SLOTS,
  MAX_SWAPFILES,
  SWAP_HAS_CACHE,
  SWAP_MAP_BAD,
  SWAP_MAP_MAX,
  SWAPFILE_CLUSTER,
  SWP_OFFSET_BITS,
  SWP_OFFSET_MASK,
} from "./entry.js";
import { SwapError } from "./errors.js";
import { SwapDevice } from "./swap-device.js";

/** Configuration of {@link createSwapSpace}: one record per swap device, tried in this order. */
export interface SwapSpaceConfig {
  /** Devices; `nrSlots` counts the header slot 0, so a device holds `nrSlots − 1` pages. */
  devices: readonly { nrSlots: number }[];
}

const MODULE = "swapcache";
/** Swap count bits of a swap_map byte (everything but SWAP_HAS_CACHE). */
const COUNT_MASK = 0xff & ~SWAP_HAS_CACHE;

/**
 * Swap space: devices with per-slot swap counts, the swap cache mapping entries to folios, and the
 * swap-out / swap-PTE / teardown operations on them. Folio state (PG_swapcache, PG_locked, PG_writeback,
 * PG_dirty, folio->swap, refcount) is read and written only through the PhysMem passed in.
 */
export class SwapSpace {
  /** Exact work counters; see each field. Reset with {@link SwapSpace.resetCounters}. */
  readonly counters: SwapCounters = createSwapCounters();
  private readonly mem: PhysMem;
  private readonly devs: SwapDevice[];
  private readonly totalUsable: number;
  private readonly pgSwapcache: number;
  private readonly pgLocked: number;
  private readonly pgWriteback: number;
  private readonly pgDirty: number;

  constructor(mem: PhysMem, config: SwapSpaceConfig) {
    const devices = config?.devices;
    if (!Array.isArray(devices) || devices.length < 1 || devices.length > MAX_SWAPFILES) {
      throw new SwapError(
        "EINVAL",
        MODULE,
        "createSwapSpace",
        `config.devices must be an array of 1..${MAX_SWAPFILES} devices, got ${String(devices?.length ?? devices)}`,
      );
    }
    if (typeof mem !== "object" || mem === null || typeof (mem as PhysMem).folioTest !== "function") {
      throw new SwapError("EINVAL", MODULE, "createSwapSpace", "mem must be a PhysMem from @mmgather/folio");
    }
    this.mem = mem;
    this.devs = [];
    let total = 0;
    for (let t = 0; t < devices.length; t++) {
      const n = devices[t]?.nrSlots;
      if (typeof n !== "number" || !Number.isInteger(n) || n < 2 || n > MAX_SWAP_SLOTS) {
        throw new SwapError(
          "EINVAL",
          MODULE,
          "createSwapSpace",
          `device ${t}: nrSlots must be an integer in 2..${MAX_SWAP_SLOTS} (slot 0 is the header), got ${String(n)}`,
        );
      }
      this.devs.push(new SwapDevice(t, n));
      total += n - 1;
    }
    this.totalUsable = total;
    this.pgSwapcache = PG.swapcache;
    this.pgLocked = PG.locked;
    this.pgWriteback = PG.writeback;
    this.pgDirty = PG.dirty;
  }

  // ---------------------------------------------------------------- readers

  /** Number of swap devices. */
  get nrDevices(): number {
    return this.devs.length;
  }

  /** Usable slots on all devices (headers excluded): total_swap_pages. */
  get totalSlots(): number {
    return this.totalUsable;
  }

  /** Slots in use on all devices: swap count > 0 or SWAP_HAS_CACHE. */
  slotsInUse(): number {
    let free = 0;
    for (let t = 0; t < this.devs.length; t++) free += this.devs[t]!.nrFree;
    return this.totalUsable - free;
  }

  /** Free slots on all devices: nr_swap_pages. */
  slotsFree(): number {
    return this.totalUsable - this.slotsInUse();
  }

  /** vm_swap_full(): fewer than half of all swap slots are free. */
  vmSwapFull(): boolean {
    return this.slotsFree() * 2 < this.totalUsable;
  }

  /** __swap_count(): how many swap PTEs (and other users) reference the slot, without the cache bit. */
  swapCount(entry: number): number {
    const d = this.device(entry, 1, "swapCount");
    return d.map[entry & SWP_OFFSET_MASK]! & COUNT_MASK;
  }

  /** The raw swap_map byte of a slot: swap count | SWAP_HAS_CACHE (0 = free). */
  swapMapValue(entry: number): number {
    const d = this.device(entry, 1, "swapMapValue");
    return d.map[entry & SWP_OFFSET_MASK]!;
  }

  /**
   * Head pfn of the folio the swap cache holds for `entry`, or −1; not counted and takes no reference
   * (for tests, invariant checks and visualisation; model code uses {@link SwapSpace.swapCacheGetFolio}).
   */
  swapCacheFolio(entry: number): number {
    const d = this.device(entry, 1, "swapCacheFolio");
    return d.cache[entry & SWP_OFFSET_MASK]!;
  }

  /**
   * swap_cache_get_folio(): looks the entry up in the swap cache (counted in swapCacheLookups). On a hit
   * returns the head pfn **with a new folio reference** the caller must drop (mem.folioPut); else −1.
   */
  swapCacheGetFolio(entry: number): number {
    const d = this.device(entry, 1, "swapCacheGetFolio");
    this.counters.swapCacheLookups++;
    const head = d.cache[entry & SWP_OFFSET_MASK]!;
    if (head >= 0) this.mem.folioGet(head);
    return head;
  }

  /**
   * folio_swapped(): some slot of the folio's swap range still has a nonzero swap count (a swap PTE, e.g.
   * of another process, still references it). False for a folio not in the swap cache.
   */
  folioSwapped(head: number): boolean {
    const h = this.head(head, "folioSwapped");
    if (!this.mem.folioTest(h, this.pgSwapcache)) return false;
    return this.swappedLocked(h);
  }

  // ---------------------------------------------------------------- swap-out and swap-in

  /**
   * folio_alloc_swap() + add_to_swap_cache() as add_to_swap() does them: allocates folio_nr_pages slots,
   * contiguous and naturally aligned (a run never crosses a cluster), marks them SWAP_HAS_CACHE, adds the
   * folio to the swap cache with nr references, sets PG_swapcache, folio->swap and PG_dirty.
   * Returns the first entry. Throws ENOSPC when no device has such a run.
   */
  folioAllocSwap(head: number): number {
    const mem = this.mem;
    const h = this.head(head, "folioAllocSwap");
    if (mem.folioTest(h, this.pgSwapcache)) {
      throw new SwapError(
        "IN_SWAPCACHE",
        MODULE,
        "folioAllocSwap",
        `folio ${h} is already in the swap cache (entry ${mem.folioSwap(h)})`,
      );
    }
    this.checkNotPageCache(h, "folioAllocSwap");
    const nr = mem.folioNrPages(h);
    if (nr > SWAPFILE_CLUSTER) {
      throw new SwapError(
        "EINVAL",
        MODULE,
        "folioAllocSwap",
        `folio ${h} has ${nr} pages; a folio larger than one swap cluster (${SWAPFILE_CLUSTER}) must be split first`,
      );
    }
    const c = this.counters;
    for (let t = 0; t < this.devs.length; t++) {
      const d = this.devs[t]!;
      if (d.nrFree < nr) continue;
      c.deviceLocks++;
      const off = d.findFreeRange(nr);
      if (off === 0) continue;
      c.clusterLocks++;
      const map = d.map;
      for (let i = 0; i < nr; i++) map[off + i] = SWAP_HAS_CACHE;
      d.slotsTaken(off, nr);
      c.slotsAllocated += nr;
      const entry = ((t << SWP_OFFSET_BITS) | off) >>> 0;
      this.addLocked(d, off, h, nr, entry);
      // add_to_swap: the folio's only copy of the data is now about to be written out.
      mem.folioSet(h, this.pgDirty);
      return entry;
    }
    throw new SwapError(
      "ENOSPC",
      MODULE,
      "folioAllocSwap",
      `no free naturally aligned run of ${nr} swap slot(s) for folio ${h} (${this.slotsFree()} of ${this.totalUsable} slots free)`,
    );
  }

  /**
   * swapcache_prepare() + add_to_swap_cache() on the swap-in path: puts a folio that is not in the swap
   * cache into it for the already-used slots [entry, entry + folio_nr_pages). The first offset must be a
   * multiple of the folio size; every slot must be in use (count > 0) and have no cached folio.
   */
  addToSwapCache(head: number, entry: number): void {
    const mem = this.mem;
    const h = this.head(head, "addToSwapCache");
    if (mem.folioTest(h, this.pgSwapcache)) {
      throw new SwapError(
        "IN_SWAPCACHE",
        MODULE,
        "addToSwapCache",
        `folio ${h} is already in the swap cache (entry ${mem.folioSwap(h)})`,
      );
    }
    this.checkNotPageCache(h, "addToSwapCache");
    const nr = mem.folioNrPages(h);
    const d = this.device(entry, nr, "addToSwapCache");
    const off = entry & SWP_OFFSET_MASK;
    if (off % nr !== 0) {
      throw new SwapError(
        "EINVAL",
        MODULE,
        "addToSwapCache",
        `entry ${entry}: offset ${off} is not aligned to the folio's ${nr} pages`,
      );
    }
    const map = d.map;
    for (let i = 0; i < nr; i++) {
      const v = map[off + i]!;
      if ((v & COUNT_MASK) === 0) {
        throw new SwapError(
          "DUP_FREE_SLOT",
          MODULE,
          "addToSwapCache",
          `slot ${d.type}:${off + i} has no swap count; swapcache_prepare needs a slot in use`,
        );
      }
      if ((v & SWAP_HAS_CACHE) !== 0) {
        throw new SwapError(
          "CACHE_EXISTS",
          MODULE,
          "addToSwapCache",
          `slot ${d.type}:${off + i} already has folio ${d.cache[off + i]} in the swap cache`,
        );
      }
    }
    this.counters.clusterLocks++;
    for (let i = 0; i < nr; i++) map[off + i]! |= SWAP_HAS_CACHE;
    this.addLocked(d, off, h, nr, entry);
  }

  private checkNotPageCache(h: number, method: string): void {
    const mem = this.mem;
    if (!mem.folioTest(h, PG.anon) && mem.folioMapping(h) >= 0) {
      throw new SwapError(
        "IN_PAGE_CACHE",
        MODULE,
        method,
        `folio ${h} is in page cache mapping ${mem.folioMapping(h)}; remove it from the page cache first`,
      );
    }
  }

  private addLocked(d: SwapDevice, off: number, h: number, nr: number, entry: number): void {
    const mem = this.mem;
    mem.folioRefAdd(h, nr);
    mem.folioSet(h, this.pgSwapcache);
    mem.folioSetSwap(h, entry);
    const cache = d.cache;
    for (let i = 0; i < nr; i++) cache[off + i] = h;
    this.counters.swapCacheAdds++;
  }

  // ---------------------------------------------------------------- swap PTEs

  /**
   * swap_duplicate() for `nr` consecutive entries: one more swap PTE (made by the page-table owner, at
   * unmap-for-reclaim or fork) references each slot. One cluster lock per cluster the run touches.
   */
  swapDuplicate(entry: number, nr = 1): void {
    const d = this.device(entry, nr, "swapDuplicate");
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
    const c = this.counters;
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
   * reclaim their swap cache (do_swap_page after mapping the folio back). Slots left with no count and no
   * cache are freed.
   */
  swapFree(entry: number, nr = 1): void {
    const d = this.device(entry, nr, "swapFree");
    this.putEntries(d, entry & SWP_OFFSET_MASK, nr, "swapFree");
  }

  /**
   * free_swap_and_cache(): a swap PTE is zapped. Same as freeSwapAndCacheNr(entry, 1) (v6.10 made the
   * single form this wrapper).
   */
  freeSwapAndCache(entry: number): void {
    const d = this.device(entry, 1, "freeSwapAndCache");
    this.freeNr(d, entry & SWP_OFFSET_MASK, 1, "freeSwapAndCache");
  }

  /**
   * free_swap_and_cache_nr(): `nr` consecutive swap PTEs of one device are zapped. First drops one count
   * from every slot (one cluster-lock round trip per cluster the run touches), then, only if some slot is
   * left holding nothing but SWAP_HAS_CACHE, walks the run once per folio calling __try_to_reclaim_swap
   * (lookup, trylock, free if unmapped or swap is full, drop the lookup reference).
   */
  freeSwapAndCacheNr(entry: number, nr: number): void {
    const d = this.device(entry, nr, "freeSwapAndCacheNr");
    this.freeNr(d, entry & SWP_OFFSET_MASK, nr, "freeSwapAndCacheNr");
  }

  private freeNr(d: SwapDevice, off: number, nr: number, method: string): void {
    if (!this.putEntries(d, off, nr, method)) return;
    const map = d.map;
    const end = off + nr;
    for (let o = off; o < end; ) {
      let step = 1;
      if (map[o] === SWAP_HAS_CACHE) {
        let r = this.tryToReclaimSwap(d, o);
        if (r < 0) r = -r;
        else if (r === 0) r = 1;
        // Folios sit naturally aligned in swap: skip to the next folio boundary.
        step = Math.ceil((o + 1) / r) * r - o;
      }
      o += step;
    }
  }

  /**
   * Drops one count from each slot of [off, off + nr) under one cluster lock per cluster touched; frees
   * slots left at 0. Returns whether any slot was left with only SWAP_HAS_CACHE. Validates every slot
   * before changing any.
   */
  private putEntries(d: SwapDevice, off: number, nr: number, method: string): boolean {
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
    const c = this.counters;
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
  private tryToReclaimSwap(d: SwapDevice, off: number): number {
    const mem = this.mem;
    const c = this.counters;
    c.swapCacheLookups++;
    const h = d.cache[off]!;
    if (h < 0) return 0;
    mem.folioGet(h);
    let freed = false;
    c.folioTrylocks++;
    if (mem.folioTest(h, this.pgLocked)) {
      c.folioTrylockFails++;
    } else {
      mem.folioSet(h, this.pgLocked);
      if (!mem.folioMapped(h) || this.vmSwapFull()) freed = this.freeSwapLocked(h);
      mem.folioClear(h, this.pgLocked);
    }
    const nr = mem.folioNrPages(h);
    mem.folioPut(h);
    return freed ? nr : -nr;
  }

  // ---------------------------------------------------------------- leaving the swap cache

  /**
   * free_swap_cache(): called for each page / folio the gather frees. If the folio is in the swap cache,
   * not mapped anywhere and folio_trylock succeeds, runs folio_free_swap and unlocks. Accepts any pfn of
   * the folio. Returns whether the folio left the swap cache. The caller must hold a folio reference.
   */
  freeSwapCache(pfn: number): boolean {
    const mem = this.mem;
    const c = this.counters;
    c.freeSwapCacheCalls++;
    const h = this.anyPfnHead(pfn, "freeSwapCache");
    if (!mem.folioTest(h, this.pgSwapcache) || mem.folioMapped(h)) return false;
    c.folioTrylocks++;
    if (mem.folioTest(h, this.pgLocked)) {
      c.folioTrylockFails++;
      return false;
    }
    mem.folioSet(h, this.pgLocked);
    try {
      return this.freeSwapLocked(h);
    } finally {
      mem.folioClear(h, this.pgLocked);
    }
  }

  /**
   * folio_free_swap(): the caller holds the folio lock (not tracked by the model). Returns false if the
   * folio is not in the swap cache, is under writeback, or folio_swapped (a swap PTE still references one
   * of its slots). Otherwise deletes it from the swap cache (slots freed unless referenced, nr folio
   * references dropped), sets PG_dirty and returns true.
   */
  folioFreeSwap(head: number): boolean {
    return this.freeSwapLocked(this.head(head, "folioFreeSwap"));
  }

  private freeSwapLocked(h: number): boolean {
    const mem = this.mem;
    this.counters.folioFreeSwapCalls++;
    if (!mem.folioTest(h, this.pgSwapcache)) return false;
    if (mem.folioTest(h, this.pgWriteback)) return false;
    if (this.swappedLocked(h)) return false;
    this.checkCallerRef(h, "folioFreeSwap");
    this.deleteLocked(h);
    // The swap copy is gone: the folio's data lives only in memory again.
    mem.folioSet(h, this.pgDirty);
    return true;
  }

  /**
   * delete_from_swap_cache() (+ put_swap_folio): removes a folio from the swap cache whatever its swap
   * counts (reclaim's __remove_mapping, swap-in completion). Slots still referenced by swap PTEs stay in
   * use without the cache bit; the others are freed. Drops the cache's nr folio references; the caller
   * must hold another one. Throws if the folio is not in the swap cache or is under writeback.
   */
  deleteFromSwapCache(head: number): void {
    const mem = this.mem;
    const h = this.head(head, "deleteFromSwapCache");
    if (!mem.folioTest(h, this.pgSwapcache)) {
      throw new SwapError(
        "NOT_IN_SWAPCACHE",
        MODULE,
        "deleteFromSwapCache",
        `folio ${h} is not in the swap cache`,
      );
    }
    if (mem.folioTest(h, this.pgWriteback)) {
      throw new SwapError(
        "WRITEBACK",
        MODULE,
        "deleteFromSwapCache",
        `folio ${h} is under writeback and may not leave the swap cache`,
      );
    }
    this.checkCallerRef(h, "deleteFromSwapCache");
    this.deleteLocked(h);
  }

  private checkCallerRef(h: number, method: string): void {
    const nr = this.mem.folioNrPages(h);
    const ref = this.mem.folioRef(h);
    if (ref <= nr) {
      throw new SwapError(
        "NO_CALLER_REF",
        MODULE,
        method,
        `folio ${h} has refcount ${ref}, only the swap cache's ${nr}; the caller must hold a reference`,
      );
    }
  }

  /** folio_swapped() body; the folio is in the swap cache. */
  private swappedLocked(h: number): boolean {
    const mem = this.mem;
    const entry = mem.folioSwap(h);
    const d = this.devs[entry >>> SWP_OFFSET_BITS]!;
    const off = entry & SWP_OFFSET_MASK;
    const nr = mem.folioNrPages(h);
    this.counters.clusterLocks++;
    const map = d.map;
    for (let i = 0; i < nr; i++) {
      if ((map[off + i]! & COUNT_MASK) !== 0) return true;
    }
    return false;
  }

  /** __delete_from_swap_cache + put_swap_folio + folio_ref_sub(nr). Preconditions already checked. */
  private deleteLocked(h: number): void {
    const mem = this.mem;
    const c = this.counters;
    const entry = mem.folioSwap(h);
    const d = this.devs[entry >>> SWP_OFFSET_BITS]!;
    const off = entry & SWP_OFFSET_MASK;
    const nr = mem.folioNrPages(h);
    const cache = d.cache;
    for (let i = 0; i < nr; i++) cache[off + i] = -1;
    mem.folioSetSwap(h, 0);
    mem.folioClear(h, this.pgSwapcache);
    c.swapCacheDeletes++;

    // put_swap_folio: drop SWAP_HAS_CACHE under the cluster lock.
    const map = d.map;
    c.clusterLocks++;
    let onlyCache = nr > 1;
    for (let i = 0; onlyCache && i < nr; i++) onlyCache = map[off + i] === SWAP_HAS_CACHE;
    if (onlyCache) {
      // The whole run is free: swap_entry_range_free under si->lock.
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
    mem.folioRefSubAndTest(h, nr);
  }

  // ---------------------------------------------------------------- checks and digests

  /** Sets every counter back to 0. */
  resetCounters(): void {
    resetSwapCounters(this.counters);
  }

  /**
   * Throws SwapError('INVARIANT') naming the first broken rule: header slots bad and uncached; counts
   * within 0..SWAP_MAP_MAX; SWAP_HAS_CACHE iff the swap cache holds a folio for the slot, and that folio is
   * allocated, has PG_swapcache, folio->swap covering the slot (naturally aligned, every slot of its range
   * pointing back at it) and at least nr references; per-cluster and per-device free counts match the map.
   */
  checkInvariants(): void {
    for (let t = 0; t < this.devs.length; t++) {
      const d = this.devs[t]!;
      const map = d.map;
      const cache = d.cache;
      if (map[0] !== SWAP_MAP_BAD || cache[0] !== -1) {
        this.broken(
          `device ${t}: header slot 0 must be SWAP_MAP_BAD and uncached (map ${map[0]}, cache ${cache[0]})`,
        );
      }
      let free = 0;
      let clusterFree = 0;
      for (let o = 1; o < d.nrSlots; o++) {
        if (o % SWAPFILE_CLUSTER === 0) {
          this.checkCluster(d, o / SWAPFILE_CLUSTER - 1, clusterFree);
          clusterFree = 0;
        }
        const v = map[o]!;
        if (v === 0) {
          free++;
          clusterFree++;
          if (cache[o] !== -1)
            this.broken(`slot ${t}:${o} is free but the swap cache holds folio ${cache[o]}`);
          continue;
        }
        const count = v & COUNT_MASK;
        if (count > SWAP_MAP_MAX)
          this.broken(`slot ${t}:${o} has swap count ${count} (> SWAP_MAP_MAX: underflow?)`);
        const hasCache = (v & SWAP_HAS_CACHE) !== 0;
        const h = cache[o]!;
        if (hasCache !== h >= 0) {
          this.broken(
            hasCache
              ? `slot ${t}:${o} has SWAP_HAS_CACHE but the swap cache holds no folio for it`
              : `slot ${t}:${o} maps to folio ${h} in the swap cache but lacks SWAP_HAS_CACHE`,
          );
        }
        if (h >= 0) this.checkCachedFolio(t, o, h);
      }
      this.checkCluster(d, d.clusterFree.length - 1, clusterFree);
      if (free !== d.nrFree)
        this.broken(`device ${t}: ${free} free slots in swap_map, nrFree says ${d.nrFree}`);
    }
    this.checkSwapcacheFolios();
  }

  /** From the folio side: every folio with PG_swapcache is what the swap cache holds for its folio->swap. */
  private checkSwapcacheFolios(): void {
    const mem = this.mem;
    const nrPages = mem.nrPages;
    for (let pfn = 0; pfn < nrPages; ) {
      if (mem.isFree(pfn) || mem.folioHead(pfn) !== pfn) {
        pfn++;
        continue;
      }
      const nr = mem.folioNrPages(pfn);
      if (mem.folioTest(pfn, this.pgSwapcache)) {
        const e = mem.folioSwap(pfn);
        const d = this.devs[e >>> SWP_OFFSET_BITS];
        const off = e & SWP_OFFSET_MASK;
        if (d === undefined || off === 0 || off + nr > d.nrSlots || d.cache[off] !== pfn) {
          this.broken(
            `folio ${pfn} has PG_swapcache and folio->swap ${e}, but the swap cache does not hold it there`,
          );
        }
      }
      pfn += nr;
    }
  }

  private checkCluster(d: SwapDevice, cl: number, free: number): void {
    if (d.clusterFree[cl] !== free) {
      this.broken(
        `device ${d.type} cluster ${cl}: ${free} free slots in swap_map, counter says ${d.clusterFree[cl]}`,
      );
    }
  }

  private checkCachedFolio(t: number, o: number, h: number): void {
    const mem = this.mem;
    let ok: boolean;
    try {
      ok = !mem.isFree(h) && mem.folioHead(h) === h;
    } catch {
      ok = false;
    }
    if (!ok) this.broken(`slot ${t}:${o}: swap cache holds ${h}, which is not an allocated folio head`);
    if (!mem.folioTest(h, this.pgSwapcache))
      this.broken(`slot ${t}:${o}: cached folio ${h} lacks PG_swapcache`);
    const e = mem.folioSwap(h);
    const nr = mem.folioNrPages(h);
    const start = e & SWP_OFFSET_MASK;
    if (e >>> SWP_OFFSET_BITS !== t || o < start || o >= start + nr || start % nr !== 0) {
      this.broken(`slot ${t}:${o}: cached folio ${h} has folio->swap ${e}, which does not cover it aligned`);
    }
    if (o === start) {
      const cache = this.devs[t]!.cache;
      for (let i = 0; i < nr; i++) {
        if (cache[start + i] !== h)
          this.broken(
            `slot ${t}:${start + i}: part of folio ${h}'s swap range but cached as ${cache[start + i]}`,
          );
      }
      const ref = mem.folioRef(h);
      if (ref < nr) this.broken(`folio ${h}: refcount ${ref} below the swap cache's ${nr} references`);
    }
  }

  private broken(msg: string): never {
    throw new SwapError("INVARIANT", MODULE, "checkInvariants", msg);
  }

  /**
   * Digest of the semantic state: every slot's swap_map byte and swap-cache folio on every device. Not
   * the allocator cursor, not counters.
   */
  stateDigest(): string {
    let h1 = 0x811c9dc5;
    let h2 = 0x9e3779b9;
    for (let t = 0; t < this.devs.length; t++) {
      const d = this.devs[t]!;
      const map = d.map;
      const cache = d.cache;
      for (let o = 0; o < d.nrSlots; o++) {
        const v = map[o]! | ((cache[o]! + 1) * 256);
        h1 = Math.imul(h1 ^ v, 0x01000193);
        h2 = Math.imul(h2 ^ (v + o), 0x85ebca6b) ^ (h2 >>> 13);
      }
      h1 = Math.imul(h1 ^ (0xd00d + t), 0x01000193);
    }
    const hex = (x: number) => (x >>> 0).toString(16).padStart(8, "0");
    return `swap:${this.devs.length}:${this.slotsInUse()}:${hex(h1)}${hex(h2)}`;
  }

  /** Model memory in bytes: the typed arrays of every device. */
  stateBytes(): number {
    let b = 0;
    for (let t = 0; t < this.devs.length; t++) b += this.devs[t]!.bytes();
    return b;
  }

  // ---------------------------------------------------------------- validation

  /** The device of `entry`, after checking that [entry, entry + nr) are usable slots of it. */
  private device(entry: number, nr: number, method: string): SwapDevice {
    if (!Number.isInteger(nr) || nr < 1) {
      throw new SwapError("EINVAL", MODULE, method, `nr must be an integer ≥ 1, got ${String(nr)}`);
    }
    if (typeof entry !== "number" || !Number.isInteger(entry) || entry <= 0 || entry > 0x7fffffff) {
      throw new SwapError("BAD_ENTRY", MODULE, method, `${String(entry)} is not a swap entry (0 means none)`);
    }
    const t = entry >>> SWP_OFFSET_BITS;
    const off = entry & SWP_OFFSET_MASK;
    const d = this.devs[t];
    if (d === undefined) {
      throw new SwapError("BAD_ENTRY", MODULE, method, `entry ${entry}: no swap device of type ${t}`);
    }
    if (off === 0) {
      throw new SwapError("BAD_ENTRY", MODULE, method, `entry ${entry}: offset 0 is device ${t}'s header`);
    }
    if (off + nr > d.nrSlots) {
      throw new SwapError(
        "BAD_ENTRY",
        MODULE,
        method,
        `entries ${t}:${off}..${off + nr - 1} run past device ${t}'s ${d.nrSlots} slots`,
      );
    }
    return d;
  }

  /** Checks that `pfn` is the head of an allocated folio. */
  private head(pfn: number, method: string): number {
    const h = this.anyPfnHead(pfn, method);
    if (h !== pfn) {
      throw new SwapError(
        "BAD_FOLIO",
        MODULE,
        method,
        `pfn ${pfn} is a tail page of folio ${h}, not a folio head`,
      );
    }
    return h;
  }

  /** page_folio(): the head of the allocated folio containing `pfn`. */
  private anyPfnHead(pfn: number, method: string): number {
    if (typeof pfn !== "number" || !Number.isInteger(pfn) || pfn < 0) {
      throw new SwapError("BAD_FOLIO", MODULE, method, `${String(pfn)} is not a pfn`);
    }
    let h: number;
    try {
      if (this.mem.isFree(pfn)) {
        throw new SwapError(
          "BAD_FOLIO",
          MODULE,
          method,
          `pfn ${pfn} is free, not part of an allocated folio`,
        );
      }
      h = this.mem.folioHead(pfn);
    } catch (e) {
      if (e instanceof SwapError) throw e;
      throw new SwapError("BAD_FOLIO", MODULE, method, `pfn ${pfn} is not a valid page frame`, { cause: e });
    }
    return h;
  }
}

/** Creates a swap space over `mem` with the given devices (swapon of each, in order). */
export function createSwapSpace(mem: PhysMem, config: SwapSpaceConfig): SwapSpace {
  return new SwapSpace(mem, config);
}
