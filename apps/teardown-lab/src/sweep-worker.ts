// tinypool worker of `teardown-lab sweep`, `differential` and `worker`: the default export runs the
// sweep cells of one scenario that share a build (`buildGroups`) through SharedBuilds — the workload
// built once, each cell run on an exact copy — and returns each cell's RunResult; `exploreTask` runs
// one exploration; `differentialTask` one chunk of a random differential run.
// Errors come back as a reply with `error` set so one bad cell does not stop the pool.

import type { CostProfile } from "@mmgather/mmu-gather";
import { type DifferentialReply, type DifferentialTask, runDifferentialTask } from "./differential.js";
import { type ExploreOutput, exploreBroken, exploreScenario } from "./explore.js";
import type { RunResult } from "./format.js";
import { SharedBuilds } from "./run.js";
import { type Scenario, ScenarioError } from "./scenario.js";
import { type ArchName, SpecError, type VariantName } from "./spec.js";

/** One cell of a sweep: a design on an arch, and its row's position in the sweep's output. */
export interface SweepCell {
  readonly index: number;
  readonly variant: VariantName;
  readonly arch: ArchName;
}

/**
 * The cells of one scenario that share a build (`buildGroups`, in the sweep's order), as queued: a
 * queue job carries this, and the worker that runs it adds the copies its memory allows.
 */
export interface SweepCells {
  /** The task's (queue job's) position among the sweep's tasks. */
  readonly index: number;
  readonly scenario: Scenario;
  readonly cells: readonly SweepCell[];
  /** Cost profile (default: the arch's). */
  readonly profile?: CostProfile;
}

/** A sweep task as a pool thread runs it. */
export interface SweepTask extends SweepCells {
  /** Copies of the model the task may hold at once (`modelCopies`); below 2 each cell builds its own. */
  readonly copies: number;
}

/** One cell's result, or the error that stopped it (what `run` reports and exits 2 on). */
export type SweepCellReply =
  | { readonly index: number; readonly result: RunResult }
  | { readonly index: number; readonly error: string };

export interface SweepReply {
  /** The task's index. */
  readonly index: number;
  /** Every cell's reply, in the task's order. */
  readonly cells: readonly SweepCellReply[];
  /** Workloads built for the task: 1 when the cells shared one build (and every cell could run). */
  readonly builds: number;
}

export default function runTask(task: SweepTask): SweepReply {
  const runs = new SharedBuilds(task.scenario, task.cells, { profile: task.profile }, task.copies);
  const cells = task.cells.map((c): SweepCellReply => {
    try {
      return { index: c.index, result: runs.run(c.variant, c.arch).result };
    } catch (e) {
      return { index: c.index, error: e instanceof Error ? e.message : String(e) };
    }
  });
  return { index: task.index, cells, builds: runs.builds };
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
