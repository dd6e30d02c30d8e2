// Swap-out + teardown throughput of @mmgather/swapcache on one fixture, variants in the same run.
// Run: pnpm build (tsc -b) then pnpm bench. Prints slots/s and the batched/single ratio.
import { createPhysMem } from "@mmgather/folio";
import { createSwapSpace } from "../dist/index.js";

const NR_PAGES = 1 << 16;
const NR_SLOTS = 1 << 17;
const ROUNDS = 7;

const mem = createPhysMem({ nrPages: NR_PAGES });
const swap = createSwapSpace(mem, { devices: [{ nrSlots: NR_SLOTS }] });
const heads = new Int32Array(NR_PAGES);
const entries = new Int32Array(NR_PAGES);

/**
 * Swap out `count` folios of `order` (add_to_swap, one swap PTE per page, reclaim out of the cache),
 * then zap every swap PTE: batched per folio (free_swap_and_cache_nr) or one call per entry.
 */
function swapOutThenZap(order, count, batched) {
  const nr = 1 << order;
  for (let i = 0; i < count; i++) {
    const h = mem.allocFolio(order);
    const e = swap.folioAllocSwap(h);
    swap.swapDuplicate(e, nr);
    swap.deleteFromSwapCache(h);
    mem.folioPut(h);
    entries[i] = e;
  }
  for (let i = 0; i < count; i++) {
    if (batched) swap.freeSwapAndCacheNr(entries[i], nr);
    else for (let j = 0; j < nr; j++) swap.freeSwapAndCache(entries[i] + j);
  }
  return count * nr;
}

/** Swap out folios still mapped by swap PTEs with the folio kept in the cache; zap reclaims the cache. */
function swapOutCachedThenZap(order, count, batched) {
  const nr = 1 << order;
  for (let i = 0; i < count; i++) {
    const h = mem.allocFolio(order);
    const e = swap.folioAllocSwap(h);
    swap.swapDuplicate(e, nr);
    mem.folioPut(h); // only the swap cache holds the folio now
    heads[i] = h;
    entries[i] = e;
  }
  for (let i = 0; i < count; i++) {
    if (batched) swap.freeSwapAndCacheNr(entries[i], nr);
    else for (let j = 0; j < nr; j++) swap.freeSwapAndCache(entries[i] + j);
  }
  return count * nr;
}

/** Unmapped swap-cache folios freed at gather time: free_swap_cache once per folio, then the ref drop. */
function swapOutThenFreeSwapCache(order, count) {
  const nr = 1 << order;
  for (let i = 0; i < count; i++) {
    const h = mem.allocFolio(order);
    swap.folioAllocSwap(h);
    heads[i] = h;
  }
  for (let i = 0; i < count; i++) {
    swap.freeSwapCache(heads[i]);
    mem.folioPut(heads[i]);
  }
  return count * nr;
}

function measure(name, fn) {
  fn(); // warm-up
  swap.checkInvariants();
  const rates = [];
  for (let r = 0; r < ROUNDS; r++) {
    globalThis.gc?.();
    const t0 = performance.now();
    const slots = fn();
    const ms = performance.now() - t0;
    rates.push(slots / (ms / 1000));
    if (swap.slotsInUse() !== 0) throw new Error(`${name}: leaked ${swap.slotsInUse()} slots`);
  }
  rates.sort((a, b) => a - b);
  const median = rates[rates.length >> 1];
  return { name, median };
}

const N0 = NR_PAGES / 2;
const results = [
  measure("order-0 swap-out + free_swap_and_cache", () => swapOutThenZap(0, N0, false)),
  measure("order-4 swap-out + free_swap_and_cache x16", () => swapOutThenZap(4, N0 / 16, false)),
  measure("order-4 swap-out + free_swap_and_cache_nr(16)", () => swapOutThenZap(4, N0 / 16, true)),
  measure("order-4 cached + free_swap_and_cache x16", () => swapOutCachedThenZap(4, N0 / 16, false)),
  measure("order-4 cached + free_swap_and_cache_nr(16)", () => swapOutCachedThenZap(4, N0 / 16, true)),
  measure("order-0 swap-out + free_swap_cache", () => swapOutThenFreeSwapCache(0, N0)),
  measure("order-4 swap-out + free_swap_cache", () => swapOutThenFreeSwapCache(4, N0 / 16)),
];

const pad = Math.max(...results.map((r) => r.name.length));
console.log(`fixture: ${NR_PAGES} page frames, ${NR_SLOTS} swap slots; median of ${ROUNDS} rounds (slots/s)`);
for (const r of results)
  console.log(`${r.name.padEnd(pad)}  ${(r.median / 1e6).toFixed(2).padStart(7)} M slots/s`);
const by = Object.fromEntries(results.map((r) => [r.name, r.median]));
const ratio = (a, b) => (by[a] / by[b]).toFixed(2);
console.log(
  `ratio free_swap_and_cache_nr / x16 (reclaimed): ${ratio("order-4 swap-out + free_swap_and_cache_nr(16)", "order-4 swap-out + free_swap_and_cache x16")}`,
);
console.log(
  `ratio free_swap_and_cache_nr / x16 (cached):    ${ratio("order-4 cached + free_swap_and_cache_nr(16)", "order-4 cached + free_swap_and_cache x16")}`,
);
console.log(
  `model memory: ${swap.stateBytes()} bytes for ${swap.totalSlots} usable slots = ${(swap.stateBytes() / NR_SLOTS).toFixed(3)} bytes/slot`,
);
