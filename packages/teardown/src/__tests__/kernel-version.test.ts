// The nr-pages design under v6.9's rules vs v6.18's (mmu-gather `encodedNrPagesV69`): lru_add_drain in
// free_pages_and_swap_cache, one swap PTE at a time, v6.9's deferred-split rule. Same final state.
import { encodedNrPagesFor, encodedNrPagesV69 } from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import { buildScenario, runBuilt, type ScenarioSpec } from "../index.js";

const base: ScenarioSpec = {
  memory: 64 << 20,
  swap: 16 << 20,
  seed: 3,
  vmas: [{ kind: "anon", size: 4 << 20, folio: { order: 4 }, swapFraction: 0.5 }],
  op: { kind: "exit" },
};

function run(spec: ScenarioSpec) {
  const b = buildScenario(spec);
  const r = runBuilt(b, spec);
  return { r, digest: b.machine.mem.stateDigest() + (b.machine.swap?.stateDigest() ?? "") };
}

describe("encoded-nr-pages under v6.9 vs v6.18 rules", () => {
  it("is selected by kernel and named for it", () => {
    expect(encodedNrPagesFor("6.9")).toBe(encodedNrPagesV69);
    expect(encodedNrPagesFor().name).toBe("encoded-nr-pages");
    expect(encodedNrPagesV69.name).toBe("encoded-nr-pages@6.9");
    expect(() => encodedNrPagesFor("6.1" as never)).toThrow(/unknown kernel "6.1"/);
  });

  it("exit of a half swapped-out heap: v6.9 drains the LRU per free and zaps swap PTEs one by one", () => {
    const v69 = run({ ...base, variant: encodedNrPagesV69 });
    const v618 = run({ ...base, variant: "encoded-nr-pages" });
    expect(v69.r.variant).toBe("encoded-nr-pages@6.9");
    const w69 = v69.r.counters.walk;
    const w618 = v618.r.counters.walk;
    expect(w69.swapPtesCleared).toBe(w618.swapPtesCleared);
    expect(w69.swapPtesCleared).toBeGreaterThan(0);
    expect(w69.swapBatches).toBe(w69.swapPtesCleared);
    expect(w618.swapBatches).toBeLessThan(w618.swapPtesCleared);
    // One lru_add_drain per free_pages_and_swap_cache call (per ≤ 512-entry chunk) in v6.9, none in v6.18.
    expect(v69.r.counters.gather.lruAddDrain).toBe(v69.r.counters.gather.chunksFreed);
    expect(v69.r.counters.gather.lruAddDrain).toBeGreaterThan(0);
    expect(v618.r.counters.gather.lruAddDrain).toBe(0);
    expect(v69.r.finalState.problems).toEqual([]);
    expect(v69.digest).toBe(v618.digest);
  });

  it("a munmap that unmaps whole large folios: v6.9 queues them for deferred split (and dequeues at free)", () => {
    const spec: ScenarioSpec = {
      ...base,
      vmas: [{ kind: "anon", size: 4 << 20, folio: { order: 4 } }],
      op: { kind: "munmap", vma: 0, offset: 0, length: 1 << 20 },
    };
    const v69 = run({ ...spec, variant: encodedNrPagesV69 }).r.counters.folio;
    const v618 = run({ ...spec, variant: "encoded-nr-pages" }).r.counters.folio;
    const folios = (1 << 20) / (64 << 10);
    expect(v618.deferredSplitQueued).toBe(0);
    expect(v69.deferredSplitQueued).toBe(folios);
    expect(v69.deferredSplitDequeued).toBe(folios);
    expect(v69.splitQueueLockAcquisitions - v618.splitQueueLockAcquisitions).toBe(2 * folios);
  });
});
