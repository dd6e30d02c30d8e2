// Lock and atomic counts of 7.x folios_put_refs → free_unref_folios (mm/swap.c, mm/page_alloc.c,
// v6.18): one folio_ref_sub_and_test per folio; the pcp lock is taken once per run of folios of one
// zone (node here) and re-taken when the zone changes; a folio above PAGE_ALLOC_COSTLY_ORDER that is
// not PMD-sized bypasses the pcp lists (free_one_page, under the zone lock) and takes no pcp lock.

import { describe, expect, it } from "vitest";
import type { PhysMem } from "../index.js";
import { mem } from "./helpers.js";

function delta(m: PhysMem, f: () => void) {
  const b = { ...m.counters };
  f();
  const c = m.counters;
  return {
    refcountAtomics: c.refcountAtomics - b.refcountAtomics,
    foliosFreed: c.foliosFreed - b.foliosFreed,
    pagesFreed: c.pagesFreed - b.pagesFreed,
    pcpLockAcquisitions: c.pcpLockAcquisitions - b.pcpLockAcquisitions,
  };
}

describe("folios_put_refs: atomics and pcp locks", () => {
  it("five order-0 folios on one node: five atomics, one pcp lock", () => {
    const m = mem();
    const hs = Array.from({ length: 5 }, () => m.allocFolio(0));
    expect(delta(m, () => m.foliosPutRefs(hs, [1, 1, 1, 1, 1], 5))).toEqual({
      refcountAtomics: 5,
      foliosFreed: 5,
      pagesFreed: 5,
      pcpLockAcquisitions: 1,
    });
  });

  it("two nodes, in the order 0 0 1 1 0: the pcp lock is re-taken at each change of zone (3)", () => {
    const m = mem({ nrPages: 8192, nrNodes: 2 });
    const hs = [0, 0, 1, 1, 0].map((node) => m.allocFolio(0, { node }));
    expect(delta(m, () => m.foliosPutRefs(hs, [1, 1, 1, 1, 1], 5))).toMatchObject({
      refcountAtomics: 5,
      foliosFreed: 5,
      pcpLockAcquisitions: 3,
    });
  });

  it("refs > 1 is still one atomic per folio; a folio that keeps references takes no lock", () => {
    const m = mem();
    const a = m.allocFolio(2);
    m.folioRefAdd(a, 3);
    const b = m.allocFolio(0);
    m.folioRefAdd(b, 1);
    expect(delta(m, () => m.foliosPutRefs([a, b], [4, 1], 2))).toEqual({
      refcountAtomics: 2,
      foliosFreed: 1,
      pagesFreed: 4,
      pcpLockAcquisitions: 1,
    });
    expect(m.folioRef(b)).toBe(1);
    expect(delta(m, () => m.foliosPutRefs([b], [1], 1))).toMatchObject({
      refcountAtomics: 1,
      foliosFreed: 1,
    });
  });
});
