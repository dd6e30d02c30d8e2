// `teardown-lab explain`: a step-by-step narration of a tiny teardown per variant, and of the
// deliberately broken variants with the violation the checker finds. Browser-safe.
import type { TrailEvent } from "@mmgather/teardown";
import { BROKEN, realOverrideOf } from "./broken.js";
import { narrateEvents } from "./narrate.js";
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
  lines.push(...narrateEvents(events, verbose));
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
    const ok = runOne(s, c.base, arch, { override: realOverrideOf(c) }).result;
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
      `The same scenario with the real ${c.base}${c.realOverride?.arch !== undefined ? ` on ${c.realOverride.arch.name}` : ""}: ${ok.violations.length} violations.`,
    ];
    return { text: lines.join("\n"), violations: result.violations.length };
  }
  return {
    text: `broken variant "${name}": the checker found no violation on ${arch} (seeds ${c.seeds[0]}–${c.seeds.at(-1)})`,
    violations: 0,
  };
}

function describeScenario(s: Scenario): string {
  const vmas = s.vmas.map((v) => `${v.kind} ${v.size / 1024} KiB`).join(" + ");
  const touched =
    s.cpus > 0 && s.touch < 1
      ? `, ${s.touch === 0 ? "none" : `${Math.round(s.touch * 100)} %`} of the memory touched`
      : "";
  const cpus = `${s.cpus} CPU${s.cpus === 1 ? "" : "s"}${s.lazyCpus > 0 ? ` (${s.lazyCpus} lazy-TLB)` : ""}${touched}`;
  const gup = s.gupFast > 0 ? `, ${s.gupFast} thread${s.gupFast === 1 ? "" : "s"} in gup_fast` : "";
  const devices =
    s.devices > 0 ? `, ${s.devices} device${s.devices === 1 ? "" : "s"} sharing the page tables` : "";
  return `${vmas}, ${cpus}${gup}${devices}, ${s.op.kind}${s.concurrentOp ? ` racing a concurrent ${s.concurrentOp.kind}` : ""}`;
}
