// Exact counters and refusals of the single-folio release paths of mm/swap.c and mm/page_alloc.c as
// the model follows them (v6.5 and 7.x alike): folio_put is one atomic on _refcount (and its cache
// line); free_unref_page of a folio holding the caller's last reference drops it first; __folio_put
// takes the per-CPU list lock for orders up to PAGE_ALLOC_COSTLY_ORDER and the PMD order only
// (pcp lists hold nothing else); folio_add_lru takes the batch's reference and refuses a folio already
// batched, wherever it sits in the batch.
import { describe, expect, it } from "vitest";
import { PG, type PhysMem } from "../index.js";
import { mem, refusal } from "./helpers.js";

function d(m: PhysMem, key: keyof PhysMem["counters"], f: () => void): number {
  const before = m.counters[key] as number;
  f();
  return (m.counters[key] as number) - before;
}

describe("folio_put", () => {
  it("one atomic and one line per put; the last one frees", () => {
    const m = mem();
    const h = m.allocFolio(0);
    m.folioGet(h);
    expect(d(m, "refcountAtomics", () => m.folioPut(h))).toBe(1);
    expect(m.folioRef(h)).toBe(1);
    m.folioGet(h);
    expect(d(m, "metadataLines", () => m.folioPut(h))).toBe(1);
    expect(m.isFree(h)).toBe(false);
    m.folioPut(h);
    expect(m.isFree(h)).toBe(true);
  });

  it("refuses a put on a free folio with its own name", () => {
    const m = mem();
    const h = m.allocFolio(0);
    m.folioPut(h);
    expect(refusal(() => m.folioPut(h)).method).toBe("folioPut");
  });
});

describe("free_unref_page / __free_pages (freeFolio)", () => {
  it("drops the caller's last reference with one atomic, then frees", () => {
    const m = mem();
    const h = m.allocFolio(0);
    expect(d(m, "refcountAtomics", () => m.freeFolio(h))).toBe(1);
    expect(m.isFree(h)).toBe(true);
  });

  it("refuses a double free, a tail page and a folio others still hold, naming the page", () => {
    const m = mem();
    const h = m.allocFolio(2);
    expect(refusal(() => m.freeFolio(h + 1))).toEqual({
      code: "NOT_HEAD",
      method: "freeFolio",
      message: expect.stringContaining(`(${h + 1}): pfn ${h + 1} is a tail page of folio ${h}`),
    });
    m.folioGet(h);
    expect(refusal(() => m.freeFolio(h)).code).toBe("FREE_WITH_REFS");
    m.folioPut(h);
    m.freeFolio(h);
    expect(refusal(() => m.freeFolio(h))).toEqual({
      code: "DOUBLE_FREE",
      method: "freeFolio",
      message: expect.stringContaining(`(${h}): pfn ${h} is already free`),
    });
  });

  it("the pcp lock for orders ≤ PAGE_ALLOC_COSTLY_ORDER and the PMD order, not between", () => {
    const m = mem();
    for (const [order, locks] of [
      [0, 1],
      [3, 1],
      [4, 0],
      [8, 0],
      [9, 1],
    ] as const) {
      const h = m.allocFolio(order);
      expect(
        d(m, "pcpLockAcquisitions", () => m.folioPut(h)),
        `order ${order}`,
      ).toBe(locks);
    }
  });
});

describe("folio_add_lru and the per-CPU LRU-add batch", () => {
  it("takes one reference (one atomic, one line) for the batch", () => {
    const m = mem();
    const h = m.allocFolio(0);
    const atomics = d(m, "refcountAtomics", () => m.folioAddLru(h));
    expect(atomics).toBe(1);
    expect(m.folioRef(h)).toBe(2);
    const h2 = m.allocFolio(0);
    expect(d(m, "metadataLines", () => m.folioAddLru(h2))).toBe(1);
    expect(m.lruAddBatchCount()).toBe(2);
  });

  it("refuses a folio already batched — the first, the lowest, the highest or one in between", () => {
    const m = mem();
    const mid = m.allocFolio(0);
    const spare: number[] = [];
    for (let i = 0; i < 4; i++) spare.push(m.allocFolio(0));
    const [low, high, between] = [Math.min(...spare), Math.max(...spare), spare[1]];
    // Batch order: mid first, then a lower pfn, a higher one and one in between.
    for (const h of [mid, low, high, between]) m.folioAddLru(h);
    for (const h of [mid, low, high, between]) {
      expect(refusal(() => m.folioAddLru(h))).toEqual({
        code: "BAD_STATE",
        method: "folioAddLru",
        message: expect.stringContaining(`(${h}): folio is already in the LRU-add batch`),
      });
    }
    // A folio outside the batch's pfn span is not in it.
    const other = m.allocFolio(0);
    m.folioAddLru(other);
    m.lruAddDrain();
    expect(m.lruAddBatchCount()).toBe(0);
    for (const h of [mid, low, high, between, other]) {
      expect(m.folioTest(h, PG.lru)).toBe(true);
      expect(m.folioRef(h)).toBe(1);
    }
  });

  it("a folio still batched cannot be freed", () => {
    const m = mem();
    const h = m.allocFolio(0);
    m.folioAddLru(h);
    m.folioPut(h); // the caller's reference; the batch's remains
    expect(refusal(() => m.freeFolio(h)).code).toBe("FREE_BAD_FLAGS");
  });
});
