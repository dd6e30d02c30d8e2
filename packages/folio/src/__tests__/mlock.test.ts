import { describe, expect, it } from "vitest";
import { PAGEVEC_SIZE, PG } from "../index.js";
import { mappedAnon, mem } from "./helpers.js";

describe("mlock_folio / munlock_folio and the mlock batch (mm/mlock.c)", () => {
  it("mlock_count counts locked VMAs; PG_mlocked clears when the last one munlocks", () => {
    const m = mem();
    const h = mappedAnon(m, 0);
    m.folioAddRmapPtes(h, h, 1); // a second mapping (another VMA)
    m.folioRefAdd(h, 1);
    m.mlockFolio(h);
    m.mlockFolio(h);
    expect(m.mlockCount(h)).toBe(2);
    m.resetCounters();
    m.folioRemoveRmapPtes(h, h, 1, true);
    // munlock_folio: a reference and a batch slot, nothing cleared before the drain.
    expect(m.counters.munlockCalls).toBe(1);
    expect(m.mlockBatchRefs(h)).toBe(1);
    expect(m.folioRef(h)).toBe(4);
    m.lruAddDrain();
    expect(m.counters.mlockBatchDrains).toBe(1);
    expect(m.mlockBatchRefs(h)).toBe(0);
    expect(m.folioRef(h)).toBe(3);
    expect(m.mlockCount(h)).toBe(1);
    expect(m.folioTest(h, PG.mlocked)).toBe(true);
    m.folioRemoveRmapPtes(h, h, 1, true);
    m.lruAddDrain();
    expect(m.folioTest(h, PG.mlocked)).toBe(false);
    expect(m.counters.munlockedPages).toBe(1);
    m.checkInvariants();
  });

  it("the batch drains itself when full and at once for a large folio; its last reference frees", () => {
    const m = mem();
    const heads = Array.from({ length: PAGEVEC_SIZE + 1 }, () => mappedAnon(m, 0));
    for (const h of heads) m.mlockFolio(h);
    m.resetCounters();
    for (const h of heads) m.folioRemoveRmapPtes(h, h, 1, true);
    expect(m.counters.mlockBatchDrains).toBe(1);
    expect(heads.map((h) => m.mlockBatchRefs(h))).toEqual([...Array(PAGEVEC_SIZE).fill(0), 1]);
    expect(heads.slice(0, PAGEVEC_SIZE).some((h) => m.folioTest(h, PG.mlocked))).toBe(false);
    // The last folio: drop the page table's and the allocation's references; the batch's is the last.
    const last = heads[PAGEVEC_SIZE];
    m.folioRefSubAndTest(last, 2);
    expect(m.isFree(last)).toBe(false);
    const big = mappedAnon(m, 4);
    m.mlockFolio(big);
    m.folioRemoveRmapPtes(big, big, 16, true);
    expect(m.counters.mlockBatchDrains).toBe(2);
    expect(m.isFree(last)).toBe(true);
    m.checkInvariants();
  });
});
