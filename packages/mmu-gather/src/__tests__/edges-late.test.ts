// Edges the mutation run of 2026-12-07 left open: createTlbMm's defaults, the user-address bounds
// of the stage operations, *_free_tlb's pfn check, the reason of a whole-mm / IDTE flush issued
// outside tlb_flush, a step that frees a table at once, NO_GATHER folio runs on the trusted path, and
// 7.x's spare slot taking one single page and no more.

import { gatherTrusted } from "@mmgather/mmu-gather/internal";
import { createGatherFixture, gatherOn, mapAnonFolio, recordEvents } from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import {
  createTlbMm,
  defineArch,
  defineVariant,
  encodedNrPages,
  type GatherStageOps,
  isGatherError,
} from "../index.js";

const arch = defineArch({ name: "test-merge", mergeVmas: true });

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isGatherError(e) ? `${e.method}:${e.code}` : "untyped";
  }
  return "none";
}

describe("late edges", () => {
  it("createTlbMm: nothing pending, no CPU has the mm, no notifier subscriber, ids distinct unless given", () => {
    const a = createTlbMm();
    const b = createTlbMm();
    expect(b.id).not.toBe(a.id);
    expect({ ...a, id: 0 }).toEqual({
      id: 0,
      tlbFlushPending: 0,
      flushMm: false,
      attachedElsewhere: false,
      cpumask: [],
      lazyCpus: [],
      hasNotifiers: false,
    });
    expect(createTlbMm(42).id).toBe(42);
  });

  it("stage ranges: integers only; a range may end exactly at TASK_SIZE", () => {
    const fx = createGatherFixture(arch);
    const run = (step: (ops: GatherStageOps) => void) => {
      const g = gatherOn(fx, defineVariant(encodedNrPages, { name: "s", steps: { flushMmu: step } }));
      return codeOf(() => g.flushMmu());
    };
    const top = arch.geometry.taskSize;
    expect(run((ops) => ops.tlbAdjustRange(0.5, 4096))).toBe("tlbAdjustRange:BAD_ARGUMENT");
    expect(run((ops) => ops.tlbAdjustRange(0, 4096.5))).toBe("tlbAdjustRange:BAD_ARGUMENT");
    expect(run((ops) => ops.tlbAdjustRange(top - 4096, 4096))).toBe("none");
    expect(run((ops) => ops.tlbAdjustRange(top - 4096, 8192))).toBe("tlbAdjustRange:BAD_ARGUMENT");
  });

  it("pte_free_tlb of something that is not a pfn is refused before any state changes", () => {
    const fx = createGatherFixture(arch);
    const g = gatherOn(fx, encodedNrPages);
    expect(codeOf(() => g.pteFreeTlb(-1, 0x400000))).toBe("pteFreeTlb:BAD_PFN");
    expect(codeOf(() => g.pmdFreeTlb(2 ** 29, 0x400000))).toBe("pmdFreeTlb:BAD_PFN");
    expect([g.end, g.freedTables, g.counters.tablesQueued]).toEqual([0, false, 0]);
    g.finish();
  });

  it("a whole-mm flush or IDTE issued from tableFreed (outside tlb_flush) says caller", () => {
    const a = defineArch({
      name: "eager",
      mergeVmas: true,
      tableFreed(_tlb, level, ops) {
        if (level === "pte") ops.flushMm(true);
        else ops.idte();
      },
    });
    const fx = createGatherFixture(a);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedNrPages, { events: sink });
    g.flushMmu("batchFull");
    g.pteFreeTlb(fx.mem.allocFolio(0), 0x400000);
    g.pmdFreeTlb(fx.mem.allocFolio(0), 0x400000);
    const outside = events.filter((e) => e.type === "tlbFlushed" && (e.kind === "mm" || e.kind === "idte"));
    expect(outside.map((e) => (e.type === "tlbFlushed" ? [e.kind, e.reason] : []))).toEqual([
      ["mm", "caller"],
      ["idte", "caller"],
    ]);
    g.finish();
  });

  it("a step that frees a table at once (no batching) emits tablesFreed and frees it", () => {
    const fx = createGatherFixture(arch);
    const now = defineVariant(encodedNrPages, {
      name: "table-now",
      steps: { removeTable: (ops, pfn) => ops.freeTableNow(pfn) },
    });
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, now, { events: sink });
    const t = fx.mem.allocFolio(0);
    g.pteFreeTlb(t, 0x400000);
    expect(fx.mem.isFree(t)).toBe(true);
    expect(events.at(-1)).toEqual({ type: "tablesFreed", pfns: [t], viaRcu: false });
    expect(g.counters).toMatchObject({ tablesQueued: 1, tablesFreed: 1, tableBatchAllocated: 0 });
    g.finish();
  });

  it("NO_GATHER takes a folio run on the trusted path too", () => {
    const ng = defineArch({ name: "ng", noGather: true, delayRmap: false, batchRmap: false });
    const fx = createGatherFixture(ng);
    const f = mapAnonFolio(fx, 2);
    const g = gatherTrusted(gatherOn(fx, encodedNrPages));
    g.tlbRemoveTlbEntries(0x400000, 4);
    g.removeRmap(f.head, 4);
    expect(g.removeFolioPagesTrusted(f.head, 4, false)).toBe(false);
    expect(fx.mem.isFree(f.head)).toBe(true);
    g.finish();
  });

  it("7.x: after 'full', the spare slot takes one single page; the next one overflows", () => {
    const fx = createGatherFixture(arch);
    const heads = Array.from({ length: 9 }, () => mapAnonFolio(fx, 0).head);
    const g = gatherOn(fx, encodedNrPages, { alloc: () => false });
    g.tlbRemoveTlbEntries(0x400000, 9);
    const full = heads.slice(0, 8).map((h) => {
      g.removeRmap(h, 1);
      return g.removePage(h, false);
    });
    expect(full).toEqual([false, false, false, false, false, false, true, true]);
    g.removeRmap(heads[8], 1);
    expect(codeOf(() => g.removePage(heads[8], false))).toBe("add:BATCH_OVERFLOW");
    expect(g.queuedEntries).toBe(8);
    g.flushMmu("batchFull");
    g.tlbRemoveTlbEntry(0x500000);
    expect(g.removePage(heads[8], false)).toBe(false);
    g.finish();
    for (const h of heads) expect(fx.mem.isFree(h)).toBe(true);
  });
});
