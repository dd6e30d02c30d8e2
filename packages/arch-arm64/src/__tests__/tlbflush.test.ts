// The TLBI arithmetic of arch/arm64/include/asm/tlbflush.h (v6.18): the range encoding, the loop's
// instruction counts, the whole-mm fallback and the TTL hint.

import { encodedPage } from "@mmgather/mmu-gather";
import { createGatherFixture, gatherOn } from "@mmgather/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  arm64Arch,
  arm64Geometry,
  flushTlbRangeOps,
  MAX_TLBI_RANGE_PAGES,
  maxDvmOps,
  TLBI_TTL_UNKNOWN,
  tlbGetLevel,
  tlbiRangeNum,
  tlbiRangePages,
} from "../index.js";
import { flushTlbRangeLimitExcess } from "../tlbflush.js";

describe("__TLBI_RANGE_PAGES / __TLBI_RANGE_NUM", () => {
  it("a range TLBI covers (num + 1) << (5 × scale + 1) pages; the most is 32 << 16 = 2^21", () => {
    expect(tlbiRangePages(0, 0)).toBe(2);
    expect(tlbiRangePages(31, 0)).toBe(64);
    expect(tlbiRangePages(0, 1)).toBe(64);
    expect(tlbiRangePages(31, 2)).toBe(32 * 2 ** 11);
    expect(MAX_TLBI_RANGE_PAGES).toBe(2 ** 21);
  });

  it("num is -1 below one unit of the scale and saturates at 31", () => {
    expect(tlbiRangeNum(1, 0)).toBe(-1);
    expect(tlbiRangeNum(2, 0)).toBe(0);
    expect(tlbiRangeNum(63, 0)).toBe(30);
    expect(tlbiRangeNum(1000, 0)).toBe(31);
    expect(tlbiRangeNum(63, 1)).toBe(-1);
    expect(tlbiRangeNum(64, 1)).toBe(0);
  });
});

describe("__flush_tlb_range_op instruction counts", () => {
  it("without FEAT_TLBIRANGE: one TLBI per stride", () => {
    expect(flushTlbRangeOps(16, 1, false)).toEqual({ vaOps: 16, rangeOps: 0 });
    expect(flushTlbRangeOps(511, 1, false)).toEqual({ vaOps: 511, rangeOps: 0 });
    // PMD stride (only huge PMDs cleared): one TLBI per 2 MiB.
    expect(flushTlbRangeOps(3 * 512, 512, false)).toEqual({ vaOps: 3, rangeOps: 0 });
  });

  it("with FEAT_TLBIRANGE: one range TLBI per non-zero (scale, num) step, a TLBI by address for the odd page", () => {
    expect(flushTlbRangeOps(1, 1, true)).toEqual({ vaOps: 1, rangeOps: 0 });
    expect(flushTlbRangeOps(2, 1, true)).toEqual({ vaOps: 0, rangeOps: 1 });
    expect(flushTlbRangeOps(3, 1, true)).toEqual({ vaOps: 1, rangeOps: 1 });
    expect(flushTlbRangeOps(16, 1, true)).toEqual({ vaOps: 0, rangeOps: 1 });
    // 66 = 64 (scale 1, num 0) + 2 (scale 0, num 0).
    expect(flushTlbRangeOps(66, 1, true)).toEqual({ vaOps: 0, rangeOps: 2 });
    // 512 = 8 × 64: scale 1, num 7.
    expect(flushTlbRangeOps(512, 1, true)).toEqual({ vaOps: 0, rangeOps: 1 });
    // 2^21 - 1: scales 3..0 each take 31 units, one page is left.
    expect(flushTlbRangeOps(2 ** 21 - 1, 1, true)).toEqual({ vaOps: 1, rangeOps: 4 });
    expect(flushTlbRangeOps(2 ** 21, 1, true)).toEqual({ vaOps: 0, rangeOps: 1 });
  });

  it("property: the ops cover exactly the pages; one range TLBI per non-zero base-32 digit of pages / 2", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: MAX_TLBI_RANGE_PAGES }), (pages) => {
        const { vaOps, rangeOps } = flushTlbRangeOps(pages, 1, true);
        let units = Math.floor(pages / 2);
        let digits = 0;
        // 2^21 pages is the one value whose scale-3 digit is 32 (num 31 covers it whole).
        if (pages === MAX_TLBI_RANGE_PAGES) units = 1;
        for (; units > 0; units = Math.floor(units / 32)) if (units % 32 !== 0) digits++;
        expect(vaOps).toBe(pages % 2);
        expect(rangeOps).toBe(digits);
        expect(rangeOps).toBeLessThanOrEqual(4);
      }),
    );
  });
});

describe("__flush_tlb_range_limit_excess", () => {
  const g = arm64Geometry("4K");
  const page = 4096;
  it("without FEAT_TLBIRANGE: MAX_DVM_OPS = PTRS_PER_PTE entries or more go to flush_tlb_mm", () => {
    expect(maxDvmOps(g)).toBe(512);
    expect(flushTlbRangeLimitExcess(0, 511 * page, page, false, g)).toBe(false);
    expect(flushTlbRangeLimitExcess(0, 512 * page, page, false, g)).toBe(true);
    // Counted in strides: 511 PMDs are 511 TLBIs.
    expect(flushTlbRangeLimitExcess(0, 511 * 512 * page, 512 * page, false, g)).toBe(false);
    expect(maxDvmOps(arm64Geometry("64K"))).toBe(8192);
  });

  it("with FEAT_TLBIRANGE: only more than MAX_TLBI_RANGE_PAGES pages", () => {
    expect(flushTlbRangeLimitExcess(0, 512 * page, page, true, g)).toBe(false);
    expect(flushTlbRangeLimitExcess(0, 2 ** 21 * page, page, true, g)).toBe(false);
    expect(flushTlbRangeLimitExcess(0, (2 ** 21 + 1) * page, page, true, g)).toBe(true);
  });

  it("the page limit applies without FEAT_TLBIRANGE too (a few PUD strides over more than 2^21 pages)", () => {
    const pud = 512 * 512 * page;
    expect(flushTlbRangeLimitExcess(0, 9 * pud, pud, false, g)).toBe(true);
    expect(flushTlbRangeLimitExcess(0, 8 * pud, pud, false, g)).toBe(false);
  });
});

describe("tlb_get_level", () => {
  it("3 for PTEs only, 2 for PMDs only, 1 for PUDs only, unknown when mixed or after a table free", () => {
    const fx = createGatherFixture(arm64Arch);
    const g = gatherOn(fx, encodedPage);
    g.tlbRemoveTlbEntry(0x200000);
    expect(tlbGetLevel(g)).toBe(3);
    g.tlbRemovePmdTlbEntry(0x400000);
    expect(tlbGetLevel(g)).toBe(TLBI_TTL_UNKNOWN);
    g.flushMmuTlbonly();
    g.tlbRemovePmdTlbEntry(0x400000);
    expect(tlbGetLevel(g)).toBe(2);
    g.flushMmuTlbonly();
    g.tlbRemovePudTlbEntry(0x40000000);
    expect(tlbGetLevel(g)).toBe(1);
    g.flushMmuTlbonly();
    g.tlbRemoveTlbEntry(0x200000);
    g.pteFreeTlb(fx.mem.allocFolio(0), 0x200000);
    // The TTL field is only valid for leaf entries.
    expect(tlbGetLevel(g)).toBe(TLBI_TTL_UNKNOWN);
    g.finish();
  });
});
