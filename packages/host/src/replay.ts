// `host replay`: builds a scenario's mappings in real child processes (as far as the kernel lets a
// process choose its layout), times the scenario's operation over interleaved rounds, and reports
// what each mapping's layout came out as. Exit is timed as in `measure` (SIGKILL → waitid WNOWAIT,
// minus a baseline child that maps nothing, timed right before in the same round).
import { rmSync } from "node:fs";
import type { ChildConfig, Layout } from "./child.js";
import { onExitPath } from "./cleanup.js";
import { BASELINE, makeFile, type Stats, sample, stats } from "./measure.js";
import { HostError } from "./sys.js";
import type { ThpSettings } from "./thp.js";

export interface ReplayOptions {
  /** What to build and time; file mappings get a file of their size each. */
  readonly config: Omit<ChildConfig, "scan" | "configureThp">;
  readonly rounds: number;
  /** Set the mTHP knobs per mapping while it is faulted in (root); all restored on every exit path. */
  readonly thp?: ThpSettings;
  readonly progress?: (done: number, total: number) => void;
}

export interface ReplayResult {
  /** The operation's seconds over the rounds (exit: exit − baseline). */
  readonly seconds: Stats;
  /** exit only: the baseline child's own exit. */
  readonly baseline: Stats | null;
  /** Each mapping's layout, as the first round (which scans every page) found it. */
  readonly layouts: readonly Layout[];
  readonly rounds: number;
}

export async function replay(o: ReplayOptions): Promise<ReplayResult> {
  if (process.platform !== "linux")
    throw new HostError("HOST_NOT_LINUX", `host replay needs Linux; this is ${process.platform}`);
  if (!Number.isInteger(o.rounds) || o.rounds < 1)
    throw new HostError("HOST_INPUT", `rounds must be a positive integer, got ${o.rounds}`);
  const files: string[] = [];
  const removeFiles = onExitPath(() => {
    for (const f of files) rmSync(f, { force: true });
  });
  o.thp?.guard();
  try {
    const mappings = o.config.mappings.map((m, i) => {
      if (m.kind !== "file-private" && m.kind !== "file-shared") return m;
      const file = makeFile(m.bytes, `-${i}`);
      files.push(file);
      return { ...m, file };
    });
    const exit = o.config.op.kind === "exit";
    const xs: number[] = [];
    const base: number[] = [];
    let layouts: readonly Layout[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const b = exit ? (await sample(BASELINE)).seconds : 0;
      const s = await sample({ ...o.config, mappings, configureThp: o.thp !== undefined, scan: r === 0 });
      if (r === 0) layouts = s.layouts;
      if (exit) base.push(b);
      xs.push(s.seconds - b);
      o.progress?.(r + 1, o.rounds);
    }
    return { seconds: stats(xs), baseline: exit ? stats(base) : null, layouts, rounds: o.rounds };
  } finally {
    removeFiles();
    o.thp?.restore();
  }
}
