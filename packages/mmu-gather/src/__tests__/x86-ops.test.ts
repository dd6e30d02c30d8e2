// The x86 TLB operations of the port, written from arch/x86/mm/tlb.c (v6.18): flush_tlb_func runs on
// the initiating CPU itself and on every other CPU of its set by IPI (flush_tlb_multi →
// on_each_cpu_mask / on_each_cpu_cond_mask, should_flush_tlb leaving lazy CPUs out); INVLPGB
// invalidates on every CPU without an IPI and TLBSYNC waits for it (broadcast_tlb_flush). Each
// counter moves exactly as its doc comment says; CPU sets are validated and copied.

import { createGatherFixture, gatherOn, mapAnonFolio, recordEvents, zapFolios } from "@mmgather/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  createGatherCounters,
  createMmuGather,
  defineArch,
  encodedNrPages,
  type GatherEvent,
  type GatherView,
  isGatherError,
  TLB_FLUSH_ALL,
  type TlbOps,
  withTlbOps,
} from "../index.js";

const PAGE = 4096;

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isGatherError(e) ? e.code : `not a GatherError: ${String(e)}`;
  }
  return undefined;
}

/** An arch whose flush runs `body` once, with the gather's view and operations. */
function archRunning(body: (tlb: GatherView, ops: TlbOps) => void) {
  return defineArch({ name: "x86-ops-probe", mergeVmas: true, tlbFlush: body });
}

type Flushed = Extract<GatherEvent, { type: "tlbFlushed" }>;
const flushedOf = (events: readonly GatherEvent[]) =>
  events.filter((e): e is Flushed => e.type === "tlbFlushed");

describe("flushTlbFunc: flush_tlb_func on a CPU set, by IPI on all but the initiating CPU", () => {
  it("counts one IPI per remote CPU, the CPUs reached and the lazy CPUs left out; a range is a range flush", () => {
    const cpus = [0, 1, 2];
    const fx = createGatherFixture(
      archRunning((tlb, ops) => ops.flushTlbFunc(tlb.start, tlb.end, PAGE, true, cpus)),
    );
    fx.mm.cpumask = [0, 1, 2, 3, 4];
    fx.mm.lazyCpus = [3, 4];
    const seen: unknown[] = [];
    const rec = recordEvents();
    const g = gatherOn(fx, encodedNrPages, {
      cpu: 0,
      events: rec.sink,
      tlbListener: { tlbInvalidate: (...a: unknown[]) => seen.push(a) },
    });
    g.tlbRemoveTlbEntries(0x400000, 5);
    g.flushMmuTlbonly();
    cpus.push(3); // the gather kept its own copy
    expect(g.counters).toEqual({
      ...createGatherCounters(),
      tlbFlushes: 1,
      tlbFlushRange: 1,
      tlbFlushRangeEntries: 5,
      tlbIpis: 2,
      tlbCpusTargeted: 3,
      tlbLazyCpusSkipped: 2,
    });
    expect(
      flushedOf(rec.events).map((e) => [e.kind, e.cpus, e.start, e.end, e.stride, e.walkCaches]),
    ).toEqual([["range", [0, 1, 2], 0x400000, 0x405000, PAGE, true]]);
    expect(seen).toEqual([[fx.mm.id, "range", 0x400000, 0x405000, PAGE, true, [0, 1, 2]]]);
    g.finish();
  });

  it("end TLB_FLUSH_ALL is a full flush; a set without the initiating CPU is all IPIs", () => {
    const fx = createGatherFixture(
      archRunning((_tlb, ops) => ops.flushTlbFunc(0, TLB_FLUSH_ALL, PAGE, true, [1, 3])),
    );
    fx.mm.cpumask = [1, 2, 3];
    fx.mm.lazyCpus = [2];
    const rec = recordEvents();
    const g = gatherOn(fx, encodedNrPages, { cpu: 0, events: rec.sink });
    g.tlbRemoveTlbEntry(0x400000);
    g.flushMmuTlbonly();
    expect(g.counters).toMatchObject({
      tlbFlushMm: 1,
      tlbFlushRange: 0,
      tlbIpis: 2,
      tlbCpusTargeted: 2,
      tlbLazyCpusSkipped: 1,
    });
    expect(flushedOf(rec.events).map((e) => [e.kind, e.cpus, e.walkCaches])).toEqual([["mm", [1, 3], true]]);
    g.finish();
  });

  it("the local-only flush ([initiating CPU]) sends no IPI; without a modelled CPU every target is remote", () => {
    for (const [cpu, ipis] of [
      [0, 0],
      [-1, 1],
    ] as const) {
      const fx = createGatherFixture(
        archRunning((tlb, ops) => ops.flushTlbFunc(tlb.start, tlb.end, PAGE, true, [0])),
      );
      fx.mm.cpumask = [0];
      const g = gatherOn(fx, encodedNrPages, { cpu });
      expect(g.cpu).toBe(cpu);
      g.tlbRemoveTlbEntry(0x400000);
      g.flushMmuTlbonly();
      expect(g.counters).toMatchObject({ tlbIpis: ipis, tlbCpusTargeted: 1, tlbLazyCpusSkipped: 0 });
      g.finish();
    }
  });

  it("property: IPIs = targets other than the initiating CPU, lazy skipped = lazy CPUs not targeted", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 16 }),
        fc.integer({ min: -1, max: 15 }),
        fc.integer({ min: 0, max: 2 ** 16 - 1 }),
        fc.integer({ min: 0, max: 2 ** 16 - 1 }),
        (mask, cpu, lazyBits, targetBits) => {
          const lazy = mask.filter((_, i) => (lazyBits >> i) & 1);
          const targets = mask.filter((_, i) => (targetBits >> i) & 1);
          const fx = createGatherFixture(
            archRunning((tlb, ops) => ops.flushTlbFunc(tlb.start, tlb.end, PAGE, true, targets)),
          );
          fx.mm.cpumask = mask;
          fx.mm.lazyCpus = lazy;
          const g = gatherOn(fx, encodedNrPages, { cpu });
          g.tlbRemoveTlbEntry(0x400000);
          g.flushMmuTlbonly();
          g.finish();
          expect(g.counters.tlbIpis).toBe(targets.filter((c) => c !== cpu).length);
          expect(g.counters.tlbCpusTargeted).toBe(targets.length);
          expect(g.counters.tlbLazyCpusSkipped).toBe(lazy.filter((c) => !targets.includes(c)).length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("refuses a missing CPU set and a CPU outside mm_cpumask", () => {
    for (const cpus of [undefined, [0, 7]]) {
      const fx = createGatherFixture(
        archRunning((tlb, ops) => ops.flushTlbFunc(tlb.start, tlb.end, PAGE, true, cpus as number[])),
      );
      fx.mm.cpumask = [0, 1];
      const g = gatherOn(fx, encodedNrPages, { cpu: 0 });
      g.tlbRemoveTlbEntry(0x400000);
      expect(codeOf(() => g.flushMmuTlbonly())).toBe("BAD_ARGUMENT");
    }
  });
});

describe("invlpgb / tlbsync: broadcast invalidation without IPIs", () => {
  it("each INVLPGB is one instruction, one event and one listener call for every CPU (cpus null)", () => {
    const fx = createGatherFixture(
      archRunning((tlb, ops) => {
        ops.invlpgb(tlb.start, tlb.start + 8 * PAGE, PAGE, true);
        ops.invlpgb(tlb.start + 8 * PAGE, tlb.end, PAGE, true);
        ops.tlbsync();
      }),
    );
    fx.mm.cpumask = [0, 1, 2, 3];
    fx.mm.lazyCpus = [3];
    const seen: unknown[] = [];
    const rec = recordEvents();
    const g = gatherOn(fx, encodedNrPages, {
      cpu: 0,
      events: rec.sink,
      tlbListener: { tlbInvalidate: (...a: unknown[]) => seen.push(a) },
    });
    g.tlbRemoveTlbEntries(0x400000, 9);
    g.flushMmuTlbonly();
    expect(g.counters).toEqual({
      ...createGatherCounters(),
      tlbFlushes: 1,
      invlpgb: 2,
      tlbsync: 1,
      tlbCpusTargeted: 4,
    });
    expect(
      flushedOf(rec.events).map((e) => [e.kind, e.cpus, e.start, e.end, e.stride, e.walkCaches]),
    ).toEqual([
      ["invlpgb", null, 0x400000, 0x408000, PAGE, true],
      ["invlpgb", null, 0x408000, 0x409000, PAGE, true],
    ]);
    expect(seen).toEqual([
      [fx.mm.id, "invlpgb", 0x400000, 0x408000, PAGE, true, null],
      [fx.mm.id, "invlpgb", 0x408000, 0x409000, PAGE, true, null],
    ]);
    g.finish();
  });

  it("a TLBSYNC with no INVLPGB before it reaches no CPU; the whole PCID is end TLB_FLUSH_ALL", () => {
    const fx = createGatherFixture(
      archRunning((_tlb, ops) => {
        ops.tlbsync();
        ops.invlpgb(0, TLB_FLUSH_ALL, PAGE, true);
        ops.tlbsync();
        ops.tlbsync();
      }),
    );
    fx.mm.cpumask = [0, 1];
    const g = gatherOn(fx, encodedNrPages, { cpu: 0 });
    g.tlbRemoveTlbEntry(0x400000);
    g.flushMmuTlbonly();
    expect(g.counters).toMatchObject({ invlpgb: 1, tlbsync: 3, tlbCpusTargeted: 2, tlbIpis: 0 });
    g.finish();
  });

  it("refuses an INVLPGB range that is empty, negative, stride-less or past TASK_SIZE", () => {
    const task = defineArch({ name: "t" }).geometry.taskSize;
    for (const [s, e, stride] of [
      [0x1000, 0x1000, PAGE],
      [-PAGE, 0, PAGE],
      [0, PAGE, 0],
      [task - PAGE, task + PAGE, PAGE],
      [0, Number.NaN, PAGE],
    ]) {
      const fx = createGatherFixture(archRunning((_tlb, ops) => ops.invlpgb(s, e, stride, true)));
      const g = gatherOn(fx, encodedNrPages);
      g.tlbRemoveTlbEntry(0x400000);
      expect(
        codeOf(() => g.flushMmuTlbonly()),
        `[${s}, ${e}) stride ${stride}`,
      ).toBe("BAD_ARGUMENT");
    }
  });
});

describe("the initiating CPU (MmuGatherOptions.cpu)", () => {
  it("defaults to -1 and must be an integer >= -1", () => {
    const fx = createGatherFixture(defineArch({ name: "plain" }));
    expect(gatherOn(fx, encodedNrPages).cpu).toBe(-1);
    for (const cpu of [-2, 0.5, Number.NaN])
      expect(
        codeOf(() =>
          createMmuGather({ mem: fx.mem, mm: fx.mm, arch: fx.arch, variant: "encoded-nr-pages", cpu }),
        ),
      ).toBe("BAD_ARGUMENT");
  });
});

describe("withTlbOps forwards the x86 operations", () => {
  it("flushTlbFunc, invlpgb and tlbsync reach the gather unless replaced", () => {
    const arch = archRunning((tlb, ops) => {
      const wrapped = withTlbOps(ops, { flushRange: () => {} });
      wrapped.flushTlbFunc(tlb.start, tlb.end, PAGE, true, [0, 1]);
      wrapped.invlpgb(tlb.start, tlb.end, PAGE, true);
      wrapped.tlbsync();
    });
    const fx = createGatherFixture(arch);
    fx.mm.cpumask = [0, 1];
    const g = gatherOn(fx, encodedNrPages, { cpu: 0 });
    zapFolios(g, [mapAnonFolio(fx, 0)]);
    g.finish();
    expect(g.counters).toMatchObject({
      tlbFlushRange: 1,
      tlbIpis: 1,
      invlpgb: 1,
      tlbsync: 1,
      tlbCpusTargeted: 4,
    });
  });
});
