// Edges of the rmap removals (mm/rmap.c, v6.5 / the 2023 series / v6.9 / v6.18 as the model has them):
// - a PTE removal while a PMD maps the folio leaves NR_ANON_MAPPED alone (_nr_pages_mapped keeps
//   COMPOUND_MAPPED); a PMD removal that leaves every page PTE-mapped unmaps none (nr == 0) and is not
//   "partially mapped";
// - deferred_split_folio is called for anon folios only, and under v6.18 not again for a folio already
//   PG_partially_mapped; v6.9 queues without setting PG_partially_mapped;
// - an order-0 removal under a VM_LOCKED VMA munlocks and costs one _mapcount atomic, one line and
//   no _nr_pages_mapped atomic, the same under 7.x and the series; folio_remove_rmap_pmd munlocks too;
// - every refusal names its method and the page.
import { describe, expect, it } from "vitest";
import { NodeStat, PG, type PhysMem, type RmapPolicy } from "../index.js";
import { folioState, pageRemoveRmapPtesTrusted } from "../internal.js";
import { counterDelta, mappedAnon, mem, refusal } from "./helpers.js";

type Key = keyof PhysMem["counters"];
const delta = counterDelta;

/** An anon THP (order 9) mapped by a PMD and by PTEs on its pages [0, ptes), one reference per mapping. */
function thp(m: PhysMem, ptes: number): number {
  const h = m.allocFolio(9);
  m.folioSetAnon(h, 7, h);
  m.folioRefAdd(h, 1 + ptes);
  m.folioAddRmapPmd(h);
  if (ptes > 0) m.folioAddRmapPtes(h, h, ptes);
  return h;
}

describe("PTE removals while a PMD maps the folio", () => {
  it("6.5 page_remove_rmap of the last PTE-mapped page leaves NR_ANON_MAPPED at the PMD's 512", () => {
    const m = mem();
    const h = thp(m, 1);
    m.pageRemoveRmap(h, false);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(512);
  });

  it("the series' folio_remove_rmap_range leaves it too", () => {
    const m = mem();
    const h = thp(m, 2);
    m.folioRemoveRmapRange(h, h, 2);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(512);
  });
});

describe("folio_remove_rmap_pmd and the deferred split", () => {
  it("every page still PTE-mapped: nothing unmapped, not partially mapped, no deferred split", () => {
    const m = mem();
    const h = thp(m, 512);
    expect(delta(m, ["deferredSplitCalls"], () => m.folioRemoveRmapPmd(h))).toEqual({
      deferredSplitCalls: 0,
    });
    expect(m.splitQueueLength()).toBe(0);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(512);
  });

  for (const policy of ["v6.18", "v6.9"] as RmapPolicy[]) {
    it(`${policy}: a partial PMD removal queues the folio; PG_partially_mapped only from v6.12 on`, () => {
      const m = mem({ rmapPolicy: policy });
      const h = thp(m, 2);
      m.folioRemoveRmapPmd(h);
      expect(m.splitQueueLength()).toBe(1);
      expect(m.folioTest(h, PG.partiallyMapped)).toBe(policy === "v6.18");
      // Mapped by a PMD again and removed again: v6.18 does not call deferred_split_folio for a folio
      // already partially mapped, v6.9 calls it (and returns early: queued).
      m.folioRefAdd(h, 1);
      m.folioAddRmapPmd(h);
      expect(delta(m, ["deferredSplitCalls"], () => m.folioRemoveRmapPmd(h))).toEqual({
        deferredSplitCalls: policy === "v6.18" ? 0 : 1,
      });
    });

    it(`${policy}: a file folio is never handed to deferred_split_folio (PTE or PMD removal)`, () => {
      const m = mem({ rmapPolicy: policy });
      const as = m.createAddressSpace({ swapBacked: false });
      const small = m.allocFolio(2);
      m.filemapAddFolio(as, small, 0);
      m.folioRefAdd(small, 4);
      m.folioAddRmapPtes(small, small, 4);
      const big = m.allocFolio(9);
      m.filemapAddFolio(as, big, 512);
      m.folioRefAdd(big, 2);
      m.folioAddRmapPmd(big);
      m.folioAddRmapPtes(big, big, 1);
      expect(
        delta(m, ["deferredSplitCalls"], () => {
          m.folioRemoveRmapPtes(small, small, 1);
          m.folioRemoveRmapPmd(big);
        }),
      ).toEqual({ deferredSplitCalls: 0 });
      expect(m.splitQueueLength()).toBe(0);
    });
  }

  it("under a VM_LOCKED VMA the PMD removal munlocks", () => {
    const m = mem();
    const h = thp(m, 0);
    m.mlockFolio(h);
    expect(delta(m, ["munlockCalls"], () => m.folioRemoveRmapPmd(h, true))).toEqual({ munlockCalls: 1 });
  });
});

describe("an order-0 removal under a VM_LOCKED VMA", () => {
  it("7.x and the series: one _mapcount atomic, a shared drop while mapped elsewhere, no folio-wide work", () => {
    const run = (series: boolean) => {
      const m = mem();
      const h = mappedAnon(m, 0);
      m.folioRefAdd(h, 1);
      m.folioAddRmapPtes(h, h, 1); // a second VMA maps it
      m.mlockFolio(h);
      const keys = Object.keys(m.counters) as Key[];
      const d = delta(m, keys, () =>
        series ? m.folioRemoveRmapRange(h, h, 1, true) : m.folioRemoveRmapPtes(h, h, 1, true),
      );
      return { d, mapped: m.nodeStat(NodeStat.NR_ANON_MAPPED) };
    };
    const a = run(false);
    expect(a.d).toMatchObject({
      mapcountAtomics: 1,
      mapcountSharedDrops: 1,
      nrPagesMappedAtomics: 0,
      statUpdates: 0,
      deferredSplitCalls: 0,
      munlockCalls: 1,
    });
    expect(a.mapped).toBe(1);
    expect(run(true)).toEqual(a);
  });

  it("6.5 (trusted entry): munlocks page by page and leaves the neighbour's fields alone", () => {
    const m = mem();
    const s = folioState(m);
    const h = mappedAnon(m, 0);
    m.mlockFolio(h);
    const next = m.allocFolio(1);
    const before = [m.folioMapcount(next), m.nrPagesMapped(next)];
    expect(
      delta(m, ["munlockCalls", "mapcountAtomics"], () => pageRemoveRmapPtesTrusted(s, h, h, 1, true)),
    ).toEqual({
      munlockCalls: 1,
      mapcountAtomics: 1,
    });
    expect([m.folioMapcount(next), m.nrPagesMapped(next)]).toEqual(before);
    expect(refusal(() => pageRemoveRmapPtesTrusted(s, h, h, 1, true))).toMatchObject({
      code: "MAPCOUNT_UNDERFLOW",
      method: "pageRemoveRmap",
    });
  });

  it("6.5 (trusted entry): a run through a large folio of memcg 1 updates memcg 1's lruvec", () => {
    const m = mem({ nrMemcgs: 2 });
    const s = folioState(m);
    const h = mappedAnon(m, 2, { memcg: 1 });
    expect(m.lruvecStat(1, NodeStat.NR_ANON_MAPPED)).toBe(4);
    pageRemoveRmapPtesTrusted(s, h, h, 4);
    expect(m.lruvecStat(1, NodeStat.NR_ANON_MAPPED)).toBe(0);
    expect(m.lruvecStat(0, NodeStat.NR_ANON_MAPPED)).toBe(0);
  });
});

describe("refusals name their method and the page", () => {
  it("PMD map and unmap: not a PMD-sized folio, a tail page, not PMD-mapped", () => {
    const m = mem();
    const small = m.allocFolio(0);
    expect(refusal(() => m.folioAddRmapPmd(small))).toMatchObject({
      code: "EINVAL",
      method: "folioAddRmapPmd",
    });
    const h = m.allocFolio(9);
    expect(refusal(() => m.folioAddRmapPmd(h + 1)).code).toBe("NOT_HEAD");
    expect(refusal(() => m.folioRemoveRmapPmd(h + 1)).code).toBe("NOT_HEAD");
    expect(refusal(() => m.folioRemoveRmapPmd(h))).toMatchObject({
      code: "MAPCOUNT_UNDERFLOW",
      method: "folioRemoveRmapPmd",
    });
  });

  it("PTE removals over a large folio: the first page not mapped, under 7.x and the series", () => {
    const m = mem();
    const h = m.allocFolio(2);
    m.folioSetAnon(h, 7, h);
    m.folioRefAdd(h, 2);
    m.folioAddRmapPtes(h, h, 2); // pages h and h + 1 mapped once
    for (const [method, f] of [
      ["folioRemoveRmapPtes", () => m.folioRemoveRmapPtes(h, h, 4)],
      ["folioRemoveRmapRange", () => m.folioRemoveRmapRange(h, h, 4)],
    ] as const) {
      expect(refusal(f)).toEqual({
        code: "MAPCOUNT_UNDERFLOW",
        method,
        message: expect.stringContaining(`page ${h + 2} is not mapped by any PTE`),
      });
    }
    expect(m.folioMapcount(h)).toBe(2);
    expect(refusal(() => m.folioRemoveRmapRange(h, h + 3, 2)).method).toBe("folioRemoveRmapRange");
  });
});

describe("7.x PTE add / remove: what a second mapping touches, and who refuses a bad range", () => {
  it("a second PTE mapping of pages already mapped (fork) leaves _nr_pages_mapped and the stats alone", () => {
    const m = mem();
    const h = mappedAnon(m, 2);
    const anon = m.nodeStat(NodeStat.NR_ANON_MAPPED);
    m.folioRefAdd(h, 4);
    const d = counterDelta(m, ["nrPagesMappedAtomics", "largeMapcountAtomics", "mapcountAtomics"], () =>
      m.folioAddRmapPtes(h, h, 4),
    );
    // folio_add_rmap_ptes: every page's _mapcount was already ≥ 0, so none became mapped.
    expect(d).toEqual({ nrPagesMappedAtomics: 0, largeMapcountAtomics: 1, mapcountAtomics: 4 });
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(anon);
    expect(m.nrPagesMapped(h)).toBe(4);
    expect(m.folioMapcount(h)).toBe(8);
  });

  it("a range outside the folio is refused by the primitive the caller called", () => {
    const m = mem();
    const h = mappedAnon(m, 2);
    expect(refusal(() => m.folioAddRmapPtes(h, h + 2, 4))).toMatchObject({ method: "folioAddRmapPtes" });
    expect(refusal(() => m.folioRemoveRmapPtes(h, h + 2, 4))).toMatchObject({
      method: "folioRemoveRmapPtes",
    });
  });
});
