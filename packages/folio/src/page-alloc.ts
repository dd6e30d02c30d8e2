// Models: the buddy side of mm/page_alloc.c (v6.5): per-node, per-order free lists that split on
// allocation (folio_alloc → __rmqueue_smallest / expand) and merge with the buddy on free
// (__free_one_page), folios of order 0..pmdOrder naturally aligned, the order-0 list free of
// free_unref_page_list / free_unref_folios, and the free observer. Each freed folio goes through the
// pcp lists (pcp.ts) when its order is a pcp order.
// Omits: zones other than one per node, migratetypes (all movable), watermarks, compaction; allocator
// cost is reported as folios / pages and cache lines.

import { fail } from "./errors.js";
import { F_BUDDY, F_FREE, F_HEAD, F_TAIL, MEMCG_SHIFT, ORDER_MASK, ORDER_SHIFT } from "./layout.js";
import {
  COSTLY_ORDER,
  checkPfn,
  type FolioState,
  type FreeObserver,
  isInt,
  nodeEnd,
  nodeStart,
  PCP_LISTS,
} from "./mm-types.js";
import { pcpCommit, pcpCommitOrder0V65, pcpCommitOrder0V67 } from "./pcp.js";

const MODULE = "page-alloc";

/** Options of {@link PhysMem.allocFolio}. */
export interface AllocOptions {
  /** Node to allocate from (default 0). */
  node?: number;
  /** Memcg to charge (default 0). */
  memcg?: number;
}

/** Folios up to this many pages are reset by a loop at free, larger ones by TypedArray#fill. */
const FILL_LOOP_MAX = 64;

/** Puts every page of every node on the free lists as the largest naturally aligned blocks. */
export function seedFreeLists(s: FolioState): void {
  // Stryker disable next-line EqualityOperator: node nrNodes has an empty pfn range, so the extra pass adds nothing; equivalent
  for (let node = 0; node < s.nrNodes; node++) {
    const end = nodeEnd(s, node);
    let pfn = nodeStart(s, node);
    while (pfn < end) {
      let o = s.maxOrder;
      while (o > 0 && ((pfn & ((1 << o) - 1)) !== 0 || pfn + (1 << o) > end)) o--;
      s.flags[pfn] = F_FREE | F_BUDDY | (o << ORDER_SHIFT);
      listAdd(s, node, o, pfn);
      pfn += 1 << o;
    }
  }
}

export function listAdd(s: FolioState, node: number, order: number, pfn: number): void {
  const k = node * (s.maxOrder + 1) + order;
  const next = s.freeHead[k];
  s.freeNext[pfn] = next;
  s.freePrev[pfn] = -1;
  if (next !== -1) s.freePrev[next] = pfn;
  s.freeHead[k] = pfn;
  s.freeBlocks[k]++;
}

export function listDel(s: FolioState, node: number, order: number, pfn: number): void {
  const k = node * (s.maxOrder + 1) + order;
  const prev = s.freePrev[pfn];
  const next = s.freeNext[pfn];
  if (prev === -1) s.freeHead[k] = next;
  else s.freeNext[prev] = next;
  if (next !== -1) s.freePrev[next] = prev;
  s.freeNext[pfn] = 0;
  // Stryker disable next-line UnaryOperator: the unlinked block's prev link is rewritten when it is listed again, never read before; equivalent
  s.freePrev[pfn] = -1;
  s.freeBlocks[k]--;
}

/**
 * `folio_alloc`: a naturally aligned folio of `order` pages from the buddy allocator, refcount 1,
 * unmapped, charged to `memcg`. Cache lines: every struct page of the folio (prep_compound_page)
 * plus one per buddy half put back on a free list.
 */
export function allocFolio(s: FolioState, order: number, opts?: AllocOptions): number {
  const m = "allocFolio";
  if (!isInt(order) || order < 0 || order > s.pmdOrder)
    fail("BAD_ORDER", MODULE, m, `(${String(order)}): order must be an integer in 0..${s.pmdOrder}`);
  const node = opts?.node ?? 0;
  const memcg = opts?.memcg ?? 0;
  if (!isInt(node) || node < 0 || node >= s.nrNodes)
    fail("EINVAL", MODULE, m, `(${order}): node ${String(node)} is not in 0..${s.nrNodes - 1}`);
  if (!isInt(memcg) || memcg < 0 || memcg >= s.nrMemcgs)
    fail("EINVAL", MODULE, m, `(${order}): memcg ${String(memcg)} is not in 0..${s.nrMemcgs - 1}`);
  const maxOrder = s.maxOrder;
  const base = node * (maxOrder + 1);
  let o = order;
  while (o <= maxOrder && s.freeHead[base + o] === -1) o++;
  if (o > maxOrder)
    fail("ENOMEM", MODULE, m, `(${order}): no free block of order >= ${order} on node ${node}`);
  const c = s.counters;
  if (order <= COSTLY_ORDER || order === s.pmdOrder) {
    const li = node * PCP_LISTS + (order <= COSTLY_ORDER ? order : PCP_LISTS - 1);
    if (s.pcpEntries[li] !== 0) {
      s.pcpEntries[li]--;
      s.pcpCount[node] -= 1 << order;
    }
    s.pcpFreeFactor[node] >>= 1;
  }
  const pfn = s.freeHead[base + o];
  listDel(s, node, o, pfn);
  while (o > order) {
    o--;
    const buddy = pfn + (1 << o);
    s.flags[buddy] = F_FREE | F_BUDDY | (o << ORDER_SHIFT);
    listAdd(s, node, o, buddy);
    c.buddySplits++;
    c.metadataLines++;
  }
  const nr = 1 << order;
  const flags = s.flags;
  const priv = s.priv;
  for (let i = 1; i < nr; i++) {
    const p = pfn + i;
    flags[p] = F_TAIL;
    priv[p] = pfn;
    s.refcount[p] = 0;
    s.mapping[p] = 0;
    s.index[p] = 0;
    s.mapcount[p] = -1;
  }
  flags[pfn] = F_HEAD | (order << ORDER_SHIFT) | (memcg << MEMCG_SHIFT);
  s.refcount[pfn] = 1;
  s.mapping[pfn] = -1;
  s.index[pfn] = 0;
  s.mapcount[pfn] = -1;
  priv[pfn] = 0;
  if (order > 0) {
    s.largeMapcount[pfn + 1] = -1;
    s.entireMapcount[pfn + 1] = -1;
    s.nrPagesMapped[pfn + 1] = 0;
  }
  s.nrFree -= nr;
  c.foliosAllocated++;
  c.pagesAllocated += nr;
  c.metadataLines += nr;
  return pfn;
}

/**
 * Return a folio's pages to the buddy allocator, merging with free buddies. State checks are done by
 * callers. One tight loop over locals: the free-list unlink of each merged buddy is inlined (this runs
 * once per freed folio, so for order-0 folios once per page).
 */
export function freeToBuddy(s: FolioState, head: number, order: number): void {
  const nr = 1 << order;
  const flags = s.flags;
  const refcount = s.refcount;
  const mapping = s.mapping;
  const freeNext = s.freeNext;
  const freePrev = s.freePrev;
  if (nr === 1) {
    flags[head] = F_FREE;
    s.mapcount[head] = -1;
    refcount[head] = 0;
    mapping[head] = -1;
    s.index[head] = 0;
    s.priv[head] = 0;
  } else if (nr <= FILL_LOOP_MAX) {
    // TypedArray#fill with a range is a C++ builtin call each: a plain loop is cheaper for small folios.
    const mapcount = s.mapcount;
    const index = s.index;
    const priv = s.priv;
    const end = head + nr;
    for (let p = head; p < end; p++) {
      flags[p] = F_FREE;
      mapcount[p] = -1;
      refcount[p] = 0;
      mapping[p] = -1;
      index[p] = 0;
      priv[p] = 0;
    }
  } else {
    const end = head + nr;
    flags.fill(F_FREE, head, end);
    s.mapcount.fill(-1, head, end);
    refcount.fill(0, head, end);
    // Stryker disable next-line UnaryOperator: a free page's mapping / index / private are rewritten by allocFolio before anything reads them (stateDigest skips free pages); equivalent
    mapping.fill(-1, head, end);
    // Stryker disable next-line CallExpression: a free page's mapping / index / private are rewritten by allocFolio before anything reads them (stateDigest skips free pages); equivalent
    s.index.fill(0, head, end);
    // Stryker disable next-line CallExpression: a free page's mapping / index / private are rewritten by allocFolio before anything reads them (stateDigest skips free pages); equivalent
    s.priv.fill(0, head, end);
  }
  let node = 0;
  let ns = 0;
  let ne = s.nrPages;
  if (s.nrNodes !== 1) {
    node = (head / s.nodeSpan) | 0;
    ns = nodeStart(s, node);
    ne = nodeEnd(s, node);
  }
  const freeHead = s.freeHead;
  const freeBlocks = s.freeBlocks;
  const maxOrder = s.maxOrder;
  const kb = node * (maxOrder + 1);
  let pfn = head;
  let o = order;
  let merges = 0;
  while (o < maxOrder) {
    const size = 1 << o;
    const buddy = pfn ^ size;
    if (buddy < ns || buddy + size > ne) break;
    const bf = flags[buddy];
    if ((bf & F_BUDDY) === 0 || ((bf >>> ORDER_SHIFT) & ORDER_MASK) !== o) break;
    // listDel(node, o, buddy)
    const prev = freePrev[buddy];
    const next = freeNext[buddy];
    if (prev === -1) freeHead[kb + o] = next;
    else freeNext[prev] = next;
    if (next !== -1) freePrev[next] = prev;
    freeNext[buddy] = 0;
    freePrev[buddy] = -1;
    freeBlocks[kb + o]--;
    flags[buddy] = F_FREE;
    merges++;
    if (buddy < pfn) pfn = buddy;
    o++;
  }
  flags[pfn] = F_FREE | F_BUDDY | (o << ORDER_SHIFT);
  // listAdd(node, o, pfn)
  const k = kb + o;
  const first = freeHead[k];
  freeNext[pfn] = first;
  freePrev[pfn] = -1;
  if (first !== -1) freePrev[first] = pfn;
  freeHead[k] = pfn;
  freeBlocks[k]++;
  s.nrFree += nr;
  const c = s.counters;
  c.metadataLines += nr + merges;
  c.buddyMerges += merges;
  c.foliosFreed++;
  c.pagesFreed += nr;
  s.freedFoliosTotal++;
  s.freedPagesTotal += nr;
  if (order <= COSTLY_ORDER || order === s.pmdOrder) pcpCommit(s, node, order);
  else c.zoneLockAcquisitions++;
  const obs = s.freeObserver;
  if (obs !== null) obs(head, order);
}

/**
 * `freeToBuddy``(list[i], 0)` for i in [0, n): order-0 folios whose release already passed the
 * free checks (so `_mapcount` is -1 and `_refcount` 0: those stay as they are). One loop over locals,
 * counters added once. With a free observer installed, frees one by one through `freeToBuddy`.
 */
export function freeOrder0List(s: FolioState, list: Int32Array, n: number): void {
  if (s.freeObserver !== null || s.nrNodes !== 1) {
    for (let i = 0; i < n; i++) freeToBuddy(s, list[i], 0);
    return;
  }
  const flags = s.flags;
  const mapping = s.mapping;
  const freeNext = s.freeNext;
  const freePrev = s.freePrev;
  const index = s.index;
  const priv = s.priv;
  const freeHead = s.freeHead;
  const freeBlocks = s.freeBlocks;
  const ne = s.nrPages;
  const maxOrder = s.maxOrder;
  let merges = 0;
  for (let i = 0; i < n; i++) {
    const head = list[i];
    mapping[head] = -1;
    index[head] = 0;
    priv[head] = 0;
    let pfn = head;
    let o = 0;
    // The next entries may complete an aligned block with this page: freed one by one, each page
    // of [head, head + 2^m) (ascending) would put its block so far on a free list and take it off
    // again at the next page (lists back as they were; none of the block's buddies outside it is
    // looked at below order m), so the block becomes one order-m block after 2^m - 1 merges. A page
    // followed by its order-0 buddy below it (descending pair) likewise becomes one order-1 block.
    let m = 0;
    while (m < maxOrder) {
      const sz = 2 << m;
      if ((head & (sz - 1)) !== 0 || i + sz > n) break;
      let q = sz >> 1;
      while (q < sz && list[i + q] === head + q) q++;
      if (q !== sz) break;
      m++;
    }
    let block = 1 << m;
    if (m === 0 && i + 1 < n && list[i + 1] === (head ^ 1)) {
      pfn = head ^ 1;
      flags[head] = F_FREE;
      block = 2;
      o = 1;
    } else o = m;
    if (block > 1) {
      pfn &= ~(block - 1);
      for (let q = 0; q < block; q++) {
        const p = pfn + q;
        // Stryker disable next-line UnaryOperator: a free page's mapping / index / private are rewritten by allocFolio before anything reads them (stateDigest skips free pages); equivalent
        mapping[p] = -1;
        index[p] = 0;
        priv[p] = 0;
        flags[p] = F_FREE;
      }
      merges += block - 1;
      i += block - 1;
    }
    while (o < maxOrder) {
      const size = 1 << o;
      const buddy = pfn ^ size;
      if (buddy + size > ne) break;
      const bf = flags[buddy];
      if ((bf & F_BUDDY) === 0 || ((bf >>> ORDER_SHIFT) & ORDER_MASK) !== o) break;
      // listDel(s, node, o, buddy)
      const prev = freePrev[buddy];
      const next = freeNext[buddy];
      if (prev === -1) freeHead[o] = next;
      else freeNext[prev] = next;
      if (next !== -1) freePrev[next] = prev;
      freeNext[buddy] = 0;
      // Stryker disable next-line UnaryOperator: the merged buddy's prev link is rewritten when it is listed again, never read before; equivalent
      freePrev[buddy] = -1;
      freeBlocks[o]--;
      flags[buddy] = F_FREE;
      merges++;
      // Stryker disable next-line EqualityOperator: a buddy is never the block itself; equivalent
      if (buddy < pfn) pfn = buddy;
      o++;
    }
    if (pfn !== head) flags[head] = F_FREE;
    flags[pfn] = F_FREE | F_BUDDY | (o << ORDER_SHIFT);
    // listAdd(s, node, o, pfn)
    const first = freeHead[o];
    freeNext[pfn] = first;
    freePrev[pfn] = -1;
    if (first !== -1) freePrev[first] = pfn;
    freeHead[o] = pfn;
    freeBlocks[o]++;
  }
  // pcpCommit(0, 0) per page (order 0 never takes the free_high path). The pcp lists are counts
  // only, independent of the buddy lists, so their commits run in a loop of their own.
  if (s.pcpV67) pcpCommitOrder0V67(s, n);
  else pcpCommitOrder0V65(s, n);
  s.nrFree += n;
  const c = s.counters;
  c.metadataLines += n + merges;
  c.buddyMerges += merges;
  c.foliosFreed += n;
  c.pagesFreed += n;
  c.pcpFrees += n;
  s.freedFoliosTotal += n;
  s.freedPagesTotal += n;
}

/** Register (or with null remove) the observer called whenever a folio is returned to the allocator. */
export function setFreeObserver(s: FolioState, fn: FreeObserver | null): void {
  if (fn !== null && typeof fn !== "function")
    fail("EINVAL", MODULE, "setFreeObserver", "observer must be a function or null");
  s.freeObserver = fn;
}

/** True if `pfn` lies in a free buddy block. */
export function isFree(s: FolioState, pfn: number): boolean {
  checkPfn(s, "isFree", pfn);
  return (s.flags[pfn] & F_FREE) !== 0;
}

/** Number of free page frames. */
export function nrFreePages(s: FolioState): number {
  return s.nrFree;
}

/** Free buddy blocks as [pfn, order] pairs sorted by pfn (diagnostics and tests). */
export function freeBlockList(s: FolioState): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  // Stryker disable next-line EqualityOperator: flags[nrPages] is undefined, so no block is reported past the end; equivalent
  for (let pfn = 0; pfn < s.nrPages; pfn++) {
    const f = s.flags[pfn];
    if ((f & F_BUDDY) !== 0) out.push([pfn, (f >>> ORDER_SHIFT) & ORDER_MASK]);
  }
  return out;
}
