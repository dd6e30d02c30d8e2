// The arch flush hook is told why it runs and what range (issue: hooks), and the gather's stage
// operations can reset or reshape the range and the freed_tables / cleared_* bits, as
// __tlb_reset_range, __tlb_adjust_range, tlb_flush_{pte,pmd,pud,p4d}_range and `freed_tables = 1` do
// in include/asm-generic/tlb.h (v6.18).

import { createGatherFixture, gatherOn, mapAnonFolio, mapFileFolio, zapFolios } from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import {
  createTlbMm,
  defineArch,
  defineVariant,
  encodedNrPages,
  encodedPage,
  type GatherStageOps,
  type GatherView,
  isGatherError,
  type TlbFlushReason,
} from "../index.js";

interface Seen {
  readonly reason: TlbFlushReason | null;
  readonly start: number;
  readonly end: number;
  readonly freedTables: boolean;
  readonly clearedPtes: boolean;
}

/** An asm-generic arch whose tlb_flush records what it was told. */
function recordingArch(opts: { mergeVmas?: boolean } = {}) {
  const seen: Seen[] = [];
  const arch = defineArch({
    name: "recording",
    mergeVmas: opts.mergeVmas === true,
    tlbFlush(tlb: GatherView, ops) {
      seen.push({
        reason: tlb.flushReason,
        start: tlb.start,
        end: tlb.end,
        freedTables: tlb.freedTables,
        clearedPtes: tlb.clearedPtes,
      });
      if (tlb.fullmm) ops.flushMm(tlb.freedTables);
      else if (tlb.end > 0) ops.flushRange(tlb.start, tlb.end, 4096, tlb.freedTables);
    },
  });
  return { arch, seen };
}

const NO_FLAGS = { exec: false, huge: false, pfnmap: false };

describe("the arch flush hook is told why it runs and what range", () => {
  it("end of VMA: the VMA's range, reason endVma; outside a flush the reason is null", () => {
    const { arch, seen } = recordingArch();
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 2);
    const g = gatherOn(fx, encodedNrPages);
    expect(g.flushReason).toBeNull();
    g.tlbStartVma(NO_FLAGS);
    zapFolios(g, [f], 0x400000);
    g.tlbEndVma(NO_FLAGS);
    expect(seen).toEqual([
      { reason: "endVma", start: 0x400000, end: 0x400000 + 4 * 4096, freedTables: false, clearedPtes: true },
    ]);
    expect(g.flushReason).toBeNull();
    g.finish();
    // Nothing left to flush at tlb_finish_mmu: the end-of-VMA flush reset the range.
    expect(seen).toHaveLength(1);
  });

  it("tlb_flush_mmu_pfnmap: after a VM_PFNMAP VMA on a MERGE_VMAS arch, one flush of its range, reason pfnmap, then vma_pfn is clear", () => {
    const { arch, seen } = recordingArch({ mergeVmas: true });
    const fx = createGatherFixture(arch);
    const g = gatherOn(fx, encodedNrPages);
    // A plain VMA: nothing recorded for pfnmap, so the call flushes nothing.
    g.tlbStartVma(NO_FLAGS);
    g.tlbEndVma(NO_FLAGS);
    g.tlbFlushMmuPfnmap();
    expect(seen).toEqual([]);
    expect(g.counters.tlbFlushSkipped).toBe(0);
    const pfnmap = { ...NO_FLAGS, pfnmap: true };
    g.tlbStartVma(pfnmap);
    g.ptepGetAndClear(0x600000, 1);
    g.tlbRemoveTlbEntry(0x600000);
    g.tlbEndVma(pfnmap); // MERGE_VMAS: no flush here
    expect(seen).toEqual([]);
    expect(g.vmaPfn).toBe(true);
    g.tlbFlushMmuPfnmap();
    expect(seen).toEqual([
      { reason: "pfnmap", start: 0x600000, end: 0x601000, freedTables: false, clearedPtes: true },
    ]);
    expect(g.vmaPfn).toBe(false);
    g.tlbFlushMmuPfnmap(); // cleared: a no-op
    expect(seen).toHaveLength(1);
    g.finish();
    expect(seen).toHaveLength(1);
  });

  it("a dirty shared page forces a flush before the lock drops: reason dirtyShared; the rest at finish", () => {
    const { arch, seen } = recordingArch({ mergeVmas: true });
    const fx = createGatherFixture(arch);
    const file = mapFileFolio(fx, 0, true);
    const anon = mapAnonFolio(fx, 0);
    const g = gatherOn(fx, encodedPage);
    zapFolios(g, [file], 0x400000);
    zapFolios(g, [anon], 0x600000);
    g.finish();
    expect(seen.map((s) => s.reason)).toEqual(["dirtyShared", "finish"]);
    expect(seen[0]).toMatchObject({ start: 0x400000, end: 0x401000 });
    expect(seen[1]).toMatchObject({ start: 0x600000, end: 0x601000 });
  });

  it("a full gather forces a flush: reason batchFull", () => {
    const { arch, seen } = recordingArch({ mergeVmas: true });
    const fx = createGatherFixture(arch);
    // No batch page can be allocated: the 8-entry on-stack bundle fills after 8 pages.
    const folios = Array.from({ length: 9 }, () => mapAnonFolio(fx, 0));
    const g = gatherOn(fx, encodedPage, { alloc: () => false });
    zapFolios(g, folios);
    g.finish();
    expect(seen.map((s) => s.reason)).toEqual(["batchFull", "finish"]);
    expect(seen[0]).toMatchObject({ start: 0x400000, end: 0x400000 + 8 * 4096 });
  });

  it("page tables: the invalidate before a table batch is freed says tableFree", () => {
    const { arch, seen } = recordingArch({ mergeVmas: true });
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 0);
    const table = fx.mem.allocFolio(0);
    const g = gatherOn(fx, encodedNrPages);
    zapFolios(g, [f]);
    g.pteFreeTlb(table, 0x400000);
    g.finish();
    // tlb_flush_mmu: the TLB flush (freed_tables set), then tlb_table_flush's invalidate finds the
    // range already flushed and reset: nothing more to do.
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ reason: "finish", freedTables: true });
    // An arch whose table batch is flushed on its own (a variant flushing tables first) is told why.
    const { arch: arch2, seen: seen2 } = recordingArch({ mergeVmas: true });
    const fx2 = createGatherFixture(arch2);
    const tablesFirst = defineVariant(encodedNrPages, {
      name: "tables-first",
      steps: {
        flushMmu(ops) {
          ops.tlbTableFlush();
          ops.tlbFlushMmuTlbonly();
          ops.tlbBatchPagesFlush();
        },
      },
    });
    const g2 = gatherOn(fx2, tablesFirst);
    g2.pteFreeTlb(fx2.mem.allocFolio(0), 0x400000);
    g2.finish();
    expect(seen2.map((s) => s.reason)).toEqual(["tableFree"]);
  });

  it("two gathers on one mm: the first to finish sees the other pending and says nested; the last says finish", () => {
    const { arch, seen } = recordingArch({ mergeVmas: true });
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 0);
    const a = gatherOn(fx, encodedNrPages);
    const b = gatherOn(fx, encodedNrPages);
    zapFolios(b, [f]);
    a.finish();
    b.finish();
    // a cleared nothing itself, but the nested rule flushes the whole mm (b's cleared PTE included).
    expect(seen.map((s) => s.reason)).toEqual(["nested", "finish"]);
  });

  it("a caller's flush says what the caller says (default caller); an unknown reason is refused", () => {
    const { arch, seen } = recordingArch({ mergeVmas: true });
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 0);
    const g = gatherOn(fx, encodedNrPages);
    zapFolios(g, [f]);
    g.flushMmuTlbonly();
    expect(seen.map((s) => s.reason)).toEqual(["caller"]);
    let code = "";
    try {
      g.flushMmu("because" as TlbFlushReason);
    } catch (e) {
      code = isGatherError(e) ? e.code : "untyped";
    }
    expect(code).toBe("BAD_ARGUMENT");
    g.finish();
  });

  it("s390-style pteClear hooks see pteClear", () => {
    const reasons: (TlbFlushReason | null)[] = [];
    const arch = defineArch({
      name: "ipte-like",
      noGather: true,
      delayRmap: false,
      batchRmap: false,
      pteClear(tlb, addr, nr, ops) {
        reasons.push(tlb.flushReason);
        ops.ipte(addr, nr);
      },
    });
    const fx = createGatherFixture(arch);
    const g = gatherOn(fx, encodedNrPages);
    zapFolios(g, [mapAnonFolio(fx, 0)]);
    g.finish();
    expect(reasons).toEqual(["pteClear"]);
  });
});

describe("stage operations reshape the range and bits", () => {
  it("tlbResetRange empties the range and clears freed_tables / cleared_*: the next flush is skipped", () => {
    const { arch, seen } = recordingArch({ mergeVmas: true });
    const fx = createGatherFixture(arch);
    const resetFirst = defineVariant(encodedNrPages, {
      name: "reset-before-flush",
      steps: {
        flushMmu(ops) {
          ops.tlbResetRange();
          ops.tlbFlushMmuTlbonly();
          ops.tlbTableFlush();
          ops.tlbBatchPagesFlush();
        },
      },
    });
    const g = gatherOn(fx, resetFirst);
    zapFolios(g, [mapAnonFolio(fx, 0)]);
    g.pteFreeTlb(fx.mem.allocFolio(0), 0x400000);
    const skipped0 = g.counters.tlbFlushSkipped;
    g.finish();
    expect(seen).toEqual([]);
    expect(g.counters.tlbFlushSkipped).toBeGreaterThan(skipped0);
  });

  it("tlbAdjustRange widens the range; tlbFlushLevelRange sets that level's bit; setFreedTables the walk-cache bit", () => {
    const { arch, seen } = recordingArch({ mergeVmas: true });
    const fx = createGatherFixture(arch);
    const widen = defineVariant(encodedNrPages, {
      name: "widen",
      steps: {
        flushMmu(ops) {
          ops.tlbAdjustRange(0x200000, 0x1000);
          ops.tlbFlushLevelRange("pmd", 0x800000, 0x200000);
          ops.setFreedTables();
          expect(ops.view).toMatchObject({
            start: 0x200000,
            end: 0xa00000,
            clearedPmds: true,
            freedTables: true,
          });
          ops.tlbFlushMmuTlbonly();
          ops.tlbTableFlush();
          ops.tlbBatchPagesFlush();
        },
      },
    });
    const g = gatherOn(fx, widen);
    zapFolios(g, [mapAnonFolio(fx, 0)]);
    g.finish();
    expect(seen).toEqual([
      { reason: "finish", start: 0x200000, end: 0xa00000, freedTables: true, clearedPtes: true },
    ]);
  });

  it("refuses an empty or out-of-range span and an unknown level with a typed error", () => {
    const fx = createGatherFixture(recordingArch().arch);
    const codes: string[] = [];
    const tryStep = (f: (ops: GatherStageOps) => void) => {
      const v = defineVariant(encodedNrPages, { name: "bad", steps: { flushMmu: f } });
      const g = gatherOn(fx, v);
      try {
        g.flushMmu();
      } catch (e) {
        codes.push(isGatherError(e) ? e.code : "untyped");
      }
    };
    tryStep((ops) => ops.tlbAdjustRange(0x1000, 0));
    tryStep((ops) => ops.tlbAdjustRange(-4096, 4096));
    tryStep((ops) => ops.tlbAdjustRange(createTlbMm(1).id * 2 ** 60, 4096));
    tryStep((ops) => ops.tlbFlushLevelRange("pgd" as "pte", 0x1000, 0x1000));
    expect(codes).toEqual(["BAD_ARGUMENT", "BAD_ARGUMENT", "BAD_ARGUMENT", "BAD_ARGUMENT"]);
  });
});
