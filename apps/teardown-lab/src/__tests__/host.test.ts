// `teardown-lab host measure | validate | replay`: the table a measurement becomes, validate on a
// synthetic table with a known answer, and — as root on Linux — the commands end to end in a quick
// mode (8 MiB, few rounds). No test asserts a timing.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HOST_FOLIOS, type HostTable, readThpSettings } from "@mmgather/host";
import { type CostProfile, defaultCost } from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import { dot, pointCounters, termVector } from "../calibrate.js";
import { loadTableFile } from "../calibration-files.js";
import { freeHighBatch, replayOf, toCalibrationTable, validateHost } from "../host.js";
import { validateScenario } from "../scenario.js";
import { runCli } from "./cli-helpers.js";

const liveSkip =
  process.platform !== "linux"
    ? `not Linux (${process.platform})`
    : process.getuid?.() !== 0
      ? "not root (host measure reads PFNs and writes THP knobs)"
      : null;
if (liveSkip !== null) console.log(`teardown-lab host live tests skipped: ${liveSkip}`);

/** A measured table as `measure` returns it, every point one second (times are set by the test). */
function hostTable(bytes: number): HostTable {
  const anon = ["munmap", "exit", "dontneed", "fork-munmap"] as const;
  const points = [
    ...anon.flatMap((op) => HOST_FOLIOS.map((folio) => ({ op, folio }))),
    ...(["4K", "64K", "2M-pmd"] as const).map((folio) => ({ op: "shmem-munmap" as const, folio })),
    { op: "file-read-munmap" as const, folio: "page-cache" as const },
    { op: "file-write-munmap" as const, folio: "page-cache" as const },
  ].map((p) => ({
    id: `${p.op}-${p.folio}`,
    ...p,
    bytes,
    seconds: 1,
    min: 1,
    spread: 0.05,
    rounds: 9,
    flagged: false,
    layoutOk: true,
    layout: "as asked",
    pmdShare: p.folio === "2M-pmd" ? 1 : p.op === "file-read-munmap" ? 0.9 : 0,
    ...(p.op === "file-read-munmap" ? { observedFolio: "2M" } : {}),
  }));
  return {
    host: {
      kernel: "6.18.0",
      cpu: "test CPU",
      cores: 2,
      llcPerCpu: 16 << 20,
      pcpBatch: 63,
      thp: { enabled: "madvise" },
      method: "synthetic",
    },
    points,
    skipped: [],
  };
}

describe("host tables", () => {
  it("PCPF_FREE_HIGH_BATCH: the CPU's LLC share above 3 × batch pages", () => {
    expect(freeHighBatch(16 << 20, 63)).toBe(true);
    expect(freeHighBatch(704 << 10, 63)).toBe(false); // the 4210R: 176 pages ≤ 189
    expect(freeHighBatch(null, 63)).toBe(false);
  });

  it("maps each measured operation to the model's scenario", () => {
    const t = toCalibrationTable(hostTable(64 << 20), true);
    expect(t.kind).toBe("absolute");
    if (t.kind !== "absolute") return;
    const by = (id: string) => t.points.find((p) => p.id === id)!;
    expect(by("munmap-2M-pmd")).toMatchObject({
      preset: "munmap-1g",
      folio: "2M",
      pmd: true,
      op: "munmap",
      size: "64M",
    });
    expect(by("munmap-2M")).not.toHaveProperty("pmd");
    expect(by("exit-16K")).toMatchObject({ preset: "munmap-1g", op: "exit" });
    expect(by("fork-munmap-64K")).toMatchObject({ preset: "fork-shared", op: "munmap" });
    expect(by("shmem-munmap-4K")).toMatchObject({ preset: "shmem-file", dirty: 1 });
    expect(by("file-read-munmap-page-cache")).toMatchObject({
      preset: "file-private",
      folio: "2M",
      pmd: true,
      dirty: 0,
    });
    expect(by("file-write-munmap-page-cache")).toMatchObject({
      preset: "file-private",
      folio: "4K",
      dirty: 1,
    });
    expect(t.pcpPolicy).toBe("v6.7");
    expect(t.pcpFreeHighBatch).toBe(true);
    expect(t.host?.thpConfigured).toBe(true);
    // Every point is a scenario the model runs.
    for (const p of t.points) expect(() => pointCounters(p, p.variant, t), p.id).not.toThrow();
  });

  it("validate recovers a known profile from the munmap points and predicts every held-out point", () => {
    const truth: CostProfile = {
      ...defaultCost,
      name: "truth",
      atomic: 31,
      pageMapcount: 12,
      folioFree: 140,
      pageFree: 5,
    };
    const t0 = toCalibrationTable(hostTable(64 << 20), false);
    if (t0.kind !== "absolute") throw new Error("absolute expected");
    const t = {
      ...t0,
      points: t0.points.map((p) => ({
        ...p,
        seconds: dot(termVector(pointCounters(p, p.variant, t0), "all"), truth) / 1e9,
      })),
    };
    const v = validateHost(t);
    expect(v.fit.profile.atomic).toBeCloseTo(31, 0);
    expect(v.fit.profile.folioFree).toBeCloseTo(140, 0);
    expect(v.fit.profile.pageFree).toBeCloseTo(5, 0);
    expect(v.fit.profile.pageMapcount).toBeCloseTo(12, 0);
    expect(v.rows.filter((r) => !r.heldOut)).toHaveLength(HOST_FOLIOS.length);
    expect(v.rows.filter((r) => r.heldOut).length).toBe(t.points.length - HOST_FOLIOS.length);
    expect(v.medianHeldOut).toBeLessThan(0.5);
    expect(v.worstHeldOut).toBeLessThan(0.5);
  });

  it("the committed measurement of this project's machine is a valid table that validate reads", () => {
    const t = loadTableFile(join(__dirname, "../../calibration/measured/amd-epyc-6.18.json"));
    expect(t.kind).toBe("absolute");
    expect(t.host?.thpConfigured).toBe(true);
    const v = validateHost(t);
    expect(v.fit.undetermined).toEqual([]);
    expect(v.rows.filter((r) => !r.heldOut).map((r) => r.id)).toEqual(HOST_FOLIOS.map((f) => `munmap-${f}`));
    expect(v.rows.filter((r) => r.heldOut)).toHaveLength(21);
    // A miss names its terms, and marks those the munmap points never exercised.
    for (const r of v.rows) expect(r.why === "").toBe(Math.abs(r.error) <= 30);
  });

  it("validate leaves out a point whose layout did not come out as asked", () => {
    const t0 = toCalibrationTable(hostTable(64 << 20), false);
    if (t0.kind !== "absolute") throw new Error("absolute expected");
    const t = {
      ...t0,
      points: t0.points.map((p) => (p.id === "exit-64K" ? { ...p, layoutOk: false } : p)),
    };
    const v = validateHost(t);
    expect(v.excluded).toEqual(["exit-64K"]);
    expect(v.rows.some((r) => r.id === "exit-64K")).toBe(false);
  });

  it("replay lists what it cannot reproduce", () => {
    const s = validateScenario({
      name: "r",
      cpus: 2,
      exitedChildren: 1,
      vmas: [
        { name: "heap", kind: "anon", size: "8M", folio: { "4K": 1, "64K": 3 }, swap: 0.25 },
        { name: "f", kind: "file-private", size: "4M", folio: "64K", dirty: 0.5 },
      ],
      op: { kind: "munmap", vma: "f", offset: "1M" },
    });
    const r = replayOf(s);
    expect(r.config.op).toEqual({ kind: "munmap", index: 1, offset: 1 << 20, length: 3 << 20 });
    expect(r.config.mappings[0]).toMatchObject({ kind: "anon", folioKb: 64, populate: 0.75 });
    expect(r.expect[0]).toEqual({ folio: "64K", present: 1536 });
    expect(r.expect[1].folio).toBe("page-cache");
    const notes = r.notes.join("\n");
    for (const w of ["folio mix", "swapped out", "page cache", "cpus 2", "exited children"])
      expect(notes).toContain(w);
  });
});

describe("host commands without root or off Linux", () => {
  it.skipIf(liveSkip !== null)("host measure as another user exits 2 and says why", () => {
    const r = spawnSync(
      process.execPath,
      [
        new URL("../../dist/teardown-lab.js", import.meta.url).pathname,
        "host",
        "measure",
        "--size",
        "8M",
        "--rounds",
        "1",
      ],
      {
        uid: 65534,
        gid: 65534,
        encoding: "utf8",
        cwd: tmpdir(),
      },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/needs root/);
  });

  it("bad options exit 2 naming the option", () => {
    const r = runCli(["host", "measure", "--ops", "munmap,unmap"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('"unmap" is not a host operation');
    const v = runCli(["host", "validate", "--table", "/nonexistent.json"]);
    expect(v.status).toBe(2);
    expect(v.stderr).toContain("no such file");
  });
});

describe.skipIf(liveSkip !== null)("host commands on this kernel (root, quick mode)", () => {
  const dir = mkdtempSync(join(tmpdir(), "teardown-lab-host-"));
  const table = join(dir, "table.json");

  it("measure writes a calibration table; the THP knobs are as before; validate reads it", () => {
    const before = readThpSettings();
    const m = runCli([
      "host",
      "measure",
      "--size",
      "8M",
      "--rounds",
      "3",
      "--ops",
      "munmap,exit,fork-munmap",
      "--configure-thp",
      "--out",
      table,
    ]);
    expect(m.status, m.stderr).toBe(0);
    expect(readThpSettings()).toEqual(before);
    expect(m.stdout).toContain("munmap-2M-pmd");
    const t = loadTableFile(table);
    expect(t.kind).toBe("absolute");
    if (t.kind !== "absolute") return;
    expect(t.points).toHaveLength(15);
    for (const p of t.points) {
      expect(p.rounds).toBe(3);
      expect(p.layoutOk, `${p.id}: ${p.layout}`).toBe(true);
    }
    expect(t.host?.thpConfigured).toBe(true);
    const v = runCli(["host", "validate", "--table", table, "--json"]);
    expect(v.status, v.stderr).toBe(0);
    const out = JSON.parse(v.stdout) as { rows: { id: string; heldOut: boolean }[]; medianHeldOut: number };
    expect(out.rows.filter((r) => r.heldOut).map((r) => r.id)).toContain("exit-4K");
    expect(Number.isFinite(out.medianHeldOut)).toBe(true);
    const c = runCli(["calibrate", "--table", table, "--out", join(dir, "profile.json")]);
    expect(c.status, c.stderr).toBe(0);
  }, 300_000);

  it("replay builds a 64K-folio mapping, times its munmap and prints every design's prediction", () => {
    const scen = join(dir, "s.json");
    writeFileSync(
      scen,
      JSON.stringify({
        name: "replay-test",
        vmas: [{ kind: "anon", size: "8M", folio: "64K" }],
        op: { kind: "munmap" },
      }),
    );
    const r = runCli(["host", "replay", scen, "--rounds", "2", "--configure-thp", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      measured: { median: number };
      layouts: { present: number; folios: [number, number][] }[];
      predicted: { variant: string; ms: number }[];
    };
    expect(out.layouts[0].present).toBe(2048);
    expect(out.layouts[0].folios).toEqual([[16, 128]]);
    expect(out.predicted.map((p) => p.variant)).toEqual(["encoded-page", "contig-range", "encoded-nr-pages"]);
    expect(out.measured.median).toBeGreaterThan(0);
    const text = runCli([
      "host",
      "replay",
      "--preset",
      "fork-shared",
      "--size",
      "8M",
      "--op",
      "exit",
      "--rounds",
      "2",
    ]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/exit minus a baseline child's exit/);
  }, 300_000);
});
