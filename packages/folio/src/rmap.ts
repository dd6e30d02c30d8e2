// Models: mm/rmap.c as 7.x has it (CONFIG_PAGE_MAPCOUNT): folio_add_rmap_ptes / folio_add_rmap_pmd
// (__folio_add_rmap + __folio_mod_stat; they also stand for folio_dup_*_rmap_* at fork, same
// counters), folio_remove_rmap_ptes / folio_remove_rmap_pmd (__folio_remove_rmap: _large_mapcount
// atomic, per-page _mapcount, one _nr_pages_mapped atomic, the partially_mapped rule), the order-0
// run list the 7.x gather hands over, and munlock_vma_folio as an immediate munlock_folio.
// `rmapPolicy: "v6.9"` swaps in v6.9's deferred-split rule (see RmapPolicy).
// munlock_vma_folio goes through mlock.ts (mlock_count, the mlock folio batch).
// Omits: the anon first-map shortcuts of folio_add_new_anon_rmap (every add is atomic here),
// mm-id "maybe shared" tracking.

import { COMPOUND_MAPPED, FOLIO_PAGES_MAPPED, NodeStat, NR_STAT_ITEMS, PG } from "./constants.js";
import { checkFolio } from "./debug.js";
import { fail } from "./errors.js";
import { deferredSplit7, deferredSplit65 } from "./huge-memory.js";
import { DEBUG_VM, F_HEAD, linesFor, MEMCG_SHIFT, ORDER_MASK, ORDER_SHIFT } from "./layout.js";
import { lruvecOfHead, modStat, statMod } from "./lruvec.js";
import { munlockFolio } from "./mlock.js";
import { checkHead, checkRange, type FolioState } from "./mm-types.js";

const MODULE = "rmap";

/** `munlock_vma_folio` for a VM_LOCKED VMA (v6.18: always; callers apply v6.5's condition). */
export function munlock(s: FolioState, head: number): void {
  munlockFolio(s, head);
}

/** 7.x `folio_add_{anon,file}_rmap_ptes(folio, page, nr)`: map `nr` pages starting at `pfn` by PTE. */
export function folioAddRmapPtes(s: FolioState, head: number, pfn: number, nr: number): void {
  checkRange(s, "folioAddRmapPtes", head, pfn, nr);
  const c = s.counters;
  const f = s.flags[head];
  const mc = s.mapcount;
  let nrNew = 0;
  if (((f >>> ORDER_SHIFT) & ORDER_MASK) === 0) {
    const v = ++mc[head];
    c.mapcountAtomics++;
    c.metadataLines++;
    if (v === 0) nrNew = 1;
  } else {
    let first = 0;
    const end = pfn + nr;
    for (let p = pfn; p < end; p++) if (++mc[p] === 0) first++;
    c.mapcountAtomics += nr;
    const t1 = head + 1;
    if (first !== 0) {
      const v = s.nrPagesMapped[t1] + first;
      s.nrPagesMapped[t1] = v;
      c.nrPagesMappedAtomics++;
      if (v < COMPOUND_MAPPED) nrNew = first;
    }
    s.largeMapcount[t1] += nr;
    c.largeMapcountAtomics++;
    c.metadataLines += linesFor(pfn, nr, head, t1, -1);
  }
  if (nrNew !== 0)
    statMod(s, head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, nrNew);
  // Stryker disable next-line all: DEBUG_VM is off in the model (a debug-build self-check); equivalent
  if (DEBUG_VM) checkFolio(s, "folioAddRmapPtes", head);
}

/** 7.x `folio_add_{anon,file}_rmap_pmd`: map a PMD-sized folio entirely. */
export function folioAddRmapPmd(s: FolioState, head: number): void {
  const m = "folioAddRmapPmd";
  checkHead(s, m, head);
  const f = s.flags[head];
  const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
  if (order !== s.pmdOrder)
    fail("EINVAL", MODULE, m, `(${head}): folio order ${order} is not the PMD order ${s.pmdOrder}`);
  const c = s.counters;
  const t1 = head + 1;
  let nrNew = 0;
  let nrPmd = 0;
  const e = ++s.entireMapcount[t1];
  c.entireMapcountAtomics++;
  if (e === 0) {
    const v = s.nrPagesMapped[t1] + COMPOUND_MAPPED;
    s.nrPagesMapped[t1] = v;
    c.nrPagesMappedAtomics++;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: the first entire mapping (e == 0) finds no COMPOUND_MAPPED in _nr_pages_mapped yet, so v < 2 * COMPOUND_MAPPED always; equivalent
    if (v < COMPOUND_MAPPED + COMPOUND_MAPPED) {
      nrPmd = 1 << order;
      nrNew = nrPmd - (v & FOLIO_PAGES_MAPPED);
      if (nrNew < 0) nrNew = 0;
    }
  }
  s.largeMapcount[t1]++;
  c.largeMapcountAtomics++;
  c.metadataLines += 2;
  modStat(s, head, f, nrNew, nrPmd);
  // Stryker disable next-line all: DEBUG_VM is off in the model (a debug-build self-check); equivalent
  if (DEBUG_VM) checkFolio(s, m, head);
}

/**
 * Decrements `_mapcount` of pages [pfn, pfn + nr) and returns how many became unmapped. On underflow
 * every decrement is undone and MAPCOUNT_UNDERFLOW thrown (same outcome as checking first).
 */
export function decMapcounts(s: FolioState, method: string, head: number, pfn: number, nr: number): number {
  const mc = s.mapcount;
  const end = pfn + nr;
  let unmapped = 0;
  for (let p = pfn; p < end; p++) {
    const v = --mc[p];
    if (v === -1) unmapped++;
    // Equivalent mutant left counted: `v <= -1` (v == -1 is taken by the branch above); a disable comment does not reach an else-if
    else if (v < -1) {
      for (let q = pfn; q <= p; q++) mc[q]++;
      checkUnmapRange(s, method, head, pfn, nr);
    }
  }
  return unmapped;
}

export function checkUnmapRange(s: FolioState, method: string, head: number, pfn: number, nr: number): void {
  const mc = s.mapcount;
  const end = pfn + nr;
  for (let p = pfn; p < end; p++)
    if (mc[p] < 0)
      fail(
        "MAPCOUNT_UNDERFLOW",
        MODULE,
        method,
        `(${head}, ${pfn}, ${nr}): page ${p} is not mapped by any PTE`,
      );
}

export function checkPmdUnmap(s: FolioState, method: string, head: number): number {
  checkHead(s, method, head);
  const f = s.flags[head];
  const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
  if (order !== s.pmdOrder)
    fail("EINVAL", MODULE, method, `(${head}): folio order ${order} is not the PMD order ${s.pmdOrder}`);
  if (s.entireMapcount[head + 1] < 0)
    fail("MAPCOUNT_UNDERFLOW", MODULE, method, `(${head}): folio is not PMD-mapped`);
  return f;
}

/** 7.x `folio_remove_rmap_ptes(folio, page, nr, vma)` (CONFIG_PAGE_MAPCOUNT). */
export function folioRemoveRmapPtes(
  s: FolioState,
  head: number,
  pfn: number,
  nr: number,
  // Stryker disable next-line BooleanLiteral: every caller passes vmaLocked, the default is never used; equivalent
  vmaLocked = false,
): void {
  checkRange(s, "folioRemoveRmapPtes", head, pfn, nr);
  folioRemoveRmapPtesTrusted(s, head, pfn, nr, vmaLocked);
}

/**
 * {@link folioRemoveRmapPtes} without the argument checks, for hot callers (the zap walk, the gather)
 * that guarantee `head` is a live folio and `[pfn, pfn + nr)` lies inside it. Mapcount underflow is
 * still detected (and nothing is changed when it is).
 */
export function folioRemoveRmapPtesTrusted(
  s: FolioState,
  head: number,
  pfn: number,
  nr: number,
  vmaLocked = false,
): void {
  // An order-0 folio still mapped: small enough for the callers' compilers to inline.
  // Copied in the three unchecked removals on purpose: a shared helper costs hot callers an inline level.
  const f = s.flags[head];
  // Stryker disable next-line ConditionalExpression,EqualityOperator,LogicalOperator,BooleanLiteral,BlockStatement: fast-path guard; the general path gives the same state and counters (fastpaths tests), so taking it is equivalent
  if ((f & (F_HEAD | (ORDER_MASK << ORDER_SHIFT))) === F_HEAD && !vmaLocked && !DEBUG_VM) {
    const mc = s.mapcount;
    const v0 = mc[head];
    // Stryker disable next-line ConditionalExpression,EqualityOperator,BlockStatement: fast path (still mapped) or the general path: same state and counters; equivalent
    if (v0 >= 0) {
      mc[head] = v0 - 1;
      const c = s.counters;
      c.mapcountAtomics++;
      c.metadataLines++;
      if (v0 === 0)
        statMod(s, head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, -1);
      else c.mapcountSharedDrops++;
      return;
    }
  }
  folioRemoveRmapPtesAny(s, head, pfn, nr, vmaLocked);
}

/**
 * {@link folioRemoveRmapPtesTrusted}`(pfns[j], pfns[j], 1)` for j in [0, n): each pfn is a live
 * folio's head mapped by the caller's PTE (the 7.x zap walk's runs of order-0 PTEs). The order-0
 * case runs over locals with its counters added once; any other entry takes the per-call path.
 */
export function folioRemoveRmapPteListTrusted(s: FolioState, pfns: Int32Array, n: number): void {
  const flags = s.flags;
  const mc = s.mapcount;
  const stats = s.stats;
  // Stryker disable next-line ConditionalExpression: with one node lruvecOfHead gives the same lruvec; equivalent
  const oneNode = s.nrNodes === 1;
  const c = s.counters;
  let done = 0;
  let stat = 0;
  let shared = 0;
  try {
    for (let j = 0; j < n; j++) {
      const head = pfns[j];
      const f = flags[head];
      const v0 = mc[head];
      // Stryker disable next-line ConditionalExpression,EqualityOperator,LogicalOperator,BooleanLiteral,BlockStatement: fast-path guard; the general path gives the same state and counters (fastpaths tests), so taking it is equivalent
      if ((f & (F_HEAD | (ORDER_MASK << ORDER_SHIFT))) === F_HEAD && v0 >= 0 && !DEBUG_VM) {
        mc[head] = v0 - 1;
        done++;
        if (v0 === 0) {
          const lv = oneNode ? f >>> MEMCG_SHIFT : lruvecOfHead(s, head);
          stats[
            lv * NR_STAT_ITEMS + ((f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED)
          ] -= 1;
          stat++;
        } else shared++;
        continue;
      }
      folioRemoveRmapPtesTrusted(s, head, head, 1);
    }
  } finally {
    c.mapcountAtomics += done;
    c.metadataLines += done;
    c.statUpdates += stat;
    c.mapcountSharedDrops += shared;
  }
}

/** The general case of {@link PhysMem.folioRemoveRmapPtesUnchecked}. */
export function folioRemoveRmapPtesAny(
  s: FolioState,
  head: number,
  pfn: number,
  nr: number,
  vmaLocked: boolean,
): void {
  const m = "folioRemoveRmapPtes";
  const c = s.counters;
  const f = s.flags[head];
  if ((f & F_HEAD) === 0) checkHead(s, m, head);
  const mc = s.mapcount;
  let nrU = 0;
  let partially = false;
  if (((f >>> ORDER_SHIFT) & ORDER_MASK) === 0) {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: checkUnmapRange throws only for a page below 0 (it checks again); equivalent
    if (mc[head] < 0) checkUnmapRange(s, m, head, pfn, 1);
    if (--mc[head] === -1) nrU = 1;
    else c.mapcountSharedDrops++;
    c.mapcountAtomics++;
    c.metadataLines++;
  } else {
    const t1 = head + 1;
    const last = decMapcounts(s, m, head, pfn, nr);
    s.largeMapcount[t1] -= nr;
    c.largeMapcountAtomics++;
    c.mapcountAtomics += nr;
    c.mapcountSharedDrops += nr - last;
    if (last !== 0) {
      const v = s.nrPagesMapped[t1] - last;
      s.nrPagesMapped[t1] = v;
      c.nrPagesMappedAtomics++;
      if (v < COMPOUND_MAPPED) nrU = last;
    }
    partially = nrU !== 0 && s.nrPagesMapped[t1] !== 0;
    c.metadataLines += linesFor(pfn, nr, head, t1, -1);
    // v6.9 __folio_remove_rmap: any PTE-level unmap of a large anon folio that unmapped a page,
    // partial or not, calls deferred_split_folio — whose v6.9 body is the one deferredSplit65 models.
    if (s.rmapV69 && nrU !== 0 && (f & PG.anon) !== 0) deferredSplit65(s, head);
  }
  if (!s.rmapV69 && partially && (f & PG.anon) !== 0 && (f & PG.partiallyMapped) === 0)
    deferredSplit7(s, head);
  modStat(s, head, f, -nrU, 0);
  if (vmaLocked) munlock(s, head);
  // Stryker disable next-line all: DEBUG_VM is off in the model (a debug-build self-check); equivalent
  if (DEBUG_VM) checkFolio(s, m, head);
}

/** 7.x `folio_remove_rmap_pmd(folio, page, vma)`. */
// Stryker disable next-line BooleanLiteral: every caller passes vmaLocked, the default is never used; equivalent
export function folioRemoveRmapPmd(s: FolioState, head: number, vmaLocked = false): void {
  const m = "folioRemoveRmapPmd";
  const f = checkPmdUnmap(s, m, head);
  const c = s.counters;
  const t1 = head + 1;
  s.largeMapcount[t1]--;
  c.largeMapcountAtomics++;
  let nr = 0;
  let nrPmd = 0;
  const e = --s.entireMapcount[t1];
  c.entireMapcountAtomics++;
  if (e >= 0) c.mapcountSharedDrops++;
  if (e === -1) {
    const v = s.nrPagesMapped[t1] - COMPOUND_MAPPED;
    s.nrPagesMapped[t1] = v;
    c.nrPagesMappedAtomics++;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: after the last entire unmap (e == -1) _nr_pages_mapped holds no COMPOUND_MAPPED, so v < COMPOUND_MAPPED always; equivalent
    if (v < COMPOUND_MAPPED) {
      nrPmd = 1 << ((f >>> ORDER_SHIFT) & ORDER_MASK);
      nr = nrPmd - (v & FOLIO_PAGES_MAPPED);
      // Stryker disable next-line ConditionalExpression,EqualityOperator: nr = nr_pmdmapped - pages PTE-mapped is never negative, and 0 stays 0; equivalent
      if (nr < 0) nr = 0;
    }
  }
  c.metadataLines += 2;
  const partially = nr !== 0 && nr < nrPmd;
  if (s.rmapV69) {
    if (partially && (f & PG.anon) !== 0) deferredSplit65(s, head);
  } else if (partially && (f & PG.anon) !== 0 && (f & PG.partiallyMapped) === 0) deferredSplit7(s, head);
  modStat(s, head, f, -nr, -nrPmd);
  if (vmaLocked) munlock(s, head);
  // Stryker disable next-line all: DEBUG_VM is off in the model (a debug-build self-check); equivalent
  if (DEBUG_VM) checkFolio(s, m, head);
}
