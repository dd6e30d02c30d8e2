import { genericArch } from "@mmgather/arch-generic";
import type { CostProfile } from "@mmgather/mmu-gather";
import { defaultCost } from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import { COST_TERMS, estimateCost, flattenCounters, runScenario, termCount } from "../index.js";

const spec = {
  memory: 64 << 20,
  swap: 8 << 20,
  seed: 3,
  cpus: 2,
  vmas: [
    { kind: "anon" as const, size: 8 << 20, folio: { order: 3 }, swapFraction: 0.1 },
    { kind: "file-shared" as const, size: 2 << 20, dirtyFraction: 0.5 },
  ],
  op: { kind: "munmap" as const, vma: 0 },
};

describe("cost model", () => {
  it("every CostProfile number is a term, and every term's counters exist in a report", () => {
    // ratioError is the profile's stated error, not a ns cost.
    const numeric = Object.keys(defaultCost).filter(
      (k) => k !== "name" && k !== "source" && k !== "ratioError",
    );
    expect(COST_TERMS.map((t) => t.name).sort()).toEqual(numeric.sort());
    const names = new Set(Object.keys(flattenCounters(runScenario(spec))));
    for (const t of COST_TERMS) for (const c of t.counters) expect(names, `${t.name}: ${c}`).toContain(c);
  });

  it("every term belongs to a phase, and the estimate carries the profile's ratio error", () => {
    const phases = new Set([
      "zap_pte_range",
      "rmap",
      "tlb_flush",
      "free_pages",
      "swap",
      "free_pgtables",
      "vma",
    ]);
    for (const t of COST_TERMS) expect(phases.has(t.phase), t.name).toBe(true);
    // No arch in the spec: the generic adapter and its profile.
    expect(runScenario(spec).estimate.ratioError).toBe(genericArch.cost.ratioError);
    expect(estimateCost({}, { ...defaultCost, ratioError: 0.07 }).ratioError).toBe(0.07);
  });

  it("adding 1 to any counter of a term moves the estimate by exactly that term's cost", () => {
    const counters = flattenCounters(runScenario(spec));
    // Distinct, exactly representable costs so a wrong term cannot pass by coincidence.
    const profile = { ...defaultCost, name: "test", source: "test" } as Record<string, number | string>;
    COST_TERMS.forEach((t, i) => {
      profile[t.name] = 2 ** (i % 20) + i;
    });
    const p = profile as unknown as CostProfile;
    const base = estimateCost(counters, p);
    for (const t of COST_TERMS) {
      for (const c of t.counters) {
        const moved = estimateCost({ ...counters, [c]: (counters[c] ?? 0) + 1 }, p);
        expect(moved.terms[t.name] - base.terms[t.name], `${t.name} via ${c}`).toBe(p[t.name]);
        expect(moved.totalNs - base.totalNs).toBeCloseTo(p[t.name], 6);
        for (const o of COST_TERMS)
          if (o.name !== t.name) expect(moved.terms[o.name]).toBe(base.terms[o.name]);
      }
    }
  });

  it("the estimate is Σ count × cost, and the report carries it for the arch's profile", () => {
    const r = runScenario(spec);
    const counters = flattenCounters(r);
    let sum = 0;
    for (const t of COST_TERMS) {
      expect(r.estimate.terms[t.name]).toBe(termCount(t, counters) * genericArch.cost[t.name]);
      sum += r.estimate.terms[t.name];
    }
    expect(r.estimate.totalNs).toBeCloseTo(sum, 3);
    expect(r.estimate.profile).toBe(genericArch.cost.name);
    const other = runScenario({ ...spec, costProfile: { ...defaultCost, atomic: 1000 } });
    expect(other.estimate.profile).toBe("default-priors");
    expect(other.estimate.terms.atomic).toBe(termCount(COST_TERMS[4], counters) * 1000);
  });
});

describe("teardown-phase counters", () => {
  it("folio, swap and cpu counters exclude the workload build", () => {
    const r = runScenario(spec);
    const f = r.counters.folio;
    // The build allocated every folio; the munmap itself allocates none from PhysMem.
    expect(f.foliosAllocated).toBe(0);
    expect(f.pagesFreed).toBe(r.pagesFreed);
    expect(f.foliosFreed).toBe(r.foliosFreed);
    expect(r.counters.swap?.slotsAllocated).toBe(0);
    expect(r.counters.swap?.swapPutEntries).toBe(r.swapEntriesZapped);
    // The CPUs were filled while the workload was built; only the teardown's invalidations count.
    const cpu = r.counters.cpu!;
    expect(cpu.invalidations.range + cpu.invalidations.mm).toBe(r.tlbFlushes.range + r.tlbFlushes.mm);
    expect(cpu.remoteCpuFlushes).toBe(2 * (r.tlbFlushes.range + r.tlbFlushes.mm));
    expect(r.simWallNs).toBeGreaterThan(0);
  });
});
