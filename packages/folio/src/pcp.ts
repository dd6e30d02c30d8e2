// Models: the free side of the per-CPU page lists in mm/page_alloc.c, one CPU per node:
// free_unref_page_commit with nr_pcp_high / nr_pcp_free and free_pcppages_bulk under the zone lock,
// under two rule sets — pcpPolicy "v6.5" (free_factor, free_high after any drain; batch and high of
// the modelled zone, `pcpZoneSizes` for the machine's page size) and "v6.7" (Huang Ying's "mm: PCP
// high auto-tuning" and "reduce detecting time of consecutive high order page freeing", v6.7/v6.8:
// free_count, PCPF_PREV_FREE_HIGH_ORDER,
// PCPF_FREE_HIGH_BATCH, high auto-tuned in [high_min, high_max]). The lists are modelled by
// their entry counts only: pages merge into the buddy at once, so the state digest is canonical.
// Omits: the allocation side's nr_pcp_alloc and rmqueue_bulk refills, decay_pcp_high (time based);
// ZONE_RECLAIM_ACTIVE and ZONE_BELOW_HIGH are assumed clear.

import { PCP_BATCH_SCALE_MAX } from "./counters.js";
import { COSTLY_ORDER, type FolioState, PCP_LISTS } from "./mm-types.js";

/** `n` v6.5 order-0 commits on node 0 (counters other than the drains' are the caller's). */
export function pcpCommitOrder0V65(s: FolioState, n: number): void {
  const pcpEntries = s.pcpEntries;
  const pcpCount = s.pcpCount;
  let entries = pcpEntries[0];
  let count = pcpCount[0];
  for (let i = 0; i < n; i++) {
    entries++;
    count++;
    if (count >= s.pcpHighMin) {
      pcpEntries[0] = entries;
      pcpCount[0] = count;
      pcpDrainHigh(s, 0, 0);
      entries = pcpEntries[0];
      count = pcpCount[0];
    }
  }
  pcpEntries[0] = entries;
  pcpCount[0] = count;
}

/**
 * `n` v6.7 order-0 commits on node 0: each clears PCPF_PREV_FREE_HIGH_ORDER, adds 1 to `free_count`
 * while below batch << 5, and runs the `nr_pcp_high` tail when `count` ≥ `high`.
 */
export function pcpCommitOrder0V67(s: FolioState, n: number): void {
  if (n === 0) return;
  s.pcpPrevHighOrder[0] = 0;
  const pcpEntries = s.pcpEntries;
  const pcpCount = s.pcpCount;
  const fcMax = s.pcpBatch << PCP_BATCH_SCALE_MAX;
  let entries = pcpEntries[0];
  let count = pcpCount[0];
  let fc = s.pcpFreeFactor[0];
  let high = s.pcpHigh[0];
  for (let i = 0; i < n; i++) {
    entries++;
    count++;
    if (fc < fcMax) fc++;
    // Stryker disable next-line ConditionalExpression: pcpDrainHighV67 returns at once below high; equivalent
    if (count >= high) {
      pcpEntries[0] = entries;
      pcpCount[0] = count;
      s.pcpFreeFactor[0] = fc;
      pcpDrainHighV67(s, 0, 0, count, fc);
      entries = pcpEntries[0];
      count = pcpCount[0];
      high = s.pcpHigh[0];
    }
  }
  pcpEntries[0] = entries;
  pcpCount[0] = count;
  s.pcpFreeFactor[0] = fc;
}

/**
 * v6.5 `free_unref_page_commit` (pcp lock held by the caller): add one entry of 2^order pages and,
 * when `pcp->count` ≥ `nr_pcp_high`, drain `nr_pcp_free` pages with `free_pcppages_bulk`.
 */
export function pcpCommit(s: FolioState, node: number, order: number): void {
  if (s.pcpV67) {
    pcpCommitV67(s, node, order);
    return;
  }
  const li = order <= COSTLY_ORDER ? order : PCP_LISTS - 1;
  s.counters.pcpFrees++;
  s.pcpEntries[node * PCP_LISTS + li]++;
  const count = s.pcpCount[node] + (1 << order);
  s.pcpCount[node] = count;
  const ff = s.pcpFreeFactor[node];
  // free_high: high-order (non-THP) frees while freeing without allocation drain everything.
  if (ff !== 0 && order !== 0 && order <= COSTLY_ORDER) {
    pcpBulkFree(s, node, count, li);
    return;
  }
  if (count < s.pcpHighMin) return;
  pcpDrainHigh(s, node, li);
}

/** The `count ≥ high` tail of `pcpCommit`. */
export function pcpDrainHigh(s: FolioState, node: number, li: number): void {
  // nr_pcp_free: batch << free_factor clamped to [batch, high - batch]; free_factor grows while below.
  const ff = s.pcpFreeFactor[node];
  const maxFree = s.pcpHighMin - s.pcpBatch;
  const b = s.pcpBatch << ff;
  if (b < maxFree) s.pcpFreeFactor[node] = ff + 1;
  pcpBulkFree(s, node, Math.min(b, maxFree), li);
}

/**
 * v6.7+ `free_unref_page_commit` (pcp lock held by the caller): add the entry; decide `free_high`
 * from `free_count` ≥ batch, PCPF_PREV_FREE_HIGH_ORDER and (with PCPF_FREE_HIGH_BATCH) `count` ≥
 * batch, for orders 1..COSTLY_ORDER; bump `free_count`; then `nr_pcp_high` / `nr_pcp_free`.
 */
export function pcpCommitV67(s: FolioState, node: number, order: number): void {
  const li = order <= COSTLY_ORDER ? order : PCP_LISTS - 1;
  s.counters.pcpFrees++;
  s.pcpEntries[node * PCP_LISTS + li]++;
  const nr = 1 << order;
  const count = s.pcpCount[node] + nr;
  s.pcpCount[node] = count;
  const fc = s.pcpFreeFactor[node];
  let freeHigh = false;
  if (order !== 0 && order <= COSTLY_ORDER) {
    freeHigh =
      fc >= s.pcpBatch && s.pcpPrevHighOrder[node] !== 0 && (!s.pcpFreeHighBatch || count >= s.pcpBatch);
    s.pcpPrevHighOrder[node] = 1;
  } else s.pcpPrevHighOrder[node] = 0;
  const fcMax = s.pcpBatch << PCP_BATCH_SCALE_MAX;
  const fc2 = fc < fcMax ? fc + nr : fc;
  s.pcpFreeFactor[node] = fc2;
  if (freeHigh) {
    // nr_pcp_high(free_high): high drops by batch << 5 (not below high_min) and 0 is returned, so
    // nr_pcp_free drains min(count, batch << 5).
    const h = s.pcpHigh[node] - fcMax;
    s.pcpHigh[node] = Math.max(h, s.pcpHighMin);
    pcpBulkFree(s, node, fcMax, li);
    return;
  }
  // Stryker disable next-line ConditionalExpression: pcpDrainHighV67 returns at once below high; equivalent
  if (count >= s.pcpHigh[node]) pcpDrainHighV67(s, node, li, count, fc2);
}

/**
 * The `count ≥ high` tail of v6.7 `nr_pcp_high` (no reclaim, zone above the high watermark: raise
 * `high` to free_count + batch within [high_min, high_max]) and `nr_pcp_free` (clamp(free_count,
 * batch, old high − batch) pages).
 */
export function pcpDrainHighV67(s: FolioState, node: number, li: number, count: number, fc: number): void {
  const high = s.pcpHigh[node];
  // Stryker disable next-line ConditionalExpression: both callers call only at count >= high; equivalent
  if (count < high) return;
  const need = fc + s.pcpBatch;
  // Stryker disable next-line EqualityOperator: at high == need the assignment keeps high; equivalent
  if (high < need) s.pcpHigh[node] = Math.min(need, s.pcpHighMax);
  const maxFree = high - s.pcpBatch;
  pcpBulkFree(s, node, Math.max(s.pcpBatch, Math.min(fc, maxFree)), li);
}

/**
 * v6.5 `free_pcppages_bulk(zone, count, pcp, pindex)`: under one zone lock, take entries from the list
 * `li` first, then round robin over the non-empty lists, until `min(count, pcp->count)` pages went.
 */
export function pcpBulkFree(s: FolioState, node: number, count: number, li: number): void {
  const c = s.counters;
  c.zoneLockAcquisitions++;
  c.pcpBulkDrains++;
  const entries = s.pcpEntries;
  const base = node * PCP_LISTS;
  let left = Math.min(count, s.pcpCount[node]);
  let l = li - 1;
  while (left > 0) {
    do if (++l === PCP_LISTS) l = 0;
    while (entries[base + l] === 0);
    const nrp = 1 << (l === PCP_LISTS - 1 ? s.pmdOrder : l);
    const want = Math.ceil(left / nrp);
    const k = Math.min(want, entries[base + l]);
    entries[base + l] -= k;
    left -= k * nrp;
    s.pcpCount[node] -= k * nrp;
    c.pcpPagesDrained += k * nrp;
  }
}
