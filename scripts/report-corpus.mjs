#!/usr/bin/env node
// Runs a fixed corpus of scenarios through the CLI (`teardown-lab run --json`) and compares
// every report with the committed snapshot in scripts/report-corpus.golden.json.
//
// The corpus: every preset at two folio sizes (4K and a large one) and two seeds, every
// scenario file under apps/teardown-lab/scenarios, each under all variants × all arches.
// Wall-clock fields (`simWallNs`) are dropped; everything else (the report, the notes on stderr,
// the exit status) must match byte for byte.
//
//   node scripts/report-corpus.mjs            # compare with the snapshot (exit 1 on any difference)
//   node scripts/report-corpus.mjs --update   # rewrite the snapshot (a deliberate model change)
//   node scripts/report-corpus.mjs --dump DIR [--cli PATH]
//                                             # also write every case's text to DIR (to diff two
//                                             # builds of the CLI before updating the snapshot)
//
// Run `pnpm build` first: it calls the built CLI.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
function option(name) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : null;
}
const cli = option("--cli") ?? join(root, "apps/teardown-lab/dist/teardown-lab.js");
const dump = option("--dump");
const golden = join(root, "scripts/report-corpus.golden.json");
const scenarioDir = join(root, "apps/teardown-lab/scenarios");

const TIMING_KEYS = new Set(["simWallNs"]);

function corpus() {
  const cases = [];
  const presets = JSON.parse(
    execFileSync(process.execPath, [cli, "presets", "--json"], { encoding: "utf8" }),
  );
  for (const p of presets) {
    const name = typeof p === "string" ? p : p.name;
    for (const folio of ["4K", "64K", "1M", "2M"]) {
      for (const seed of [1, 7]) {
        const args = ["--preset", name, "--size", "8M", "--folio", folio, "--seed", String(seed)];
        cases.push(args);
        if ((folio === "1M" || folio === "2M") && seed === 1) cases.push([...args, "--pmd"]);
      }
    }
  }
  for (const op of ["exit", "dontneed"])
    cases.push(["--preset", "munmap-1g", "--size", "8M", "--folio", "16K", "--op", op, "--cpus", "2"]);
  for (const f of readdirSync(scenarioDir).sort()) cases.push([join("apps/teardown-lab/scenarios", f)]);
  return cases;
}

function strip(value) {
  if (Array.isArray(value)) return value.map(strip);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) if (!TIMING_KEYS.has(k)) out[k] = strip(v);
    return out;
  }
  return value;
}

// The digest covers the report (timing dropped), the notes on stderr and the exit status.
function runCase(args) {
  const r = spawnSync(
    process.execPath,
    [cli, "run", ...args, "--variant", "all", "--arch", "all", "--json"],
    {
      cwd: root,
      encoding: "utf8",
      maxBuffer: 256 * 1024 * 1024,
    },
  );
  const report = r.status === 0 ? JSON.stringify(strip(JSON.parse(r.stdout)), null, 2) : r.stdout;
  return `${report}\n--- stderr\n${r.stderr}--- status ${r.status}\n`;
}

const update = process.argv.includes("--update");
const results = {};
for (const args of corpus()) {
  const key = args.join(" ").replace(`${scenarioDir}/`, "");
  const text = runCase(args);
  results[key] = createHash("sha256").update(text).digest("hex");
  if (dump !== null) {
    mkdirSync(dump, { recursive: true });
    writeFileSync(join(dump, `${key.replace(/[^A-Za-z0-9.-]+/g, "_")}.txt`), text);
  }
}

if (update) {
  writeFileSync(golden, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`report-corpus: wrote ${Object.keys(results).length} report digests to ${golden}`);
  process.exit(0);
}

const expected = JSON.parse(readFileSync(golden, "utf8"));
let bad = 0;
for (const key of new Set([...Object.keys(expected), ...Object.keys(results)])) {
  if (expected[key] !== results[key]) {
    bad++;
    console.error(
      `report-corpus: differs: ${key}${expected[key] ? "" : " (not in snapshot)"}${results[key] ? "" : " (not run)"}`,
    );
  }
}
if (bad > 0) {
  console.error(`report-corpus: ${bad} of ${Object.keys(expected).length} reports differ from the snapshot`);
  process.exit(1);
}
console.log(`report-corpus: all ${Object.keys(results).length} reports identical to the snapshot`);
