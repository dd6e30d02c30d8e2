// Page-table pages are freed only after every TLB has dropped the walk-cache entries that reach them:
// tlb_table_flush → tlb_table_invalidate (a flush with freed_tables set) → free / call_rcu, and
// tlb_remove_table_one when no table batch can be allocated → tlb_table_invalidate,
// tlb_remove_table_sync_one, free now (mm/mmu_gather.c, v6.18). Each flush resets the range.

import { createGatherFixture, gatherOn, mapAnonFolio, recordEvents, zapFolios } from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import { defineArch, encodedNrPages, type GatherEvent, maxTableBatch } from "../index.js";

const arch = defineArch({ name: "test-generic", mergeVmas: true });

/** Index of the first event matching `p`, or -1. */
const at = (ev: GatherEvent[], p: (e: GatherEvent) => boolean) => ev.findIndex(p);

describe("freeing page tables", () => {
  it("no table batch page (GFP_NOWAIT fails): invalidate walk caches, sync, free that table at once", () => {
    const fx = createGatherFixture(arch);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedNrPages, { alloc: (_n, what) => what !== "tables", events: sink });
    zapFolios(g, [mapAnonFolio(fx, 0)]);
    const table = fx.mem.allocFolio(0);
    g.pteFreeTlb(table, 0x400000);
    // Freed before the gather finishes, after a flush that covers the walk caches.
    expect(fx.mem.isFree(table)).toBe(true);
    expect(g.counters.tableSyncOne).toBe(1);
    expect(g.counters.tableBatchAllocFailed).toBe(1);
    const flush = at(events, (e) => e.type === "tlbFlushed" && e.walkCaches);
    const freed = at(events, (e) => e.type === "tablesFreed");
    expect(flush).toBeGreaterThanOrEqual(0);
    expect(flush).toBeLessThan(freed);
    expect(events[freed]).toMatchObject({ pfns: [table], viaRcu: false });
    expect(events.find((e) => e.type === "forcedFlush")).toMatchObject({ reason: "tableAllocFailed" });
    // The invalidate reset the range: nothing left for tlb_finish_mmu to flush.
    expect([g.end, g.freedTables, g.clearedPtes]).toEqual([0, false, false]);
    const flushes = g.counters.tlbFlushes;
    g.finish();
    expect(g.counters.tlbFlushes).toBe(flushes);
  });

  it("a full table batch: invalidate walk caches, then free (RCU) the whole batch, before the gather ends", () => {
    const fx = createGatherFixture(arch);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedNrPages, { events: sink });
    const max = maxTableBatch(12, true);
    const tables = Array.from({ length: max }, () => fx.mem.allocFolio(0));
    tables.forEach((t, i) => {
      g.pteFreeTlb(t, 0x400000 + i * 0x200000);
    });
    expect(tables.every((t) => fx.mem.isFree(t))).toBe(true);
    const flush = at(events, (e) => e.type === "tlbFlushed" && e.walkCaches);
    const freed = at(events, (e) => e.type === "tablesFreed");
    expect(flush).toBeGreaterThanOrEqual(0);
    expect(flush).toBeLessThan(freed);
    expect(events[freed]).toMatchObject({ viaRcu: true });
    expect((events[freed] as unknown as { pfns: number[] }).pfns).toHaveLength(max);
    expect(events.find((e) => e.type === "forcedFlush")).toMatchObject({ reason: "tableBatchFull" });
    expect([g.end, g.freedTables]).toEqual([0, false]);
    g.finish();
  });

  it("an arch that needs no table invalidate frees a full batch with no extra flush", () => {
    const noInval = defineArch({ name: "no-table-invalidate", mergeVmas: true, tableInvalidate: false });
    const fx = createGatherFixture(noInval);
    const g = gatherOn(fx, encodedNrPages);
    const max = maxTableBatch(12, true);
    for (let i = 0; i < max; i++) g.pteFreeTlb(fx.mem.allocFolio(0), 0x400000 + i * 0x200000);
    expect(g.counters.tlbFlushes).toBe(0);
    expect(g.counters.tablesFreed).toBe(max);
    g.finish();
    // The final flush still covers what the tables mapped.
    expect(g.counters.tlbFlushes).toBe(1);
  });
});
