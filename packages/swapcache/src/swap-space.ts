// Models: the swap space of a machine as one object — the facade over mm/swapfile.c (swapfile.ts) and
// mm/swap_state.c (swap-state.ts), with swapon of each configured device (SwapDevice) at creation.
// Each method names the kernel function it models; the model lives in the file of that function.
// Omits: see swapfile.ts and swap-state.ts.

import type { PhysMem } from "@mmgather/folio";
import { createSwapCounters, resetSwapCounters, type SwapCounters } from "./counters.js";
import { MAX_SWAP_SLOTS, MAX_SWAPFILES } from "./entry.js";
import { SwapError } from "./errors.js";
import { checkSwapInvariants, swapStateBytes, swapStateDigest } from "./invariants.js";
import { folioHeadOf, type SwapState, slotsFree, slotsInUse, vmSwapFull } from "./state.js";
import { SwapDevice } from "./swap-device.js";
import {
  addToSwapCache,
  deleteFromSwapCache,
  freeSwapCache,
  swapCacheFolio,
  swapCacheGetFolio,
} from "./swap-state.js";
import {
  deviceOf,
  folioAllocSwap,
  folioFreeSwapLocked,
  folioSwapped,
  freeSwapAndCacheNr,
  getSwapDevice,
  putSwapDevice,
  swapCount,
  swapDuplicate,
  swapFree,
  swapMapValue,
  swapoffFreeCached,
  swapoffStart,
  swapoffTryFinish,
} from "./swapfile.js";

/** Configuration of {@link createSwapSpace}: one record per swap device, tried in this order. */
export interface SwapSpaceConfig {
  /** Devices; `nrSlots` counts the header slot 0, so a device holds `nrSlots − 1` pages. */
  devices: readonly { nrSlots: number }[];
}

/**
 * Swap space: devices with per-slot swap counts, the swap cache mapping entries to folios, and the
 * swap-out / swap-PTE / teardown operations on them. Folio state (PG_swapcache, PG_locked, PG_writeback,
 * PG_dirty, folio->swap, refcount) is read and written only through the PhysMem passed in.
 */
export class SwapSpace {
  /** Exact work counters; see each field. Reset with {@link SwapSpace.resetCounters}. */
  readonly counters: SwapCounters;
  private readonly s: SwapState;

  constructor(mem: PhysMem, config: SwapSpaceConfig) {
    const m = "swapon";
    const devices = config?.devices;
    if (!Array.isArray(devices) || devices.length < 1 || devices.length > MAX_SWAPFILES) {
      throw new SwapError(
        "EINVAL",
        "swapfile",
        m,
        `config.devices must be an array of 1..${MAX_SWAPFILES} devices, got ${String(devices?.length ?? devices)}`,
      );
    }
    if (typeof mem !== "object" || mem === null || typeof (mem as PhysMem).folioTest !== "function") {
      throw new SwapError("EINVAL", "swapfile", m, "mem must be a PhysMem from @mmgather/folio");
    }
    const devs: SwapDevice[] = [];
    let total = 0;
    for (let t = 0; t < devices.length; t++) {
      const n = devices[t]?.nrSlots;
      if (typeof n !== "number" || !Number.isInteger(n) || n < 2 || n > MAX_SWAP_SLOTS) {
        throw new SwapError(
          "EINVAL",
          "swapfile",
          m,
          `device ${t}: nrSlots must be an integer in 2..${MAX_SWAP_SLOTS} (slot 0 is the header), got ${String(n)}`,
        );
      }
      devs.push(new SwapDevice(t, n));
      total += n - 1;
    }
    this.counters = createSwapCounters();
    this.s = { mem, devs, totalUsable: total, counters: this.counters, parallelWindow: null };
  }

  // ---------------------------------------------------------------- readers

  /** Number of swap devices. */
  get nrDevices(): number {
    return this.s.devs.length;
  }

  /** Usable slots on all devices (headers excluded): total_swap_pages. */
  get totalSlots(): number {
    return this.s.totalUsable;
  }

  /** Slots in use on all devices: swap count > 0 or SWAP_HAS_CACHE. */
  slotsInUse(): number {
    return slotsInUse(this.s);
  }

  /** Free slots on all devices: nr_swap_pages. */
  slotsFree(): number {
    return slotsFree(this.s);
  }

  /** vm_swap_full(): fewer than half of all swap slots are free. */
  vmSwapFull(): boolean {
    return vmSwapFull(this.s);
  }

  /** __swap_count(): how many swap PTEs (and other users) reference the slot, without the cache bit. */
  swapCount(entry: number): number {
    return swapCount(this.s, entry);
  }

  /** The raw swap_map byte of a slot: swap count | SWAP_HAS_CACHE (0 = free). */
  swapMapValue(entry: number): number {
    return swapMapValue(this.s, entry);
  }

  /**
   * Head pfn of the folio the swap cache holds for `entry`, or −1; not counted and takes no reference
   * (for tests, invariant checks and visualisation; model code uses {@link SwapSpace.swapCacheGetFolio}).
   */
  swapCacheFolio(entry: number): number {
    return swapCacheFolio(this.s, entry);
  }

  /**
   * swap_cache_get_folio(): looks the entry up in the swap cache (counted in swapCacheLookups). On a hit
   * returns the head pfn **with a new folio reference** the caller must drop (mem.folioPut); else −1.
   */
  swapCacheGetFolio(entry: number): number {
    return swapCacheGetFolio(this.s, entry);
  }

  /**
   * folio_swapped(): some slot of the folio's swap range still has a nonzero swap count (a swap PTE, e.g.
   * of another process, still references it). False for a folio not in the swap cache.
   */
  folioSwapped(head: number): boolean {
    return folioSwapped(this.s, head);
  }

  // ---------------------------------------------------------------- swap-out and swap-in

  /**
   * folio_alloc_swap() + add_to_swap_cache() as add_to_swap() does them: allocates folio_nr_pages slots,
   * contiguous and naturally aligned (a run never crosses a cluster), marks them SWAP_HAS_CACHE, adds the
   * folio to the swap cache with nr references, sets PG_swapcache, folio->swap and PG_dirty.
   * Returns the first entry. Throws ENOSPC when no device has such a run.
   */
  folioAllocSwap(head: number): number {
    return folioAllocSwap(this.s, head);
  }

  /**
   * swapcache_prepare() + add_to_swap_cache() on the swap-in path: puts a folio that is not in the swap
   * cache into it for the already-used slots [entry, entry + folio_nr_pages). The first offset must be a
   * multiple of the folio size; every slot must be in use (count > 0) and have no cached folio.
   */
  addToSwapCache(head: number, entry: number): void {
    addToSwapCache(this.s, head, entry);
  }

  // ---------------------------------------------------------------- swap PTEs

  /**
   * swap_duplicate() for `nr` consecutive entries: one more swap PTE (made by the page-table owner, at
   * unmap-for-reclaim or fork) references each slot. One cluster lock per cluster the run touches.
   */
  swapDuplicate(entry: number, nr = 1): void {
    swapDuplicate(this.s, entry, nr);
  }

  /**
   * swap_free_nr(): drops one swap-PTE reference from each of `nr` consecutive slots without trying to
   * reclaim their swap cache (do_swap_page after mapping the folio back). Slots left with no count and no
   * cache are freed.
   */
  swapFree(entry: number, nr = 1): void {
    swapFree(this.s, entry, nr);
  }

  /**
   * free_swap_and_cache(): a swap PTE is zapped. Same as freeSwapAndCacheNr(entry, 1) (v6.10 made the
   * single form this wrapper).
   */
  freeSwapAndCache(entry: number): void {
    freeSwapAndCacheNr(this.s, entry, 1, "freeSwapAndCache", true);
  }

  /**
   * free_swap_and_cache_nr(): `nr` consecutive swap PTEs of one device are zapped. First drops one count
   * from every slot (one cluster-lock round trip per cluster the run touches), then, only if some slot is
   * left holding nothing but SWAP_HAS_CACHE, walks the run once per folio calling __try_to_reclaim_swap
   * (lookup, trylock, free if unmapped or swap is full, drop the lookup reference).
   */
  freeSwapAndCacheNr(entry: number, nr: number, opts: FreeSwapOptions = {}): void {
    freeSwapAndCacheNr(this.s, entry, nr, "freeSwapAndCacheNr", opts.pinDevice ?? true);
  }

  // ---------------------------------------------------------------- swapoff

  /** get_swap_device(): pins the device of `entry` (`si->users`); false once swapoff killed the ref. */
  getSwapDevice(entry: number): boolean {
    return getSwapDevice(this.s, entry);
  }

  /** put_swap_device(): drops a pin taken by getSwapDevice. */
  putSwapDevice(entry: number): void {
    putSwapDevice(this.s, entry);
  }

  /** Slots of device `type` in use (`si->inuse_pages`): a swap count or SWAP_HAS_CACHE. */
  inusePages(type: number): number {
    const d = deviceOf(this.s, type, "inusePages");
    return d.nrUsable - d.nrFree;
  }

  /** swapoff's state of device `type`: SWAP_ON, SWAP_UNUSING, SWAP_KILLED or SWAP_FREED. */
  swapoffState(type: number): number {
    return deviceOf(this.s, type, "swapoffState").swapoffState;
  }

  /** swapoff: clears SWP_WRITEOK (no new allocations on the device) before try_to_unuse. */
  swapoffStart(type: number): void {
    swapoffStart(this.s, type);
  }

  /**
   * try_to_unuse's last loop: every slot of `type` left holding only SWAP_HAS_CACHE — among the `nr`
   * slots from `offset` when given, else on the whole device — has its folio freed from the swap cache
   * (folio_free_swap, when the folio lock is free and it is not under writeback). Returns how many
   * folios left the cache.
   */
  swapoffFreeCached(type: number, offset = 1, nr = Number.POSITIVE_INFINITY): number {
    return swapoffFreeCached(this.s, type, offset, offset + nr);
  }

  /**
   * The end of swapoff once `inuse_pages` is 0: percpu_ref_kill(&si->users), then — when no
   * get_swap_device pin is left — free swap_map. Returns true when the device is gone.
   */
  swapoffTryFinish(type: number): boolean {
    return swapoffTryFinish(this.s, type);
  }

  /**
   * The hook a parallel swapoff uses to run inside free_swap_and_cache_nr, between the count drop and
   * the swap_map read after it (null: none).
   */
  setParallelWindow(fn: ((type: number, offset: number, nr: number) => void) | null): void {
    this.s.parallelWindow = fn;
  }

  // ---------------------------------------------------------------- leaving the swap cache

  /**
   * free_swap_cache(): called for each page / folio the gather frees. If the folio is in the swap cache,
   * not mapped anywhere and folio_trylock succeeds, runs folio_free_swap and unlocks. Accepts any pfn of
   * the folio. Returns whether the folio left the swap cache. The caller must hold a folio reference.
   */
  freeSwapCache(pfn: number): boolean {
    return freeSwapCache(this.s, pfn);
  }

  /**
   * folio_free_swap(): the caller holds the folio lock (not tracked by the model). Returns false if the
   * folio is not in the swap cache, is under writeback, or folio_swapped (a swap PTE still references one
   * of its slots). Otherwise deletes it from the swap cache (slots freed unless referenced, nr folio
   * references dropped), sets PG_dirty and returns true.
   */
  folioFreeSwap(head: number): boolean {
    return folioFreeSwapLocked(this.s, folioHeadOf(this.s, head, "swapfile", "folioFreeSwap"));
  }

  /**
   * delete_from_swap_cache() (+ put_swap_folio): removes a folio from the swap cache whatever its swap
   * counts (reclaim's __remove_mapping, swap-in completion). Slots still referenced by swap PTEs stay in
   * use without the cache bit; the others are freed. Drops the cache's nr folio references; the caller
   * must hold another one. Throws if the folio is not in the swap cache or is under writeback.
   */
  deleteFromSwapCache(head: number): void {
    deleteFromSwapCache(this.s, head);
  }

  /**
   * Makes this swap space an exact copy of `src` (a model facility, nothing the kernel does): every
   * device's swap_map, swap-cache index, cluster free counts, allocation cursor, swapoff state and
   * users, and the counters. Folio state is not touched (copy the PhysMem itself with its `copyFrom`);
   * this space keeps its own PhysMem. Arrays are copied into this space's own. `src` must have the same
   * devices, and no swapoff window open (EINVAL otherwise).
   */
  copyFrom(src: SwapSpace): void {
    const m = "copyFrom";
    if (!(src instanceof SwapSpace))
      throw new SwapError("EINVAL", "swapfile", m, "src must be a SwapSpace from createSwapSpace");
    const a = this.s;
    const b = src.s;
    if (a.devs.length !== b.devs.length || a.devs.some((d, t) => d.nrSlots !== b.devs[t]!.nrSlots))
      throw new SwapError("EINVAL", "swapfile", m, "the two swap spaces have different devices");
    if (b.parallelWindow !== null)
      throw new SwapError("EINVAL", "swapfile", m, "src is inside a swapoff's parallel window");
    if (a === b) return;
    for (let t = 0; t < a.devs.length; t++) a.devs[t]!.copyFrom(b.devs[t]!);
    Object.assign(a.counters, b.counters);
    a.parallelWindow = null;
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
    checkSwapInvariants(this.s);
  }

  /**
   * Digest of the semantic state: every slot's swap_map byte and swap-cache folio on every device. Not
   * the allocator cursor, not counters.
   */
  stateDigest(): string {
    return swapStateDigest(this.s);
  }

  /** Model memory in bytes: the typed arrays of every device. */
  stateBytes(): number {
    return swapStateBytes(this.s);
  }
}

/** Options of `freeSwapAndCacheNr`. */
export interface FreeSwapOptions {
  /**
   * Hold the device with get_swap_device for the whole call (default true, as since 82b1c07a0af6 in
   * v6.9); false is the code before it, which looked the device up with _swap_info_get and held nothing,
   * so a swapoff finishing in parallel could free swap_map under it.
   */
  readonly pinDevice?: boolean;
}

/** Creates a swap space over `mem` with the given devices (swapon of each, in order). */
export function createSwapSpace(mem: PhysMem, config: SwapSpaceConfig): SwapSpace {
  return new SwapSpace(mem, config);
}
