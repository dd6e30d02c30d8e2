// @mmgather/host: statistics, sysfs knob handling on a fake sysfs tree (restored on every exit path),
// the layout judgement, and — as root on Linux — a page scan and a small live measurement.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cpuCount, HOST_OPS, judgeLayout, measure, SPREAD_LIMIT, stats } from "../measure.js";
import { scanPages } from "../proc.js";
import {
  MADV_NOHUGEPAGE,
  MADV_POPULATE_WRITE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  mmapAligned,
  sys,
} from "../sys.js";
import { readThpSettings, selected, ThpSettings } from "../thp.js";

const liveSkip =
  process.platform !== "linux"
    ? `not Linux (${process.platform})`
    : process.getuid?.() !== 0
      ? "not root: pagemap PFNs, kpageflags and the THP knobs need root"
      : !existsSync("/sys/kernel/mm/transparent_hugepage/hugepages-64kB")
        ? "this kernel has no 64 KiB mTHP size"
        : null;
if (liveSkip !== null) console.log(`host live tests skipped: ${liveSkip}`);

describe("stats", () => {
  it("median of odd and even counts, min, spread = (max − min) / median", () => {
    expect(stats([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, spread: 1 });
    expect(stats([4, 1, 2, 3]).median).toBe(2.5);
    expect(stats([10, 10, 10]).spread).toBe(0);
    expect(() => stats([])).toThrow(/no samples/);
    expect(SPREAD_LIMIT).toBe(0.2);
  });

  it("counts CPUs in a kernel CPU list", () => {
    expect(cpuCount("0-3,8")).toBe(5);
    expect(cpuCount("0")).toBe(1);
    expect(cpuCount("0-1,4-5")).toBe(4);
  });
});

/** A fake /sys/kernel/mm/transparent_hugepage with 16K, 64K and 2M sizes. */
function fakeThp(): string {
  const root = mkdtempSync(join(tmpdir(), "thp-"));
  writeFileSync(join(root, "enabled"), "always [madvise] never\n");
  writeFileSync(join(root, "shmem_enabled"), "always within_size advise [never] deny force\n");
  for (const kb of [16, 64, 2048]) {
    mkdirSync(join(root, `hugepages-${kb}kB`));
    writeFileSync(
      join(root, `hugepages-${kb}kB/enabled`),
      `always ${kb === 2048 ? "[inherit]" : "inherit"} madvise ${kb === 2048 ? "" : "[never]"}\n`,
    );
    writeFileSync(
      join(root, `hugepages-${kb}kB/shmem_enabled`),
      "always inherit within_size advise [never]\n",
    );
  }
  return root;
}

describe("THP knobs", () => {
  it("reads the selected value of each knob", () => {
    expect(selected("always [madvise] never")).toBe("madvise");
    const root = fakeThp();
    const s = readThpSettings(root);
    expect(s.enabled).toBe("madvise");
    expect(s["hugepages-2048kB/enabled"]).toBe("inherit");
    expect(s["hugepages-16kB/enabled"]).toBe("never");
  });

  it("only(64) sets that size to always and every other to never; restore puts back each old value", () => {
    const root = fakeThp();
    const t = new ThpSettings(root);
    t.only(64, "enabled");
    expect(readFileSync(join(root, "hugepages-64kB/enabled"), "utf8")).toBe("always");
    expect(readFileSync(join(root, "hugepages-2048kB/enabled"), "utf8")).toBe("never");
    expect([...t.changed().keys()].sort()).toEqual([
      "hugepages-16kB/enabled",
      "hugepages-2048kB/enabled",
      "hugepages-64kB/enabled",
    ]);
    t.only(2048, "enabled");
    t.restore();
    expect(readFileSync(join(root, "hugepages-64kB/enabled"), "utf8")).toBe("never");
    expect(readFileSync(join(root, "hugepages-2048kB/enabled"), "utf8")).toBe("inherit");
    expect(() => t.set("hugepages-8kB/enabled", "always")).toThrow(/does not exist/);
  });

  for (const how of ["SIGINT", "SIGTERM", "exit", "throw"] as const) {
    it(`restores the knobs when the process ends by ${how}`, () => {
      const root = fakeThp();
      const dist = new URL("../../dist/index.js", import.meta.url).pathname;
      const end =
        how === "exit"
          ? "process.exit(0);"
          : how === "throw"
            ? "throw new Error('boom');"
            : `process.kill(process.pid, "${how}"); setTimeout(() => {}, 5000);`;
      const script = `import { ThpSettings } from ${JSON.stringify(dist)};
        const t = new ThpSettings(${JSON.stringify(root)});
        t.only(16, "enabled");
        ${end}`;
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
      if (how === "SIGINT" || how === "SIGTERM") expect(r.signal).toBe(how);
      else expect(r.status).toBe(how === "exit" ? 0 : 1);
      expect(readFileSync(join(root, "hugepages-16kB/enabled"), "utf8").trim()).toBe("never");
      expect(readFileSync(join(root, "hugepages-2048kB/enabled"), "utf8").trim()).toBe("inherit");
    });
  }
});

describe("layout judgement", () => {
  const pages = 8192; // 32 MiB
  const cfg = (folio: string, op = "munmap" as const) => ({ op, folio, bytes: pages * 4096 });
  it("64K asked: 64K folios pass, a PMD-mapped result or a 4K fallback does not", () => {
    expect(
      judgeLayout(cfg("64K"), {
        present: pages,
        folios: [[16, pages / 16]],
        pmdMapped: 0,
        thpAllocated: null,
      }).ok,
    ).toBe(true);
    expect(
      judgeLayout(cfg("64K"), {
        present: pages,
        folios: [[512, 16]],
        pmdMapped: pages * 4096,
        thpAllocated: 0,
      }).ok,
    ).toBe(false);
    expect(
      judgeLayout(cfg("64K"), { present: pages, folios: [[1, pages]], pmdMapped: 0, thpAllocated: 0 }).ok,
    ).toBe(false);
  });

  it("2M-pmd needs every byte PMD-mapped; 2M (PTE-mapped) needs none", () => {
    const l = { present: pages, folios: [[512, 16]] as [number, number][], thpAllocated: 16 };
    expect(judgeLayout(cfg("2M-pmd"), { ...l, pmdMapped: pages * 4096 }).ok).toBe(true);
    expect(judgeLayout(cfg("2M"), { ...l, pmdMapped: pages * 4096 }).ok).toBe(false);
    expect(judgeLayout(cfg("2M"), { ...l, pmdMapped: 0 }).ok).toBe(true);
  });

  it("without a page scan, the per-size THP counters decide", () => {
    expect(
      judgeLayout(cfg("64K"), { present: -1, folios: [], pmdMapped: 0, thpAllocated: pages / 16 }).ok,
    ).toBe(true);
    expect(judgeLayout(cfg("64K"), { present: -1, folios: [], pmdMapped: 0, thpAllocated: 3 }).ok).toBe(
      false,
    );
  });

  it("a file mapping reports the page cache's dominant folio size", () => {
    const j = judgeLayout(cfg("page-cache", "file-read-munmap" as "munmap"), {
      present: pages,
      folios: [
        [1, 1024],
        [512, 14],
      ],
      pmdMapped: 14 * 2 * 1024 * 1024,
      thpAllocated: null,
    });
    expect(j).toMatchObject({ ok: true, dominant: "2M" });
    expect(j.pmdShare).toBeCloseTo(14 / 16);
  });
});

describe.skipIf(liveSkip !== null)("live, on this kernel (root)", () => {
  it("scanPages sees 4 MiB of order-0 anonymous pages as 1024 present single pages", () => {
    const c = sys();
    const len = 4 << 20;
    const a = mmapAligned(len, 2 << 20, 3, MAP_PRIVATE | MAP_ANONYMOUS);
    c.madvise(a, len, MADV_NOHUGEPAGE);
    c.madvise(a, len, MADV_POPULATE_WRITE);
    const s = scanPages(process.pid, { start: Number(a), end: Number(a) + len })!;
    c.munmap(a, len);
    expect(s.present).toBe(1024);
    expect([...s.folios]).toEqual([[1, 1024]]);
  });

  it("measure: every operation at 4K, 64K and PMD-mapped 2M, 8 MiB, 3 rounds; knobs restored, file removed", async () => {
    const before = readThpSettings();
    const thp = new ThpSettings();
    const t = await measure({
      ops: HOST_OPS,
      folios: ["4K", "64K", "2M-pmd"],
      bytes: 8 << 20,
      rounds: 3,
      thp,
    });
    expect(readThpSettings()).toEqual(before);
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith(`mmgather-host-${process.pid}`))).toEqual([]);
    expect(t.points).toHaveLength(5 * 3 + 2);
    for (const p of t.points) {
      expect(p.rounds, p.id).toBe(3);
      expect(p.min, p.id).toBeLessThanOrEqual(p.seconds);
      expect(p.spread, p.id).toBeGreaterThanOrEqual(0);
      expect(p.flagged, p.id).toBe(p.spread > SPREAD_LIMIT);
      if (p.folio !== "page-cache") expect(p.layoutOk, `${p.id}: ${p.layout}`).toBe(true);
    }
    expect(t.points.find((p) => p.id === "exit-4K")?.baseline?.seconds).toBeGreaterThan(0);
    expect(t.host.kernel).toMatch(/^\d+\.\d+/);
    expect(t.host.cores).toBeGreaterThan(0);
  }, 300_000);
});
