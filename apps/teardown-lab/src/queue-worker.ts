// `teardown-lab worker --queue URL`: takes sweep cells, explorations and differential chunks from the queue and runs them on
// this machine's local pool (tinypool, dist/sweep-worker.js, one thread per core by default), as many
// at once as the pool has threads. A sweep job's cells share one build when this machine's memory limit
// has room for two copies of the model per thread (`modelCopies`). The model runs in the pool's threads, so this process's event loop
// stays free to renew the jobs' locks. Node-only.
import { hostname } from "node:os";
import type { Job } from "bullmq";
import {
  type CellJob,
  connectRedis,
  formatVersions,
  JOB_KINDS,
  JOB_PROTOCOL,
  MAX_STALLED,
  packageVersions,
  QUEUE_NAME,
  type QueueUrl,
  REFUSED,
  versionDifference,
} from "./queue.js";
import { modelCopies } from "./run.js";
import type { SweepReply, SweepTask } from "./sweep-worker.js";

export interface WorkerOptions {
  readonly url: QueueUrl;
  /** Pool threads, and jobs run at once. */
  readonly threads: number;
  /** Bytes of model the pool's threads may hold at once (sweep jobs share builds within it). */
  readonly memoryLimitBytes: number;
  /**
   * Lock time of a job, ms: a job whose worker has not renewed its lock for this long (killed, frozen)
   * is put back in the queue by another worker's check, which runs as often.
   */
  readonly stallTimeoutMs: number;
  /** A line per job started and finished. */
  readonly verbose: boolean;
  /** Writes one line to stderr. */
  readonly log: (line: string) => void;
  /** Progress summary every this many ms (when something changed). */
  readonly reportEveryMs?: number;
}

/** What a worker did: every counter counts jobs of this process since it started. */
export interface WorkerCounts {
  /** Jobs whose reply went back (a cell the model refused, e.g. 2M folios on s390, included). */
  done: number;
  /** Sweep cells of those jobs. */
  cells: number;
  /** Of `done` (and of `cells`), replies that carry the model's error for a task or a cell. */
  cellErrors: number;
  /** Workloads the sweep jobs built (fewer than `cells` when cells shared a build). */
  builds: number;
  /** Jobs refused for other package versions or another job format. */
  refused: number;
  /** Jobs whose pool thread failed (the job fails once with that error). */
  crashed: number;
  /** Jobs running now. */
  running: number;
}

/**
 * Runs a worker until SIGINT or SIGTERM, then lets its running jobs finish and returns. Throws
 * QueueError when Redis cannot be reached at the start.
 */
export async function runWorker(o: WorkerOptions): Promise<WorkerCounts> {
  const client = await connectRedis(o.url);
  const { UnrecoverableError, Worker } = await import("bullmq");
  const { Tinypool } = await import("tinypool");
  const versions = packageVersions();
  const name = `${hostname()}:${process.pid}`;
  const pool = new Tinypool({
    filename: new URL("./sweep-worker.js", import.meta.url).href,
    minThreads: o.threads,
    maxThreads: o.threads,
  });
  const counts: WorkerCounts = {
    done: 0,
    cells: 0,
    cellErrors: 0,
    builds: 0,
    refused: 0,
    crashed: 0,
    running: 0,
  };
  const say = (line: string) => o.log(`worker ${name}: ${line}`);

  const processor = async (job: Job<CellJob>) => {
    const d = job.data;
    const why =
      d.protocol !== JOB_PROTOCOL
        ? `job format ${d.protocol} in the job, ${JOB_PROTOCOL} here`
        : !Object.hasOwn(JOB_KINDS, d.kind)
          ? `job kind "${String(d.kind)}" is not one of ${Object.keys(JOB_KINDS).join(", ")}`
          : versionDifference(d.versions, versions);
    if (why !== null) {
      counts.refused++;
      say(`refused ${job.id}: versions differ (${why})`);
      throw new UnrecoverableError(`${REFUSED}${name} has other versions: ${why}`);
    }
    const what = `${job.id} (${d.kind} cell ${d.index}${d.kind === "sweep" ? `: ${d.task.cells.map((c) => `${c.variant}/${c.arch}`).join(", ")}` : ""})`;
    const task =
      d.kind === "sweep"
        ? ({
            ...d.task,
            copies: modelCopies(o.memoryLimitBytes, d.task.scenario, o.threads),
          } satisfies SweepTask)
        : d.task;
    counts.running++;
    if (o.verbose) say(`started ${what}`);
    const t0 = performance.now();
    try {
      const reply = (await pool.run(task, { name: JOB_KINDS[d.kind] })) as SweepReply | { error?: string };
      counts.done++;
      let built = "";
      if (d.kind === "sweep") {
        const r = reply as SweepReply;
        counts.cells += r.cells.length;
        counts.builds += r.builds;
        for (const c of r.cells) if ("error" in c) counts.cellErrors++;
        built = `, ${r.builds} build${r.builds === 1 ? "" : "s"}`;
      } else if ((reply as { error?: string }).error !== undefined) counts.cellErrors++;
      if (o.verbose) say(`finished ${what} in ${((performance.now() - t0) / 1000).toFixed(1)} s${built}`);
      return reply;
    } catch (e) {
      counts.crashed++;
      const m = e instanceof Error ? e.message : String(e);
      say(`${what} failed: ${m}`);
      throw new UnrecoverableError(`the pool thread running it on ${name} failed: ${m}`);
    } finally {
      counts.running--;
    }
  };

  const worker = new Worker<CellJob>(QUEUE_NAME, processor, {
    connection: client,
    concurrency: o.threads,
    name,
    lockDuration: o.stallTimeoutMs,
    stalledInterval: o.stallTimeoutMs,
    maxStalledCount: MAX_STALLED,
    autorun: false,
  });
  let lastError = "";
  worker.on("error", (e) => {
    // ioredis repeats a lost connection's error on every retry: say each new one once.
    if (e.message !== lastError) say(`queue error: ${e.message}`);
    lastError = e.message;
  });
  worker.on("ready", () => {
    lastError = "";
  });

  let stopping = false;
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) {
        say(`${signal} again: leaving ${counts.running} jobs to the other workers`);
        process.exit(130);
      }
      stopping = true;
      say(`${signal}: stopping after the ${counts.running} running jobs (again to stop at once)`);
      resolve();
    };
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGTERM", () => stop("SIGTERM"));
  });

  const running = worker.run();
  await worker.waitUntilReady();
  say(
    `taking jobs from ${o.url.display} on ${o.threads} thread${o.threads === 1 ? "" : "s"} (${formatVersions(versions)})`,
  );
  let reported = "";
  const report = () => {
    const line =
      `${counts.done} jobs done (${counts.cells} sweep cells on ${counts.builds} builds; ` +
      `${counts.cellErrors} refused by the model), ` +
      `${counts.refused} jobs refused for other versions, ${counts.crashed} failed, ${counts.running} running`;
    if (line !== reported) say(line);
    reported = line;
  };
  const ticker = setInterval(report, o.reportEveryMs ?? 10_000);
  ticker.unref();
  try {
    await Promise.race([stopped, running]);
  } finally {
    clearInterval(ticker);
    await worker.close();
    await running.catch(() => {});
    await pool.destroy();
    client.disconnect();
    report();
  }
  return counts;
}
