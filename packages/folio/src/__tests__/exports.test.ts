import { describe, expect, it } from "vitest";
import * as api from "../index.js";

describe("public API", () => {
  it("pins the runtime exports", () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        "COMPOUND_MAPPED",
        "FOLIO_BATCH_SIZE",
        "FOLIO_PAGES_MAPPED",
        "FolioCounters",
        "FolioError",
        "MAX_PAGE_ORDER",
        "NR_STAT_ITEMS",
        "NodeStat",
        "PAGEVEC_SIZE",
        "PCP_BATCH",
        "PCP_HIGH",
        "pcpZoneSizes",
        "PG",
        "PG_ALL_MASK",
        "PG_MANAGED_MASK",
        "PhysMem",
        "SWAP_CLUSTER_MAX",
        "createPhysMem",
        "isFolioError",
        "isMmgatherError",
        "MmgatherError",
        "resetFolioCounters",
      ].sort(),
    );
  });

  it("has the contract's constant values", () => {
    expect([api.MAX_PAGE_ORDER, api.COMPOUND_MAPPED, api.FOLIO_PAGES_MAPPED]).toEqual([
      10, 0x800000, 0x7fffff,
    ]);
    expect([api.SWAP_CLUSTER_MAX, api.PAGEVEC_SIZE, api.FOLIO_BATCH_SIZE]).toEqual([32, 15, 31]);
    const bits = Object.values(api.PG);
    expect(bits.length).toBe(12);
    expect(bits.reduce((a, b) => a | b, 0)).toBe(api.PG_ALL_MASK);
    for (const b of bits) expect(b & (b - 1)).toBe(0);
  });

  it("resetCounters zeroes every counter field", () => {
    const m = api.createPhysMem({ nrPages: 64 });
    m.folioPut(m.allocFolio(2));
    expect(m.counters.foliosFreed).toBe(1);
    m.resetCounters();
    for (const v of Object.values(m.counters)) expect(v).toBe(0);
    expect(Object.keys(m.counters).length).toBe(Object.keys(new api.FolioCounters()).length);
  });
});
