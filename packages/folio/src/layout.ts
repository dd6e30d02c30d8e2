// Models: the bits of `struct page` that are not public page flags: PG_head / compound-tail marking,
// PageBuddy, the folio order and the memcg of `memcg_data`, packed into the per-pfn flags word.
// Omits: zone bits, section bits, last_cpupid (the model has one zone per node).

/** Set on the head pfn of an allocated folio (any order, unlike the kernel's PG_head). */
export const F_HEAD = 1 << 12;
/** Set on every non-head page of an allocated large folio. */
export const F_TAIL = 1 << 13;
/** Set on every page that belongs to a free buddy block. */
export const F_FREE = 1 << 14;
/** Set on the first page of a free buddy block (`PageBuddy`); its order is in the order bits. */
export const F_BUDDY = 1 << 15;
/** Folio / buddy-block order lives in bits 16..19. */
export const ORDER_SHIFT = 16;
export const ORDER_MASK = 0xf;
/** Memcg id of the folio (`memcg_data`) lives in bits 20..31. */
export const MEMCG_SHIFT = 20;
/** Memcg ids fit the 12 bits above MEMCG_SHIFT. */
export const MAX_MEMCGS = 2 ** (32 - MEMCG_SHIFT);

/** Set this to true to run a folio-local consistency check after every rmap primitive (debug builds). */
export const DEBUG_VM = false;

/**
 * Distinct struct pages touched by one primitive: the page range [first, first + nr) plus up to three
 * extra pages (head, page[1], page[2]; -1 = not touched) counted only when outside the range.
 */
export function linesFor(first: number, nr: number, a: number, b: number, c: number): number {
  const end = first + nr;
  let n = nr;
  if (a >= 0 && (a < first || a >= end)) n++;
  if (b >= 0 && (b < first || b >= end)) n++;
  if (c >= 0 && (c < first || c >= end)) n++;
  return n;
}
