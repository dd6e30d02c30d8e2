// The storages' run adders, reached through the trusted entry points the zap walk uses
// (`@mmgather/mmu-gather/internal`), checked against what the kernel's per-page calls do:
// - v6.5 `__tlb_remove_page_size`: one encoded_page slot per page; when `batch->nr == batch->max`,
//   `tlb_next_batch` moves on (reuse `batch->next`, else refuse with delayed rmaps pending beyond
//   `local`, else refuse at MAX_GATHER_BATCH_COUNT, else GFP_NOWAIT a page) or the gather is full.
// - 7.x `__tlb_remove_folio_pages_size`: one slot per single page, two per nr_pages pair; the batch
//   moves on once `nr >= max - 1` so that a pair always fits.
// - the 2023 series: a page extending the open range (same folio, next pfn) merges into it; the
//   batch moves on as soon as its last slot is started.
// Each returns the pages consumed, negated when the last one filled the gather.

import { gatherTrusted } from "@mmgather/mmu-gather/internal";
import {
  createGatherFixture,
  type GatherFixture,
  gatherOn,
  mapAnonFolio,
  mapFileFolio,
  recordEvents,
} from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import {
  contigRange,
  createGatherCounters,
  defineArch,
  defineVariant,
  encodedNrPages,
  encodedPage,
  type GatherVariant,
  isGatherError,
  type MmuGather,
  type MmuGatherOptions,
} from "../index.js";

const PAGE = 4096;
const BASE = 0x400000;
const arch = defineArch({ name: "test-merge", mergeVmas: true });

function trusted(fx: GatherFixture, v: GatherVariant, extra: Partial<MmuGatherOptions> = {}) {
  return gatherTrusted(gatherOn(fx, v, extra));
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isGatherError(e) ? e.code : "untyped";
  }
  return "none";
}

/** zap_pte_range's force_flush after a full gather. */
function forceFlush(g: MmuGather): void {
  g.enterPtl();
  g.flushMmuTlbonly("batchFull");
  g.flushRmaps();
  g.leavePtl();
  g.flushMmu("batchFull");
}

const noForced = createGatherCounters().forcedFlushes;

describe("v6.5 addRun (zapPresentRunPerPageTrusted on encoded-page)", () => {
  it("a 512-page folio: 8 in the bundle, 504 in one batch page; one rmap call per page", () => {
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 9);
    const g = trusted(fx, encodedPage);
    expect(g.zapFastPath()).toBe(true);
    expect(g.zapPresentRunPerPageTrusted(f.head, f.head, 512, BASE, true)).toBe(512);
    expect([g.start, g.end, g.clearedPtes]).toEqual([BASE, BASE + 512 * PAGE, true]);
    expect([g.queuedEntries, g.queuedPages, g.batchCount]).toEqual([512, 512, 1]);
    expect(fx.mem.folioMapcount(f.head)).toBe(0);
    expect(g.counters).toMatchObject({
      entriesQueued: 512,
      pagesQueued: 512,
      batchPagesAllocated: 1,
      rmapCallsImmediate: 512,
      rmapPages: 512,
      forcedFlushes: noForced,
    });
    g.finish();
    expect(fx.mem.isFree(f.head)).toBe(true);
    expect(g.counters).toMatchObject({
      chunksFreed: 2,
      releaseCalls: 2,
      pagesReleased: 512,
      batchPagesFreed: 1,
    });
  });

  it("a run that crosses the bundle boundary mid-way continues in the batch page", () => {
    const fx = createGatherFixture(arch);
    const singles = Array.from({ length: 5 }, () => mapAnonFolio(fx, 0).head);
    const f = mapAnonFolio(fx, 4);
    const g = trusted(fx, encodedPage);
    singles.forEach((h, i) => {
      expect(g.zapPresentTrusted(h, h, 1, BASE + i * PAGE, true)).toBe(false);
    });
    expect(g.zapPresentRunPerPageTrusted(f.head, f.head + 2, 10, BASE + 5 * PAGE, true)).toBe(10);
    expect([g.queuedEntries, g.batchCount]).toEqual([15, 1]);
    expect(fx.mem.folioMapcount(f.head)).toBe(6);
    expect([g.start, g.end]).toEqual([BASE, BASE + 15 * PAGE]);
    g.finish();
    // pages 0,1 and 12..15 are still mapped: the folio stays
    expect(fx.mem.isFree(f.head)).toBe(false);
    expect(fx.mem.folioRef(f.head)).toBe(6);
  });

  it("no batch page: the run stops at the 8th page, full; the rest goes after the flush", () => {
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 4);
    const g = trusted(fx, encodedPage, { alloc: () => false });
    expect(g.zapPresentRunPerPageTrusted(f.head, f.head, 16, BASE, true)).toBe(-8);
    expect([g.start, g.end]).toEqual([BASE, BASE + 8 * PAGE]);
    // only the pages consumed had their rmap removed
    expect(fx.mem.folioMapcount(f.head)).toBe(8);
    expect(g.counters).toMatchObject({
      entriesQueued: 8,
      batchAllocFailed: 1,
      forcedFlushes: { ...noForced, batchAllocFailed: 1 },
    });
    // ignoring "full" overflows the batch
    expect(codeOf(() => g.zapPresentRunPerPageTrusted(f.head, f.head + 8, 8, BASE + 8 * PAGE, true))).toBe(
      "BATCH_OVERFLOW",
    );
    forceFlush(g);
    expect(g.zapPresentRunPerPageTrusted(f.head, f.head + 8, 8, BASE + 8 * PAGE, true)).toBe(-8);
    forceFlush(g);
    expect(fx.mem.isFree(f.head)).toBe(true);
    expect(g.counters.forcedFlushes.batchAllocFailed).toBe(2);
    g.finish();
  });

  it("a flushed batch page is reused by the next run (no new allocation)", () => {
    const fx = createGatherFixture(arch);
    const a = mapAnonFolio(fx, 4);
    const b = mapAnonFolio(fx, 4);
    const seen: string[] = [];
    const g = trusted(fx, encodedPage, {
      alloc: (ord, what) => {
        seen.push(`${ord}:${what}`);
        return true;
      },
    });
    expect(g.zapPresentRunPerPageTrusted(a.head, a.head, 16, BASE, true)).toBe(16);
    g.flushMmu();
    expect(g.batchCount).toBe(1);
    expect(g.zapPresentRunPerPageTrusted(b.head, b.head, 16, BASE, true)).toBe(16);
    expect(seen).toEqual(["0:pages"]);
    expect(g.counters).toMatchObject({ batchPagesAllocated: 1, batchPagesReused: 1 });
    g.finish();
    expect(g.counters.batchPagesFreed).toBe(1);
  });

  it("delayed rmaps pending: the run may fill `local` and one batch page, then delayedRmapLimit", () => {
    const fx = createGatherFixture(arch);
    const file = mapFileFolio(fx, 0, true);
    const a = mapAnonFolio(fx, 9);
    const b = mapAnonFolio(fx, 9);
    const g = trusted(fx, encodedPage);
    g.enterPtl();
    g.tlbRemoveTlbEntry(BASE);
    expect(g.tlbDelayRmap()).toBe(true);
    expect(g.removePage(file.head, true)).toBe(false);
    expect(g.zapPresentRunPerPageTrusted(a.head, a.head, 512, BASE + PAGE, true)).toBe(512);
    // 1 + 512 + 5 = 518 = 8 + 510: the batch page is full, a second one is refused
    expect(g.zapPresentRunPerPageTrusted(b.head, b.head, 512, BASE + 513 * PAGE, true)).toBe(-5);
    expect(g.counters).toMatchObject({
      batchPagesAllocated: 1,
      batchAllocFailed: 0,
      forcedFlushes: { ...noForced, delayedRmapLimit: 1 },
    });
    g.flushMmuTlbonly("batchFull");
    g.flushRmaps();
    g.leavePtl();
    g.flushMmu("batchFull");
    expect(g.zapPresentRunPerPageTrusted(b.head, b.head + 5, 507, BASE + 518 * PAGE, true)).toBe(507);
    g.finish();
    expect(fx.mem.isFree(a.head) && fx.mem.isFree(b.head)).toBe(true);
  });

  it("MAX_GATHER_BATCH_COUNT: after 19 batch pages the gather is full at 9698 entries (batchLimit)", () => {
    const fx = createGatherFixture(arch);
    const folios = Array.from({ length: 19 }, () => mapAnonFolio(fx, 9));
    const g = trusted(fx, encodedPage);
    const got = folios.map((f, i) =>
      g.zapPresentRunPerPageTrusted(f.head, f.head, 512, BASE + i * 512 * PAGE, true),
    );
    expect(got).toEqual([...new Array(18).fill(512), -(9698 - 18 * 512)]);
    expect(g.batchCount).toBe(19);
    expect(g.counters).toMatchObject({
      batchPagesAllocated: 19,
      batchAllocFailed: 0,
      forcedFlushes: { ...noForced, batchLimit: 1 },
    });
    forceFlush(g);
    expect(g.counters).toMatchObject({ chunksFreed: 20, releaseCalls: 20, pagesReleased: 9698 });
    g.finish();
    expect(g.counters.batchPagesFreed).toBe(19);
  });

  it("a variant whose immediate primitive is per folio still makes one rmap call per PTE in a per-PTE walk", () => {
    const perFolio = defineVariant(encodedPage, {
      name: "page-storage-folio-rmap",
      policy: { immediateRmap: "folioRemoveRmapPtes" },
    });
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 3);
    const g = trusted(fx, perFolio);
    expect(g.zapPresentRunPerPageTrusted(f.head, f.head, 8, BASE, true)).toBe(8);
    expect(g.counters).toMatchObject({ rmapCallsImmediate: 8, rmapPages: 8 });
    expect(fx.mem.folioMapcount(f.head)).toBe(0);
    g.finish();
  });

  it("rmapNow false leaves the rmap to the caller", () => {
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 2);
    const g = trusted(fx, encodedPage);
    expect(g.zapPresentRunPerPageTrusted(f.head, f.head, 4, BASE, false)).toBe(4);
    expect(fx.mem.folioMapcount(f.head)).toBe(4);
    expect(g.counters.rmapCallsImmediate).toBe(0);
    g.removeRmap(f.head, 4);
    g.finish();
  });
});

describe("the series' addRunHead (zapPresentRunPerPageTrusted on contig-range)", () => {
  it("a whole folio is one range; the next folio, though adjacent, starts another", () => {
    const fx = createGatherFixture(arch);
    const a = mapAnonFolio(fx, 4);
    const b = mapAnonFolio(fx, 4);
    expect(b.head).toBe(a.head + 16);
    const g = trusted(fx, contigRange);
    g.enterPtl();
    g.discardRmaps();
    expect(g.zapPresentRunPerPageTrusted(a.head, a.head, 16, BASE, false)).toBe(16);
    expect(g.counters).toMatchObject({ entriesQueued: 1, pagesQueued: 16, rangesMerged: 15 });
    expect(g.zapPresentRunPerPageTrusted(b.head, b.head, 16, BASE + 16 * PAGE, false)).toBe(16);
    expect(g.counters).toMatchObject({ entriesQueued: 2, pagesQueued: 32, rangesMerged: 30 });
    expect([g.queuedEntries, g.queuedPages]).toEqual([2, 32]);
    expect([g.start, g.end]).toEqual([BASE, BASE + 32 * PAGE]);
    g.flushRmaps();
    expect(fx.mem.folioMapcount(a.head) + fx.mem.folioMapcount(b.head)).toBe(0);
    expect(g.counters).toMatchObject({ rmapFlushes: 1, rmapCallsDelayed: 2, rmapPages: 32 });
    g.leavePtl();
    g.finish();
    expect(fx.mem.isFree(a.head) && fx.mem.isFree(b.head)).toBe(true);
  });

  it("the open range carries over from one call to the next within the folio", () => {
    const fx = createGatherFixture(arch);
    const a = mapAnonFolio(fx, 4);
    const g = trusted(fx, contigRange);
    g.enterPtl();
    expect(g.zapPresentRunPerPageTrusted(a.head, a.head, 6, BASE, false)).toBe(6);
    expect(g.zapPresentRunPerPageTrusted(a.head, a.head + 6, 4, BASE + 6 * PAGE, false)).toBe(4);
    expect(g.zapPresentRunPerPageTrusted(a.head, a.head + 10, 6, BASE + 10 * PAGE, false)).toBe(6);
    expect(g.counters).toMatchObject({ entriesQueued: 1, rangesMerged: 15, pagesQueued: 16 });
    // a gap (a PTE that mapped nothing) starts a new range
    const b = mapAnonFolio(fx, 4);
    expect(g.zapPresentRunPerPageTrusted(b.head, b.head, 3, BASE + 16 * PAGE, false)).toBe(3);
    expect(g.zapPresentRunPerPageTrusted(b.head, b.head + 4, 3, BASE + 20 * PAGE, false)).toBe(3);
    expect(g.counters).toMatchObject({ entriesQueued: 3, rangesMerged: 15 + 2 + 2, pagesQueued: 22 });
    expect([g.queuedEntries, g.queuedPages]).toEqual([3, 22]);
    g.flushRmaps();
    g.leavePtl();
    g.finish();
    expect(fx.mem.isFree(a.head)).toBe(true);
    // pages 3 and 7..15 of b are still mapped
    expect(fx.mem.folioMapcount(b.head)).toBe(10);
    expect(fx.mem.isFree(b.head)).toBe(false);
  });

  it("no batch page: the 8th range fills `local` on its first page; the rest of that folio starts anew after the flush", () => {
    const fx = createGatherFixture(arch);
    const folios = Array.from({ length: 8 }, () => mapAnonFolio(fx, 2));
    const g = trusted(fx, contigRange, { alloc: () => false });
    g.enterPtl();
    const got = folios.map((f, i) =>
      g.zapPresentRunPerPageTrusted(f.head, f.head, 4, BASE + i * 4 * PAGE, false),
    );
    expect(got).toEqual([4, 4, 4, 4, 4, 4, 4, -1]);
    expect([g.start, g.end]).toEqual([BASE, BASE + 29 * PAGE]);
    expect(g.counters).toMatchObject({
      entriesQueued: 8,
      rangesMerged: 21,
      pagesQueued: 29,
      forcedFlushes: { ...noForced, batchAllocFailed: 1 },
    });
    g.flushMmuTlbonly("batchFull");
    g.flushRmaps();
    g.leavePtl();
    g.flushMmu("batchFull");
    const last = folios[7];
    g.enterPtl();
    expect(g.zapPresentRunPerPageTrusted(last.head, last.head + 1, 3, BASE + 29 * PAGE, false)).toBe(3);
    expect(g.counters).toMatchObject({ entriesQueued: 9, rangesMerged: 23, pagesQueued: 32 });
    g.flushRmaps();
    g.leavePtl();
    g.finish();
    for (const f of folios) expect(fx.mem.isFree(f.head)).toBe(true);
  });

  it("with a batch page the range restarts at the switch: a folio straddling it is two ranges", () => {
    const fx = createGatherFixture(arch);
    const singles = Array.from({ length: 7 }, () => mapAnonFolio(fx, 0));
    const f = mapAnonFolio(fx, 3);
    const g = trusted(fx, contigRange);
    g.enterPtl();
    singles.forEach((s, i) => {
      expect(g.zapPresentRunPerPageTrusted(s.head, s.head, 1, BASE + i * PAGE, false)).toBe(1);
    });
    expect(g.zapPresentRunPerPageTrusted(f.head, f.head, 8, BASE + 7 * PAGE, false)).toBe(8);
    // the folio's first page started local's last slot, which moved the batch on: 7 + 1 + 1 ranges
    expect(g.counters).toMatchObject({ entriesQueued: 9, rangesMerged: 6, batchPagesAllocated: 1 });
    expect([g.queuedEntries, g.queuedPages]).toEqual([9, 15]);
    g.flushRmaps();
    expect(g.counters).toMatchObject({ rmapCallsDelayed: 9, rmapPages: 15 });
    g.leavePtl();
    g.finish();
  });

  it("an arch without batched rmaps: one page_remove_rmap per page of the run, at once", () => {
    const noBatch = defineArch({ name: "no-batch", mergeVmas: true, batchRmap: false });
    const fx = createGatherFixture(noBatch);
    const f = mapAnonFolio(fx, 3);
    const g = trusted(fx, contigRange);
    expect(g.tlbBatchRmap()).toBe(false);
    expect(g.zapPresentRunPerPageTrusted(f.head, f.head, 8, BASE, true)).toBe(8);
    expect(fx.mem.folioMapcount(f.head)).toBe(0);
    expect(g.counters).toMatchObject({
      rmapCallsImmediate: 8,
      rmapPages: 8,
      entriesQueued: 1,
      rangesMerged: 7,
    });
    g.enterPtl();
    g.flushRmaps();
    g.leavePtl();
    expect(g.counters.rmapCallsDelayed).toBe(0);
    g.finish();
    expect(fx.mem.isFree(f.head)).toBe(true);
  });

  it("a per-folio immediate primitive under the per-PTE walk: still one call per page", () => {
    const noBatch = defineArch({ name: "no-batch", mergeVmas: true, batchRmap: false });
    const ranged = defineVariant(contigRange, {
      name: "range-rmap",
      policy: { immediateRmap: "folioRemoveRmapRange" },
    });
    const fx = createGatherFixture(noBatch);
    const f = mapAnonFolio(fx, 2);
    const g = trusted(fx, ranged);
    expect(g.zapPresentRunPerPageTrusted(f.head, f.head, 4, BASE, true)).toBe(4);
    expect(g.counters).toMatchObject({ rmapCallsImmediate: 4, rmapPages: 4 });
    expect(fx.mem.folioMapcount(f.head)).toBe(0);
    g.finish();
  });
});

describe("the series' tlb_flush_rmaps walks from the marker to the end of the queue", () => {
  it("ranges across local and a batch page; only those queued since the last flush or discard", () => {
    const fx = createGatherFixture(arch);
    const folios = Array.from({ length: 30 }, () => mapAnonFolio(fx, 0));
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, contigRange, { events: sink });
    g.enterPtl();
    g.discardRmaps();
    g.tlbRemoveTlbEntries(BASE, 30);
    for (const f of folios.slice(0, 20)) g.removePage(f.head, false);
    g.flushRmaps();
    expect(events.filter((e) => e.type === "rmapsFlushed")).toEqual([{ type: "rmapsFlushed", entries: 20 }]);
    // nothing new: no rmap call, no rmapsFlushed
    g.flushRmaps();
    for (const f of folios.slice(20, 25)) g.removePage(f.head, false);
    g.flushRmaps();
    // queued then discarded (the walk removed them itself): not removed again
    for (const f of folios.slice(25, 30)) {
      g.removeRmap(f.head, 1);
      g.removePage(f.head, false);
    }
    g.discardRmaps();
    g.flushRmaps();
    expect(events.filter((e) => e.type === "rmapsFlushed")).toEqual([
      { type: "rmapsFlushed", entries: 20 },
      { type: "rmapsFlushed", entries: 5 },
    ]);
    const removed = events
      .filter((e) => e.type === "rmapRemoved" && e.delayed)
      .map((e) => (e as { pfn: number }).pfn);
    expect(removed).toEqual(folios.slice(0, 25).map((f) => f.head));
    expect(g.counters).toMatchObject({
      rmapFlushes: 2,
      rmapCallsDelayed: 25,
      rmapCallsImmediate: 5,
      rmapPages: 30,
    });
    g.leavePtl();
    g.flushMmu();
    // after the pages are freed the marker is back at the start: new pages are pending again
    const more = mapAnonFolio(fx, 0);
    g.enterPtl();
    g.tlbRemoveTlbEntry(BASE);
    g.removePage(more.head, false);
    g.flushRmaps();
    expect(g.counters.rmapCallsDelayed).toBe(26);
    g.leavePtl();
    g.finish();
    for (const f of [...folios, more]) expect(fx.mem.isFree(f.head)).toBe(true);
  });
});

describe("7.x addSinglesRun (zapSinglesRunTrusted on encoded-nr-pages)", () => {
  it("20 order-0 folios: 7 in the bundle (one slot kept for a pair), 13 in a batch page", () => {
    const fx = createGatherFixture(arch);
    const pfns = Int32Array.from({ length: 20 }, () => mapAnonFolio(fx, 0).head);
    const g = trusted(fx, encodedNrPages);
    expect(g.zapSinglesRunTrusted(pfns, 20, BASE)).toBe(20);
    expect([g.start, g.end]).toEqual([BASE, BASE + 20 * PAGE]);
    expect([g.queuedEntries, g.queuedPages, g.batchCount]).toEqual([20, 20, 1]);
    for (const p of pfns) expect(fx.mem.folioMapcount(p)).toBe(0);
    expect(g.counters).toMatchObject({
      entriesQueued: 20,
      pagesQueued: 20,
      rmapCallsImmediate: 20,
      rmapPages: 20,
      batchPagesAllocated: 1,
      forcedFlushes: noForced,
    });
    g.finish();
    for (const p of pfns) expect(fx.mem.isFree(p)).toBe(true);
    // 2 chunks (bundle, batch page); 7 and 13 folios: one folios_put_refs each
    expect(g.counters).toMatchObject({ chunksFreed: 2, releaseCalls: 2, pagesReleased: 20 });
  });

  it("no batch page: 7 pages, full; ignoring it one more fits the spare slot (full again); then overflow", () => {
    const fx = createGatherFixture(arch);
    const pfns = Int32Array.from({ length: 10 }, () => mapAnonFolio(fx, 0).head);
    const g = trusted(fx, encodedNrPages, { alloc: () => false });
    expect(g.zapSinglesRunTrusted(pfns, 10, BASE)).toBe(-7);
    expect([g.start, g.end]).toEqual([BASE, BASE + 7 * PAGE]);
    expect(fx.mem.folioMapcount(pfns[7])).toBe(1);
    expect(g.counters).toMatchObject({
      rmapCallsImmediate: 7,
      forcedFlushes: { ...noForced, batchAllocFailed: 1 },
    });
    expect(g.zapSinglesRunTrusted(pfns.subarray(7), 3, BASE + 7 * PAGE)).toBe(-1);
    expect(g.queuedEntries).toBe(8);
    expect(fx.mem.folioMapcount(pfns[8])).toBe(1);
    expect(codeOf(() => g.zapSinglesRunTrusted(pfns.subarray(8), 2, BASE + 8 * PAGE))).toBe("BATCH_OVERFLOW");
    forceFlush(g);
    expect(g.zapSinglesRunTrusted(pfns.subarray(8), 2, BASE + 8 * PAGE)).toBe(2);
    g.finish();
    for (const p of pfns) expect(fx.mem.isFree(p)).toBe(true);
    expect(g.counters).toMatchObject({ entriesQueued: 10, rmapCallsImmediate: 10, batchAllocFailed: 2 });
  });

  it("a VM_LOCKED VMA takes the per-page path: every folio is munlocked", () => {
    const fx = createGatherFixture(arch);
    const pfns = Int32Array.from({ length: 4 }, () => mapAnonFolio(fx, 0).head);
    for (const p of pfns) fx.mem.mlockFolio(p);
    const g = trusted(fx, encodedNrPages);
    g.tlbStartVma({ exec: false, huge: false, pfnmap: false, locked: true });
    const munlocks = fx.mem.counters.munlockCalls;
    expect(g.zapSinglesRunTrusted(pfns, 4, BASE)).toBe(4);
    expect(fx.mem.counters.munlockCalls - munlocks).toBe(4);
    for (const p of pfns) expect(fx.mem.mlockBatchRefs(p)).toBe(1);
    expect(g.counters).toMatchObject({ entriesQueued: 4, rmapCallsImmediate: 4, rmapPages: 4 });
    fx.mem.lruAddDrain();
    for (const p of pfns) expect([fx.mem.mlockCount(p), fx.mem.isFree(p)]).toEqual([0, false]);
    g.finish();
    for (const p of pfns) expect(fx.mem.isFree(p)).toBe(true);
  });

  it("a variant with v6.5's page_remove_rmap takes the per-page path with the same counts", () => {
    const v65rmap = defineVariant(encodedNrPages, {
      name: "nr-pages-6.5-rmap",
      policy: { immediateRmap: "pageRemoveRmap" },
    });
    const fx = createGatherFixture(arch);
    const pfns = Int32Array.from({ length: 9 }, () => mapAnonFolio(fx, 0).head);
    const g = trusted(fx, v65rmap, { alloc: () => false });
    expect(g.zapSinglesRunTrusted(pfns, 9, BASE)).toBe(-7);
    expect(g.counters).toMatchObject({ entriesQueued: 7, rmapCallsImmediate: 7, rmapPages: 7 });
    expect(fx.mem.folioMapcount(pfns[7])).toBe(1);
    forceFlush(g);
    g.finish();
  });

  it("on encoded-page (the per-PTE walk's storages) the singles run is page by page", () => {
    for (const v of [encodedPage, contigRange]) {
      const noBatch = defineArch({ name: "no-batch", mergeVmas: true, batchRmap: false });
      const fx = createGatherFixture(noBatch);
      const pfns = Int32Array.from({ length: 10 }, () => mapAnonFolio(fx, 0).head);
      const g = trusted(fx, v, { alloc: () => false });
      expect(g.zapSinglesRunTrusted(pfns, 10, BASE)).toBe(-8);
      expect(g.counters).toMatchObject({ entriesQueued: 8, rmapCallsImmediate: 8 });
      forceFlush(g);
      expect(g.zapSinglesRunTrusted(pfns.subarray(8), 2, BASE + 8 * PAGE)).toBe(2);
      g.finish();
      for (const p of pfns) expect(fx.mem.isFree(p)).toBe(true);
    }
  });

  it("encoded-nr-pages under a per-PTE walk: zapPresentRunPerPageTrusted is page by page, full at the 7th", () => {
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 3);
    const g = trusted(fx, encodedNrPages, { alloc: () => false });
    expect(g.zapPresentRunPerPageTrusted(f.head, f.head, 8, BASE, true)).toBe(-7);
    expect(g.counters).toMatchObject({ entriesQueued: 7, pagesQueued: 7, rmapCallsImmediate: 7 });
    expect([g.start, g.end]).toEqual([BASE, BASE + 7 * PAGE]);
    forceFlush(g);
    expect(g.zapPresentRunPerPageTrusted(f.head, f.head + 7, 1, BASE + 7 * PAGE, true)).toBe(1);
    g.finish();
    expect(fx.mem.isFree(f.head)).toBe(true);
  });
});

describe("zapPresentTrusted and the pair encoding", () => {
  it("encoded-nr-pages: a pair takes two slots; a pair that reaches max - 1 moves the batch on", () => {
    const fx = createGatherFixture(arch);
    const singles = Array.from({ length: 5 }, () => mapAnonFolio(fx, 0).head);
    const big = mapAnonFolio(fx, 2);
    const big2 = mapAnonFolio(fx, 1);
    const g = trusted(fx, encodedNrPages, { alloc: () => false });
    singles.forEach((h, i) => {
      expect(g.zapPresentTrusted(h, h, 1, BASE + i * PAGE, true)).toBe(false);
    });
    // slots 5 and 6: nr = 7 = max - 1, the batch must move on and cannot
    expect(g.zapPresentTrusted(big.head, big.head, 4, BASE + 5 * PAGE, true)).toBe(true);
    expect([g.queuedEntries, g.queuedPages]).toEqual([7, 9]);
    expect(g.counters).toMatchObject({
      entriesQueued: 7,
      pagesQueued: 9,
      rmapCallsImmediate: 6,
      rmapPages: 9,
    });
    // the spare slot takes a single page but not a pair
    expect(codeOf(() => g.zapPresentTrusted(big2.head, big2.head, 2, BASE + 9 * PAGE, false))).toBe(
      "BATCH_OVERFLOW",
    );
    forceFlush(g);
    expect(g.zapPresentTrusted(big2.head, big2.head, 2, BASE + 9 * PAGE, true)).toBe(false);
    g.finish();
    for (const h of [...singles, big.head, big2.head]) expect(fx.mem.isFree(h)).toBe(true);
  });

  it("queuedPages counts each pair's nr_pages, across batch pages", () => {
    const fx = createGatherFixture(arch);
    const g = trusted(fx, encodedNrPages);
    let addr = BASE;
    let pages = 0;
    let entries = 0;
    for (const order of [0, 3, 0, 2, 4, 0, 1, 0, 5, 2]) {
      const f = mapAnonFolio(fx, order);
      expect(g.zapPresentTrusted(f.head, f.head, f.nr, addr, true)).toBe(false);
      addr += f.nr * PAGE;
      pages += f.nr;
      entries += f.nr === 1 ? 1 : 2;
    }
    expect(g.batchCount).toBe(1);
    expect([g.queuedEntries, g.queuedPages]).toEqual([entries, pages]);
    expect(g.counters).toMatchObject({ entriesQueued: entries, pagesQueued: pages, rmapCallsImmediate: 10 });
    g.finish();
    expect(g.counters.pagesReleased).toBe(pages);
  });

  it("per-page storages refuse a folio run (UNSUPPORTED): the walk must not batch their PTEs", () => {
    for (const v of [encodedPage, contigRange]) {
      const fx = createGatherFixture(arch);
      const f = mapAnonFolio(fx, 2);
      const g = trusted(fx, v);
      expect(codeOf(() => g.zapPresentTrusted(f.head, f.head, 4, BASE, false))).toBe("UNSUPPORTED");
      expect(codeOf(() => g.removeFolioPagesTrusted(f.head, 4, false))).toBe("UNSUPPORTED");
      g.tlbRemoveTlbEntries(BASE, 4);
      expect(codeOf(() => g.removeFolioPages(f.head, 4, false))).toBe("UNSUPPORTED");
      expect(g.counters.entriesQueued).toBe(0);
      g.removeRmap(f.head, 4);
      expect(g.removeFolioPagesTrusted(f.head, 1, false)).toBe(false);
      expect(g.removePageTrusted(f.head + 1, false)).toBe(false);
      g.finish();
    }
  });

  it("the trusted entry points refuse a finished gather (FINISHED)", () => {
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 0);
    const g = trusted(fx, encodedNrPages);
    g.finish();
    const calls = [
      () => g.zapPresentTrusted(f.head, f.head, 1, BASE, true),
      () => g.zapSinglesRunTrusted(Int32Array.of(f.head), 1, BASE),
      () => g.zapPresentRunPerPageTrusted(f.head, f.head, 1, BASE, true),
      () => g.removeRmapTrusted(f.head, f.head, 1),
      () => g.removePageTrusted(f.head, false),
      () => g.removeFolioPagesTrusted(f.head, 1, false),
    ];
    expect(calls.map(codeOf)).toEqual(calls.map(() => "FINISHED"));
    expect(fx.mem.folioMapcount(f.head)).toBe(1);
  });

  it("zapFastPath only with no sink, the asm-generic pte_clear and a gathering arch; gatherTrusted refuses foreign objects", () => {
    const fx = createGatherFixture(arch);
    expect(trusted(fx, encodedNrPages).zapFastPath()).toBe(true);
    expect(trusted(fx, encodedNrPages, { events: () => {} }).zapFastPath()).toBe(false);
    const ipte = defineArch({ name: "ipte", pteClear: (_t, a, n, ops) => ops.ipte(a, n) });
    expect(trusted(createGatherFixture(ipte), encodedNrPages).zapFastPath()).toBe(false);
    const noGather = defineArch({ name: "ng", noGather: true, delayRmap: false, batchRmap: false });
    expect(trusted(createGatherFixture(noGather), encodedNrPages).zapFastPath()).toBe(false);
    expect(codeOf(() => gatherTrusted({ ...gatherOn(fx, encodedPage) } as MmuGather))).toBe("INVARIANT");
  });
});

describe("tlb_batch_pages_flush: chunks of ≤ 512 entries (64 KiB batch pages: 8190 entries each)", () => {
  const arch64k = defineArch({
    name: "arm64-64k",
    mergeVmas: true,
    geometry: { pageShift: 16, ptrsPerPte: 8192, pmdOrder: 13, ptrsPerPmd: 8192, ptrsPerPud: 64 },
  });
  const P64 = 1 << 16;

  it("encoded-page: 1100 pages = the bundle + chunks of 512, 512, 68; one release_pages and cond_resched each", () => {
    const fx = createGatherFixture(arch64k, 1 << 14);
    const folios = [mapAnonFolio(fx, 9), mapAnonFolio(fx, 9), mapAnonFolio(fx, 9)];
    const pfns = [...folios.flatMap((f) => Array.from({ length: 512 }, (_, i) => f.head + i))].slice(0, 1100);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedPage, { events: sink });
    g.tlbRemoveTlbEntries(0, 1100);
    for (const p of pfns) {
      g.removeRmap(p, 1);
      expect(g.removePage(p, false)).toBe(false);
    }
    expect(g.end).toBe(1100 * P64);
    g.flushMmu();
    const freed = events.filter(
      (e): e is Extract<typeof e, { type: "pagesFreed" }> => e.type === "pagesFreed",
    );
    expect(freed.map((e) => e.pfns.length)).toEqual([8, 512, 512, 68]);
    expect(freed.flatMap((e) => e.pfns)).toEqual(pfns);
    expect(freed.every((e) => e.nrs.every((n) => n === 1))).toBe(true);
    expect(events.filter((e) => e.type === "condResched")).toHaveLength(4);
    expect(g.counters).toMatchObject({
      chunksFreed: 4,
      condResched: 4,
      releaseCalls: 4,
      lruAddDrain: 4,
      pagesReleased: 1100,
      freeSwapCacheCalls: 1100,
    });
    g.finish();
  });

  it("encoded-nr-pages: 600 singles = bundle (7) + 512 + 81; folios_put_refs per 31 folios", () => {
    const fx = createGatherFixture(arch64k, 1 << 14);
    const pfns = Int32Array.from({ length: 600 }, () => mapAnonFolio(fx, 0).head);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedNrPages, { events: sink });
    g.tlbRemoveTlbEntries(0, 600);
    for (const p of pfns) {
      g.removeRmap(p, 1);
      expect(g.removePage(p, false)).toBe(false);
    }
    g.flushMmu();
    const freed = events.filter(
      (e): e is Extract<typeof e, { type: "pagesFreed" }> => e.type === "pagesFreed",
    );
    expect(freed.map((e) => e.pfns.length)).toEqual([7, 512, 81]);
    const calls = [7, 512, 81].reduce((a, n) => a + Math.ceil(n / 31), 0);
    expect(g.counters).toMatchObject({
      chunksFreed: 3,
      condResched: 3,
      releaseCalls: calls,
      lruAddDrain: 0,
      pagesReleased: 600,
      freeSwapCacheCalls: 600,
    });
    g.finish();
    for (const p of pfns) expect(fx.mem.isFree(p)).toBe(true);
  });

  it("contig-range: one folios_put_refs list per chunk of ranges", () => {
    const fx = createGatherFixture(arch64k, 1 << 14);
    const folios = Array.from({ length: 530 }, () => mapAnonFolio(fx, 1));
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, contigRange, { events: sink });
    g.enterPtl();
    g.tlbRemoveTlbEntries(0, 1060);
    for (const f of folios) {
      expect(g.removePage(f.head, false)).toBe(false);
      expect(g.removePage(f.head + 1, false)).toBe(false);
    }
    g.flushRmaps();
    g.leavePtl();
    g.flushMmu();
    const freed = events.filter(
      (e): e is Extract<typeof e, { type: "pagesFreed" }> => e.type === "pagesFreed",
    );
    // `local` moved on when its 8th range started: the 8th folio's second page opens a range in
    // the batch page, 531 ranges in all
    expect(freed.map((e) => e.pfns.length)).toEqual([8, 512, 11]);
    const nrs = freed.flatMap((e) => e.nrs);
    expect(nrs.filter((n) => n === 1)).toHaveLength(2);
    expect([nrs[7], nrs[8]]).toEqual([1, 1]);
    expect(nrs.reduce((a, b) => a + b, 0)).toBe(1060);
    expect(g.counters).toMatchObject({
      chunksFreed: 3,
      releaseCalls: 3,
      lruAddDrain: 3,
      pagesReleased: 1060,
      freeSwapCacheCalls: 531,
      entriesQueued: 531,
    });
    g.finish();
    for (const f of folios) expect(fx.mem.isFree(f.head)).toBe(true);
  });
});

describe("tlb_batch_pages_flush details", () => {
  it("batch pages left empty after a flush are skipped: one chunk per batch that holds entries", () => {
    const fx = createGatherFixture(arch);
    const g = trusted(fx, encodedPage);
    const big = mapAnonFolio(fx, 5);
    expect(g.zapPresentRunPerPageTrusted(big.head, big.head, 32, BASE, true)).toBe(32);
    g.flushMmu();
    expect(g.counters.chunksFreed).toBe(2);
    const small = mapAnonFolio(fx, 1);
    expect(g.zapPresentRunPerPageTrusted(small.head, small.head, 2, BASE, true)).toBe(2);
    g.flushMmu();
    // only `local` held entries: one more chunk, one more cond_resched
    expect([g.counters.chunksFreed, g.counters.condResched, g.counters.releaseCalls]).toEqual([3, 3, 3]);
    g.finish();
    expect(g.counters.chunksFreed).toBe(3);
  });

  it("v6.5 free_pages_and_swap_cache calls lru_add_drain() once per chunk; v6.18's never", () => {
    for (const [v, per] of [
      [encodedPage, 1],
      [encodedNrPages, 0],
    ] as const) {
      const fx = createGatherFixture(arch);
      const g = trusted(fx, v);
      const f = mapAnonFolio(fx, 4);
      const drains = fx.mem.counters.lruAddDrainCalls;
      if (v === encodedPage) g.zapPresentRunPerPageTrusted(f.head, f.head, 16, BASE, true);
      else g.zapPresentTrusted(f.head, f.head, 16, BASE, true);
      g.finish();
      expect(fx.mem.counters.lruAddDrainCalls - drains).toBe(per * g.counters.chunksFreed);
      expect(g.counters.lruAddDrain).toBe(per * g.counters.chunksFreed);
    }
  });

  it("v6.18: a chunk of exactly 31 folios is one folios_put_refs call, not two", () => {
    const fx = createGatherFixture(arch);
    const pfns = Int32Array.from({ length: 7 + 31 }, () => mapAnonFolio(fx, 0).head);
    const g = trusted(fx, encodedNrPages);
    const calls = fx.mem.counters.freeListCalls;
    expect(g.zapSinglesRunTrusted(pfns, 38, BASE)).toBe(38);
    g.finish();
    expect(g.counters).toMatchObject({ chunksFreed: 2, releaseCalls: 2, pagesReleased: 38 });
    expect(fx.mem.counters.freeListCalls - calls).toBe(2);
  });

  it("v6.18: a delayed nr_pages pair flushed, then another delayed page: the pair's rmap is not removed twice", () => {
    const fx = createGatherFixture(arch);
    const pair = mapFileFolio(fx, 2, true);
    const single = mapFileFolio(fx, 0, true);
    const g = gatherOn(fx, encodedNrPages);
    g.enterPtl();
    g.tlbRemoveTlbEntries(BASE, 5);
    expect(g.tlbDelayRmap()).toBe(true);
    g.removeFolioPages(pair.head, 4, true);
    g.flushMmuTlbonly("dirtyShared");
    g.flushRmaps();
    expect(g.tlbDelayRmap()).toBe(true);
    g.tlbRemoveTlbEntry(BASE + 4 * PAGE);
    g.removePage(single.head, true);
    g.flushMmuTlbonly("dirtyShared");
    g.flushRmaps();
    g.leavePtl();
    expect(g.counters).toMatchObject({ rmapCallsDelayed: 2, rmapPages: 5, rmapFlushes: 2 });
    expect([fx.mem.folioMapcount(pair.head), fx.mem.folioMapcount(single.head)]).toEqual([0, 0]);
    g.finish();
    fx.mem.checkInvariants();
  });
});
