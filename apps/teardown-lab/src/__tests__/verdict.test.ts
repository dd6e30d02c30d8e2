// The verdict calls a tie within the profile's design-ratio error, names the terms each difference is
// made of, and the breakdown / folded stacks add up to the estimate.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { COST_TERMS } from "@mmgather/teardown";
import { describe, expect, it } from "vitest";
import { breakdownTable, foldedStacks, type RunResult, termDifference, toTable, verdict } from "../format.js";
import { PRESETS } from "../presets.js";
import { runOne } from "../run.js";
import { validateScenario } from "../scenario.js";
import { VARIANTS } from "../spec.js";
import { APP_DIR, runCli } from "./cli-helpers.js";

const scenario = validateScenario(PRESETS["munmap-1g"].build({ size: "4M", folio: "64K" }), "preset");
const real = VARIANTS.map((v) => runOne(scenario, v, "generic").result);

/** A result of `variant` whose estimate is exactly `terms` (ns per term), with the profile's error. */
function fake(variant: string, terms: Record<string, number>, ratioError = 0.2): RunResult {
  const all = Object.fromEntries(COST_TERMS.map((t) => [t.name, terms[t.name] ?? 0]));
  const total = Object.values(all).reduce((a, b) => a + b, 0);
  return { ...real[0], variant, estimatedNs: total, estimate: { profile: "p", ratioError, terms: all } };
}

describe("verdict", () => {
  it("calls designs closer than the profile's ratio error a tie, and names the faster one otherwise", () => {
    const a = fake("a", { pageMapcount: 1000 });
    expect(verdict([a, fake("b", { pageMapcount: 1200 })])).toContain(
      "generic: a and b tie for fastest — a (1.0 µs), b (1.2 µs): within the profile's ±20 % design-ratio error",
    );
    const v = verdict([fake("b", { pageMapcount: 1201 }), a]);
    expect(v).toContain("generic: a is fastest — 1.0 µs");
    expect(v).toContain("b (1.2 µs) takes 1.20× as long");
    expect(v).toMatch(
      /^Verdict \(estimated kernel time = Σ counter × cost, profile p \(design ratios ±20 %\)\):$/m,
    );
  });

  it("says every design ties when all are within the error, and ranks the rest after the tied ones", () => {
    const v = verdict([fake("a", { atomic: 100 }), fake("b", { atomic: 105 }), fake("c", { atomic: 110 })]);
    expect(v).toContain("generic: every design ties — a (100 ns), b (105 ns), c (110 ns)");
    const w = verdict([fake("a", { atomic: 100 }), fake("b", { atomic: 115 }), fake("c", { atomic: 300 })]);
    expect(w).toContain("a and b tie for fastest");
    expect(w).toContain("c (300 ns) takes 3.00× as long as a");
  });

  it("each arch's ties follow its own profile's error", () => {
    const on = (r: RunResult, arch: string) => ({ ...r, arch });
    const v = verdict([
      on(fake("a", { atomic: 100 }, 0.1), "x"),
      on(fake("b", { atomic: 130 }, 0.1), "x"),
      on(
        {
          ...fake("a", { atomic: 100 }, 0.5),
          estimate: { ...fake("a", { atomic: 100 }, 0.5).estimate, profile: "q" },
        },
        "y",
      ),
      on(
        {
          ...fake("b", { atomic: 130 }, 0.5),
          estimate: { ...fake("b", { atomic: 130 }, 0.5).estimate, profile: "q" },
        },
        "y",
      ),
    ]);
    expect(v).toContain("x: a is fastest");
    expect(v).toContain("y: a and b tie for fastest");
    expect(v).toMatch(
      /^Verdict \(estimated kernel time = Σ counter × cost, profiles p \(design ratios ±10 %\), q \(design ratios ±50 %\)\):$/m,
    );
  });

  it("a profile without error (0) only ties equal estimates", () => {
    const v = verdict([fake("a", { atomic: 100 }, 0), fake("b", { atomic: 101 }, 0)]);
    expect(v).toContain("a is fastest");
    expect(verdict([fake("a", { atomic: 100 }, 0), fake("b", { atomic: 100 }, 0)])).toContain(
      "a and b tie for fastest",
    );
  });

  it("explains each difference by its largest terms, signed from the faster design's side", () => {
    const fast = fake("fast", { pageMapcount: 100, folioFree: 500, zoneLock: 20 });
    const slow = fake("slow", { pageMapcount: 6100, folioFree: 400, zoneLock: 20, atomic: 7 });
    expect(termDifference(slow, fast)).toBe(
      "−6.0 µs per-page _mapcount atomic (pageMapcount), +100 ns folio freed to the allocator (folioFree), " +
        "−7 ns atomic RMW on a folio-level field (atomic)",
    );
    expect(verdict([slow, fast])).toContain(
      "  fast vs slow: 5.9 µs less — −6.0 µs per-page _mapcount atomic",
    );
    // More than three differing terms: the rest are summed.
    const d = termDifference(fake("x", { atomic: 1, pteClear: 2, pteTable: 3, ptlLock: 40 }), fake("y", {}));
    expect(d).toBe(
      "−40 ns page-table-lock round trip (ptlLock), −3 ns PTE table walked (pteTable), " +
        "−2 ns PTE cleared (pteClear), −1 ns in 1 other terms",
    );
    expect(termDifference(fast, fast)).toBe("no term differs");
  });

  it("on real runs: the terms of each line add up to the difference it states", () => {
    const v = verdict(real);
    const best = [...real].sort((a, b) => a.estimatedNs - b.estimatedNs)[0];
    for (const r of real) {
      if (r === best) continue;
      expect(v).toContain(`  ${best.variant} vs ${r.variant}: `);
      const sum = Object.keys(r.estimate.terms).reduce(
        (a, t) => a + (best.estimate.terms[t] - r.estimate.terms[t]),
        0,
      );
      expect(sum).toBeCloseTo(best.estimatedNs - r.estimatedNs, 3);
    }
  });
});

describe("breakdown and folded stacks", () => {
  it("the breakdown lists each phase and term a design spends time on; phases sum to the total", () => {
    const t = breakdownTable(real);
    for (const term of COST_TERMS) {
      const used = real.some((r) => r.estimate.terms[term.name] !== 0);
      expect(t.includes(`  ${term.name} `)).toBe(used);
    }
    for (const r of real) {
      const byPhase = new Map<string, number>();
      for (const term of COST_TERMS)
        byPhase.set(term.phase, (byPhase.get(term.phase) ?? 0) + r.estimate.terms[term.name]);
      expect([...byPhase.values()].reduce((a, b) => a + b, 0)).toBeCloseTo(r.estimatedNs, 3);
    }
    expect(t).toMatch(/^rmap\s+[\d.]+ (ms|µs)\s+[\d.]+%/m);
    expect(t).toMatch(/^total\s+/m);
  });

  it("folded stacks: one arch/design;phase;term line per non-zero term, weights summing to the estimate", () => {
    const lines = foldedStacks(real).trimEnd().split("\n");
    const phases = new Set(COST_TERMS.map((t) => t.phase));
    for (const r of real) {
      const mine = lines.filter((l) => l.startsWith(`generic/${r.variant};`));
      const nonzero = COST_TERMS.filter((t) => Math.round(r.estimate.terms[t.name]) > 0);
      expect(mine.length).toBe(nonzero.length);
      let sum = 0;
      for (const l of mine) {
        const m = /^generic\/[\w-]+;(\w+);(\w+) (\d+)$/.exec(l);
        expect(m, l).not.toBeNull();
        expect(phases.has(m![1] as never)).toBe(true);
        expect(COST_TERMS.find((t) => t.name === m![2])?.phase).toBe(m![1]);
        sum += Number(m![3]);
      }
      expect(Math.abs(sum - r.estimatedNs)).toBeLessThanOrEqual(nonzero.length);
    }
  });

  it("--exact prints every digit", () => {
    expect(toTable(real, "v", { exact: true })).toMatch(/pages torn down\s+1,024\s+1,024\s+1,024/);
    expect(toTable(real, "v")).toMatch(/pages torn down\s+1024\s+1024\s+1024/);
  });
});

describe("run --breakdown / --folded / --exact / --timing", () => {
  it("prints the breakdown after the table and writes the folded stacks", () => {
    const dir = join(process.env.TMPDIR ?? "/tmp", `folded-${process.pid}.txt`);
    const r = runCli([
      "run",
      "--preset",
      "munmap-1g",
      "--size",
      "8M",
      "--folio",
      "16K",
      "--breakdown",
      "--folded",
      dir,
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("Estimated kernel time by phase and cost term");
    expect(r.stdout.indexOf("counters that differ most")).toBeLessThan(
      r.stdout.indexOf("by phase and cost term"),
    );
    const folded = readFileSync(dir, "utf8");
    expect(folded).toMatch(/^generic\/encoded-page;rmap;pageMapcount \d+$/m);
    expect(folded).toMatch(/^generic\/encoded-nr-pages;zap_pte_range;folioPteBatch \d+$/m);
  });

  it("--exact shows 2,048 where the default shows 2048, and --timing adds the wall time", () => {
    const base = ["run", "--preset", "munmap-1g", "--size", "8M", "--folio", "16K"];
    expect(runCli([...base, "--exact"]).stdout).toMatch(/pages torn down\s+2,048\s+2,048\s+2,048/);
    expect(runCli([...base, "--timing"]).stdout).toMatch(/simulator wall time\s+[\d.]+ (ms|µs|ns|s)/);
    expect(runCli([...base, "--json"]).stdout).toContain('"simWallNs"');
  });

  it("says when a VMA's size makes the fault path map smaller folios than asked", () => {
    const r = runCli(["run", "--preset", "munmap-1g", "--size", "96K", "--folio", "64K"]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(
      "note: vmas[0]: its size 96K is not a multiple of its 64K folios; the fault path maps the largest folio " +
        "that fits (thp_vma_suitable_order), so the tail is mapped by smaller folios",
    );
    expect(runCli(["run", "--preset", "munmap-1g", "--size", "128K", "--folio", "64K"]).stderr).not.toContain(
      "note:",
    );
  });
});

describe("pnpm lab (scripts/lab.mjs)", () => {
  it("resolves a relative scenario path in the directory it was typed in, with no build banners", () => {
    const dir = mkdtempSync(join(tmpdir(), "lab-cwd-"));
    copyFileSync(join(APP_DIR, "scenarios/partial-dontneed.yaml"), join(dir, "mine.yaml"));
    const r = spawnSync(
      process.execPath,
      [join(APP_DIR, "../../scripts/lab.mjs"), "run", "mine.yaml", "--no-timing"],
      {
        cwd: join(APP_DIR, "../.."),
        env: { ...process.env, INIT_CWD: dir },
        encoding: "utf8",
      },
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Verdict /);
    const direct = runCli(["run", join(dir, "mine.yaml"), "--no-timing"]);
    expect(r.stdout).toBe(direct.stdout);
  });
});
