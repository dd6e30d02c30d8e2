// Models: the page cache of mm/filemap.c: an address_space maps naturally aligned indices to folios,
// each holding folio_nr_pages references (__filemap_add_folio, filemap_get_folio,
// filemap_remove_folio), with NR_FILE_PAGES / NR_SHMEM.
// Omits: xarray node memory, shadow entries, writeback, truncation of mapped folios.

import { NodeStat, PG } from "./constants.js";
import { fail } from "./errors.js";
import { folioMapcountRaw } from "./folio.js";
import { ORDER_MASK, ORDER_SHIFT } from "./layout.js";
import { statMod } from "./lruvec.js";
import { type AddressSpace, checkHead, type FolioState, isInt } from "./mm-types.js";
import { assertFreeable, releaseAtZero } from "./swap.js";

const MODULE = "filemap";

/** Options of {@link PhysMem.createAddressSpace}. */
export interface AddressSpaceOptions {
  /** True for shmem/tmpfs (PG_swapbacked, NR_SHMEM, NR_SHMEM_PMDMAPPED). */
  swapBacked: boolean;
}

/** Create an address_space; returns its id (used as `folio->mapping`). */
export function createAddressSpace(s: FolioState, opts: AddressSpaceOptions): number {
  if (opts === null || typeof opts !== "object" || typeof opts.swapBacked !== "boolean")
    fail("EINVAL", MODULE, "createAddressSpace", "opts.swapBacked must be a boolean");
  s.spaces.push({ swapBacked: opts.swapBacked, folios: new Map() });
  return s.spaces.length - 1;
}

export function checkSpace(s: FolioState, method: string, mapping: number): AddressSpace {
  if (!isInt(mapping) || mapping < 0 || mapping >= s.spaces.length)
    fail("EINVAL", MODULE, method, `(${String(mapping)}): no such address_space`);
  return s.spaces[mapping];
}

export function lookup(s: FolioState, space: AddressSpace, index: number): number {
  for (let o = 0; o <= s.maxOrder; o++) {
    const base = index - (index & ((1 << o) - 1));
    const h = space.folios.get(base);
    if (h !== undefined) {
      const nr = 1 << ((s.flags[h] >>> ORDER_SHIFT) & ORDER_MASK);
      return index - base < nr ? h : -1;
    }
  }
  return -1;
}

/** `__filemap_add_folio`: insert at `index` (aligned to the folio size), taking folio_nr_pages references. */
export function filemapAddFolio(s: FolioState, mapping: number, head: number, index: number): void {
  const m = "filemapAddFolio";
  const space = checkSpace(s, m, mapping);
  checkHead(s, m, head);
  const f = s.flags[head];
  const nr = 1 << ((f >>> ORDER_SHIFT) & ORDER_MASK);
  if (!isInt(index) || index < 0 || index > 0x7fffffff - nr || (index & (nr - 1)) !== 0)
    fail(
      "EINVAL",
      MODULE,
      m,
      `(${mapping}, ${head}, ${String(index)}): index must be a non-negative multiple of ${nr}`,
    );
  if ((f & PG.anon) !== 0) fail("BAD_STATE", MODULE, m, `(${mapping}, ${head}): folio is anonymous`);
  if (s.mapping[head] >= 0)
    fail("BAD_STATE", MODULE, m, `(${mapping}, ${head}): folio is already in mapping ${s.mapping[head]}`);
  if (folioMapcountRaw(s, head) !== 0) fail("BAD_STATE", MODULE, m, `(${mapping}, ${head}): folio is mapped`);
  if (s.refcount[head] <= 0) fail("BAD_STATE", MODULE, m, `(${mapping}, ${head}): folio has refcount 0`);
  if (lookup(s, space, index) !== -1)
    fail("BAD_STATE", MODULE, m, `(${mapping}, ${head}, ${index}): index is occupied`);
  for (let i = index + 1; i < index + nr; i++)
    if (space.folios.has(i))
      fail("BAD_STATE", MODULE, m, `(${mapping}, ${head}, ${index}): index ${i} is occupied`);
  const c = s.counters;
  c.pageCacheLockAcquisitions++;
  s.refcount[head] += nr;
  c.refcountAtomics++;
  c.metadataLines++;
  s.mapping[head] = mapping;
  s.index[head] = index;
  if (space.swapBacked) s.flags[head] = f | PG.swapbacked;
  space.folios.set(index, head);
  statMod(s, head, NodeStat.NR_FILE_PAGES, nr);
  if (space.swapBacked) statMod(s, head, NodeStat.NR_SHMEM, nr);
}

/** Page-cache lookup of the folio covering `index` (head pfn, -1 if none). Takes no reference. */
export function filemapGetFolio(s: FolioState, mapping: number, index: number): number {
  const space = checkSpace(s, "filemapGetFolio", mapping);
  if (!isInt(index) || index < 0)
    fail("EINVAL", MODULE, "filemapGetFolio", `(${mapping}, ${String(index)}): bad index`);
  return lookup(s, space, index);
}

/** `filemap_remove_folio` + `filemap_free_folio`: remove an unmapped folio and drop the cache's nr references. */
export function filemapRemoveFolio(s: FolioState, head: number): void {
  const m = "filemapRemoveFolio";
  checkHead(s, m, head);
  const f = s.flags[head];
  const id = s.mapping[head];
  if ((f & PG.anon) !== 0 || id < 0)
    fail("BAD_STATE", MODULE, m, `(${head}): folio is not in the page cache`);
  if (folioMapcountRaw(s, head) !== 0) fail("BAD_STATE", MODULE, m, `(${head}): folio is still mapped`);
  const nr = 1 << ((f >>> ORDER_SHIFT) & ORDER_MASK);
  const rc = s.refcount[head];
  if (rc < nr)
    fail("REFCOUNT_UNDERFLOW", MODULE, m, `(${head}): page cache holds ${nr} refs but refcount is ${rc}`);
  const space = s.spaces[id];
  const c = s.counters;
  c.pageCacheLockAcquisitions++;
  space.folios.delete(s.index[head]);
  s.mapping[head] = -1;
  statMod(s, head, NodeStat.NR_FILE_PAGES, -nr);
  if (space.swapBacked) statMod(s, head, NodeStat.NR_SHMEM, -nr);
  if (rc === nr) assertFreeable(s, m, head);
  s.refcount[head] = rc - nr;
  c.refcountAtomics++;
  c.metadataLines++;
  if (rc === nr) releaseAtZero(s, head);
}
