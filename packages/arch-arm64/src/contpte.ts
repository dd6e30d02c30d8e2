// Models: arm64 contiguous PTEs (CONFIG_ARM64_CONTPTE, v6.9+, default y) as Linux v6.18 (Nov 2025)
// has them in arch/arm64/mm/contpte.c and arch/arm64/include/asm/pgtable.h:
//   set_ptes           nr > 1: contpte_set_ptes — each naturally aligned block of CONT_PTES entries that
//                      the call covers whole, with a block-aligned pfn, gets the contiguous bit at once
//                      (no TLB maintenance: the entries were none); nr == 1: contpte_try_fold — when the
//                      entry is the last of its block (address and pfn), valid, not special and not
//                      contiguous, __contpte_try_fold checks that one folio covers the block and that
//                      every entry maps the next page with the same permissions (access and dirty
//                      ignored), then contpte_convert folds it.
//   clear_full_ptes / get_and_clear_full_ptes
//                      nr == 1 (and ptep_get_and_clear): contpte_try_unfold of a contiguous entry;
//                      nr > 1: contpte_[get_and_]clear_full_ptes — contpte_try_unfold_partial unfolds
//                      only a block the batch covers in part, at its start or its end; the blocks it
//                      covers whole are cleared as they are (the batched clear).
//   contpte_convert    every entry of the block cleared (__ptep_get_and_clear, their dirty and young
//                      bits OR-merged), the block flushed with __flush_tlb_range(PAGE_SIZE stride,
//                      last level, TTL 3) — unless the CPUs have BBML2_NOABORT (v6.16+), which
//                      tolerates both translations in a TLB —, then __set_ptes of the block with or
//                      without the bit, every entry carrying the merged bits.
//   pte_batch_hint     a contiguous entry stands for the rest of its block in folio_pte_batch (the
//                      walk applies it: teardown's zap reads ArchTlb.contPte).
// CONT_PTES: 16 (64 KiB) with 4K pages, 128 (2 MiB) with 16K, 32 (2 MiB) with 64K
// (CONFIG_ARM64_CONT_PTE_SHIFT 4, 7, 5).
// Omits: contpte_wrprotect_ptes / ptep_set_access_flags / clear_young_dirty (no such operation runs in a
// teardown), contpte_ptep_get's lock-free variant, kernel and EFI mappings (mm_is_user), hugetlb
// contiguous PTEs.

import type { ArchGeometry, GatherView, PteTableView, TlbOps } from "@mmgather/mmu-gather";
import { flushTlbRangeOps } from "./tlbflush.js";

/** `CONT_PTES` for a page shift: 16 with 4 KiB pages, 128 with 16 KiB, 32 with 64 KiB. */
export function contPtesFor(pageShift: number): number {
  return pageShift === 12 ? 16 : pageShift === 14 ? 128 : 32;
}

/** What the contpte hooks need to know besides the PTEs. */
interface ContPteConfig {
  readonly contPtes: number;
  readonly geometry: ArchGeometry;
  readonly tlbRange: boolean;
  readonly bbml2NoAbort: boolean;
}

/**
 * `contpte_convert(mm, addr, ptep, pte)`: rewrite the block holding entry `i` from `pte` (the entry's
 * new value: with the contiguous bit to fold, without to unfold), with the flush in between.
 */
function contpteConvert(c: ContPteConfig, ptes: PteTableView, i: number, pte: number, ops: TlbOps): void {
  const n = c.contPtes;
  const start = i - (i % n);
  // pfn_pte(ALIGN_DOWN(pte_pfn(pte), CONT_PTES), pte_pgprot(pte))
  let v = ptes.advancePfn(pte, -(ptes.pfn(pte) % n));
  for (let j = start; j < start + n; j++) {
    const ptent = ptes.get(j);
    ptes.set(j, 0);
    if (ptes.dirty(ptent)) v = ptes.mkdirty(v);
    if (ptes.young(ptent)) v = ptes.mkyoung(v);
  }
  let vaOps = 0;
  let rangeOps = 0;
  if (!c.bbml2NoAbort) {
    // __flush_tlb_range(&vma, start_addr, addr, PAGE_SIZE, true, 3): CONT_PTES pages never reach the
    // flush_tlb_mm fallback (CONT_PTES < MAX_DVM_OPS).
    const page = 2 ** c.geometry.pageShift;
    const s = (ptes.base + start) * page;
    const tlbis = flushTlbRangeOps(n, 1, c.tlbRange);
    vaOps = tlbis.vaOps;
    rangeOps = tlbis.rangeOps;
    ops.flushRange(s, s + n * page, page, false);
    ops.invalidateSecondaryTlbs(s, s + n * page);
  }
  for (let j = 0; j < n; j++) ptes.set(start + j, ptes.advancePfn(v, j));
  ops.contpteConvert(ptes.cont(pte), n, vaOps, rangeOps);
}

/** `contpte_try_unfold`: a valid contiguous entry at `i` unfolds its block. */
function contpteTryUnfold(c: ContPteConfig, ptes: PteTableView, i: number, ops: TlbOps): void {
  const pte = ptes.get(i);
  if (ptes.valid(pte) && ptes.cont(pte)) contpteConvert(c, ptes, i, ptes.mknoncont(pte), ops);
}

/** `contpte_try_fold` + `__contpte_try_fold` for the entry just set at `i`. */
function contpteTryFold(c: ContPteConfig, ptes: PteTableView, i: number, ops: TlbOps): void {
  const n = c.contPtes;
  const pte = ptes.get(i);
  // Only the last entry of a block, at the last page of a pfn-aligned block, may complete it.
  if ((ptes.base + i) % n !== n - 1 || ptes.pfn(pte) % n !== n - 1) return;
  if (!ptes.valid(pte) || ptes.cont(pte) || ptes.special(pte)) return;
  const pfn = ptes.pfn(pte);
  const folioStart = ptes.folioStart(pfn);
  // The folio's first page would sit at virtual page base + i - (pfn - folioStart).
  const folioFirst = ptes.base + i - (pfn - folioStart);
  const contFirst = ptes.base + i - (n - 1);
  if (folioFirst > contFirst || folioFirst + ptes.folioNrPages(pfn) < contFirst + n) return;
  const start = i - (n - 1);
  let expected = ptes.mkold(ptes.mkclean(ptes.advancePfn(pte, -(n - 1))));
  for (let j = start; j < start + n; j++) {
    if (ptes.mkold(ptes.mkclean(ptes.get(j))) !== expected) return;
    expected = ptes.advancePfn(expected, 1);
  }
  contpteConvert(c, ptes, i, ptes.mkcont(pte), ops);
}

/** The `setPtes` hook: `set_ptes` → contpte_set_ptes (nr > 1) or contpte_try_fold (nr == 1). */
export function makeContpteSetPtes(
  c: ContPteConfig,
): (ptes: PteTableView, index: number, nr: number, ops: TlbOps) => void {
  return (ptes, index, nr, ops) => {
    if (nr === 1) {
      // set_ptes(nr = 1) unfolds the old entry first: the caller sets only entries that were not valid.
      contpteTryFold(c, ptes, index, ops);
      return;
    }
    const n = c.contPtes;
    let folded = 0;
    // contpte_set_ptes: per block-bounded piece, the bit iff the piece is a whole, pfn-aligned block.
    for (let i = index; i < index + nr; ) {
      const next = Math.min(i - (i % n) + n, index + nr);
      if ((ptes.base + i) % n === 0 && next - i === n && ptes.pfn(ptes.get(i)) % n === 0) {
        for (let j = i; j < next; j++) ptes.set(j, ptes.mkcont(ptes.get(j)));
        folded++;
      } else for (let j = i; j < next; j++) ptes.set(j, ptes.mknoncont(ptes.get(j)));
      i = next;
    }
    if (folded > 0) ops.contpteFold(folded);
  };
}

/**
 * The `clearPtes` hook: `[get_and_]clear_full_ptes` (and `ptep_get_and_clear` for one PTE) before the
 * caller clears `nr` entries from `index`.
 */
export function makeContpteClearPtes(
  c: ContPteConfig,
): (tlb: GatherView, ptes: PteTableView, index: number, nr: number, ops: TlbOps) => void {
  return (_tlb, ptes, index, nr, ops) => {
    if (nr === 1) {
      contpteTryUnfold(c, ptes, index, ops);
      return;
    }
    const n = c.contPtes;
    // contpte_try_unfold_partial: the first entry's block unless the batch starts it and covers it; the
    // last entry's block unless the batch ends at a block boundary.
    if (index % n !== 0 || nr < n) contpteTryUnfold(c, ptes, index, ops);
    if ((index + nr) % n !== 0) contpteTryUnfold(c, ptes, index + nr - 1, ops);
    let blocks = 0;
    for (let b = index + ((n - (index % n)) % n); b + n <= index + nr; b += n)
      if (ptes.cont(ptes.get(b))) blocks++;
    ops.contpteClear(blocks);
  };
}
