#!/usr/bin/env node
// The local sweep's wall time with --threads 1 and 2, for one or more builds of the CLI run in turn
// (A B A B …: each round runs every bin with 1 thread, then every bin with 2), so that the drift of a
// shared machine hits each alike. Per bin and pool size: median, min and spread ((max − min) / median)
// of the whole command's wall time, and the 1 → 2 thread scaling (median over median, min over min).
// Each round first measures the cores free (a CPU-bound loop alone, then two at once, in two
// processes: 2.0 on two idle cores, 1.0 when other work leaves one). Every run's stdout (--no-timing)
// must equal the first's, or the script fails.
//
//   node apps/teardown-lab/bench/sweep.mjs [--rounds N] [--bin PATH]… [-- SWEEP ARGS…]   (after pnpm build)
//
// Default bin: this app's dist/teardown-lab.js; default sweep: the munmap-1g sweep of BENCHMARKS.md.
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { freeCores, start } from "./procs.mjs";

const argv = process.argv.slice(2);
const dash = argv.indexOf("--");
const own = dash < 0 ? argv : argv.slice(0, dash);
const bins = [];
let rounds = 5;
for (let i = 0; i < own.length; i++) {
  if (own[i] === "--rounds") rounds = Number(own[++i]);
  else if (own[i] === "--bin") bins.push(own[++i]);
  else throw new Error(`unknown argument ${own[i]}`);
}
if (bins.length === 0) bins.push(fileURLToPath(new URL("../dist/teardown-lab.js", import.meta.url)));
const SWEEP =
  dash < 0
    ? ["--preset", "munmap-1g", "--size", "1G", "--folios", "4K,16K,64K,2M", "--ops", "munmap,exit"]
    : argv.slice(dash + 1);
const THREADS = [1, 2];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const times = bins.map(() => THREADS.map(() => []));
const cores = [];
const loads = [];
let reference = null;
for (let r = 0; r < rounds; r++) {
  cores.push(await freeCores());
  loads.push(loadavg()[0]);
  for (const [ti, threads] of THREADS.entries()) {
    for (const [bi, bin] of bins.entries()) {
      const t0 = performance.now();
      const p = start(process.execPath, [
        bin,
        "sweep",
        ...SWEEP,
        "--no-timing",
        "--threads",
        String(threads),
      ]);
      const code = await p.exited;
      const s = (performance.now() - t0) / 1000;
      if (code !== 0) throw new Error(`${bin} exited ${code}:\n${p.err}`);
      if (reference === null) reference = p.out;
      else if (p.out !== reference)
        throw new Error(`${bin} --threads ${threads}: stdout differs from the first run's`);
      times[bi][ti].push(s);
      process.stderr.write(`round ${r + 1}/${rounds} ${bin} --threads ${threads}: ${s.toFixed(2)} s\n`);
    }
  }
}
const rows = reference.trim().split("\n").length - 1;
const f = (x) => x.toFixed(2);
console.log(
  `teardown-lab sweep ${SWEEP.join(" ")} --no-timing: ${rows} rows, identical stdout in every run; ` +
    `${rounds} rounds; load average ${f(Math.min(...loads))}–${f(Math.max(...loads))}; ` +
    `cores free (two CPU-bound processes vs one) ${f(Math.min(...cores))}–${f(Math.max(...cores))}, median ${f(median(cores))}`,
);
console.log("bin  threads  wall median  min      spread   1→2 (median, min)");
for (const [bi] of bins.entries()) {
  for (const [ti, threads] of THREADS.entries()) {
    const xs = times[bi][ti];
    const m = median(xs);
    const scale =
      ti === 0 ? "" : `${f(median(times[bi][0]) / m)}x, ${f(Math.min(...times[bi][0]) / Math.min(...xs))}x`;
    console.log(
      `${String.fromCharCode(65 + bi).padEnd(4)} ${String(threads).padEnd(8)} ${`${f(m)} s`.padEnd(12)} ` +
        `${`${f(Math.min(...xs))} s`.padEnd(8)} ${`${((100 * (Math.max(...xs) - Math.min(...xs))) / m).toFixed(0)} %`.padEnd(8)} ${scale}`,
    );
  }
}
for (const [bi, bin] of bins.entries()) console.log(`${String.fromCharCode(65 + bi)}: ${bin}`);
