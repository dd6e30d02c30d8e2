// 6.5's page_remove_rmap(page, vma, compound = true) — the PMD half, as mm-unstable of August 2023 had
// it: one atomic on _entire_mapcount; when that drops the last entire mapping, one atomic on
// _nr_pages_mapped, the PMD statistic (NR_ANON_THPS / NR_FILE_PMDMAPPED) by the folio's size and the
// NR_*_MAPPED statistic by the pages no PTE still maps; deferred split of an anon folio only while some
// page stays PTE-mapped; munlock when the VMA is VM_LOCKED — plus the refusals of both halves.
import { describe, expect, it } from "vitest";
import { NodeStat, PG, type PhysMem } from "../index.js";
import { folioState, pageRemoveRmapPtesTrusted, pageRemoveRmapPteTrusted } from "../internal.js";
import { mem, refusal } from "./helpers.js";

const KEYS = [
  "entireMapcountAtomics",
  "nrPagesMappedAtomics",
  "mapcountSharedDrops",
  "statUpdates",
  "deferredSplitCalls",
  "deferredSplitQueued",
  "munlockCalls",
  "metadataLines",
] as const;

function delta(m: PhysMem, f: () => void): Record<(typeof KEYS)[number], number> {
  const before = { ...m.counters };
  f();
  const out = {} as Record<(typeof KEYS)[number], number>;
  for (const k of KEYS) out[k] = (m.counters[k] as number) - (before[k] as number);
  return out;
}

/** A PMD-sized folio mapped by `pmds` PMDs and its first `ptes` pages by one PTE each. */
function pmdMapped(m: PhysMem, pmds: number, ptes: number, anon = true): number {
  const h = m.allocFolio(9);
  if (anon) m.folioSetAnon(h, 5, h);
  m.folioRefAdd(h, pmds + ptes);
  for (let i = 0; i < pmds; i++) m.folioAddRmapPmd(h);
  if (ptes > 0) m.folioAddRmapPtes(h, h, ptes);
  return h;
}

describe("page_remove_rmap(compound) of v6.5", () => {
  it("the last PMD of an anon THP no PTE maps: the THP and mapped stats by 512, no deferred split", () => {
    const m = mem();
    const h = pmdMapped(m, 1, 0);
    expect(m.nodeStat(NodeStat.NR_ANON_THPS)).toBe(512);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(512);
    expect(delta(m, () => m.pageRemoveRmap(h, true))).toEqual({
      entireMapcountAtomics: 1,
      nrPagesMappedAtomics: 1,
      mapcountSharedDrops: 0,
      statUpdates: 2,
      deferredSplitCalls: 0,
      deferredSplitQueued: 0,
      munlockCalls: 0,
      metadataLines: 2,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_THPS)).toBe(0);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(0);
    expect(m.folioMapcount(h)).toBe(0);
    expect(m.folioTest(h, PG.deferredQueued)).toBe(false);
  });

  it("one of two PMDs: a shared drop, nothing else moves", () => {
    const m = mem();
    const h = pmdMapped(m, 2, 0);
    expect(delta(m, () => m.pageRemoveRmap(h, true))).toEqual({
      entireMapcountAtomics: 1,
      nrPagesMappedAtomics: 0,
      mapcountSharedDrops: 1,
      statUpdates: 0,
      deferredSplitCalls: 0,
      deferredSplitQueued: 0,
      munlockCalls: 0,
      metadataLines: 2,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_THPS)).toBe(512);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(512);
    expect(m.folioMapcount(h)).toBe(1);
  });

  it("the PMD of a THP whose first 10 pages PTEs still map: mapped stat by 502, queued for deferred split", () => {
    const m = mem();
    const h = pmdMapped(m, 1, 10);
    expect(delta(m, () => m.pageRemoveRmap(h, true))).toEqual({
      entireMapcountAtomics: 1,
      nrPagesMappedAtomics: 1,
      mapcountSharedDrops: 0,
      statUpdates: 2,
      deferredSplitCalls: 1,
      deferredSplitQueued: 1,
      munlockCalls: 0,
      // page[1]'s two counters, then deferred_split_folio's (the folio's list head and the queue).
      metadataLines: 4,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_THPS)).toBe(0);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(10);
    expect(m.folioTest(h, PG.deferredQueued)).toBe(true);
    expect(m.folioMapcount(h)).toBe(10);
  });

  it("a file THP: NR_FILE_PMDMAPPED and NR_FILE_MAPPED, never a deferred split", () => {
    const m = mem();
    const h = pmdMapped(m, 1, 3, false);
    expect(m.nodeStat(NodeStat.NR_FILE_PMDMAPPED)).toBe(512);
    const d = delta(m, () => m.pageRemoveRmap(h, true));
    expect(d.deferredSplitCalls).toBe(0);
    expect(d.statUpdates).toBe(2);
    expect(m.nodeStat(NodeStat.NR_FILE_PMDMAPPED)).toBe(0);
    expect(m.nodeStat(NodeStat.NR_FILE_MAPPED)).toBe(3);
  });

  it("VM_LOCKED: the PMD removal munlocks the folio", () => {
    const m = mem();
    const h = pmdMapped(m, 1, 0);
    m.mlockFolio(h);
    expect(m.folioTest(h, PG.mlocked)).toBe(true);
    const d = delta(m, () => m.pageRemoveRmap(h, true, true));
    expect(d.munlockCalls).toBe(1);
    expect(m.mlockCount(h)).toBe(0);
    expect(m.folioTest(h, PG.mlocked)).toBe(false);
    // Not VM_LOCKED: the mlock stays.
    const h2 = pmdMapped(m, 1, 0);
    m.mlockFolio(h2);
    expect(delta(m, () => m.pageRemoveRmap(h2, true)).munlockCalls).toBe(0);
    expect(m.folioTest(h2, PG.mlocked)).toBe(true);
  });
});

describe("page_remove_rmap's refusals name the call and the page", () => {
  it("a free pfn, a tail for a compound removal, a pfn outside memory, a PTE mapping that is not there", () => {
    const m = mem();
    const h = pmdMapped(m, 1, 0);
    const free = m.allocFolio(0);
    m.folioPut(free);
    expect(refusal(() => m.pageRemoveRmap(free, false))).toEqual({
      code: "USE_AFTER_FREE",
      method: "pageRemoveRmap",
      message: expect.stringContaining(`(${free}): pfn ${free} is free memory`),
    });
    expect(refusal(() => m.pageRemoveRmap(h + 1, true))).toEqual({
      code: "NOT_HEAD",
      method: "pageRemoveRmap",
      message: expect.stringContaining(`(${h + 1}, true): compound removal needs a folio head`),
    });
    expect(refusal(() => m.pageRemoveRmap(1 << 30, false)).method).toBe("pageRemoveRmap");
    // The PTE half: page h + 3 has no PTE mapping (only the PMD maps it).
    expect(refusal(() => m.pageRemoveRmap(h + 3, false))).toEqual({
      code: "MAPCOUNT_UNDERFLOW",
      method: "pageRemoveRmap",
      message: expect.stringContaining(`(${h + 3}): page ${h + 3} is not mapped by any PTE`),
    });
  });

  it("a run that reaches an unmapped page stops there with the same refusal (the batched path)", () => {
    const m = mem();
    const h = m.allocFolio(4);
    m.folioSetAnon(h, 5, h);
    m.folioRefAdd(h, 4);
    m.folioAddRmapPtes(h, h, 4);
    expect(refusal(() => pageRemoveRmapPtesTrusted(folioState(m), h, h, 6))).toEqual({
      code: "MAPCOUNT_UNDERFLOW",
      method: "pageRemoveRmap",
      message: expect.stringContaining(`(${h + 4}): page ${h + 4} is not mapped by any PTE`),
    });
    // The four mapped pages were removed before the refusal.
    expect(m.folioMapcount(h)).toBe(0);
    // The one-page trusted form refuses the same way.
    expect(refusal(() => pageRemoveRmapPteTrusted(folioState(m), h, h + 1))).toEqual({
      code: "MAPCOUNT_UNDERFLOW",
      method: "pageRemoveRmap",
      message: expect.stringContaining(`(${h + 1}): page ${h + 1} is not mapped by any PTE`),
    });
  });
});
