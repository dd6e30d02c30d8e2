// Teardown benchmark: munmap of 1 GiB of anon memory at several folio sizes, per variant, on the
// same fixture in the same run. Prints the median wall time per torn-down page (after warm-up) and
// model bytes per simulated page. Run with `pnpm bench` (builds first through turbo) or
// `node --expose-gc bench/run.mjs` after `tsc -b`.
import { runScenario } from "../dist/index.js";

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
