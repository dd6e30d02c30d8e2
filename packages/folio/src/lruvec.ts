// Models: a folio's lruvec and LRU membership (include/linux/mm_inline.h lruvec_add_folio /
// lruvec_del_folio, include/linux/memcontrol.h folio_lruvec), per-lruvec and per-node statistics
// (mm/vmstat.c __mod_lruvec_state, rmap.c __folio_mod_stat of 7.x). One lruvec per (node, memcg).
// Omits: list order (membership only: nothing in teardown walks the lists), active/inactive/
// unevictable choice, LRU gen.

import { NodeStat, NR_STAT_ITEMS, PG } from "./constants.js";
import { fail } from "./errors.js";
import { MEMCG_SHIFT, ORDER_MASK, ORDER_SHIFT } from "./layout.js";
import { checkHead, type FolioState, isInt } from "./mm-types.js";

const MODULE = "lruvec";

export function lruvecOfHead(s: FolioState, head: number): number {
  const memcg = s.flags[head] >>> MEMCG_SHIFT;
  return s.nrNodes === 1 ? memcg : ((head / s.nodeSpan) | 0) * s.nrMemcgs + memcg;
}

/** `__lruvec_stat_mod_folio` (node + memcg statistics of the folio's lruvec). */
export function statMod(s: FolioState, head: number, item: number, delta: number): void {
  s.stats[lruvecOfHead(s, head) * NR_STAT_ITEMS + item] += delta;
  s.counters.statUpdates++;
}

export function checkStatItem(method: string, item: number): void {
  if (!isInt(item) || item < 0 || item >= NR_STAT_ITEMS)
    fail("EINVAL", MODULE, method, `(${String(item)}): not a NodeStat item`);
}

/** Node statistic in pages (summed over memcgs); without `node`, summed over all nodes. */
export function nodeStat(s: FolioState, item: number, node?: number): number {
  const m = "nodeStat";
  checkStatItem(m, item);
  if (node !== undefined && (!isInt(node) || node < 0 || node >= s.nrNodes))
    fail("EINVAL", MODULE, m, `(${item}, ${String(node)}): node is not in 0..${s.nrNodes - 1}`);
  let sum = 0;
  for (let lv = 0; lv < s.nrLruvecs; lv++) {
    if (node !== undefined && ((lv / s.nrMemcgs) | 0) !== node) continue;
    sum += s.stats[lv * NR_STAT_ITEMS + item];
  }
  return sum;
}

/** Statistic of one lruvec (node, memcg). */
export function lruvecStat(s: FolioState, lruvec: number, item: number): number {
  checkLruvec(s, "lruvecStat", lruvec);
  checkStatItem("lruvecStat", item);
  return s.stats[lruvec * NR_STAT_ITEMS + item];
}

/** 7.x `__folio_mod_stat(folio, nr, nr_pmdmapped)` (negative values for removal). */
export function modStat(s: FolioState, head: number, f: number, nr: number, nrPmd: number): void {
  if (nr !== 0) statMod(s, head, (f & PG.anon) !== 0 ? NodeStat.NR_ANON_MAPPED : NodeStat.NR_FILE_MAPPED, nr);
  if (nrPmd !== 0) statMod(s, head, pmdStatItem(f), nrPmd);
}

export function pmdStatItem(f: number): number {
  return (f & PG.anon) !== 0
    ? NodeStat.NR_ANON_THPS
    : (f & PG.swapbacked) !== 0
      ? NodeStat.NR_SHMEM_PMDMAPPED
      : NodeStat.NR_FILE_PMDMAPPED;
}

export function checkLruvec(s: FolioState, method: string, lruvec: number): void {
  if (!isInt(lruvec) || lruvec < 0 || lruvec >= s.nrLruvecs)
    fail("EINVAL", MODULE, method, `(${String(lruvec)}): lruvec is not in 0..${s.nrLruvecs - 1}`);
}

export function lruvecAdd(s: FolioState, lv: number, head: number): void {
  s.flags[head] |= PG.lru;
  s.lruFolios[lv]++;
  s.lruPages[lv] += 1 << ((s.flags[head] >>> ORDER_SHIFT) & ORDER_MASK);
  s.counters.lruAdds++;
}

/** `lruvec_del_folio` + `__folio_clear_lru_flags`. */
export function lruvecDel(s: FolioState, lv: number, head: number): void {
  const f = s.flags[head];
  s.flags[head] = f & ~(PG.lru | PG.active);
  s.lruFolios[lv]--;
  s.lruPages[lv] -= 1 << ((f >>> ORDER_SHIFT) & ORDER_MASK);
  s.counters.lruDels++;
}

/** lruvec id (node × nrMemcgs + memcg) of a folio (`folio_lruvec`). */
export function lruvecOf(s: FolioState, head: number): number {
  checkHead(s, "lruvecOf", head);
  return lruvecOfHead(s, head);
}

/** Pages on the LRU lists of `lruvec`. */
export function lruvecNrPages(s: FolioState, lruvec: number): number {
  checkLruvec(s, "lruvecNrPages", lruvec);
  return s.lruPages[lruvec];
}

/** Folios on the LRU lists of `lruvec`. */
export function lruvecNrFolios(s: FolioState, lruvec: number): number {
  checkLruvec(s, "lruvecNrFolios", lruvec);
  return s.lruFolios[lruvec];
}
