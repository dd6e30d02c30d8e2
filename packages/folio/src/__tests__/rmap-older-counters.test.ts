// Exact per-call counters and deferred-split behaviour of the two older rmap removal paths:
// - the 2023 series' folio_remove_rmap_range (mm-unstable of August 2023 + v2 1/5): one atomic on each
//   page's _mapcount, always one atomic_sub_return on _nr_pages_mapped for a large folio, the
//   NR_*_MAPPED statistic only when pages lost their last mapping, and deferred_split_folio only when
//   this call unmapped a page while some page of the anon folio stays mapped;
// - 6.5's page_remove_rmap, one page per call: any PTE removal that unmaps a page of a large anon folio
//   calls deferred_split_folio — even the one that unmaps its last page (6.5 had no "partially mapped"
//   test); the folio is queued once (list_empty check), orders below 2 never.

import { describe, expect, it } from "vitest";
import { NodeStat, PG, type PhysMem } from "../index.js";
import { mem } from "./helpers.js";

type Counters = PhysMem["counters"];
const KEYS = [
  "mapcountAtomics",
  "nrPagesMappedAtomics",
  "mapcountSharedDrops",
  "statUpdates",
  "deferredSplitCalls",
  "deferredSplitQueued",
  "splitQueueLockAcquisitions",
  "munlockCalls",
] as const;

function delta(m: PhysMem, f: () => void): Record<(typeof KEYS)[number], number> {
  const before = { ...m.counters } as Counters;
  f();
  const out = {} as Record<(typeof KEYS)[number], number>;
  for (const k of KEYS) out[k] = (m.counters[k] as number) - (before[k] as number);
  return out;
}

/** A folio of `order` with every page PTE-mapped `maps` times (anon, or file when `file`). */
function mapped(m: PhysMem, order: number, maps: number, file = false): number {
  const h = m.allocFolio(order);
  if (!file) m.folioSetAnon(h, 3, h);
  const nr = 1 << order;
  m.folioRefAdd(h, nr * maps);
  for (let i = 0; i < maps; i++) m.folioAddRmapPtes(h, h, nr);
  return h;
}

describe("the series' folio_remove_rmap_range", () => {
  it("order 3, three calls: one _nr_pages_mapped atomic each; deferred split only while partly mapped", () => {
    const m = mem();
    const h = mapped(m, 3, 1);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(8);
    expect(delta(m, () => m.folioRemoveRmapRange(h, h + 2, 4))).toEqual({
      mapcountAtomics: 4,
      nrPagesMappedAtomics: 1,
      mapcountSharedDrops: 0,
      statUpdates: 1,
      deferredSplitCalls: 1,
      deferredSplitQueued: 1,
      splitQueueLockAcquisitions: 1,
      munlockCalls: 0,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(4);
    expect(m.folioTest(h, PG.deferredQueued)).toBe(true);
    expect(m.splitQueueLength()).toBe(1);
    // Still partly mapped: called again, already queued.
    expect(delta(m, () => m.folioRemoveRmapRange(h, h, 2))).toMatchObject({
      mapcountAtomics: 2,
      nrPagesMappedAtomics: 1,
      deferredSplitCalls: 1,
      deferredSplitQueued: 0,
      splitQueueLockAcquisitions: 0,
    });
    // The last two pages: the folio is fully unmapped, no deferred split call.
    expect(delta(m, () => m.folioRemoveRmapRange(h, h + 6, 2))).toMatchObject({
      mapcountAtomics: 2,
      nrPagesMappedAtomics: 1,
      statUpdates: 1,
      deferredSplitCalls: 0,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(0);
    expect(m.folioMapcount(h)).toBe(0);
  });

  it("a whole folio in one call is never queued", () => {
    const m = mem();
    const h = mapped(m, 4, 1);
    expect(delta(m, () => m.folioRemoveRmapRange(h, h, 16))).toMatchObject({
      mapcountAtomics: 16,
      nrPagesMappedAtomics: 1,
      statUpdates: 1,
      deferredSplitCalls: 0,
    });
    expect(m.splitQueueLength()).toBe(0);
  });

  it("shared pages: every drop counted, still one _nr_pages_mapped atomic, no statistic, no split", () => {
    const m = mem();
    const h = mapped(m, 3, 2);
    expect(delta(m, () => m.folioRemoveRmapRange(h, h + 1, 3))).toEqual({
      mapcountAtomics: 3,
      nrPagesMappedAtomics: 1,
      mapcountSharedDrops: 3,
      statUpdates: 0,
      deferredSplitCalls: 0,
      deferredSplitQueued: 0,
      splitQueueLockAcquisitions: 0,
      munlockCalls: 0,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(8);
  });

  it("order 2 is queued, order 1 file folios never: deferred split is for large anon folios only", () => {
    const m = mem();
    const f = mapped(m, 2, 1, true);
    expect(delta(m, () => m.folioRemoveRmapRange(f, f, 1))).toMatchObject({
      statUpdates: 1,
      deferredSplitCalls: 0,
    });
    expect(m.nodeStat(NodeStat.NR_FILE_MAPPED)).toBe(3);
    const a = mapped(m, 2, 1);
    expect(delta(m, () => m.folioRemoveRmapRange(a, a, 1))).toMatchObject({
      deferredSplitCalls: 1,
      deferredSplitQueued: 1,
    });
  });

  it("order 0: one atomic, no _nr_pages_mapped; the statistic on the last unmap; munlock from a locked VMA", () => {
    const m = mem();
    const h = mapped(m, 0, 2);
    expect(delta(m, () => m.folioRemoveRmapRange(h, h, 1))).toMatchObject({
      mapcountAtomics: 1,
      nrPagesMappedAtomics: 0,
      mapcountSharedDrops: 1,
      statUpdates: 0,
    });
    expect(delta(m, () => m.folioRemoveRmapRange(h, h, 1, true))).toMatchObject({
      mapcountAtomics: 1,
      mapcountSharedDrops: 0,
      statUpdates: 1,
      munlockCalls: 1,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(0);
  });
});

describe("6.5's page_remove_rmap, one PTE per call", () => {
  it("order 3 unmapped page by page: every call that unmaps a page calls deferred_split_folio, queued once", () => {
    const m = mem();
    const h = mapped(m, 3, 1);
    const d = delta(m, () => {
      for (let i = 0; i < 8; i++) m.pageRemoveRmap(h + i, false);
    });
    expect(d).toEqual({
      mapcountAtomics: 8,
      nrPagesMappedAtomics: 8,
      mapcountSharedDrops: 0,
      statUpdates: 8,
      deferredSplitCalls: 8,
      deferredSplitQueued: 1,
      splitQueueLockAcquisitions: 1,
      munlockCalls: 0,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(0);
    // 6.5 leaves the fully unmapped folio on the queue until it is freed (or split).
    expect(m.folioTest(h, PG.deferredQueued)).toBe(true);
  });

  it("a shared page: the drop is counted, no statistic and no deferred split", () => {
    const m = mem();
    const h = mapped(m, 3, 2);
    expect(delta(m, () => m.pageRemoveRmap(h + 5, false))).toEqual({
      mapcountAtomics: 1,
      nrPagesMappedAtomics: 0,
      mapcountSharedDrops: 1,
      statUpdates: 0,
      deferredSplitCalls: 0,
      deferredSplitQueued: 0,
      splitQueueLockAcquisitions: 0,
      munlockCalls: 0,
    });
  });

  it("order 0 from a locked VMA munlocks; a large folio's PTE removal does not (6.5)", () => {
    const m = mem();
    const s = mapped(m, 0, 1);
    expect(delta(m, () => m.pageRemoveRmap(s, false, true))).toMatchObject({
      mapcountAtomics: 1,
      statUpdates: 1,
      munlockCalls: 1,
    });
    const l = mapped(m, 2, 1);
    expect(delta(m, () => m.pageRemoveRmap(l + 1, false, true))).toMatchObject({ munlockCalls: 0 });
  });

  it("file folios are never queued for deferred split", () => {
    const m = mem();
    const h = mapped(m, 3, 1, true);
    expect(delta(m, () => m.pageRemoveRmap(h + 3, false))).toMatchObject({
      statUpdates: 1,
      deferredSplitCalls: 0,
    });
    expect(m.nodeStat(NodeStat.NR_FILE_MAPPED)).toBe(7);
  });
});
