import { describe, expect, it } from "vitest";
import { PCP_BATCH, PCP_HIGH } from "../index.js";
import { allocMany, lruSmall, mem } from "./helpers.js";

// Counts pinned by hand from v6.5 free_unref_page_commit / nr_pcp_free / free_pcppages_bulk with
// batch 63 and high 414 (the drain sizes below are batch << free_factor clamped to high - batch = 351).

function pcpCounters(m: ReturnType<typeof mem>) {
  const c = m.counters;
  return {
    pcpFrees: c.pcpFrees,
    pcpLocks: c.pcpLockAcquisitions,
    zoneLocks: c.zoneLockAcquisitions,
    drains: c.pcpBulkDrains,
    drained: c.pcpPagesDrained,
    uncharges: c.memcgUnchargeBatches,
  };
}

describe("pcp lists and zone lock on the free side (v6.5)", () => {
  it("uses the v6.5 defaults for a 16 GiB zone shared by 20 CPUs", () => {
    expect([PCP_BATCH, PCP_HIGH]).toEqual([63, 414]);
  });

  it("order-0 single frees: drains of 63, 126, 252, then 351 pages as free_factor grows", () => {
    const m = mem({ nrPages: 4096 });
    const heads = allocMany(m, 0, 2000);
    m.resetCounters();
    // drains at frees #414, #477 (+63), #603 (+126), #855 (+252), then every 351: #1206, #1557, #1908
    for (let i = 0; i < 413; i++) m.folioPut(heads[i]);
    expect(m.counters.pcpBulkDrains).toBe(0);
    m.folioPut(heads[413]);
    expect(m.counters.pcpBulkDrains).toBe(1);
    expect(m.counters.pcpPagesDrained).toBe(63);
    for (let i = 414; i < 2000; i++) m.folioPut(heads[i]);
    expect(pcpCounters(m)).toEqual({
      pcpFrees: 2000,
      pcpLocks: 2000,
      zoneLocks: 7,
      drains: 7,
      drained: 63 + 126 + 252 + 4 * 351,
      uncharges: 2000,
    });
    m.checkInvariants();
    expect(m.nrFreePages()).toBe(4096);
  });

  it("orders 4..8 take the zone lock in free_one_page, never the pcp", () => {
    const m = mem({ nrPages: 4096 });
    const heads = [...allocMany(m, 4, 5), ...allocMany(m, 8, 3)];
    m.resetCounters();
    for (const h of heads) m.folioPut(h);
    expect(pcpCounters(m)).toEqual({
      pcpFrees: 0,
      pcpLocks: 0,
      zoneLocks: 8,
      drains: 0,
      drained: 0,
      uncharges: 8,
    });
  });

  it("order-2 frees: one watermark drain, then free_high drains everything on every free", () => {
    const m = mem({ nrPages: 4096 });
    const heads = allocMany(m, 2, 200);
    m.resetCounters();
    for (const h of heads) m.folioPut(h);
    // free #104 reaches 416 ≥ 414: 63 pages asked, whole order-2 entries go: 16 entries = 64 pages.
    // free #105 (free_factor 1): free_high drains all 356; each of the last 95 frees drains its 4 pages.
    expect(pcpCounters(m)).toEqual({
      pcpFrees: 200,
      pcpLocks: 200,
      zoneLocks: 1 + 96,
      drains: 1 + 96,
      drained: 800,
      uncharges: 200,
    });
  });

  it("THP (pageblock order) frees go to the pcp and each one crosses high", () => {
    const m = mem({ nrPages: 4096 });
    const heads = allocMany(m, 9, 3);
    m.resetCounters();
    for (const h of heads) m.folioPut(h);
    expect(pcpCounters(m)).toEqual({
      pcpFrees: 3,
      pcpLocks: 3,
      zoneLocks: 3,
      drains: 3,
      drained: 3 * 512,
      uncharges: 3,
    });
  });

  it("free_pcppages_bulk drains the list just added to first, then round robin", () => {
    const m = mem({ nrPages: 4096 });
    const small = allocMany(m, 0, 400);
    const thp = m.allocFolio(9);
    m.resetCounters();
    for (const h of small) m.folioPut(h);
    expect(m.counters.pcpBulkDrains).toBe(0);
    // 912 ≥ 414: 63 pages asked from the THP list first: the one 512-page entry satisfies it.
    m.folioPut(thp);
    expect(m.counters.pcpBulkDrains).toBe(1);
    expect(m.counters.pcpPagesDrained).toBe(512);
  });

  it("an allocation of a pcp order consumes an entry and halves free_factor", () => {
    const m = mem({ nrPages: 4096 });
    const heads = allocMany(m, 0, 420);
    m.resetCounters();
    for (let i = 0; i < 10; i++) m.folioPut(heads[i]);
    const again = m.allocFolio(0); // pcp count 10 → 9
    for (let i = 10; i < 414; i++) m.folioPut(heads[i]);
    expect(m.counters.pcpBulkDrains).toBe(0); // 9 + 404 = 413
    m.folioPut(heads[414]);
    expect(m.counters.pcpBulkDrains).toBe(1);
    m.folioPut(again);
    m.checkInvariants();
  });

  it("free_unref_page_list (release_pages): one pcp lock per SWAP_CLUSTER_MAX pages, one uncharge per memcg run", () => {
    const m = mem({ nrPages: 4096, nrMemcgs: 2 });
    const a = lruSmall(m, 50, 0);
    const b = lruSmall(m, 50, 1);
    m.resetCounters();
    const pages = [...a, ...b];
    m.releasePages(pages, 0, pages.length);
    expect(pcpCounters(m)).toEqual({
      pcpFrees: 100,
      pcpLocks: 4,
      zoneLocks: 0,
      drains: 0,
      drained: 0,
      uncharges: 2,
    });
  });

  it("free_unref_folios (folios_put_refs): non-pcp orders skip the pcp lock; one pcp lock per zone", () => {
    const m = mem({ nrPages: 8192, nrNodes: 2, nrMemcgs: 2 });
    const heads = [
      m.allocFolio(0, { node: 0, memcg: 0 }),
      m.allocFolio(4, { node: 0, memcg: 1 }),
      m.allocFolio(2, { node: 0, memcg: 1 }),
      m.allocFolio(0, { node: 1, memcg: 1 }),
      m.allocFolio(3, { node: 0, memcg: 0 }),
    ];
    m.resetCounters();
    m.foliosPutRefs(heads, [1, 1, 1, 1, 1], heads.length);
    expect(pcpCounters(m)).toEqual({
      pcpFrees: 4,
      pcpLocks: 3, // node 0, node 1, node 0 again
      zoneLocks: 1,
      drains: 0,
      drained: 0,
      uncharges: 3, // memcg runs 0 | 1 1 1 | 0
    });
  });
});
