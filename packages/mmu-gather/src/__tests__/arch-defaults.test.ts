// The asm-generic defaults of the arch port (include/asm-generic/tlb.h, v6.18): tlb_get_unmap_shift
// picks the stride from the smallest level that had entries cleared; tlb_flush flushes the whole mm
// for fullmm / need_flush_all, nothing for an empty range, the range otherwise — promoted to a
// whole-mm flush above the ceiling (x86's tlb_single_page_flush_ceiling). defineArch refuses what the
// kernel's #error lines and the model's geometry rules refuse, each with its code and the reason.

import { describe, expect, it } from "vitest";
import {
  defaultGeometry,
  defineArch,
  type GatherView,
  isArchConfigError,
  makeGenericTlbFlush,
  TLB_FLUSH_ALL,
  type TlbOps,
  tlbGetUnmapShift,
} from "../index.js";

const view = (v: Partial<GatherView>): GatherView =>
  ({
    start: 0,
    end: 0,
    fullmm: false,
    needFlushAll: false,
    freedTables: false,
    clearedPtes: false,
    clearedPmds: false,
    clearedPuds: false,
    clearedP4ds: false,
    ...v,
  }) as GatherView;

function recorder() {
  const calls: string[] = [];
  const ops = {
    flushRange: (s: number, e: number, stride: number, w: boolean) =>
      calls.push(`range ${s}-${e}/${stride}${w ? " +walk" : ""}`),
    flushMm: (w: boolean) => calls.push(`mm${w ? " +walk" : ""}`),
    invalidateSecondaryTlbs: (s: number, e: number) =>
      calls.push(`devices ${s}-${e === TLB_FLUSH_ALL ? "all" : e}`),
  } as unknown as TlbOps;
  return { calls, ops };
}

describe("tlb_get_unmap_shift", () => {
  it("the smallest cleared level's shift, on 4K and 64K geometries", () => {
    const g64 = {
      ...defaultGeometry,
      pageShift: 16,
      ptrsPerPte: 8192,
      pmdOrder: 13,
      ptrsPerPmd: 8192,
      ptrsPerPud: 64,
    };
    expect(tlbGetUnmapShift(view({ clearedPtes: true, clearedPmds: true }), defaultGeometry)).toBe(12);
    expect(tlbGetUnmapShift(view({ clearedPmds: true, clearedPuds: true }), defaultGeometry)).toBe(21);
    expect(tlbGetUnmapShift(view({ clearedPuds: true, clearedP4ds: true }), defaultGeometry)).toBe(30);
    expect(tlbGetUnmapShift(view({ clearedP4ds: true }), defaultGeometry)).toBe(39);
    expect(tlbGetUnmapShift(view({}), defaultGeometry)).toBe(12);
    expect(tlbGetUnmapShift(view({ clearedPmds: true }), g64)).toBe(29);
    expect(tlbGetUnmapShift(view({ clearedPuds: true }), g64)).toBe(42);
    expect(tlbGetUnmapShift(view({ clearedP4ds: true }), g64)).toBe(48);
  });
});

describe("asm-generic tlb_flush", () => {
  const flush = makeGenericTlbFlush(defaultGeometry, 33);
  const run = (v: Partial<GatherView>) => {
    const r = recorder();
    flush(view(v), r.ops);
    return r.calls;
  };
  it("fullmm or need_flush_all: the whole mm, with walk caches when tables were freed", () => {
    expect(run({ fullmm: true, start: 0x1000, end: 0x2000, clearedPtes: true })).toEqual([
      "mm",
      "devices 0-all",
    ]);
    expect(
      run({ needFlushAll: true, start: 0x1000, end: 0x2000, clearedPtes: true, freedTables: true }),
    ).toEqual(["mm +walk", "devices 0-all"]);
  });
  it("an empty range flushes nothing", () => {
    expect(run({ clearedPtes: true })).toEqual([]);
  });
  it("a range: per-page stride up to the ceiling, the whole mm above it, the PMD stride for PMD clears", () => {
    // After the CPUs, the devices sharing the page tables get the range asked for (x86
    // flush_tlb_mm_range since v6.15), even when the CPUs got the whole mm.
    expect(run({ start: 0x400000, end: 0x400000 + 33 * 4096, clearedPtes: true })).toEqual([
      `range ${0x400000}-${0x400000 + 33 * 4096}/4096`,
      `devices ${0x400000}-${0x400000 + 33 * 4096}`,
    ]);
    expect(run({ start: 0x400000, end: 0x400000 + 34 * 4096, clearedPtes: true, freedTables: true })).toEqual(
      ["mm +walk", `devices ${0x400000}-${0x400000 + 34 * 4096}`],
    );
    expect(run({ start: 0x400000, end: 0x400000 + 8 * 0x200000, clearedPmds: true })).toEqual([
      `range ${0x400000}-${0x400000 + 8 * 0x200000}/2097152`,
      `devices ${0x400000}-${0x400000 + 8 * 0x200000}`,
    ]);
    const noCeiling = makeGenericTlbFlush(defaultGeometry, 0);
    const r = recorder();
    noCeiling(view({ start: 0, end: 1000 * 4096, clearedPtes: true }), r.ops);
    expect(r.calls).toEqual([`range 0-${1000 * 4096}/4096`, `devices 0-${1000 * 4096}`]);
  });
});

describe("defineArch refuses impossible adapters", () => {
  const code = (o: Parameters<typeof defineArch>[0]) => {
    try {
      defineArch(o);
    } catch (e) {
      return isArchConfigError(e) ? `${e.code}: ${e.message}` : "untyped";
    }
    return "none";
  };
  it("each refusal has its code and names the adapter and the reason", () => {
    expect(code({ name: "a", noGather: true, delayRmap: true, batchRmap: false })).toMatch(
      /^NO_GATHER_WITH_DELAYED_RMAP: .*arch "a": MMU_GATHER_NO_GATHER frees pages at queue time/,
    );
    expect(code({ name: "b", noGather: true, delayRmap: false, batchRmap: true })).toMatch(
      /^NO_GATHER_WITH_BATCHED_RMAP: .*arch "b": tlb_batch_rmap needs gathered pages/,
    );
    for (const geometry of [
      { pageShift: 11 },
      { pageShift: 17 },
      { pageShift: 12.5 },
      { ptrsPerPte: 500 },
      { ptrsPerPmd: 3 },
      { ptrsPerPud: 0 },
      { ptrsPerPgd: 6 },
      { pmdOrder: 0, ptrsPerPte: 1 },
      { pmdOrder: 8 },
      { taskSize: 0 },
    ])
      expect(code({ name: "g", geometry })).toMatch(/^BAD_GEOMETRY: .*impossible geometry .*powers of two/);
    expect(code({ name: "c", cost: { name: "" } })).toMatch(
      /^BAD_COST: .*cost\.name must be a non-empty string/,
    );
    expect(code({ name: "c", cost: { source: 3 as unknown as string } })).toMatch(/^BAD_COST/);
    expect(code({ name: "c", cost: { tlbFlushMm: -1 } })).toMatch(
      /^BAD_COST: .*cost\.tlbFlushMm must be a finite number/,
    );
    expect(code({ name: "c", cost: { tlbFlushMm: Number.NaN } })).toMatch(/^BAD_COST/);
    expect(code({ name: "d", fullFlushCeiling: -1 })).toMatch(
      /^BAD_CEILING: .*fullFlushCeiling must be an integer >= 0/,
    );
    expect(code({ name: "d", fullFlushCeiling: 1.5 })).toMatch(/^BAD_CEILING/);
    expect(code({ name: "e", tableFreed: 3 as unknown as undefined })).toMatch(
      /^BAD_HOOK: .*tableFreed must be a function/,
    );
    expect(code({ name: "ok", geometry: { pageShift: 16, ptrsPerPte: 8192, pmdOrder: 13 } })).toBe("none");
  });
});

describe("the PTE-aware hooks and contiguous blocks", () => {
  const code = (o: Parameters<typeof defineArch>[0]) => {
    try {
      defineArch(o);
    } catch (e) {
      return isArchConfigError(e) ? `${e.code}: ${e.message}` : "untyped";
    }
    return "none";
  };
  const hooks = { setPtes: () => {}, clearPtes: () => {} };

  it("default to none: an adapter that never looks at PTE values keeps the fused zap path", () => {
    const a = defineArch({ name: "plain" });
    expect([a.contPte, a.setPtes, a.clearPtes]).toEqual([null, null, null]);
  });

  it("refuses blocks without both hooks, a block size that is no power of two dividing PTRS_PER_PTE, non-function hooks", () => {
    expect(code({ name: "c1", contPte: { contPtes: 16, bbml2NoAbort: false } })).toMatch(
      /^BAD_HOOK: .*must make them in setPtes and unfold them in clearPtes/,
    );
    expect(
      code({ name: "c2", contPte: { contPtes: 16, bbml2NoAbort: false }, setPtes: hooks.setPtes }),
    ).toMatch(/^BAD_HOOK/);
    for (const contPtes of [0, 1, 12, 1024])
      expect(code({ name: "c3", contPte: { contPtes, bbml2NoAbort: false }, ...hooks })).toMatch(
        /^BAD_GEOMETRY: .*contPtes must be a power of two >= 2 dividing ptrsPerPte/,
      );
    expect(
      code({ name: "c4", contPte: { contPtes: 16, bbml2NoAbort: "no" as unknown as boolean }, ...hooks }),
    ).toMatch(/^BAD_GEOMETRY/);
    expect(code({ name: "c5", clearPtes: 7 as unknown as null })).toMatch(
      /^BAD_HOOK: .*clearPtes must be a function or null/,
    );
    expect(code({ name: "ok", contPte: { contPtes: 16, bbml2NoAbort: true }, ...hooks })).toBe("none");
  });
});
