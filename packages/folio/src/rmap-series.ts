// Models: folio_remove_rmap_range + __remove_rmap_finish of the 2023 "Optimize mmap_exit for large
// folios" series (v1 1/4, v2 1/5, on mm-unstable of August 2023): one _nr_pages_mapped atomic per call,
// always; deferred split only if this call unmapped a page and some page is still mapped. Like the 6.5
// path it keeps _large_mapcount consistent without counting an atomic for it.
// Omits: nothing the series changed on the teardown path.

import { COMPOUND_MAPPED, NodeStat, PG } from "./constants.js";
import { checkFolio } from "./debug.js";
import { deferredSplit65 } from "./huge-memory.js";
import { DEBUG_VM, F_HEAD, linesFor, ORDER_MASK, ORDER_SHIFT } from "./layout.js";
import { statMod } from "./lruvec.js";
import { checkHead, checkRange, type FolioState } from "./mm-types.js";
import { checkUnmapRange, decMapcounts, munlock } from "./rmap.js";

/** The 2023 series' `folio_remove_rmap_range(folio, page, nr, vma)`: remove `nr` PTE mappings inside one folio. */
export function folioRemoveRmapRange(
  s: FolioState,
  head: number,
  pfn: number,
  nr: number,
  // Stryker disable next-line BooleanLiteral: every caller passes vmaLocked, the default is never used; equivalent
  vmaLocked = false,
): void {
  checkRange(s, "folioRemoveRmapRange", head, pfn, nr);
  folioRemoveRmapRangeTrusted(s, head, pfn, nr, vmaLocked);
}

/**
 * {@link folioRemoveRmapRange} without the argument checks, for hot callers (the gather's flush) that
 * guarantee `head` is a live folio and `[pfn, pfn + nr)` lies inside it. Mapcount underflow is still
 * detected (and nothing is changed when it is).
 */
export function folioRemoveRmapRangeTrusted(
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
  folioRemoveRmapRangeAny(s, head, pfn, nr, vmaLocked);
}

/** The general case of {@link PhysMem.folioRemoveRmapRangeUnchecked}. */
export function folioRemoveRmapRangeAny(
  s: FolioState,
  head: number,
  pfn: number,
  nr: number,
  vmaLocked: boolean,
): void {
  const m = "folioRemoveRmapRange";
  const c = s.counters;
  const f = s.flags[head];
  if ((f & F_HEAD) === 0) checkHead(s, m, head);
  const mc = s.mapcount;
  const large = ((f >>> ORDER_SHIFT) & ORDER_MASK) !== 0;
  let nrUnmapped = 0;
  let nrMapped = 0;
  if (!large) {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: checkUnmapRange throws only for a page below 0 (it checks again); equivalent
    if (mc[pfn] < 0) checkUnmapRange(s, m, head, pfn, 1);
    if (--mc[pfn] === -1) nrUnmapped = 1;
    else c.mapcountSharedDrops++;
    c.mapcountAtomics++;
    c.metadataLines++;
  } else {
    nrUnmapped = decMapcounts(s, m, head, pfn, nr);
    c.mapcountAtomics += nr;
    c.mapcountSharedDrops += nr - nrUnmapped;
    const t1 = head + 1;
    nrMapped = s.nrPagesMapped[t1] - nrUnmapped;
    s.nrPagesMapped[t1] = nrMapped;
    c.nrPagesMappedAtomics++;
    if (nrMapped >= COMPOUND_MAPPED) nrUnmapped = 0;
    s.largeMapcount[t1] -= nr;
    c.metadataLines += linesFor(pfn, nr, head, t1, -1);
  }
  if (nrUnmapped !== 0) {
    statMod(s, head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, -nrUnmapped);
    if (large && (f & PG.anon) !== 0 && nrMapped !== 0) deferredSplit65(s, head);
  }
  if (vmaLocked && !large) munlock(s, head);
  // Stryker disable next-line all: DEBUG_VM is off in the model (a debug-build self-check); equivalent
  if (DEBUG_VM) checkFolio(s, m, head);
}
