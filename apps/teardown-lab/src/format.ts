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
  /** Folios returned to the allocator during the operation. */
  readonly foliosTornDown: number;
  /** Every counter of the run, flattened as "<layer>.<name>" → integer. */
  readonly counters: Readonly<Record<string, number>>;
  /** Estimated kernel time from the arch's cost profile, ns; null when no cost model applies. */
  readonly estimatedNs: number | null;
  /** The simulator's own wall time for the teardown phase alone, ns. */
  readonly simWallNs: number;
  /** Model memory of the run (physical memory, swap, page tables, gather), bytes. */
  readonly stateBytes: number;
  /** Safety violations the checker found (empty when correct). */
  readonly violations: readonly ViolationJson[];
}

/** A violation as printed in JSON. */
export interface ViolationJson {
  readonly kind: string;
  readonly message: string;
  readonly trail: readonly string[];
}

/** Flattens nested objects of integers into "a.b.c" keys (arrays and non-numbers skipped). */
export function flattenCounters(
  obj: unknown,
  prefix = "",
  out: Record<string, number> = {},
): Record<string, number> {
  if (obj === null || typeof obj !== "object") return out;
  for (const [key, value] of Object.entries(obj)) {
    const name = prefix === "" ? key : `${prefix}.${key}`;
    if (typeof value === "number") out[name] = value;
    else if (value !== null && typeof value === "object" && !Array.isArray(value))
      flattenCounters(value, name, out);
  }
  return out;
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
  "estimatedNs",
  "simWallNs",
  "stateBytes",
  "violations",
] as const;

/** CSV: the fixed fields, then one column per counter (union over all rows, sorted). */
export function toCsv(results: readonly RunResult[], extra: readonly string[] = []): string {
  const counterNames = [...new Set(results.flatMap((r) => Object.keys(r.counters)))].sort();
  const header = [...extra, ...FIXED_COLUMNS, ...counterNames];
  const lines = [header.join(",")];
  for (const r of results) {
    const rec = r as unknown as Record<string, unknown>;
    const row: (string | number | null)[] = extra.map((k) => (rec[k] as string | number | undefined) ?? null);
    for (const k of FIXED_COLUMNS) {
      row.push(k === "violations" ? r.violations.length : (r[k] as string | number | null));
    }
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

function ns(n: number | null): string {
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
    ["estimated kernel time", results.map((r) => ns(r.estimatedNs))],
    ["simulator wall time", results.map((r) => ns(r.simWallNs))],
    ["model memory", results.map((r) => bytes(r.stateBytes))],
    ["violations", results.map((r) => String(r.violations.length))],
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
  if (body.length > 0) {
    out.push("", `counters that differ most (of ${Object.keys(results[0]?.counters ?? {}).length}):`);
    for (const [label, vals] of body) out.push(line(label, vals));
  }
  return `${out.join("\n")}\n`;
}
