// Runs one scenario for one (variant, arch) and shapes the documented RunResult. Counters are the
// teardown phase's own, as @mmgather/teardown reports them (folio, swap and cpu layers are deltas over
// the operation); the estimate is the report's: Σ counter × the cost profile. Browser-safe.
import type { CostProfile } from "@mmgather/mmu-gather";
import { isSwapError } from "@mmgather/swapcache";
import {
  flattenCounters,
  isTeardownError,
  runScenario,
  type ScenarioProgress,
  type ScenarioSpec,
  type TeardownReport,
  type TrailEvent,
} from "@mmgather/teardown";
import type { RunResult, ViolationJson } from "./format.js";
import { describeEvent } from "./narrate.js";
import type { Scenario } from "./scenario.js";
import { formatSize } from "./size.js";
import { type ArchName, SpecError, toScenarioSpec, type VariantName } from "./spec.js";

/**
 * Counters summed into the "primitive operations" total (unweighted; the estimated time weighs them):
 * every atomic on a folio, every lock acquisition, every statistics update, every gather entry written
 * and every TLB flush instruction or IPI round. The README lists the same names.
 */
export const PRIMITIVE_COUNTERS = [
  "folio.refcountAtomics",
  "folio.mapcountAtomics",
  "folio.nrPagesMappedAtomics",
  "folio.largeMapcountAtomics",
  "folio.entireMapcountAtomics",
  "folio.lruvecLockAcquisitions",
  "folio.splitQueueLockAcquisitions",
  "folio.pageCacheLockAcquisitions",
  "folio.statUpdates",
  "swap.clusterLocks",
  "swap.deviceLocks",
  "teardown.ptlAcquisitions",
  "gather.entriesQueued",
  "gather.tlbFlushes",
  "gather.ipte",
  "gather.idte",
] as const;

/** Sum of PRIMITIVE_COUNTERS. */
export function primitiveOps(counters: Readonly<Record<string, number>>): number {
  let n = 0;
  for (const k of PRIMITIVE_COUNTERS) n += counters[k] ?? 0;
  return n;
}

/** Flattened teardown-phase counters of a report ("layer.name"). */
export function reportCounters(r: TeardownReport): Record<string, number> {
  return flattenCounters(r);
}

/** A violation in words, with its trail narrated. */
export function violationJson(v: TeardownReport["violations"][number]): ViolationJson {
  return {
    kind: v.kind,
    message: v.message,
    pfn: v.pfn,
    address: v.address,
    trail: v.trail.map((e) => describeEvent(e)),
  };
}

export interface RunOptions {
  /** Receives every event of the teardown phase, in order (ScenarioSpec.events). */
  readonly events?: (e: TrailEvent) => void;
  /** Overrides applied to the spec (deliberately broken variants and walks). */
  readonly override?: Partial<ScenarioSpec>;
  /** Cost profile of the estimate (default: the arch adapter's). */
  readonly profile?: CostProfile;
  /** Build and teardown progress (ScenarioSpec.progress), for a progress bar. */
  readonly progress?: ScenarioProgress;
}

/** Raw report plus the app's result. */
export interface RunOutput {
  readonly result: RunResult;
  readonly report: TeardownReport;
}

/** Runs a scenario's teardown for one variant on one arch. Throws SpecError for what cannot run. */
export function runOne(s: Scenario, variant: VariantName, arch: ArchName, opts: RunOptions = {}): RunOutput {
  const full: ScenarioSpec = {
    ...toScenarioSpec(s, variant, arch),
    ...opts.override,
    events: opts.events,
    costProfile: opts.profile,
    progress: opts.progress,
  };
  let report: TeardownReport;
  try {
    report = runScenario(full);
  } catch (e) {
    if (isSwapError(e) && e.code === "ENOSPC") {
      throw new SpecError(
        `${arch}/${variant}: the model's swap (${formatSize(full.swap ?? 0)}) is too small for the swap-out the scenario asks for; set a larger "swap"`,
      );
    }
    if (isTeardownError(e)) {
      const hint =
        e.code === "ENOMEM"
          ? ` (the model has ${formatSize(full.memory)} of physical memory; set a larger "memory" in the scenario)`
          : "";
      throw new SpecError(`${arch}/${variant}: the model refused the scenario: ${e.message}${hint}`);
    }
    throw e;
  }
  const counters = reportCounters(report);
  const result: RunResult = {
    scenario: s.name,
    variant: report.variant,
    arch,
    op: s.op.kind,
    pagesTornDown: report.pagesTornDown,
    foliosTornDown: report.dataFoliosFreed,
    pageTablePagesFreed: report.pageTablePagesFreed,
    batchPagesFreed: report.counters.gather.batchPagesFreed,
    primitiveOps: primitiveOps(counters),
    counters,
    estimatedNs: report.estimate.totalNs,
    estimate: {
      profile: report.estimate.profile,
      ratioError: report.estimate.ratioError,
      terms: report.estimate.terms,
    },
    simWallNs: report.simWallNs,
    stateBytes: report.stateBytes,
    violations: report.violations.map(violationJson),
    finalStateProblems: report.finalState.problems,
  };
  return { result, report };
}
