// Teardown benchmark: munmap of 1 GiB of anon memory at several folio sizes, per variant, on the
// same fixture in the same run. Prints the median wall time per torn-down page (after warm-up) and
// model bytes per simulated page. Run with `pnpm bench` (builds first through turbo) or
// `node --expose-gc bench/run.mjs` after `tsc -b`. CPU ns/page is CPU time around runBuilt (the
// teardown plus its O(1) report bookkeeping): steadier than wall time on a busy machine. Main-thread CPU comes from /proc/self/task/<pid>/schedstat where it exists (Linux; GC and
// compiler helper threads excluded), else process.cpuUsage() (all threads). BENCH_RUNS (default 5), BENCH_FIXTURES / BENCH_VARIANTS (comma-separated names, e.g.
// "4 KiB,64 KiB" / "encoded-nr-pages") and BENCH_SKIP_16G=1 narrow a run, e.g. for profiling.
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import { buildScenario, runBuilt } from "../dist/index.js";

const GiB = 1 << 30;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const pick = (all, env, key) => {
  const want = env?.split(",").map((x) => x.trim());
  return want === undefined ? all : all.filter((x) => want.includes(key(x)));
};
const fixtures = pick(
  [
    { name: "4 KiB", folio: { order: 0 }, pmdMapped: false },
    { name: "64 KiB", folio: { order: 4 }, pmdMapped: false },
    { name: "2 MiB PTE", folio: { order: 9 }, pmdMapped: false },
    { name: "2 MiB PMD", folio: { order: 9 }, pmdMapped: true },
  ],
  process.env.BENCH_FIXTURES,
  (f) => f.name,
);
const variants = pick(
  ["encoded-page", "contig-range", "encoded-nr-pages"],
  process.env.BENCH_VARIANTS,
  (v) => v,
);

const schedstat = `/proc/self/task/${process.pid}/schedstat`;
const threadCpu = existsSync(schedstat);
/** CPU ns so far: the main thread's (schedstat) or the process's. */
function cpuNow() {
  if (threadCpu) return Number(readFileSync(schedstat, "utf8").split(" ")[0]);
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

function once(f, variant) {
  const spec = {
    memory: GiB + (64 << 20),
    vmas: [{ kind: "anon", size: GiB, folio: f.folio, pmdMapped: f.pmdMapped }],
    variant,
    op: { kind: "munmap" },
  };
  const b = buildScenario(spec);
  const c0 = cpuNow();
  const r = runBuilt(b, spec);
  const c1 = cpuNow();
  if (r.violations.length > 0 || r.finalState.problems.length > 0) throw new Error(`${variant}: bad run`);
  return { r, cpuNs: c1 - c0 };
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

console.log(
  `load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}, ${RUNS} runs, wall median, cpu mean of ${threadCpu ? "main thread" : "process"}`,
);
console.log("fixture     variant          wall ns/page  cpu ns/page  bytes/page  vs encoded-nr-pages (wall)");
for (const f of fixtures) {
  const rows = [];
  for (const v of variants) {
    once(f, v); // warm-up
    const ns = [];
    const cpu = [];
    let last;
    for (let i = 0; i < RUNS; i++) {
      globalThis.gc?.();
      const o = once(f, v);
      last = o.r;
      ns.push(last.simWallNs / last.pagesTornDown);
      cpu.push(o.cpuNs / last.pagesTornDown);
    }
    // schedstat advances at scheduler ticks: the mean over the runs averages its granularity out.
    const cpuMean = cpu.reduce((a, b) => a + b, 0) / cpu.length;
    rows.push({ v, med: median(ns), cpu: cpuMean, bpp: last.stateBytesPerMappedPage });
  }
  const base = rows.find((r) => r.v === "encoded-nr-pages")?.med;
  for (const r of rows) {
    const ratio = base === undefined ? "" : `${(r.med / base).toFixed(2)}x`;
    console.log(
      `${f.name.padEnd(11)} ${r.v.padEnd(18)} ${r.med.toFixed(1).padStart(10)}  ${r.cpu.toFixed(1).padStart(11)}  ${r.bpp.toFixed(1).padStart(10)}  ${ratio}`,
    );
  }
}
if (process.env.BENCH_SKIP_16G === "1") process.exit(0);

// A 16 GiB process (4 KiB anon pages: the most page tables per byte), built and torn down once.
// heapUsed is the JS heap (objects); the typed arrays holding the model state live outside it, in
// `arrayBuffers` (part of `external`), and are reported separately.
{
  const MiB = 1 << 20;
  const mb = (n) => `${(n / MiB).toFixed(1)} MiB`;
  globalThis.gc?.();
  const m0 = process.memoryUsage();
  const spec = {
    memory: 16 * GiB + 256 * MiB,
    vmas: [{ kind: "anon", size: 16 * GiB }],
    variant: "encoded-nr-pages",
    op: { kind: "exit" },
  };
  const b = buildScenario(spec);
  globalThis.gc?.();
  const m1 = process.memoryUsage();
  const r = runBuilt(b, spec);
  if (r.violations.length > 0 || r.finalState.problems.length > 0) throw new Error("16 GiB: bad run");
  const m2 = process.memoryUsage();
  console.log("");
  console.log(`16 GiB process (${r.pagesTornDown} pages), exit, encoded-nr-pages`);
  console.log(
    `  model state ${r.stateBytesPerMappedPage.toFixed(1)} bytes/page, teardown ${(r.simWallNs / r.pagesTornDown).toFixed(1)} ns/page`,
  );
  console.log(
    `  after build:    heapUsed ${mb(m1.heapUsed)} (+${mb(m1.heapUsed - m0.heapUsed)}), external ${mb(m1.external)}, arrayBuffers ${mb(m1.arrayBuffers)}, rss ${mb(m1.rss)}`,
  );
  console.log(
    `  after teardown: heapUsed ${mb(m2.heapUsed)}, external ${mb(m2.external)}, arrayBuffers ${mb(m2.arrayBuffers)}, rss ${mb(m2.rss)}`,
  );
}
