#!/usr/bin/env node
// The product path, timed as users run it: each measurement is a fresh `node` process (compilation and
// module loading included), never a warm loop.
//
//   node bench/product.mjs [--size 1G] [--folios 4K,64K,2M,2M-pmd] [--rounds 5] [--arch generic]
//
// 1. one-shot: `teardown-lab run --preset munmap-1g --variant all` (1 GiB, the README's command), wall
//    time from process start to exit.
// 2. per design: `run --preset munmap-1g --size SIZE --folio F --variant all --json`, and each design
//    alone (`--variant D`), interleaved (all, alone, all, alone …) so drift hits both; simulator ns
//    per torn-down page from each column's simWallNs.
// 3. runScenario as the teardown package's README calls it, in a fresh process: wall time to exit.
// Reports median, min and spread ((max − min) / median) over the rounds. Run `pnpm build` first.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const app = join(dirname(fileURLToPath(import.meta.url)), "..");
const cli = join(app, "dist/teardown-lab.js");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const size = arg("--size", "1G");
const folios = arg("--folios", "4K,64K,2M,2M-pmd").split(",");
const rounds = Number(arg("--rounds", "5"));
const arch = arg("--arch", "generic");
const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"];

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { med, min: s[0], spread: med > 0 ? (s[s.length - 1] - s[0]) / med : 0 };
}
const fmt = (x, d = 1) => x.toFixed(d);
const fmtStats = (xs, d = 1, unit = "") => {
  const t = stats(xs);
  return `${fmt(t.med, d)}${unit} (min ${fmt(t.min, d)}, spread ${fmt(100 * t.spread, 0)} %)`;
};

function timed(args, opts = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 256 << 20, ...opts });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return { ms, stdout: r.stdout };
}

console.log(`node ${process.version}, ${rounds} rounds, arch ${arch}`);

// 1. one-shot
const oneShot = [];
for (let i = 0; i < rounds; i++)
  oneShot.push(timed([cli, "run", "--preset", "munmap-1g", "--variant", "all", "--arch", arch]).ms);
console.log(
  `\none-shot \`run --preset munmap-1g --variant all\` (1 GiB, 4K folios): ${fmtStats(oneShot, 0, " ms")}`,
);

// 2. ns per torn-down page, all designs in one process vs each alone
console.log(
  `\nsimulator ns per torn-down page, munmap of ${size}: all designs in one process | each design alone`,
);
console.log(`folio    ${DESIGNS.map((d) => d.padEnd(36)).join("")}`);
for (const f of folios) {
  const pmd = f.endsWith("-pmd");
  const folio = pmd ? f.slice(0, -4) : f;
  const base = [
    cli,
    "run",
    "--preset",
    "munmap-1g",
    "--size",
    size,
    "--folio",
    folio,
    "--arch",
    arch,
    "--json",
  ];
  if (pmd) base.push("--pmd");
  const together = Object.fromEntries(DESIGNS.map((d) => [d, []]));
  const alone = Object.fromEntries(DESIGNS.map((d) => [d, []]));
  for (let i = 0; i < rounds; i++) {
    for (const r of JSON.parse(timed([...base, "--variant", "all"]).stdout))
      together[r.variant].push(r.simWallNs / r.pagesTornDown);
    for (const d of DESIGNS) {
      const [r] = JSON.parse(timed([...base, "--variant", d]).stdout);
      alone[d].push(r.simWallNs / r.pagesTornDown);
    }
  }
  const cells = DESIGNS.map((d) => {
    const a = stats(together[d]);
    const b = stats(alone[d]);
    return `${fmt(a.med)} | ${fmt(b.med)} (±${fmt(100 * Math.max(a.spread, b.spread), 0)} %)`.padEnd(36);
  });
  console.log(`${f.padEnd(9)}${cells.join("")}`);
}

// 3. runScenario in a fresh process, as the teardown README shows it
const script = join(app, "bench/run-scenario.mjs");
const rs = [];
for (let i = 0; i < rounds; i++) rs.push(timed([script]).ms);
console.log(
  `\nrunScenario (fresh process, 1 GiB of 64K folios, munmap, encoded-nr-pages): ${fmtStats(rs, 0, " ms")}`,
);
