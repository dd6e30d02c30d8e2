// swapoff racing a teardown (swapoff.ts, @mmgather/swapcache's device lifetime): try_to_unuse maps every
// swap PTE it can find back, the device goes only when nothing uses or pins it, and a
// free_swap_and_cache without its get_swap_device pin (before 82b1c07a0af6, Linux 6.9) is caught
// reading a freed swap_map (v6.18 mm/swapfile.c semantics).
import { createPhysMem } from "@mmgather/folio";
import { createSwapSpace, SWAP_FREED, SWAP_ON } from "@mmgather/swapcache";
import { describe, expect, it } from "vitest";
import {
  buildScenario,
  defineZapWalk,
  explore,
  folioBatchWalk,
  MM_ANONPAGES,
  MM_SWAPENTS,
  perPteWalk,
  pteSwapEntry,
  runBuilt,
  runScenario,
  runSchedule,
  type ScenarioSpec,
  type ZapWalk,
} from "../index.js";

const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

/** free_swap_and_cache as before 82b1c07a0af6: the device is not pinned while its swap_map is read. */
function unpinned(base: ZapWalk): ZapWalk {
  return defineZapWalk(base, {
    name: `${base.name}-unpinned-swap-free`,
    steps: {
      zapPtes(ctx, t, vbase, from, to) {
        for (let i = from; i < to; i++) {
          if (t[i] >= 0) continue;
          const entry = pteSwapEntry(t[i]);
          t[i] = 0;
          ctx.rss[MM_SWAPENTS]--;
          ctx.counters.swapPtesCleared++;
          ctx.counters.swapBatches++;
          ctx.swap?.freeSwapAndCacheNr(entry, 1, { pinDevice: false });
        }
        return base.steps.zapPtes(ctx, t, vbase, from, to);
      },
    },
  });
}

/** munmap of a fully swapped-out 4 MiB heap (two PTE tables) whose folios stay in the swap cache. */
function racing(variant: (typeof DESIGNS)[number], op: "munmap" | "exit", walk?: ZapWalk): ScenarioSpec {
  return {
    memory: 64 << 20,
    swap: 16 << 20,
    cpus: 2,
    variant,
    walk,
    vmas: [{ kind: "anon", size: 4 << 20, swapFraction: 1, keepInSwapCache: true }],
    op: { kind: op },
    concurrentOp: { kind: "swapoff" },
  };
}

describe("swapoff next to a teardown that holds no swap", () => {
  for (const keep of [false, true]) {
    it(`maps every swap PTE of the other VMA back and frees the device (${keep ? "folios still in the swap cache" : "folios read in"})`, () => {
      const spec: ScenarioSpec = {
        memory: 64 << 20,
        swap: 8 << 20,
        cpus: 2,
        vmas: [
          { kind: "file-shared", size: 64 << 10 },
          { kind: "anon", size: 256 << 10, swapFraction: 1, keepInSwapCache: keep },
        ],
        op: { kind: "munmap", vma: 0 },
        concurrentOp: { kind: "swapoff" },
      };
      const b = buildScenario(spec);
      const swap = b.machine.swap!;
      const swapPtes = b.target.rss[MM_SWAPENTS];
      const anon = b.target.rss[MM_ANONPAGES];
      expect(swapPtes).toBe(64);
      expect(swap.inusePages(0)).toBe(64);
      const r = runBuilt(b, spec);
      expect(r.violations).toEqual([]);
      expect(r.finalState.problems).toEqual([]);
      expect(r.swapoff).toEqual({
        passes: 1,
        ptlSections: 1,
        ptesUnused: 64,
        swapCacheHits: keep ? 64 : 0,
        foliosReadIn: keep ? 0 : 64,
        cacheFreed: 64,
        completed: 1,
      });
      expect(b.target.rss[MM_SWAPENTS]).toBe(0);
      expect(b.target.rss[MM_ANONPAGES]).toBe(anon + 64);
      expect(swap.inusePages(0)).toBe(0);
      expect(swap.swapoffState(0)).toBe(SWAP_FREED);
    });
  }
});

describe("swapoff racing the zap of swap PTEs it cannot see (swapDeviceUseAfterFree)", () => {
  for (const variant of DESIGNS) {
    const base = variant === "encoded-nr-pages" ? folioBatchWalk : perPteWalk;
    it(`${variant}: the real free_swap_and_cache pins the device — every interleaving up to 2 preemptions is clean`, () => {
      for (const op of ["munmap", "exit"] as const) {
        const x = explore(racing(variant, op), { bound: 2 });
        expect(x.complete).toBe(true);
        expect(x.explored).toBeGreaterThan(5);
        expect(x.failing).toBe(0);
      }
    });

    it(`${variant}: without the pin, the explorer finds the freed swap_map read with one preemption`, () => {
      for (const op of ["munmap", "exit"] as const) {
        const x = explore(racing(variant, op, unpinned(base)), { bound: 2 });
        expect(x.failing).toBeGreaterThan(0);
        expect(x.shortest?.preemptions).toBe(1);
        expect(x.shortest?.report.violations[0]?.kind).toBe("swapDeviceUseAfterFree");
        // The zap's first table, swapoff's pass (the heap is detached / exiting: nothing to unuse), then
        // the zap drops the device's last count.
        const r = runSchedule(racing(variant, op, unpinned(base)), [0, 1, 0]).report;
        expect(r.violations.map((v) => v.kind)).toEqual(["swapDeviceUseAfterFree"]);
        expect(
          r.violations[0].trail.some((e) => e.type === "swapoffProgress" && e.stage === "swapMapFreed"),
        ).toBe(true);
        expect(r.swapoff?.ptesUnused).toBe(0);
      }
    });
  }

  it("the real design on the same schedule: swapoff waits for the pin and completes after the zap", () => {
    const r = runSchedule(racing("encoded-nr-pages", "munmap"), [0, 1, 0]).report;
    expect(r.violations).toEqual([]);
    expect(r.finalState.problems).toEqual([]);
    expect(r.swapoff?.completed).toBe(1);
    expect(r.swapoff?.ptesUnused).toBe(0);
    expect(r.swapEntriesZapped).toBe(1024);
  });
});

describe("swapoff validation and device lifetime", () => {
  it("needs a swap device", () => {
    expect(() =>
      runScenario({
        memory: 16 << 20,
        cpus: 2,
        vmas: [{ kind: "anon", size: 64 << 10 }],
        op: { kind: "munmap" },
        concurrentOp: { kind: "swapoff" },
      }),
    ).toThrow(expect.objectContaining({ code: "BAD_SPEC" }));
  });

  it("a device being swapped off takes no new allocations; a pin holds swap_map until it is put", () => {
    const mem = createPhysMem({ nrPages: 1024, pmdOrder: 9 });
    const swap = createSwapSpace(mem, { devices: [{ nrSlots: 64 }] });
    const head = mem.allocFolio(0);
    mem.folioSetAnon(head, 1, 0);
    const entry = swap.folioAllocSwap(head);
    expect(swap.swapoffState(0)).toBe(SWAP_ON);
    swap.swapoffStart(0);
    const other = mem.allocFolio(0);
    mem.folioSetAnon(other, 1, 1);
    expect(() => swap.folioAllocSwap(other)).toThrow(expect.objectContaining({ code: "ENOSPC" }));
    expect(swap.getSwapDevice(entry)).toBe(true);
    swap.deleteFromSwapCache(head);
    expect(swap.inusePages(0)).toBe(0);
    expect(swap.swapoffTryFinish(0)).toBe(false); // killed, waiting for the pin
    expect(swap.getSwapDevice(entry)).toBe(false);
    swap.putSwapDevice(entry);
    expect(swap.swapoffTryFinish(0)).toBe(true);
    expect(swap.swapoffState(0)).toBe(SWAP_FREED);
    expect(() => swap.swapCount(entry)).toThrow(expect.objectContaining({ code: "DEVICE_FREED" }));
  });
});
