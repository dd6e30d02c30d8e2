// `teardown-lab calibrate` and `teardown-lab fidelity`: fit a cost profile to published kernel
// measurements by non-negative least squares, and compare every published point with the model's
// prediction. Node-only (reads apps/teardown-lab/calibration/*.json).
//
// Procedure (documented in the README):
//  - Each measurement point names a preset, a folio size and a variant; the model runs it (generic
//    adapter) and its teardown counters c_i are flattened. A prediction is c_i · θ (ns), θ the profile.
//  - Most costs are held at the documented priors of the table's `priors` profile; only the few
//    `free` terms are fitted, and never as many as there are points (k < N, k ≤ 6).
//  - absolute tables (seconds): minimise Σ_i ((c_i·θ − y_i) / y_i)², i.e. relative residuals.
//  - relative tables (published change r_i from variant A to B over a counter subset S_i): the change
//    is linearised as c_B·θ − (1 + r_i) c_A·θ = 0, each row divided by c_A·θ_prior so its residual is
//    ≈ the error of the change as a fraction.
//  - ridge λ ≥ 0 adds rows √λ (θ_j / prior_j − 1) pulling each free term toward its prior.
//  - θ_free ≥ 0: exact NNLS, solving least squares on every subset of the free terms (2^k normal
//    equations) and keeping the best non-negative solution. Fitted values are rounded to 0.01 ns.
import { readFileSync } from "node:fs";
import type { PcpPolicy } from "@mmgather/folio";
import type { CostProfile, CostTermName } from "@mmgather/mmu-gather";
import { COST_TERMS } from "@mmgather/teardown";
import { CalibrationFileError } from "./calibration-files.js";
import { PRESETS } from "./presets.js";
import { PROFILES } from "./profiles.js";
import { runOne } from "./run.js";
import { validateScenario } from "./scenario.js";
import type { ArchName, VariantName } from "./spec.js";

/** What the model runs for a point: a preset and the overrides of its main VMA and operation. */
export interface PointSpec {
  readonly preset: string;
  readonly folio: string;
  /** PMD-mapped when the folio is PMD-sized (default false). */
  readonly pmd?: boolean;
  /** The operation (default: the preset's). */
  readonly op?: "exit" | "munmap" | "dontneed";
  /** Size of the main VMA (default: the preset's). */
  readonly size?: string;
  /** Fraction of the main VMA's pages written (file and shmem presets; default: the preset's). */
  readonly dirty?: number;
}

/** A point of an absolute table: seconds measured for one run. */
export interface AbsolutePoint extends PointSpec {
  readonly id: string;
  readonly variant: VariantName;
  /** Seconds (a measured table: the median of its rounds). */
  readonly seconds: number;
  /** A measured table (`host measure`): fastest round, spread (max − min) / median, rounds. */
  readonly min?: number;
  readonly spread?: number;
  readonly rounds?: number;
  /** Spread above 20 %: the point is less precise than the others. */
  readonly flagged?: boolean;
  /** False when the kernel did not give the layout asked for; such a point is left out of fits. */
  readonly layoutOk?: boolean;
  /** What the layout came out as (folio mix, PMD-mapped bytes). */
  readonly layout?: string;
  /** The operation measured on the host (munmap, exit, fork-munmap …), for display. */
  readonly hostOp?: string;
  /** exit on the host: the baseline child's exit (subtracted), median seconds and spread — the method's error. */
  readonly baseline?: { readonly seconds: number; readonly spread: number };
}

/** A point of a relative table: change of a counter subset's cost from one variant to another. */
export interface RelativePoint {
  readonly id: string;
  readonly label: string;
  readonly preset: string;
  readonly folio: string;
  readonly from: VariantName;
  readonly to: VariantName;
  /** "all": the whole estimate; otherwise the counters whose cost is summed (each at its term's cost). */
  readonly counters: "all" | readonly string[];
  readonly change: number;
}

/** One measurement table (a calibration/*.json file). */
export type CalibrationTable = {
  readonly profile: string;
  readonly machine: string;
  readonly source: string;
  readonly priors: string;
  readonly free: readonly CostTermName[];
  readonly ridge: number;
  /**
   * Page-allocator free-side rules of the kernel the table was measured on (default "v6.5"), and
   * its PCPF_FREE_HIGH_BATCH (v6.7 policy; default false): every point of the table runs on a machine
   * with these (`ScenarioSpec.pcpPolicy` / `pcpFreeHighBatch`).
   */
  readonly pcpPolicy?: PcpPolicy;
  readonly pcpFreeHighBatch?: boolean;
  /** Which kernel that is and why (documentation only). */
  readonly kernel?: string;
  /** A measured table: the host it was measured on (`host measure`). */
  readonly host?: {
    readonly kernel: string;
    readonly cpu: string;
    readonly cores: number;
    readonly thp: Readonly<Record<string, string>>;
    readonly thpConfigured: boolean;
    readonly method: string;
    readonly skipped: readonly string[];
  };
} & (
  | { readonly kind: "absolute"; readonly points: readonly AbsolutePoint[] }
  | { readonly kind: "relative"; readonly points: readonly RelativePoint[] }
);

export const CALIBRATION_TABLES = ["x86-64-4210r", "arm64-altra"] as const;

/** Reads calibration/<name>.json next to dist/. */
export function loadTable(name: string): CalibrationTable {
  const url = new URL(`../calibration/${name}.json`, import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")) as CalibrationTable;
}

const TERM_OF = new Map<string, CostTermName>();
for (const t of COST_TERMS) for (const c of t.counters) TERM_OF.set(c, t.name);

type Counters = Readonly<Record<string, number>>;
const cache = new Map<string, Counters>();

/** The machine's kernel a table was measured on (see `CalibrationTable.pcpPolicy`). */
export interface TableKernel {
  readonly pcpPolicy?: PcpPolicy;
  readonly pcpFreeHighBatch?: boolean;
}

/** Teardown counters of a point's run (on `arch`, generic by default) on the table's kernel, memoised per process. */
export function pointCounters(
  pt: PointSpec,
  variant: VariantName,
  kernel: TableKernel = {},
  arch: ArchName = "generic",
): Counters {
  const pcpPolicy = kernel.pcpPolicy ?? "v6.5";
  const pcpFreeHighBatch = kernel.pcpFreeHighBatch ?? false;
  const key = JSON.stringify([
    pt.preset,
    pt.folio,
    pt.pmd,
    pt.op,
    pt.size,
    pt.dirty,
    variant,
    pcpPolicy,
    pcpFreeHighBatch,
    arch,
  ]);
  let c = cache.get(key);
  if (c === undefined) {
    const p = Object.hasOwn(PRESETS, pt.preset) ? PRESETS[pt.preset] : undefined;
    if (p === undefined) throw new Error(`calibration point uses unknown preset ${pt.preset}`);
    const s = validateScenario(
      p.build({ folio: pt.folio, pmd: pt.pmd, op: pt.op, size: pt.size, dirty: pt.dirty }),
      `preset ${pt.preset}`,
    );
    c = runOne(s, variant, arch, { override: { pcpPolicy, pcpFreeHighBatch } }).result.counters;
    cache.set(key, c);
  }
  return c;
}

/** Count vector of a counter subset, per term (counters of the subset only). */
export function termVector(c: Counters, subset: "all" | readonly string[]): Record<CostTermName, number> {
  const v = {} as Record<CostTermName, number>;
  for (const t of COST_TERMS) v[t.name] = 0;
  const names = subset === "all" ? COST_TERMS.flatMap((t) => t.counters) : subset;
  for (const n of names) {
    const term = TERM_OF.get(n);
    if (term === undefined) throw new Error(`counter ${n} is not part of any cost term`);
    v[term] += c[n] ?? 0;
  }
  return v;
}

/** Σ count × cost of a term vector, ns. */
export function dot(v: Readonly<Record<CostTermName, number>>, p: CostProfile): number {
  let s = 0;
  for (const t of COST_TERMS) s += v[t.name] * p[t.name];
  return s;
}

/** Least squares min ‖A x − b‖ subject to x ≥ 0, exactly, for a few columns. */
export function nnls(A: readonly number[][], b: readonly number[]): number[] {
  const k = A[0]?.length ?? 0;
  let best: number[] = new Array(k).fill(0);
  let bestErr = residual(A, b, best);
  for (let mask = 1; mask < 1 << k; mask++) {
    const cols: number[] = [];
    for (let j = 0; j < k; j++) if ((mask >> j) & 1) cols.push(j);
    const x = solveLs(A, b, cols);
    if (x === null || x.some((v) => v < 0)) continue;
    const full = new Array(k).fill(0);
    cols.forEach((j, i) => {
      full[j] = x[i];
    });
    const err = residual(A, b, full);
    if (err < bestErr) {
      bestErr = err;
      best = full;
    }
  }
  return best;
}

function residual(A: readonly number[][], b: readonly number[], x: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < A.length; i++) {
    let r = -b[i];
    for (let j = 0; j < x.length; j++) r += A[i][j] * x[j];
    s += r * r;
  }
  return s;
}

/** Normal equations on columns `cols`, Gaussian elimination with partial pivoting; null if singular. */
function solveLs(A: readonly number[][], b: readonly number[], cols: readonly number[]): number[] | null {
  const n = cols.length;
  const M = Array.from({ length: n }, () => new Array(n + 1).fill(0));
  for (const [i, row] of A.entries()) {
    for (let p = 0; p < n; p++) {
      for (let q = 0; q < n; q++) M[p][q] += row[cols[p]] * row[cols[q]];
      M[p][n] += row[cols[p]] * b[i];
    }
  }
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[piv][c])) piv = r;
    if (Math.abs(M[piv][c]) < 1e-12) return null;
    [M[c], M[piv]] = [M[piv], M[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r][c] / M[c][c];
      for (let q = c; q <= n; q++) M[r][q] -= f * M[c][q];
    }
  }
  return M.map((row, i) => row[n] / row[i]);
}

/** The result of a fit. */
export interface FitResult {
  readonly table: CalibrationTable;
  readonly prior: CostProfile;
  readonly profile: CostProfile;
  readonly fitted: Readonly<Record<string, { prior: number; fitted: number }>>;
  /** Root mean square of the fit's residuals (relative, or in change fractions). */
  readonly rms: number;
  /**
   * Free terms the table cannot determine, with why: no point exercises the term (its column is zero),
   * or its column is a combination of the terms before it (the points cannot tell them apart). Their
   * fitted values are whatever NNLS chose; hold them at a prior or add points that separate them.
   */
  readonly undetermined: readonly { readonly term: string; readonly why: string }[];
}

/** Free-term columns of the design matrix that carry no information of their own (Gram–Schmidt). */
function undeterminedTerms(free: readonly string[], A: readonly number[][]): { term: string; why: string }[] {
  const out: { term: string; why: string }[] = [];
  const basis: number[][] = [];
  free.forEach((term, j) => {
    const col = A.map((row) => row[j]);
    const norm = Math.hypot(...col);
    if (norm === 0) {
      out.push({ term, why: "no point of the table exercises it" });
      return;
    }
    const r = col.slice();
    for (const q of basis) {
      const d = r.reduce((a, v, i) => a + v * q[i], 0);
      for (let i = 0; i < r.length; i++) r[i] -= d * q[i];
    }
    const rn = Math.hypot(...r);
    if (rn < 1e-6 * norm) {
      out.push({ term, why: `the points cannot tell it from ${free.slice(0, j).join(", ")}` });
      return;
    }
    basis.push(r.map((v) => v / rn));
  });
  return out;
}

/** Fits the free terms of `table` (see the procedure at the top of this file). */
export function fit(table: CalibrationTable): FitResult {
  const prior = PROFILES[table.priors];
  if (prior === undefined) throw new Error(`${table.profile}: unknown prior profile ${table.priors}`);
  const free = table.free;
  if (free.length === 0 || free.length > 6 || free.length >= table.points.length)
    throw new CalibrationFileError(
      `${table.profile}: ${free.length} free terms for ${table.points.length} points (need 1 ≤ k ≤ 6 and k < N)`,
    );
  const A: number[][] = [];
  const b: number[] = [];
  if (table.kind === "absolute") {
    for (const pt of table.points) {
      if (pt.layoutOk === false) continue; // the kernel did not build what the model runs
      const v = termVector(pointCounters(pt, pt.variant, table), "all");
      const y = pt.seconds * 1e9;
      const fixed = dot(v, { ...prior, ...Object.fromEntries(free.map((f) => [f, 0])) });
      A.push(free.map((f) => v[f] / y));
      b.push((y - fixed) / y);
    }
  } else {
    for (const pt of table.points) {
      const va = termVector(pointCounters(pt, pt.from, table), pt.counters);
      const vb = termVector(pointCounters(pt, pt.to, table), pt.counters);
      const norm = dot(va, prior);
      const d = {} as Record<CostTermName, number>;
      for (const t of COST_TERMS) d[t.name] = (vb[t.name] - (1 + pt.change) * va[t.name]) / norm;
      const fixed = dot(d, { ...prior, ...Object.fromEntries(free.map((f) => [f, 0])) });
      A.push(free.map((f) => d[f]));
      b.push(-fixed);
    }
  }
  const dataRows = A.length;
  if (dataRows <= free.length)
    throw new CalibrationFileError(
      `${table.profile}: ${dataRows} usable points (layout as asked) for ${free.length} free terms (need more points than terms)`,
    );
  const undetermined = undeterminedTerms(free, A);
  free.forEach((f, j) => {
    if (table.ridge > 0) {
      A.push(free.map((_, q) => (q === j ? Math.sqrt(table.ridge) / prior[f] : 0)));
      b.push(Math.sqrt(table.ridge));
    }
  });
  const x = nnls(A, b).map((v) => Math.round(v * 100) / 100);
  const profile = {
    ...prior,
    name: table.profile,
    source: `${prior.name} priors; ${free.join(", ")} fitted: teardown-lab calibrate ${table.profile}`,
  } as Record<string, number | string>;
  const fitted: Record<string, { prior: number; fitted: number }> = {};
  free.forEach((f, j) => {
    profile[f] = x[j];
    fitted[f] = { prior: prior[f], fitted: x[j] };
  });
  const ratios = designRatios(table, profile as unknown as CostProfile);
  // No design-to-design pair in the table: the fit says nothing about ratios; keep the priors' bound.
  profile.ratioError =
    ratios.length === 0 ? prior.ratioError : Math.ceil(100 * Math.max(...ratios.map((r) => r.error))) / 100;
  const rows = dataRows;
  let ss = 0;
  for (let i = 0; i < rows; i++) {
    let r = -b[i];
    for (let j = 0; j < x.length; j++) r += A[i][j] * x[j];
    ss += r * r;
  }
  return {
    table,
    prior,
    profile: profile as unknown as CostProfile,
    fitted,
    rms: Math.sqrt(ss / rows),
    undetermined,
  };
}

/** One published design-to-design ratio of a table against the model's. */
export interface DesignRatio {
  /** The two points (absolute table) or the point (relative table). */
  readonly id: string;
  /** Published time ratio (second design / first). */
  readonly published: number;
  /** The model's ratio under the profile. */
  readonly predicted: number;
  /** max(predicted / published, published / predicted) − 1: how far off, as a fraction. */
  readonly error: number;
}

/**
 * The published ratios between two designs on one workload: an absolute table's points that differ
 * only in their variant (every pair), a relative table's whole-operation changes (`counters: "all"`;
 * a change over a counter subset is not a ratio of two teardowns). `CostProfile.ratioError` is the
 * largest error among them.
 */
export function designRatios(table: CalibrationTable, profile: CostProfile): DesignRatio[] {
  const out: DesignRatio[] = [];
  const push = (id: string, published: number, predicted: number) => {
    if (!(published > 0 && predicted > 0)) return;
    out.push({ id, published, predicted, error: Math.max(predicted / published, published / predicted) - 1 });
  };
  if (table.kind === "absolute") {
    const usable = table.points.filter((pt) => pt.layoutOk !== false);
    const workload = (pt: AbsolutePoint) =>
      JSON.stringify([pt.preset, pt.folio, pt.pmd, pt.op, pt.size, pt.dirty, pt.hostOp]);
    for (let i = 0; i < usable.length; i++)
      for (let j = i + 1; j < usable.length; j++) {
        const a = usable[i];
        const b = usable[j];
        if (a.variant === b.variant || workload(a) !== workload(b)) continue;
        const pa = dot(termVector(pointCounters(a, a.variant, table), "all"), profile);
        const pb = dot(termVector(pointCounters(b, b.variant, table), "all"), profile);
        push(`${b.id} / ${a.id}`, b.seconds / a.seconds, pb / pa);
      }
  } else {
    for (const pt of table.points) {
      if (pt.counters !== "all") continue;
      const a = dot(termVector(pointCounters(pt, pt.from, table), "all"), profile);
      const b = dot(termVector(pointCounters(pt, pt.to, table), "all"), profile);
      push(pt.id, 1 + pt.change, a === 0 ? 0 : b / a);
    }
  }
  return out;
}

/** One line of the fidelity table. */
export interface FidelityRow {
  readonly table: string;
  /** The arch adapter the model ran the point on. */
  readonly arch: string;
  readonly id: string;
  /** "time" (ms), "ratio" (to the same variant at 4K) or "change" (relative change, %). */
  readonly kind: "time" | "ratio" | "change";
  readonly predicted: number;
  readonly published: number;
  /** time / ratio: relative error in %; change: difference in percentage points. */
  readonly error: number;
  readonly target: string;
  readonly pass: boolean;
  /** For a miss: the terms that dominate the prediction (time), its change (ratio, change). */
  readonly responsible: string;
}

/**
 * The `n` terms that carry most of `total` (largest |ns| first), as "name N%"; with `fitted`, a term
 * outside it is marked "(prior)" (the fit never set it).
 */
export function topTerms(
  v: Readonly<Record<CostTermName, number>>,
  p: CostProfile,
  total: number,
  n = 3,
  fitted?: ReadonlySet<string>,
): string {
  return COST_TERMS.map((t) => ({ name: t.name, ns: v[t.name] * p[t.name] }))
    .filter((t) => t.ns !== 0)
    .sort((a, b) => Math.abs(b.ns) - Math.abs(a.ns))
    .slice(0, n)
    .map(
      (t) =>
        `${t.name} ${((100 * t.ns) / total).toFixed(0)}%${fitted === undefined || fitted.has(t.name) ? "" : " (prior)"}`,
    )
    .join(", ");
}

function diff(a: Record<CostTermName, number>, b: Record<CostTermName, number>, ka = 1, kb = 1) {
  const d = {} as Record<CostTermName, number>;
  for (const t of COST_TERMS) d[t.name] = kb * b[t.name] - ka * a[t.name];
  return d;
}

/** Every published point of a table against the prediction under `profile`. */
export function fidelity(
  table: CalibrationTable,
  profile: CostProfile,
  arch: ArchName = "generic",
): FidelityRow[] {
  const rows: FidelityRow[] = [];
  if (table.kind === "absolute") {
    const base = new Map<string, { v: Record<CostTermName, number>; pred: number; pub: number }>();
    // A ratio compares a point with the 4K point of the same variant, preset, operation and size.
    const family = (pt: AbsolutePoint) =>
      JSON.stringify([pt.variant, pt.preset, pt.op, pt.size, pt.dirty, pt.hostOp]);
    for (const pt of table.points) {
      const v = termVector(pointCounters(pt, pt.variant, table, arch), "all");
      const pred = dot(v, profile);
      const pub = pt.seconds * 1e9;
      if (pt.folio === "4K") base.set(family(pt), { v, pred, pub });
      const err = (100 * (pred - pub)) / pub;
      const pass = Math.abs(err) <= 10;
      rows.push({
        table: table.profile,
        arch,
        id: pt.id,
        kind: "time",
        predicted: pred / 1e6,
        published: pub / 1e6,
        error: err,
        target: "±10%",
        pass,
        responsible: pass ? "" : `largest terms: ${topTerms(v, profile, pred)}`,
      });
    }
    for (const pt of table.points) {
      const b = base.get(family(pt));
      if (b === undefined || pt.folio === "4K") continue;
      const v = termVector(pointCounters(pt, pt.variant, table, arch), "all");
      const pred = dot(v, profile) / b.pred;
      const pub = (pt.seconds * 1e9) / b.pub;
      const err = (100 * (pred - pub)) / pub;
      const pass = Math.abs(err) <= 10;
      // The ratio moves with the terms that change most between 4K and this folio size.
      const d = diff(b.v, v, 1 / b.pred, 1 / (b.pred * pred));
      rows.push({
        table: table.profile,
        arch,
        id: `${pt.id} / 4K`,
        kind: "ratio",
        predicted: pred,
        published: pub,
        error: err,
        target: "±10%",
        pass,
        responsible: pass ? "" : `terms whose share changes most vs 4K: ${topTerms(d, profile, 1)}`,
      });
    }
  } else {
    for (const pt of table.points) {
      const va = termVector(pointCounters(pt, pt.from, table, arch), pt.counters);
      const vb = termVector(pointCounters(pt, pt.to, table, arch), pt.counters);
      const a = dot(va, profile);
      const pred = a === 0 ? 0 : (dot(vb, profile) - a) / a;
      const err = 100 * (pred - pt.change);
      const pass = a !== 0 && Math.abs(err) <= 5 && Math.sign(pred) === Math.sign(pt.change);
      rows.push({
        table: table.profile,
        arch,
        id: pt.id,
        kind: "change",
        predicted: 100 * pred,
        published: 100 * pt.change,
        error: err,
        target: "±5 pp, same sign",
        pass,
        responsible: pass
          ? ""
          : a === 0
            ? "the model counts none of this work in the baseline"
            : `terms of the change (Δ ns / baseline): ${topTerms(diff(va, vb), profile, a)}`,
      });
    }
  }
  return rows;
}

/** The fidelity table as text. */
export function formatFidelity(rows: readonly FidelityRow[]): string {
  const head = ["table", "arch", "point", "kind", "predicted", "published", "error", "target", "verdict"];
  const cells = rows.map((r) => {
    const unit = r.kind === "time" ? " ms" : r.kind === "change" ? " %" : "";
    const digits = r.kind === "ratio" ? 3 : 2;
    return [
      r.table,
      r.arch,
      r.id,
      r.kind,
      `${r.predicted.toFixed(digits)}${unit}`,
      `${r.published.toFixed(digits)}${unit}`,
      `${r.error >= 0 ? "+" : ""}${r.error.toFixed(1)}${r.kind === "change" ? " pp" : " %"}`,
      r.target,
      r.pass ? "pass" : `MISS (${r.responsible})`,
    ];
  });
  const w = head.map((h, i) =>
    Math.max(h.length, ...cells.filter((c) => c.length > i).map((c) => c[i].length)),
  );
  const line = (c: string[]) =>
    c
      .map((x, i) => (i === c.length - 1 ? x : i >= 4 && i <= 6 ? x.padStart(w[i]) : x.padEnd(w[i])))
      .join("  ");
  const pass = rows.filter((r) => r.pass).length;
  return [
    line(head),
    line(w.map((n) => "-".repeat(Math.min(n, 40)))),
    ...cells.map(line),
    "",
    `${pass} of ${rows.length} points within target.`,
  ].join("\n");
}
