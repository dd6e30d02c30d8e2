// tinypool worker of `teardown-lab sweep`: runs one (scenario, variant, arch) task and returns its
// RunResult. Errors come back as a result with `error` set so one bad cell does not stop the pool.

import type { CostProfile } from "@mmgather/mmu-gather";
import type { RunResult } from "./format.js";
import { runOne } from "./run.js";
import type { Scenario } from "./scenario.js";
import type { ArchName, VariantName } from "./spec.js";

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
