// Models: page_remove_rmap of mm/rmap.c in mm-unstable of August 2023, the base of the 2023 "Optimize
// mmap_exit for large folios" series: one call per page; any large anon folio is queued for deferred
// split when a PTE removal unmaps a page, a PMD removal when nr < nr_pmdmapped. The 6.5 kernel had no
// _large_mapcount: the model keeps the field consistent (so every variant leaves identical state)
// without counting an atomic for it.
// Omits: hugetlb, the file-THP PMD stat paths teardown does not reach.

import { COMPOUND_MAPPED, FOLIO_PAGES_MAPPED, NodeStat, NR_STAT_ITEMS, PG } from "./constants.js";
import { checkFolio } from "./debug.js";
import { fail } from "./errors.js";
import { deferredSplit65 } from "./huge-memory.js";
import { DEBUG_VM, F_FREE, F_HEAD, F_TAIL, linesFor, ORDER_MASK, ORDER_SHIFT } from "./layout.js";
import { lruvecOfHead, pmdStatItem, statMod } from "./lruvec.js";
import { checkPfn, type FolioState } from "./mm-types.js";
import { checkPmdUnmap, munlock } from "./rmap.js";

const MODULE = "rmap-v6.5";

/**
 * 6.5 (mm-unstable Aug 2023) `page_remove_rmap(page, vma, compound)`: remove one PTE mapping of `pfn`,
 * or (compound) the PMD mapping of the folio headed by `pfn`.
 */
// Stryker disable next-line BooleanLiteral: every caller passes vmaLocked, the default is never used; equivalent
export function pageRemoveRmap(s: FolioState, pfn: number, compound: boolean, vmaLocked = false): void {
  const m = "pageRemoveRmap";
  checkPfn(s, m, pfn);
  const pf = s.flags[pfn];
  if ((pf & F_FREE) !== 0) fail("USE_AFTER_FREE", MODULE, m, `(${pfn}): pfn ${pfn} is free memory`);
  if (!compound) {
    pageRemoveRmapPte(s, m, (pf & F_TAIL) !== 0 ? s.priv[pfn] : pfn, pfn, vmaLocked);
    return;
  }
  const c = s.counters;
  let nr = 0;
  let nrPmd = 0;
  if ((pf & F_HEAD) === 0) fail("NOT_HEAD", MODULE, m, `(${pfn}, true): compound removal needs a folio head`);
  const head = pfn;
  const f = checkPmdUnmap(s, m, head);
  const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
  const t1 = head + 1;
  s.largeMapcount[t1]--;
  const e = --s.entireMapcount[t1];
  c.entireMapcountAtomics++;
  if (e >= 0) c.mapcountSharedDrops++;
  if (e === -1) {
    const v = s.nrPagesMapped[t1] - COMPOUND_MAPPED;
    s.nrPagesMapped[t1] = v;
    c.nrPagesMappedAtomics++;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: after the last entire unmap (e == -1) _nr_pages_mapped holds no COMPOUND_MAPPED, so v < COMPOUND_MAPPED always; equivalent
    if (v < COMPOUND_MAPPED) {
      nrPmd = 1 << order;
      nr = nrPmd - (v & FOLIO_PAGES_MAPPED);
      // Stryker disable next-line ConditionalExpression,EqualityOperator: nr = nr_pmdmapped - pages PTE-mapped is never negative, and 0 stays 0; equivalent
      if (nr < 0) nr = 0;
    }
  }
  c.metadataLines += 2;
  if (nrPmd !== 0) statMod(s, head, pmdStatItem(f), -nrPmd);
  if (nr !== 0) {
    statMod(s, head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, -nr);
    if (order > 0 && (f & PG.anon) !== 0 && nr < nrPmd) deferredSplit65(s, head);
  }
  if (vmaLocked) munlock(s, head);
  // Stryker disable next-line all: DEBUG_VM is off in the model (a debug-build self-check); equivalent
  if (DEBUG_VM) checkFolio(s, m, head);
}

/**
 * {@link pageRemoveRmap}`(pfn, false)` without the pfn checks, for hot callers (the zap walk, the
 * gather's delayed-rmap flush) holding a pfn mapped by a PTE and its folio's `head`. Mapcount underflow
 * is still detected (nothing is changed when it is).
 */
export function pageRemoveRmapPteTrusted(s: FolioState, head: number, pfn: number, vmaLocked = false): void {
  pageRemoveRmapPte(s, "pageRemoveRmap", head, pfn, vmaLocked);
}

/**
 * {@link pageRemoveRmapPteTrusted}`(head, pfn + j)` for j = 0 … nr-1 — one 6.5 `page_remove_rmap`
 * per page, each with its own counters, stat update and deferred-split call — in one loop over
 * locals (the 6.5 walk's runs through a large folio). The caller guarantees `[pfn, pfn + nr)` lies in
 * the live folio `head`. Stops at the first page whose mapcount would underflow (throws; earlier
 * pages stay removed, as with separate calls).
 */
export function pageRemoveRmapPtesTrusted(
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
  if ((f & (ORDER_MASK << ORDER_SHIFT)) === 0 && nr === 1 && !vmaLocked && !DEBUG_VM) {
    const mc = s.mapcount;
    const v0 = mc[pfn];
    // Stryker disable next-line ConditionalExpression,EqualityOperator,BlockStatement: fast path (still mapped) or the general path: same state and counters; equivalent
    if (v0 >= 0) {
      mc[pfn] = v0 - 1;
      const c = s.counters;
      c.mapcountAtomics++;
      c.metadataLines++;
      if (v0 === 0)
        statMod(s, head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, -1);
      else c.mapcountSharedDrops++;
      return;
    }
  }
  pageRemoveRmapPtesAny(s, head, pfn, nr, f, vmaLocked);
}

/** The general case of {@link PhysMem.pageRemoveRmapPtesUnchecked} (`f`: the folio's flags). */
export function pageRemoveRmapPtesAny(
  s: FolioState,
  head: number,
  pfn: number,
  nr: number,
  f: number,
  // Stryker disable next-line BooleanLiteral: every caller passes vmaLocked, the default is never used; equivalent
  vmaLocked = false,
): void {
  // A large folio's PTE removals never munlock in v6.5 (munlock_vma_folio: compound || small).
  // Stryker disable next-line BooleanLiteral: DEBUG_VM is off in the model (debug builds take the per-page path); equivalent
  if (((f >>> ORDER_SHIFT) & ORDER_MASK) === 0 || nr === 1 || DEBUG_VM) {
    // Stryker disable next-line ArithmeticOperator: this per-page loop runs for nr == 1 only (order 0, or one page), so j is 0; equivalent
    for (let j = 0; j < nr; j++) pageRemoveRmapPte(s, "pageRemoveRmap", head, pfn + j, vmaLocked);
    return;
  }
  const c = s.counters;
  const mc = s.mapcount;
  const anon = (f & PG.anon) !== 0;
  const t1 = head + 1;
  // Per page: its _mapcount atomic; when it became unmapped, the _nr_pages_mapped atomic and — if no
  // entire mapping remains — the stat update and the deferred-split call. Only the _mapcount
  // decrements are per-page stores; the page[1] fields move by one per page, so their per-page
  // sequence is summed (and the counters added) once the run is done or a page would underflow.
  const end = pfn + nr;
  let p = pfn;
  let unmapped = 0;
  let lines = 0;
  for (; p < end; p++) {
    const v0 = mc[p];
    if (v0 < 0) break;
    mc[p] = v0 - 1;
    // linesFor(p, 1, head, v0 === 0 ? t1 : -1, -1)
    lines += 1 + (p !== head ? 1 : 0);
    if (v0 === 0) {
      unmapped++;
      if (p !== t1) lines++;
    }
  }
  const done = p - pfn;
  c.mapcountSharedDrops += done - unmapped;
  s.largeMapcount[t1] -= done;
  c.mapcountAtomics += done;
  c.metadataLines += lines;
  // Stryker disable next-line ConditionalExpression: with nothing unmapped the block adds 0 and updates no statistic; equivalent
  if (unmapped !== 0) {
    const nrPagesMapped = s.nrPagesMapped;
    const v0 = nrPagesMapped[t1];
    nrPagesMapped[t1] = v0 - unmapped;
    c.nrPagesMappedAtomics += unmapped;
    // The k-th decrement leaves v0 - k: below COMPOUND_MAPPED for k > v0 - COMPOUND_MAPPED.
    const above = v0 - COMPOUND_MAPPED;
    // Stryker disable next-line ArithmeticOperator: not reached: with a PMD mapping above >= unmapped (every page this run unmapped was PTE-mapped); equivalent
    const stat = above <= 0 ? unmapped : above >= unmapped ? 0 : unmapped - above;
    if (stat !== 0) {
      // statMod's slot: the lruvec (node, memcg) and item never change while the folio is mapped.
      const si =
        lruvecOfHead(s, head) * NR_STAT_ITEMS + (anon ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED);
      s.stats[si] -= stat;
      c.statUpdates += stat;
      if (anon) deferredSplit65Calls(s, head, stat);
    }
  }
  if (p < end)
    fail("MAPCOUNT_UNDERFLOW", MODULE, "pageRemoveRmap", `(${p}): page ${p} is not mapped by any PTE`);
}

/**
 * `calls` consecutive `deferredSplit65``(head)` calls: only the first can queue (the others
 * find the folio queued or in the swap cache and return early), each is counted.
 */
export function deferredSplit65Calls(s: FolioState, head: number, calls: number): void {
  deferredSplit65(s, head);
  // Stryker disable next-line ConditionalExpression: with calls == 1 the lines below add 0; equivalent
  if (calls === 1) return;
  const c = s.counters;
  c.deferredSplitCalls += calls - 1;
  c.metadataLines += (calls - 1) * (((s.flags[head] >>> ORDER_SHIFT) & ORDER_MASK) < 2 ? 1 : 2);
}

/** The PTE (non-compound) half of 6.5 `page_remove_rmap`. */
export function pageRemoveRmapPte(
  s: FolioState,
  m: string,
  head: number,
  pfn: number,
  vmaLocked: boolean,
): void {
  const c = s.counters;
  const f = s.flags[head];
  const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
  const mc = s.mapcount;
  const v0 = mc[pfn];
  if (v0 < 0) fail("MAPCOUNT_UNDERFLOW", MODULE, m, `(${pfn}): page ${pfn} is not mapped by any PTE`);
  mc[pfn] = v0 - 1;
  const last = v0 === 0;
  c.mapcountAtomics++;
  if (!last) c.mapcountSharedDrops++;
  let nr = last ? 1 : 0;
  if (order === 0) {
    c.metadataLines++;
  } else {
    const t1 = head + 1;
    s.largeMapcount[t1]--;
    if (last) {
      const v = --s.nrPagesMapped[t1];
      c.nrPagesMappedAtomics++;
      nr = v < COMPOUND_MAPPED ? 1 : 0;
      c.metadataLines += linesFor(pfn, 1, head, t1, -1);
    } else c.metadataLines += linesFor(pfn, 1, head, -1, -1);
  }
  if (nr !== 0) {
    statMod(s, head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, -1);
    if (order > 0 && (f & PG.anon) !== 0) deferredSplit65(s, head);
  }
  if (vmaLocked && order === 0) munlock(s, head);
  // Stryker disable next-line all: DEBUG_VM is off in the model (a debug-build self-check); equivalent
  if (DEBUG_VM) checkFolio(s, m, head);
}
