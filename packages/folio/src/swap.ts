// Models: the LRU half of mm/swap.c (swap slots live in @mmgather/swapcache): folio_add_lru with the
// 6.5 per-CPU lru_add batch (PAGEVEC_SIZE, drained at once for large folios; the batch holds a folio
// reference) and lru_add_drain, __folio_put, 6.5 release_pages (lock_batch, SWAP_CLUSTER_MAX, large
// folios via __folio_put_large), the series' __folios_put_refs_init / do_one / complete (v2 4/5), 7.x
// folios_put_refs, memcg uncharge per uncharge_batch, and the free_pages_prepare checks of a freed folio.
// Omits: active/inactive/unevictable list choice, LRU gen, memcg uncharge work other than batches.

import { FOLIO_BATCH_SIZE, PAGEVEC_SIZE, PG, SWAP_CLUSTER_MAX } from "./constants.js";
import { fail } from "./errors.js";
import { checkRefsCoverMappings, folioMapcountRaw } from "./folio.js";
import { unqueueDeferredSplit } from "./huge-memory.js";
import { F_FREE, F_HEAD, F_TAIL, MEMCG_SHIFT, ORDER_MASK, ORDER_SHIFT } from "./layout.js";
import { lruvecAdd, lruvecDel, lruvecOfHead } from "./lruvec.js";
import { mlockFolioBatch } from "./mlock.js";
import { COSTLY_ORDER, checkHead, checkPfn, type FolioState, isInt, type PutRefsCtx } from "./mm-types.js";
import { freeOrder0List, freeToBuddy } from "./page-alloc.js";

const MODULE = "swap";

/**
 * True when `assertFreeable` would pass for a folio with flags `f` (the common case, checked inline
 * by the release loops; on false they call `assertFreeable`, which throws the precise error).
 */
// Stryker disable next-line BlockStatement: freeableFast only lets a caller skip assertFreeable, which passes for a freeable folio, so returning false more often is equivalent
export function freeableFast(s: FolioState, head: number, f: number): boolean {
  // Stryker disable next-line ConditionalExpression: freeableFast only lets a caller skip assertFreeable, which passes for a freeable folio, so returning false more often is equivalent
  if ((f & (PG.locked | PG.writeback | PG.swapcache)) !== 0) return false;
  if (((f >>> ORDER_SHIFT) & ORDER_MASK) === 0 ? s.mapcount[head] >= 0 : s.largeMapcount[head + 1] >= 0)
    return false;
  // Stryker disable next-line ConditionalExpression,LogicalOperator: freeableFast only lets a caller skip assertFreeable, which passes for a freeable folio, so returning false more often is equivalent
  if ((f & PG.anon) === 0 && s.mapping[head] >= 0) return false;
  return !lruBatchHas(s, head);
}

/** Bad-page checks of `free_pages_prepare` that apply when the last reference goes. */
export function assertFreeable(s: FolioState, method: string, head: number): void {
  const f = s.flags[head];
  const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
  const mapped = order === 0 ? s.mapcount[head] >= 0 : s.largeMapcount[head + 1] >= 0;
  if (mapped)
    fail(
      "FREE_MAPPED",
      MODULE,
      method,
      `(${head}): folio is still mapped (mapcount ${folioMapcountRaw(s, head)})`,
    );
  if ((f & (PG.locked | PG.writeback | PG.swapcache)) !== 0)
    fail(
      "FREE_BAD_FLAGS",
      MODULE,
      method,
      `(${head}): folio still has ${(f & PG.locked) !== 0 ? "PG_locked" : (f & PG.writeback) !== 0 ? "PG_writeback" : "PG_swapcache"} set`,
    );
  if ((f & PG.anon) === 0 && s.mapping[head] >= 0)
    fail(
      "FREE_BAD_FLAGS",
      MODULE,
      method,
      `(${head}): folio is still in page cache mapping ${s.mapping[head]}`,
    );
  if (lruBatchHas(s, head))
    fail("FREE_BAD_FLAGS", MODULE, method, `(${head}): folio is still in the per-CPU LRU-add batch`);
}

/** `free_unref_page` / `__free_pages`: free a folio whose only remaining reference is the caller's (refcount 1), or 0. */
export function freeFolio(s: FolioState, head: number): void {
  const m = "freeFolio";
  checkPfn(s, m, head);
  const f = s.flags[head];
  if ((f & F_FREE) !== 0) fail("DOUBLE_FREE", MODULE, m, `(${head}): pfn ${head} is already free`);
  if ((f & F_HEAD) === 0)
    fail("NOT_HEAD", MODULE, m, `(${head}): pfn ${head} is a tail page of folio ${s.priv[head]}`);
  const rc = s.refcount[head];
  if (rc > 1) fail("FREE_WITH_REFS", MODULE, m, `(${head}): folio still has refcount ${rc}`);
  assertFreeable(s, m, head);
  if (rc === 1) {
    s.refcount[head] = 0;
    s.counters.refcountAtomics++;
    s.counters.metadataLines++;
  }
  releaseAtZero(s, head);
}

/** `__folio_put`: LRU removal (own lruvec lock), stale mlock, deferred-split dequeue, then free. */
export function releaseAtZero(s: FolioState, head: number): void {
  const c = s.counters;
  const f = s.flags[head];
  if ((f & PG.lru) !== 0) {
    c.lruvecLockAcquisitions++;
    lruvecDel(s, lruvecOfHead(s, head), head);
    c.metadataLines++;
  }
  clearStaleMlock(s, head);
  unqueueDeferredSplit(s, head);
  c.memcgUnchargeBatches++;
  const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
  if (order <= COSTLY_ORDER || order === s.pmdOrder) c.pcpLockAcquisitions++;
  freeToBuddy(s, head, order);
}

export function clearStaleMlock(s: FolioState, head: number): void {
  if ((s.flags[head] & PG.mlocked) !== 0) {
    s.flags[head] &= ~PG.mlocked;
    s.counters.mlockClearedAtFree++;
  }
}

/** `folio_put`: one atomic decrement; at zero the folio is released through `__folio_put`. */
export function folioPut(s: FolioState, head: number): void {
  const m = "folioPut";
  checkHead(s, m, head);
  const rc = s.refcount[head];
  if (rc <= 0) fail("REFCOUNT_UNDERFLOW", MODULE, m, `(${head}): folio refcount is already ${rc}`);
  if (rc === 1) assertFreeable(s, m, head);
  s.refcount[head] = rc - 1;
  s.counters.refcountAtomics++;
  s.counters.metadataLines++;
  if (rc === 1) releaseAtZero(s, head);
  else checkRefsCoverMappings(s, head, rc - 1, m);
}

export function lruBatchHas(s: FolioState, head: number): boolean {
  const n = s.lruBatchNr;
  // Stryker disable next-line ConditionalExpression,LogicalOperator: the pfn range only filters before the exact scan below, which gives the same answer; equivalent
  if (n === 0 || head < s.lruBatchMin || head > s.lruBatchMax) return false;
  for (let i = 0; i < n; i++) if (s.lruBatch[i] === head) return true;
  return false;
}

/** Folios waiting in the per-CPU LRU-add batch. */
export function lruAddBatchCount(s: FolioState): number {
  return s.lruBatchNr;
}

/**
 * 6.5 `folio_add_lru`: take a reference for the per-CPU batch; move the batch to the LRU when it is
 * full (PAGEVEC_SIZE) or the folio is large.
 */
export function folioAddLru(s: FolioState, head: number): void {
  const m = "folioAddLru";
  checkHead(s, m, head);
  const f = s.flags[head];
  if ((f & PG.lru) !== 0) fail("BAD_STATE", MODULE, m, `(${head}): folio is already on an LRU list`);
  if (lruBatchHas(s, head)) fail("BAD_STATE", MODULE, m, `(${head}): folio is already in the LRU-add batch`);
  if (s.refcount[head] <= 0) fail("BAD_STATE", MODULE, m, `(${head}): folio has refcount 0`);
  s.refcount[head]++;
  s.counters.refcountAtomics++;
  s.counters.metadataLines++;
  // Stryker disable next-line ConditionalExpression: a stale min/max only widens the range, which filters before an exact scan; equivalent
  if (s.lruBatchNr === 0) {
    s.lruBatchMin = head;
    s.lruBatchMax = head;
    // Equivalent mutant left counted: `<=` (at head == min the assignment changes nothing); a disable comment does not reach an else-if
  } else if (head < s.lruBatchMin) s.lruBatchMin = head;
  // Equivalent mutant left counted: `>=` (at head == max the assignment changes nothing); a disable comment does not reach an else-if
  else if (head > s.lruBatchMax) s.lruBatchMax = head;
  s.lruBatch[s.lruBatchNr++] = head;
  if (s.lruBatchNr === PAGEVEC_SIZE || ((f >>> ORDER_SHIFT) & ORDER_MASK) !== 0) moveLruBatch(s);
}

/**
 * `folio_isolate_lru` (mm/vmscan.c, v6.18): a folio on an LRU list is taken off it under its lruvec
 * lock (PG_lru cleared; PG_active kept, as lruvec_del_folio does) with a reference for the isolator
 * (folio_get). False, and nothing done, when the folio is not on an LRU list (still in a per-CPU
 * LRU-add batch, or already isolated).
 */
export function folioIsolateLru(s: FolioState, head: number): boolean {
  const m = "folioIsolateLru";
  checkHead(s, m, head);
  const f = s.flags[head];
  if ((f & PG.lru) === 0) return false;
  // The kernel's VM_BUG_ON_FOLIO(!folio_ref_count(folio)): no public call leaves a folio on an LRU list
  // at refcount 0 (the last put takes it off), so the guard cannot fire; a self-check, equivalent.
  // Stryker disable next-line all: unreachable self-check (see above)
  if (s.refcount[head] <= 0) fail("BAD_STATE", MODULE, m, `(${head}): folio on the LRU has refcount 0`);
  s.refcount[head]++;
  s.counters.refcountAtomics++;
  s.counters.lruvecLockAcquisitions++;
  lruvecDel(s, lruvecOfHead(s, head), head);
  s.flags[head] |= f & PG.active;
  s.counters.metadataLines++;
  return true;
}

/** 6.5 `folio_batch_move_lru(fbatch, lru_add_fn)`: relock per lruvec change, then `release_pages` the batch refs. */
export function moveLruBatch(s: FolioState): void {
  const c = s.counters;
  const n = s.lruBatchNr;
  let lv = -1;
  for (let i = 0; i < n; i++) {
    const head = s.lruBatch[i];
    const l = lruvecOfHead(s, head);
    if (l !== lv) {
      lv = l;
      c.lruvecLockAcquisitions++;
    }
    lruvecAdd(s, l, head);
    c.metadataLines++;
  }
  s.lruBatchNr = 0;
  foliosPutBatch(s, s.lruBatch, n, "lruAddDrain");
}

/** `folios_put` of a per-CPU folio batch: drop the reference the batch held on each of `heads[0..n)`. */
export function foliosPutBatch(s: FolioState, heads: Int32Array, n: number, what: string): void {
  const ctx = s.releaseCtx;
  putRefsInit(ctx);
  for (let i = 0; i < n; i++) putRefsDoOne(s, ctx, heads[i], 1, what);
  putRefsComplete(s, ctx);
}

/** `lru_add_drain()`: move this CPU's LRU-add batch to the LRU. */
export function lruAddDrain(s: FolioState): void {
  s.counters.lruAddDrainCalls++;
  if (s.lruBatchNr !== 0) moveLruBatch(s);
  // mlock_drain_local
  if (s.mlockBatchNr !== 0) mlockFolioBatch(s);
}

export function putRefsInit(ctx: PutRefsCtx): void {
  ctx.active = true;
  ctx.lruvec = -1;
  ctx.lockBatch = 0;
  ctx.nrToFree = 0;
}

/** `__folios_put_refs_do_one(ctx, folio, refs)` (== 6.5 `release_pages` loop body with refs = 1). */
export function putRefsDoOne(
  s: FolioState,
  ctx: PutRefsCtx,
  head: number,
  refs: number,
  method: string,
): void {
  const c = s.counters;
  if (ctx.lruvec !== -1 && ++ctx.lockBatch === SWAP_CLUSTER_MAX) ctx.lruvec = -1;
  const f = s.flags[head];
  if ((f & F_HEAD) === 0)
    fail(
      (f & F_FREE) !== 0 ? "USE_AFTER_FREE" : "NOT_HEAD",
      MODULE,
      method,
      `(${head}): not the head of an allocated folio`,
    );
  const rc = s.refcount[head];
  if (rc < refs)
    fail("REFCOUNT_UNDERFLOW", MODULE, method, `(${head}): dropping ${refs} refs from refcount ${rc}`);
  if (rc === refs && !freeableFast(s, head, f)) assertFreeable(s, method, head);
  s.refcount[head] = rc - refs;
  c.refcountAtomics++;
  c.metadataLines++;
  if (rc !== refs) {
    checkRefsCoverMappings(s, head, rc - refs, method);
    return;
  }
  if (((f >>> ORDER_SHIFT) & ORDER_MASK) !== 0) {
    ctx.lruvec = -1;
    releaseAtZero(s, head);
    return;
  }
  if ((f & PG.lru) !== 0) {
    const l = lruvecOfHead(s, head);
    if (l !== ctx.lruvec) {
      ctx.lruvec = l;
      ctx.lockBatch = 0;
      c.lruvecLockAcquisitions++;
    }
    lruvecDel(s, l, head);
  }
  clearStaleMlock(s, head);
  if (ctx.nrToFree === ctx.toFree.length) {
    const grown = new Int32Array(ctx.toFree.length * 2);
    grown.set(ctx.toFree);
    ctx.toFree = grown;
  }
  ctx.toFree[ctx.nrToFree++] = head;
}

/** `__folios_put_refs_complete`: unlock, `mem_cgroup_uncharge_list`, `free_unref_page_list`. */
export function putRefsComplete(s: FolioState, ctx: PutRefsCtx): void {
  // Stryker disable next-line UnaryOperator: every context is reopened by putRefsInit, which sets lruvec -1 again; equivalent
  ctx.lruvec = -1;
  ctx.active = false;
  const c = s.counters;
  c.freeListCalls++;
  const n = ctx.nrToFree;
  ctx.nrToFree = 0;
  const toFree = ctx.toFree;
  // mem_cgroup_uncharge_list: one uncharge_batch per run of same-memcg folios.
  let mc = -1;
  for (let i = 0; i < n; i++) {
    const m = s.flags[toFree[i]] >>> MEMCG_SHIFT;
    if (m !== mc) {
      mc = m;
      c.memcgUnchargeBatches++;
    }
  }
  // free_unref_page_list: pcp lock per zone change, dropped every SWAP_CLUSTER_MAX pages. Counted
  // first (it only counts), then the frees in one loop.
  let locked = -1;
  let batch = 0;
  let pcpLocks = 0;
  for (let i = 0; i < n; i++) {
    const head = toFree[i];
    const node = s.nrNodes === 1 ? 0 : (head / s.nodeSpan) | 0;
    if (node !== locked) {
      locked = node;
      batch = 0;
      pcpLocks++;
    }
    if (++batch === SWAP_CLUSTER_MAX) locked = -1;
  }
  c.pcpLockAcquisitions += pcpLocks;
  freeOrder0List(s, toFree, n);
}

export function pageToHead(s: FolioState, method: string, pfn: number): number {
  checkPfn(s, method, pfn);
  const f = s.flags[pfn];
  if ((f & F_FREE) !== 0) fail("USE_AFTER_FREE", MODULE, method, `(${pfn}): pfn ${pfn} is free memory`);
  return (f & F_TAIL) !== 0 ? s.priv[pfn] : pfn;
}

/**
 * 6.5 `release_pages(pages, nr)`: drop one reference per entry (entries are any pfn of a folio);
 * the lruvec lock is held across consecutive small LRU folios, dropped every SWAP_CLUSTER_MAX folios
 * processed and for every large folio (released by `__folio_put_large` with its own lock).
 */
export function releasePages(s: FolioState, pages: ArrayLike<number>, start: number, nr: number): void {
  const m = "releasePages";
  if (pages === null || typeof pages !== "object" || !isInt(pages.length))
    fail("EINVAL", MODULE, m, "pages must be an array-like of pfns");
  if (!isInt(start) || !isInt(nr) || start < 0 || nr < 0 || start + nr > pages.length)
    fail(
      "EINVAL",
      MODULE,
      m,
      `(start ${String(start)}, nr ${String(nr)}): range outside pages[0..${pages.length})`,
    );
  for (let i = start; i < start + nr; i++) pageToHead(s, m, pages[i]);
  releasePagesTrusted(s, pages, start, nr);
}

/**
 * {@link releasePages} without the up-front argument checks, for the gather's flush, which only
 * holds pfns of live folios. A free or tail entry still throws (from the per-folio step).
 */
export function releasePagesTrusted(
  s: FolioState,
  pages: ArrayLike<number>,
  start: number,
  nr: number,
): void {
  const m = "releasePages";
  const ctx = s.releaseCtx;
  const flags = s.flags;
  const priv = s.priv;
  const refcount = s.refcount;
  const c = s.counters;
  putRefsInit(ctx);
  // ctx.lruvec / ctx.lockBatch and the inline path's counters live in locals between the calls of
  // the full per-folio step.
  let lv = -1;
  let lockBatch = 0;
  let puts = 0;
  const end = start + nr;
  for (let i = start; i < end; i++) {
    const pfn = pages[i];
    const head = (flags[pfn] & F_TAIL) !== 0 ? priv[pfn] : pfn;
    const rc = refcount[head];
    // Stryker disable next-line ConditionalExpression,EqualityOperator,BlockStatement: inline copy of putRefsDoOne's not-last-reference step (entries of a free page have refcount 0): the general path gives the same state and counters; equivalent
    if (rc > 1 && (flags[head] & F_HEAD) !== 0) {
      // putRefsDoOne when this is not the last reference (a page of a large folio whose other pages
      // are still queued): lock-batch step, one atomic, nothing else.
      if (lv !== -1 && ++lockBatch === SWAP_CLUSTER_MAX) lv = -1;
      refcount[head] = rc - 1;
      puts++;
      checkRefsCoverMappings(s, head, rc - 1, m);
      continue;
    }
    ctx.lruvec = lv;
    ctx.lockBatch = lockBatch;
    c.refcountAtomics += puts;
    c.metadataLines += puts;
    puts = 0;
    putRefsDoOne(s, ctx, head, 1, m);
    lv = ctx.lruvec;
    lockBatch = ctx.lockBatch;
  }
  c.refcountAtomics += puts;
  c.metadataLines += puts;
  ctx.lruvec = lv;
  ctx.lockBatch = lockBatch;
  putRefsComplete(s, ctx);
}

/** The series' `__folios_put_refs_init(ctx)` (v2 4/5). One context may be open at a time. */
export function foliosPutRefsInit(s: FolioState): void {
  if (s.seriesCtx.active)
    fail("BAD_STATE", MODULE, "foliosPutRefsInit", "a folios_put_refs context is already open");
  putRefsInit(s.seriesCtx);
}

/** The series' `__folios_put_refs_do_one(ctx, folio, refs)`: `folio_ref_sub_and_test(folio, refs)` and release. */
export function foliosPutRefsDoOne(s: FolioState, head: number, refs: number): void {
  const m = "foliosPutRefsDoOne";
  if (!s.seriesCtx.active) fail("BAD_STATE", MODULE, m, "no open context: call foliosPutRefsInit() first");
  checkHead(s, m, head);
  if (!isInt(refs) || refs < 1)
    fail("EINVAL", MODULE, m, `(${head}, ${String(refs)}): refs must be an integer >= 1`);
  putRefsDoOne(s, s.seriesCtx, head, refs, m);
}

/**
 * {@link foliosPutRefsDoOne} without the argument checks (the gather's flush holds live heads and
 * refs ≥ 1). A free or tail `head` still throws, from the shared per-folio step.
 */
export function foliosPutRefsDoOneTrusted(s: FolioState, head: number, refs: number): void {
  if (!s.seriesCtx.active)
    fail("BAD_STATE", MODULE, "foliosPutRefsDoOne", "no open context: call foliosPutRefsInit() first");
  putRefsDoOne(s, s.seriesCtx, head, refs, "foliosPutRefsDoOne");
}

/** The series' `__folios_put_refs_complete(ctx)`. */
export function foliosPutRefsComplete(s: FolioState): void {
  if (!s.seriesCtx.active) fail("BAD_STATE", MODULE, "foliosPutRefsComplete", "no open context");
  putRefsComplete(s, s.seriesCtx);
}

/**
 * 7.x `folios_put_refs(folio_batch, refs)`: ≤ FOLIO_BATCH_SIZE folios, `refs[i]` references each; the
 * lruvec lock is held across the batch (relocked only on lruvec change); folios reaching zero, large
 * ones included, are dequeued from deferred split, taken off the LRU and freed together
 * (`mem_cgroup_uncharge_folios` + `free_unref_folios`).
 */
export function foliosPutRefs(
  s: FolioState,
  heads: ArrayLike<number>,
  refs: ArrayLike<number>,
  nr: number,
): void {
  const m = "foliosPutRefs";
  if (heads === null || typeof heads !== "object" || refs === null || typeof refs !== "object")
    fail("EINVAL", MODULE, m, "heads and refs must be array-likes");
  if (!isInt(nr) || nr < 0 || nr > FOLIO_BATCH_SIZE || nr > heads.length || nr > refs.length)
    fail(
      "EINVAL",
      MODULE,
      m,
      `(nr ${String(nr)}): nr must be in 0..${FOLIO_BATCH_SIZE} and within both arrays`,
    );
  for (let i = 0; i < nr; i++) {
    checkHead(s, m, heads[i]);
    const r = refs[i];
    if (!isInt(r) || r < 1)
      fail("EINVAL", MODULE, m, `(refs[${i}] = ${String(r)}): refs must be integers >= 1`);
  }
  foliosPutRefsTrusted(s, heads, refs, nr);
}

/**
 * {@link foliosPutRefs} without the argument checks, for the gather's flush, which only holds heads
 * of live folios and counts ≥ 1 in `nr ≤ FOLIO_BATCH_SIZE` typed-array slots. Refcount underflow and
 * freeing a mapped folio are still detected.
 */
export function foliosPutRefsTrusted(
  s: FolioState,
  heads: ArrayLike<number>,
  refs: ArrayLike<number>,
  nr: number,
): void {
  const m = "foliosPutRefs";
  const c = s.counters;
  const flags = s.flags;
  const refcount = s.refcount;
  const mapcount = s.mapcount;
  const largeMapcount = s.largeMapcount;
  const mapping = s.mapping;
  const lruFolios = s.lruFolios;
  const lruPages = s.lruPages;
  const batchFree = s.batchFree;
  // Stryker disable next-line ConditionalExpression: with one node lruvecOfHead and the per-node count give the same lruvec and lock count; equivalent
  const oneNode = s.nrNodes === 1;
  // The per-CPU LRU-add batch cannot change inside this call: an empty one holds none of the folios.
  // Stryker disable next-line ConditionalExpression: false only sends folios to the general path / the exact batch scan; equivalent
  const lruBatchEmpty = s.lruBatchNr === 0;
  // An order-0 head (not tail, no order bits) with none of the flags that fail freeableFast or need
  // work beyond the LRU removal.
  const slowMask =
    F_HEAD | F_TAIL | (ORDER_MASK << ORDER_SHIFT) | PG.locked | PG.writeback | PG.swapcache | PG.mlocked;
  let lv = -1;
  let j = 0;
  let lockAcq = 0;
  let lruDels = 0;
  let large = 0;
  // mem_cgroup_uncharge_folios counted as folios reach zero (same order as the freed list).
  let mc = -1;
  let batches = 0;
  let i = 0;
  try {
    for (; i < nr; i++) {
      const head = heads[i];
      const r = refs[i];
      let f = flags[head];
      const rc = refcount[head];
      if (
        (f & slowMask) === F_HEAD &&
        rc === r &&
        lruBatchEmpty &&
        mapcount[head] < 0 &&
        // Stryker disable next-line LogicalOperator: && only makes the fast path rarer (the general path gives the same state and counters); equivalent
        ((f & PG.anon) !== 0 || mapping[head] < 0)
        // Equivalent mutant left counted: an empty block falls through to the general path (same state and counters); a disable comment does not reach it here
      ) {
        // The common last reference to an unmapped order-0 folio: the general steps below with
        // each field read once and the lruvec counters in locals.
        refcount[head] = 0;
        if ((f & PG.lru) !== 0) {
          const l = oneNode ? f >>> MEMCG_SHIFT : lruvecOfHead(s, head);
          if (l !== lv) {
            lv = l;
            lockAcq++;
          }
          f &= ~(PG.lru | PG.active);
          flags[head] = f;
          lruFolios[l]--;
          lruPages[l]--;
          lruDels++;
        }
        const mg = f >>> MEMCG_SHIFT;
        if (mg !== mc) {
          mc = mg;
          batches++;
        }
        batchFree[j++] = head;
        continue;
      }
      if ((f & F_HEAD) === 0) checkHead(s, m, head);
      if (rc < r) fail("REFCOUNT_UNDERFLOW", MODULE, m, `(${head}): dropping ${r} refs from refcount ${rc}`);
      const order = (f >>> ORDER_SHIFT) & ORDER_MASK;
      // freeableFast, over the locals.
      if (
        rc === r &&
        // Stryker disable next-line ConditionalExpression: inline freeableFast: calling assertFreeable more often is equivalent (it passes for a freeable folio)
        ((f & (PG.locked | PG.writeback | PG.swapcache)) !== 0 ||
          (order === 0 ? mapcount[head] >= 0 : largeMapcount[head + 1] >= 0) ||
          // Stryker disable next-line ConditionalExpression,LogicalOperator: inline freeableFast: calling assertFreeable more often is equivalent (it passes for a freeable folio)
          ((f & PG.anon) === 0 && mapping[head] >= 0) ||
          // Stryker disable next-line LogicalOperator: inline freeableFast: calling assertFreeable more often is equivalent (it passes for a freeable folio)
          (!lruBatchEmpty && lruBatchHas(s, head)))
      )
        assertFreeable(s, m, head);
      refcount[head] = rc - r;
      if (rc !== r) {
        checkRefsCoverMappings(s, head, rc - r, m);
        continue;
      }
      // Stryker disable next-line ConditionalExpression: an order-0 folio on the per-folio free loop: freeToBuddy(order 0) and the same pcp lock count as the order-0 list; equivalent
      if (order !== 0) {
        // Stryker disable next-line UpdateOperator: large only selects the per-folio free loop (see below), which frees order-0 folios alike; equivalent
        large++;
        // Stryker disable next-line ConditionalExpression: unqueueDeferredSplit returns at once below order 2; equivalent
        if (order >= 2) {
          unqueueDeferredSplit(s, head);
          f = flags[head];
        }
      }
      if ((f & PG.lru) !== 0) {
        const l = oneNode ? f >>> MEMCG_SHIFT : lruvecOfHead(s, head);
        if (l !== lv) {
          lv = l;
          lockAcq++;
        }
        // lruvecDel, over the locals.
        f &= ~(PG.lru | PG.active);
        flags[head] = f;
        lruFolios[l]--;
        lruPages[l] -= 1 << order;
        lruDels++;
      }
      if ((f & PG.mlocked) !== 0) clearStaleMlock(s, head);
      const mg = flags[head] >>> MEMCG_SHIFT;
      if (mg !== mc) {
        mc = mg;
        batches++;
      }
      batchFree[j++] = head;
    }
  } finally {
    // Entries [0, i) dropped their references (i < nr only when entry i threw).
    c.refcountAtomics += i;
    c.metadataLines += i;
    c.lruvecLockAcquisitions += lockAcq;
    c.lruDels += lruDels;
  }
  if (j === 0) return;
  c.freeListCalls++;
  c.memcgUnchargeBatches += batches;
  // free_unref_folios: pcp lock per zone change among pcp orders; others go to free_one_page.
  const pmdOrder = s.pmdOrder;
  let locked = -1;
  let pcpLocks = 0;
  // Stryker disable next-line ConditionalExpression,BlockStatement: the per-folio free loop frees order-0 folios as the order-0 list does, with the same pcp lock count; equivalent
  if (large === 0) {
    // All order 0: count first (node only), then one free loop.
    // Stryker disable next-line ConditionalExpression: with one node the loop counts one pcp lock as well; equivalent
    if (oneNode) pcpLocks = 1;
    else
      for (let k = 0; k < j; k++) {
        const node = (batchFree[k] / s.nodeSpan) | 0;
        if (node !== locked) {
          locked = node;
          pcpLocks++;
        }
      }
    c.pcpLockAcquisitions += pcpLocks;
    freeOrder0List(s, batchFree, j);
    return;
  }
  // Each folio's flags are read once, before its free resets them.
  for (let k = 0; k < j; k++) {
    const head = batchFree[k];
    const order = (flags[head] >>> ORDER_SHIFT) & ORDER_MASK;
    if (order <= COSTLY_ORDER || order === pmdOrder) {
      const node = oneNode ? 0 : (head / s.nodeSpan) | 0;
      if (node !== locked) {
        locked = node;
        c.pcpLockAcquisitions++;
      }
    }
    freeToBuddy(s, head, order);
  }
}
