// `teardown-lab capture PID`: smaps parsing on real /proc output (fixtures), the scenario it yields,
// and a live capture of a process this test starts (Linux only).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseSmaps } from "@mmgather/host";
import { describe, expect, it } from "vitest";
import { scenarioFromSmaps } from "../capture.js";
import { parseScenarioText, validateScenario } from "../scenario.js";
import { loadYaml } from "../scenario-file.js";
import { runCli } from "./cli-helpers.js";

const fixture = (f: string) => readFileSync(join(__dirname, "fixtures", f), "utf8");

describe("capture from /proc/PID/smaps", () => {
  it("parses every VMA of a real smaps file, fields in bytes", () => {
    const vmas = parseSmaps(fixture("sleep.smaps"));
    expect(vmas).toHaveLength(37);
    const heap = vmas.find((v) => v.path === "[heap]")!;
    expect(heap.end - heap.start).toBe(heap.kb.Size);
    expect(heap.flags).toContain("rd");
    expect(() => parseSmaps("Rss: 4 kB\n")).toThrow(/before any VMA header/);
  });

  it("a process with a THP heap, an mlocked region, shared and private file mappings and a fork", () => {
    // Recorded from a Python process: 8 MiB anon with MADV_HUGEPAGE (touched), 1 MiB mlocked anon,
    // 1 MiB MAP_SHARED file half written, 1 MiB MAP_PRIVATE file a quarter written, then fork().
    const { scenario, notes } = scenarioFromSmaps(parseSmaps(fixture("process.smaps")), "fixture");
    const s = validateScenario(scenario as unknown as Record<string, unknown>, "fixture");
    const thp = s.vmas.find((v) => v.pmd)!;
    expect(thp.kind).toBe("anon");
    expect(thp.size).toBe(8 << 20);
    expect(thp.folio).toBe(2 << 20);
    expect(s.vmas.some((v) => v.mlock && v.kind === "anon")).toBe(true);
    const shared = s.vmas.find(
      (v) => v.kind === "file-shared" && v.name?.startsWith("capture-fixture.dat@"),
    )!;
    expect(shared.dirty).toBeGreaterThan(0);
    const priv = s.vmas.find((v) => v.kind === "file-private" && v.name?.startsWith("capture-fixture.dat@"))!;
    expect(priv.dirty).toBe(0.25); // 256K of COW copies in 1M
    expect(s.fork).toBe(true);
    expect(notes.some((n) => n.includes("modelled as a fork"))).toBe(true);
  });

  if (!existsSync("/proc/self/smaps"))
    console.log("capture.test: live capture skipped: no /proc (not Linux)");
  it.skipIf(!existsSync("/proc/self/smaps"))(
    "captures a live process into a scenario run accepts",
    async () => {
      const child = spawn("sleep", ["30"]);
      try {
        await new Promise((r) => setTimeout(r, 200));
        const out = join(mkdtempSync(join(tmpdir(), "teardown-lab-capture-")), "captured.yaml");
        const c = runCli(["capture", String(child.pid), "--out", out]);
        expect(c.status).toBe(0);
        expect(readFileSync(out, "utf8")).toMatch(
          /^# note: (smaps-only capture|folio sizes and sharing from)/,
        );
        const r = runCli(["run", out, "--no-timing", "--json"]);
        expect(r.status).toBe(0);
        expect((JSON.parse(r.stdout) as unknown[]).length).toBe(3);
      } finally {
        child.kill();
      }
      expect(runCli(["capture", "4194303"]).stderr).toContain("no process 4194303");
    },
  );

  const python = spawnSync("python3", ["--version"]).status === 0;
  const root = process.getuid?.() === 0;
  const thp = existsSync("/sys/kernel/mm/transparent_hugepage/enabled")
    ? !readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8").includes("[never]")
    : false;
  it.skipIf(!python || !root)(
    "as root: folio sizes from pagemap + kpageflags, sharing from kpagecount",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "teardown-lab-capture-"));
      const child = spawn("python3", [join(__dirname, "fixtures", "make-process.py"), join(dir, "data.bin")]);
      try {
        const pid = await new Promise<number>((resolve, reject) => {
          child.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
          child.once("error", reject);
        });
        const out = join(dir, "captured.yaml");
        const c = runCli(["capture", String(pid), "--out", out]);
        expect(c.status).toBe(0);
        const text = readFileSync(out, "utf8");
        expect(text).toContain("# note: folio sizes and sharing from /proc/PID/pagemap");
        const s = parseScenarioText(text, out, loadYaml);
        expect(s.fork).toBe(true);
        expect(s.vmas.some((v) => v.kind === "anon" && v.mlock)).toBe(true);
        if (thp) expect(s.vmas.some((v) => v.kind === "anon" && v.folio === 2 << 20 && v.pmd)).toBe(true);
        // The forked child has written nothing: the 8 MiB heap is shared page for page (the
        // interpreter's own heaps are partly copied by now: the parent writes to them after fork).
        const heap = s.vmas.find((v) => v.kind === "anon" && v.size === 8 << 20)!;
        expect(heap.shared).toBe(1);
        expect(s.vmas.every((v) => v.swap === 0)).toBe(true); // nothing swapped (no pressure)
        // The model tears down as many pages as the capture saw present (the process's exit).
        const smaps = parseSmaps(readFileSync(`/proc/${pid}/smaps`, "utf8"));
        const rssPages = s.vmas.reduce((a, v) => {
          const at = Number.parseInt(v.name!.split("@")[1], 16);
          return a + (smaps.find((x) => x.start === at)?.kb.Rss ?? 0) / 4096;
        }, 0);
        const r = runCli(["run", out, "--no-timing", "--json", "--variant", "encoded-nr-pages"]);
        expect(r.status, r.stderr).toBe(0);
        const torn = (JSON.parse(r.stdout) as { pagesTornDown: number }[])[0].pagesTornDown;
        expect(Math.abs(torn - rssPages) / rssPages).toBeLessThan(0.05);
      } finally {
        child.kill();
      }
    },
  );
});
