// The buddy allocator (mm/page_alloc.c, v6.18): __free_one_page merges a freed block with its free
// buddy order by order up to MAX_PAGE_ORDER, unlinking the buddy from the middle of its free list;
// after every folio is freed, in any order, memory is again whole MAX_PAGE_ORDER blocks. Allocation
// splits the smallest free block that fits, per node; misuse names what was wrong.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isFolioError, type PhysMem } from "../index.js";
import { mem } from "./helpers.js";

const MAX_ORDER_PAGES = 1024;

/** Every free block is a whole MAX_PAGE_ORDER block: the allocator merged everything back. */
function fullyMerged(m: PhysMem): boolean {
  return m.freeBlockList().every(([, order]) => order === 10);
}

describe("buddy allocator", () => {
  it("random allocations freed in random order (one at a time and through the batch free) merge back completely", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(0, 0, 0, 1, 2, 3, 4, 9), { minLength: 1, maxLength: 200 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 200 }),
        fc.boolean(),
        (orders, perm, batch) => {
          const m = mem({ nrPages: 8192 });
          const total = m.nrFreePages();
          const heads = orders.map((o) => m.allocFolio(o));
          const pages = orders.reduce((n: number, o) => n + (1 << o), 0);
          expect(m.nrFreePages()).toBe(total - pages);
          expect(m.counters.foliosAllocated).toBe(orders.length);
          expect(m.counters.pagesAllocated).toBe(pages);
          // A permutation of the heads.
          const order = heads
            .map((h, i) => [perm[i % perm.length] * 7919 + i, h] as const)
            .sort((a, b) => a[0] - b[0]);
          const sorted = order.map(([, h]) => h);
          if (batch) {
            for (let i = 0; i < sorted.length; i += 31) {
              const b = sorted.slice(i, i + 31);
              m.foliosPutRefs(
                b,
                b.map(() => 1),
                b.length,
              );
            }
          } else for (const h of sorted) m.folioPut(h);
          expect(m.nrFreePages()).toBe(total);
          expect(m.counters.foliosFreed).toBe(orders.length);
          expect(m.counters.pagesFreed).toBe(pages);
          expect(fullyMerged(m)).toBe(true);
          // Everything can be allocated again as PMD-order (2 MiB) folios.
          let n = 0;
          try {
            for (;;) {
              m.allocFolio(9);
              n++;
            }
          } catch (e) {
            expect(isFolioError(e) && e.code).toBe("ENOMEM");
          }
          expect(n).toBe(total / 512);
          m.checkInvariants();
        },
      ),
      { numRuns: 80 },
    );
  });

  it("a freed page whose buddy is free merges; one whose buddy is allocated does not", () => {
    const m = mem({ nrPages: 2048 });
    const a = m.allocFolio(0);
    const b = m.allocFolio(0);
    expect(b ^ a).toBe(1); // split from the same block: buddies
    m.folioPut(a);
    expect(m.freeBlockList().some(([pfn, order]) => pfn === a && order === 0)).toBe(true);
    m.folioPut(b);
    expect(fullyMerged(m)).toBe(true);
  });

  it("two nodes: each node's memory merges back on its own node", () => {
    const m = mem({ nrPages: 8192, nrNodes: 2 });
    const per = m.nodeEnd(0) - m.nodeStart(0);
    const hs = [m.allocFolio(3, { node: 1 }), m.allocFolio(0, { node: 0 }), m.allocFolio(0, { node: 1 })];
    expect(m.nodeOf(hs[0])).toBe(1);
    expect(m.nodeOf(hs[1])).toBe(0);
    for (const h of hs) m.folioPut(h);
    expect(fullyMerged(m)).toBe(true);
    expect(m.freeBlockList().filter(([pfn]) => m.nodeOf(pfn) === 1)).toHaveLength(per / MAX_ORDER_PAGES);
  });

  it("misuse names what was wrong", () => {
    const m = mem({ nrPages: 2048, nrNodes: 2, nrMemcgs: 3 });
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isFolioError(e) ? `${e.code}: ${e.message}` : "untyped";
      }
      return "none";
    };
    expect(err(() => m.allocFolio(0, { node: 2 }))).toMatch(/^EINVAL: .*node 2 is not in 0\.\.1/);
    expect(err(() => m.allocFolio(0, { node: -1 }))).toMatch(/^EINVAL/);
    expect(err(() => m.allocFolio(0, { node: 0.5 }))).toMatch(/^EINVAL/);
    expect(err(() => m.allocFolio(0, { memcg: 3 }))).toMatch(/^EINVAL: .*memcg 3 is not in 0\.\.2/);
    expect(err(() => m.allocFolio(0, { memcg: 1.5 }))).toMatch(/^EINVAL/);
    expect(err(() => m.allocFolio(0, { memcg: -1 }))).toMatch(/^EINVAL/);
    m.allocFolio(9, { node: 0 });
    m.allocFolio(9, { node: 0 });
    expect(err(() => m.allocFolio(0, { node: 0 }))).toMatch(
      /^ENOMEM: .*no free block of order >= 0 on node 0/,
    );
    expect(err(() => m.setFreeObserver(3 as unknown as null))).toMatch(
      /^EINVAL: .*observer must be a function or null/,
    );
    expect(err(() => m.isFree(2048))).toMatch(/^BAD_PFN/);
  });
});
