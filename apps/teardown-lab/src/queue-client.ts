// The client side of `sweep --queue`, `explore --queue` and `differential --queue`: queues a campaign's cells as BullMQ jobs
// on Redis (a job is one task: a sweep's cells that share a build, an exploration, a differential chunk;
// "cell" below is a job), waits for every job's reply and hands them back by index, so the command prints
// exactly what it prints when it runs the tasks itself. Node-only.
//
// Exactly once: a cell's job ID is `CAMPAIGN-INDEX`, so queuing it again (`--resume`) adds nothing, and
// each index takes the first reply that arrives. A worker killed mid-cell loses its lock; another
// worker's stalled-job check puts the cell back in the queue (up to MAX_STALLED times) and it runs
// elsewhere, with the same result, because a cell depends only on its job. A cell whose job fails —
// refused for other package versions, its worker died too often, its thread crashed — fails once.
import { createHash, randomBytes } from "node:crypto";
import type { Job, Queue, QueueEvents } from "bullmq";
import type { Redis } from "ioredis";
import type { DifferentialTask } from "./differential.js";
import type { Progress } from "./progress.js";
import {
  CAMPAIGN_KEY_PREFIX,
  type CellJob,
  connectRedis,
  JOB_PROTOCOL,
  jobIdOf,
  MAX_STALLED,
  packageVersions,
  QUEUE_NAME,
  QueueError,
  type QueueUrl,
  REFUSED,
  STALLED_TOO_OFTEN,
} from "./queue.js";
import type { ExploreTask, SweepCells } from "./sweep-worker.js";

/** Redis may stop answering this long while the client waits before it gives up (QUEUE_LOST). */
export const LOST_AFTER_MS = 10_000;

/** With no news of any cell for this long, the client reads the state of the cells it waits for. */
const RECHECK_AFTER_MS = 30_000;

/** Jobs added, checked or removed per round trip. */
const CHUNK = 500;

export type CampaignCells =
  | { readonly kind: "sweep"; readonly tasks: readonly SweepCells[] }
  | { readonly kind: "explore"; readonly tasks: readonly ExploreTask[] }
  | { readonly kind: "differential"; readonly tasks: readonly DifferentialTask[] };

export interface CampaignOptions {
  readonly url: QueueUrl;
  readonly cells: CampaignCells;
  /** Seed of each task (the job shows it). */
  readonly seedOf: (index: number) => number;
  /** Labels of a task's steps on the progress bar (a sweep task's cells, else the task), one tick each. */
  readonly labelsOf: (index: number) => readonly string[];
  /** An ID to resume (`--resume ID`), else a new campaign. */
  readonly resume?: string;
  /** Starts the progress bar (after the campaign's first note). */
  readonly startProgress: () => Progress | null;
  /** Writes one line to stderr. */
  readonly note: (line: string) => void;
}

/** A cell whose job failed, with BullMQ's reason in words. */
export interface FailedCell {
  readonly index: number;
  readonly reason: string;
}

export interface CampaignResult<R> {
  readonly id: string;
  /** The reply of each cell by index; undefined for a failed cell. */
  readonly replies: readonly (R | undefined)[];
  readonly failed: readonly FailedCell[];
  /** Cells put back in the queue after their worker stopped answering (each time counts). */
  readonly rerun: number;
}

/** A new campaign ID: 8 hex digits. */
function newId(): string {
  return randomBytes(4).toString("hex");
}

function failureText(reason: string): string {
  return reason === STALLED_TOO_OFTEN
    ? `its worker stopped while running it ${MAX_STALLED + 1} times (killed, or out of memory?)`
    : reason;
}

/**
 * Runs a campaign's cells on the queue at `url`, hands their replies to `use` (which prints them) and
 * returns what `use` returns; only then is the campaign removed from Redis, so a client that dies
 * before it has printed can still `--resume`. When `use` throws, the campaign stays (its failed cells
 * run again on `--resume`). Throws QueueError when Redis is unreachable or lost, when a worker refuses
 * a job for its package versions, or when `--resume ID` names no campaign of these cells.
 */
export async function runCampaign<R, T>(
  o: CampaignOptions,
  use: (result: CampaignResult<R>) => T | Promise<T>,
): Promise<T> {
  const n = o.cells.tasks.length;
  const versions = packageVersions();
  const digest = createHash("sha256")
    .update(JSON.stringify({ kind: o.cells.kind, versions, tasks: o.cells.tasks }))
    .digest("hex");
  const client = await connectRedis(o.url);
  let queue: Queue | undefined;
  let events: QueueEvents | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let progress: Progress | null = null;
  let id = o.resume ?? newId();
  let key = CAMPAIGN_KEY_PREFIX + id;
  try {
    const { Queue, QueueEvents } = await import("bullmq");
    if (o.resume !== undefined) {
      const m = await client.hgetall(key);
      if (m.digest === undefined)
        throw new QueueError(
          "NO_SUCH_CAMPAIGN",
          `no unfinished ${o.cells.kind} "${id}" on ${o.url.display} (a finished one is removed once printed)`,
        );
      if (m.kind !== o.cells.kind || m.digest !== digest)
        throw new QueueError(
          "CAMPAIGN_MISMATCH",
          `${m.kind} "${id}" was started with other jobs (${m.cells} of them) or other package versions; ` +
            "resume it with the arguments it was started with, from the same installation",
        );
      o.note(`resuming ${o.cells.kind} ${id} (${n} job${n === 1 ? "" : "s"}) on ${o.url.display}`);
    } else {
      // A new ID must not be an unfinished campaign's (1 in 2^32 per campaign on the queue).
      while ((await client.hsetnx(key, "digest", digest)) === 0) {
        id = newId();
        key = CAMPAIGN_KEY_PREFIX + id;
      }
      await client.hset(key, { kind: o.cells.kind, cells: n, created: new Date().toISOString() });
      o.note(
        `${o.cells.kind} ${id}: ${n} job${n === 1 ? "" : "s"} for the workers on ${o.url.display} (if this command stops, ` +
          `they go on: add --resume ${id} to the same command to collect the results)`,
      );
    }

    progress = o.startProgress();
    const prefix = `${id}-`;
    const replies: (R | undefined)[] = new Array(n);
    const failed = new Map<number, string>();
    const done = new Uint8Array(n);
    let left = n;
    let rerun = 0;
    let lastNews = Date.now();
    let settle!: (e?: unknown) => void;
    const finished = new Promise<void>((resolve, reject) => {
      settle = (e) => (e === undefined ? resolve() : reject(e));
    });
    const indexOf = (jobId: string): number => {
      if (!jobId.startsWith(prefix)) return -1;
      const i = Number(jobId.slice(prefix.length));
      return Number.isInteger(i) && i >= 0 && i < n ? i : -1;
    };
    const finish = (i: number, reply: R | undefined, reason?: string) => {
      lastNews = Date.now();
      if (done[i] === 1) return;
      if (reason?.startsWith(REFUSED)) {
        settle(
          new QueueError(
            "VERSION_MISMATCH",
            `a worker refused job ${i}: ${reason.slice(REFUSED.length)}. Install the same versions on every ` +
              `machine, then add --resume ${id} to the same command`,
          ),
        );
        return;
      }
      done[i] = 1;
      left--;
      if (reason === undefined) replies[i] = reply;
      else failed.set(i, failureText(reason));
      for (const label of o.labelsOf(i)) progress?.tick(label);
      if (left === 0) settle();
    };

    // Read events from the stream's current end, so none of this campaign's is missed.
    const eventsKey = `bull:${QUEUE_NAME}:events`;
    const last = (await client.xrevrange(eventsKey, "+", "-", "COUNT", 1)) as [string, string[]][];
    events = new QueueEvents(QUEUE_NAME, { connection: client, lastEventId: last[0]?.[0] ?? "0-0" });
    events.on("error", () => {});
    events.on("completed", ({ jobId, returnvalue }) => {
      const i = indexOf(jobId);
      if (i >= 0) finish(i, returnvalue as unknown as R);
    });
    events.on("failed", ({ jobId, failedReason }) => {
      const i = indexOf(jobId);
      if (i >= 0) finish(i, undefined, failedReason);
    });
    events.on("stalled", ({ jobId }) => {
      if (indexOf(jobId) >= 0) {
        rerun++;
        lastNews = Date.now();
      }
    });
    await events.waitUntilReady();

    queue = new Queue(QUEUE_NAME, { connection: client });
    queue.on("error", () => {});
    for (let from = 0; from < n; from += CHUNK) {
      const chunk = o.cells.tasks.slice(from, from + CHUNK);
      await queue.addBulk(
        chunk.map((task) => ({
          name: o.cells.kind,
          data: {
            protocol: JOB_PROTOCOL,
            versions,
            campaign: id,
            index: task.index,
            seed: o.seedOf(task.index),
            kind: o.cells.kind,
            task,
          } as CellJob,
          opts: { jobId: jobIdOf(id, task.index), attempts: 1, removeOnComplete: false, removeOnFail: false },
        })),
      );
    }

    // What finished before this client (re)started: read it from the jobs themselves.
    const q = queue;
    const recheck = async (retryFailed: boolean) => {
      const pending: number[] = [];
      for (let i = 0; i < n; i++) if (done[i] === 0) pending.push(i);
      let retried = 0;
      for (let from = 0; from < pending.length; from += CHUNK) {
        const jobs = await Promise.all(
          pending.slice(from, from + CHUNK).map((i) => q.getJob(jobIdOf(id, i))),
        );
        for (const job of jobs as (Job | undefined)[]) {
          if (job === undefined) continue;
          const state = await job.getState();
          const i = indexOf(job.id ?? "");
          if (state === "completed") finish(i, job.returnvalue as R);
          else if (state === "failed") {
            // Resuming runs again what failed for want of a worker (refused, died too often, crashed).
            if (retryFailed) {
              await job.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
              retried++;
            } else finish(i, undefined, job.failedReason);
          }
        }
      }
      if (retried > 0) o.note(`${retried} jobs that failed before are queued again`);
    };
    if (o.resume !== undefined) await recheck(true);

    // Watch the connection and, when nothing is heard for a while, look at the cells themselves.
    let lastOk = Date.now();
    let checking = false;
    ticker = setInterval(() => {
      if (checking) return;
      checking = true;
      Promise.race([client.ping(), new Promise((r) => setTimeout(r, 1000).unref())])
        .then(async (pong) => {
          if (pong === "PONG") lastOk = Date.now();
          if (Date.now() - lastOk > LOST_AFTER_MS) {
            settle(
              new QueueError(
                "QUEUE_LOST",
                `Redis at ${o.url.display} stopped answering; if it keeps its data, the ${o.cells.kind}'s cells ` +
                  `are still queued there: add --resume ${id} to the same command once it is back`,
              ),
            );
            return;
          }
          if (left > 0 && Date.now() - lastNews > RECHECK_AFTER_MS) {
            lastNews = Date.now();
            await recheck(false);
          }
        })
        .catch(() => {})
        .finally(() => {
          checking = false;
        });
    }, 1000);
    ticker.unref();
    if (n === 0) settle();
    await finished;
    clearInterval(ticker);
    progress?.stop();

    const out = await use({
      id,
      replies,
      failed: [...failed].map(([index, reason]) => ({ index, reason })).sort((a, b) => a.index - b.index),
      rerun,
    });
    // Printed: nothing to resume any more.
    for (let from = 0; from < n; from += CHUNK) {
      const ids: string[] = [];
      for (let i = from; i < Math.min(n, from + CHUNK); i++) ids.push(jobIdOf(id, i));
      await Promise.all(ids.map((j) => q.remove(j).catch(() => 0)));
    }
    await client.del(key);
    return out;
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
    progress?.stop();
    await close(events, queue, client);
  }
}

async function close(
  events: QueueEvents | undefined,
  queue: Queue | undefined,
  client: Redis,
): Promise<void> {
  // A lost Redis must not hold the process: bound the polite close, then cut the connections.
  const polite = Promise.allSettled([events?.close(), queue?.close()]);
  await Promise.race([polite, new Promise((r) => setTimeout(r, 2000).unref())]);
  client.disconnect();
}
