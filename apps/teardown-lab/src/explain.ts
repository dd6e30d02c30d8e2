// `teardown-lab explain`: a step-by-step narration of a tiny teardown per variant, and of the
// deliberately broken variants with the violation the checker finds. Browser-safe.
import type { TrailEvent } from "@mmgather/teardown";
import { BROKEN } from "./broken.js";
import { describeEvent } from "./narrate.js";
import { runOne } from "./run.js";
import { type Scenario, validateScenario } from "./scenario.js";
import type { ArchName, VariantName } from "./spec.js";

/** The default explain scenario: one 64 KiB anon folio and one dirty shared file page, two CPUs, exit. */
export function tinyScenario(): Scenario {
  return validateScenario(
    {
      name: "explain",
      description: "one 64 KiB anonymous folio and one dirty shared file page, on two CPUs, then exit",
      cpus: 2,
      vmas: [
        { name: "anon", kind: "anon", size: "64K", folio: "64K" },
        { name: "file", kind: "file-shared", size: "4K", dirty: 1 },
      ],
      op: { kind: "exit" },
    },
    "explain scenario",
  );
}

const BOOKKEEPING = new Set(["ptlLocked", "ptlUnlocked", "condResched", "batchReused"]);

export interface ExplainOutput {
  readonly text: string;
  /** Violations shown (a correct variant shows none). */
  readonly violations: number;
}

/** Narrates one variant's teardown of `s`. `verbose` keeps lock and cond_resched events. */
export function explainVariant(
  s: Scenario,
  variant: VariantName,
  arch: ArchName,
  verbose = false,
): ExplainOutput {
  const events: TrailEvent[] = [];
  const { result } = runOne(s, variant, arch, { events: (e) => events.push(e) });
  const lines = [`== ${variant} on ${arch} ==`];
  const shown = verbose ? events : events.filter((e) => !BOOKKEEPING.has(e.type));
  let n = 0;
  for (let i = 0; i < shown.length; ) {
    const period = verbose ? 0 : repeatPeriod(shown, i);
    const cycle = period === 0 ? 1 : period;
    for (let j = i; j < i + cycle; j++) lines.push(`${String(++n).padStart(3)}. ${describeEvent(shown[j])}`);
    i += cycle;
    if (period === 0) continue;
    // The same steps again for the next pages: one line instead of a page-by-page repeat.
    let reps = 0;
    while (i + period <= shown.length && sameTypes(shown, i - period, i, period)) {
      i += period;
      reps++;
    }
    const first = firstPfn(shown, i - reps * period, i - (reps - 1) * period);
    const last = firstPfn(shown, i - period, i);
    const range = first >= 0 && last >= 0 ? ` (pfns ${first} … ${last})` : "";
    const what = period === 1 ? "the same step" : `the same ${period} steps`;
    lines.push(`     … ${what} again, ${reps} more time${reps === 1 ? "" : "s"}${range}`);
    n += reps * period;
  }
  lines.push(
    `   → ${result.pagesTornDown} pages unmapped, ${result.foliosTornDown} folios freed, ` +
      `${result.primitiveOps} primitive operations, ${result.violations.length} violations`,
  );
  for (const v of result.violations) lines.push(`   ! ${v.kind}: ${v.message}`);
  return { text: lines.join("\n"), violations: result.violations.length };
}

/** Narrates a deliberately broken variant: the violation, its trail, and why the real order is safe. */
export function explainBroken(name: string, arch: ArchName = "generic"): ExplainOutput {
  const c = BROKEN[name];
  for (const seed of c.seeds) {
    const s = c.scenario(seed);
    const { result } = runOne(s, c.base, arch, { override: c.override });
    const v = result.violations.find((x) => x.kind === c.expect) ?? result.violations[0];
    if (v === undefined) continue;
    // The real variant on the same machine (an arch the broken case overrides included).
    const { variant: _broken, walk: _brokenWalk, ...machine } = c.override;
    const ok = runOne(s, c.base, arch, { override: machine }).result;
    const lines = [
      `== broken variant "${name}" (derived from ${c.base}, on ${c.override.arch?.name ?? arch}) ==`,
      `What it changes: ${c.change}.`,
      `Scenario: ${s.description ?? describeScenario(s)}${c.seeds.length > 1 ? ` (seed ${seed}: the racing threads interleave so the bug shows)` : ""}`,
      "",
      `The checker found ${result.violations.length} violation(s). The first ${c.expect}:`,
      `  ${v.kind}: ${v.message}`,
      "",
      "What happened just before (oldest first):",
      ...v.trail.map((t, i) => `  ${String(i + 1).padStart(2)}. ${t}`),
      "",
      `In a real kernel: ${c.consequence}`,
      "",
      `Why the real order prevents it: ${c.realOrder}`,
      "",
      `The same scenario with the real ${c.base}: ${ok.violations.length} violations.`,
    ];
    return { text: lines.join("\n"), violations: result.violations.length };
  }
  return {
    text: `broken variant "${name}": the checker found no violation on ${arch} (seeds ${c.seeds[0]}–${c.seeds.at(-1)})`,
    violations: 0,
  };
}

/** Smallest period p (1..6) such that the event types from `i` repeat at least 3 times; 0 if none. */
function repeatPeriod(events: readonly TrailEvent[], i: number): number {
  for (let p = 1; p <= 6; p++) {
    if (i + 3 * p > events.length) break;
    if (sameTypes(events, i, i + p, p) && sameTypes(events, i, i + 2 * p, p)) return p;
  }
  return 0;
}

function sameTypes(events: readonly TrailEvent[], a: number, b: number, len: number): boolean {
  for (let k = 0; k < len; k++) if (events[a + k].type !== events[b + k].type) return false;
  return true;
}

/** The first pfn any event in [from, to) names, or -1. */
function firstPfn(events: readonly TrailEvent[], from: number, to: number): number {
  for (let k = from; k < to; k++) {
    const e = events[k];
    if ("pfn" in e && typeof e.pfn === "number") return e.pfn;
  }
  return -1;
}

function describeScenario(s: Scenario): string {
  const vmas = s.vmas.map((v) => `${v.kind} ${v.size / 1024} KiB`).join(" + ");
  return `${vmas}, ${s.cpus} CPUs, ${s.op.kind}${s.concurrentOp ? ` racing a concurrent ${s.concurrentOp.kind}` : ""}`;
}
