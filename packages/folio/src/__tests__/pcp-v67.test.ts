import { describe, expect, it } from "vitest";
import { createPhysMem, isFolioError } from "../index.js";
import { allocMany, mem } from "./helpers.js";

// Counts pinned by hand from v6.7/v6.8 mm/page_alloc.c free_unref_page_commit / nr_pcp_high /
// nr_pcp_free / free_pcppages_bulk with batch 63, high_min 414, high_max 26214,
// CONFIG_PCP_BATCH_SCALE_MAX 5 (free_count capped at 2016), zone above its high watermark.

function pcpCounters(m: ReturnType<typeof mem>) {
  const c = m.counters;
  return {
    pcpFrees: c.pcpFrees,
    pcpLocks: c.pcpLockAcquisitions,
    zoneLocks: c.zoneLockAcquisitions,
    drains: c.pcpBulkDrains,
    drained: c.pcpPagesDrained,
  };
}

const v67 = (pcpFreeHighBatch = false) => mem({ nrPages: 4096, pcpPolicy: "v6.7", pcpFreeHighBatch });

describe("pcp lists on the free side under pcpPolicy v6.7", () => {
  it("order-0 single frees: high auto-tunes to free_count + batch, drains clamp(free_count, batch, high - batch)", () => {
    const m = v67();
    const heads = allocMany(m, 0, 2000);
    m.resetCounters();
    // #414: count 414 ≥ 414, high → 477, drain clamp(414, 63, 351) = 351 (count 63)
    // #828: count 477 ≥ 477, high → 891, drain clamp(828, 63, 414) = 414 (count 63)
    // #1656: count 891 ≥ 891, high → 1719, drain clamp(1656, 63, 828) = 828 (count 63); next at #3312
    for (let i = 0; i < 413; i++) m.folioPut(heads[i]);
    expect(m.counters.pcpBulkDrains).toBe(0);
    m.folioPut(heads[413]);
    expect([m.counters.pcpBulkDrains, m.counters.pcpPagesDrained]).toEqual([1, 351]);
    for (let i = 414; i < 2000; i++) m.folioPut(heads[i]);
    expect(pcpCounters(m)).toEqual({
      pcpFrees: 2000,
      pcpLocks: 2000,
      zoneLocks: 3,
      drains: 3,
      drained: 351 + 414 + 828,
    });
    m.checkInvariants();
  });

  it("order-0 frees through release_pages (free_unref_page_list) count the same drains", () => {
    const m = v67();
    const heads = allocMany(m, 0, 2000);
    m.resetCounters();
    // release_pages of gather batches of 100: the order-0 list path, same drains as above.
    for (let i = 0; i < 2000; i += 100) m.releasePages(heads, i, 100);
    expect([m.counters.pcpBulkDrains, m.counters.pcpPagesDrained]).toEqual([3, 351 + 414 + 828]);
    m.checkInvariants();
  });

  it("order-2 frees without PCPF_FREE_HIGH_BATCH: from free_count ≥ batch on, every free drains the list", () => {
    const m = v67(false);
    const heads = allocMany(m, 2, 100);
    m.resetCounters();
    // #1 sets PREV_FREE_HIGH_ORDER; free_count before #k is 4(k-1) ≥ 63 from #17: drain all 68 pages,
    // then #18..#100 drain their own 4 pages each.
    for (let i = 0; i < 16; i++) m.folioPut(heads[i]);
    expect(m.counters.pcpBulkDrains).toBe(0);
    m.folioPut(heads[16]);
    expect([m.counters.pcpBulkDrains, m.counters.pcpPagesDrained]).toEqual([1, 68]);
    for (let i = 17; i < 100; i++) m.folioPut(heads[i]);
    expect(pcpCounters(m)).toEqual({
      pcpFrees: 100,
      pcpLocks: 100,
      zoneLocks: 84,
      drains: 84,
      drained: 400,
    });
    m.checkInvariants();
  });

  it("order-2 frees with PCPF_FREE_HIGH_BATCH: a free_high drain waits for count ≥ batch (every 16 frees)", () => {
    const m = v67(true);
    const heads = allocMany(m, 2, 100);
    m.resetCounters();
    // #17 drains 68 pages (count 0), then #33, #49, #65, #81, #97 drain 64 each; 12 pages stay.
    for (const h of heads) m.folioPut(h);
    expect(pcpCounters(m)).toEqual({
      pcpFrees: 100,
      pcpLocks: 100,
      zoneLocks: 6,
      drains: 6,
      drained: 68 + 5 * 64,
    });
    m.checkInvariants();
  });

  it("order-3 frees with PCPF_FREE_HIGH_BATCH drain every 8 frees", () => {
    const m = v67(true);
    const heads = allocMany(m, 3, 50);
    m.resetCounters();
    // free_count before #k is 8(k-1) ≥ 63 from #9 (count 72: drain all), then count 8j ≥ 63 at j = 8:
    // #17, #25, #33, #41, #49 drain 64 each; 8 pages stay.
    for (const h of heads) m.folioPut(h);
    expect([m.counters.pcpBulkDrains, m.counters.pcpPagesDrained]).toEqual([6, 72 + 5 * 64]);
    m.checkInvariants();
  });

  it("an order-0 free clears PCPF_PREV_FREE_HIGH_ORDER; an allocation halves free_count", () => {
    const m = v67(false);
    const heads = allocMany(m, 2, 40);
    const small = allocMany(m, 0, 2);
    m.resetCounters();
    for (let i = 0; i < 20; i++) m.folioPut(heads[i]); // drains at #17..#20
    expect(m.counters.pcpBulkDrains).toBe(4);
    m.folioPut(small[0]); // order 0: count 1 < high, clears the flag
    m.folioPut(heads[20]); // flag was clear: no free_high (count 5)
    expect(m.counters.pcpBulkDrains).toBe(4);
    m.folioPut(heads[21]); // free_high: drains all 9 pages
    expect([m.counters.pcpBulkDrains, m.counters.pcpPagesDrained]).toEqual([5, 80 + 9]);
    // free_count 89 → 44 (the order-2 list is empty: nothing consumed)
    const again = m.allocFolio(2);
    // free_count before the next frees: 44, 48, 52, 56, 60, then 64 at the 6th (count 24: drain all)
    for (let i = 22; i < 27; i++) m.folioPut(heads[i]);
    expect(m.counters.pcpBulkDrains).toBe(5);
    m.folioPut(heads[27]);
    expect([m.counters.pcpBulkDrains, m.counters.pcpPagesDrained]).toEqual([6, 89 + 24]);
    m.folioPut(again);
    m.folioPut(small[1]);
    for (let i = 28; i < 40; i++) m.folioPut(heads[i]);
    m.checkInvariants();
  });

  it("THP frees take the count ≥ high path: high raised to free_count + batch", () => {
    const m = v67(false);
    const thp = allocMany(m, 9, 3);
    m.resetCounters();
    // #1: count 512 ≥ 414, high → 575, drain clamp(512, 63, 351) = 351 → one 512-page entry.
    // #2: count 512 < 575. #3: count 1024 ≥ 575, high → 1599, drain clamp(1536, 63, 512) → one entry.
    for (const h of thp) m.folioPut(h);
    expect(pcpCounters(m)).toEqual({ pcpFrees: 3, pcpLocks: 3, zoneLocks: 2, drains: 2, drained: 1024 });
    m.checkInvariants();
  });

  it("rejects an unknown policy", () => {
    let err: unknown;
    try {
      createPhysMem({ nrPages: 64, pcpPolicy: "v7" as never });
    } catch (e) {
      err = e;
    }
    expect(isFolioError(err) && err.code === "EINVAL").toBe(true);
  });
});
