// tinypool worker of `teardown-lab sweep`, `differential` and `worker`: the default export runs one
// (scenario, variant, arch) sweep cell and returns its RunResult; `exploreTask` runs one exploration;
// `differentialTask` one chunk of a random differential run.
// Errors come back as a reply with `error` set so one bad cell does not stop the pool.

import type { CostProfile } from "@mmgather/mmu-gather";
import { type DifferentialReply, type DifferentialTask, runDifferentialTask } from "./differential.js";
import { type ExploreOutput, exploreBroken, exploreScenario } from "./explore.js";
import type { RunResult } from "./format.js";
import { runOne } from "./run.js";
import { type Scenario, ScenarioError } from "./scenario.js";
import { type ArchName, SpecError, type VariantName } from "./spec.js";

export interface SweepTask {
  readonly index: number;
  readonly scenario: Scenario;
  readonly variant: VariantName;
  readonly arch: ArchName;
  /** Cost profile (default: the arch's). */
  readonly profile?: CostProfile;
}

export type SweepReply =
  | { readonly index: number; readonly result: RunResult }
  | { readonly index: number; readonly error: string };

export default function runTask(task: SweepTask): SweepReply {
  try {
    return {
      index: task.index,
      result: runOne(task.scenario, task.variant, task.arch, { profile: task.profile }).result,
    };
  } catch (e) {
    return { index: task.index, error: e instanceof Error ? e.message : String(e) };
  }
}

/** One `explore` of a scenario for one design, or of a broken case (its broken and its real design). */
export interface ExploreTask {
  readonly index: number;
  /** The scenario, or undefined with `broken`. */
  readonly scenario?: Scenario;
  /** The design explored (with `scenario`). */
  readonly variant?: VariantName;
  /** A broken case's name: explore its scenario with the broken variant, then with the real one. */
  readonly broken?: string;
  readonly arch: ArchName;
  /** Most preemptions per interleaving. */
  readonly bound: number;
  /** Cap on interleavings run. */
  readonly max: number;
  /** Show the search's wall time. */
  readonly timing: boolean;
}

/**
 * The outputs `explore` prints for the task, or the error it stopped with: `input` when the local
 * command would have exited 2 on it (the scenario cannot run on the arch), else `internal`.
 */
export type ExploreReply =
  | { readonly index: number; readonly outputs: readonly ExploreOutput[] }
  | { readonly index: number; readonly error: string; readonly input: boolean };

export function exploreTask(t: ExploreTask): ExploreReply {
  try {
    if (t.broken !== undefined)
      return { index: t.index, outputs: exploreBroken(t.broken, t.arch, t.bound, t.max, t.timing) };
    if (t.scenario === undefined || t.variant === undefined)
      throw new Error("an exploration needs a scenario and a variant, or a broken case");
    const out = exploreScenario({
      scenario: t.scenario,
      variant: t.variant,
      arch: t.arch,
      bound: t.bound,
      max: t.max,
      timing: t.timing,
    });
    return { index: t.index, outputs: [out] };
  } catch (e) {
    return {
      index: t.index,
      error: e instanceof Error ? e.message : String(e),
      input: e instanceof SpecError || e instanceof ScenarioError,
    };
  }
}

/** One chunk of `teardown-lab differential`; an error that stops the chunk comes back as its reply. */
export function differentialTask(t: DifferentialTask): DifferentialReply {
  try {
    return runDifferentialTask(t);
  } catch (e) {
    return { index: t.index, error: e instanceof Error ? e.message : String(e) };
  }
}
