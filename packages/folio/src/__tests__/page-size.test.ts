// Page sizes other than 4 KiB (arm64 16K / 64K granules): the buddy allocator reaches the PMD order
// (MAX_PAGE_ORDER = ARCH_FORCE_MAX_ORDER: 11 with 16 KiB pages, 13 with 64 KiB) and the modelled zone's
// pcp batch / high follow the page size (zone_batchsize, __setup_per_zone_wmarks, zone_highsize).
import { describe, expect, it } from "vitest";
import { createPhysMem, isFolioError, MAX_PAGE_ORDER, PCP_BATCH, PCP_HIGH, pcpZoneSizes } from "../index.js";

describe("pcpZoneSizes: the 16 GiB, 20-CPU zone in pages of each size", () => {
  it("4 KiB pages give the v6.5 constants", () => {
    expect(pcpZoneSizes(12)).toEqual({ batch: PCP_BATCH, high: PCP_HIGH, highMax: 26214 });
  });

  it("16 KiB: batch 15 (SZ_1M / PAGE_SIZE = 64 → 16 → 24 → 15), high 103, high_max 6553", () => {
    // min_free_kbytes 16384 = 1024 pages; low = 1024 + max(256, 1,048,576 × 10 / 10000 = 1048) = 2072.
    expect(pcpZoneSizes(14)).toEqual({ batch: 15, high: 103, highMax: 6553 });
  });

  it("64 KiB: batch 3 (16 → 4 → 6 → 3), high 25 (518 / 20), high_max 1638", () => {
    expect(pcpZoneSizes(16)).toEqual({ batch: 3, high: 25, highMax: 1638 });
  });
});

describe("buddy orders above 10 (arm64 16K / 64K)", () => {
  it("defaults MAX_PAGE_ORDER to the PMD order when it is larger", () => {
    expect(createPhysMem({ nrPages: 4096 }).maxPageOrder).toBe(MAX_PAGE_ORDER);
    expect(createPhysMem({ nrPages: 4096, pmdOrder: 8 }).maxPageOrder).toBe(10);
    expect(createPhysMem({ nrPages: 1 << 13, pmdOrder: 11, pageShift: 14 }).maxPageOrder).toBe(11);
    expect(createPhysMem({ nrPages: 1 << 15, pmdOrder: 13, pageShift: 16 }).maxPageOrder).toBe(13);
  });

  it("allocates and frees PMD-order folios of 8192 pages; the freed pages merge back into one block", () => {
    const m = createPhysMem({ nrPages: 3 << 13, pmdOrder: 13, pageShift: 16 });
    const a = m.allocFolio(13);
    const b = m.allocFolio(13);
    expect(m.folioNrPages(a)).toBe(8192);
    expect(a % 8192).toBe(0);
    expect(m.nrFreePages()).toBe(8192);
    m.resetCounters();
    m.folioPut(a);
    m.folioPut(b);
    expect(m.nrFreePages()).toBe(3 << 13);
    expect(m.counters.foliosFreed).toBe(2);
    m.checkInvariants();
    // Every page is free again as order-13 blocks (the largest the allocator keeps).
    expect(m.allocFolio(13) % 8192).toBe(0);
  });

  it("pcp drains follow the page size: 64 KiB pages drain at high 25 in batches of 3", () => {
    const m = createPhysMem({ nrPages: 1 << 12, pageShift: 16, pmdOrder: 13 });
    const heads: number[] = [];
    for (let i = 0; i < 30; i++) heads.push(m.allocFolio(0));
    m.resetCounters();
    for (let i = 0; i < 24; i++) m.folioPut(heads[i]);
    expect(m.counters.pcpBulkDrains).toBe(0);
    m.folioPut(heads[24]);
    expect(m.counters.pcpBulkDrains).toBe(1);
    expect(m.counters.pcpPagesDrained).toBe(3);
  });

  it("refuses a page shift outside 12..16 and MAX_PAGE_ORDER below the PMD order", () => {
    for (const cfg of [
      { nrPages: 64, pageShift: 11 },
      { nrPages: 64, pageShift: 17 },
      { nrPages: 64, pmdOrder: 11, maxPageOrder: 10 },
      { nrPages: 64, pmdOrder: 16 },
    ]) {
      let err: unknown;
      try {
        createPhysMem(cfg);
      } catch (e) {
        err = e;
      }
      expect(isFolioError(err) && err.code).toBe("EINVAL");
    }
  });
});
