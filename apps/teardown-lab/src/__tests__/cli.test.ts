// End-to-end CLI tests: spawn `node dist/teardown-lab.js` (the bin) as a user would (turbo builds before testing).
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { RunResult } from "../format.js";
import { PRESET_NAMES } from "../presets.js";
import { PRIMITIVE_COUNTERS } from "../run.js";
import { validateScenario } from "../scenario.js";
import { readScenarioData } from "../scenario-file.js";
import { ARCH_TLB, ARCHES, type ArchName, SpecError, toScenarioSpec, VARIANTS } from "../spec.js";
import { APP_DIR, runCli } from "./cli-helpers.js";

const JSON_FIELDS = [
  "scenario",
  "variant",
  "arch",
  "op",
  "pagesTornDown",
  "foliosTornDown",
  "pageTablePagesFreed",
  "batchPagesFreed",
  "primitiveOps",
  "counters",
  "estimatedNs",
  "estimate",
  "simWallNs",
  "stateBytes",
  "violations",
  "finalStateProblems",
];

function json(args: string[]): RunResult[] {
  const r = runCli([...args, "--json"]);
  expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as RunResult[];
}

describe("run", () => {
  it("prints a side-by-side table with a verdict, the estimated time and the differing counters", () => {
    const r = runCli(["run", "--preset", "munmap-1g", "--size", "16M", "--folio", "64K"]);
    expect(r.status).toBe(0);
    const [first, second] = r.stdout.split("\n");
    expect(first).toBe(
      "Verdict (estimated kernel time = Σ counter × cost, profile x86-64-4210r (design ratios ±23 %)):",
    );
    expect(second).toMatch(/^generic: (\S+ is fastest|.* tie)/);
    expect(r.stdout).toContain("encoded-page/generic");
    expect(r.stdout).toContain("contig-range/generic");
    expect(r.stdout).toContain("encoded-nr-pages/generic");
    expect(r.stdout).toMatch(/estimated kernel time\s+[\d.]+ (ms|µs)\s+[\d.]+ (ms|µs)\s+[\d.]+ (ms|µs)/);
    expect(r.stdout).toMatch(/cost profile\s+x86-64-4210r\s+x86-64-4210r\s+x86-64-4210r/);
    // The simulator's wall time only with --timing (the first column would pay the JIT's warm-up).
    expect(r.stdout).not.toContain("simulator wall time");
    expect(r.stdout).toMatch(/model memory\s+[\d.]+ (KiB|MiB)/);
    expect(r.stdout).toMatch(/violations\s+0\s+0\s+0/);
    expect(r.stdout).toContain("counters that differ most");
    expect(r.stdout).toMatch(/^(gather|folio|walk|swap|cpu|teardown)\.\w+\s+[\d.k]+\s+[\d.k]+\s+[\d.k]+$/m);
  });

  it("--devices: a device sharing the page tables gets one invalidation per CPU flush, costed; s390 is skipped", () => {
    const args = ["run", "--preset", "munmap-1g", "--size", "8M", "--folio", "64K", "--cpus", "2"];
    const rs = json([...args, "--devices", "1", "--arch", "all"]);
    // Every arch whose flush tells the devices (all but s390), every design.
    const withDevices = ARCHES.filter((a) => ARCH_TLB[a].invalidatesSecondaryTlbs);
    expect(withDevices).not.toContain("s390");
    expect(rs.map((r) => `${r.variant}/${r.arch}`)).toEqual(
      withDevices.flatMap((a) => VARIANTS.map((v) => `${v}/${a}`)),
    );
    const plain = json([...args, "--arch", "all"]).filter((r) => r.arch !== "s390");
    for (const [i, r] of rs.entries()) {
      expect(r.violations).toEqual([]);
      const n = r.counters["cpu.secondaryTlbInvalidations"];
      expect(n).toBe(r.counters["gather.tlbFlushRange"] + r.counters["gather.tlbFlushMm"]);
      expect(n).toBeGreaterThan(0);
      expect(plain[i].counters["cpu.secondaryTlbInvalidations"]).toBe(0);
      // The only difference in the estimate is the devices' invalidations.
      expect(r.estimate.terms.secondaryTlbInvalidate).toBe(n * 3000); // the 3 µs prior
      expect(r.estimatedNs - plain[i].estimatedNs).toBeCloseTo(r.estimate.terms.secondaryTlbInvalidate, 6);
    }
    const bad = runCli(["run", "--preset", "munmap-1g", "--size", "8M", "--devices", "1"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("devices: devices are checked with the CPU model: expected cpus ≥ 1");
  });

  it("--json: one documented object per (variant, arch), exact counts", () => {
    const rs = json(["run", "--preset", "munmap-1g", "--size", "8M", "--folio", "64K", "--arch", "all"]);
    expect(rs.map((r) => `${r.variant}/${r.arch}`)).toEqual(
      ARCHES.flatMap((a) => VARIANTS.map((v) => `${v}/${a}`)),
    );
    for (const r of rs) {
      expect(Object.keys(r)).toEqual(JSON_FIELDS);
      expect(r.scenario).toBe("munmap-1g");
      expect(r.op).toBe("munmap");
      expect(r.pagesTornDown).toBe(2048);
      // The estimate is Σ of its terms, under the arch adapter's own profile.
      const sum = Object.values(r.estimate.terms).reduce((a, b) => a + b, 0);
      expect(r.estimatedNs).toBeCloseTo(sum, 3);
      expect(r.estimate.profile).toBe(ARCH_TLB[r.arch as ArchName].cost.name);
      expect(r.simWallNs).toBeGreaterThan(0);
      expect(r.stateBytes).toBeGreaterThan(0);
      expect(r.violations).toEqual([]);
      for (const [k, v] of Object.entries(r.counters)) {
        expect(k).toMatch(/^(gather|walk|folio|swap|cpu|teardown)\.[\w.]+$/);
        expect(Number.isInteger(v)).toBe(true);
      }
      expect(r.primitiveOps).toBe(PRIMITIVE_COUNTERS.reduce((a, k) => a + (r.counters[k] ?? 0), 0));
      // 128 data folios of 64K are freed; the page tables of the 8 MiB range (4 PTE tables) on top.
      expect(r.foliosTornDown).toBe(128);
      expect(r.pageTablePagesFreed).toBe(r.counters["folio.foliosFreed"] - 128);
      expect(r.pageTablePagesFreed).toBeGreaterThanOrEqual(r.arch === "s390" ? 8 : 4);
      expect(r.batchPagesFreed).toBe(r.counters["gather.batchPagesFreed"]);
      expect(r.finalStateProblems).toEqual([]);
    }
    // s390 does not gather pages: every page is freed on queue.
    expect(rs.find((r) => r.arch === "s390")!.counters["gather.pagesFreedOnQueue"]).toBe(2048);
    expect(rs[0].counters["gather.entriesQueued"]).toBe(2048);
    // contig-range: one range per folio (plus one where a range crosses a batch boundary).
    expect(rs[1].counters["gather.entriesQueued"]).toBeGreaterThanOrEqual(128);
    expect(rs[1].counters["gather.entriesQueued"]).toBeLessThan(140);
  });

  it("--csv flattens the same fields, one row per result", () => {
    const r = runCli(["run", "--preset", "fork-shared", "--size", "4M", "--csv"]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(4);
    const header = lines[0].split(",");
    expect(header.slice(0, 14)).toEqual([
      "scenario",
      "variant",
      "arch",
      "op",
      "pagesTornDown",
      "foliosTornDown",
      "pageTablePagesFreed",
      "batchPagesFreed",
      "primitiveOps",
      "estimatedNs",
      "simWallNs",
      "stateBytes",
      "violations",
      "finalStateProblems",
    ]);
    expect(header).toContain("gather.entriesQueued");
    const row = lines[1].split(",");
    expect(row[0]).toBe("fork-shared");
    expect(Number(row[9])).toBeGreaterThan(0);
    expect(header[14]).toBe("profile");
    expect(row[14]).toBe("x86-64-4210r");
  });

  it("--no-timing: no wall-clock field, and the same scenario and seed give byte-identical JSON and CSV", () => {
    for (const fmt of ["--json", "--csv"]) {
      const args = [
        "run",
        "--preset",
        "exit-kernel-build",
        "--size",
        "8M",
        "--seed",
        "3",
        "--no-timing",
        fmt,
      ];
      const a = runCli(args);
      const b = runCli(args);
      expect(a.status).toBe(0);
      expect(a.stdout).toBe(b.stdout);
      expect(a.stdout).not.toContain("simWallNs");
    }
    const table = runCli(["run", "--preset", "munmap-1g", "--size", "8M", "--no-timing"]);
    expect(table.stdout).not.toContain("simulator wall time");
    const timed = json(["run", "--preset", "munmap-1g", "--size", "8M"]);
    expect(timed[0].simWallNs).toBeGreaterThan(0);
  });

  it.each(PRESET_NAMES)("preset %s runs on both arches with no violation", (name) => {
    const rs = json(["run", "--preset", name, "--size", "4M", "--arch", "all"]);
    expect(rs).toHaveLength(ARCHES.length * VARIANTS.length);
    for (const r of rs) expect(r.violations).toEqual([]);
  });

  it("fork-shared: munmap in the parent frees no data folio", () => {
    const rs = json(["run", "--preset", "fork-shared", "--size", "4M"]);
    for (const r of rs) {
      expect(r.pagesTornDown).toBe(1024);
      expect(r.counters["folio.lruDels"]).toBe(0);
    }
  });

  it("dirty-shared-file exercises the delayed rmap", () => {
    const rs = json(["run", "--preset", "dirty-shared-file", "--size", "4M"]);
    const ep = rs.find((r) => r.variant === "encoded-page")!;
    expect(ep.counters["gather.rmapCallsDelayed"]).toBeGreaterThan(0);
    expect(ep.counters["teardown.forcedFlushes.dirtyShared"]).toBeGreaterThan(0);
  });

  it("--pmd maps 2M folios with a PMD; without it they are PTE-mapped", () => {
    const base = [
      "run",
      "--preset",
      "munmap-1g",
      "--size",
      "8M",
      "--folio",
      "2M",
      "--variant",
      "encoded-page",
    ];
    const [pte] = json(base);
    const [pmd] = json([...base, "--pmd"]);
    expect(pte.counters["walk.hugePmdsZapped"]).toBe(0);
    expect(pmd.counters["walk.hugePmdsZapped"]).toBe(4);
    expect(pte.pagesTornDown).toBe(pmd.pagesTornDown);
  });

  it("s390: a 2M folio cannot exist there (PMD order 8 = 1M): explained, exit 2", () => {
    const r = runCli([
      "run",
      "--preset",
      "munmap-1g",
      "--size",
      "8M",
      "--folio",
      "2M",
      "--pmd",
      "--arch",
      "s390",
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("2M folios don't exist on s390: its PMD maps 1M (PMD order 8)");
    const all = runCli([
      "run",
      "--preset",
      "munmap-1g",
      "--size",
      "8M",
      "--folio",
      "2M",
      "--arch",
      "all",
      "--json",
    ]);
    expect(all.status).toBe(0);
    expect(all.stderr).toContain("note: skipping s390");
    // Every arch whose PMD maps 2M, three designs each.
    expect((JSON.parse(all.stdout) as RunResult[]).map((x) => x.arch)).toEqual(
      ARCHES.filter((a) => ARCH_TLB[a].geometry.pmdOrder === 9).flatMap((a) => VARIANTS.map(() => a)),
    );
  });

  it("s390: 1M folios are PMD-mapped there; on generic --pmd is a note", () => {
    const r = runCli([
      "run",
      "--preset",
      "munmap-1g",
      "--size",
      "4M",
      "--folio",
      "1M",
      "--pmd",
      "--arch",
      "all",
      "--json",
    ]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain("no folio is 2M (the PMD size on generic)");
    const rs = JSON.parse(r.stdout) as RunResult[];
    expect(rs.find((x) => x.arch === "s390")!.counters["walk.hugePmdsZapped"]).toBe(4);
    expect(rs.find((x) => x.arch === "generic")!.counters["walk.hugePmdsZapped"]).toBe(0);
  });

  it("--kernel 6.9 runs the nr-pages design under v6.9's rules; the other designs are unchanged", () => {
    const args = ["run", "--preset", "munmap-1g", "--size", "8M", "--folio", "64K", "--no-timing"];
    const v69 = json([...args, "--kernel", "6.9"]);
    const v618 = json(args);
    expect(v69.map((r) => r.variant)).toEqual(["encoded-page", "contig-range", "encoded-nr-pages@6.9"]);
    expect(v618.map((r) => r.variant)).toEqual(["encoded-page", "contig-range", "encoded-nr-pages"]);
    expect(v69.slice(0, 2)).toEqual(v618.slice(0, 2));
    // v6.9's free_pages_and_swap_cache starts with lru_add_drain; v6.18's does not.
    expect(v69[2].counters["gather.lruAddDrain"]).toBeGreaterThan(0);
    expect(v618[2].counters["gather.lruAddDrain"]).toBe(0);
  });

  it("--variant and --op select; dontneed is madvise(MADV_DONTNEED)", () => {
    const rs = json([
      "run",
      "--preset",
      "shmem-file",
      "--size",
      "4M",
      "--variant",
      "contig-range",
      "--op",
      "dontneed",
    ]);
    expect(rs).toHaveLength(1);
    expect(rs[0].variant).toBe("contig-range");
    expect(rs[0].op).toBe("dontneed");
  });

  it("is deterministic for a seed", () => {
    const a = json(["run", "--preset", "exit-kernel-build", "--size", "4M", "--seed", "9"]);
    const b = json(["run", "--preset", "exit-kernel-build", "--size", "4M", "--seed", "9"]);
    expect(a.map((r) => r.counters)).toEqual(b.map((r) => r.counters));
  });

  it("refuses a run that would exceed the memory limit, naming the limit", () => {
    const r = runCli(["run", "--preset", "munmap-1g", "--memory-limit", "4M"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /refusing to run munmap-1g: the model would need about [\d.]+ MiB, more than the limit of 4 MiB \(--memory-limit 4M\)/,
    );
    const big = runCli(["run", "--preset", "munmap-1g", "--size", "64G", "--memory-limit", "256M"]);
    expect(big.status).toBe(2);
    expect(big.stderr).toContain("more than the limit of 256 MiB (--memory-limit 256M)");
  });

  it("anonymous 8K folios do not exist (anon THP orders skip 1): exit 2 naming the allowed sizes", () => {
    const r = runCli(["run", "--preset", "munmap-1g", "--size", "4M", "--folio", "8K"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("anonymous folios of 8K don't exist");
    expect(r.stderr).toContain("use 4K, 16K, 32K, 64K, 128K, 256K, 512K, 1M, 2M");
    expect(r.stderr).not.toContain("    at ");
    // Page-cache folios may be order 1.
    const file = json(["run", "--preset", "dirty-shared-file", "--size", "4M", "--folio", "8K"]);
    for (const x of file) expect(x.violations).toEqual([]);
  });

  it("shows progress on stderr with --progress", () => {
    const r = runCli(["run", "--preset", "munmap-1g", "--size", "4M", "--progress", "--json"]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain("munmap-1g [");
    expect(r.stderr).toContain("3/3");
    JSON.parse(r.stdout);
  });

  it.each(readdirSync(join(APP_DIR, "scenarios")))("example scenario %s runs clean", (file) => {
    const rs = json(["run", join("scenarios", file), "--arch", "all"]);
    // Every variant on every arch whose geometry has the scenario's folio sizes (no 2M folio on s390).
    const s = validateScenario(readScenarioData(join(APP_DIR, "scenarios", file)), file);
    const arches = ARCHES.filter((a) => {
      try {
        toScenarioSpec(s, "encoded-page", a);
        return true;
      } catch (e) {
        if (e instanceof SpecError) return false;
        throw e;
      }
    });
    expect(arches).toContain("generic");
    expect(rs).toHaveLength(VARIANTS.length * arches.length);
    for (const r of rs) {
      expect(r.violations).toEqual([]);
      expect(r.counters["teardown.finalStateProblems"]).toBe(0);
    }
  });
});

describe("bad command-line input exits 2 with a clear message", () => {
  it.each([
    [["run"], "give a SCENARIO_FILE or --preset NAME"],
    [["run", "--preset", "nope"], 'unknown preset "nope"'],
    [["run", "--preset", "constructor"], 'unknown preset "constructor"'],
    [["run", "--preset", "munmap-1g", "--folio", "3K"], "expected a folio size, one of 4K, 8K"],
    [["run", "--preset", "munmap-1g", "--kernel", "6.1"], "6.9, 6.18"],
    [["run", "--preset", "munmap-1g", "--folio", "4M"], "expected a folio size"],
    [["run", "--preset", "munmap-1g", "--size", "5000"], "expected a non-zero multiple of 4K"],
    [["run", "--preset", "munmap-1g", "--op", "fork"], "Allowed choices are exit, munmap, dontneed"],
    [["run", "--preset", "munmap-1g", "--variant", "x"], "Allowed choices are encoded-page, contig-range"],
    [["run", "--preset", "munmap-1g", "--cpus", "-1"], "expected an integer from 0 to 64"],
    [["run", "--preset", "munmap-1g", "--json", "--csv"], "--json and --csv exclude each other"],
    [["run", "missing.yaml"], "cannot read scenario file missing.yaml (no such file)"],
    [["frobnicate"], "unknown command 'frobnicate'"],
    [["explain", "--broken", "nope"], "Allowed choices are free-before-flush"],
  ])("%j", (args, message) => {
    const r = runCli(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("valid-looking input the model cannot take exits 2 with one line, no stack trace", () => {
  const dir = mkdtempSync(join(tmpdir(), "teardown-lab-refuse-"));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const refused = (args: string[], message: string) => {
    const r = runCli(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  };

  it("64 dirty file-private VMAs of 1G are refused before anything is built (their COW copies count)", () => {
    const vmas = Array.from({ length: 64 }, () => ({ kind: "file-private", size: "1G", dirty: 1 }));
    const p = file("cow-64g.json", JSON.stringify({ vmas, op: { kind: "exit" } }));
    const bad = runCli(["run", p]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("vmas: expected at most 64G of pages in all");
    expect(bad.stderr).toContain("got 128G");
    // The same VMAs clean map 64G: allowed by this rule (the memory guard still applies).
    const clean = file(
      "clean-64g.json",
      JSON.stringify({ vmas: vmas.map((v) => ({ ...v, dirty: 0 })), op: { kind: "exit" } }),
    );
    const r = runCli(["run", clean, "--memory-limit", "1M"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/refusing to run .*more than the limit of/);
  });

  it("the automatic swap size fits swap-out of large folios (aligned runs of slots)", () => {
    const p = file(
      "swap.yaml",
      "name: s\nvmas:\n  - { name: heap, kind: anon, size: 64M, folio: 2M, swap: 0.9 }\nop: { kind: exit }\n",
    );
    const r = runCli(["run", p, "--json"]);
    expect(r.status).toBe(0);
    const rs = JSON.parse(r.stdout) as RunResult[];
    expect(rs[0].counters["walk.swapPtesCleared"]).toBeGreaterThan(0);
  });

  it("an explicit swap too small for the swap-out is refused", () => {
    const p = file(
      "small-swap.yaml",
      "name: s\nswap: 4M\nvmas:\n  - { name: heap, kind: anon, size: 64M, folio: 2M, swap: 0.9 }\nop: { kind: exit }\n",
    );
    refused(["run", p], "is too small for the swap-out the scenario asks for");
  });

  it("deeply nested input is refused before validation", () => {
    let deep = "1";
    for (let i = 0; i < 20000; i++) deep = `{"a":${deep}}`;
    const p = file(
      "deep.json",
      `{"name":"d","vmas":[{"kind":"anon","size":"4M","folio":${deep}}],"op":{"kind":"exit"}}`,
    );
    refused(["run", p], "nested more than 32 levels deep");
  });

  it("only regular files of at most 1 MiB are read", () => {
    refused(["run", "/dev/zero"], "cannot read scenario file /dev/zero: not a regular file");
    const big = file("big.yaml", `# ${"x".repeat(1 << 20)}\n`);
    refused(["run", big], "more than the 1048576 a scenario may have");
  });

  it("unknown YAML tags are refused, not dropped", () => {
    const p = file("tag.yaml", "name: t\nvmas: !foo [ ]\nop: { kind: exit }\n");
    refused(["run", p], "Unresolved tag: !foo");
  });
});

describe("explain", () => {
  it("narrates the tiny scenario per variant, in the kernel's order", () => {
    const r = runCli(["explain"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("one 64 KiB anonymous folio and one dirty shared file page, on two CPUs");
    for (const v of ["encoded-page", "contig-range", "encoded-nr-pages"])
      expect(r.stdout).toContain(`== ${v} on generic ==`);
    const ep = r.stdout.split("== contig-range")[0];
    const at = (s: string) => ep.indexOf(s);
    expect(at("clear 1 page of PTEs")).toBeGreaterThan(0);
    expect(at("record 0x")).toBeGreaterThan(at("clear 1 page of PTEs"));
    expect(at("marked 'delay rmap'")).toBeGreaterThan(0);
    expect(at("flush_tlb_mm")).toBeGreaterThan(at("marked 'delay rmap'"));
    expect(at("now that the TLB is flushed")).toBeGreaterThan(at("flush_tlb_mm"));
    expect(at("tlb_flush_rmaps")).toBeGreaterThan(at("flush_tlb_mm"));
    expect(at("free_pages_and_swap_cache")).toBeGreaterThan(at("tlb_flush_rmaps"));
    expect(r.stdout).toContain("0 violations");
    // The series removes every rmap at the end of the PTE table, before any flush: the narration says so
    // (and says "now that the TLB is flushed" only after a flush).
    const cr = r.stdout.split("== contig-range")[1].split("== encoded-nr-pages")[0];
    const firstFlush = cr.indexOf("flush_tlb_");
    expect(cr.indexOf("at the end of the PTE table, before the TLB flush")).toBeGreaterThan(0);
    expect(cr.indexOf("at the end of the PTE table, before the TLB flush")).toBeLessThan(firstFlush);
    expect(cr.indexOf("now that the TLB is flushed")).toBeGreaterThan(firstFlush);
    expect(cr.slice(0, firstFlush)).not.toContain("after the TLB flush and before the lock is dropped");
  });

  it.each([
    ["free-before-flush", "useAfterFree"],
    ["delayed-rmap-ignored", "dirtyRmapBeforeFlush"],
    ["delayed-rmap-ignored-writeback", "cleanedWhileWritable"],
    ["swap-free-unpinned", "swapDeviceUseAfterFree"],
    ["rmap-after-unlock", "rmapOutsidePtl"],
    ["table-freed-early", "tableFreedWhileWalkable"],
    ["nested-flush-ignored", "staleTlbAfterReturn"],
    ["pte-left-behind", "presentAfterReturn"],
    ["flush-after-unlock", "dirtyFlushAfterUnlock"],
    ["double-swap-free", "modelGuard"],
    ["unbounded-free", "freesWithoutResched"],
    ["nested-reset-range", "staleTlbAfterReturn"],
    ["skip-lazy-cpus", "tableFreedWhileWalkable"],
    ["skip-secondary-tlbs", "secondaryTlbUseAfterFree"],
    ["secondary-flush-all-overflow", "secondaryTlbUseAfterFree"],
    ["gup-fast-direct-table-free", "tableFreedUnderGupFast"],
    ["last-level-only-invalidate", "tableFreedWhileWalkable"],
    ["huge-zero-as-thp", "negativeCount"],
    ["pfnmap-no-tlb-entry", "staleTlbAfterReturn"],
    ["pfnmap-no-tlb-entry-revoke", "deviceMemoryUseAfterRevoke"],
    ["numa-pmd-get-and-clear", "presentAfterReturn"],
  ])("--broken %s shows %s with its trail and exits 1", (name, kind) => {
    const r = runCli(["explain", "--broken", name]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`The first ${kind}:`);
    expect(r.stdout).toMatch(/What happened just before \(oldest first\):\n\s+1\. /);
    expect(r.stdout).toContain("In a real kernel:");
    expect(r.stdout).toContain("Why the real order prevents it:");
    expect(r.stdout).toMatch(/The same scenario with the real [\w-]+( on [\w.-]+)?: 0 violations\./);
  });
});

describe("explore", () => {
  it("--broken nested-flush-ignored: found at bound 2 with the shortest interleaving narrated; the real design is silent", () => {
    const r = runCli(["explore", "--broken", "nested-flush-ignored", "--no-timing"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(1);
    const [broken, real] = r.stdout.split("\n\n== explore ");
    expect(broken).toMatch(
      /^== explore nested-flush-ignored: thread 0 dontneed racing thread 1 dontneed; nested-flush-ignored on generic; preemption bound 2 ==/,
    );
    expect(broken).toMatch(
      /6 interleavings run \(by preemptions — 0: 2, 1: 2, 2: 2\); that is every interleaving within the bound\./,
    );
    expect(broken).toContain("Shortest failing interleaving: 1 preemption, 3 steps to the first violation");
    expect(broken).toMatch(/step 2: thread 0 — preempts the other thread/);
    expect(broken).toContain("! staleTlbAfterReturn:");
    expect(broken).toMatch(/What happened just before \(oldest first\):\n\s+1\. /);
    expect(real).toMatch(
      /encoded-nr-pages on generic; preemption bound 2 ==\n6 interleavings run .*\n0 interleavings failed\./,
    );
  });

  it("a scenario file under every variant, as JSON; exit 0 when no interleaving fails", () => {
    const r = runCli(["explore", "scenarios/racing-munmap.yaml", "--bound", "3", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as {
      variant: string;
      explored: number;
      exploredByPreemptions: number[];
      failing: number;
      complete: boolean;
      shortest: unknown;
    }[];
    expect(out.map((x) => x.variant)).toEqual(["encoded-page", "contig-range", "encoded-nr-pages"]);
    for (const x of out) {
      expect(x).toMatchObject({ failing: 0, complete: true, shortest: null });
      expect(x.exploredByPreemptions).toHaveLength(4);
      expect(x.exploredByPreemptions.reduce((a, b) => a + b, 0)).toBe(x.explored);
    }
  });

  it("refuses what it cannot do", () => {
    const bad = (args: string[], msg: string) => {
      const r = runCli(args);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(msg);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    };
    bad(
      ["explore", "--broken", "nested-flush-ignored", "--preset", "fork-shared"],
      "--broken brings its own scenario",
    );
    bad(["explore", "--preset", "fork-shared", "--bound", "9"], "expected an integer from 0 to 8");
    bad(["explore", "--preset", "fork-shared", "--csv"], "explore prints text or --json");
  });
});

describe("presets", () => {
  it("lists every preset and broken variant", () => {
    const r = runCli(["presets"]);
    expect(r.status).toBe(0);
    for (const p of PRESET_NAMES) expect(r.stdout).toContain(p);
    expect(r.stdout).toContain("nested-flush-ignored");
    const j = JSON.parse(runCli(["presets", "--json"]).stdout) as { name: string }[];
    expect(j.map((x) => x.name)).toEqual(PRESET_NAMES);
  });
});

describe("sweep", () => {
  const args = [
    "sweep",
    "--preset",
    "dirty-shared-file",
    "--size",
    "2M",
    "--folios",
    "4K,64K,1M",
    "--ops",
    "munmap,exit",
  ];

  it("runs folio sizes × ops × arches × variants on the pool, ordered by task, identical across pool sizes", () => {
    const one = runCli([...args, "--threads", "1", "--json"]);
    const two = runCli([...args, "--threads", "2", "--json", "--progress"]);
    expect(one.status).toBe(0);
    expect(two.status).toBe(0);
    expect(two.stderr).toContain("sweep [");
    const cells = 2 * 3 * ARCHES.length * VARIANTS.length;
    expect(two.stderr).toContain(`${cells}/${cells}`);
    type Row = RunResult & { folio: string };
    const a = JSON.parse(one.stdout) as Row[];
    const b = JSON.parse(two.stdout) as Row[];
    expect(a).toHaveLength(cells);
    expect(a.slice(0, 4).map((r) => `${r.op}/${r.folio}/${r.arch}/${r.variant}`)).toEqual([
      "munmap/4K/generic/encoded-page",
      "munmap/4K/generic/contig-range",
      "munmap/4K/generic/encoded-nr-pages",
      "munmap/4K/s390/encoded-page",
    ]);
    const key = (r: Row) => ({
      op: r.op,
      folio: r.folio,
      arch: r.arch,
      variant: r.variant,
      counters: r.counters,
    });
    expect(b.map(key)).toEqual(a.map(key));
  });

  it("one build group on two threads is split in halves, with the bytes of one thread", () => {
    const one = ["sweep", "--preset", "munmap-1g", "--size", "4M", "--folios", "64K", "--arch", "generic"];
    const a = runCli([...one, "--threads", "1", "--no-timing"]);
    const b = runCli([...one, "--threads", "2", "--no-timing", "--json"]);
    const c = runCli([...one, "--threads", "1", "--no-timing", "--json"]);
    expect(a.status).toBe(0);
    expect(a.stdout.trim().split("\n")).toHaveLength(1 + VARIANTS.length);
    expect(runCli([...one, "--threads", "2", "--no-timing"]).stdout).toBe(a.stdout);
    expect(b.stdout).toBe(c.stdout);
  });

  it("the default sweep of an anonymous VMA has no 8K cell", () => {
    const r = runCli([
      "sweep",
      "--preset",
      "munmap-1g",
      "--size",
      "4M",
      "--variant",
      "encoded-page",
      "--json",
    ]);
    expect(r.status).toBe(0);
    const folios = (JSON.parse(r.stdout) as { folio: string }[]).map((x) => x.folio);
    expect(folios).not.toContain("8K");
    expect(folios).toContain("16K");
  });

  it("prints CSV by default with folio and pmd columns; 2M is skipped on s390 with a note", () => {
    const r = runCli([
      "sweep",
      "--preset",
      "munmap-1g",
      "--size",
      "4M",
      "--folios",
      "64K,2M",
      "--variant",
      "contig-range",
    ]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0].startsWith("folio,pmd,scenario,variant,arch,op,")).toBe(true);
    expect(lines.slice(1).map((l) => l.split(",").slice(0, 5).join(","))).toEqual([
      ...ARCHES.map((a) => `64K,false,munmap-1g,contig-range,${a}`),
      ...ARCHES.filter((a) => a !== "s390").map((a) => `2M,false,munmap-1g,contig-range,${a}`),
    ]);
    expect(r.stderr).toContain("2M folios don't exist on s390");
  });
});
