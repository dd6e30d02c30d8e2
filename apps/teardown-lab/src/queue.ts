// What the queue's client (`sweep --queue`, `explore --queue`, `differential --queue`) and its workers (`worker --queue`)
// share: the queue URL, the Redis connection with its fail-fast first connect, the package versions a
// job carries, the job's shape, and QueueError. The queue is BullMQ's on Redis; a job is the cells of a
// sweep that share a build, one exploration or one chunk of a differential run, its return value the
// reply. Node-only.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Redis } from "ioredis";
import type { DifferentialTask } from "./differential.js";
import type { ExploreTask, SweepCells } from "./sweep-worker.js";

/** The BullMQ queue every client and worker uses (keys `bull:teardown-lab:*`). */
export const QUEUE_NAME = "teardown-lab";

/** Prefix of the hash that records an unfinished sweep or exploration (`--resume ID` reads it). */
export const CAMPAIGN_KEY_PREFIX = "teardown-lab:campaign:";

/**
 * Format of `CellJob`; a worker refuses a job of any other format. 2: the "differential" kind (a worker
 * of format 1 would have run it as an exploration). 3: a "sweep" job is the cells of one scenario that
 * share a build (`SweepCells`), its reply every cell's (`SweepReply`), where it was one cell.
 */
export const JOB_PROTOCOL = 3;

/** The kinds of job a worker runs, and the pool function of each. */
export const JOB_KINDS = {
  sweep: "default",
  explore: "exploreTask",
  differential: "differentialTask",
} as const;

/** How long the first connection to Redis may take before the command gives up (exit 2). */
export const CONNECT_TIMEOUT_MS = 3000;

/** Oldest Redis BullMQ runs on. */
const MIN_REDIS = [5, 0, 0] as const;

export type QueueErrorCode =
  /** `--queue` is not `redis://HOST[:PORT][/DB]`. */
  | "BAD_QUEUE_URL"
  /** Nothing answered at the URL within CONNECT_TIMEOUT_MS, or it refused the connection. */
  | "QUEUE_UNREACHABLE"
  /** Redis stopped answering while the client waited for results. */
  | "QUEUE_LOST"
  /** The server is older than BullMQ supports. */
  | "REDIS_TOO_OLD"
  /** A worker refused a job: its package versions (or job format) differ from the client's. */
  | "VERSION_MISMATCH"
  /** `--resume ID` names no unfinished sweep or exploration on this queue. */
  | "NO_SUCH_CAMPAIGN"
  /** `--resume ID` was started with other cells or other package versions. */
  | "CAMPAIGN_MISMATCH"
  /** Some cells failed on the queue (their worker died too often running them, or its thread crashed). */
  | "CELL_FAILED";

const QUEUE_ERROR = Symbol.for("teardown-lab.QueueError");

/** An error of the queue (its message is one line for the user); the CLI exits 2 on it. */
export class QueueError extends Error {
  readonly [QUEUE_ERROR] = true;
  override readonly name = "QueueError";
  constructor(
    readonly code: QueueErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True for a QueueError, also one from another copy of this module. */
export function isQueueError(u: unknown): u is QueueError {
  return typeof u === "object" && u !== null && (u as { [QUEUE_ERROR]?: unknown })[QUEUE_ERROR] === true;
}

/** A parsed `--queue` URL. */
export interface QueueUrl {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username?: string;
  readonly password?: string;
  /** `rediss://`: TLS. */
  readonly tls: boolean;
  /** The URL without its password, for messages. */
  readonly display: string;
}

/** Parses `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (or `rediss://` for TLS); port 6379, DB 0 by default. */
export function parseQueueUrl(text: string): QueueUrl {
  const bad = (why: string) =>
    new QueueError(
      "BAD_QUEUE_URL",
      `--queue ${JSON.stringify(text)}: ${why}; expected redis://HOST:PORT[/DB]`,
    );
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw bad("not a URL");
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") throw bad(`the scheme is ${u.protocol}`);
  if (u.search !== "" || u.hash !== "") throw bad("query strings and fragments are not understood");
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "") throw bad("no host");
  const port = u.port === "" ? 6379 : Number(u.port);
  if (port === 0) throw bad("port 0");
  const path = u.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d{1,6}$/.test(path)) throw bad(`the database "${path}" is not a number`);
  const db = path === "" ? 0 : Number(path);
  const username = u.username === "" ? undefined : decodeURIComponent(u.username);
  const password = u.password === "" ? undefined : decodeURIComponent(u.password);
  const display = `${u.protocol}//${username === undefined ? "" : `${username}@`}${u.hostname}:${port}/${db}`;
  return { host, port, db, username, password, tls: u.protocol === "rediss:", display };
}

/** Words for a connection error ("connection refused", …). */
function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case "ECONNREFUSED":
      return "connection refused (is redis-server running there?)";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "unknown host";
    case "ETIMEDOUT":
      return `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "host unreachable";
  }
  const m = err instanceof Error ? err.message : String(e);
  if (/NOAUTH|WRONGPASS/.test(m)) return "Redis wants a (different) password: redis://:PASSWORD@HOST:PORT";
  if (/DB index is out of range/.test(m)) return "that database does not exist on this server";
  return m.split("\n")[0];
}

/**
 * Connects to Redis, giving up with QUEUE_UNREACHABLE after CONNECT_TIMEOUT_MS or at the first refusal,
 * and checks the server's version. Once connected, a dropped connection is retried (every 0.25–5 s)
 * so BullMQ rides over a Redis restart. BullMQ duplicates the returned client for its blocking reads.
 */
export async function connectRedis(url: QueueUrl): Promise<Redis> {
  const { Redis } = await import("ioredis");
  let connected = false;
  const client = new Redis({
    host: url.host,
    port: url.port,
    db: url.db,
    username: url.username,
    password: url.password,
    tls: url.tls ? {} : undefined,
    lazyConnect: true,
    // RESP2, the protocol of every Redis BullMQ runs on (ioredis 6 defaults to RESP3, Redis 6+ only).
    protocol: 2,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // How long disconnect() waits for a socket to close before destroying it (ioredis: 2 s).
    disconnectTimeout: 200,
    // BullMQ's blocking commands need it; it also keeps commands queued over a reconnect.
    maxRetriesPerRequest: null,
    retryStrategy: (times) => (connected ? Math.min(250 * times, 5000) : null),
  });
  // connect() rejects with "Connection is closed." only: keep the error that closed it. Later errors are
  // reported by the connection's users (BullMQ's workers and queues).
  let lastError: unknown;
  client.on("error", (e) => {
    if (!connected) lastError = e;
  });
  const timeout = new Promise<never>((_, reject) => {
    const t = setTimeout(
      () => reject(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })),
      CONNECT_TIMEOUT_MS + 500,
    );
    t.unref();
  });
  let version: string;
  try {
    await Promise.race([client.connect(), timeout]);
    // ioredis carries on in database 0 when its own SELECT fails; this one throws.
    await Promise.race([client.select(url.db), timeout]);
    const info = await Promise.race([client.info("server"), timeout]);
    version = /redis_version:([\d.]+)/.exec(info)?.[1] ?? "0.0.0";
  } catch (e) {
    client.disconnect();
    const cause = (e as NodeJS.ErrnoException).code === "ETIMEDOUT" ? e : (lastError ?? e);
    throw new QueueError("QUEUE_UNREACHABLE", `cannot reach Redis at ${url.display}: ${reason(cause)}`, {
      cause,
    });
  }
  const v = version.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    if ((v[i] ?? 0) > MIN_REDIS[i]) break;
    if ((v[i] ?? 0) < MIN_REDIS[i]) {
      client.disconnect();
      throw new QueueError(
        "REDIS_TOO_OLD",
        `Redis at ${url.display} is version ${version}; BullMQ needs ${MIN_REDIS.join(".")} or later`,
      );
    }
  }
  connected = true;
  return client;
}

/**
 * Versions of teardown-lab and of every @mmgather package it depends on, as installed where this runs.
 * A job carries the client's; a worker refuses a job whose versions differ from its own, because the
 * same cell must give the same result wherever it runs.
 */
export function packageVersions(): Readonly<Record<string, string>> {
  const app = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    name: string;
    version: string;
    dependencies: Record<string, string>;
  };
  const require = createRequire(import.meta.url);
  const out: Record<string, string> = { [app.name]: app.version };
  for (const dep of Object.keys(app.dependencies).sort()) {
    if (dep.startsWith("@mmgather/"))
      out[dep] = (require(`${dep}/package.json`) as { version: string }).version;
  }
  return out;
}

/** "teardown-lab 0.1.0, @mmgather/folio 0.1.0, …" */
export function formatVersions(v: Readonly<Record<string, string>>): string {
  return Object.entries(v)
    .map(([k, x]) => `${k} ${x}`)
    .join(", ");
}

/**
 * The versions that differ between a job and a worker, in words; null when they are the same.
 * Every package of either side is compared, so a package only one side has is a difference too.
 */
export function versionDifference(
  job: Readonly<Record<string, string>>,
  worker: Readonly<Record<string, string>>,
): string | null {
  const names = [...new Set([...Object.keys(job), ...Object.keys(worker)])].sort();
  const diff = names
    .filter((n) => job[n] !== worker[n])
    .map((n) => `${n} ${job[n] ?? "(none)"} in the job, ${worker[n] ?? "(none)"} here`);
  return diff.length === 0 ? null : diff.join("; ");
}

/** What every job carries besides its task. */
export interface JobHeader {
  /** JOB_PROTOCOL of the client that queued it. */
  readonly protocol: number;
  /** The client's packageVersions(). */
  readonly versions: Readonly<Record<string, string>>;
  /** The sweep's or exploration's ID (`--resume ID`). */
  readonly campaign: string;
  /** The job's position among the campaign's tasks. */
  readonly index: number;
  /** The scenario's seed (also inside the task), so a queue dashboard shows it. */
  readonly seed: number;
}

/**
 * One job: sweep cells sharing a build (scenario, designs and arches, cost profile), an exploration (scenario or broken
 * case, design, arch, bound, cap) or a chunk of a random differential run (seed, first case, count,
 * arches, broken design). BullMQ stores it as JSON; the reply comes back as the job's return value
 * (`SweepReply`, `ExploreReply` or `DifferentialReply`).
 */
export type CellJob =
  | (JobHeader & { readonly kind: "sweep"; readonly task: SweepCells })
  | (JobHeader & { readonly kind: "explore"; readonly task: ExploreTask })
  | (JobHeader & { readonly kind: "differential"; readonly task: DifferentialTask });

/** BullMQ job ID of a cell: `ID-INDEX` (BullMQ refuses `:` and all-digit custom IDs). */
export function jobIdOf(campaign: string, index: number): string {
  return `${campaign}-${index}`;
}

/** Prefix of the reason a worker fails a job with when it refuses it (the client aborts on it). */
export const REFUSED = "VERSION_MISMATCH: ";

/** Reason BullMQ gives a job whose worker stopped answering more than `maxStalledCount` times. */
export const STALLED_TOO_OFTEN = "job stalled more than allowable limit";

/** Times a cell may lose its worker (killed, out of memory) and still be run again elsewhere. */
export const MAX_STALLED = 2;
