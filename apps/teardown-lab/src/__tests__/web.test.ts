// End to end in a real Chromium: serve the built visualizer with `vite preview`, run a preset in the
// page, and check the table and chart against the CLI's --json for the same scenario.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { COST_TERMS } from "@mmgather/teardown";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunResult, verdict } from "../format.js";
import { APP_DIR, runCli } from "./cli-helpers.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SKIP = process.env.MMGATHER_SKIP_BROWSER === "1";
const ARTIFACTS = join(APP_DIR, "test-artifacts");
const VITE = join(APP_DIR, "node_modules", "vite", "bin", "vite.js");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForServer(url: string, proc: ChildProcess, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (proc.exitCode !== null) throw new Error(`vite preview exited with ${proc.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`vite preview did not answer at ${url} within ${ms} ms`);
}

describe.skipIf(SKIP)("web visualizer in Chromium", () => {
  let server: ChildProcess | null = null;
  let url = "";

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium), set CHROMIUM_PATH, ` +
          "or set MMGATHER_SKIP_BROWSER=1 to skip the browser test",
      );
    }
    if (!existsSync(join(APP_DIR, "dist", "web", "index.html"))) {
      throw new Error("dist/web is missing: run `pnpm --filter teardown-lab build` first");
    }
    const port = await freePort();
    url = `http://127.0.0.1:${port}/`;
    server = spawn(
      process.execPath,
      [VITE, "preview", "--host", "127.0.0.1", "--port", String(port), "--strictPort"],
      {
        cwd: APP_DIR,
        stdio: "ignore",
      },
    );
    await waitForServer(url, server, 20_000);
  });

  afterAll(() => {
    server?.kill("SIGTERM");
  });

  it("runs a preset and shows the three variants with the CLI's exact counters", async () => {
    const cli = runCli(["run", "--preset", "munmap-1g", "--size", "16M", "--folio", "64K", "--json"]);
    expect(cli.status).toBe(0);
    const expected = JSON.parse(cli.stdout) as RunResult[];
    const profile = mkdtempSync(join(tmpdir(), "teardown-lab-chromium-"));
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 1500 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    });
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(url, { waitUntil: "load" });
      await page.waitForSelector("body[data-state=ready]");
      await page.selectOption("#preset", "munmap-1g");
      await page.selectOption("#folio", "64K");
      await page.fill("#size", "16M");
      await page.selectOption("#arch", "generic");
      await page.click("#run");
      await page.waitForSelector("body[data-state=done]", { timeout: 30_000 });

      // Table: the three variants, and exact integer counters equal to the CLI's.
      const heads = await page.$$eval("#results thead th[data-variant]", (ths) =>
        ths.map((t) => (t as HTMLElement).dataset.variant),
      );
      expect(heads).toEqual(["encoded-page", "contig-range", "encoded-nr-pages"]);
      const cells = await page.$$eval("#results td[data-value]", (tds) =>
        tds.map((t) => {
          const d = (t as HTMLElement).dataset;
          return { variant: d.variant!, counter: d.counter!, value: Number(d.value) };
        }),
      );
      expect(cells.length).toBeGreaterThanOrEqual(3 * 10);
      for (const c of cells) {
        const r = expected.find((x) => x.variant === c.variant)!;
        const want =
          c.counter === "pages torn down"
            ? r.pagesTornDown
            : c.counter === "folios freed"
              ? r.foliosTornDown
              : c.counter === "primitive operations"
                ? r.primitiveOps
                : c.counter === "estimated kernel time (ns)"
                  ? Math.round(r.estimatedNs)
                  : c.counter === "violations"
                    ? r.violations.length
                    : r.counters[c.counter];
        expect({ ...c, value: c.value }).toEqual({ ...c, value: want });
      }

      // Chart: one series per variant in the legend; the point at 64K is the CLI's estimatedNs.
      const legend = await page.$$eval("#chart .u-legend .u-series .u-label", (els) =>
        els.map((e) => e.textContent),
      );
      expect(legend).toEqual(["folio size", "encoded-page", "contig-range", "encoded-nr-pages"]);
      const series = JSON.parse((await page.getAttribute("#chart", "data-series"))!) as {
        folios: string[];
        estimatedNs: Record<string, number[]>;
      };
      const at = series.folios.indexOf("64K");
      for (const r of expected) expect(series.estimatedNs[r.variant][at]).toBe(r.estimatedNs);
      // Every other point (the designs of each folio size run on copies of one build) is the CLI
      // sweep's estimatedNs of that folio size.
      const swept = runCli([
        "sweep",
        "--preset",
        "munmap-1g",
        "--size",
        "16M",
        "--folios",
        series.folios.join(","),
        "--arch",
        "generic",
        "--json",
      ]);
      expect(swept.status).toBe(0);
      const rows = JSON.parse(swept.stdout) as (RunResult & { folio: string })[];
      expect(series.folios.length).toBeGreaterThan(3);
      for (const [i, f] of series.folios.entries())
        for (const v of heads)
          expect({ f, v, ns: series.estimatedNs[v!][i] }).toEqual({
            f,
            v,
            ns: rows.find((r) => r.folio === f && r.variant === v)?.estimatedNs,
          });
      expect(await page.locator("#chart canvas").count()).toBe(1);
      expect(await page.locator("#timelines .timeline canvas").count()).toBe(3);
      // The cost picture: a bar per design, a block per phase, each block the CLI's terms of that phase.
      const segs = await page.$$eval("#breakdown .bd-row .bd-seg", (els) =>
        els.map((e) => {
          const d = (e as HTMLElement).dataset;
          const row = (e.closest(".bd-row") as HTMLElement).dataset;
          return {
            variant: row.variant!,
            phase: d.phase!,
            ns: Number(d.ns),
            width: (e as HTMLElement).style.width,
          };
        }),
      );
      const slowest = Math.max(...expected.map((r) => r.estimatedNs));
      for (const r of expected) {
        const mine = segs.filter((x) => x.variant === r.variant);
        const want = new Map<string, number>();
        for (const t of COST_TERMS)
          if (r.estimate.terms[t.name] > 0)
            want.set(t.phase, (want.get(t.phase) ?? 0) + r.estimate.terms[t.name]);
        expect(mine.map((x) => x.phase).sort()).toEqual([...want.keys()].sort());
        for (const x of mine) {
          expect(x.ns).toBeCloseTo(want.get(x.phase)!, 6);
          expect(Number.parseFloat(x.width)).toBeCloseTo((100 * x.ns) / slowest, 3);
        }
      }
      expect(await page.textContent("#chart-title")).toContain("Estimated kernel time per folio size");
      expect(await page.textContent("#chart-title")).not.toContain("n/a");

      // The page shows the CLI's verdict: ties within the profile's error, and the terms of each difference.
      expect(await page.textContent("#verdict")).toBe(verdict(expected));
      expect(errors).toEqual([]);

      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "visualizer.png"), fullPage: true });

      // The violations panel with a deliberately broken variant.
      await page.selectOption("#broken", "free-before-flush");
      await page.click("#run-broken");
      await page.waitForSelector("body[data-state=done] #violations .violation[data-kind=useAfterFree]", {
        timeout: 30_000,
      });
      expect(await page.locator("#violations .violation ol li").count()).toBeGreaterThan(0);
      await page.screenshot({ path: join(ARTIFACTS, "visualizer-broken.png"), fullPage: true });
    } finally {
      await ctx.close();
      rmSync(profile, { recursive: true, force: true });
    }
  }, 90_000);
});
