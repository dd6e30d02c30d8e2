// Models: the folio accessors of include/linux/mm.h, include/linux/page_ref.h and
// include/linux/page-flags.h — page_folio, folio_order / folio_nr_pages, folio_ref_count / folio_get /
// folio_ref_add / folio_ref_sub_and_test, page_mapcount / folio_mapcount / folio_mapped and the
// large-folio mapcount readers, folio_test/set/clear_*, mapping / index / folio->swap, and
// folio_set_anon (the anon side of __folio_set_anon) — over FolioState.
// Omits: page flags teardown never reads or writes (see constants.ts), _pincount.

import { PG, PG_MANAGED_MASK } from "./constants.js";
import { fail } from "./errors.js";
import { F_FREE, F_TAIL, MEMCG_SHIFT, ORDER_MASK, ORDER_SHIFT } from "./layout.js";
import { checkFlag, checkHead, checkPfn, type FolioState, isInt } from "./mm-types.js";

const MODULE = "folio";

/** `page_folio`: head pfn of the folio containing `pfn`. */
export function folioHead(s: FolioState, pfn: number): number {
  const m = "folioHead";
  checkPfn(s, m, pfn);
  const f = s.flags[pfn];
  if ((f & F_FREE) !== 0) fail("USE_AFTER_FREE", MODULE, m, `(${pfn}): pfn ${pfn} is free memory`);
  return (f & F_TAIL) !== 0 ? s.priv[pfn] : pfn;
}

/**
 * `page_folio` without checks: head pfn of the folio containing `pfn`, for hot callers that hold a
 * mapped pfn (a PTE's, a gathered entry's). Meaningless for a free pfn.
 */
export function folioHeadTrusted(s: FolioState, pfn: number): number {
  return (s.flags[pfn] & F_TAIL) !== 0 ? s.priv[pfn] : pfn;
}

/** `folio_nr_pages` of a head known to be live (no checks). */
export function folioNrPagesTrusted(s: FolioState, head: number): number {
  return 1 << ((s.flags[head] >>> ORDER_SHIFT) & ORDER_MASK);
}

/** The flags word of a head known to be live (PG bits in the low bits; no checks). */
export function folioFlagsTrusted(s: FolioState, head: number): number {
  return s.flags[head];
}

/**
 * True when `f`, the flags word of a live pfn ({@link folioFlagsTrusted} of a pfn a present PTE
 * maps), is that of an order-0 folio (its own head): lets a walk read each pfn's flags once. @internal
 */
export function flagsOrder0(f: number): boolean {
  return (f & (F_TAIL | (ORDER_MASK << ORDER_SHIFT))) === 0;
}

/** `folio_test_*` of a head known to be live, for a single PG bit (no checks). */
export function folioTestTrusted(s: FolioState, head: number, flag: number): boolean {
  return (s.flags[head] & flag) !== 0;
}

/** `folio_order`. */
export function folioOrder(s: FolioState, head: number): number {
  checkHead(s, "folioOrder", head);
  return (s.flags[head] >>> ORDER_SHIFT) & ORDER_MASK;
}

/** `folio_nr_pages`. */
export function folioNrPages(s: FolioState, head: number): number {
  checkHead(s, "folioNrPages", head);
  return 1 << ((s.flags[head] >>> ORDER_SHIFT) & ORDER_MASK);
}

/** Memcg the folio is charged to. */
export function folioMemcg(s: FolioState, head: number): number {
  checkHead(s, "folioMemcg", head);
  return s.flags[head] >>> MEMCG_SHIFT;
}

/** `folio_ref_count`. */
export function folioRef(s: FolioState, head: number): number {
  checkHead(s, "folioRef", head);
  return s.refcount[head];
}

/** `folio_get`: one atomic increment. */
export function folioGet(s: FolioState, head: number): void {
  checkHead(s, "folioGet", head);
  if (s.refcount[head] <= 0)
    fail("BAD_STATE", MODULE, "folioGet", `(${head}): folio_get on a folio with refcount 0`);
  s.refcount[head]++;
  s.counters.refcountAtomics++;
  s.counters.metadataLines++;
}

/** `folio_ref_add(folio, nr)`: one atomic add. */
export function folioRefAdd(s: FolioState, head: number, nr: number): void {
  const m = "folioRefAdd";
  checkHead(s, m, head);
  if (!isInt(nr) || nr < 1) fail("EINVAL", MODULE, m, `(${head}, ${String(nr)}): nr must be an integer >= 1`);
  if (s.refcount[head] <= 0)
    fail("BAD_STATE", MODULE, m, `(${head}): folio_ref_add on a folio with refcount 0`);
  s.refcount[head] += nr;
  s.counters.refcountAtomics++;
  s.counters.metadataLines++;
}

/**
 * A put that leaves the folio allocated must leave it at least one reference per mapping: every PTE
 * or PMD that maps a page holds a reference (folio_ref_add at map time), so a refcount below the
 * mapcount means some put ran before its rmap was removed, or one put too many. The kernel would go
 * on with a folio that can reach zero — and be freed — while still mapped.
 */
export function checkRefsCoverMappings(s: FolioState, head: number, rc: number, method: string): void {
  const map = folioMapcountRaw(s, head);
  if (rc < map)
    fail(
      "REFCOUNT_BELOW_MAPCOUNT",
      MODULE,
      method,
      `(${head}): a put left refcount ${rc} below mapcount ${map}`,
    );
}

/** `folio_ref_sub_and_test`: one atomic subtract; true if it reached zero (the folio is NOT freed: call freeFolio). */
export function folioRefSubAndTest(s: FolioState, head: number, nr: number): boolean {
  const m = "folioRefSubAndTest";
  checkHead(s, m, head);
  if (!isInt(nr) || nr < 1) fail("EINVAL", MODULE, m, `(${head}, ${String(nr)}): nr must be an integer >= 1`);
  const rc = s.refcount[head];
  if (rc < nr) fail("REFCOUNT_UNDERFLOW", MODULE, m, `(${head}, ${nr}): folio refcount is only ${rc}`);
  s.refcount[head] = rc - nr;
  s.counters.refcountAtomics++;
  s.counters.metadataLines++;
  if (rc !== nr) checkRefsCoverMappings(s, head, rc - nr, m);
  return rc === nr;
}

/** PTE mapcount of one page (`_mapcount + 1`). */
export function pageMapcount(s: FolioState, pfn: number): number {
  const m = "pageMapcount";
  checkPfn(s, m, pfn);
  if ((s.flags[pfn] & F_FREE) !== 0) fail("USE_AFTER_FREE", MODULE, m, `(${pfn}): pfn ${pfn} is free memory`);
  return s.mapcount[pfn] + 1;
}

export function folioMapcountRaw(s: FolioState, head: number): number {
  const order = (s.flags[head] >>> ORDER_SHIFT) & ORDER_MASK;
  return order === 0 ? s.mapcount[head] + 1 : s.largeMapcount[head + 1] + 1;
}

/** `folio_mapcount`: all PTE and PMD mappings of the folio (7.x: `_large_mapcount + 1`). */
export function folioMapcount(s: FolioState, head: number): number {
  checkHead(s, "folioMapcount", head);
  return folioMapcountRaw(s, head);
}

/** `folio_mapped`: small: `_mapcount >= 0`; large: `_nr_pages_mapped != 0`. */
export function folioMapped(s: FolioState, head: number): boolean {
  checkHead(s, "folioMapped", head);
  const order = (s.flags[head] >>> ORDER_SHIFT) & ORDER_MASK;
  return order === 0 ? s.mapcount[head] >= 0 : s.nrPagesMapped[head + 1] !== 0;
}

/** `folio_entire_mapcount` (`_entire_mapcount + 1`; 0 for small folios). */
export function entireMapcount(s: FolioState, head: number): number {
  checkHead(s, "entireMapcount", head);
  return ((s.flags[head] >>> ORDER_SHIFT) & ORDER_MASK) === 0 ? 0 : s.entireMapcount[head + 1] + 1;
}

/** Raw `_nr_pages_mapped` (includes COMPOUND_MAPPED per entire mapping; 0 for small folios). */
export function nrPagesMapped(s: FolioState, head: number): number {
  checkHead(s, "nrPagesMapped", head);
  return ((s.flags[head] >>> ORDER_SHIFT) & ORDER_MASK) === 0 ? 0 : s.nrPagesMapped[head + 1];
}

/** `folio_large_mapcount` (`_large_mapcount + 1`); for a small folio its `_mapcount + 1`. */
export function largeMapcount(s: FolioState, head: number): number {
  checkHead(s, "largeMapcount", head);
  return folioMapcountRaw(s, head);
}

/** `folio_test_*`. */
export function folioTest(s: FolioState, head: number, flag: number): boolean {
  checkHead(s, "folioTest", head);
  checkFlag("folioTest", flag);
  return (s.flags[head] & flag) !== 0;
}

/** `folio_set_*` for flags not owned by this package's primitives (lru, anon, swapbacked, deferred split are refused). */
export function folioSet(s: FolioState, head: number, flag: number): void {
  checkHead(s, "folioSet", head);
  checkFlag("folioSet", flag);
  if ((flag & PG_MANAGED_MASK) !== 0)
    fail(
      "BAD_FLAG",
      MODULE,
      "folioSet",
      `(${head}): flag ${flag} is managed by folio primitives (LRU, rmap, page cache)`,
    );
  s.flags[head] |= flag;
}

/** `folio_clear_*` (same restrictions as {@link folioSet}). */
export function folioClear(s: FolioState, head: number, flag: number): void {
  checkHead(s, "folioClear", head);
  checkFlag("folioClear", flag);
  if ((flag & PG_MANAGED_MASK) !== 0)
    fail(
      "BAD_FLAG",
      MODULE,
      "folioClear",
      `(${head}): flag ${flag} is managed by folio primitives (LRU, rmap, page cache)`,
    );
  s.flags[head] &= ~flag;
}

/** `folio->mapping` id (anon_vma id for anon folios, address_space id for page cache; -1 = none). */
export function folioMapping(s: FolioState, head: number): number {
  checkHead(s, "folioMapping", head);
  return s.mapping[head];
}

/** `folio->index`. */
export function folioIndex(s: FolioState, head: number): number {
  checkHead(s, "folioIndex", head);
  return s.index[head];
}

/** `folio->swap` (0 = none). */
export function folioSwap(s: FolioState, head: number): number {
  checkHead(s, "folioSwap", head);
  return s.priv[head];
}

/** Set `folio->swap` (0 clears it). */
export function folioSetSwap(s: FolioState, head: number, entry: number): void {
  const m = "folioSetSwap";
  checkHead(s, m, head);
  if (!isInt(entry) || entry < 0 || entry > 0xffffffff)
    fail("EINVAL", MODULE, m, `(${head}, ${String(entry)}): swap entry must be an integer in 0..2^32-1`);
  s.priv[head] = entry;
}

/** The anon half of `folio_add_new_anon_rmap`: mapping = anon_vma, index, PG_anon + PG_swapbacked. */
export function folioSetAnon(s: FolioState, head: number, anonVma: number, index: number): void {
  const m = "folioSetAnon";
  checkHead(s, m, head);
  if (!isInt(anonVma) || anonVma < 0 || anonVma > 0x7fffffff)
    fail("EINVAL", MODULE, m, `(${head}, ${String(anonVma)}): anonVma must be a non-negative int32`);
  if (!isInt(index) || index < 0 || index > 0x7fffffff)
    fail("EINVAL", MODULE, m, `(${head}, ${anonVma}, ${String(index)}): index must be a non-negative int32`);
  if (folioMapcountRaw(s, head) !== 0) fail("BAD_STATE", MODULE, m, `(${head}): folio is already mapped`);
  const f = s.flags[head];
  if ((f & PG.anon) === 0 && s.mapping[head] >= 0)
    fail("BAD_STATE", MODULE, m, `(${head}): folio is in page cache mapping ${s.mapping[head]}`);
  s.mapping[head] = anonVma;
  s.index[head] = index;
  s.flags[head] = f | PG.anon | PG.swapbacked;
}
