// Models: struct mm_struct as teardown sees it (include/linux/mm_types.h): the VMA set, the page
// tables, rss counters (add_mm_rss_vec), mm->tlb_flush_pending via the gather's TlbMm, the split
// PTE lock (acquisitions counted), mmap_lock's state (taken and released in mmap-lock.ts), the
// MMF_HUGE_ZERO_FOLIO flag and __split_vma (mm/vma.c). Omits: the maple tree, hiwater_rss, mm_users/mm_count.
import type { TlbMm } from "@mmgather/mmu-gather";
import { TeardownError } from "./errors.js";
import { type SplitAccounting, splitHugePmdIfNeeded } from "./huge-memory.js";
import type { Machine } from "./machine.js";
import { PageTables } from "./page-tables.js";
import { DirectTlbOps } from "./pte-view.js";
import { NR_MM_COUNTERS, type Vma, type VmaKind } from "./vma.js";

/** One address space. */
export class Mm {
  readonly id: number;
  readonly machine: Machine;
  readonly pt: PageTables;
  /** VMAs sorted by start, never overlapping. */
  readonly vmas: Vma[] = [];
  /** rss counters: MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES. */
  readonly rss = new Float64Array(NR_MM_COUNTERS);
  /** The gather's mm-wide flush bookkeeping (tlb_flush_pending, s390 flush_mm). */
  readonly tlbMm: TlbMm;
  /** PTE-lock acquisitions (pte_offset_map_lock / pmd_lock). */
  ptlAcquisitions = 0;
  /** Deposited PTE tables of anon PMD-mapped THPs, by PMD table id then index (pfn, -1 none). */
  readonly deposits: (Int32Array | null)[] = [];
  /** mmap_lock: 0 free, -1 held for write, n > 0 held by n readers (see mmap-lock.ts). */
  mmapLock = 0;
  /** MMF_HUGE_ZERO_FOLIO: this mm holds a reference on the huge zero folio (mm_get_huge_zero_folio). */
  hugeZeroFolio = false;
  /** exit_mmap has run. */
  dead = false;
  /**
   * `mm->tlb_flush_batched`, its two halves: flushes rmap walks deferred for this mm
   * (set_tlb_ubc_flush_pending, the pending count) and the count flush_tlb_batched_pending last caught
   * up with (the flushed count). They differ while a deferred flush may still be outstanding.
   */
  tlbFlushBatchedPending = 0;
  tlbFlushBatchedFlushed = 0;
  /**
   * Virtual page ranges [start, end), flat pairs, of deferred invalidations of this mm issued without
   * waiting (`TlbBatchInfo.nosync`: arm64 TLBI without DSB), not yet waited for by
   * flush_tlb_batched_pending: until then a CPU may still use a translation in them.
   */
  readonly tlbBatchRanges: number[] = [];
  private direct: DirectTlbOps | null = null;
  /** mm_users reached 0 and exit_mmap has started (mmget_not_zero fails from now on). */
  exiting = false;

  constructor(id: number, machine: Machine, tlbMm: TlbMm) {
    this.id = id;
    this.machine = machine;
    this.tlbMm = tlbMm;
    this.pt = new PageTables(machine.geometry, machine.mem);
  }

  /**
   * TLB maintenance of this mm outside any gather (an arch hook at set_ptes), created on first use;
   * its counters record what it did.
   */
  directTlbOps(): DirectTlbOps {
    if (this.direct === null) this.direct = new DirectTlbOps(this);
    return this.direct;
  }

  /**
   * Makes this mm an exact copy of `src` (same id, on a copy of `src`'s machine): page tables, rss,
   * deposits, flush bookkeeping, lock and exit state, the direct TLB ops' counters. The VMAs are the
   * caller's (`vmas` maps each of `src`'s to its copy), since a VMA may be shared by the machine's
   * i_mmap. A model facility, nothing the kernel does.
   */
  copyFrom(src: Mm, vmas: ReadonlyMap<Vma, Vma>): void {
    if (src.id !== this.id)
      throw new TeardownError(
        "EINVAL",
        "mm",
        "copyFrom",
        `mm ${this.id} cannot take the state of mm ${src.id}`,
      );
    if (src === this) return;
    this.pt.copyFrom(src.pt);
    this.vmas.length = 0;
    for (const v of src.vmas) this.vmas.push(vmas.get(v)!);
    this.rss.set(src.rss);
    const a = this.tlbMm;
    const b = src.tlbMm;
    a.tlbFlushPending = b.tlbFlushPending;
    a.flushMm = b.flushMm;
    a.attachedElsewhere = b.attachedElsewhere;
    a.cpumask = b.cpumask.slice();
    a.lazyCpus = b.lazyCpus.slice();
    a.hasNotifiers = b.hasNotifiers;
    this.ptlAcquisitions = src.ptlAcquisitions;
    this.deposits.length = 0;
    for (const d of src.deposits) this.deposits.push(d === null ? null : d.slice());
    this.mmapLock = src.mmapLock;
    this.hugeZeroFolio = src.hugeZeroFolio;
    this.dead = src.dead;
    if (src.direct === null) this.direct = null;
    else this.directTlbOps().copyFrom(src.direct);
    this.exiting = src.exiting;
    this.tlbFlushBatchedPending = src.tlbFlushBatchedPending;
    this.tlbFlushBatchedFlushed = src.tlbFlushBatchedFlushed;
    this.tlbBatchRanges.length = 0;
    for (const x of src.tlbBatchRanges) this.tlbBatchRanges.push(x);
  }

  /** The VMA containing page `vpn`, or null (find_vma + containment). */
  findVma(vpn: number): Vma | null {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (v[mid].end <= vpn) lo = mid + 1;
      else if (v[mid].start > vpn) hi = mid - 1;
      else return v[mid];
    }
    return null;
  }

  /** Inserts a VMA; throws VMA_OVERLAP when it intersects one. */
  insertVma(vma: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i].start < vma.start) i++;
    const prev = i > 0 ? this.vmas[i - 1] : null;
    const next = i < this.vmas.length ? this.vmas[i] : null;
    if ((prev !== null && prev.end > vma.start) || (next !== null && next.start < vma.end)) {
      throw new TeardownError(
        "VMA_OVERLAP",
        "mm",
        "insertVma",
        `VMA [${hex(vma.start, this.machine.pageSize)}, ${hex(vma.end, this.machine.pageSize)}) overlaps an existing VMA`,
      );
    }
    this.vmas.splice(i, 0, vma);
    this.machine.iMmapInsert(this, vma);
  }

  /**
   * __split_vma: splits the VMA containing `vpn` at `vpn` (no-op at an edge). Returns the upper half.
   * A huge PMD straddling the boundary is split first (vma_adjust_trans_huge); `acct` counts it when
   * the split is part of a measured operation (null: building a workload).
   */
  splitVma(vpn: number, acct: SplitAccounting | null = null): Vma | null {
    const v = this.findVma(vpn);
    if (v === null || v.start === vpn) return v;
    splitHugePmdIfNeeded(this, v, vpn, acct);
    const upper: Vma = {
      id: this.machine.nextVmaId++,
      start: vpn,
      end: v.end,
      kind: v.kind,
      mapping: v.mapping,
      pgoff: v.pgoff + (vpn - v.start),
      anonVma: v.anonVma,
      locked: v.locked,
      shared: v.shared,
    };
    v.end = vpn;
    this.vmas.splice(this.vmas.indexOf(v) + 1, 0, upper);
    this.machine.iMmapInsert(this, upper);
    return upper;
  }

  /** Removes VMAs wholly inside [vs, ve) from the tree (detach) and returns them. */
  detachVmas(vs: number, ve: number): Vma[] {
    const out: Vma[] = [];
    for (let i = 0; i < this.vmas.length; ) {
      const v = this.vmas[i];
      if (v.start >= vs && v.end <= ve) {
        out.push(v);
        this.vmas.splice(i, 1);
      } else i++;
    }
    return out;
  }

  /** Total rss in pages (file + anon + shmem). */
  rssPages(): number {
    return this.rss[0] + this.rss[1] + this.rss[3];
  }

  /** Model bytes of this mm (page tables, VMAs, deposits). */
  stateBytes(): number {
    let b = this.pt.stateBytes() + this.rss.byteLength + this.vmas.length * 64;
    for (const d of this.deposits) if (d !== null) b += d.byteLength;
    return b;
  }
}

/** Creates a VMA record. */
export function makeVma(
  id: number,
  start: number,
  end: number,
  kind: VmaKind,
  mapping: number,
  anonVma: number,
): Vma {
  return {
    id,
    start,
    end,
    kind,
    mapping,
    pgoff: 0,
    anonVma,
    locked: false,
    shared: kind === "file-shared" || kind === "shmem" || kind === "pfnmap",
  };
}

function hex(vpn: number, pageSize: number): string {
  return `0x${(vpn * pageSize).toString(16)}`;
}
