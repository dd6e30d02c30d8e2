// Models: struct swap_info_struct's swap_map, the swap cache's per-slot index (swapper_spaces xarray) and
// cluster allocation of naturally aligned slot runs (scan_swap_map_slots / get_swap_pages, mm/swapfile.c,
// v6.5 with the v6.10 mTHP alignment rule). Omits: per-order cluster lists, free/nonfull/discard cluster
// lists, the per-CPU swap slot cache, swap extents, discard, priorities (devices are tried in order).

import { SWAP_MAP_BAD, SWAPFILE_CLUSTER } from "./entry.js";

/** The device takes new allocations (SWP_WRITEOK). */
export const SWAP_ON = 0;
/** swapoff cleared SWP_WRITEOK and runs try_to_unuse: no new allocations, entries still usable. */
export const SWAP_UNUSING = 1;
/** percpu_ref_kill(&si->users): get_swap_device fails; swapoff waits for the holders to put. */
export const SWAP_KILLED = 2;
/** swapoff freed swap_map and the swap cache: any access now reads freed memory. */
export const SWAP_FREED = 3;

/** One swap device: struct-of-arrays state, one byte + one int32 per slot, one uint16 per cluster. */
export class SwapDevice {
  /** Device index: the type field of its swap entries. */
  readonly type: number;
  /** Slots including the header slot 0. */
  readonly nrSlots: number;
  /** Usable slots: nrSlots − 1 (the header is never allocated). */
  readonly nrUsable: number;
  /** swap_map: per slot, swap count (PTE references) | SWAP_HAS_CACHE; 0 = free slot. */
  readonly map: Uint8Array;
  /** Swap cache index: per slot, head pfn of the folio the swap cache holds for it, or −1. */
  readonly cache: Int32Array;
  /** Per cluster of SWAPFILE_CLUSTER slots: how many of its usable slots are free. */
  readonly clusterFree: Uint16Array;
  /** Free usable slots on this device. */
  nrFree: number;
  /**
   * swapoff's progress on this device (`SWAP_ON` … `SWAP_FREED`): SWP_WRITEOK cleared, then `si->users`
   * killed, then swap_map freed.
   */
  swapoffState = 0;
  /** `si->users` references held (get_swap_device / put_swap_device). */
  users = 0;
  /** Cluster where the next allocation scan starts (cluster_next). */
  private nextCluster = 0;
  /** Offset inside nextCluster where the next scan starts. */
  private nextOffset = 1;

  constructor(type: number, nrSlots: number) {
    this.type = type;
    this.nrSlots = nrSlots;
    this.nrUsable = nrSlots - 1;
    this.map = new Uint8Array(nrSlots);
    this.cache = new Int32Array(nrSlots).fill(-1);
    const nrClusters = Math.ceil(nrSlots / SWAPFILE_CLUSTER);
    this.clusterFree = new Uint16Array(nrClusters);
    for (let c = 0; c < nrClusters; c++) {
      const end = Math.min((c + 1) * SWAPFILE_CLUSTER, nrSlots);
      this.clusterFree[c] = end - c * SWAPFILE_CLUSTER;
    }
    // The header slot is marked bad, as swapon does, and never counted as free.
    this.map[0] = SWAP_MAP_BAD;
    this.clusterFree[0]--;
    this.nrFree = this.nrUsable;
  }

  /**
   * Finds `nr` free slots starting at a multiple of `nr` (nr is a power of two ≤ SWAPFILE_CLUSTER), so a
   * run never crosses a cluster. Marks nothing. Returns the first offset, or 0 when there is none.
   */
  findFreeRange(nr: number): number {
    if (this.nrFree < nr) return 0;
    const nrClusters = this.clusterFree.length;
    for (let k = 0; k <= nrClusters; k++) {
      // k === nrClusters revisits the start cluster from its beginning (the part before nextOffset).
      const c = k === nrClusters ? this.nextCluster : (this.nextCluster + k) % nrClusters;
      if (this.clusterFree[c] < nr) continue;
      const base = c * SWAPFILE_CLUSTER;
      const start = k === 0 ? this.nextOffset : base;
      const off = this.scanCluster(base, start, nr);
      if (off !== 0) {
        this.nextCluster = c;
        this.nextOffset = off + nr;
        return off;
      }
    }
    return 0;
  }

  private scanCluster(base: number, start: number, nr: number): number {
    const end = Math.min(base + SWAPFILE_CLUSTER, this.nrSlots);
    const map = this.map;
    let o = Math.max(start, base);
    o = Math.ceil(o / nr) * nr;
    outer: for (; o + nr <= end; o += nr) {
      if (o === 0) continue;
      for (let i = 0; i < nr; i++) {
        if (map[o + i] !== 0) continue outer;
      }
      return o;
    }
    return 0;
  }

  /** Returns one slot (whose map byte the caller already set to 0) to the free pool. */
  slotFreed(offset: number): void {
    this.clusterFree[(offset / SWAPFILE_CLUSTER) | 0]++;
    this.nrFree++;
  }

  /** Takes `nr` slots from the free pool (the caller sets their map bytes). */
  slotsTaken(offset: number, nr: number): void {
    this.clusterFree[(offset / SWAPFILE_CLUSTER) | 0] -= nr;
    this.nrFree -= nr;
  }

  /** Makes this device an exact copy of `src` (same size): map, cache, cluster counts, cursor, swapoff state. */
  copyFrom(src: SwapDevice): void {
    this.map.set(src.map);
    this.cache.set(src.cache);
    this.clusterFree.set(src.clusterFree);
    this.nrFree = src.nrFree;
    this.swapoffState = src.swapoffState;
    this.users = src.users;
    this.nextCluster = src.nextCluster;
    this.nextOffset = src.nextOffset;
  }

  /** Model memory of this device in bytes. */
  bytes(): number {
    return this.map.byteLength + this.cache.byteLength + this.clusterFree.byteLength;
  }
}
