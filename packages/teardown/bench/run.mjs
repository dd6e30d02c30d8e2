// Teardown benchmark: munmap of 1 GiB of anon memory at several folio sizes, per variant, on the
// same fixture in the same run. Prints the median wall time per torn-down page (after warm-up) and
// model bytes per simulated page. Run with `pnpm bench` (builds first through turbo) or
// `node --expose-gc bench/run.mjs` after `tsc -b`.
import { buildScenario, runBuilt, runScenario } from "../dist/index.js";

const GiB = 1 << 30;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const fixtures = [
  { name: "4 KiB", folio: { order: 0 }, pmdMapped: false },
  { name: "64 KiB", folio: { order: 4 }, pmdMapped: false },
  { name: "2 MiB PTE", folio: { order: 9 }, pmdMapped: false },
  { name: "2 MiB PMD", folio: { order: 9 }, pmdMapped: true },
];
const variants = ["encoded-page", "contig-range", "encoded-nr-pages"];

function once(f, variant) {
  const r = runScenario({
    memory: GiB + (64 << 20),
    vmas: [{ kind: "anon", size: GiB, folio: f.folio, pmdMapped: f.pmdMapped }],
    variant,
    op: { kind: "munmap" },
  });
  if (r.violations.length > 0 || r.finalState.problems.length > 0) throw new Error(`${variant}: bad run`);
  return r;
}

console.log("fixture     variant            ns/page  bytes/page  vs encoded-nr-pages");
for (const f of fixtures) {
  const rows = [];
  for (const v of variants) {
    once(f, v); // warm-up
    const ns = [];
    let last;
    for (let i = 0; i < RUNS; i++) {
      globalThis.gc?.();
      last = once(f, v);
      ns.push(last.simWallNs / last.pagesTornDown);
    }
    ns.sort((a, b) => a - b);
    rows.push({ v, med: ns[Math.floor(ns.length / 2)], bpp: last.stateBytesPerMappedPage });
  }
  const base = rows.find((r) => r.v === "encoded-nr-pages").med;
  for (const r of rows) {
    console.log(
      `${f.name.padEnd(11)} ${r.v.padEnd(18)} ${r.med.toFixed(1).padStart(7)}  ${r.bpp.toFixed(1).padStart(10)}  ${(r.med / base).toFixed(2)}x`,
    );
  }
}

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
