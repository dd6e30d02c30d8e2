// `teardown-lab explore`: every interleaving of a scenario's two racing threads up to a preemption
// bound (@mmgather/teardown's explore), and the shortest failing one narrated step by step with the
// violation's trail. Browser-safe.
import { type ExploreResult, explore, runSchedule, type ScenarioSpec } from "@mmgather/teardown";
import { BROKEN, realOverrideOf } from "./broken.js";
import { describeEvent, narrateEvents } from "./narrate.js";
import type { Scenario } from "./scenario.js";
import { type ArchName, toScenarioSpec, type VariantName } from "./spec.js";

export interface ExploreRequest {
  readonly scenario: Scenario;
  readonly variant: VariantName;
  readonly arch: ArchName;
  /** Most preemptions per interleaving. */
  readonly bound: number;
  /** Cap on interleavings run. */
  readonly max: number;
  /** Spec overrides (a deliberately broken variant or walk). */
  readonly override?: Partial<ScenarioSpec>;
  /** Name shown for the design (the broken variant's). */
  readonly label?: string;
  /** Show the search's wall time (default true). */
  readonly timing?: boolean;
}

/** The documented JSON of one exploration: the search's figures, with the failure in words. */
export interface ExploreJson extends Omit<ExploreResult, "shortest"> {
  readonly scenario: string;
  readonly variant: string;
  readonly arch: string;
  /** The failing interleaving with the fewest preemptions, then the fewest steps; null when none. */
  readonly shortest: {
    /** Thread (0 = op, 1 = concurrentOp) of each step. */
    readonly schedule: readonly number[];
    readonly preemptions: number;
    /** Steps until the first violation. */
    readonly steps: number;
    readonly violations: readonly { kind: string; message: string; trail: readonly string[] }[];
    readonly finalStateProblems: readonly string[];
  } | null;
}

export interface ExploreOutput {
  readonly json: ExploreJson;
  readonly text: string;
}

function specOf(r: ExploreRequest): ScenarioSpec {
  return { ...toScenarioSpec(r.scenario, r.variant, r.arch), ...r.override };
}

/** A scenario's race explored for one design. */
export function exploreScenario(r: ExploreRequest): ExploreOutput {
  const spec = specOf(r);
  const res = explore(spec, { bound: r.bound, maxInterleavings: r.max });
  const json = toJson(r, res);
  return { json, text: render(r, spec, res, json) };
}

function toJson(r: ExploreRequest, res: ExploreResult): ExploreJson {
  const s = res.shortest;
  return {
    scenario: r.scenario.name,
    variant: r.label ?? r.variant,
    arch: r.override?.arch?.name ?? r.arch,
    bound: res.bound,
    explored: res.explored,
    exploredByPreemptions: res.exploredByPreemptions,
    failing: res.failing,
    complete: res.complete,
    elapsedMs: Math.round(res.elapsedMs * 10) / 10,
    shortest:
      s === null
        ? null
        : {
            schedule: s.schedule,
            preemptions: s.preemptions,
            steps: s.steps,
            violations: s.report.violations.map((v) => ({
              kind: v.kind,
              message: v.message,
              trail: v.trail.map((e) => describeEvent(e)),
            })),
            finalStateProblems: s.report.finalState.problems,
          },
  };
}

const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? "" : "s"}`;

function render(r: ExploreRequest, spec: ScenarioSpec, res: ExploreResult, j: ExploreJson): string {
  const threads =
    r.scenario.concurrentOp === undefined
      ? `${r.scenario.op.kind} alone (one thread: one interleaving)`
      : `thread 0 ${r.scenario.op.kind} racing thread 1 ${r.scenario.concurrentOp.kind}`;
  const per = res.exploredByPreemptions.map((n, p) => `${p}: ${n}`).join(", ");
  const lines = [
    `== explore ${r.scenario.name}: ${threads}; ${j.variant} on ${j.arch}; preemption bound ${res.bound} ==`,
    `${plural(res.explored, "interleaving")} run (by preemptions — ${per})${r.timing === false ? "" : ` in ${j.elapsedMs} ms`}; ` +
      (res.complete
        ? "that is every interleaving within the bound."
        : "stopped at the --max cap: the search is not complete."),
    `${plural(res.failing, "interleaving")} failed.`,
  ];
  const s = res.shortest;
  if (s === null) return lines.join("\n");
  lines.push(
    "",
    `Shortest failing interleaving: ${plural(s.preemptions, "preemption")}, ${plural(s.steps, "step")} to the first violation ` +
      `(schedule ${s.schedule.slice(0, s.steps).join("")}). Each step is one page-table-lock section, one huge PMD, ` +
      "an mmap_lock wait, a gather's setup or finish, or a concurrent actor's unit (a writeback folio, a " +
      "swapoff, migration or khugepaged page-table section, a migration batch's flush, a vCPU fault's GUP " +
      "or its mmu_lock section, a wait):",
  );
  const run = runSchedule(spec, s.schedule);
  for (let i = 0; i < Math.min(s.steps, run.steps.length); i++) {
    const st = run.steps[i];
    const how = st.preempted ? " — preempts the other thread" : st.waited ? " — waits for mmap_lock" : "";
    lines.push(`step ${i + 1}: thread ${st.thread}${how}`);
    for (const l of narrateEvents(st.events)) lines.push(`  ${l}`);
  }
  for (const v of s.report.violations.slice(0, 3)) {
    lines.push("", `! ${v.kind}: ${v.message}`, "  What happened just before (oldest first):");
    v.trail.forEach((t, i) => {
      lines.push(`  ${String(i + 1).padStart(3)}. ${describeEvent(t)}`);
    });
  }
  if (s.report.violations.length > 3) lines.push(`  … and ${s.report.violations.length - 3} more violations`);
  for (const p of s.report.finalState.problems) lines.push(`! final state: ${p}`);
  return lines.join("\n");
}

/** `explore --broken NAME`: the broken case's scenario with its variant, then the real design. */
export function exploreBroken(
  name: string,
  arch: ArchName,
  bound: number,
  max: number,
  timing = true,
): ExploreOutput[] {
  const c = BROKEN[name];
  const scenario = c.scenario(c.seeds[0]);
  const machine = realOverrideOf(c);
  return [
    exploreScenario({
      scenario,
      variant: c.base,
      arch,
      bound,
      max,
      override: c.override,
      label: name,
      timing,
    }),
    exploreScenario({ scenario, variant: c.base, arch, bound, max, override: machine, timing }),
  ];
}
