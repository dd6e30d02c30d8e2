// When tlb_flush_mmu_tlbonly flushes (include/asm-generic/tlb.h, v6.18):
//     if (!(tlb->freed_tables || tlb->cleared_ptes || tlb->cleared_pmds ||
//           tlb->cleared_puds || tlb->cleared_p4ds))
//             return;
// — any one bit is enough, none means no flush. Also: what a hook outside a flush is told, the arch's
// part of pte/pmd/pud/p4d_free_tlb, rmaps delayed twice before one page flush, and the series'
// `delay_rmap` argument.

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
  defineArch,
  defineVariant,
  encodedNrPages,
  encodedPage,
  type GatherStageOps,
  type TlbFlushReason,
  type TlbLevel,
} from "../index.js";

const arch = defineArch({ name: "test-merge", mergeVmas: true });

describe("tlb_flush_mmu_tlbonly flushes when any one bit is set, and only then", () => {
  const setters: Array<[string, (ops: GatherStageOps) => void]> = [
    ["cleared_ptes", (ops) => ops.tlbFlushLevelRange("pte", 0x400000, 0x1000)],
    ["cleared_pmds", (ops) => ops.tlbFlushLevelRange("pmd", 0x400000, 0x200000)],
    ["cleared_puds", (ops) => ops.tlbFlushLevelRange("pud", 0x40000000, 0x40000000)],
    ["cleared_p4ds", (ops) => ops.tlbFlushLevelRange("p4d", 0x8000000000, 0x8000000000)],
    [
      "freed_tables",
      (ops) => {
        ops.tlbAdjustRange(0x400000, 0x1000);
        ops.setFreedTables();
      },
    ],
  ];
  for (const [bit, set] of setters)
    it(`${bit} alone`, () => {
      const fx = createGatherFixture(arch);
      const one = defineVariant(encodedNrPages, {
        name: `only-${bit}`,
        steps: {
          flushMmu(ops) {
            set(ops);
            ops.tlbFlushMmuTlbonly();
            // flushed: the range and every bit were reset
            expect(ops.view.end).toBe(0);
            ops.tlbFlushMmuTlbonly();
          },
        },
      });
      const g = gatherOn(fx, one);
      g.flushMmu();
      expect([g.counters.tlbFlushes, g.counters.tlbFlushSkipped]).toEqual([1, 1]);
      expect(g.counters.tlbFlushRange).toBe(1);
      g.finish();
    });

  it("a recorded range without any bit (tlbAdjustRange alone) is not flushed", () => {
    const fx = createGatherFixture(arch);
    const noBit = defineVariant(encodedNrPages, {
      name: "no-bit",
      steps: {
        flushMmu(ops) {
          ops.tlbAdjustRange(0x400000, 0x1000);
          ops.tlbFlushMmuTlbonly();
          // not flushed, not reset
          expect([ops.view.start, ops.view.end]).toEqual([0x400000, 0x401000]);
        },
      },
    });
    const g = gatherOn(fx, noBit);
    g.flushMmu();
    expect([g.counters.tlbFlushes, g.counters.tlbFlushSkipped]).toEqual([0, 1]);
    g.finish();
  });

  it("tlb_remove_pud_tlb_entry alone flushes with a 1 GiB stride", () => {
    const fx = createGatherFixture(arch);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedNrPages, { events: sink });
    g.tlbRemovePudTlbEntry(0x40000000);
    expect([g.clearedPtes, g.clearedPmds, g.clearedPuds]).toEqual([false, false, true]);
    g.flushMmuTlbonly();
    expect(events.filter((e) => e.type === "tlbFlushed")).toMatchObject([
      { kind: "range", start: 0x40000000, end: 0x80000000, stride: 0x40000000 },
    ]);
    g.finish();
  });
});

describe("the reason a hook sees outside a flush", () => {
  it("after tlb_flush_mmu(batchFull) returns, an arch operation issued from tableFreed says caller", () => {
    const reasons: (TlbFlushReason | null)[] = [];
    const eager = defineArch({
      name: "eager-table",
      mergeVmas: true,
      tableFreed(tlb, _level, ops) {
        reasons.push(tlb.flushReason);
        ops.flushRange(tlb.start, tlb.end, 4096, true);
      },
    });
    const fx = createGatherFixture(eager);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedPage, { events: sink });
    const f = mapAnonFolio(fx, 0);
    g.tlbRemoveTlbEntry(0x400000);
    g.removeRmap(f.head, 1);
    g.removePage(f.head, false);
    g.flushMmu("batchFull");
    g.flushMmuTlbonly("dirtyShared");
    g.pteFreeTlb(fx.mem.allocFolio(0), 0x400000);
    g.finish();
    expect(reasons).toEqual([null]);
    expect(events.filter((e) => e.type === "tlbFlushed").map((e) => e.reason)).toEqual([
      "batchFull",
      "caller",
      "finish",
    ]);
  });

  it("tlb_remove_table_one's invalidate says tableFree; a later hook outside any flush says caller again", () => {
    const eager = defineArch({
      name: "eager-table",
      mergeVmas: true,
      tableFreed(tlb, _level, ops) {
        ops.flushRange(tlb.start, tlb.end, 4096, true);
      },
    });
    const fx = createGatherFixture(eager);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, encodedNrPages, { events: sink, alloc: (_o, what) => what !== "tables" });
    // no table batch: each table is freed at once after a tableFree invalidate
    g.pteFreeTlb(fx.mem.allocFolio(0), 0x400000);
    g.pteFreeTlb(fx.mem.allocFolio(0), 0x600000);
    expect(events.filter((e) => e.type === "tlbFlushed").map((e) => e.reason)).toEqual([
      "caller",
      "tableFree",
      "caller",
      "tableFree",
    ]);
    expect(g.counters.tableSyncOne).toBe(2);
    g.finish();
  });
});

describe("the arch's part of *_free_tlb", () => {
  it("tableFreed hears each level, after the generic range update", () => {
    const heard: Array<[TlbLevel, boolean, number]> = [];
    const a = defineArch({
      name: "hear",
      mergeVmas: true,
      tableFreed(tlb, level) {
        heard.push([level, tlb.freedTables, tlb.end]);
      },
    });
    const fx = createGatherFixture(a);
    const g = gatherOn(fx, encodedNrPages);
    g.pteFreeTlb(fx.mem.allocFolio(0), 0x1000);
    g.pmdFreeTlb(fx.mem.allocFolio(0), 0x2000);
    g.pudFreeTlb(fx.mem.allocFolio(0), 0x3000);
    g.p4dFreeTlb(fx.mem.allocFolio(0), 0x4000);
    g.finish();
    expect(heard).toEqual([
      ["pte", true, 0x2000],
      ["pmd", true, 0x3000],
      ["pud", true, 0x4000],
      ["p4d", true, 0x5000],
    ]);
    expect(g.counters).toMatchObject({ tablesQueued: 4, tablesFreed: 4, tableBatchAllocated: 1 });
  });
});

describe("delayed rmaps flushed twice before the pages are freed", () => {
  for (const v of [encodedPage, encodedNrPages])
    it(`${v.name}: the second tlb_flush_rmaps removes only the newly delayed rmap`, () => {
      const fx = createGatherFixture(arch);
      const a = mapFileFolio(fx, 0, true);
      const b = mapFileFolio(fx, 0, true);
      const g = gatherOn(fx, v);
      g.enterPtl();
      g.tlbRemoveTlbEntry(0x400000);
      expect(g.tlbDelayRmap()).toBe(true);
      g.removePage(a.head, true);
      g.flushMmuTlbonly("dirtyShared");
      g.flushRmaps();
      g.tlbRemoveTlbEntry(0x401000);
      expect(g.tlbDelayRmap()).toBe(true);
      g.removePage(b.head, true);
      g.flushMmuTlbonly("dirtyShared");
      g.flushRmaps();
      g.leavePtl();
      expect([fx.mem.folioMapcount(a.head), fx.mem.folioMapcount(b.head)]).toEqual([0, 0]);
      expect(g.counters).toMatchObject({ rmapFlushes: 2, rmapCallsDelayed: 2, rmapPages: 2 });
      g.finish();
      fx.mem.checkInvariants();
    });
});

describe("the series: delay_rmap is meaningless (every rmap is batched)", () => {
  it("contig-range accepts delay_rmap without tlb_delay_rmap and defers like any page", () => {
    const fx = createGatherFixture(arch);
    const f = mapFileFolio(fx, 0, true);
    const { events, sink } = recordEvents();
    const g = gatherOn(fx, contigRange, { events: sink });
    g.enterPtl();
    g.tlbRemoveTlbEntry(0x400000);
    expect(g.removePage(f.head, true)).toBe(false);
    expect(events.at(-1)).toEqual({ type: "pageQueued", pfn: f.head, nr: 1, delayRmap: true });
    g.flushMmuTlbonly("dirtyShared");
    g.flushRmaps();
    expect(fx.mem.folioMapcount(f.head)).toBe(0);
    g.leavePtl();
    g.finish();
  });
});
