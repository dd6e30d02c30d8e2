// `teardown-lab host measure | validate | replay`: the running kernel's measured teardown as a
// calibration table, and the model's held-out predictions against it. Node-only, Linux at run time.
import {
  type HostPoint,
  type HostTable,
  judgeLayout,
  type MappingSpec,
  type ReplayOptions,
  type ReplayResult,
  SPREAD_LIMIT,
  stats,
} from "@mmgather/host";
import type { CostProfile, CostTermName } from "@mmgather/mmu-gather";
import { COST_TERMS } from "@mmgather/teardown";
import {
  type AbsolutePoint,
  type CalibrationTable,
  dot,
  type FitResult,
  fit,
  pointCounters,
  termVector,
  topTerms,
} from "./calibrate.js";
import type { Scenario } from "./scenario.js";
import { formatSize, parseSize } from "./size.js";
import { SpecError } from "./spec.js";

/** The model's scenario for each measured operation (preset, operation, written fraction). */
export const MODEL_OF: Readonly<
  Record<HostPoint["op"], { preset: string; op: "exit" | "munmap" | "dontneed"; dirty?: number }>
> = {
  munmap: { preset: "munmap-1g", op: "munmap" },
  exit: { preset: "munmap-1g", op: "exit" },
  dontneed: { preset: "munmap-1g", op: "dontneed" },
  "fork-munmap": { preset: "fork-shared", op: "munmap" },
  "shmem-munmap": { preset: "shmem-file", op: "munmap", dirty: 1 },
  "file-read-munmap": { preset: "file-private", op: "munmap", dirty: 0 },
  "file-write-munmap": { preset: "file-private", op: "munmap", dirty: 1 },
};

/**
 * The PCPF_FREE_HIGH_BATCH flag zone_pcp_update_cacheinfo (v6.7+) sets when the CPU's share of its
 * last-level cache is more than 3 × the pcp batch (in pages): frees then drain in larger batches.
 */
export function freeHighBatch(llcPerCpu: number | null, batch: number | null): boolean {
  return llcPerCpu !== null && batch !== null && llcPerCpu / 4096 > 3 * batch;
}

/** A measured host table as a calibration table (absolute seconds; the running design is encoded-nr-pages). */
export function toCalibrationTable(t: HostTable, thpConfigured: boolean): CalibrationTable {
  const points: AbsolutePoint[] = t.points.map((p) => {
    const m = MODEL_OF[p.op];
    // A file mapping's folios are the page cache's (readahead chooses): the model runs the size most
    // pages were in, PMD-mapped when most bytes were (written pages are order-0 private copies).
    const read = p.op === "file-read-munmap";
    const folio =
      p.folio === "page-cache"
        ? read
          ? (p.observedFolio ?? "4K")
          : "4K"
        : p.folio === "2M-pmd"
          ? "2M"
          : p.folio;
    const pmd = p.folio === "2M-pmd" || (read && folio === "2M" && p.pmdShare > 0.5);
    return {
      id: p.id,
      preset: m.preset,
      folio,
      ...(pmd ? { pmd: true } : {}),
      op: m.op,
      size: formatSize(p.bytes),
      ...(m.dirty !== undefined ? { dirty: m.dirty } : {}),
      variant: "encoded-nr-pages",
      // An exit no slower than the baseline child's is no measurement: kept positive for the table
      // format, and flagged.
      seconds: Math.max(p.seconds, 1e-9),
      min: p.min,
      spread: Math.round(p.spread * 1000) / 1000,
      rounds: p.rounds,
      flagged: p.flagged || p.seconds <= 0,
      layoutOk: p.layoutOk,
      layout: p.layout,
      hostOp: p.op,
      ...(p.baseline !== undefined
        ? { baseline: { seconds: p.baseline.seconds, spread: Math.round(p.baseline.spread * 1000) / 1000 } }
        : {}),
    };
  });
  const h = t.host;
  const high = freeHighBatch(h.llcPerCpu, h.pcpBatch);
  return {
    profile: `host-${h.kernel}`,
    machine: `${h.cpu}, ${h.cores} CPUs`,
    source: `teardown-lab host measure on this machine. ${h.method}`,
    kind: "absolute",
    priors: "default-priors",
    // The folio sizes separate per-page from per-folio work, and the PMD-mapped points (no PTEs, one
    // 2M folio freed per PMD) page-level freeing (free_pages_prepare over every tail page) from the
    // per-folio release; one operation at one batch size cannot tell zoneLock from folioFree.
    free: ["atomic", "pageMapcount", "folioFree", "pageFree"],
    ridge: 0,
    kernel:
      `Linux ${h.kernel} (running): v6.7+ pcp free side; PCPF_FREE_HIGH_BATCH ${high ? "set" : "clear"}: ` +
      `${h.llcPerCpu === null ? "LLC unknown" : `${Math.round(h.llcPerCpu / 1024)} KiB of LLC per CPU`}, ` +
      `pcp batch ${h.pcpBatch ?? "unknown"} (zone_pcp_update_cacheinfo).`,
    pcpPolicy: "v6.7",
    pcpFreeHighBatch: high,
    host: {
      kernel: h.kernel,
      cpu: h.cpu,
      cores: h.cores,
      thp: h.thp,
      thpConfigured,
      method: h.method,
      skipped: t.skipped,
    },
    points,
  };
}

const ns = (s: number) => `${(s * 1e3).toFixed(2)} ms`;

/** The measured table as text: one line per point, per-page cost, spread, flags. */
export function formatMeasured(t: CalibrationTable): string {
  if (t.kind !== "absolute") return "";
  const lines = [
    `${t.machine}; kernel ${t.host?.kernel ?? "?"}; ${t.points[0]?.rounds ?? 0} rounds per point, interleaved.`,
    "point                      median      min  ns/page  spread  notes",
  ];
  for (const p of t.points) {
    const pages = (parseSize(p.size ?? "") ?? 0) / 4096;
    const notes = [
      p.baseline !== undefined
        ? `minus a baseline exit of ${ns(p.baseline.seconds)} (spread ${(100 * p.baseline.spread).toFixed(0)} %)`
        : "",
      p.flagged ? "SPREAD > 20 %: imprecise" : "",
      p.layoutOk === false ? `LAYOUT NOT AS ASKED: ${p.layout}` : "",
    ]
      .filter((x) => x !== "")
      .join("; ");
    lines.push(
      `${p.id.padEnd(24)} ${ns(p.seconds).padStart(9)} ${ns(p.min ?? p.seconds).padStart(9)} ${((p.seconds * 1e9) / Math.max(1, pages)).toFixed(1).padStart(7)}  ${`${((p.spread ?? 0) * 100).toFixed(0)} %`.padStart(6)}  ${notes}`,
    );
  }
  for (const s of t.host?.skipped ?? []) lines.push(`not measured: ${s}`);
  const flagged = t.points.filter((p) => p.flagged).length;
  if (flagged > 0)
    lines.push(
      `${flagged} point(s) spread more than 20 % between rounds: this host is noisy; more --rounds narrow the median, not the spread.`,
    );
  return lines.join("\n");
}

/** One held-out point of `host validate`. */
export interface ValidateRow {
  readonly id: string;
  readonly predictedMs: number;
  readonly measuredMs: number;
  /** (predicted − measured) / measured, %. */
  readonly error: number;
  readonly heldOut: boolean;
  readonly flagged: boolean;
  /** Why the point is off (its largest terms), or what the model lacks; "" within 30 %. */
  readonly why: string;
}

export interface ValidateResult {
  readonly fit: FitResult;
  readonly rows: readonly ValidateRow[];
  /** Median |error| of the held-out points, %. */
  readonly medianHeldOut: number;
  readonly worstHeldOut: number;
  /** Points left out because the kernel did not build the asked layout. */
  readonly excluded: readonly string[];
}

/**
 * The share of a prediction carried by terms no munmap point exercises: the fit never weighed them,
 * so their priors stand unchecked on this machine.
 */
function unseenShareOf(
  v: Readonly<Record<CostTermName, number>>,
  p: CostProfile,
  total: number,
  exercised: ReadonlySet<string>,
): string {
  const unseen = COST_TERMS.filter((t) => v[t.name] !== 0 && !exercised.has(t.name));
  const ns = unseen.reduce((a, t) => a + v[t.name] * p[t.name], 0);
  if (ns < 0.1 * total) return "";
  return `${((100 * ns) / total).toFixed(0)}% of it is work no munmap point has (${unseen.map((t) => t.name).join(", ")}): their priors are unchecked here`;
}

/** What the kernel does on a held-out operation that the model does not count (printed on a miss). */
const MISSING: Readonly<Record<string, string>> = {
  exit:
    "measured as the child's exit minus a baseline child's exit: whatever else the kernel does at exit " +
    "(other VMAs, files, task state) is cancelled only as far as the two children are alike",
  "file-read-munmap":
    "the page cache's folio sizes come from readahead, not from a THP knob: the model maps only the size " +
    "most pages were in",
};

/** Fits the munmap points only, then predicts every point (held-out: all but the munmap points). */
export function validateHost(table: CalibrationTable): ValidateResult {
  if (table.kind !== "absolute") throw new Error("host validate needs an absolute (measured) table");
  const usable = table.points.filter((p) => p.layoutOk !== false);
  const excluded = table.points.filter((p) => p.layoutOk === false).map((p) => p.id);
  const train = usable.filter((p) => (p.hostOp ?? p.op) === "munmap");
  const r = fit({ ...table, points: train });
  // Terms a munmap point exercises: the free ones are fitted, the others at least weighed by the fit.
  const seen = new Set<string>(table.free.filter((f) => !r.undetermined.some((u) => u.term === f)));
  const exercised = new Set<string>();
  for (const p of train) {
    const v = termVector(pointCounters(p, p.variant, table), "all");
    for (const t of COST_TERMS) if (v[t.name] !== 0) exercised.add(t.name);
  }
  const rows: ValidateRow[] = usable.map((p) => {
    const v = termVector(pointCounters(p, p.variant, table), "all");
    const pred = dot(v, r.profile);
    const meas = p.seconds * 1e9;
    const error = (100 * (pred - meas)) / meas;
    const heldOut = (p.hostOp ?? p.op) !== "munmap";
    const miss = Math.abs(error) > 30;
    return {
      id: p.id,
      predictedMs: pred / 1e6,
      measuredMs: meas / 1e6,
      error,
      heldOut,
      flagged: p.flagged === true,
      why: miss
        ? [
            `largest terms: ${topTerms(v, r.profile, pred, 3, seen)}`,
            unseenShareOf(v, r.profile, pred, exercised),
            MISSING[p.hostOp ?? ""] ?? "",
          ]
            .filter((x) => x)
            .join("; ")
        : "",
    };
  });
  const held = rows.filter((x) => x.heldOut).map((x) => Math.abs(x.error));
  const st = held.length === 0 ? null : stats(held);
  return {
    fit: r,
    rows,
    medianHeldOut: st?.median ?? Number.NaN,
    worstHeldOut: st?.max ?? Number.NaN,
    excluded,
  };
}

export function formatValidate(v: ValidateResult): string {
  const lines = [
    `Fitted on ${v.rows.filter((r) => !r.heldOut).length} munmap points: ` +
      Object.entries(v.fit.fitted)
        .map(([k, x]) => `${k} ${x.fitted.toFixed(2)} ns (prior ${x.prior.toFixed(2)})`)
        .join(", "),
    v.fit.undetermined.length > 0
      ? `Not determined by the munmap points: ${v.fit.undetermined.map((u) => `${u.term} (${u.why})`).join("; ")}`
      : "",
    "",
    "point                      used for   predicted   measured    error",
  ].filter((x, i) => i !== 1 || x !== "");
  for (const r of v.rows) {
    lines.push(
      `${r.id.padEnd(24)}   ${(r.heldOut ? "held out" : "fit").padEnd(8)} ${r.predictedMs.toFixed(2).padStart(8)} ms ${r.measuredMs.toFixed(2).padStart(8)} ms ${`${r.error >= 0 ? "+" : ""}${r.error.toFixed(1)} %`.padStart(8)}${r.flagged ? "  (spread > 20 %)" : ""}${r.why !== "" ? `  MISS: ${r.why}` : ""}`,
    );
  }
  for (const id of v.excluded)
    lines.push(`${id.padEnd(24)}   left out: the kernel did not build the layout asked for`);
  lines.push(
    "",
    `Held-out error: median ${v.medianHeldOut.toFixed(1)} %, worst ${v.worstHeldOut.toFixed(1)} % ` +
      "(goal: median ≤ 15 %, every point ≤ 30 %).",
  );
  return lines.join("\n");
}

/** A scenario as a replay: the child configuration, and everything the replay cannot reproduce. */
export function replayOf(s: Scenario): {
  config: ReplayOptions["config"];
  expect: { folio: string; present: number }[];
  notes: string[];
} {
  const notes: string[] = [];
  const expect: { folio: string; present: number }[] = [];
  const mappings: MappingSpec[] = s.vmas.map((v, i) => {
    const name = v.name ?? `vmas[${i}]`;
    if (v.kind === "pfnmap")
      throw new SpecError(
        `${name}: a pfnmap VMA maps a driver's device memory (remap_pfn_range): the host replay has no such device`,
      );
    let bytes = v.folio as number | Record<string, number>;
    if (typeof bytes !== "number") {
      // A mix: the replay asks for the size that covers most memory (weight × size).
      const [best] = Object.entries(bytes).sort(
        (a, b) => b[1] * parseSize(b[0])! - a[1] * parseSize(a[0])!,
      )[0];
      notes.push(
        `${name}: folio mix ${Object.keys(bytes).join(" + ")}: the kernel takes one mTHP size at a time, replayed as ${best}`,
      );
      bytes = parseSize(best)!;
    }
    const kb = (bytes as number) / 1024;
    const file = v.kind === "file-private" || v.kind === "file-shared";
    if (file && kb > 4)
      notes.push(
        `${name}: a file's folio sizes are the page cache's (readahead), not ${formatSize(kb * 1024)}`,
      );
    if (v.swap > 0)
      notes.push(
        `${name}: ${Math.round(v.swap * 100)} % swapped out: not reproduced (those pages stay absent, as if never touched)`,
      );
    if (v.keepInSwapCache) notes.push(`${name}: swap-cache residency not reproduced`);
    if (v.splitAt !== undefined)
      notes.push(`${name}: the split at ${formatSize(v.splitAt)} is not reproduced (one VMA)`);
    const pmd = v.pmd && kb === 2048;
    // The child faults in a prefix of whole folios (see MappingSpec.populate).
    const unit = Math.max(kb * 1024, 4096);
    const populate = v.populate * (1 - v.swap);
    expect.push({
      folio: file ? "page-cache" : pmd ? "2M-pmd" : formatSize(kb * 1024),
      present: (Math.floor((v.size * populate) / unit) * unit) / 4096,
    });
    return {
      kind: v.kind,
      bytes: v.size,
      folioKb: kb,
      pmd,
      populate,
      dirty: v.dirty,
      mlock: v.mlock,
    };
  });
  if (s.cpus > 0)
    notes.push(`cpus ${s.cpus}: no threads are started on other CPUs (no TLB shootdown to them)`);
  if (s.exitedChildren > 0)
    notes.push(`${s.exitedChildren} exited children: their anon_vma chains are not reproduced`);
  if (s.target === "child")
    notes.push('target "child": the replay times the parent, the forked child only shares');
  if (s.concurrentOp !== undefined) notes.push("the concurrent operation is not replayed");
  if (s.touch < 1) notes.push(`touch ${s.touch}: every mapped page is replayed as touched`);
  let op: ReplayOptions["config"]["op"] = { kind: "exit", index: 0, offset: 0, length: 0 };
  if (s.op.kind !== "exit") {
    const index = typeof s.op.vma === "number" ? s.op.vma : s.vmas.findIndex((v) => v.name === s.op.vma);
    const length = s.op.length ?? s.vmas[index].size - s.op.offset;
    op = { kind: s.op.kind, index, offset: s.op.offset, length };
  }
  return { config: { mappings, op, fork: s.fork }, expect, notes };
}

/** `host replay`'s report: measured next to each design's prediction. */
export function formatReplay(
  s: Scenario,
  r: ReplayResult,
  expect: readonly { folio: string; present: number }[],
  predicted: readonly { variant: string; ms: number }[],
  profile: string,
  notes: readonly string[],
): string {
  const ms = (x: number) => `${(x * 1e3).toFixed(2)} ms`;
  const lines = [`Replay of ${s.name}: ${s.op.kind}, ${r.rounds} rounds on this kernel.`, ""];
  s.vmas.forEach((v, i) => {
    const l = r.layouts[i];
    const j =
      l === undefined
        ? null
        : judgeLayout({ op: "munmap", folio: expect[i].folio, bytes: v.size, present: expect[i].present }, l);
    lines.push(
      `${(v.name ?? `vmas[${i}]`).padEnd(20)} ${v.kind.padEnd(12)} ${formatSize(v.size).padStart(6)}  asked ${expect[i].folio.padEnd(10)} ${j === null ? "" : `${j.ok ? "as asked" : "NOT AS ASKED"}: ${j.text}`}`,
    );
  });
  const enp = predicted.find((p) => p.variant === "encoded-nr-pages");
  const err = enp === undefined ? Number.NaN : (100 * (enp.ms / 1e3 - r.seconds.median)) / r.seconds.median;
  lines.push(
    "",
    `measured: median ${ms(r.seconds.median)}, min ${ms(r.seconds.min)}, spread ${(100 * r.seconds.spread).toFixed(0)} %` +
      (r.seconds.spread > SPREAD_LIMIT ? " (over 20 %: imprecise)" : "") +
      (r.baseline !== null
        ? `; exit minus a baseline child's exit (${ms(r.baseline.median)}, spread ${(100 * r.baseline.spread).toFixed(0)} %)`
        : ""),
    `predicted (profile ${profile}): ${predicted.map((p) => `${p.variant} ${p.ms.toFixed(2)} ms`).join(", ")}`,
    `the running kernel's design is encoded-nr-pages (Linux 6.9+): prediction ${err >= 0 ? "+" : ""}${err.toFixed(1)} % from the measurement`,
  );
  if (notes.length > 0) lines.push("", "not reproduced:", ...notes.map((n) => `  - ${n}`));
  return lines.join("\n");
}
