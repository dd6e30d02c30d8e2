// `host measure`: times the running kernel's teardown per operation and folio size. Each sample is a
// fresh child process (child.ts) that builds one layout and times one operation; rounds are
// interleaved across configurations (round r runs every configuration once, in an order rotated by
// r) so that drift of a noisy host spreads over all of them instead of biasing one.
//
// Exit is timed from the parent: SIGKILL, then waitid(WEXITED | WNOWAIT) returns once the whole
// thread group is dead, which is after exit_mm → mmput → exit_mmap (do_exit runs exit_mm before
// exit_notify). The runtime's own teardown (its heap, threads and files) is removed by timing, in the
// same round and right before, a baseline child that is identical but maps nothing: the point is
// exit − baseline. Its error is the baseline's own spread, reported with the point.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildConfig, ChildReport, Layout } from "./child.js";
import { onExitPath } from "./cleanup.js";
import { HostError, waitExited } from "./sys.js";
import { mthpSizes, readThpSettings, type ThpSettings } from "./thp.js";

/** The operations `measure` covers. */
export const HOST_OPS = [
  "munmap",
  "exit",
  "dontneed",
  "fork-munmap",
  "shmem-munmap",
  "file-read-munmap",
  "file-write-munmap",
] as const;
export type HostOp = (typeof HOST_OPS)[number];

/** Folio layouts: a size, and "2M-pmd" for PMD-mapped 2M folios ("2M" is PTE-mapped). */
export const HOST_FOLIOS = ["4K", "16K", "64K", "2M", "2M-pmd"] as const;
export type HostFolio = (typeof HOST_FOLIOS)[number];

export interface MeasureOptions {
  readonly ops: readonly HostOp[];
  readonly folios: readonly HostFolio[];
  readonly bytes: number;
  readonly rounds: number;
  /** Set the mTHP knobs per configuration (root); restored when measure returns or the process ends. */
  readonly thp?: ThpSettings;
  /** Called after every sample. */
  readonly progress?: (done: number, total: number, label: string) => void;
}

/** Median, minimum and spread of samples. */
export interface Stats {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** (max − min) / median. */
  readonly spread: number;
}

export function stats(xs: readonly number[]): Stats {
  if (xs.length === 0) throw new HostError("HOST_INPUT", "no samples");
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  const median = s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
  const min = s[0];
  const max = s[s.length - 1];
  return { median, min, max, spread: median > 0 ? (max - min) / median : 0 };
}

/** A point whose spread is above this is flagged. */
export const SPREAD_LIMIT = 0.2;

export interface HostPoint {
  readonly id: string;
  readonly op: HostOp;
  /** The folio size asked for ("page-cache" for file mappings, whose folios the kernel chooses). */
  readonly folio: HostFolio | "page-cache";
  readonly bytes: number;
  /** Median seconds (exit: exit − baseline). */
  readonly seconds: number;
  readonly min: number;
  readonly spread: number;
  readonly rounds: number;
  /** Spread over SPREAD_LIMIT. */
  readonly flagged: boolean;
  /** Whether every round's layout came out as asked, and what it was. */
  readonly layoutOk: boolean;
  readonly layout: string;
  /** The folio size the file's page cache used (file points: the one most pages were in). */
  readonly observedFolio?: string;
  /** Share of the bytes mapped by PMDs (first round). */
  readonly pmdShare: number;
  /** exit only: the baseline child's exit, median and spread (the method's error). */
  readonly baseline?: { readonly seconds: number; readonly spread: number };
}

export interface HostInfo {
  readonly kernel: string;
  readonly cpu: string;
  readonly cores: number;
  /** LLC bytes per CPU sharing it (zone_pcp_update_cacheinfo's per-CPU data slice), null if unknown. */
  readonly llcPerCpu: number | null;
  /** The Normal zone's per-CPU page-list batch (/proc/zoneinfo "batch:"), null if unknown. */
  readonly pcpBatch: number | null;
  readonly thp: Record<string, string>;
  readonly method: string;
}

export interface HostTable {
  readonly host: HostInfo;
  readonly points: readonly HostPoint[];
  /** Configurations not measured and why. */
  readonly skipped: readonly string[];
}

export const METHOD =
  "Each sample is a fresh child process (Node + koffi FFI) that maps the memory, populates it with " +
  "plain stores (memset; read-touched file pages: loads, memchr), checks the layout, and times one system call with " +
  "a monotonic clock; rounds interleaved across configurations; median, min and spread = (max - min) / " +
  "median. Exit: the parent sends SIGKILL and waits with waitid(WEXITED|WNOWAIT), minus a baseline " +
  "child that maps nothing, timed right before in the same round.";

export function hostInfo(): HostInfo {
  const cpuinfo = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
  const cpu = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? /^CPU part\s*:\s*(.*)$/m.exec(cpuinfo)?.[1];
  let llcPerCpu: number | null = null;
  for (const idx of [3, 2]) {
    const d = `/sys/devices/system/cpu/cpu0/cache/index${idx}`;
    if (!existsSync(`${d}/size`)) continue;
    const size = Number.parseInt(readFileSync(`${d}/size`, "utf8"), 10) * 1024;
    const shared = cpuCount(readFileSync(`${d}/shared_cpu_list`, "utf8").trim());
    llcPerCpu = Math.floor(size / Math.max(1, shared));
    break;
  }
  let pcpBatch: number | null = null;
  if (existsSync("/proc/zoneinfo")) {
    const zi = readFileSync("/proc/zoneinfo", "utf8");
    const normal = zi.indexOf("zone   Normal");
    const m = /batch:\s+(\d+)/.exec(zi.slice(Math.max(normal, 0)));
    if (m !== null) pcpBatch = Number(m[1]);
  }
  return {
    kernel: existsSync("/proc/sys/kernel/osrelease")
      ? readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()
      : "unknown",
    cpu: cpu ?? "unknown",
    cores: availableParallelism(),
    llcPerCpu,
    pcpBatch,
    thp: readThpSettings(),
    method: METHOD,
  };
}

/** Number of CPUs in a list such as "0-3,8". */
export function cpuCount(list: string): number {
  let n = 0;
  for (const part of list.split(",")) {
    if (part === "") continue;
    const [a, b] = part.split("-").map(Number);
    n += b === undefined ? 1 : b - a + 1;
  }
  return n;
}

interface Config {
  readonly op: HostOp;
  readonly folio: HostFolio | "page-cache";
  readonly child: ChildConfig;
}

const FOLIO_KB: Record<HostFolio, number> = { "4K": 4, "16K": 16, "64K": 64, "2M": 2048, "2M-pmd": 2048 };
const isFile = (op: HostOp) => op === "file-read-munmap" || op === "file-write-munmap";

/** The child configuration of one measured operation at one folio layout. */
export function childConfig(
  op: HostOp,
  folio: HostFolio | "page-cache",
  bytes: number,
  file = "",
): ChildConfig {
  const kb = folio === "page-cache" ? 4 : FOLIO_KB[folio];
  const kind = op === "shmem-munmap" ? "shmem" : isFile(op) ? "file-private" : "anon";
  const dirty = op === "shmem-munmap" || op === "file-write-munmap" ? 1 : 0;
  return {
    mappings: [
      {
        kind,
        bytes,
        folioKb: kb,
        pmd: folio === "2M-pmd",
        populate: 1,
        dirty,
        mlock: false,
        ...(kind === "file-private" ? { file } : {}),
      },
    ],
    op: {
      kind: op === "exit" ? "exit" : op === "dontneed" ? "dontneed" : "munmap",
      index: 0,
      offset: 0,
      length: bytes,
    },
    fork: op === "fork-munmap",
    configureThp: false,
    scan: true,
  };
}

/** A child that maps nothing and is killed: what exit costs without the measured memory. */
export const BASELINE: ChildConfig = {
  mappings: [],
  op: { kind: "exit", index: 0, offset: 0, length: 0 },
  fork: false,
  configureThp: false,
  scan: false,
};

function plan(o: MeasureOptions, file: string): { configs: Config[]; skipped: string[] } {
  const sizes = new Set(mthpSizes());
  const configs: Config[] = [];
  const skipped: string[] = [];
  for (const op of o.ops) {
    if (isFile(op)) {
      configs.push({ op, folio: "page-cache", child: childConfig(op, "page-cache", o.bytes, file) });
      continue;
    }
    for (const folio of o.folios) {
      const kb = FOLIO_KB[folio];
      if (kb > 4 && !sizes.has(kb)) {
        skipped.push(`${op} ${folio}: this kernel offers no ${kb} KiB THP size`);
        continue;
      }
      if (op === "shmem-munmap" && folio === "2M") {
        skipped.push(
          `${op} 2M: a PTE-mapped 2M shmem folio cannot be arranged from user space (splitting a shmem PMD ` +
            "unmaps it, and the next fault maps the whole folio by PMD again)",
        );
        continue;
      }
      if (o.bytes % (2 << 20) !== 0 && kb === 2048) {
        skipped.push(`${op} ${folio}: --size is not a multiple of 2M`);
        continue;
      }
      configs.push({
        op,
        folio,
        child: { ...childConfig(op, folio, o.bytes), configureThp: o.thp !== undefined },
      });
    }
  }
  return { configs, skipped };
}

/** The child script: next to this module when built; from the sources (tests), the built one. */
const CHILD = existsSync(new URL("./child.js", import.meta.url))
  ? new URL("./child.js", import.meta.url)
  : new URL("../dist/child.js", import.meta.url);

interface Running {
  readonly pid: number;
  readonly report: Promise<ChildReport>;
  readonly done: Promise<number | null>;
}

export function startChild(c: ChildConfig): Running {
  const p = spawn(process.execPath, [CHILD.pathname, JSON.stringify(c)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  p.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const done = new Promise<number | null>((resolve) => p.on("close", (code) => resolve(code)));
  const report = new Promise<ChildReport>((resolve, reject) => {
    p.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as ChildReport);
    });
    p.on("close", (code) => {
      if (!out.includes("\n"))
        reject(
          new HostError(
            "HOST_CHILD",
            `measurement child (${c.op.kind}) exited ${code} without a report: ${err.trim().split("\n").slice(-3).join(" | ")}`,
          ),
        );
    });
  });
  if (p.pid === undefined) throw new HostError("HOST_CHILD", "cannot start a measurement child");
  return { pid: p.pid, report, done };
}

/** Runs one child; its report and the seconds of its timed operation (exit: from SIGKILL to dead). */
export async function sample(c: ChildConfig): Promise<{ seconds: number; layouts: readonly Layout[] }> {
  const r = startChild(c);
  const rep = await r.report;
  let seconds: number;
  if (rep.ready === true) {
    // The child's shmem files outlive it, as in the model: hold them open across its exit.
    const held = (rep.keepFds ?? []).map((fd) => openSync(`/proc/${r.pid}/fd/${fd}`, "r"));
    const t0 = process.hrtime.bigint();
    process.kill(r.pid, "SIGKILL");
    waitExited(r.pid);
    seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    for (const fd of held) closeSync(fd);
  } else {
    seconds = (rep.ns ?? 0) / 1e9;
  }
  await r.done;
  return { seconds, layouts: rep.layouts };
}

/** Whether a layout is what the configuration asked for, and a one-line description of it. */
export function judgeLayout(
  cfg: {
    readonly op: HostOp;
    readonly folio: string;
    readonly bytes: number;
    /** Pages faulted in (default: every page of `bytes`). */
    readonly present?: number;
  },
  l: Layout,
): {
  ok: boolean;
  text: string;
  dominant?: string;
  pmdShare: number;
} {
  const pages = cfg.present ?? cfg.bytes / 4096;
  const mix = l.folios.map(([n, k]) => `${k}×${n * 4}K`).join(" + ");
  const parts: string[] = [];
  if (mix !== "") parts.push(`folios ${mix}`);
  if (l.present >= 0) parts.push(`${l.present} of ${pages} pages present`);
  parts.push(`${l.pmdMapped >> 20} MiB PMD-mapped`);
  if (l.thpAllocated !== null) parts.push(`${l.thpAllocated} THPs of the size allocated at fault`);
  const text = parts.join(", ");
  let dominant: string | undefined;
  if (l.folios.length > 0) {
    const [n] = [...l.folios].sort((a, b) => b[0] * b[1] - a[0] * a[1])[0];
    dominant = n * 4 >= 1024 ? `${(n * 4) >> 10}M` : `${n * 4}K`;
  }
  if (cfg.folio === "page-cache") {
    const want = cfg.op === "file-write-munmap" ? 1 : 0; // written: every page an order-0 anon copy
    const ok = l.present < 0 || (l.present === pages && (want === 0 || dominant === "4K"));
    return { ok, text, dominant, pmdShare: l.pmdMapped / cfg.bytes };
  }
  const m = /^(\d+)([KM])/.exec(cfg.folio);
  const wantPages = m === null ? 1 : (Number(m[1]) * (m[2] === "M" ? 1024 : 1)) / 4;
  const pmd = cfg.folio === "2M-pmd";
  let ok = pmd ? l.pmdMapped === pages * 4096 : l.pmdMapped === 0;
  if (l.present >= 0) {
    const inSize = l.folios.find(([n]) => n === wantPages);
    ok &&= l.present === pages && (inSize?.[0] ?? 0) * (inSize?.[1] ?? 0) >= 0.98 * pages;
  } else if (l.thpAllocated !== null) {
    ok &&= l.thpAllocated >= (0.98 * pages) / wantPages;
  }
  return { ok, text, dominant, pmdShare: l.pmdMapped / cfg.bytes };
}

/** Writes a file of `bytes` bytes (non-zero data, so reads cannot be served by the zero page). */
export function makeFile(bytes: number, tag = ""): string {
  const path = join(tmpdir(), `mmgather-host-${process.pid}${tag}.data`);
  const fd = openSync(path, "w");
  try {
    const chunk = Buffer.alloc(8 << 20, 0x5a);
    for (let off = 0; off < bytes; off += chunk.length)
      writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - off));
  } finally {
    closeSync(fd);
  }
  return path;
}

/** Measures every configuration `rounds` times, interleaved. */
export async function measure(o: MeasureOptions): Promise<HostTable> {
  if (process.platform !== "linux")
    throw new HostError("HOST_NOT_LINUX", `host measurements need Linux; this is ${process.platform}`);
  if (!Number.isInteger(o.rounds) || o.rounds < 1)
    throw new HostError("HOST_INPUT", `rounds must be a positive integer, got ${o.rounds}`);
  if (!Number.isInteger(o.bytes) || o.bytes <= 0 || o.bytes % (64 << 10) !== 0)
    throw new HostError("HOST_INPUT", `size must be a positive multiple of 64K, got ${o.bytes}`);
  const info = hostInfo();
  const needFile = o.ops.some(isFile);
  const file = needFile ? makeFile(o.bytes) : "";
  const removeFile = onExitPath(() => {
    if (file !== "") rmSync(file, { force: true });
  });
  o.thp?.guard();
  try {
    const { configs, skipped } = plan(o, file);
    const samples = configs.map(() => [] as number[]);
    const base = configs.map(() => [] as number[]);
    const layouts = configs.map(() => [] as ReturnType<typeof judgeLayout>[]);
    const total = configs.length * o.rounds;
    let done = 0;
    for (let r = 0; r < o.rounds; r++) {
      for (let k = 0; k < configs.length; k++) {
        const i = (k + r) % configs.length;
        const cfg = configs[i];
        // The full page scan costs about a second per GiB: the first round, and any round after a
        // layout came out wrong, scan; the others check the THP counters and smaps only.
        const child = { ...cfg.child, scan: r === 0 || layouts[i].some((l) => !l.ok) };
        if (cfg.op === "exit") base[i].push((await sample(BASELINE)).seconds);
        const s = await sample(child);
        const j = judgeLayout({ op: cfg.op, folio: cfg.folio, bytes: o.bytes }, s.layouts[0]);
        layouts[i].push(j);
        samples[i].push(cfg.op === "exit" ? s.seconds - base[i][base[i].length - 1] : s.seconds);
        o.progress?.(++done, total, `${cfg.op} ${cfg.folio}`);
      }
    }
    const points: HostPoint[] = configs.map((cfg, i) => {
      const st = stats(samples[i]);
      const bad = layouts[i].find((l) => !l.ok);
      const first = layouts[i][0];
      const b = cfg.op === "exit" ? stats(base[i]) : undefined;
      return {
        id: `${cfg.op}-${cfg.folio}`,
        op: cfg.op,
        folio: cfg.folio,
        bytes: o.bytes,
        seconds: st.median,
        min: st.min,
        spread: st.spread,
        rounds: samples[i].length,
        flagged: st.spread > SPREAD_LIMIT,
        layoutOk: bad === undefined,
        layout: (bad ?? first).text,
        pmdShare: first.pmdShare,
        ...(first.dominant !== undefined && cfg.folio === "page-cache"
          ? { observedFolio: first.dominant }
          : {}),
        ...(b !== undefined ? { baseline: { seconds: b.median, spread: b.spread } } : {}),
      };
    });
    return { host: { ...info, thp: readThpSettings() }, points, skipped };
  } finally {
    removeFile();
    o.thp?.restore();
  }
}
