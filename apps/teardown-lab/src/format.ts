// Output of `run` and `sweep`: the stable JSON result shape, its CSV flattening, the side-by-side
// table a person reads with its verdict, the per-term breakdown and folded stacks. Browser-safe.
import { COST_TERMS, type CostPhase } from "@mmgather/teardown";

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
  /**
   * The estimate's profile, the profile's design-ratio error (`ratioError`: two designs whose estimates
   * are closer than this fraction are a tie) and the per-term breakdown (term → ns; see COST_TERMS).
   */
  readonly estimate: {
    readonly profile: string;
    readonly ratioError: number;
    readonly terms: Readonly<Record<string, number>>;
  };
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

/** A count for a person: 262.1k, or with `exact` every digit (262,144). */
function human(n: number, exact = false): string {
  if (exact) return n.toLocaleString("en-US");
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

/** How the table shows numbers. */
export interface TableOptions {
  /** Counter rows: the most different ones (default 12). */
  readonly counterRows?: number;
  /** Every digit of every count (262,144) instead of 262.1k. */
  readonly exact?: boolean;
  /**
   * Show the simulator's own wall time. Off by default: the first design a process runs pays the
   * JIT's warm-up, so the row says more about run order than about the designs.
   */
  readonly timing?: boolean;
}

/** The side-by-side table (one column per variant × arch). */
export function toTable(results: readonly RunResult[], verdict: string, opts: TableOptions = {}): string {
  const counterRows = opts.counterRows ?? 12;
  const exact = opts.exact === true;
  const cols = results.map((r) => `${r.variant}/${r.arch}`);
  const rows: [string, string[]][] = [
    ["pages torn down", results.map((r) => human(r.pagesTornDown, exact))],
    ["folios freed", results.map((r) => human(r.foliosTornDown, exact))],
    ["page-table pages freed", results.map((r) => human(r.pageTablePagesFreed, exact))],
    ["primitive operations", results.map((r) => human(r.primitiveOps, exact))],
    ["estimated kernel time", results.map((r) => ns(r.estimatedNs))],
    ["cost profile", results.map((r) => r.estimate.profile)],
    ...(opts.timing === true && results.some((r) => r.simWallNs !== undefined)
      ? ([["simulator wall time", results.map((r) => ns(r.simWallNs ?? null))]] as [string, string[]][])
      : []),
    ["model memory", results.map((r) => bytes(r.stateBytes))],
    ["violations", results.map((r) => String(r.violations.length))],
    ["final-state problems", results.map((r) => String(r.finalStateProblems.length))],
  ];
  const diff = mostDifferent(results, counterRows);
  const body: [string, string[]][] = diff.map((name) => [
    name,
    results.map((r) => human(r.counters[name] ?? 0, exact)),
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

const UNIT = new Map(COST_TERMS.map((t) => [t.name as string, t.unit.replace(/ \(.*$/, "")]));

/** A time difference with its sign, e.g. "+1.20 ms", "−310 ns". */
function signedNs(d: number): string {
  return `${d < 0 ? "−" : "+"}${ns(Math.abs(d))}`;
}

/**
 * Why `b` takes a different time from `a`: the terms whose difference is largest (b − a, ns), as
 * "6.10 ms per-page _mapcount atomic (pageMapcount)", at most `n`, the rest summed.
 */
export function termDifference(a: RunResult, b: RunResult, n = 3): string {
  const d = Object.keys(a.estimate.terms)
    .map((t) => ({ t, ns: (b.estimate.terms[t] ?? 0) - (a.estimate.terms[t] ?? 0) }))
    .filter((x) => x.ns !== 0)
    .sort((x, y) => Math.abs(y.ns) - Math.abs(x.ns));
  if (d.length === 0) return "no term differs";
  const top = d.slice(0, n).map((x) => `${signedNs(x.ns)} ${UNIT.get(x.t) ?? x.t} (${x.t})`);
  const rest = d.slice(n).reduce((acc, x) => acc + x.ns, 0);
  return d.length > n
    ? `${top.join(", ")}, ${signedNs(rest)} in ${d.length - n} other terms`
    : top.join(", ");
}

function pct(f: number): string {
  return `±${Math.round(100 * f)} %`;
}

/**
 * The verdict: per arch, the designs ranked by estimated kernel time. Two estimates closer than the
 * profile's design-ratio error (`ratioError`) are a tie — the model cannot tell them apart — and the
 * verdict says so; otherwise it names the fastest, how much longer each other design takes, and on
 * which cost terms the fastest saves (the terms of each difference, largest first).
 */
export function verdict(results: readonly RunResult[]): string {
  if (results.length === 0) return "no results";
  const lines: string[] = [];
  const arches = [...new Set(results.map((r) => r.arch))];
  const what = (r: RunResult) => `${r.variant} (${ns(r.estimatedNs)})`;
  for (const arch of arches) {
    const rs = results.filter((r) => r.arch === arch).sort((a, b) => a.estimatedNs - b.estimatedNs);
    // Each arch's columns share its profile (or --profile): its error decides their ties.
    const err = Math.max(...rs.map((r) => r.estimate.ratioError));
    const best = rs[0];
    const tied = rs.filter((r) => r.estimatedNs <= best.estimatedNs * (1 + err));
    const slower = rs.slice(tied.length);
    const ratio = (r: RunResult) => `${(r.estimatedNs / Math.max(1, best.estimatedNs)).toFixed(2)}×`;
    if (rs.length === 1) {
      lines.push(`${arch}: ${best.variant} takes an estimated ${ns(best.estimatedNs)}`);
      continue;
    }
    if (tied.length === 1) {
      lines.push(
        `${arch}: ${best.variant} is fastest — ${ns(best.estimatedNs)}, ${human(best.primitiveOps)} primitive operations; ` +
          `${slower.map((r) => `${what(r)} takes ${ratio(r)} as long`).join(", ")}`,
      );
    } else {
      const head =
        tied.length === rs.length && rs.length > 2
          ? "every design ties"
          : `${tied.map((r) => r.variant).join(" and ")} tie for fastest`;
      lines.push(
        `${arch}: ${head} — ${tied.map(what).join(", ")}: within the profile's ${pct(err)} design-ratio error` +
          (slower.length > 0
            ? `; ${slower.map((r) => `${what(r)} takes ${ratio(r)} as long as ${best.variant}`).join(", ")}`
            : ""),
      );
    }
    for (const r of rs.slice(1)) {
      const d = r.estimatedNs - best.estimatedNs;
      lines.push(
        `  ${best.variant} vs ${r.variant}: ${ns(Math.abs(d))} ${d >= 0 ? "less" : "more"} — ${termDifference(r, best)}`,
      );
    }
  }
  const bad = results.filter((r) => r.violations.length > 0);
  const broken = results.filter((r) => r.finalStateProblems.length > 0);
  if (bad.length > 0) lines.push(`VIOLATIONS in ${bad.map((r) => `${r.variant}/${r.arch}`).join(", ")}`);
  if (broken.length > 0)
    lines.push(`FINAL-STATE PROBLEMS in ${broken.map((r) => `${r.variant}/${r.arch}`).join(", ")}`);
  const profiles = [
    ...new Set(results.map((r) => `${r.estimate.profile} (design ratios ${pct(r.estimate.ratioError)})`)),
  ];
  const label = profiles.length > 1 ? "profiles" : "profile";
  return `Verdict (estimated kernel time = Σ counter × cost, ${label} ${profiles.join(", ")}):\n${lines.join("\n")}`;
}

/** Phases in teardown order (the breakdown's row groups and the folded stacks' second frame). */
const PHASES: readonly CostPhase[] = [
  "zap_pte_range",
  "rmap",
  "tlb_flush",
  "free_pages",
  "swap",
  "free_pgtables",
  "vma",
];

/** `run --breakdown`: every cost term any result spends time on, per phase, ns and share of its total. */
export function breakdownTable(results: readonly RunResult[]): string {
  const cols = results.map((r) => `${r.variant}/${r.arch}`);
  const rows: [string, string[]][] = [];
  for (const phase of PHASES) {
    const terms = COST_TERMS.filter(
      (t) => t.phase === phase && results.some((r) => (r.estimate.terms[t.name] ?? 0) !== 0),
    );
    if (terms.length === 0) continue;
    const sum = (r: RunResult) => terms.reduce((a, t) => a + (r.estimate.terms[t.name] ?? 0), 0);
    const cell = (r: RunResult, v: number) =>
      `${ns(v)} ${r.estimatedNs > 0 ? `${((100 * v) / r.estimatedNs).toFixed(1).padStart(4)}%` : ""}`;
    rows.push([phase, results.map((r) => cell(r, sum(r)))]);
    for (const t of terms)
      rows.push([`  ${t.name}`, results.map((r) => cell(r, r.estimate.terms[t.name] ?? 0))]);
  }
  rows.push(["total", results.map((r) => ns(r.estimatedNs))]);
  const labelW = Math.max(22, ...rows.map(([l]) => l.length));
  const colW = cols.map((c, i) => Math.max(c.length, ...rows.map(([, v]) => v[i].length)));
  const line = (label: string, vals: string[]) =>
    `${pad(label, labelW)}  ${vals.map((v, i) => pad(v, colW[i], true)).join("  ")}`;
  const profiles = [...new Set(results.map((r) => r.estimate.profile))].join(", ");
  return [
    `Estimated kernel time by phase and cost term (counter × ns, profile ${profiles}; share of each column's total):`,
    "",
    line("", cols),
    line(
      "",
      cols.map((_, i) => "-".repeat(colW[i])),
    ),
    ...rows.map(([l, v]) => line(l, v)),
    "",
  ].join("\n");
}

/**
 * Folded stacks (`arch/design;phase;term ns`, one line per non-zero term): the format flamegraph.pl,
 * inferno and speedscope read. Weights are whole ns of estimated kernel time.
 */
export function foldedStacks(results: readonly RunResult[]): string {
  const out: string[] = [];
  for (const r of results)
    for (const t of COST_TERMS) {
      const v = Math.round(r.estimate.terms[t.name] ?? 0);
      if (v > 0) out.push(`${r.arch}/${r.variant};${t.phase};${t.name} ${v}`);
    }
  return `${out.join("\n")}\n`;
}
