// Models: splitting a PMD-mapped THP into PTEs, as mm/huge_memory.c of Linux v6.18 (torvalds/linux,
// Nov 2025) does it: __split_huge_pmd → pmd_lock → __split_huge_pmd_locked, and its callers
// split_huge_pmd_address / split_huge_pmd_if_needed / vma_adjust_trans_huge (a VMA boundary that falls
// inside a huge PMD, from __split_vma in mm/vma.c) and zap_pmd_range (a zap that covers part of it).
//   anon  pmdp_invalidate (the huge TLB entry is flushed before any small one can be loaded),
//         folio_ref_add(nr - 1), folio_add_anon_rmap_ptes(nr), pgtable_trans_huge_withdraw of the
//         table deposited at fault time, set_ptes (through the arch's PTE-aware hook: arm64 folds
//         the PMD's blocks), folio_remove_rmap_pmd, pmd_populate: no page-table page is allocated or
//         freed.
//   file / shmem  pmdp_huge_clear_flush, folio_mark_dirty if the PMD was dirty, folio_set_referenced
//         if young, folio_remove_rmap_pmd, folio_put, rss −= HPAGE_PMD_NR: the mapping goes away (a
//         later access faults the pages back in by PTE).
// Each split counts THP_SPLIT_PMD in the caller's walk counters (`hugePmdsSplit`) when it is part of
// a measured operation; one made while building a workload counts nothing (its cost is the build's).
// The rmap generation follows the operation's design: v6.5-era `page_remove_rmap(page, vma, true)` or
// 7.x `folio_remove_rmap_pmd` (the add side is 7.x's in both: the same counts either way).
// Removing the PMD mapping of a VM_LOCKED VMA munlocks the folio (munlock_vma_folio).
//   huge zero PMD  __split_huge_zero_page_pmd (anon VMAs only): pmdp_huge_clear_flush, the deposited
//         table withdrawn and filled with read-only special PTEs of the zero page (my_zero_pfn),
//         pmd_populate: no rmap, no reference, no rss change (the huge zero folio was never counted).
// mm_get_huge_zero_folio / mm_put_huge_zero_folio: an mm takes one reference on huge_zero_refcount
// the first time it maps the huge zero folio (MMF_HUGE_ZERO_FOLIO) and drops it in __mmput, as v6.18
// does without CONFIG_PERSISTENT_HUGE_ZERO_FOLIO (the default; with it both return at once).
// Omits: migration entries and freeze (not teardown), soft-dirty / uffd-wp bits, the
// anon PG_dirty transfer (anon dirtiness is not modelled), mmu_notifier_invalidate_range_start/end
// (their subscribers are not modelled; devices sharing the page tables get the PMD's range from the
// flush, as x86 flush_tlb_mm_range sends it); s390 invalidates the segment with IDTE where this
// flushes the PMD's range.
import { PG, type PhysMem } from "@mmgather/folio";
import type { MmuGather } from "@mmgather/mmu-gather";
import { TeardownError } from "./errors.js";
import type { Mm } from "./mm.js";
import { LEVEL_PMD, LEVEL_PTE } from "./page-tables.js";
import { mkPmdTable, mkPte, PTE_DIRTY, PTE_PRESENT, PTE_YOUNG, ptePfn, ZERO_PTE_BITS } from "./pte.js";
import { archSetPtes } from "./pte-view.js";
import { MM_FILEPAGES, MM_SHMEMPAGES, type Vma } from "./vma.js";
import type { WalkCounters } from "./zap/context.js";

/** How a split made by a measured operation is accounted. */
export interface SplitAccounting {
  /** The operation's walk counters (`hugePmdsSplit`). */
  readonly counters: WalkCounters;
  /** The design removes the PMD mapping with 7.x's `folio_remove_rmap_pmd` (else 6.5's `page_remove_rmap`). */
  readonly folioRmap: boolean;
}

/**
 * Removal of a PMD mapping of the THP at `head` in the design's rmap generation: 7.x
 * `folio_remove_rmap_pmd` or v6.5 `page_remove_rmap(page, vma, true)`; `locked`: the VMA is VM_LOCKED.
 */
export function removePmdRmap(mem: PhysMem, folioRmap: boolean, head: number, locked: boolean): void {
  if (folioRmap) mem.folioRemoveRmapPmd(head, locked);
  else mem.pageRemoveRmap(head, true, locked);
}

/**
 * mm_get_huge_zero_folio: the huge zero folio's head pfn; the mm's first call takes a reference on
 * huge_zero_refcount and sets MMF_HUGE_ZERO_FOLIO, later ones take nothing.
 */
export function mmGetHugeZeroFolio(mm: Mm): number {
  const machine = mm.machine;
  if (mm.hugeZeroFolio) return machine.hugeZeroFolio;
  const head = machine.getHugeZeroFolio();
  mm.hugeZeroFolio = true;
  return head;
}

/** mm_put_huge_zero_folio (from __mmput): drops the mm's reference if it took one. */
export function mmPutHugeZeroFolio(mm: Mm): void {
  if (!mm.hugeZeroFolio) return;
  mm.hugeZeroFolio = false;
  mm.machine.putHugeZeroFolio();
}

/** is_huge_zero_pmd for the head pfn of a present huge PMD. */
export function isHugeZeroPfn(mm: Mm, head: number): boolean {
  return head === mm.machine.hugeZeroFolio;
}

/**
 * `__split_huge_pmd` of the huge PMD at index `pi` of PMD table `pmdId` (pages [base, base + nr)),
 * mapped in `vma`. Flushes the huge translation from every CPU before the PTEs appear. `tlb`: the gather
 * of the zap the split happens in (an arch's set_ptes hook counts into it), null outside one.
 */
export function splitHugePmd(
  mm: Mm,
  vma: Vma,
  pmdId: number,
  pi: number,
  base: number,
  acct: SplitAccounting | null,
  tlb: MmuGather | null = null,
): void {
  const machine = mm.machine;
  const mem = machine.mem;
  const pt = mm.pt;
  const pmd = pt.entries[pmdId]!;
  const e = pmd[pi];
  const head = ptePfn(e);
  const nr = pt.geo.ptrsPerPte;
  mm.ptlAcquisitions++; // pmd_lock
  if (acct !== null) acct.counters.hugePmdsSplit++;
  // pmdp_invalidate / pmdp_huge_clear_flush → flush_pmd_tlb_range.
  machine.tlbs?.flushTlbMmRange(mm.id, base * machine.pageSize, (base + nr) * machine.pageSize);
  const folioRmap = acct === null || acct.folioRmap;
  if (vma.kind === "anon" && head === machine.hugeZeroFolio) {
    // __split_huge_zero_page_pmd: the huge zero folio itself is never split, only its PMD mapping.
    pmd[pi] = 0; // pmdp_huge_clear_flush (the flush is above)
    const ztid = withdrawDeposit(mm, pmdId, pi, base);
    pt.entries[ztid]!.fill(mkPte(machine.myZeroPfn(), ZERO_PTE_BITS));
    pmd[pi] = mkPmdTable(ztid); // pmd_populate
    return;
  }
  if (vma.kind !== "anon") {
    pmd[pi] = 0;
    if ((e & PTE_DIRTY) !== 0) mem.folioSet(head, PG.dirty);
    if ((e & PTE_YOUNG) !== 0) mem.folioSet(head, PG.referenced);
    removePmdRmap(mem, folioRmap, head, vma.locked);
    machine.checker?.onRmapRemoved(head, 1, false);
    mem.folioPut(head);
    mm.rss[vma.kind === "shmem" ? MM_SHMEMPAGES : MM_FILEPAGES] -= nr;
    return;
  }
  mem.folioRefAdd(head, nr - 1);
  mem.folioAddRmapPtes(head, head, nr);
  const tid = withdrawDeposit(mm, pmdId, pi, base);
  const t = pt.entries[tid]!;
  const bits = e & 0xe; // write / dirty / young
  // set_ptes(mm, haddr, pte, entry, HPAGE_PMD_NR): the arch may fold the PTEs into contiguous blocks.
  for (let i = 0; i < nr; i++) t[i] = mkPte(head + i, bits);
  archSetPtes(mm, t, base, 0, nr, tlb);
  removePmdRmap(mem, folioRmap, head, vma.locked);
  pmd[pi] = mkPmdTable(tid); // pmd_populate
}

/**
 * pgtable_trans_huge_withdraw: every anon PMD mapping has its deposit (fault and fork both make one, for
 * a THP and for the huge zero folio); installs it as a PTE table and returns the table id.
 */
function withdrawDeposit(mm: Mm, pmdId: number, pi: number, base: number): number {
  const d = mm.deposits[pmdId];
  if (d === null || d === undefined || d[pi] < 0) {
    throw new TeardownError(
      "INVARIANT",
      "huge-memory",
      "splitHugePmd",
      `anon PMD at 0x${(base * mm.machine.pageSize).toString(16)} of mm ${mm.id} has no deposited page table`,
    );
  }
  const tid = mm.pt.installTable(LEVEL_PTE, d[pi]);
  d[pi] = -1;
  return tid;
}

/**
 * split_huge_pmd_if_needed(vma, vpn) for a VMA boundary at page `vpn`: splits the huge PMD mapping
 * the PMD-aligned range around `vpn` when `vpn` is not PMD aligned.
 */
export function splitHugePmdIfNeeded(mm: Mm, vma: Vma, vpn: number, acct: SplitAccounting | null): void {
  const pt = mm.pt;
  const span = pt.span[0];
  if (vpn % span === 0) return;
  const base = vpn - (vpn % span);
  if (base < vma.start || base + span > vma.end) return; // range_in_vma
  const pmdId = pt.pmdTable(base, false);
  if (pmdId < 0) return;
  const pi = pt.index(base, LEVEL_PMD);
  const e = pt.entries[pmdId]![pi];
  if (e !== 0 && (e & PTE_PRESENT) !== 0) splitHugePmd(mm, vma, pmdId, pi, base, acct);
}
