// Models: devices that share a process's page tables through their IOMMU (shared virtual addressing:
// iommu_sva_bind_device, Intel VT-d scalable mode, Arm SMMUv3 with stall/PRI) and cache translations
// of it in their own TLB (IOTLB, and ATS device TLBs) and paging-structure caches, as
// include/linux/mmu_notifier.h and mm/mmu_notifier.c of v6.6 to v6.18 drive them:
// - `mmu_notifier_arch_invalidate_secondary_tlbs(mm, start, end)`, called by the arch's TLB flush after
//   it invalidated the CPUs (x86 flush_tlb_mm_range, arm64 __flush_tlb_range / flush_tlb_mm), makes each
//   bound device drop its translations of [start, end) and its cached walks (the VT-d callback flushes
//   with IH = 0, SMMUv3's with non-leaf invalidations: paging-structure caches go too);
// - `mmu_notifier_release(mm)`, first thing in exit_mmap, detaches every device from the address space
//   (the PASID entry is torn down or set to block): all its translations go and it cannot walk the
//   tables again.
// A device is not a CPU: it is never in mm_cpumask, no IPI or TLBI broadcast reaches it, and it keeps
// issuing DMA through what it cached while the process's threads are in the kernel. So its entries are
// hazards from the moment a page or table could be freed until the notifier call covering them.
// Omits: mmu_notifier_invalidate_range_start/end subscribers (KVM's shadow MMU, HMM mirrors) — they
// drop their own mappings at range_start, before any page is freed —, PRI faults refilling during the
// teardown (the VMA is detached or the PTEs are clear: the fault finds nothing), ATS invalidation
// timeouts.

import { roundPow2 } from "./cpu-tlb.js";
import { TeardownError } from "./errors.js";

const INVALID = -1;

/** Sizes of the modelled device caches. */
export interface SecondaryTlbConfig {
  /** Devices (each bound to at most one mm). */
  readonly nrDevices: number;
  /** `PAGE_SHIFT` of the arch (invalidations arrive in bytes). */
  readonly pageShift: number;
  /**
   * Translation entries per device (power of two; direct-mapped by virtual page). Default 2048, as the
   * CPUs': an IOTLB is smaller, but a GPU's ATS device TLB and its own MMU caches add up to about that.
   */
  readonly tlbEntries?: number;
  /** Paging-structure cache entries per device (power of two). Default 32. */
  readonly walkEntries?: number;
}

/** The secondary TLBs of every device, in flat typed arrays (slot = device * entries + index). */
export class SecondaryTlbs {
  readonly nrDevices: number;
  readonly entries: number;
  readonly walkEntries: number;
  readonly pageSize: number;
  /** The mm each device is bound to (-1: none). */
  readonly deviceMm: Int32Array;
  /** Cached virtual page (base of a huge entry); -1 = invalid. */
  readonly tlbVpn: Float64Array;
  /** Physical page of the cached translation (first pfn of a huge entry). */
  readonly tlbPfn: Int32Array;
  /** Pages covered by the entry (1 or the PMD size). */
  readonly tlbNr: Int32Array;
  /** Paging-structure cache: pfn of the cached page-table page; -1 = invalid. */
  readonly walkPfn: Int32Array;
  /** Cached device translations per pfn, over all devices. */
  readonly tlbRefs: Uint16Array;
  /** Cached device walk entries per page-table pfn, over all devices. */
  readonly walkRefs: Uint16Array;
  /** Invalidation commands the devices received (one per bound device per notifier call). */
  invalidations = 0;
  /** Device translations dropped by invalidations and releases. */
  entriesInvalidated = 0;

  constructor(config: SecondaryTlbConfig, nrPhysPages: number) {
    this.nrDevices = config.nrDevices;
    this.pageSize = 2 ** config.pageShift;
    this.entries = roundPow2(config.tlbEntries ?? 2048);
    this.walkEntries = roundPow2(config.walkEntries ?? 32);
    this.deviceMm = new Int32Array(this.nrDevices).fill(INVALID);
    const n = this.nrDevices * this.entries;
    this.tlbVpn = new Float64Array(n).fill(INVALID);
    this.tlbPfn = new Int32Array(n);
    this.tlbNr = new Int32Array(n);
    this.walkPfn = new Int32Array(this.nrDevices * this.walkEntries).fill(INVALID);
    this.tlbRefs = new Uint16Array(nrPhysPages);
    this.walkRefs = new Uint16Array(nrPhysPages);
  }

  /**
   * Makes these device caches an exact copy of `src`'s (same devices, sizes and physical pages): bindings,
   * translations, walk entries, reference counts and counters. A model facility, nothing the kernel does.
   */
  copyFrom(src: SecondaryTlbs): void {
    if (
      src.nrDevices !== this.nrDevices ||
      src.entries !== this.entries ||
      src.walkEntries !== this.walkEntries ||
      src.tlbRefs.length !== this.tlbRefs.length
    )
      throw new TeardownError("EINVAL", "secondary-tlb", "copyFrom", "the two device models differ in size");
    if (src === this) return;
    this.deviceMm.set(src.deviceMm);
    this.tlbVpn.set(src.tlbVpn);
    this.tlbPfn.set(src.tlbPfn);
    this.tlbNr.set(src.tlbNr);
    this.walkPfn.set(src.walkPfn);
    this.tlbRefs.set(src.tlbRefs);
    this.walkRefs.set(src.walkRefs);
    this.invalidations = src.invalidations;
    this.entriesInvalidated = src.entriesInvalidated;
  }

  /** `iommu_sva_bind_device`: `device` now translates through `mmId`'s page tables. */
  bind(device: number, mmId: number): void {
    this.dropDevice(device);
    this.deviceMm[device] = mmId;
  }

  /** Devices bound to `mmId`. */
  boundTo(mmId: number): number {
    let n = 0;
    for (let d = 0; d < this.nrDevices; d++) if (this.deviceMm[d] === mmId) n++;
    return n;
  }

  /** The device walked the tables and caches `nr` pages at `vpn` → `pfn` (evicting the slot's entry). */
  fillTlb(device: number, vpn: number, pfn: number, nr: number): void {
    const slot = device * this.entries + (Math.floor(vpn / nr) % this.entries);
    if (this.tlbVpn[slot] === vpn) return;
    this.dropTlbSlot(slot);
    this.tlbVpn[slot] = vpn;
    this.tlbPfn[slot] = pfn;
    this.tlbNr[slot] = nr;
    for (let i = 0; i < nr; i++) this.tlbRefs[pfn + i]++;
  }

  /** The device caches a walk through the page-table page `tablePfn`. */
  fillWalk(device: number, tablePfn: number): void {
    const slot = device * this.walkEntries + (tablePfn % this.walkEntries);
    if (this.walkPfn[slot] === tablePfn) return;
    if (this.walkPfn[slot] !== INVALID) this.walkRefs[this.walkPfn[slot]]--;
    this.walkPfn[slot] = tablePfn;
    this.walkRefs[tablePfn]++;
  }

  private dropTlbSlot(slot: number): void {
    if (this.tlbVpn[slot] === INVALID) return;
    const pfn = this.tlbPfn[slot];
    for (let i = 0, nr = this.tlbNr[slot]; i < nr; i++) this.tlbRefs[pfn + i]--;
    this.tlbVpn[slot] = INVALID;
  }

  /** Drops `device`'s translations overlapping pages [vs, ve) and all its cached walks. */
  private invalidateOn(device: number, vs: number, ve: number): void {
    for (let s = device * this.entries, end = s + this.entries; s < end; s++) {
      const v = this.tlbVpn[s];
      if (v !== INVALID && v < ve && v + this.tlbNr[s] > vs) {
        this.dropTlbSlot(s);
        this.entriesInvalidated++;
      }
    }
    for (let s = device * this.walkEntries, end = s + this.walkEntries; s < end; s++) {
      const p = this.walkPfn[s];
      if (p !== INVALID) {
        this.walkRefs[p]--;
        this.walkPfn[s] = INVALID;
      }
    }
  }

  private dropDevice(device: number): void {
    this.invalidateOn(device, 0, Number.POSITIVE_INFINITY);
  }

  /**
   * The devices' side of `mmu_notifier_arch_invalidate_secondary_tlbs(mm, start, end)` (bytes; `end`
   * at or beyond the address space: everything): each device bound to `mmId` drops its translations of
   * the range and its cached walks, one invalidation command per device.
   */
  invalidate(mmId: number, start: number, end: number): void {
    const vs = Math.floor(start / this.pageSize);
    const ve = Math.ceil(end / this.pageSize);
    for (let d = 0; d < this.nrDevices; d++) {
      if (this.deviceMm[d] !== mmId) continue;
      this.invalidations++;
      this.invalidateOn(d, vs, ve);
    }
  }

  /** `mmu_notifier_release(mm)`: every device bound to `mmId` loses its translations and is detached. */
  release(mmId: number): number {
    let n = 0;
    for (let d = 0; d < this.nrDevices; d++) {
      if (this.deviceMm[d] !== mmId) continue;
      this.dropDevice(d);
      this.deviceMm[d] = INVALID;
      n++;
    }
    return n;
  }

  /** First virtual page in [vs, ve) a device bound to `mmId` still translates, or -1. */
  findCached(mmId: number, vs: number, ve: number): number {
    for (let d = 0; d < this.nrDevices; d++) {
      if (this.deviceMm[d] !== mmId) continue;
      for (let s = d * this.entries, end = s + this.entries; s < end; s++) {
        const v = this.tlbVpn[s];
        if (v !== INVALID && v < ve && v + this.tlbNr[s] > vs) return Math.max(v, vs);
      }
    }
    return -1;
  }

  /** Pfn a device bound to `mmId` translates `vpn` to, or -1. */
  cachedPfn(mmId: number, vpn: number): number {
    for (let d = 0; d < this.nrDevices; d++) {
      if (this.deviceMm[d] !== mmId) continue;
      for (let s = d * this.entries, end = s + this.entries; s < end; s++) {
        const v = this.tlbVpn[s];
        if (v !== INVALID && v <= vpn && vpn < v + this.tlbNr[s]) return this.tlbPfn[s] + (vpn - v);
      }
    }
    return -1;
  }

  /** Model bytes. */
  stateBytes(): number {
    return (
      this.deviceMm.byteLength +
      this.tlbVpn.byteLength +
      this.tlbPfn.byteLength +
      this.tlbNr.byteLength +
      this.walkPfn.byteLength +
      this.tlbRefs.byteLength +
      this.walkRefs.byteLength
    );
  }
}
