// Exact per-call counters of the 7.x rmap add / remove paths (mm/rmap.c v6.18 __folio_add_rmap and
// __folio_remove_rmap): one atomic on each page's _mapcount; one atomic_add_return on _nr_pages_mapped
// when some page got its first (or lost its last) mapping; one on _large_mapcount per call; one on
// _entire_mapcount per PMD call; a statistics update only when pages became mapped / unmapped; and the
// struct-page cache lines touched — the pages of the range, plus the head and page[1] (where the
// large-folio counters live) when outside it.

import { describe, expect, it } from "vitest";
import { NodeStat, type PhysMem } from "../index.js";
import { mem } from "./helpers.js";

type C = Partial<PhysMem["counters"]>;

function delta(m: PhysMem, f: () => void): C {
  const before = { ...m.counters };
  f();
  const out: Record<string, number> = {};
  for (const k of [
    "mapcountAtomics",
    "nrPagesMappedAtomics",
    "largeMapcountAtomics",
    "entireMapcountAtomics",
    "metadataLines",
    "statUpdates",
    "mapcountSharedDrops",
  ] as const)
    out[k] = (m.counters[k] as number) - (before[k] as number);
  return out;
}

function anon(m: PhysMem, order: number, refs: number): number {
  const h = m.allocFolio(order);
  m.folioSetAnon(h, 1, h);
  m.folioRefAdd(h, refs);
  return h;
}

describe("7.x rmap counters per call", () => {
  it("order 0: first map updates the stat, the second does not; removals mirror it", () => {
    const m = mem();
    const h = anon(m, 0, 2);
    expect(delta(m, () => m.folioAddRmapPtes(h, h, 1))).toMatchObject({
      mapcountAtomics: 1,
      nrPagesMappedAtomics: 0,
      largeMapcountAtomics: 0,
      metadataLines: 1,
      statUpdates: 1,
    });
    expect(delta(m, () => m.folioAddRmapPtes(h, h, 1))).toMatchObject({ mapcountAtomics: 1, statUpdates: 0 });
    expect(delta(m, () => m.folioRemoveRmapPtes(h, h, 1))).toMatchObject({
      mapcountAtomics: 1,
      statUpdates: 0,
      mapcountSharedDrops: 1,
    });
    expect(delta(m, () => m.folioRemoveRmapPtes(h, h, 1))).toMatchObject({
      mapcountAtomics: 1,
      statUpdates: 1,
      mapcountSharedDrops: 0,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(0);
  });

  it("order 3: pages 2..5 mapped, then 4..7 (two newly mapped, two shared), then removed", () => {
    const m = mem();
    const h = anon(m, 3, 8);
    // Range 2..5 does not contain the head (0) or page[1] (1): 4 + 2 lines.
    expect(delta(m, () => m.folioAddRmapPtes(h, h + 2, 4))).toEqual({
      mapcountAtomics: 4,
      nrPagesMappedAtomics: 1,
      largeMapcountAtomics: 1,
      entireMapcountAtomics: 0,
      metadataLines: 6,
      statUpdates: 1,
      mapcountSharedDrops: 0,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(4);
    expect(delta(m, () => m.folioAddRmapPtes(h, h + 4, 4))).toMatchObject({
      mapcountAtomics: 4,
      nrPagesMappedAtomics: 1,
      largeMapcountAtomics: 1,
      statUpdates: 1,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(6);
    expect(m.largeMapcount(h)).toBe(8);
    // Removing 4..5 (mapped twice) unmaps nothing: shared drops, no _nr_pages_mapped atomic, no stat.
    expect(delta(m, () => m.folioRemoveRmapPtes(h, h + 4, 2))).toEqual({
      mapcountAtomics: 2,
      nrPagesMappedAtomics: 0,
      largeMapcountAtomics: 1,
      entireMapcountAtomics: 0,
      metadataLines: 4,
      statUpdates: 0,
      mapcountSharedDrops: 2,
    });
    // Removing 0..3 touches the head and page[1] inside the range: 4 lines; pages 0 and 1 were never
    // mapped — refused before anything changes.
    expect(() => m.folioRemoveRmapPtes(h, h, 4)).toThrow(/not mapped/);
    expect(m.folioMapcount(h)).toBe(6);
    expect(delta(m, () => m.folioRemoveRmapPtes(h, h + 2, 6))).toMatchObject({
      mapcountAtomics: 6,
      nrPagesMappedAtomics: 1,
      largeMapcountAtomics: 1,
      statUpdates: 1,
      mapcountSharedDrops: 0,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(0);
    expect(m.folioMapped(h)).toBe(false);
  });

  it("PMD: add and remove touch _entire_mapcount, _nr_pages_mapped and _large_mapcount once each", () => {
    const m = mem();
    const h = anon(m, 9, 3);
    expect(delta(m, () => m.folioAddRmapPmd(h))).toEqual({
      mapcountAtomics: 0,
      nrPagesMappedAtomics: 1,
      largeMapcountAtomics: 1,
      entireMapcountAtomics: 1,
      metadataLines: 2,
      statUpdates: 2,
      mapcountSharedDrops: 0,
    });
    // A second PMD (fork): counted, but nothing newly mapped — no _nr_pages_mapped change, no stat.
    expect(delta(m, () => m.folioAddRmapPmd(h))).toMatchObject({
      entireMapcountAtomics: 1,
      nrPagesMappedAtomics: 0,
      largeMapcountAtomics: 1,
      statUpdates: 0,
    });
    expect(delta(m, () => m.folioRemoveRmapPmd(h))).toMatchObject({
      entireMapcountAtomics: 1,
      nrPagesMappedAtomics: 0,
      largeMapcountAtomics: 1,
      statUpdates: 0,
      mapcountSharedDrops: 1,
    });
    expect(delta(m, () => m.folioRemoveRmapPmd(h))).toMatchObject({
      entireMapcountAtomics: 1,
      nrPagesMappedAtomics: 1,
      largeMapcountAtomics: 1,
      metadataLines: 2,
      statUpdates: 2,
      mapcountSharedDrops: 0,
    });
    expect([m.nodeStat(NodeStat.NR_ANON_MAPPED), m.nodeStat(NodeStat.NR_ANON_THPS)]).toEqual([0, 0]);
  });

  it("refuses a PMD mapping of a folio that is not PMD-sized, and a PMD removal of a folio no PMD maps", () => {
    const m = mem();
    const small = anon(m, 4, 1);
    const code = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return `${(e as { code: string }).code} ${(e as Error).message}`;
      }
      return "none";
    };
    expect(code(() => m.folioAddRmapPmd(small))).toMatch(/^EINVAL .*order 4 is not the PMD order 9/);
    expect(code(() => m.folioRemoveRmapPmd(small))).toMatch(/^EINVAL .*order 4 is not the PMD order 9/);
    const thp = anon(m, 9, 1);
    expect(code(() => m.folioRemoveRmapPmd(thp))).toMatch(/^MAPCOUNT_UNDERFLOW .*not PMD-mapped/);
    expect(code(() => m.folioRemoveRmapPtes(small, small + 3, 1))).toMatch(
      /^MAPCOUNT_UNDERFLOW .*page \d+ is not mapped by any PTE/,
    );
  });
});
