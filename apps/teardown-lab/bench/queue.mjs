#!/usr/bin/env node
// The same sweep on this machine's local pool and on the Redis queue with 1, 2 and 4 worker
// processes (one pool thread each), wall time of the client's command, median of --runs runs
// (default 3) taken in rotation so that drift hits every setup alike. Starts its own redis-server
// (Debian's package) on a free 127.0.0.1 port with a temporary directory and stops it by its PID.
// Each queued sweep's stdout must equal the local one's (--no-timing), or the script fails.
//
//   node apps/teardown-lab/bench/queue.mjs [--runs N]   (after pnpm build)
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freeCores, start } from "./procs.mjs";

const CLI = fileURLToPath(new URL("../dist/teardown-lab.js", import.meta.url));
const REDIS_SERVER = process.env.REDIS_SERVER ?? "redis-server";
const runsAt = process.argv.indexOf("--runs");
const RUNS = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 3;
const SWEEP = [
  "sweep",
  "--preset",
  "munmap-1g",
  "--size",
  "1G",
  "--folios",
  "4K,16K,64K,2M",
  "--ops",
  "munmap,exit",
  "--no-timing",
];

if (spawnSync(REDIS_SERVER, ["--version"]).error !== undefined) {
  console.log(`bench/queue.mjs: skipped, no ${REDIS_SERVER} (apt-get install -y redis-server)`);
  process.exit(0);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(p, what, re) {
  const until = Date.now() + 30_000;
  while (!re.test(p.out + p.err)) {
    if (Date.now() > until) throw new Error(`${what}: no ${re} in 30 s:\n${p.out}${p.err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function timed(args) {
  const t0 = performance.now();
  const p = start(process.execPath, [CLI, ...args]);
  const code = await p.exited;
  if (code !== 0) throw new Error(`${args.join(" ")} exited ${code}:\n${p.err}`);
  return { s: (performance.now() - t0) / 1000, out: p.out };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), "teardown-lab-bench-redis-"));
const port = await freePort();
const url = `redis://127.0.0.1:${port}`;
const redis = start(REDIS_SERVER, [
  "--port",
  String(port),
  "--bind",
  "127.0.0.1",
  "--save",
  "",
  "--appendonly",
  "no",
  "--dir",
  dir,
]);
const setups = [
  { name: "local pool, --threads 1", workers: 0, args: ["--threads", "1"] },
  { name: "local pool, --threads 2", workers: 0, args: ["--threads", "2"] },
  { name: "queue, 1 worker process", workers: 1 },
  { name: "queue, 2 worker processes", workers: 2 },
  { name: "queue, 4 worker processes", workers: 4 },
];
const times = new Map(setups.map((s) => [s.name, []]));
let reference = null;
let cells = 0;
const load0 = loadavg();
const cores0 = await freeCores();
try {
  await waitFor(redis, "redis-server", /Ready to accept connections/);
  for (let run = 0; run < RUNS; run++) {
    for (const s of setups) {
      const workers = [];
      for (let i = 0; i < s.workers; i++)
        workers.push(start(process.execPath, [CLI, "worker", "--queue", url, "--threads", "1"]));
      try {
        await Promise.all(workers.map((w, i) => waitFor(w, `worker ${i}`, /taking jobs from/)));
        const r = await timed([...SWEEP, ...(s.workers === 0 ? s.args : ["--queue", url])]);
        if (reference === null) {
          reference = r.out;
          cells = reference.trim().split("\n").length - 1;
        } else if (r.out !== reference) throw new Error(`${s.name}: output differs from the local sweep's`);
        times.get(s.name).push(r.s);
        process.stderr.write(`run ${run + 1}/${RUNS} ${s.name}: ${r.s.toFixed(2)} s\n`);
      } finally {
        for (const w of workers) w.child.kill("SIGTERM");
        await Promise.all(workers.map((w) => w.exited));
      }
    }
  }
} finally {
  redis.child.kill("SIGTERM");
  await redis.exited;
  rmSync(dir, { recursive: true, force: true });
}
const base = median(times.get("local pool, --threads 1"));
const load1 = loadavg();
const cores1 = await freeCores();
console.log(
  `teardown-lab ${SWEEP.join(" ")}: ${cells} rows, identical stdout in every setup; ` +
    `load average ${load0[0].toFixed(2)} before, ${load1[0].toFixed(2)} after; median of ${RUNS} runs`,
);
console.log(
  `cores free for this run (two CPU-bound processes vs one): ${cores0.toFixed(2)} before, ${cores1.toFixed(2)} after`,
);
console.log("setup                        wall median (min–max)    vs local --threads 1");
for (const s of setups) {
  const xs = times.get(s.name);
  const m = median(xs);
  console.log(
    `${s.name.padEnd(28)} ${`${m.toFixed(2)} s (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`.padEnd(24)} ${(base / m).toFixed(2)}x`,
  );
}
