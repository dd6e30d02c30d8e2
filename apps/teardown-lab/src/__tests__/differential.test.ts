// `teardown-lab differential`: every generated case is a valid scenario file whose spec is the generated
// one; the command end to end (tally, JSON, exit codes, a broken design making it fail, a failing case
// re-run from the scenario it prints). The queue path is in queue.test.ts.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomScenario, type ScenarioSpec } from "@mmgather/teardown";
import { describe, expect, it } from "vitest";
import {
  type DifferentialSummary,
  differentialBrokenNames,
  differentialDesigns,
  runDifferentialTask,
  scenarioOf,
} from "../differential.js";
import { validateScenario } from "../scenario.js";
import { ARCH_TLB, ARCHES, toScenarioSpec } from "../spec.js";
import { runCli } from "./cli-helpers.js";

/** The fields a spec sets to other than their default, arch by name (adapters hold functions). */
function normalised(spec: ScenarioSpec): unknown {
  const defaults: Record<string, unknown> = {
    lazyCpus: 0,
    gupFast: 0,
    devices: 0,
    cpus: 0,
    swap: 0,
    tlbEntries: 2048,
    touch: 1,
    fork: false,
    target: "parent",
    exitedChildren: 0,
    pmdMapped: false,
    dirtyFraction: 0,
    swapFraction: 0,
    keepInSwapCache: false,
    mlock: false,
    populate: 1,
    readFraction: 0,
    sharedFraction: 1,
    offset: 0,
    vma: 0,
  };
  const strip = (o: Record<string, unknown>) =>
    Object.fromEntries(
      Object.entries(o).filter(
        ([k, v]) =>
          v !== undefined &&
          defaults[k] !== v &&
          !(k === "folio" && JSON.stringify(v) === JSON.stringify({ order: 0 })),
      ),
    );
  const { variant: _v, arch, ...rest } = spec;
  return {
    ...strip(rest as Record<string, unknown>),
    arch: arch?.name,
    vmas: spec.vmas.map((v) => strip({ ...v })),
    op: strip({ ...spec.op }),
    ...(spec.concurrentOp === undefined ? {} : { concurrentOp: strip({ ...spec.concurrentOp }) }),
  };
}

describe("generated cases as scenario files", () => {
  it("every case of 300 is a valid scenario whose spec is the generated one, on every arch", () => {
    const arches = ARCHES.map((a) => ARCH_TLB[a]);
    for (let i = 0; i < 300; i++) {
      const spec = randomScenario(4, i, { arches });
      const arch = ARCHES.find((a) => ARCH_TLB[a] === spec.arch)!;
      const s = validateScenario(JSON.parse(JSON.stringify(scenarioOf(spec, `c${i}`))), `case ${i}`);
      expect(normalised(toScenarioSpec(s, "encoded-nr-pages", arch)), `case ${i}`).toEqual(normalised(spec));
    }
  });

  it("a chunk's reply: its cases counted once each per actor, arch and op; no failure", () => {
    const r = runDifferentialTask({ index: 3, seed: 2, first: 100, count: 12, arches: ["s390", "x86"] });
    if ("error" in r) throw new Error(r.error);
    expect(r.index).toBe(3);
    expect(r.failures).toEqual([]);
    for (const part of ["actor", "arch", "op"] as const)
      expect(Object.values(r.tally[part]).reduce((a, b) => a + b, 0)).toBe(12);
    expect(Object.keys(r.tally.arch)).toEqual(["s390", "x86"]);
  });

  it("--broken takes a design-level broken case only: an arch-level one would change the machine", () => {
    expect(differentialBrokenNames()).toContain("pte-left-behind");
    expect(differentialBrokenNames()).not.toContain("skip-lazy-cpus");
    expect(differentialDesigns("6.18", "pte-left-behind").map((d) => d.name)).toEqual([
      "encoded-page",
      "contig-range",
      "pte-left-behind",
    ]);
    expect(() => differentialDesigns("6.18", "skip-lazy-cpus")).toThrow(/breaks the arch adapter/);
    // A case that only names the machine it shows best on (x86 for a batched-flush race) is a design:
    // its arch is dropped, every design of a case runs on the case's adapter.
    for (const name of ["batched-pending-skipped", "migration-copy-before-flush", "kvm-fault-no-retry"]) {
      expect(differentialBrokenNames()).toContain(name);
      const broken = differentialDesigns("6.18", name)[2];
      expect(broken.name).toBe(name);
      expect(broken.override.arch).toBeUndefined();
    }
    expect(differentialDesigns("6.18", "batched-pending-skipped")[2].override.walk?.name).toBe(
      "no flush_tlb_batched_pending",
    );
    expect(differentialBrokenNames()).not.toContain("arm64-last-level-after-free");
    expect(differentialDesigns("6.9").map((d) => d.name)).toEqual([
      "encoded-page",
      "contig-range",
      "encoded-nr-pages@6.9",
    ]);
  });
});

describe("teardown-lab differential", () => {
  it("exit 0: a tally per actor, arch, op and knob; the same bytes for the same seed with --no-timing", () => {
    const args = ["differential", "--cases", "8", "--seed", "5", "--no-timing"];
    const a = runCli(args);
    expect(a.stderr).toBe("");
    expect(a.status).toBe(0);
    const lines = a.stdout.split("\n");
    expect(lines[0]).toBe(
      "differential: 8 cases of seed 5 on generic, s390, x86, arm64, designs encoded-page, contig-range, encoded-nr-pages",
    );
    expect(lines[1]).toMatch(/^passed \(no violation; the same final state where that is required\): 8 of 8/);
    expect(lines[2]).toBe("failing: 0");
    for (const label of ["actor   none ", "arch    generic ", "op      exit ", "knobs   noCpus "])
      expect(a.stdout).toContain(label);
    expect(a.stdout).not.toContain("elapsed");
    // Chunks of another size on another pool: the same bytes.
    expect(runCli([...args, "--threads", "1"]).stdout).toBe(a.stdout);
  });

  it("--json: the documented summary; --arch draws every case on one adapter", () => {
    const r = runCli(["differential", "--cases", "8", "--arch", "s390", "--json"]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as DifferentialSummary;
    expect(Object.keys(j)).toEqual([
      "source",
      "seed",
      "cases",
      "arches",
      "designs",
      "passed",
      "refused",
      "failed",
      "tally",
      "elapsedMs",
      "failures",
    ]);
    expect(j).toMatchObject({ source: "random", seed: 1, cases: 8, arches: ["s390"], passed: 8, failed: 0 });
    expect(j.elapsedMs).toBeGreaterThan(0);
    expect(j.tally.arch).toEqual({ s390: 8 });
    expect(Object.values(j.tally.actor).reduce((a, b) => a + b, 0)).toBe(8);
    expect(Object.keys(j.tally.knobs)).toContain("hugeZero");
  });

  it("--broken pte-left-behind: exit 1, every failing case printed with a scenario that re-runs it", () => {
    const r = runCli([
      "differential",
      "--cases",
      "3",
      "--broken",
      "pte-left-behind",
      "--json",
      "--no-timing",
    ]);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout) as DifferentialSummary;
    expect(j.designs).toEqual(["encoded-page", "contig-range", "pte-left-behind"]);
    expect(j.failed).toBeGreaterThan(0);
    expect(j.failed + j.passed).toBe(3);
    const f = j.failures[0];
    expect(f.groups).toEqual([["encoded-page", "contig-range"], ["pte-left-behind"]]);
    expect(f.designs[0]).toMatchObject({ design: "encoded-page", violations: [], finalStateProblems: [] });
    expect(f.designs[2].violations.length + f.designs[2].finalStateProblems.length).toBeGreaterThan(0);

    const dir = mkdtempSync(join(tmpdir(), "teardown-lab-differential-"));
    const file = join(dir, "case.json");
    writeFileSync(file, JSON.stringify(f.scenario));
    const again = runCli([
      "differential",
      file,
      "--arch",
      f.arch,
      "--broken",
      "pte-left-behind",
      "--json",
      "--no-timing",
    ]);
    expect(again.status).toBe(1);
    const k = JSON.parse(again.stdout) as DifferentialSummary;
    expect(k).toMatchObject({ source: file, seed: null, cases: 1, failed: 1 });
    expect(k.failures[0].groups).toEqual(f.groups);
    expect(k.failures[0].designs).toEqual(f.designs);
    // The correct designs are silent on it, and `run` takes the same file.
    expect(runCli(["differential", file, "--arch", f.arch, "--no-timing"]).status).toBe(0);
    expect(runCli(["run", file, "--arch", f.arch, "--no-timing"]).status).toBe(0);

    const text = runCli(["differential", "--cases", "3", "--broken", "pte-left-behind", "--no-timing"]);
    expect(text.status).toBe(1);
    expect(text.stdout).toContain(
      `case ${f.index} (seed ${f.seed}, ${f.arch}, ${f.op}${f.actor === "none" ? "" : ` + ${f.actor}`}): final states differ (${f.differsIn.join(", ")}): encoded-page, contig-range | pte-left-behind`,
    );
    expect(text.stdout).toContain(
      `re-run: save the scenario below as ${f.scenario.name}.json, then teardown-lab differential ${f.scenario.name}.json --arch ${f.arch}`,
    );
  });

  it("a scenario file on every arch it can run on; what cannot run is skipped with a note", () => {
    const dir = mkdtempSync(join(tmpdir(), "teardown-lab-differential-"));
    const file = join(dir, "thp.json");
    writeFileSync(
      file,
      JSON.stringify({
        cpus: 2,
        vmas: [{ kind: "anon", size: "4M", folio: "2M", pmd: true }],
        op: { kind: "dontneed", offset: "1M", length: "2M" },
      }),
    );
    const r = runCli(["differential", file, "--no-timing"]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain("note: skipping s390: vmas[0].folio: 2M folios don't exist on s390");
    expect(r.stdout).toContain(`differential: ${file} on generic, x86, arm64`);
    expect(r.stdout).toContain("passed (no violation; the same final state where that is required): 3 of 3");
    expect(runCli(["differential", file, "--arch", "s390"]).status).toBe(2);
  });

  it("refuses what it cannot do with exit 2 and one line", () => {
    const cases = [
      [["differential", "scenarios/racing-munmap.yaml", "--cases", "3"], "--cases draws random cases"],
      [
        ["differential", "scenarios/racing-munmap.yaml", "--queue", "redis://127.0.0.1:1"],
        "a SCENARIO_FILE runs here",
      ],
      [
        ["differential", "--queue", "redis://127.0.0.1:1", "--threads", "2"],
        "--threads sizes the local pool",
      ],
      [["differential", "--resume", "0123abcd"], "--resume needs --queue"],
      [["differential", "--broken", "skip-lazy-cpus"], "argument 'skip-lazy-cpus' is invalid"],
      [["differential", "--cases", "0"], "expected an integer from 1"],
    ] as const;
    for (const [args, message] of cases) {
      const r = runCli(args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toContain(message);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
  });
});
