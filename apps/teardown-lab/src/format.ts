// Output of `run` and `sweep`: the stable JSON result shape, its CSV flattening and the
// side-by-side table a person reads.

/** One (variant, arch) result: the documented `--json` shape. */
export interface RunResult {
  /** Scenario name (preset name or the file's `name`). */
  readonly scenario: string;
  /** Gather design: encoded-page | contig-range | encoded-nr-pages (or a custom variant's name). */
  readonly variant: string;
  /** Arch adapter name: generic | s390. */
  readonly arch: string;
  /** Operation torn down: exit | munmap | dontneed. */
  readonly op: string;
  /** Base pages whose mapping the operation removed (present PTEs and PMD-mapped pages). */
  readonly pagesTornDown: number;
  /** Data folios (anon, file, shmem) returned to the allocator during the operation. */
  readonly foliosTornDown: number;
  /** Page-table pages returned to the allocator (PTE/PMD/PUD tables, deposited tables, the PGD at exit). */
  readonly pageTablePagesFreed: number;
  /** Gather batch pages released (`tlb_batch_list_free`; the model keeps them outside physical memory). */
  readonly batchPagesFreed: number;
  /** Primitive operations: the sum of the counters listed in PRIMITIVE_COUNTERS (see README). */
  readonly primitiveOps: number;
  /** Every counter of the run, flattened as "<layer>.<name>" → integer. */
  readonly counters: Readonly<Record<string, number>>;
  /** Estimated kernel time, ns: Σ counter × cost per primitive of the run's cost profile. */
  readonly estimatedNs: number;
  /** The estimate's profile and its per-term breakdown (term → ns; see COST_TERMS). */
  readonly estimate: { readonly profile: string; readonly terms: Readonly<Record<string, number>> };
  /** The simulator's own wall time for the teardown phase alone, ns; absent with `--no-timing`. */
  readonly simWallNs?: number;
  /** Model memory of the run (physical memory, swap, page tables, gather), bytes. */
  readonly stateBytes: number;
  /** Safety violations the checker found (empty when correct). */
  readonly violations: readonly ViolationJson[];
  /** Final-state problems (rss left after exit, leaked or unaccounted folios; empty when correct). */
  readonly finalStateProblems: readonly string[];
}

/** Exit status of a run: 1 when any result has a safety violation or a final-state problem. */
export function exitStatus(results: readonly RunResult[]): 0 | 1 {
  return results.some((r) => r.violations.length > 0 || r.finalStateProblems.length > 0) ? 1 : 0;
}

/** The result without its wall-clock field (`--no-timing`): same scenario and seed, same bytes. */
export function withoutTiming(r: RunResult): RunResult {
  const { simWallNs: _wall, ...rest } = r;
  return rest;
}

/** A violation as printed in JSON. */
export interface ViolationJson {
  readonly kind: string;
  readonly message: string;
  /** Page frame involved (-1 if none). */
  readonly pfn: number;
  /** Virtual byte address involved (-1 if none). */
  readonly address: number;
  /** The events before the violation, oldest first, in words. */
  readonly trail: readonly string[];
}

function csvCell(v: string | number | null): string {
  if (v === null) return "";
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const FIXED_COLUMNS = [
  "scenario",
  "variant",
  "arch",
  "op",
  "pagesTornDown",
  "foliosTornDown",
  "pageTablePagesFreed",
  "batchPagesFreed",
  "primitiveOps",
  "estimatedNs",
  "simWallNs",
  "stateBytes",
  "violations",
  "finalStateProblems",
] as const;

/** CSV: the fixed fields, the cost profile, then one column per counter (union over all rows, sorted). */
export function toCsv(results: readonly RunResult[], extra: readonly string[] = []): string {
  const counterNames = [...new Set(results.flatMap((r) => Object.keys(r.counters)))].sort();
  const timed = results.some((r) => r.simWallNs !== undefined);
  const fixed = FIXED_COLUMNS.filter((k) => timed || k !== "simWallNs");
  const header = [...extra, ...fixed, "profile", ...counterNames];
  const lines = [header.join(",")];
  for (const r of results) {
    const rec = r as unknown as Record<string, unknown>;
    const row: (string | number | null)[] = extra.map((k) => (rec[k] as string | number | undefined) ?? null);
    for (const k of fixed) {
      if (k === "violations") row.push(r.violations.length);
      else if (k === "finalStateProblems") row.push(r.finalStateProblems.length);
      else row.push((r[k] as string | number | undefined) ?? null);
    }
    row.push(r.estimate.profile);
    for (const c of counterNames) row.push(r.counters[c] ?? null);
    lines.push(row.map(csvCell).join(","));
  }
  return `${lines.join("\n")}\n`;
}

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** A duration in ns, human-readable. */
export function ns(n: number | null): string {
  if (n === null) return "n/a";
  if (n >= 1e9) return `${(n / 1e9).toFixed(3)} s`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} ms`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} µs`;
  return `${Math.round(n)} ns`;
}

function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(1)} KiB`;
}

/** Counters that differ most across the results (largest max/min ratio, then largest absolute gap). */
export function mostDifferent(results: readonly RunResult[], limit: number): string[] {
  const names = [...new Set(results.flatMap((r) => Object.keys(r.counters)))];
  const scored = names
    .map((name) => {
      const vals = results.map((r) => r.counters[name] ?? 0);
      const max = Math.max(...vals);
      const min = Math.min(...vals);
      return { name, ratio: (max + 1) / (min + 1), gap: max - min };
    })
    .filter((s) => s.gap > 0)
    .sort((a, b) => b.ratio - a.ratio || b.gap - a.gap);
  return scored.slice(0, limit).map((s) => s.name);
}

function pad(s: string, w: number, right = false): string {
  return right ? s.padStart(w) : s.padEnd(w);
}

/** The side-by-side table (one column per variant × arch). */
export function toTable(results: readonly RunResult[], verdict: string, counterRows = 12): string {
  const cols = results.map((r) => `${r.variant}/${r.arch}`);
  const rows: [string, string[]][] = [
    ["pages torn down", results.map((r) => human(r.pagesTornDown))],
    ["folios freed", results.map((r) => human(r.foliosTornDown))],
    ["page-table pages freed", results.map((r) => human(r.pageTablePagesFreed))],
    ["primitive operations", results.map((r) => human(r.primitiveOps))],
    ["estimated kernel time", results.map((r) => ns(r.estimatedNs))],
    ["cost profile", results.map((r) => r.estimate.profile)],
    ...(results.some((r) => r.simWallNs !== undefined)
      ? ([["simulator wall time", results.map((r) => ns(r.simWallNs ?? null))]] as [string, string[]][])
      : []),
    ["model memory", results.map((r) => bytes(r.stateBytes))],
    ["violations", results.map((r) => String(r.violations.length))],
    ["final-state problems", results.map((r) => String(r.finalStateProblems.length))],
  ];
  const diff = mostDifferent(results, counterRows);
  const body: [string, string[]][] = diff.map((name) => [
    name,
    results.map((r) => human(r.counters[name] ?? 0)),
  ]);
  const labelW = Math.max(22, ...diff.map((d) => d.length));
  const colW = cols.map((c, i) => Math.max(c.length, ...[...rows, ...body].map(([, v]) => v[i].length)));
  const line = (label: string, vals: string[]) =>
    `${pad(label, labelW)}  ${vals.map((v, i) => pad(v, colW[i], true)).join("  ")}`;
  const out = [
    verdict,
    "",
    line("", cols),
    line(
      "",
      cols.map((_, i) => "-".repeat(colW[i])),
    ),
  ];
  for (const [label, vals] of rows) out.push(line(label, vals));
  const withProblems = results.filter((r) => r.finalStateProblems.length > 0);
  if (withProblems.length > 0) {
    out.push("", "final-state problems:");
    for (const r of withProblems)
      for (const p of r.finalStateProblems) out.push(`  ${r.variant}/${r.arch}: ${p}`);
  }
  if (body.length > 0) {
    out.push("", `counters that differ most (of ${Object.keys(results[0]?.counters ?? {}).length}):`);
    for (const [label, vals] of body) out.push(line(label, vals));
  }
  return `${out.join("\n")}\n`;
}

/**
 * The verdict line: per arch, which result has the lowest estimated kernel time, by how much
 * compared with the slowest, and its primitive operations.
 */
export function verdict(results: readonly RunResult[]): string {
  if (results.length === 0) return "no results";
  const parts: string[] = [];
  const arches = [...new Set(results.map((r) => r.arch))];
  for (const arch of arches) {
    const rs = results.filter((r) => r.arch === arch);
    const best = rs.reduce((a, b) => (b.estimatedNs < a.estimatedNs ? b : a));
    const worst = rs.reduce((a, b) => (b.estimatedNs > a.estimatedNs ? b : a));
    const what = (r: RunResult) => `${ns(r.estimatedNs)}, ${human(r.primitiveOps)} primitive operations`;
    if (rs.length === 1) {
      parts.push(`${arch}: ${best.variant} takes an estimated ${what(best)}`);
    } else if (best.estimatedNs === worst.estimatedNs) {
      parts.push(`${arch}: every variant takes the same estimated time (${what(best)})`);
    } else {
      const ratio = worst.estimatedNs / Math.max(1, best.estimatedNs);
      parts.push(
        `${arch}: ${best.variant} is fastest — ${what(best)}; ` +
          `${ratio.toFixed(2)}× less time than ${worst.variant} (${what(worst)})`,
      );
    }
  }
  const bad = results.filter((r) => r.violations.length > 0);
  const broken = results.filter((r) => r.finalStateProblems.length > 0);
  const tail =
    (bad.length > 0 ? `; VIOLATIONS in ${bad.map((r) => `${r.variant}/${r.arch}`).join(", ")}` : "") +
    (broken.length > 0
      ? `; FINAL-STATE PROBLEMS in ${broken.map((r) => `${r.variant}/${r.arch}`).join(", ")}`
      : "");
  const profiles = [...new Set(results.map((r) => r.estimate.profile))].join(", ");
  return `Verdict (estimated kernel time = Σ counter × cost, profile ${profiles}): ${parts.join("; ")}${tail}`;
}
