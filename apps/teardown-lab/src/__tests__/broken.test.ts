// The deliberately broken cases that do not depend on one gather design must be caught on every
// design, and the correct code on the same machine must stay silent.
import { describe, expect, it } from "vitest";
import { BROKEN, realOverrideOf } from "../broken.js";
import { runOne } from "../run.js";

const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

describe("huge-zero-as-thp (zap_huge_pmd without is_huge_zero_pmd)", () => {
  const c = BROKEN["huge-zero-as-thp"];
  for (const design of DESIGNS) {
    it(`is caught as ${c.expect} on ${design}; the real walk is silent`, () => {
      const s = c.scenario(c.seeds[0]);
      const broken = runOne(s, design, "generic", { override: c.override }).report;
      expect(broken.violations.map((v) => v.kind)).toEqual([c.expect]);
      expect(broken.violations[0].message).toMatch(/MAPCOUNT_UNDERFLOW/);
      const real = runOne(s, design, "generic", { override: realOverrideOf(c) }).report;
      expect(real.violations).toEqual([]);
      expect(real.finalState.problems).toEqual([]);
      // The real zap_huge_pmd frees the deposit and nothing else.
      expect(real.counters.walk.hugePmdsZapped).toBe(1);
      expect(real.counters.walk.depositsFreed).toBe(1);
      expect(real.dataFoliosFreed).toBe(0);
      expect(real.counters.gather.pagesQueued).toBe(0);
    });
  }

  it("its scenario maps the huge zero folio (read faults of a PMD-mapped 2M anon VMA)", () => {
    const s = c.scenario(c.seeds[0]);
    expect(s.vmas[0]).toMatchObject({ kind: "anon", pmd: true, readFraction: 1 });
  });
});
