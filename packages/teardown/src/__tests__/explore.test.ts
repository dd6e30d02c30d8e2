import {
  contigRange,
  defineVariant,
  encodedNrPages,
  encodedPage,
  type GatherVariant,
} from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import { explore, isTeardownError, runSchedule, type ScenarioSpec } from "../index.js";

// Two threads MADV_DONTNEED the same 64 KiB (one PTE table each: a lock section, then the finish).
const race: ScenarioSpec = {
  memory: 16 << 20,
  cpus: 2,
  vmas: [{ kind: "anon", size: 64 << 10 }],
  op: { kind: "madvise", vma: 0 },
  concurrentOp: { kind: "madvise", vma: 0 },
};

/** tlb_finish_mmu without mm_tlb_flush_nested(): flushes only what this gather cleared. */
function nestedFlushIgnored(base: GatherVariant): GatherVariant {
  return defineVariant(base, {
    name: `${base.name}-nested-flush-ignored`,
    steps: {
      finishMmu(ops, flushMmu) {
        flushMmu();
        ops.tlbBatchListFree();
        ops.decTlbFlushPending();
      },
    },
  });
}

/** tlb_finish_mmu's pre-2019 nested path: reset the range (and with it the bits), re-adjust, flush. */
function nestedResetRange(base: GatherVariant): GatherVariant {
  return defineVariant(base, {
    name: `${base.name}-nested-reset-range`,
    steps: {
      finishMmu(ops, flushMmu) {
        if (ops.mmTlbFlushNested()) {
          const { start, end } = ops.view;
          ops.tlbResetRange();
          if (end > start) ops.tlbAdjustRange(start, end - start);
        }
        flushMmu();
        ops.tlbBatchListFree();
        ops.decTlbFlushPending();
      },
    },
  });
}

/** Every 0/1 sequence with `a` zeros and `b` ones, bucketed by preemptions (a switch away from a thread with steps left). */
function bruteForce(a: number, b: number, bound: number): number[] {
  const out = new Array<number>(bound + 1).fill(0);
  const walk = (left: [number, number], prev: number, pre: number): void => {
    if (pre > bound) return;
    if (left[0] === 0 && left[1] === 0) {
      out[pre]++;
      return;
    }
    for (const t of [0, 1]) {
      if (left[t] === 0) continue;
      const next: [number, number] = [left[0], left[1]];
      next[t]--;
      walk(next, t, pre + (prev >= 0 && t !== prev && left[prev] > 0 ? 1 : 0));
    }
  };
  walk([a, b], -1, 0);
  return out;
}

describe("explore: systematic interleavings with a preemption bound", () => {
  it("runs every interleaving within the bound exactly once (counts per preemption match enumeration)", () => {
    // 8 MiB: four PTE tables, so each thread takes four lock sections and a finish; no mmap_lock waits
    // (both take the read side).
    const spec: ScenarioSpec = { ...race, memory: 24 << 20, vmas: [{ kind: "anon", size: 8 << 20 }] };
    const alone = runSchedule(spec, []);
    const a = alone.steps.filter((s) => s.thread === 0).length;
    const b = alone.steps.filter((s) => s.thread === 1).length;
    expect(alone.steps.some((s) => s.waited)).toBe(false);
    expect([a, b]).toEqual([5, 5]);
    for (const bound of [0, 1, 2, 3]) {
      const r = explore(spec, { bound });
      expect(r.complete).toBe(true);
      expect(r.exploredByPreemptions).toEqual(bruteForce(a, b, bound));
      expect(r.failing).toBe(0);
    }
    // Unbounded (5 + 5 steps: at most 9 switches, all of them preemptions at worst): C(10, 5).
    expect(explore(spec, { bound: 8 }).explored).toBe(252);
  }, 60_000);

  for (const [bug, make] of [
    ["nested-flush-ignored", nestedFlushIgnored],
    ["nested-reset-range", nestedResetRange],
  ] as const)
    for (const base of [encodedPage, contigRange, encodedNrPages]) {
      it(`finds the ${bug} race of ${base.name} deterministically at bound 1; the real design stays silent`, () => {
        const broken = { ...race, variant: make(base) };
        const r = explore(broken, { bound: 2 });
        expect(r.complete).toBe(true);
        expect(r.failing).toBeGreaterThan(0);
        const s = r.shortest!;
        expect(s.preemptions).toBe(1);
        expect(s.report.violations.map((v) => v.kind)).toContain("staleTlbAfterReturn");
        // Same search, same answer.
        const again = explore(broken, { bound: 2 });
        expect(again.shortest!.schedule).toEqual(s.schedule);
        expect(again.failing).toBe(r.failing);
        // Replaying the schedule reproduces it; the first violation shows at the reported step.
        const replay = runSchedule(broken, s.schedule);
        expect(replay.report.violations.map((v) => v.kind)).toEqual(s.report.violations.map((v) => v.kind));
        expect(replay.steps.filter((x) => x.preempted)).toHaveLength(1);
        // Bound 0 runs only the two serial orders, which are safe.
        expect(explore(broken, { bound: 0 })).toMatchObject({ explored: 2, failing: 0, complete: true });
        const ok = explore({ ...race, variant: base }, { bound: 2 });
        expect(ok).toMatchObject({ explored: r.explored, failing: 0, complete: true, shortest: null });
      });
    }

  it("munmap racing MADV_DONTNEED: waits for mmap_lock are not preemptions, and every order is safe", () => {
    const spec: ScenarioSpec = {
      ...race,
      memory: 64 << 20,
      vmas: [{ kind: "anon", size: 4 << 20, folio: { order: 4 } }],
      op: { kind: "munmap", vma: 0, offset: 1 << 20, length: 2 << 20 },
      concurrentOp: { kind: "madvise", vma: 0, offset: 2 << 20, length: 2 << 20 },
    };
    for (const variant of ["encoded-page", "contig-range", "encoded-nr-pages"] as const) {
      const r = explore({ ...spec, variant }, { bound: 3 });
      expect(r).toMatchObject({ failing: 0, complete: true });
      expect(r.explored).toBeGreaterThan(2);
    }
    // MADV_DONTNEED holds the read side first: munmap waits for the write side, and switching away
    // from a waiting thread is free.
    const run = runSchedule(spec, [1, 0]);
    expect(run.steps[1]).toMatchObject({ thread: 0, waited: true, preempted: true });
    expect(run.steps[2]).toMatchObject({ thread: 1, waited: false, preempted: false });
    expect(run.report.violations).toEqual([]);
  });

  it("one thread has one interleaving; caps and early stops are reported as incomplete", () => {
    const { concurrentOp: _c, ...single } = race;
    expect(explore(single)).toMatchObject({ explored: 1, complete: true, failing: 0 });
    const broken = { ...race, variant: nestedFlushIgnored(encodedNrPages) };
    expect(explore(broken, { bound: 2, maxInterleavings: 3 })).toMatchObject({
      explored: 3,
      complete: false,
    });
    const first = explore(broken, { bound: 2, stopAtFirstFailure: true });
    expect(first).toMatchObject({ failing: 1, complete: false });
  });

  it("rejects bad options and schedules with a typed error", () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return isTeardownError(e) ? e.code : "untyped";
      }
      return undefined;
    };
    expect(code(() => explore(race, { bound: -1 }))).toBe("BAD_SPEC");
    expect(code(() => explore(race, { bound: 1.5 }))).toBe("BAD_SPEC");
    expect(code(() => explore(race, { maxInterleavings: 0 }))).toBe("BAD_SPEC");
    expect(code(() => explore({ ...race, checker: false }))).toBe("BAD_SPEC");
    expect(code(() => explore({ ...race, events: () => {} }))).toBe("BAD_SPEC");
    expect(code(() => runSchedule(race, [0, 2]))).toBe("BAD_SPEC");
    // Thread 0 finishes after two steps: a third step of it does not exist.
    expect(code(() => runSchedule(race, [0, 0, 0]))).toBe("BAD_SPEC");
    expect(code(() => explore(null as unknown as ScenarioSpec))).toBe("BAD_SPEC");
  });
});
