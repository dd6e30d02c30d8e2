// The committed profiles are what `teardown-lab calibrate` produces, the fit is a real NNLS, and
// `fidelity` reports every published point (no tuning at prediction time: runs use the profile only).
import { arm64AltraCost, x86_64Xeon4210rCost } from "@mmgather/arch-generic";
import type { CostProfile } from "@mmgather/mmu-gather";
import { COST_TERMS } from "@mmgather/teardown";
import { describe, expect, it } from "vitest";
import { fidelity, fit, loadTable, nnls } from "../calibrate.js";
import { runCli } from "./cli-helpers.js";

function numeric(p: CostProfile): Record<string, number> {
  return Object.fromEntries(COST_TERMS.map((t) => [t.name, p[t.name]]));
}

describe("calibrate", () => {
  it("nnls solves a known problem and clamps a negative coefficient to 0", () => {
    const x = nnls(
      [
        [1, 0],
        [0, 1],
        [1, 1],
      ],
      [2, 3, 5],
    );
    expect(x[0]).toBeCloseTo(2, 9);
    expect(x[1]).toBeCloseTo(3, 9);
    const y = nnls(
      [
        [1, 1],
        [1, 2],
      ],
      [1, -1],
    );
    expect(y[1]).toBe(0);
    expect(y[0]).toBeGreaterThanOrEqual(0);
  });

  it.each([
    ["x86-64-4210r", x86_64Xeon4210rCost],
    ["arm64-altra", arm64AltraCost],
  ])(
    "the committed %s profile is the fit's output",
    (name, committed) => {
      const table = loadTable(name);
      expect(table.free.length).toBeLessThan(table.points.length);
      const r = fit(table);
      expect(numeric(committed)).toEqual(numeric(r.profile));
      for (const f of table.free) expect(r.profile[f]).toBeGreaterThan(0);
    },
    60_000,
  );

  it("fidelity has a row per published point (times, ratios to 4K, relative changes)", () => {
    const x86 = fidelity(loadTable("x86-64-4210r"), x86_64Xeon4210rCost);
    expect(x86.filter((r) => r.kind === "time")).toHaveLength(18);
    expect(x86.filter((r) => r.kind === "ratio")).toHaveLength(16);
    const arm = fidelity(loadTable("arm64-altra"), arm64AltraCost);
    expect(arm.map((r) => r.id)).toEqual([
      "exit_group-small-folios",
      "exit_group-order-3",
      "rmap-removal-order-3",
      "deferred-split-order-3",
    ]);
    for (const r of [...x86, ...arm]) {
      expect(Number.isFinite(r.predicted)).toBe(true);
      if (!r.pass) expect(r.responsible).not.toBe("");
    }
  }, 60_000);

  it("run --profile picks another profile; the counters do not change", () => {
    const a = JSON.parse(runCli(["run", "--preset", "munmap-1g", "--size", "4M", "--json"]).stdout);
    const b = JSON.parse(
      runCli(["run", "--preset", "munmap-1g", "--size", "4M", "--json", "--profile", "arm64-altra"]).stdout,
    );
    expect(b[0].estimate.profile).toBe("arm64-altra");
    expect(b[0].counters).toEqual(a[0].counters);
    expect(b[0].estimatedNs).not.toBe(a[0].estimatedNs);
  });
});
