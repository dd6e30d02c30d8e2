// The variant table and its look-ups: which kernel each variant follows and what differs between
// them (mm/swap_state.c free_pages_and_swap_cache, mm/memory.c zap_pte_range, mm/mmu_gather.c
// tlb_next_batch / tlb_delay_rmap / tlb_batch_rmap), and typed errors for unknown names.

import { createGatherFixture, gatherOn, mapAnonFolio, zapFolios } from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import {
  contigRange,
  defaultFinishMmu,
  defaultFlushMmu,
  defaultSteps,
  defineArch,
  defineVariant,
  encodedNrPages,
  encodedNrPagesFor,
  encodedNrPagesV69,
  encodedPage,
  type GatherStageOps,
  type GatherSteps,
  getVariant,
  isGatherError,
  NR_PAGES_KERNELS,
  variants,
} from "../index.js";

function errorOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (isGatherError(e)) return { code: e.code, message: e.message };
    return { code: "untyped", message: String(e) };
  }
  return { code: "none", message: "" };
}

describe("encodedNrPagesFor: the nr-pages design under one kernel's rules", () => {
  it("6.18 by default, 6.9 on request", () => {
    expect(NR_PAGES_KERNELS).toEqual(["6.9", "6.18"]);
    expect(encodedNrPagesFor()).toBe(encodedNrPages);
    expect(encodedNrPagesFor("6.18")).toBe(encodedNrPages);
    expect(encodedNrPagesFor("6.9")).toBe(encodedNrPagesV69);
  });

  it("an unknown kernel is BAD_VARIANT, naming the kernels it knows", () => {
    for (const k of ["6.10", "7.0", "", "6.9 "]) {
      const e = errorOf(() => encodedNrPagesFor(k as "6.9"));
      expect(e.code).toBe("BAD_VARIANT");
      expect(e.message).toContain(`unknown kernel "${k}"`);
      expect(e.message).toContain("expected one of 6.9, 6.18");
    }
  });

  it("v6.9 differs from v6.18 only where the kernels do: lru_add_drain on free, one swap PTE at a time", () => {
    expect(encodedNrPagesV69.name).toBe("encoded-nr-pages@6.9");
    expect(encodedNrPagesV69.storage).toBe("encoded-nr-pages");
    expect(encodedNrPagesV69.steps).toEqual(encodedNrPages.steps);
    expect(encodedNrPagesV69.policy).toEqual({
      ...encodedNrPages.policy,
      lruAddDrainOnFree: true,
      walkBatchesSwapPtes: false,
      kernel: "6.9",
    });
    expect(encodedNrPages.policy.lruAddDrainOnFree).toBe(false);
    expect(encodedNrPages.policy.walkBatchesSwapPtes).toBe(true);
    expect(Object.isFrozen(encodedNrPagesV69) && Object.isFrozen(encodedNrPagesV69.policy)).toBe(true);
  });

  it("v6.9's free_pages_and_swap_cache drains the LRU-add batch once per chunk; v6.18's does not", () => {
    const arch = defineArch({ name: "t", mergeVmas: true });
    const drains = (v: typeof encodedNrPages) => {
      const fx = createGatherFixture(arch);
      const folios = Array.from({ length: 20 }, () => mapAnonFolio(fx, 0));
      const g = gatherOn(fx, v);
      zapFolios(g, folios);
      g.finish();
      return [g.counters.chunksFreed, g.counters.lruAddDrain];
    };
    expect(drains(encodedNrPagesV69)).toEqual([2, 2]);
    expect(drains(encodedNrPages)).toEqual([2, 0]);
  });
});

describe("getVariant and the variant table", () => {
  it("each name gives its variant; an unknown one is BAD_VARIANT", () => {
    expect(Object.keys(variants)).toEqual(["encoded-page", "contig-range", "encoded-nr-pages"]);
    for (const [name, v] of Object.entries(variants)) {
      expect(getVariant(name as keyof typeof variants)).toBe(v);
      expect(v.name).toBe(name);
      expect(v.storage).toBe(name);
    }
    expect(variants["encoded-page"]).toBe(encodedPage);
    expect(variants["contig-range"]).toBe(contigRange);
    expect(variants["encoded-nr-pages"]).toBe(encodedNrPages);
    for (const bad of ["encoded-nr-pages@6.9", "", "ENCODED-PAGE"]) {
      const e = errorOf(() => getVariant(bad as "encoded-page"));
      expect(e.code).toBe("BAD_VARIANT");
      expect(e.message).toContain(`unknown variant "${bad}"`);
    }
    expect(Object.isFrozen(variants)).toBe(true);
  });

  it("the policies follow their kernels", () => {
    // mm-unstable of August 2023: page_remove_rmap per page, lru_add_drain in
    // free_pages_and_swap_cache, a per-PTE walk; the series defers every rmap to tlb_flush_rmaps.
    expect(encodedPage.policy).toEqual({
      deferAllRmaps: false,
      walkBatchesFolioPtes: false,
      immediateRmap: "pageRemoveRmap",
      lruAddDrainOnFree: true,
      limitBatchesWhileDelayed: true,
      walkBatchesSwapPtes: false,
      capBatchCount: true,
      condReschedPerChunk: true,
      kernel: "mm-unstable-2023-08",
    });
    expect(contigRange.policy).toEqual({
      ...encodedPage.policy,
      deferAllRmaps: true,
      limitBatchesWhileDelayed: false,
    });
    expect(encodedNrPages.policy).toEqual({
      deferAllRmaps: false,
      walkBatchesFolioPtes: true,
      immediateRmap: "folioRemoveRmapPtes",
      lruAddDrainOnFree: false,
      limitBatchesWhileDelayed: true,
      walkBatchesSwapPtes: true,
      capBatchCount: true,
      condReschedPerChunk: true,
      kernel: "6.18",
    });
    for (const v of [encodedPage, contigRange, encodedNrPages])
      expect(Object.isFrozen(v) && Object.isFrozen(v.policy) && Object.isFrozen(v.steps)).toBe(true);
    expect(encodedPage.steps).toBe(defaultSteps);
    expect(encodedNrPages.steps).toBe(defaultSteps);
    expect(contigRange.steps.flushMmu).toBe(defaultFlushMmu);
    expect(contigRange.steps.finishMmu).toBe(defaultFinishMmu);
  });
});

/** A GatherStageOps that records the calls made on it. */
function recordingOps(nested = false): { ops: GatherStageOps; calls: string[] } {
  const calls: string[] = [];
  const rec =
    (name: string, ret?: unknown) =>
    (...args: unknown[]) => {
      calls.push(args.length > 0 ? `${name}(${args.join(",")})` : name);
      return ret;
    };
  const ops = {
    tlbFlushMmuTlbonly: rec("tlbFlushMmuTlbonly"),
    tlbTableFlush: rec("tlbTableFlush"),
    tlbBatchPagesFlush: rec("tlbBatchPagesFlush"),
    tlbFlushRmapsStorage: rec("tlbFlushRmapsStorage"),
    mmTlbFlushNested: rec("mmTlbFlushNested", nested),
    forceFlushAll: rec("forceFlushAll"),
    tlbBatchListFree: rec("tlbBatchListFree"),
    decTlbFlushPending: rec("decTlbFlushPending"),
    setDelayedRmap: rec("setDelayedRmap"),
    tlbRemoveTable: rec("tlbRemoveTable"),
  } as unknown as GatherStageOps;
  return { ops, calls };
}

describe("the steps (mm/mmu_gather.c order)", () => {
  it("tlb_flush_mmu: TLB, then tables, then pages", () => {
    const { ops, calls } = recordingOps();
    defaultFlushMmu(ops);
    expect(calls).toEqual(["tlbFlushMmuTlbonly", "tlbTableFlush", "tlbBatchPagesFlush"]);
  });

  it("tlb_finish_mmu: the nested rule first (only when nested), one flush, list free, dec pending", () => {
    for (const nested of [false, true]) {
      const { ops, calls } = recordingOps(nested);
      defaultFinishMmu(ops, () => calls.push("flushMmu"));
      expect(calls).toEqual([
        "mmTlbFlushNested",
        ...(nested ? ["forceFlushAll"] : []),
        "flushMmu",
        "tlbBatchListFree",
        "decTlbFlushPending",
      ]);
    }
  });

  it("tlb_delay_rmap sets delayed_rmap only when the arch allows; the series' only answers", () => {
    for (const allows of [false, true]) {
      const a = recordingOps();
      expect(defaultSteps.tlbDelayRmap(a.ops, allows)).toBe(allows);
      expect(a.calls).toEqual(allows ? ["setDelayedRmap"] : []);
      const b = recordingOps();
      expect(contigRange.steps.tlbDelayRmap(b.ops, allows)).toBe(allows);
      expect(b.calls).toEqual([]);
    }
  });

  it("tlb_flush_rmaps walks the storage; __pte_free_tlb hands the table to tlb_remove_table", () => {
    const { ops, calls } = recordingOps();
    defaultSteps.flushRmaps(ops);
    defaultSteps.removeTable(ops, 42);
    expect(calls).toEqual(["tlbFlushRmapsStorage", "tlbRemoveTable(42)"]);
  });
});

describe("defineVariant", () => {
  it("replaces the named policies and steps, keeps the rest and the storage; the result is frozen", () => {
    const flushMmu: GatherSteps["flushMmu"] = (ops) => ops.tlbBatchPagesFlush();
    const v = defineVariant(contigRange, {
      name: "x",
      policy: { condReschedPerChunk: false },
      steps: { flushMmu },
    });
    expect(v.name).toBe("x");
    expect(v.storage).toBe("contig-range");
    expect(v.policy).toEqual({ ...contigRange.policy, condReschedPerChunk: false });
    expect(v.steps.flushMmu).toBe(flushMmu);
    expect(v.steps.tlbDelayRmap).toBe(contigRange.steps.tlbDelayRmap);
    expect(v.steps.finishMmu).toBe(contigRange.steps.finishMmu);
    expect(Object.isFrozen(v) && Object.isFrozen(v.policy) && Object.isFrozen(v.steps)).toBe(true);
    // the base is untouched
    expect(contigRange.policy.condReschedPerChunk).toBe(true);
    // no name: the base's
    expect(defineVariant(encodedPage, {}).name).toBe("encoded-page");
  });

  it("a step that is not a function is BAD_VARIANT, naming the step", () => {
    for (const k of ["flushMmu", "finishMmu", "tlbDelayRmap", "flushRmaps", "removeTable"] as const) {
      const e = errorOf(() =>
        defineVariant(encodedPage, { steps: { [k]: 1 } as unknown as Partial<GatherSteps> }),
      );
      expect(e.code).toBe("BAD_VARIANT");
      expect(e.message).toContain(`step ${k} must be a function`);
    }
  });

  it("a variant without cond_resched per chunk counts none", () => {
    const arch = defineArch({ name: "t", mergeVmas: true });
    const fx = createGatherFixture(arch);
    const noResched = defineVariant(encodedNrPages, {
      name: "no-resched",
      policy: { condReschedPerChunk: false },
    });
    const g = gatherOn(fx, noResched);
    zapFolios(
      g,
      Array.from({ length: 20 }, () => mapAnonFolio(fx, 0)),
    );
    g.finish();
    expect([g.counters.chunksFreed, g.counters.condResched]).toEqual([2, 0]);
  });

  it("a variant without the batch-count cap keeps allocating batch pages past MAX_GATHER_BATCH_COUNT", () => {
    const arch = defineArch({ name: "t", mergeVmas: true });
    const fx = createGatherFixture(arch);
    const uncapped = defineVariant(encodedPage, { name: "uncapped", policy: { capBatchCount: false } });
    const g = gatherOn(fx, uncapped);
    const folios = Array.from({ length: 20 }, () => mapAnonFolio(fx, 9));
    g.tlbRemoveTlbEntries(0x400000, 20 * 512);
    let full = false;
    for (const f of folios) {
      g.removeRmap(f.head, 512);
      for (let i = 0; i < 512; i++) full ||= g.removePage(f.head + i, false);
    }
    expect(full).toBe(false);
    expect(g.batchCount).toBe(21);
    expect(g.counters.forcedFlushes.batchLimit).toBe(0);
    g.finish();
  });

  it("a variant that does not limit batches while rmaps are delayed keeps allocating", () => {
    const arch = defineArch({ name: "t", mergeVmas: true });
    const fx = createGatherFixture(arch);
    const unlimited = defineVariant(encodedPage, {
      name: "unlimited",
      policy: { limitBatchesWhileDelayed: false },
    });
    const g = gatherOn(fx, unlimited);
    const f = mapAnonFolio(fx, 9);
    g.enterPtl();
    g.tlbRemoveTlbEntries(0x400000, 1024);
    // delayed_rmap is set: encoded-page would stop after `local` and one batch page (518 entries)
    expect(g.tlbDelayRmap()).toBe(true);
    g.removeRmap(f.head, 512);
    let full = false;
    for (let i = 0; i < 512; i++) full ||= g.removePage(f.head + i, false);
    const g2 = mapAnonFolio(fx, 9);
    g.removeRmap(g2.head, 512);
    for (let i = 0; i < 512; i++) full ||= g.removePage(g2.head + i, false);
    expect(full).toBe(false);
    // 8 + 510 + 506: a second batch page although delayed_rmap is set
    expect(g.batchCount).toBe(2);
    g.flushMmuTlbonly();
    g.flushRmaps();
    g.leavePtl();
    g.finish();
  });
});

describe("getVariant looks up own names only", () => {
  it("refuses an inherited property name with BAD_VARIANT", () => {
    for (const name of ["toString", "constructor", "__proto__", "hasOwnProperty"]) {
      try {
        getVariant(name as never);
        expect.unreachable(name);
      } catch (e) {
        expect(isGatherError(e) && e.code).toBe("BAD_VARIANT");
      }
    }
  });
});
