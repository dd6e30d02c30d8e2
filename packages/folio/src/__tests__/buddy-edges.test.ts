// Edges of the buddy free lists and the per-CPU lists (mm/page_alloc.c, v6.5 and v6.7 rules):
// - the doubly linked free lists stay consistent whichever free path (one folio, the order-0 list)
//   puts a block in front of or takes one off from in front of pfn 1;
// - the pcp list drains when pcp->count reaches high (>=), for the order-0 list free as for single
//   frees, under both policies, and node 1's list as node 0's;
// - every refusal names its method; the freed totals count every path.
import { describe, expect, it } from "vitest";
import { PCP_HIGH, type PcpPolicy, type PhysMem } from "../index.js";
import { folioState } from "../internal.js";
import { allocMany, mem, refusal } from "./helpers.js";

describe("free lists around pfn 1", () => {
  // One free block of order 10: the first allocations split it from pfn 0 up.
  it("order-0 list frees and merges in front of pfn 1 keep the prev links", () => {
    const m = mem({ nrPages: 1024 });
    const [a, x, y, z] = allocMany(m, 0, 4);
    expect([a, x, y, z]).toEqual([0, 1, 2, 3]);
    m.folioPut(x); // order-0 list: [1]
    m.releasePages([z], 0, 1); // [3, 1]
    m.checkInvariants();
    m.releasePages([y], 0, 1); // 2 merges with 3, in front of 1
    m.checkInvariants();
    m.folioPut(a);
    m.checkInvariants();
    expect(m.nrFreePages()).toBe(m.nrPages);
  });

  it("an allocation off the front of [3, 1] keeps 1 listed once", () => {
    const m = mem({ nrPages: 1024 });
    const [, x, , z] = allocMany(m, 0, 4);
    m.folioPut(x);
    m.folioPut(z); // [3, 1]
    expect(m.allocFolio(0)).toBe(3);
    m.checkInvariants();
    expect(m.allocFolio(0)).toBe(1);
    expect(m.allocFolio(0)).not.toBe(1);
    m.checkInvariants();
  });
});

describe("pcp lists drain at pcp->count >= high", () => {
  for (const pcpPolicy of ["v6.5", "v6.7"] as PcpPolicy[]) {
    it(`${pcpPolicy}: an order-0 list of high - 1 pages does not drain, one of high pages does`, () => {
      for (const [n, drains] of [
        [PCP_HIGH - 1, 0],
        [PCP_HIGH, 1],
      ] as const) {
        const m = mem({ pcpPolicy });
        const hs = allocMany(m, 0, n);
        m.resetCounters();
        m.releasePages(hs, 0, n);
        expect(m.counters.pcpBulkDrains, `${n} pages`).toBe(drains);
      }
    });
  }

  it("v6.7: node 1's list fills and drains as node 0's", () => {
    const drained = (node: number) => {
      const m = mem({ pcpPolicy: "v6.7", nrNodes: 2, nrPages: 8192 });
      const hs = Array.from({ length: 600 }, () => m.allocFolio(0, { node }));
      m.resetCounters();
      m.releasePages(hs, 0, hs.length);
      return [m.counters.pcpBulkDrains, m.counters.pcpPagesDrained];
    };
    const d0 = drained(0);
    expect(d0[0]).toBeGreaterThan(0);
    expect(drained(1)).toEqual(d0);
  });
});

describe("allocator refusals and totals", () => {
  it("names its method", () => {
    const m = mem();
    expect(refusal(() => m.allocFolio(-1))).toMatchObject({ code: "BAD_ORDER", method: "allocFolio" });
    expect(refusal(() => m.setFreeObserver(5 as unknown as null))).toMatchObject({
      code: "EINVAL",
      method: "setFreeObserver",
    });
    expect(refusal(() => m.isFree(-1))).toMatchObject({ code: "BAD_PFN", method: "isFree" });
  });

  it("the freed totals count the order-0 list and single frees alike", () => {
    const m: PhysMem = mem();
    const s = folioState(m);
    const hs = allocMany(m, 0, 3);
    const big = m.allocFolio(2);
    m.releasePages(hs, 0, 3);
    m.folioPut(big);
    expect([s.freedFoliosTotal, s.freedPagesTotal]).toEqual([4, 7]);
  });
});
