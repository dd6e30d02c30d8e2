// Models: mm/mlock.c as Linux v6.18 (Nov 2025) has it — the same mechanism since v6.1, so also in
// mm-unstable of August 2023: mlock_folio at fault in a VM_LOCKED VMA (PG_mlocked set, mlock_count
// + 1), munlock_folio from rmap removal in a VM_LOCKED VMA (munlock_vma_folio, mm/internal.h):
// folio_get and the per-CPU mlock folio batch (mlock_fbatch), drained by mlock_folio_batch when it is
// full, at once for a large folio, and by lru_add_drain (mlock_drain_local); __munlock_folio under the
// lruvec lock: mlock_count - 1, PG_mlocked cleared when it reaches 0 (UNEVICTABLE_PGMUNLOCKED); then
// folios_put drops the batch's references — the last one frees the folio.
// The batch holds PAGEVEC_SIZE folios, like the model's LRU-add batch.
// Omits: the unevictable LRU list (an mlocked folio stays on its LRU list here, so no
// UNEVICTABLE_PGRESCUED move), NR_MLOCK, the mlock_new / mlock_lru batch tags (mlock side).

import { PAGEVEC_SIZE, PG } from "./constants.js";
import { folioGet } from "./folio.js";
import { ORDER_MASK, ORDER_SHIFT } from "./layout.js";
import { lruvecOfHead } from "./lruvec.js";
import type { FolioState } from "./mm-types.js";
import { foliosPutBatch } from "./swap.js";

/** `mlock_folio`: the folio is mapped by one more VM_LOCKED VMA. */
export function mlockFolio(s: FolioState, head: number): void {
  if (s.mlockCount === null) s.mlockCount = new Int32Array(s.nrPages);
  const f = s.flags[head];
  // __mlock_folio: a folio becoming mlocked starts at mlock_count 1, a further VMA adds one.
  s.mlockCount[head] = (f & PG.mlocked) === 0 ? 1 : s.mlockCount[head] + 1;
  s.flags[head] = f | PG.mlocked;
}

/** `munlock_folio`: take a reference and queue the folio on the mlock batch. */
export function munlockFolio(s: FolioState, head: number): void {
  s.counters.munlockCalls++;
  folioGet(s, head);
  s.mlockBatch[s.mlockBatchNr++] = head;
  if (s.mlockBatchNr === PAGEVEC_SIZE || ((s.flags[head] >>> ORDER_SHIFT) & ORDER_MASK) !== 0)
    mlockFolioBatch(s);
}

/** `mlock_folio_batch` (munlock side): `__munlock_folio` per folio under its lruvec lock, then `folios_put`. */
export function mlockFolioBatch(s: FolioState): void {
  const n = s.mlockBatchNr;
  if (n === 0) return;
  const c = s.counters;
  c.mlockBatchDrains++;
  let lv = -1;
  for (let i = 0; i < n; i++) {
    const head = s.mlockBatch[i];
    const l = lruvecOfHead(s, head);
    if (l !== lv) {
      lv = l;
      c.lruvecLockAcquisitions++;
    }
    c.metadataLines++;
    const mc = s.mlockCount;
    if (mc !== null && mc[head] > 0 && --mc[head] > 0) continue;
    const f = s.flags[head];
    if ((f & PG.mlocked) !== 0) {
      s.flags[head] = f & ~PG.mlocked;
      c.munlockedPages += 1 << ((f >>> ORDER_SHIFT) & ORDER_MASK);
    }
  }
  s.mlockBatchNr = 0;
  foliosPutBatch(s, s.mlockBatch, n, "mlockFolioBatch");
}

/** References the mlock batch holds on `head`. */
export function mlockBatchRefs(s: FolioState, head: number): number {
  let k = 0;
  for (let i = 0; i < s.mlockBatchNr; i++) if (s.mlockBatch[i] === head) k++;
  return k;
}
