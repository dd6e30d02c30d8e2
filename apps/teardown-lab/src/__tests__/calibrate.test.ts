// The committed profiles are what `teardown-lab calibrate` produces, the fit is a real NNLS, and
// `fidelity` reports every published point (no tuning at prediction time: runs use the profile only).

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { arm64AltraCost, x86_64Xeon4210rCost } from "@mmgather/arch-generic";
import { type CostProfile, type CostTermName, defaultCost } from "@mmgather/mmu-gather";
import { COST_TERMS } from "@mmgather/teardown";
import { describe, expect, it } from "vitest";
import { fidelity, fit, loadTable, nnls } from "../calibrate.js";
import { loadProfileFile, loadTableFile } from "../calibration-files.js";
import { ARCHES } from "../spec.js";
import { runCli } from "./cli-helpers.js";

/** Every number of a profile: its cost terms and its design-ratio error. */
function numeric(p: CostProfile): Record<string, number> {
  return { ...Object.fromEntries(COST_TERMS.map((t) => [t.name, p[t.name]])), ratioError: p.ratioError };
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

  it("fidelity --arch runs the points on that adapter; all puts the adapters side by side", () => {
    const x86 = fidelity(loadTable("x86-64-4210r"), x86_64Xeon4210rCost, "x86");
    const gen = fidelity(loadTable("x86-64-4210r"), x86_64Xeon4210rCost);
    expect(x86.every((r) => r.arch === "x86")).toBe(true);
    expect(gen.every((r) => r.arch === "generic")).toBe(true);
    expect(x86.map((r) => r.id)).toEqual(gen.map((r) => r.id));
    const r = runCli(["fidelity", "--arch", "all", "--json"]);
    expect(r.status).toBe(0);
    const rows = JSON.parse(r.stdout) as { arch: string; table: string }[];
    expect(new Set(rows.map((x) => x.arch))).toEqual(new Set(ARCHES));
    // The 4210R table has 2M folios: s390 (1M PMD) cannot run it, and says so.
    expect(rows.some((x) => x.arch === "s390" && x.table === "x86-64-4210r")).toBe(false);
    expect(r.stderr).toContain("note: x86-64-4210r skipped on s390");
  });

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

describe("calibrate your own table (--table FILE --out FILE, --profile FILE)", () => {
  const dir = mkdtempSync(join(tmpdir(), "teardown-lab-cal-"));
  // A synthetic table whose times are exactly the model's under a known profile: the fit must find it.
  const truth: CostProfile = { ...defaultCost, name: "truth", atomic: 21, folioFree: 77 };
  const points = ["4K", "16K", "64K", "2M"].flatMap((folio) =>
    (["encoded-page", "encoded-nr-pages"] as const).map((variant) => ({
      id: `munmap-${folio}-${variant}`,
      preset: "munmap-1g",
      folio,
      variant,
      seconds: 1,
    })),
  );
  const table = {
    profile: "synthetic",
    machine: "the model under a known profile",
    source: "test",
    kind: "absolute" as const,
    priors: "default-priors",
    free: ["atomic", "folioFree", "ipte"] as CostTermName[],
    ridge: 0,
    points,
  };
  const predicted = fidelity(table, truth).filter((r) => r.kind === "time");
  const withTimes = {
    ...table,
    points: points.map((p, i) => ({ ...p, seconds: predicted[i].predicted / 1000 })),
  };
  const tableFile = join(dir, "table.json");
  writeFileSync(tableFile, JSON.stringify(withTimes));

  it("recovers the known terms and names the one the table cannot determine", () => {
    const r = fit(loadTableFile(tableFile));
    expect(r.profile.atomic).toBeCloseTo(21, 1);
    expect(r.profile.folioFree).toBeCloseTo(77, 1);
    expect(r.rms).toBeLessThan(1e-3);
    expect(r.undetermined).toEqual([{ term: "ipte", why: "no point of the table exercises it" }]);
  });

  it("the CLI writes the profile, and run / fidelity use it", () => {
    const out = join(dir, "profile.json");
    const c = runCli(["calibrate", "--table", tableFile, "--out", out]);
    expect(c.status).toBe(0);
    expect(c.stdout).toContain("The table cannot determine: ipte (no point of the table exercises it)");
    const p = loadProfileFile(out);
    expect(p.atomic).toBeCloseTo(21, 1);
    const run = runCli(["run", "--preset", "munmap-1g", "--size", "8M", "--profile", out, "--json"]);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)[0].estimate.profile).toBe("synthetic");
    const fid = runCli(["fidelity", "--table", tableFile, "--profile", out, "--json"]);
    expect(fid.status).toBe(0);
    for (const row of JSON.parse(fid.stdout) as { error: number }[])
      expect(Math.abs(row.error)).toBeLessThan(0.5);
  });

  it("bad tables and profiles exit 2 naming the field", () => {
    const bad = join(dir, "bad-profile.json");
    const { atomic: _omit, ...rest } = defaultCost;
    writeFileSync(bad, JSON.stringify(rest));
    const r = runCli(["run", "--preset", "munmap-1g", "--size", "8M", "--profile", bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("is not a valid cost profile: atomic:");
    const badTable = join(dir, "bad-table.json");
    writeFileSync(badTable, JSON.stringify({ ...withTimes, free: ["nope"] }));
    const t = runCli(["calibrate", "--table", badTable]);
    expect(t.status).toBe(2);
    expect(t.stderr).toContain("is not a valid measurement table: free.0: expected a cost term name");
    expect(runCli(["calibrate"]).stderr).toContain("give either a built-in table name or --table FILE");
  });
});
