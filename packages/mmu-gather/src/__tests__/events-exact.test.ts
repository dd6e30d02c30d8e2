// The exact event sequence and the exact counters of the gather's queue and flush paths, written from
// mm/mmu_gather.c and include/asm-generic/tlb.h (v6.5, the 2023 series, v6.18):
// - tlb_gather_mmu: __tlb_reset_range, inc_tlb_flush_pending; tlb_finish_mmu: the nested rule, one
//   tlb_flush_mmu, tlb_batch_list_free, dec_tlb_flush_pending.
// - tlb_flush_mmu: tlb_flush_mmu_tlbonly (a flush only when a cleared_* bit or freed_tables is set,
//   then __tlb_reset_range), tlb_table_flush, tlb_batch_pages_flush (one free_pages_and_swap_cache
//   and one cond_resched per chunk of ≤ 512 entries).
// - tlb_flush_rmaps: the delayed rmaps of `local` and `active` (6.5 / 7.x) or every range past the
//   marker (the series), then delayed_rmap = 0.
// Each action bumps its counter exactly once; each queued entry, freed chunk and flush is one event.

import {
  createGatherFixture,
  gatherOn,
  mapAnonFolio,
  mapFileFolio,
  recordEvents,
} from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import {
  contigRange,
  createGatherCounters,
  createMmuGather,
  defineArch,
  encodedNrPages,
  encodedPage,
  type GatherCounters,
  type GatherEvent,
  type GatherVariant,
  isGatherError,
} from "../index.js";

const PAGE = 4096;
const arch = defineArch({ name: "test-generic" });
const merging = defineArch({ name: "test-merge", mergeVmas: true });

/** Fresh counters with `over` applied: a test states every counter it expects to move. */
function counters(
  over: Partial<Omit<GatherCounters, "forcedFlushes">> & {
    forcedFlushes?: Partial<GatherCounters["forcedFlushes"]>;
  },
): GatherCounters {
  const c = createGatherCounters();
  const { forcedFlushes, ...rest } = over;
  Object.assign(c, rest);
  Object.assign(c.forcedFlushes, forcedFlushes ?? {});
  return c;
}

/** A range flush event as the asm-generic tlb_flush issues it (no CPU mask). */
function rangeFlush(reason: string, start: number, end: number, stride = PAGE, walkCaches = false) {
  return { type: "tlbFlushed", kind: "range", reason, cpus: null, start, end, stride, walkCaches };
}

/** The typed error code `fn` throws ("none" when it returns, "untyped" for anything else). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isGatherError(e) ? e.code : "untyped";
  }
  return "none";
}

describe("one order-0 anon page, immediate rmap: the whole life of a gather", () => {
  const prims: Record<string, string> = {
    "encoded-page": "pageRemoveRmap",
    "contig-range": "pageRemoveRmap",
    "encoded-nr-pages": "folioRemoveRmapPtes",
  };
  for (const v of [encodedPage, encodedNrPages])
    it(`${v.name}: gatherStarted … gatherFinished, counters exact`, () => {
      const fx = createGatherFixture(arch);
      const f = mapAnonFolio(fx, 0);
      const { events, sink } = recordEvents();
      const g = gatherOn(fx, v, { events: sink });
      expect(fx.mm.tlbFlushPending).toBe(1);
      g.ptepGetAndClear(0x400000, 1);
      g.tlbRemoveTlbEntry(0x400000);
      g.removeRmap(f.head, 1);
      expect(fx.mem.folioMapcount(f.head)).toBe(0);
      expect(g.removePage(f.head, false)).toBe(false);
      expect([g.queuedEntries, g.queuedPages]).toEqual([1, 1]);
      expect(fx.mem.isFree(f.head)).toBe(false);
      g.finish();
      expect(fx.mem.isFree(f.head)).toBe(true);
      expect(fx.mm.tlbFlushPending).toBe(0);
      expect(events).toEqual([
        { type: "gatherStarted", mmId: fx.mm.id, fullmm: false },
        { type: "pteCleared", addr: 0x400000, nr: 1 },
        { type: "rangeRecorded", addr: 0x400000, size: PAGE, level: "pte" },
        { type: "rmapRemoved", pfn: f.head, nr: 1, delayed: false, primitive: prims[v.name] },
        { type: "pageQueued", pfn: f.head, nr: 1, delayRmap: false },
        rangeFlush("finish", 0x400000, 0x401000),
        { type: "pagesFreed", pfns: [f.head], nrs: [1] },
        { type: "condResched" },
        { type: "gatherFinished", nested: false },
      ]);
      expect(g.counters).toEqual(
        counters({
          entriesQueued: 1,
          pagesQueued: 1,
          tlbFlushRange: 1,
          tlbFlushRangeEntries: 1,
          tlbFlushes: 1,
          rmapCallsImmediate: 1,
          rmapPages: 1,
          flushMmuCalls: 1,
          chunksFreed: 1,
          condResched: 1,
          // v6.5 free_pages_and_swap_cache starts with lru_add_drain(); v6.18's does not.
          lruAddDrain: v.policy.lruAddDrainOnFree ? 1 : 0,
          freeSwapCacheCalls: 1,
          releaseCalls: 1,
          pagesReleased: 1,
        }),
      );
      expect(g.finished).toBe(true);
    });

  it("contig-range: the rmap waits for tlb_flush_rmaps, one folio_remove_rmap_range per range", () => {
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 2);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, contigRange, { events: sink });
    expect(g.tlbBatchRmap()).toBe(true);
    g.enterPtl();
    g.discardRmaps();
    g.tlbRemoveTlbEntries(0x400000, 4);
    for (let i = 0; i < 4; i++) expect(g.removePage(f.head + i, false)).toBe(false);
    // one range [head, head + 4): one entry, three merges
    expect([g.queuedEntries, g.queuedPages]).toEqual([1, 4]);
    expect(fx.mem.folioMapcount(f.head)).toBe(4);
    g.flushRmaps();
    expect(fx.mem.folioMapcount(f.head)).toBe(0);
    // nothing pending any more: a second tlb_flush_rmaps removes nothing
    g.flushRmaps();
    g.leavePtl();
    g.finish();
    expect(fx.mem.isFree(f.head)).toBe(true);
    expect(events).toEqual([
      { type: "gatherStarted", mmId: fx.mm.id, fullmm: false },
      { type: "rangeRecorded", addr: 0x400000, size: 4 * PAGE, level: "pte" },
      { type: "pageQueued", pfn: f.head, nr: 1, delayRmap: false },
      { type: "pageQueued", pfn: f.head + 1, nr: 1, delayRmap: false },
      { type: "pageQueued", pfn: f.head + 2, nr: 1, delayRmap: false },
      { type: "pageQueued", pfn: f.head + 3, nr: 1, delayRmap: false },
      { type: "rmapRemoved", pfn: f.head, nr: 4, delayed: true, primitive: "folioRemoveRmapRange" },
      { type: "rmapsFlushed", entries: 1 },
      rangeFlush("finish", 0x400000, 0x404000),
      { type: "pagesFreed", pfns: [f.head], nrs: [4] },
      { type: "condResched" },
      { type: "gatherFinished", nested: false },
    ]);
    expect(g.counters).toEqual(
      counters({
        entriesQueued: 1,
        pagesQueued: 4,
        rangesMerged: 3,
        tlbFlushRange: 1,
        tlbFlushRangeEntries: 4,
        tlbFlushes: 1,
        rmapFlushes: 1,
        rmapCallsDelayed: 1,
        rmapPages: 4,
        flushMmuCalls: 1,
        chunksFreed: 1,
        condResched: 1,
        lruAddDrain: 1,
        freeSwapCacheCalls: 1,
        releaseCalls: 1,
        pagesReleased: 4,
      }),
    );
  });

  it("without swap (!CONFIG_SWAP) no free_swap_cache runs; report() has no swap counters", () => {
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 0);
    const g = createMmuGather({ mem: fx.mem, mm: fx.mm, arch, variant: "encoded-page" });
    g.tlbRemoveTlbEntry(0);
    g.removeRmap(f.head, 1);
    g.removePage(f.head, false);
    g.finish();
    expect(fx.mem.isFree(f.head)).toBe(true);
    expect(g.counters.freeSwapCacheCalls).toBe(0);
    const r = g.report();
    expect(r.swap).toBeNull();
    expect(r.gather).toBe(g.counters);
    expect(r.folio).toBe(fx.mem.counters);
    const g2 = gatherOn(fx, encodedPage);
    expect(g2.report().swap).toBe(fx.swap.counters);
    g2.finish();
  });
});

describe("delayed rmaps (dirty shared file pages)", () => {
  for (const [v, prim] of [
    [encodedPage, "pageRemoveRmap"],
    [encodedNrPages, "folioRemoveRmapPtes"],
  ] as const)
    it(`${v.name}: the rmap is removed after the TLB flush, under the PTL; delayed_rmap is cleared`, () => {
      const fx = createGatherFixture(merging);
      const f = mapFileFolio(fx, 0, true);
      const { events, sink } = recordEvents();
      const g = gatherOn(fx, v, { events: sink });
      g.enterPtl();
      g.tlbRemoveTlbEntry(0x400000);
      expect(g.delayedRmap).toBe(false);
      expect(g.tlbDelayRmap()).toBe(true);
      expect(g.delayedRmap).toBe(true);
      expect(g.removePage(f.head, true)).toBe(false);
      expect(fx.mem.folioMapcount(f.head)).toBe(1);
      g.flushMmuTlbonly("dirtyShared");
      g.flushRmaps();
      expect(fx.mem.folioMapcount(f.head)).toBe(0);
      expect(g.delayedRmap).toBe(false);
      g.flushRmaps();
      g.leavePtl();
      g.flushMmu("dirtyShared");
      g.finish();
      expect(events.slice(1)).toEqual([
        { type: "rangeRecorded", addr: 0x400000, size: PAGE, level: "pte" },
        { type: "pageQueued", pfn: f.head, nr: 1, delayRmap: true },
        rangeFlush("dirtyShared", 0x400000, 0x401000),
        { type: "rmapRemoved", pfn: f.head, nr: 1, delayed: true, primitive: prim },
        { type: "rmapsFlushed", entries: 1 },
        // the range was reset by the flush: nothing left to invalidate
        { type: "tlbFlushSkipped" },
        { type: "pagesFreed", pfns: [f.head], nrs: [1] },
        { type: "condResched" },
        { type: "tlbFlushSkipped" },
        { type: "gatherFinished", nested: false },
      ]);
      expect(g.counters).toEqual(
        counters({
          entriesQueued: 1,
          pagesQueued: 1,
          tlbFlushRange: 1,
          tlbFlushRangeEntries: 1,
          tlbFlushSkipped: 2,
          tlbFlushes: 1,
          rmapFlushes: 1,
          rmapCallsDelayed: 1,
          rmapPages: 1,
          flushMmuCalls: 2,
          chunksFreed: 1,
          condResched: 1,
          lruAddDrain: v.policy.lruAddDrainOnFree ? 1 : 0,
          freeSwapCacheCalls: 1,
          releaseCalls: 1,
          pagesReleased: 1,
        }),
      );
      // the page cache still holds the folio
      expect(fx.mem.isFree(f.head)).toBe(false);
      expect(fx.mem.folioRef(f.head)).toBe(1);
    });

  it("encoded-nr-pages: a delayed nr_pages pair is one folio_remove_rmap_ptes of the whole run", () => {
    const fx = createGatherFixture(merging);
    const f = mapFileFolio(fx, 2, true);
    const single = mapAnonFolio(fx, 0);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedNrPages, { events: sink });
    g.enterPtl();
    g.tlbRemoveTlbEntries(0x400000, 5);
    g.removeRmap(single.head, 1);
    g.removePage(single.head, false);
    expect(g.tlbDelayRmap()).toBe(true);
    expect(g.removeFolioPages(f.head, 4, true)).toBe(false);
    // one slot for the single page, two for the pair
    expect([g.queuedEntries, g.queuedPages]).toEqual([3, 5]);
    g.flushMmuTlbonly("dirtyShared");
    g.flushRmaps();
    expect(fx.mem.folioMapcount(f.head)).toBe(0);
    g.leavePtl();
    g.finish();
    const rm = events.filter((e) => e.type === "rmapRemoved" || e.type === "rmapsFlushed");
    expect(rm).toEqual([
      { type: "rmapRemoved", pfn: single.head, nr: 1, delayed: false, primitive: "folioRemoveRmapPtes" },
      { type: "rmapRemoved", pfn: f.head, nr: 4, delayed: true, primitive: "folioRemoveRmapPtes" },
      { type: "rmapsFlushed", entries: 1 },
    ]);
    expect(events.filter((e) => e.type === "pagesFreed")).toEqual([
      { type: "pagesFreed", pfns: [single.head, f.head], nrs: [1, 4] },
    ]);
    expect(g.counters).toMatchObject({
      entriesQueued: 3,
      pagesQueued: 5,
      rmapCallsImmediate: 1,
      rmapCallsDelayed: 1,
      rmapPages: 5,
      rmapFlushes: 1,
      releaseCalls: 1,
      pagesReleased: 5,
      freeSwapCacheCalls: 2,
    });
  });

  it("encoded-page: delayed rmaps of `local` and of the active batch page are both removed", () => {
    const fx = createGatherFixture(merging);
    const files = Array.from({ length: 12 }, () => mapFileFolio(fx, 0, true));
    const g = gatherOn(fx, encodedPage);
    g.enterPtl();
    g.tlbRemoveTlbEntries(0x400000, 12);
    expect(g.tlbDelayRmap()).toBe(true);
    for (const f of files) expect(g.removePage(f.head, true)).toBe(false);
    expect(g.batchCount).toBe(1);
    g.flushMmuTlbonly("dirtyShared");
    g.flushRmaps();
    for (const f of files) expect(fx.mem.folioMapcount(f.head)).toBe(0);
    expect(g.counters).toMatchObject({ rmapFlushes: 1, rmapCallsDelayed: 12, rmapPages: 12 });
    g.leavePtl();
    g.finish();
  });

  it("an arch without tlb_delay_rmap refuses delaying; the rmap must be removed at once", () => {
    const noDelay = defineArch({ name: "no-delay", delayRmap: false, batchRmap: false, mergeVmas: true });
    for (const v of [encodedPage, contigRange, encodedNrPages]) {
      const fx = createGatherFixture(noDelay);
      const f = mapFileFolio(fx, 0, true);
      const g = gatherOn(fx, v);
      g.tlbRemoveTlbEntry(0);
      expect(g.tlbDelayRmap()).toBe(false);
      expect(g.delayedRmap).toBe(false);
      expect(g.tlbBatchRmap()).toBe(false);
      if (v.storage !== "contig-range") expect(codeOf(() => g.removePage(f.head, true))).toBe("BAD_ARGUMENT");
      g.removeRmap(f.head, 1);
      g.removePage(f.head, false);
      g.finish();
      expect(fx.mem.folioMapcount(f.head)).toBe(0);
    }
  });

  it("contig-range: tlb_delay_rmap only says 'force a flush' — there is no delayed_rmap bit", () => {
    const fx = createGatherFixture(merging);
    const g = gatherOn(fx, contigRange);
    expect(g.tlbDelayRmap()).toBe(true);
    expect(g.delayedRmap).toBe(false);
    g.finish();
  });
});

describe("batch pages: allocation, failure, reuse, free", () => {
  it("encoded-page: the bundle fills, a batch page is allocated (event and counter once), later reused", () => {
    const fx = createGatherFixture(merging);
    const heads = Array.from({ length: 20 }, () => mapAnonFolio(fx, 0).head);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedPage, { events: sink });
    const zap = (hs: number[]) => {
      g.tlbRemoveTlbEntries(0x400000, hs.length);
      for (const h of hs) {
        g.removeRmap(h, 1);
        expect(g.removePage(h, false)).toBe(false);
      }
    };
    zap(heads.slice(0, 10));
    expect(g.batchCount).toBe(1);
    expect(events.filter((e) => e.type.startsWith("batch"))).toEqual([
      { type: "batchAllocated", what: "pages", batchCount: 1 },
    ]);
    // the 8th page fills `local`: the switch happens on that page, before the 9th is queued
    const seq = events
      .filter((e) => e.type === "pageQueued" || e.type === "batchAllocated")
      .map((e) => e.type);
    expect(seq.indexOf("batchAllocated")).toBe(8);
    g.flushMmu();
    // the batch page survives the flush; only tlb_finish_mmu frees it
    expect(g.batchCount).toBe(1);
    zap(heads.slice(10, 20));
    expect(events.filter((e) => e.type === "batchReused")).toEqual([{ type: "batchReused" }]);
    g.finish();
    expect(g.counters).toMatchObject({
      batchPagesAllocated: 1,
      batchPagesReused: 1,
      batchPagesFreed: 1,
      batchAllocFailed: 0,
      chunksFreed: 4,
      condResched: 4,
      releaseCalls: 4,
      pagesReleased: 20,
      flushMmuCalls: 2,
    });
    expect(g.counters.forcedFlushes).toEqual(createGatherCounters().forcedFlushes);
  });

  it("GFP_NOWAIT failure: the gather reports full once, with the reason; the next allocation is tried again", () => {
    const fx = createGatherFixture(merging);
    const heads = Array.from({ length: 9 }, () => mapAnonFolio(fx, 0).head);
    const { events, sink } = recordEvents();
    const ords: number[] = [];
    const g = gatherOn(fx, encodedPage, {
      events: sink,
      alloc: (ord, what) => {
        ords.push(ord);
        expect(what).toBe("pages");
        return ord !== 0;
      },
    });
    g.tlbRemoveTlbEntries(0x400000, 9);
    for (let i = 0; i < 7; i++) {
      g.removeRmap(heads[i], 1);
      expect(g.removePage(heads[i], false)).toBe(false);
    }
    g.removeRmap(heads[7], 1);
    expect(g.removePage(heads[7], false)).toBe(true);
    expect(events.slice(-3)).toEqual([
      { type: "pageQueued", pfn: heads[7], nr: 1, delayRmap: false },
      { type: "batchAllocFailed", what: "pages" },
      { type: "forcedFlush", reason: "batchAllocFailed" },
    ]);
    expect(g.counters).toMatchObject({
      batchAllocFailed: 1,
      batchPagesAllocated: 0,
      forcedFlushes: { ...createGatherCounters().forcedFlushes, batchAllocFailed: 1 },
    });
    g.flushMmu("batchFull");
    // the flush reset the range: the next PTE is recorded again before its page is queued
    g.tlbRemoveTlbEntry(0x408000);
    g.removeRmap(heads[8], 1);
    expect(g.removePage(heads[8], false)).toBe(false);
    g.finish();
    expect(ords).toEqual([0]);
    for (const h of heads) expect(fx.mem.isFree(h)).toBe(true);
  });

  it("tlb_remove_page flushes by itself when full; the caller sees no 'full'", () => {
    const fx = createGatherFixture(merging);
    const heads = Array.from({ length: 9 }, () => mapAnonFolio(fx, 0).head);
    const g = gatherOn(fx, encodedPage, { alloc: () => false });
    heads.forEach((h, i) => {
      g.tlbRemoveTlbEntry(0x400000 + i * PAGE);
      g.removeRmap(h, 1);
      g.tlbRemovePage(h);
    });
    // the 8th page filled `local`: tlb_flush_mmu ran once, freeing the 8
    expect(g.counters.flushMmuCalls).toBe(1);
    expect(g.counters.pagesReleased).toBe(8);
    expect(g.counters.tlbFlushes).toBe(1);
    expect(heads.slice(0, 8).every((h) => fx.mem.isFree(h))).toBe(true);
    expect(g.queuedEntries).toBe(1);
    g.finish();
    expect(fx.mem.isFree(heads[8])).toBe(true);
  });

  it("tlb_remove_page_size queues one entry for a compound page; a bad size is refused", () => {
    const fx = createGatherFixture(merging);
    const f = mapAnonFolio(fx, 0);
    const g = gatherOn(fx, encodedPage);
    g.tlbRemoveTlbEntry(0);
    expect(codeOf(() => g.removePageSize(f.head, false, 3 * PAGE))).toBe("BAD_ARGUMENT");
    expect(codeOf(() => g.removePageSize(f.head, false, PAGE / 2))).toBe("BAD_ARGUMENT");
    expect(codeOf(() => g.removePageSize(f.head, false, PAGE + 0.5))).toBe("BAD_ARGUMENT");
    expect(codeOf(() => g.removePageSize(-3, false, PAGE))).toBe("BAD_PFN");
    expect(g.counters.entriesQueued).toBe(0);
    g.removeRmap(f.head, 1);
    g.tlbRemovePageSize(f.head, 2 * 1024 * 1024);
    expect([g.queuedEntries, g.counters.entriesQueued, g.counters.pagesQueued]).toEqual([1, 1, 1]);
    g.finish();
    expect(fx.mem.isFree(f.head)).toBe(true);
  });

  it("tlb_remove_page_size flushes by itself when the bundle fills", () => {
    const fx = createGatherFixture(merging);
    const heads = Array.from({ length: 8 }, () => mapAnonFolio(fx, 0).head);
    const g = gatherOn(fx, encodedPage, { alloc: () => false });
    g.tlbRemoveTlbEntries(0x400000, 8);
    for (const h of heads) {
      g.removeRmap(h, 1);
      g.tlbRemovePageSize(h, PAGE);
    }
    expect(g.counters.flushMmuCalls).toBe(1);
    expect(g.queuedEntries).toBe(0);
    g.finish();
  });
});

describe("page-table frees record the level above and set freed_tables", () => {
  const levels = [
    ["pte", "pmd", { clearedPmds: true }],
    ["pmd", "pud", { clearedPuds: true }],
    ["pud", "p4d", { clearedP4ds: true }],
    ["p4d", "p4d", {}],
  ] as const;
  for (const [level, recorded, bits] of levels)
    it(`${level}_free_tlb: one PAGE_SIZE at the ${recorded} level; the table waits for the flush`, () => {
      const fx = createGatherFixture(merging);
      const { events, sink } = recordEvents();
      const g = gatherOn(fx, encodedNrPages, { events: sink });
      const table = fx.mem.allocFolio(0);
      const free = { pte: g.pteFreeTlb, pmd: g.pmdFreeTlb, pud: g.pudFreeTlb, p4d: g.p4dFreeTlb }[level];
      free.call(g, table, 0x600000);
      expect({
        freedTables: g.freedTables,
        clearedPtes: g.clearedPtes,
        clearedPmds: g.clearedPmds,
        clearedPuds: g.clearedPuds,
        clearedP4ds: g.clearedP4ds,
      }).toEqual({
        freedTables: true,
        clearedPtes: false,
        clearedPmds: false,
        clearedPuds: false,
        clearedP4ds: false,
        ...bits,
      });
      expect([g.start, g.end]).toEqual([0x600000, 0x601000]);
      expect(fx.mem.isFree(table)).toBe(false);
      g.finish();
      expect(fx.mem.isFree(table)).toBe(true);
      expect(events.slice(1, 5)).toEqual([
        { type: "rangeRecorded", addr: 0x600000, size: PAGE, level: recorded },
        { type: "tableQueued", pfn: table, level },
        { type: "batchAllocated", what: "tables", batchCount: 1 },
        // the walk caches go too (freed_tables); stride from the lowest cleared level
        {
          type: "tlbFlushed",
          kind: "range",
          reason: "finish",
          cpus: null,
          start: 0x600000,
          end: 0x601000,
          stride: level === "pte" ? 2 ** 21 : level === "pmd" ? 2 ** 30 : level === "pud" ? 2 ** 39 : PAGE,
          walkCaches: true,
        },
      ]);
      // tlb_table_flush's tlb_table_invalidate finds the range already flushed and reset
      expect(events.slice(5)).toEqual([
        { type: "tlbFlushSkipped" },
        { type: "tablesFreed", pfns: [table], viaRcu: true },
        { type: "gatherFinished", nested: false },
      ]);
      expect(g.counters).toEqual(
        counters({
          tlbFlushSkipped: 1,
          tlbFlushRange: 1,
          tlbFlushRangeEntries: 1,
          tlbFlushes: 1,
          flushMmuCalls: 1,
          tablesQueued: 1,
          tablesFreed: 1,
          tableBatchAllocated: 1,
          rcuCalls: 1,
        }),
      );
    });

  it("direct table free (no RCU): freed after the flush without call_rcu; each flush frees the table batch, the next table allocates another", () => {
    const direct = defineArch({ name: "direct", mergeVmas: true, tableFree: "direct" });
    const fx = createGatherFixture(direct);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedPage, { events: sink });
    const t1 = fx.mem.allocFolio(0);
    const t2 = fx.mem.allocFolio(0);
    g.pteFreeTlb(t1, 0x400000);
    g.pteFreeTlb(t2, 0x600000);
    g.flushMmu();
    const t3 = fx.mem.allocFolio(0);
    g.pmdFreeTlb(t3, 0x40000000);
    g.finish();
    expect(events.filter((e) => e.type === "tablesFreed")).toEqual([
      { type: "tablesFreed", pfns: [t1, t2], viaRcu: false },
      { type: "tablesFreed", pfns: [t3], viaRcu: false },
    ]);
    expect(g.counters).toMatchObject({
      rcuCalls: 0,
      tablesQueued: 3,
      tablesFreed: 3,
      tableBatchAllocated: 2,
      tableBatchAllocFailed: 0,
    });
    for (const t of [t1, t2, t3]) expect(fx.mem.isFree(t)).toBe(true);
  });

  it("no table batch page: tablesFreed at once, counters once each, allocation ordinals shared with pages", () => {
    const fx = createGatherFixture(merging);
    const { events, sink } = recordEvents();
    const seen: string[] = [];
    const g = gatherOn(fx, encodedNrPages, {
      events: sink,
      alloc: (ord, what) => {
        seen.push(`${ord}:${what}`);
        return false;
      },
    });
    const t = fx.mem.allocFolio(0);
    g.pteFreeTlb(t, 0x400000);
    expect(fx.mem.isFree(t)).toBe(true);
    expect(events.slice(1)).toEqual([
      { type: "rangeRecorded", addr: 0x400000, size: PAGE, level: "pmd" },
      { type: "tableQueued", pfn: t, level: "pte" },
      { type: "batchAllocFailed", what: "tables" },
      { type: "forcedFlush", reason: "tableAllocFailed" },
      rangeFlush("tableFree", 0x400000, 0x401000, 2 ** 21, true),
      { type: "tablesFreed", pfns: [t], viaRcu: false },
    ]);
    expect(g.counters).toEqual(
      counters({
        tlbFlushRange: 1,
        tlbFlushRangeEntries: 1,
        tlbFlushes: 1,
        tablesQueued: 1,
        tablesFreed: 1,
        tableBatchAllocFailed: 1,
        tableSyncOne: 1,
        forcedFlushes: { tableAllocFailed: 1 },
      }),
    );
    const t2 = fx.mem.allocFolio(0);
    g.pteFreeTlb(t2, 0x600000);
    g.finish();
    expect(seen).toEqual(["0:tables", "1:tables"]);
    expect(g.counters.tableSyncOne).toBe(2);
  });
});

describe("huge entries and VMA bookkeeping", () => {
  it("tlb_remove_pmd_tlb_entry / tlb_remove_pud_tlb_entry record HPAGE_PMD_SIZE / HPAGE_PUD_SIZE", () => {
    const fx = createGatherFixture(merging);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedNrPages, { events: sink });
    g.tlbRemovePmdTlbEntry(0x40000000);
    expect([g.start, g.end, g.clearedPmds, g.clearedPtes]).toEqual([0x40000000, 0x40200000, true, false]);
    g.tlbRemovePudTlbEntry(0x80000000);
    expect([g.start, g.end, g.clearedPuds]).toEqual([0x40000000, 0xc0000000, true]);
    expect(events.slice(1)).toEqual([
      { type: "rangeRecorded", addr: 0x40000000, size: 2 ** 21, level: "pmd" },
      { type: "rangeRecorded", addr: 0x80000000, size: 2 ** 30, level: "pud" },
    ]);
    g.flushMmuTlbonly();
    // reset: an empty range, every bit clear
    expect([g.start, g.end, g.clearedPmds, g.clearedPuds]).toEqual([2 ** 47 - 2 ** 12, 0, false, false]);
    // the lowest level cleared was the PMD: 2 MiB stride, 512 + 1 = 513 entries (no ceiling here)
    expect(events[3]).toEqual(rangeFlush("caller", 0x40000000, 0xc0000000, 2 ** 21));
    expect(g.counters.tlbFlushRangeEntries).toBe((0xc0000000 - 0x40000000) / 2 ** 21);
    g.finish();
  });

  it("tlb_remove_tlb_entries: the union of the runs; start and end only ever widen", () => {
    const fx = createGatherFixture(merging);
    const g = gatherOn(fx, encodedNrPages);
    expect([g.start, g.end]).toEqual([2 ** 47 - 2 ** 12, 0]);
    g.tlbRemoveTlbEntries(0x500000, 3);
    expect([g.start, g.end]).toEqual([0x500000, 0x503000]);
    g.tlbRemoveTlbEntries(0x400000, 1);
    expect([g.start, g.end]).toEqual([0x400000, 0x503000]);
    g.tlbRemoveTlbEntry(0x501000);
    expect([g.start, g.end]).toEqual([0x400000, 0x503000]);
    g.tlbRemoveTlbEntries(0x502000, 2);
    expect([g.start, g.end]).toEqual([0x400000, 0x504000]);
    g.finish();
  });

  it("tlb_start_vma records exec / huge / pfnmap (pfnmap sticks); fullmm records nothing but VM_LOCKED", () => {
    const fx = createGatherFixture(arch);
    const g = gatherOn(fx, encodedNrPages);
    g.tlbStartVma({ exec: true, huge: true, pfnmap: true });
    expect([g.vmaExec, g.vmaHuge, g.vmaPfn]).toEqual([true, true, true]);
    g.tlbEndVma({ exec: true, huge: true, pfnmap: true });
    g.tlbStartVma({ exec: false, huge: false, pfnmap: false });
    expect([g.vmaExec, g.vmaHuge, g.vmaPfn]).toEqual([false, false, true]);
    g.finish();

    const fx2 = createGatherFixture(arch);
    const full = gatherOn(fx2, encodedNrPages, { fullmm: true });
    expect([full.start, full.end]).toEqual([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]);
    full.tlbStartVma({ exec: true, huge: true, pfnmap: true, locked: true });
    expect([full.vmaExec, full.vmaHuge, full.vmaPfn]).toEqual([false, false, false]);
    // VM_LOCKED is read by the rmap removals, which run in fullmm too: munlock
    const f = mapAnonFolio(fx2, 0);
    fx2.mem.mlockFolio(f.head);
    expect(fx2.mem.mlockCount(f.head)).toBe(1);
    full.tlbRemoveTlbEntry(0x400000);
    full.removeRmap(f.head, 1);
    // munlock_vma_folio: the folio goes on the per-CPU mlock batch, which takes a reference
    expect(fx2.mem.mlockBatchRefs(f.head)).toBe(1);
    fx2.mem.lruAddDrain();
    expect(fx2.mem.mlockCount(f.head)).toBe(0);
    full.removePage(f.head, false);
    full.finish();
  });

  it("tlb_end_vma flushes the VMA's range unless fullmm or MERGE_VMAS", () => {
    const vma = { exec: false, huge: false, pfnmap: false };
    const run = (a: typeof arch, fullmm: boolean) => {
      const fx = createGatherFixture(a);
      const { events, sink } = recordEvents();
      const g = gatherOn(fx, encodedNrPages, { events: sink, fullmm });
      g.tlbStartVma(vma);
      g.tlbRemoveTlbEntry(0x400000);
      g.tlbEndVma(vma);
      const n = g.counters.tlbFlushes;
      g.finish();
      return { atEnd: n, events: events.filter((e) => e.type === "tlbFlushed").map((e) => e.reason) };
    };
    expect(run(arch, false)).toEqual({ atEnd: 1, events: ["endVma"] });
    expect(run(merging, false)).toEqual({ atEnd: 0, events: ["finish"] });
    expect(run(arch, true)).toEqual({ atEnd: 0, events: ["finish"] });
  });

  it("a fullmm gather flushes the whole mm once at finish", () => {
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 0);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedPage, { events: sink, fullmm: true });
    expect([g.start, g.end]).toEqual([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]);
    // __tlb_adjust_range takes the min of start; end stays ULONG_MAX
    g.tlbRemoveTlbEntry(0x400000);
    expect([g.start, g.end]).toEqual([0x400000, Number.MAX_SAFE_INTEGER]);
    g.removeRmap(f.head, 1);
    g.removePage(f.head, false);
    g.finish();
    expect(events[0]).toEqual({ type: "gatherStarted", mmId: fx.mm.id, fullmm: true });
    expect(events.filter((e) => e.type === "tlbFlushed")).toEqual([
      {
        type: "tlbFlushed",
        kind: "mm",
        reason: "finish",
        cpus: null,
        start: 0,
        end: 0,
        stride: 0,
        walkCaches: false,
      },
    ]);
    expect(g.counters).toMatchObject({ tlbFlushMm: 1, tlbFlushRange: 0, tlbFlushes: 1 });
  });
});

describe("nested gathers (tlb_finish_mmu's mm_tlb_flush_nested rule)", () => {
  it("the first to finish flushes the whole mm with walk caches; the other finishes normally", () => {
    const fx = createGatherFixture(merging);
    const a = recordEvents();
    const b = recordEvents();
    const ga = gatherOn(fx, encodedNrPages, { events: a.sink });
    const gb = gatherOn(fx, encodedNrPages, { events: b.sink });
    expect(fx.mm.tlbFlushPending).toBe(2);
    ga.finish();
    expect(fx.mm.tlbFlushPending).toBe(1);
    expect(ga.fullmm).toBe(true);
    expect(a.events.slice(1)).toEqual([
      { type: "forcedFlush", reason: "nestedGather" },
      {
        type: "tlbFlushed",
        kind: "mm",
        reason: "nested",
        cpus: null,
        start: 0,
        end: 0,
        stride: 0,
        walkCaches: true,
      },
      { type: "gatherFinished", nested: true },
    ]);
    expect(ga.counters).toEqual(
      counters({
        nestedFlushes: 1,
        tlbFlushMm: 1,
        tlbFlushes: 1,
        flushMmuCalls: 1,
        forcedFlushes: { nestedGather: 1 },
      }),
    );
    gb.finish();
    expect(fx.mm.tlbFlushPending).toBe(0);
    expect(b.events.slice(1)).toEqual([
      { type: "tlbFlushSkipped" },
      { type: "gatherFinished", nested: false },
    ]);
    expect(gb.counters.nestedFlushes).toBe(0);
  });
});

describe("NO_GATHER (s390): pages are freed when queued", () => {
  const s390ish = defineArch({ name: "no-gather", noGather: true, delayRmap: false, batchRmap: false });

  it("free_page_and_swap_cache at queue time: events and counters once per call", () => {
    const fx = createGatherFixture(s390ish);
    const single = mapAnonFolio(fx, 0);
    const big = mapAnonFolio(fx, 2);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedPage, { events: sink });
    expect(g.tlbDelayRmap()).toBe(false);
    expect(g.tlbBatchRmap()).toBe(false);
    g.tlbRemoveTlbEntries(0x400000, 5);
    g.removeRmap(single.head, 1);
    expect(g.removePage(single.head, false)).toBe(false);
    expect(fx.mem.isFree(single.head)).toBe(true);
    g.removeRmap(big.head, 4);
    // any variant takes a folio run on NO_GATHER: nothing is stored
    expect(g.removeFolioPages(big.head, 4, false)).toBe(false);
    expect(fx.mem.isFree(big.head)).toBe(true);
    expect([g.queuedEntries, g.queuedPages, g.batchCount]).toEqual([0, 0, 0]);
    expect(codeOf(() => g.removePage(single.head, true))).toBe("INVARIANT");
    expect(events.slice(1)).toEqual([
      { type: "rangeRecorded", addr: 0x400000, size: 5 * PAGE, level: "pte" },
      { type: "rmapRemoved", pfn: single.head, nr: 1, delayed: false, primitive: "pageRemoveRmap" },
      { type: "pageQueued", pfn: single.head, nr: 1, delayRmap: false },
      { type: "pagesFreed", pfns: [single.head], nrs: [1] },
      { type: "rmapRemoved", pfn: big.head, nr: 4, delayed: false, primitive: "pageRemoveRmap" },
      { type: "pageQueued", pfn: big.head, nr: 4, delayRmap: false },
      { type: "pagesFreed", pfns: [big.head], nrs: [4] },
    ]);
    const c = g.counters;
    expect([
      c.releaseCalls,
      c.pagesQueued,
      c.pagesReleased,
      c.pagesFreedOnQueue,
      c.freeSwapCacheCalls,
    ]).toEqual([2, 5, 5, 5, 2]);
    expect(c.entriesQueued).toBe(0);
    g.finish();
    expect(g.counters.chunksFreed).toBe(0);
    expect(g.counters.batchPagesFreed).toBe(0);
  });

  it("without swap no free_swap_cache runs", () => {
    const fx = createGatherFixture(s390ish);
    const f = mapAnonFolio(fx, 0);
    const g = createMmuGather({ mem: fx.mem, mm: fx.mm, arch: s390ish, variant: encodedNrPages });
    g.tlbRemoveTlbEntry(0);
    g.removeRmap(f.head, 1);
    g.removePage(f.head, false);
    expect(fx.mem.isFree(f.head)).toBe(true);
    expect(g.counters.freeSwapCacheCalls).toBe(0);
    expect(g.counters.releaseCalls).toBe(1);
    g.finish();
  });
});

describe("misuse is refused with a typed error before any state changes", () => {
  it("queueing before any TLB range is recorded: NO_RANGE (VM_BUG_ON(!tlb->end))", () => {
    for (const v of [encodedPage, contigRange, encodedNrPages] as GatherVariant[]) {
      const fx = createGatherFixture(arch);
      const f = mapAnonFolio(fx, 0);
      const g = gatherOn(fx, v);
      expect(codeOf(() => g.removePage(f.head, false))).toBe("NO_RANGE");
      expect(codeOf(() => g.removeFolioPages(f.head, 1, false))).toBe("NO_RANGE");
      expect(g.counters).toEqual(createGatherCounters());
      g.finish();
    }
  });

  it("bad pfns and run lengths", () => {
    const fx = createGatherFixture(arch, 1 << 12);
    const f = mapAnonFolio(fx, 1);
    const g = gatherOn(fx, encodedNrPages);
    g.tlbRemoveTlbEntry(0);
    const codes = [
      () => g.removePage(1.5, false),
      () => g.removePage(-1, false),
      () => g.removePage(2 ** 29, false),
      () => g.removeFolioPages(f.head, 0, false),
      () => g.removeFolioPages(f.head, 1.5, false),
      () => g.removeFolioPages(1 << 13, 1, false),
      () => g.removeFolioPages(f.head + 1, 2, false),
      () => g.removeRmap(f.head, 3),
      () => g.removeRmap(2 ** 29 - 1, 1),
    ].map(codeOf);
    expect(codes).toEqual([
      "BAD_PFN",
      "BAD_PFN",
      "BAD_PFN",
      "BAD_NR",
      "BAD_NR",
      "BAD_PFN",
      "NR_OUTSIDE_FOLIO",
      "NR_OUTSIDE_FOLIO",
      "BAD_PFN",
    ]);
    expect(g.counters).toEqual(createGatherCounters());
    expect(fx.mem.folioMapcount(f.head)).toBe(2);
    // the largest encodable pfn minus one is a pfn, only outside this memory
    g.removeRmap(f.head, 2);
    expect(g.removeFolioPages(f.head, 2, false)).toBe(false);
    g.finish();
  });

  it("the gather is unusable after tlb_finish_mmu: FINISHED from every entry point", () => {
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 0);
    const g = gatherOn(fx, encodedNrPages);
    g.finish();
    const t = fx.mem.allocFolio(0);
    const vma = { exec: false, huge: false, pfnmap: false };
    const calls: Array<() => unknown> = [
      () => g.tlbStartVma(vma),
      () => g.tlbEndVma(vma),
      () => g.ptepGetAndClear(0, 1),
      () => g.tlbRemoveTlbEntry(0),
      () => g.tlbRemoveTlbEntries(0, 2),
      () => g.tlbRemovePmdTlbEntry(0),
      () => g.tlbRemovePudTlbEntry(0),
      () => g.tlbDelayRmap(),
      () => g.removeRmap(f.head, 1),
      () => g.removePage(f.head, false),
      () => g.removePageSize(f.head, false, PAGE),
      () => g.removeFolioPages(f.head, 1, false),
      () => g.enterPtl(),
      () => g.leavePtl(),
      () => g.discardRmaps(),
      () => g.flushRmaps(),
      () => g.flushMmuTlbonly(),
      () => g.flushMmu(),
      () => g.finish(),
      () => g.pteFreeTlb(t, 0),
      () => g.pmdFreeTlb(t, 0),
      () => g.pudFreeTlb(t, 0),
      () => g.p4dFreeTlb(t, 0),
    ];
    expect(calls.map(codeOf)).toEqual(calls.map(() => "FINISHED"));
    expect(fx.mm.tlbFlushPending).toBe(0);
    expect(fx.mem.folioMapcount(f.head)).toBe(1);
  });

  it("createMmuGather: mem, mm and arch are required; an unknown variant or storage is BAD_VARIANT", () => {
    const fx = createGatherFixture(arch);
    const base = { mem: fx.mem, mm: fx.mm, arch, variant: encodedPage };
    expect(codeOf(() => createMmuGather({ ...base, mem: undefined as never }))).toBe("BAD_ARGUMENT");
    expect(codeOf(() => createMmuGather({ ...base, mm: undefined as never }))).toBe("BAD_ARGUMENT");
    expect(codeOf(() => createMmuGather({ ...base, arch: undefined as never }))).toBe("BAD_ARGUMENT");
    expect(codeOf(() => createMmuGather({ ...base, variant: "nope" as never }))).toBe("BAD_VARIANT");
    const odd = { ...encodedPage, storage: "linked-list" } as unknown as GatherVariant;
    expect(codeOf(() => createMmuGather({ ...base, variant: odd }))).toBe("BAD_VARIANT");
    // nothing was started on the mm by the refused calls
    expect(fx.mm.tlbFlushPending).toBe(0);
    const byName = createMmuGather({ ...base, variant: "contig-range" });
    expect(byName.variant).toBe(contigRange);
    expect(fx.mm.tlbFlushPending).toBe(1);
    byName.finish();
  });

  it("flushRmaps outside the PTL is refused; leavePtl / finish drop the PTL flag", () => {
    const fx = createGatherFixture(arch);
    const g = gatherOn(fx, contigRange);
    expect(g.underPtl).toBe(false);
    expect(codeOf(() => g.flushRmaps())).toBe("NOT_UNDER_PTL");
    g.enterPtl();
    expect(g.underPtl).toBe(true);
    g.flushRmaps();
    g.leavePtl();
    expect(g.underPtl).toBe(false);
    g.enterPtl();
    g.finish();
    expect(g.underPtl).toBe(false);
  });
});

describe("counters reset and the read-only view", () => {
  it("resetCounters zeroes every counter, forced flushes included", () => {
    const fx = createGatherFixture(merging);
    const heads = Array.from({ length: 9 }, () => mapAnonFolio(fx, 0).head);
    const g = gatherOn(fx, encodedPage, { alloc: () => false });
    heads.forEach((h, i) => {
      g.tlbRemoveTlbEntry(0x400000 + i * PAGE);
      g.removeRmap(h, 1);
      g.tlbRemovePage(h);
    });
    expect(g.counters.forcedFlushes.batchAllocFailed).toBe(1);
    const forced = g.counters.forcedFlushes;
    g.resetCounters();
    expect(g.counters).toEqual(createGatherCounters());
    // a fresh object: a copy taken before the reset keeps its figures
    expect(forced.batchAllocFailed).toBe(1);
    g.finish();
    expect(g.counters.pagesReleased).toBe(1);
  });

  it("the view the arch hooks see mirrors the gather and refuses writes", () => {
    let snap: Record<string, unknown> = {};
    const peek = defineArch({
      name: "peek",
      mergeVmas: true,
      tlbFlush(tlb, ops) {
        snap = { ...tlb };
        expect(() => {
          (tlb as { end: number }).end = 0;
        }).toThrow(TypeError);
        ops.flushRange(tlb.start, tlb.end, PAGE, tlb.freedTables);
      },
    });
    const fx = createGatherFixture(peek);
    const f = mapFileFolio(fx, 0, true);
    const g = gatherOn(fx, encodedPage);
    g.tlbStartVma({ exec: true, huge: false, pfnmap: true });
    g.enterPtl();
    g.tlbRemoveTlbEntry(0x400000);
    g.tlbDelayRmap();
    g.removePage(f.head, true);
    g.pteFreeTlb(fx.mem.allocFolio(0), 0x200000);
    g.flushMmuTlbonly("dirtyShared");
    expect(snap).toEqual({
      mm: fx.mm,
      start: 0x200000,
      end: 0x401000,
      fullmm: false,
      needFlushAll: false,
      freedTables: true,
      delayedRmap: true,
      clearedPtes: true,
      clearedPmds: true,
      clearedPuds: false,
      clearedP4ds: false,
      vmaExec: true,
      vmaHuge: false,
      vmaPfn: true,
      batchCount: 0,
      underPtl: true,
      finished: false,
      flushReason: "dirtyShared",
      cpu: -1,
    });
    g.flushRmaps();
    g.leavePtl();
    g.finish();
  });
});

describe("the arch's TLB operations", () => {
  it("flushRange counts ceil(len / stride) entries; a CPU list must be within mm_cpumask and is copied", () => {
    const cpus = [1, 3];
    const picky = defineArch({
      name: "picky",
      mergeVmas: true,
      tlbFlush(tlb, ops) {
        ops.flushRange(tlb.start, tlb.end, 3 * PAGE, false, cpus);
        ops.flushMm(true, [3]);
      },
    });
    const fx = createGatherFixture(picky);
    fx.mm.cpumask = [0, 1, 3];
    const seen: unknown[] = [];
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedNrPages, {
      events: sink,
      tlbListener: { tlbInvalidate: (...a: unknown[]) => seen.push(a) },
    });
    g.tlbRemoveTlbEntries(0x400000, 4);
    g.flushMmuTlbonly();
    cpus.push(2);
    const flushed = events.filter(
      (e): e is Extract<GatherEvent, { type: "tlbFlushed" }> => e.type === "tlbFlushed",
    );
    expect(flushed.map((e) => [e.kind, e.cpus, e.start, e.end, e.stride, e.walkCaches])).toEqual([
      ["range", [1, 3], 0x400000, 0x404000, 3 * PAGE, false],
      ["mm", [3], 0, 0, 0, true],
    ]);
    expect(seen).toEqual([
      [fx.mm.id, "range", 0x400000, 0x404000, 3 * PAGE, false, [1, 3]],
      [fx.mm.id, "mm", 0, 0, 0, true, [3]],
    ]);
    expect(g.counters).toMatchObject({
      tlbFlushRange: 1,
      tlbFlushRangeEntries: 2,
      tlbFlushMm: 1,
      tlbFlushes: 1,
    });
    // now a CPU outside the mask
    g.tlbRemoveTlbEntry(0x400000);
    expect(codeOf(() => g.flushMmuTlbonly())).toBe("BAD_ARGUMENT");
  });
});
