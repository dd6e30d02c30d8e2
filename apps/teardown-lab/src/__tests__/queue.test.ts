// The job queue end to end: a real redis-server (Debian's package) on 127.0.0.1 on a free port with a
// temporary directory, worker processes of the built CLI, sweeps, explorations and differential runs queued on it and
// compared byte for byte with the same commands run locally; a worker killed mid-cell, a client killed
// and resumed, a worker of other package versions, Redis unreachable. The server is stopped by its PID
// in afterAll, whatever happened. Without redis-server these tests are skipped with the reason printed.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isQueueError, parseQueueUrl, QueueError, versionDifference } from "../queue.js";
import { ARCHES, VARIANTS } from "../spec.js";
import { APP_DIR, CLI, runCli } from "./cli-helpers.js";

const REDIS_SERVER = process.env.REDIS_SERVER ?? "redis-server";

function redisMissing(): string | null {
  if (process.env.MMGATHER_SKIP_REDIS === "1") return "MMGATHER_SKIP_REDIS=1";
  const r = spawnSync(REDIS_SERVER, ["--version"], { encoding: "utf8" });
  if (r.error !== undefined)
    return `${REDIS_SERVER} not found (apt-get install -y redis-server, or set REDIS_SERVER to its path)`;
  return null;
}
const MISSING = redisMissing();
if (MISSING !== null) console.warn(`teardown-lab queue tests skipped: ${MISSING}`);

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

interface Proc {
  readonly child: ChildProcess;
  readonly out: () => string;
  readonly err: () => string;
  /** Resolves with the exit status (null when killed by a signal). */
  readonly exited: Promise<number | null>;
}

const procs = new Set<ChildProcess>();

/** Spawns `node CLI ...args` (or another copy of the CLI) and collects its output. */
function start(args: readonly string[], cli = CLI): Proc {
  const child = spawn(process.execPath, [cli, ...args], { cwd: APP_DIR, stdio: ["ignore", "pipe", "pipe"] });
  procs.add(child);
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code) => {
      procs.delete(child);
      resolve(code);
    });
  });
  return { child, out: () => out, err: () => err, exited };
}

/** Runs the CLI to its end without blocking this process (workers keep writing to their pipes). */
async function run(
  args: readonly string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const p = start(args);
  const status = await p.exited;
  return { status, stdout: p.out(), stderr: p.err() };
}

/** Waits until `text()` matches `re`; fails after `ms` with the text so far. */
async function waitFor(text: () => string, re: RegExp, ms: number): Promise<RegExpMatchArray> {
  const until = Date.now() + ms;
  for (;;) {
    const m = re.exec(text());
    if (m !== null) return m;
    if (Date.now() > until) throw new Error(`no ${re} within ${ms} ms in:\n${text()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function waitUntil(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function stop(p: Proc): Promise<number | null> {
  p.child.kill("SIGTERM");
  return p.exited;
}

describe("queue URL, versions and errors", () => {
  it("parses redis://HOST:PORT[/DB] with the defaults and refuses anything else with a typed error", () => {
    expect(parseQueueUrl("redis://127.0.0.1:6390/2")).toMatchObject({
      host: "127.0.0.1",
      port: 6390,
      db: 2,
      tls: false,
      display: "redis://127.0.0.1:6390/2",
    });
    expect(parseQueueUrl("redis://cache.example")).toMatchObject({ port: 6379, db: 0 });
    expect(parseQueueUrl("rediss://u:secret@[::1]:7000")).toMatchObject({
      host: "::1",
      port: 7000,
      tls: true,
      username: "u",
      password: "secret",
      display: "rediss://u@[::1]:7000/0",
    });
    for (const bad of [
      "http://h:1",
      "redis://h:1/x",
      "redis://:6379",
      "redis://h:70000",
      "h:6379",
      "redis://h?db=1",
    ]) {
      let e: unknown;
      try {
        parseQueueUrl(bad);
      } catch (x) {
        e = x;
      }
      expect(isQueueError(e), bad).toBe(true);
      expect((e as QueueError).code).toBe("BAD_QUEUE_URL");
    }
  });

  it("names every package whose version differs, in either direction", () => {
    expect(versionDifference({ a: "1", b: "2" }, { b: "2", a: "1" })).toBeNull();
    expect(versionDifference({ a: "1", b: "2" }, { a: "1", b: "3", c: "1" })).toBe(
      "b 2 in the job, 3 here; c (none) in the job, 1 here",
    );
  });

  it("recognises a QueueError by its brand, also one from another copy of the module", () => {
    const e = new QueueError("QUEUE_LOST", "x");
    expect(isQueueError(e)).toBe(true);
    expect(isQueueError({ [Symbol.for("teardown-lab.QueueError")]: true })).toBe(true);
    expect(isQueueError(new Error("x"))).toBe(false);
  });

  it("exits 2 on --resume without --queue, --threads with --queue and a bad URL", () => {
    const base = ["sweep", "--preset", "munmap-1g", "--size", "4M", "--folios", "64K"];
    const a = runCli([...base, "--resume", "0123abcd"]);
    expect(a.status).toBe(2);
    expect(a.stderr).toBe("teardown-lab: --resume needs --queue (the Redis the cells were queued on)\n");
    const b = runCli([...base, "--queue", "redis://127.0.0.1:1", "--threads", "2"]);
    expect(b.status).toBe(2);
    expect(b.stderr).toContain("--threads sizes the local pool");
    const c = runCli([...base, "--queue", "http://127.0.0.1:6379"]);
    expect(c.status).toBe(2);
    expect(c.stderr).toBe(
      'teardown-lab: --queue "http://127.0.0.1:6379": the scheme is http:; expected redis://HOST:PORT[/DB]\n',
    );
    const d = runCli(["explore", "--broken", "nested-flush-ignored", "--resume", "nothex"]);
    expect(d.status).toBe(2);
  });
});

describe.skipIf(MISSING !== null)("sweep and explore on a real Redis queue", () => {
  let redis: ChildProcess;
  let redisExit: Promise<unknown>;
  let dir = "";
  let url = "";
  let db: Redis;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "teardown-lab-redis-"));
    const port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    redis = spawn(
      REDIS_SERVER,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    redisExit = new Promise((r) => redis.on("exit", r));
    let log = "";
    redis.stdout?.on("data", (d: Buffer) => {
      log += d.toString();
    });
    await waitFor(() => log, /Ready to accept connections/, 10_000);
    db = new Redis({ port, lazyConnect: true });
    await db.connect();
  });

  // A failed test must not leave its workers taking the next test's jobs.
  afterEach(() => {
    for (const c of procs) c.kill("SIGKILL");
  });

  afterAll(async () => {
    db?.disconnect();
    for (const c of procs) c.kill("SIGKILL");
    if (redis !== undefined && redis.exitCode === null) {
      redis.kill("SIGTERM");
      const t = setTimeout(() => redis.kill("SIGKILL"), 5000);
      await redisExit;
      clearTimeout(t);
    }
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  const worker = (...extra: string[]) =>
    start(["worker", "--queue", url, "--threads", "1", "--stall-timeout", "2", "--verbose", ...extra]);
  const ready = (w: Proc) => waitFor(w.err, /taking jobs from/, 20_000);

  // Two jobs (one per op: generic's three designs share a build), about a second each: long enough to
  // kill a worker in the middle of one.
  const SLOW = [
    "sweep",
    "--preset",
    "munmap-1g",
    "--size",
    "512M",
    "--folios",
    "4K",
    "--ops",
    "munmap,exit",
    "--arch",
    "generic",
    "--no-timing",
  ];

  it("a sweep on two workers, one killed mid-cell, prints byte for byte what the local sweep prints", async () => {
    const w1 = worker();
    const w2 = worker();
    const [local] = await Promise.all([run(SLOW), ready(w1), ready(w2)]);
    expect(local.status).toBe(0);
    const client = start([...SLOW, "--queue", url]);
    const job = (await waitFor(w1.err, /started (\S+)/, 30_000))[1];
    w1.child.kill("SIGKILL");
    await w1.exited;
    expect(w1.err()).not.toContain(`finished ${job}`);
    expect(await client.exited).toBe(local.status);
    expect(client.out()).toBe(local.stdout);
    expect(client.err()).toMatch(
      /note: sweep [0-9a-f]{8}: 2 jobs for the workers on redis:\/\/127\.0\.0\.1:\d+\/0/,
    );
    // At least the killed worker's cell (a loaded machine may delay a lock renewal past 2 s too).
    expect(client.err()).toMatch(
      /note: \d+ times? a worker stopped answering mid-cell; the cell ran again on another/,
    );
    // The killed worker's job ran to its end on the other worker, and every job ran once there or before,
    // each on one build of its workload.
    expect(w2.err()).toContain(`finished ${job}`);
    const ran = (w: string) => [...w.matchAll(/finished (\S+)/g)].map((m) => m[1]);
    expect(new Set([...ran(w1.err()), ...ran(w2.err())]).size).toBe(2);
    expect(w2.err()).toMatch(
      /finished \S+ \(sweep cell \d: (encoded-page|contig-range|encoded-nr-pages)\/generic.*\) in [\d.]+ s, 1 build\n/,
    );
    expect(await stop(w2)).toBe(0);
    expect(w2.err()).toContain("SIGTERM: stopping after the 0 running jobs");
  });

  // 64K and 2M × every arch × every design, the three 2M cells on s390 refused by the model (its PMD maps
  // 1M): each of those fails once with its error. Cells are ordered folio, arch, design; a job is the
  // cells of a folio size that share a build (buildGroups): generic with x86, s390, arm64 — and each
  // refused 2M cell on s390 alone — so jobs 0–2 are 64K's, 3–7 2M's, with 4–6 the refused ones.
  const SMALL = ["sweep", "--preset", "munmap-1g", "--size", "16M", "--folios", "64K,2M", "--no-timing"];
  const CELLS = 2 * ARCHES.length * VARIANTS.length;
  const JOBS = 8;
  const S390_2M = [4, 5, 6];

  it("resumes a sweep after its client was killed; refuses other arguments; cleans up after printing", async () => {
    const local = await run(SMALL);
    expect(local.status).toBe(0);
    expect(local.stderr).toContain("note: skipped: vmas[0].folio: 2M folios don't exist on s390");
    const first = start([...SMALL, "--queue", url]);
    const id = (await waitFor(first.err, /--resume ([0-9a-f]{8})/, 20_000))[1];
    // Every job queued before the client dies (the resume would queue the missing ones too).
    await waitUntil(
      async () => (await db.exists(`bull:teardown-lab:${id}-${JOBS - 1}`)) === 1,
      20_000,
      "job 7 queued",
    );
    first.child.kill("SIGKILL");
    await first.exited;

    const other = await run([
      ...SMALL.map((a) => (a === "64K,2M" ? "64K" : a)),
      "--queue",
      url,
      "--resume",
      id,
    ]);
    expect(other.status).toBe(2);
    expect(other.stderr).toContain(
      `teardown-lab: sweep "${id}" was started with other jobs (${JOBS} of them)`,
    );

    const w = worker("--threads", "2");
    await ready(w);
    await waitFor(() => String(w.err().match(/finished /g)?.length ?? 0), new RegExp(`^${JOBS}$`), 30_000);
    const resumed = await run([...SMALL, "--queue", url, "--resume", id]);
    expect(resumed.status).toBe(local.status);
    expect(resumed.stdout).toBe(local.stdout);
    expect(resumed.stderr).toContain(`note: resuming sweep ${id} (${JOBS} jobs)`);
    expect(resumed.stderr.split("note: skipped:").length).toBe(2);
    // The cells the model refuses (2M on s390) ran once each, building nothing: their error is their reply.
    for (const i of S390_2M) {
      expect(w.err().match(new RegExp(`started ${id}-${i} `, "g"))).toHaveLength(1);
      expect(w.err()).toMatch(
        new RegExp(`finished ${id}-${i} \\(sweep cell ${i}: \\S+/s390\\) in [\\d.]+ s, 0 builds\n`),
      );
    }
    expect(new Set([...w.err().matchAll(/finished (\S+)/g)].map((m) => m[1])).size).toBe(JOBS);
    expect(await db.keys(`bull:teardown-lab:${id}-*`)).toEqual([]);
    expect(await db.exists(`teardown-lab:campaign:${id}`)).toBe(0);

    const again = await run([...SMALL, "--queue", url, "--resume", id]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/^teardown-lab: no unfinished sweep "[0-9a-f]{8}" on redis:.*\n$/);
    expect(await stop(w)).toBe(0);
    // Its last summary: the 24 cells on 5 builds — at 64K generic's (x86's too), s390's and arm64's, at
    // 2M generic's and arm64's (none for s390's refused cells).
    expect(w.err()).toContain(`${JOBS} jobs done (${CELLS} sweep cells on 5 builds; 3 refused by the model)`);
  });

  it("a worker of other package versions refuses the job; the client exits 2 naming them, and resumes", async () => {
    // Another installation: the same build under a package.json of another version.
    const other = mkdtempSync(join(tmpdir(), "teardown-lab-other-"));
    try {
      cpSync(join(APP_DIR, "dist"), join(other, "dist"), {
        recursive: true,
        filter: (src) => !src.includes(`${join("dist", "web")}`),
      });
      const pkg = JSON.parse(readFileSync(join(APP_DIR, "package.json"), "utf8"));
      writeFileSync(join(other, "package.json"), JSON.stringify({ ...pkg, version: "0.0.0-other" }));
      symlinkSync(join(APP_DIR, "node_modules"), join(other, "node_modules"));
      const args = ["sweep", "--preset", "munmap-1g", "--size", "16M", "--folios", "64K", "--no-timing"];
      const local = await run(args);
      const stale = start(
        ["worker", "--queue", url, "--threads", "1", "--stall-timeout", "2"],
        join(other, "dist", "teardown-lab.js"),
      );
      await ready(stale);
      const refused = await run([...args, "--queue", url]);
      expect(refused.status).toBe(2);
      const id = /--resume ([0-9a-f]{8})/.exec(refused.stderr)?.[1];
      expect(refused.stderr).toMatch(
        /teardown-lab: a worker refused job \d+: \S+ has other versions: teardown-lab 0\.1\.0 in the job, 0\.0\.0-other here\. Install the same versions on every machine, then add --resume [0-9a-f]{8} to the same command\n$/,
      );
      expect(stale.err()).toContain("versions differ (teardown-lab 0.1.0 in the job, 0.0.0-other here)");
      // Each job refused once, not again and again: it failed for good and the client stopped.
      await new Promise((r) => setTimeout(r, 1000));
      const refusals = [...stale.err().matchAll(/: refused (\S+):/g)].map((m) => m[1]);
      expect(refusals.length).toBeGreaterThan(0);
      expect(new Set(refusals).size).toBe(refusals.length);
      expect(await stop(stale)).toBe(0);

      const w = worker();
      await ready(w);
      const resumed = await run([...args, "--queue", url, "--resume", id!]);
      expect(resumed.status).toBe(0);
      expect(resumed.stdout).toBe(local.stdout);
      expect(resumed.stderr).toMatch(/jobs that failed before are queued again/);
      expect(await stop(w)).toBe(0);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("explore --queue prints what explore prints, for a scenario's designs and for a broken case", async () => {
    const w = worker("--threads", "2");
    await ready(w);
    for (const args of [
      ["explore", "scenarios/racing-munmap.yaml", "--no-timing"],
      ["explore", "--broken", "nested-flush-ignored", "--no-timing", "--json"],
    ]) {
      const local = await run(args);
      const queued = await run([...args, "--queue", url]);
      expect(queued.status, args.join(" ")).toBe(local.status);
      expect(queued.stdout, args.join(" ")).toBe(local.stdout);
    }
    // What the local command refuses before exploring, the queued one refuses before queuing.
    const bad = ["explore", "--preset", "munmap-1g", "--size", "4M", "--folio", "2M", "--arch", "s390"];
    const localBad = await run(bad);
    expect(localBad.status).toBe(2);
    const queuedBad = await run([...bad, "--queue", url]);
    expect(queuedBad.status).toBe(2);
    expect(queuedBad.stderr).toBe(localBad.stderr);
    expect(await stop(w)).toBe(0);
  });

  it("differential --queue prints what the local run prints, byte for byte, a broken design's failures too", async () => {
    const w = worker("--threads", "2");
    await ready(w);
    // 52 cases: two jobs of 50 and 2 cases on the queue; locally one chunk per few cases.
    for (const args of [
      ["differential", "--cases", "52", "--seed", "3", "--no-timing"],
      ["differential", "--cases", "4", "--broken", "pte-left-behind", "--json", "--no-timing"],
    ]) {
      const local = await run(args);
      const queued = await run([...args, "--queue", url]);
      expect(queued.status, args.join(" ")).toBe(local.status);
      expect(queued.stdout, args.join(" ")).toBe(local.stdout);
      expect(queued.stderr).toMatch(/note: differential [0-9a-f]{8}: \d+ jobs? for the workers/);
    }
    expect(w.err()).toMatch(/finished \S+ \(differential cell 1\)/);
    expect(await stop(w)).toBe(0);
  });

  it("exits 2 within seconds with one line when Redis is unreachable", async () => {
    const closed = await freePort();
    const args = ["sweep", "--preset", "munmap-1g", "--size", "4M", "--folios", "64K"];
    let t0 = performance.now();
    const refused = await run([...args, "--queue", `redis://127.0.0.1:${closed}`]);
    const refusedMs = performance.now() - t0;
    expect(refused.status).toBe(2);
    expect(refused.stderr).toBe(
      `teardown-lab: cannot reach Redis at redis://127.0.0.1:${closed}/0: connection refused (is redis-server running there?)\n`,
    );
    expect(refusedMs).toBeLessThan(5000);
    const w = await run(["worker", "--queue", `redis://127.0.0.1:${closed}`]);
    expect(w.status).toBe(2);
    expect(w.stderr).toContain("cannot reach Redis");
    // A listener that never answers: the connection's 3 s limit.
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    try {
      t0 = performance.now();
      const mute = await run([...args, "--queue", `redis://127.0.0.1:${port}`]);
      expect(mute.status).toBe(2);
      expect(mute.stderr).toBe(
        `teardown-lab: cannot reach Redis at redis://127.0.0.1:${port}/0: no answer within 3 s\n`,
      );
      expect(performance.now() - t0).toBeLessThan(10_000);
    } finally {
      silent.close();
    }
  });
});
