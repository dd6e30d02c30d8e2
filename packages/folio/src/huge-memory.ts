// Models: the deferred split queue of mm/huge_memory.c: 6.5 deferred_split_folio (returns early if in
// the swap cache or already queued, else takes split_queue_lock; v6.9 has the same body), 7.x
// deferred_split_folio(folio, true) (takes the lock, sets PG_partially_mapped; v6.12+), and the
// dequeue at free (folio_undo_large_rmappable /
// folio_unqueue_deferred_split: the lock only if queued). One queue per memcg (CONFIG_MEMCG).
// Order-0/1 folios are never queued. Omits: the queue's order (membership only), the shrinker, 7.x's
// "underused THP" queueing at fault time.

import { PG } from "./constants.js";
import { fail } from "./errors.js";
import { MEMCG_SHIFT, ORDER_MASK, ORDER_SHIFT } from "./layout.js";
import { type DeferredSplitObserver, type FolioState, isInt } from "./mm-types.js";

const MODULE = "huge-memory";

/** mm-unstable Aug 2023 `deferred_split_folio(folio)`. */
export function deferredSplit65(s: FolioState, head: number): void {
  const c = s.counters;
  c.deferredSplitCalls++;
  const f = s.flags[head];
  if (((f >>> ORDER_SHIFT) & ORDER_MASK) < 2) {
    c.metadataLines++;
    return;
  }
  c.metadataLines += 2;
  if ((f & PG.swapcache) !== 0) return;
  if ((f & PG.deferredQueued) !== 0) return;
  c.splitQueueLockAcquisitions++;
  s.flags[head] = f | PG.deferredQueued;
  s.splitQueueLen[f >>> MEMCG_SHIFT]++;
  c.deferredSplitQueued++;
  const o = s.splitObserver;
  if (o !== null) o(head);
}

/** 7.x `deferred_split_folio(folio, partially_mapped = true)`. */
export function deferredSplit7(s: FolioState, head: number): void {
  const c = s.counters;
  c.deferredSplitCalls++;
  let f = s.flags[head];
  if (((f >>> ORDER_SHIFT) & ORDER_MASK) < 2) {
    c.metadataLines++;
    return;
  }
  c.metadataLines += 2;
  if ((f & PG.swapcache) !== 0) return;
  c.splitQueueLockAcquisitions++;
  f |= PG.partiallyMapped;
  if ((f & PG.deferredQueued) === 0) {
    f |= PG.deferredQueued;
    s.splitQueueLen[f >>> MEMCG_SHIFT]++;
    c.deferredSplitQueued++;
    s.flags[head] = f;
    const o = s.splitObserver;
    if (o !== null) o(head);
    return;
  }
  s.flags[head] = f;
}

/** `folio_undo_large_rmappable` (6.5) / `folio_unqueue_deferred_split` (7.x) at free. */
export function unqueueDeferredSplit(s: FolioState, head: number): void {
  const f = s.flags[head];
  if (((f >>> ORDER_SHIFT) & ORDER_MASK) < 2) return;
  const c = s.counters;
  c.metadataLines++;
  if ((f & PG.deferredQueued) === 0) return;
  c.splitQueueLockAcquisitions++;
  s.flags[head] = f & ~(PG.deferredQueued | PG.partiallyMapped);
  s.splitQueueLen[f >>> MEMCG_SHIFT]--;
  c.deferredSplitDequeued++;
}

/** Folios on the deferred-split queue of `memcg` (all memcgs if omitted). */
export function splitQueueLength(s: FolioState, memcg?: number): number {
  if (memcg === undefined) {
    let total = 0;
    for (let i = 0; i < s.nrMemcgs; i++) total += s.splitQueueLen[i];
    return total;
  }
  if (!isInt(memcg) || memcg < 0 || memcg >= s.nrMemcgs)
    fail("EINVAL", MODULE, "splitQueueLength", `(${String(memcg)}): memcg is not in 0..${s.nrMemcgs - 1}`);
  return s.splitQueueLen[memcg];
}

/** Register (or with null remove) the observer called whenever a folio is added to a deferred-split queue. */
export function setDeferredSplitObserver(s: FolioState, fn: DeferredSplitObserver | null): void {
  if (fn !== null && typeof fn !== "function")
    fail("EINVAL", MODULE, "setDeferredSplitObserver", "observer must be a function or null");
  s.splitObserver = fn;
}
