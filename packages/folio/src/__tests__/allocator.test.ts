import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createPhysMem, MAX_PAGE_ORDER } from "../index.js";
import { mem } from "./helpers.js";

describe("buddy allocator", () => {
  it("starts with maximal aligned free blocks per node", () => {
    const m = mem({ nrPages: 4096 });
    expect(m.freeBlockList()).toEqual([
      [0, 10],
      [1024, 10],
      [2048, 10],
      [3072, 10],
    ]);
    const odd = createPhysMem({ nrPages: 1500 + 3, nrNodes: 1 });
    // 1503 = 1024 + 256 + 128 + 64 + 16 + 8 + 4 + 2 + 1
    expect(odd.freeBlockList().map(([, o]) => o)).toEqual([10, 8, 7, 6, 4, 3, 2, 1, 0]);
    odd.checkInvariants();
  });

  it("splits on allocation and merges on free back to the initial blocks", () => {
    const m = mem({ nrPages: 2048 });
    const a = m.allocFolio(0);
    // LIFO free lists: the block pushed last (pfn 1024) is taken first
    expect(a).toBe(1024);
    // one order-10 block split down to order 0: 10 splits, leaving blocks of order 0..9 plus the other 1024
    expect(m.counters.buddySplits).toBe(10);
    expect(m.freeBlockList().length).toBe(11);
    expect(m.nrFreePages()).toBe(2047);
    const b = m.allocFolio(3);
    expect(b % 8).toBe(0);
    m.folioPut(a);
    m.folioPut(b);
    expect(m.freeBlockList()).toEqual([
      [0, 10],
      [1024, 10],
    ]);
    expect(m.counters.foliosFreed).toBe(2);
    expect(m.counters.pagesFreed).toBe(9);
    m.checkInvariants();
  });

  it("allocating all memory in mixed orders and freeing in random order restores the initial blocks", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 40 }),
        fc.integer(),
        (orders, seed) => {
          const m = createPhysMem({ nrPages: 3072, nrNodes: 2 });
          const initial = m.freeBlockList();
          const heads: number[] = [];
          let k = 0;
          // fill memory: cycle through the requested orders, fall back to smaller orders when exhausted
          while (m.nrFreePages() > 0) {
            let o = orders[k++ % orders.length];
            for (;;) {
              const node = heads.length % 2;
              try {
                heads.push(m.allocFolio(o, { node }));
                break;
              } catch {
                try {
                  heads.push(m.allocFolio(o, { node: 1 - node }));
                  break;
                } catch {
                  o--;
                }
              }
            }
          }
          expect(m.nrFreePages()).toBe(0);
          m.checkInvariants();
          let s = seed >>> 0;
          for (let i = heads.length - 1; i > 0; i--) {
            s = (Math.imul(s, 1103515245) + 12345) >>> 0;
            const j = s % (i + 1);
            [heads[i], heads[j]] = [heads[j], heads[i]];
          }
          for (const h of heads) m.freeFolio(h);
          expect(m.freeBlockList()).toEqual(initial);
          expect(m.nrFreePages()).toBe(3072);
          m.checkInvariants();
        },
      ),
      { numRuns: 40 },
    );
  });

  it("allocates naturally aligned folios within the requested node", () => {
    const m = mem({ nrPages: 4096, nrNodes: 2 });
    for (let o = 0; o <= 9; o++) {
      const h = m.allocFolio(o, { node: 1 });
      expect(h % (1 << o)).toBe(0);
      expect(h).toBeGreaterThanOrEqual(2048);
      expect(m.folioOrder(h)).toBe(o);
      expect(m.folioNrPages(h)).toBe(1 << o);
      expect(m.folioHead(h + (1 << o) - 1)).toBe(h);
      expect(m.nodeOf(h)).toBe(1);
    }
    m.checkInvariants();
  });

  it("calls the free observer once per folio returned to the allocator", () => {
    const m = mem();
    const seen: Array<[number, number]> = [];
    m.setFreeObserver((h, o) => seen.push([h, o]));
    const a = m.allocFolio(2);
    const b = m.allocFolio(0);
    m.folioPut(a);
    m.releasePages([b], 0, 1);
    expect(seen).toEqual([
      [a, 2],
      [b, 0],
    ]);
    m.setFreeObserver(null);
    m.folioPut(m.allocFolio(0));
    expect(seen.length).toBe(2);
  });

  it("keeps model state at 24 bytes per page frame", () => {
    const m = mem({ nrPages: 1 << 16 });
    expect(m.stateBytesPerPage()).toBe(24);
    expect(m.stateBytes()).toBeGreaterThanOrEqual(24 * (1 << 16));
    expect(m.stateBytes()).toBeLessThan(24 * (1 << 16) + 4096);
  });

  it("refuses orders above the PMD order and the buddy maximum", () => {
    const m = mem({ pmdOrder: 8 });
    expect(() => m.allocFolio(9)).toThrow(/order must be an integer in 0..8/);
    expect(MAX_PAGE_ORDER).toBe(10);
  });

  it("stateDigest ignores free-list order and counters", () => {
    const a = mem();
    const b = mem();
    const xa = [a.allocFolio(0), a.allocFolio(0), a.allocFolio(1)];
    const xb = [b.allocFolio(0), b.allocFolio(0), b.allocFolio(1)];
    a.folioPut(xa[0]);
    a.folioPut(xa[2]);
    b.folioPut(xb[2]);
    b.folioPut(xb[0]);
    b.folioGet(xb[1]);
    b.folioPut(xb[1]);
    expect(a.stateDigest()).toBe(b.stateDigest());
    a.folioGet(xa[1]);
    expect(a.stateDigest()).not.toBe(b.stateDigest());
  });
});
