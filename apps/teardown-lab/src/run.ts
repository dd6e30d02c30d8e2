// Runs one scenario for one (variant, arch) and shapes the documented RunResult. Counters are the
// teardown phase's own: layers whose counters live for the whole machine (folio, swap, cpu) are
// reported as the difference between the end and the start of the operation. Browser-safe.
import {
  buildScenario,
  isTeardownError,
  runBuilt,
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
 * Counters summed into the "primitive operations" total (no cost model yet): every atomic on a
 * folio, every lock acquisition, every statistics update, every gather entry written and every
 * TLB flush instruction or IPI round. The README lists the same names.
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

const TABLE_LEVELS = ["pte", "pmd", "pud"];

function flatten(obj: unknown, prefix: string, out: Record<string, number>): void {
  if (obj === null || typeof obj !== "object") return;
  if (Array.isArray(obj)) {
    obj.forEach((v, i) => {
      if (typeof v === "number") out[`${prefix}.${TABLE_LEVELS[i] ?? i}`] = v;
    });
    return;
  }
  for (const [key, value] of Object.entries(obj)) {
    const name = `${prefix}.${key}`;
    if (typeof value === "number") out[name] = value;
    else flatten(value, name, out);
  }
}

function snapshot(obj: unknown, prefix: string): Record<string, number> {
  const out: Record<string, number> = {};
  flatten(obj, prefix, out);
  return out;
}

/** Flattened teardown-phase counters of a report ("layer.name"), given the machine-wide ones before. */
export function reportCounters(
  r: TeardownReport,
  before: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  flatten(r.counters.gather, "gather", out);
  flatten(r.counters.walk, "walk", out);
  for (const [layer, value] of [
    ["folio", r.counters.folio],
    ["swap", r.counters.swap],
    ["cpu", r.counters.cpu],
  ] as const) {
    const now: Record<string, number> = {};
    flatten(value, layer, now);
    for (const [k, v] of Object.entries(now)) out[k] = v - (before[k] ?? 0);
  }
  out["teardown.ptlAcquisitions"] = r.ptlAcquisitions;
  out["teardown.gathers"] = r.gathers;
  out["teardown.pagesFreed"] = r.pagesFreed;
  out["teardown.swapEntriesZapped"] = r.swapEntriesZapped;
  out["teardown.forcedFlushes.batchFull"] = r.forcedFlushes.batchFull;
  out["teardown.forcedFlushes.dirtyShared"] = r.forcedFlushes.dirtyShared;
  out["teardown.finalStateProblems"] = r.finalState.problems.length;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A violation in words, with its trail narrated. */
export function violationJson(v: TeardownReport["violations"][number]): ViolationJson {
  return {
    kind: v.kind,
    message: v.message,
    pfn: v.pfn,
    address: v.address,
    trail: v.trail.map(describeEvent),
  };
}

export interface RunOptions {
  /** Receives every event of the teardown phase, in order (ScenarioSpec.events). */
  readonly events?: (e: TrailEvent) => void;
  /** Overrides applied to the spec (deliberately broken variants and walks). */
  readonly override?: Partial<ScenarioSpec>;
}

/** Raw report plus the app's result. */
export interface RunOutput {
  readonly result: RunResult;
  readonly report: TeardownReport;
}

/** Runs a scenario's teardown for one variant on one arch. Throws SpecError for what cannot run. */
export function runOne(s: Scenario, variant: VariantName, arch: ArchName, opts: RunOptions = {}): RunOutput {
  const full: ScenarioSpec = { ...toScenarioSpec(s, variant, arch), ...opts.override, events: opts.events };
  let report: TeardownReport;
  let before: Record<string, number>;
  try {
    const b = buildScenario(full);
    const m = b.machine;
    before = {
      ...snapshot(m.mem.counters, "folio"),
      ...snapshot(m.swap?.counters ?? null, "swap"),
      ...snapshot(
        m.tlbs === null
          ? null
          : { invalidations: m.tlbs.invalidations, entriesInvalidated: m.tlbs.entriesInvalidated },
        "cpu",
      ),
    };
    report = runBuilt(b, full);
  } catch (e) {
    if (isTeardownError(e)) {
      const hint =
        e.code === "ENOMEM"
          ? ` (the model has ${formatSize(full.memory)} of physical memory; set a larger "memory" in the scenario)`
          : "";
      throw new SpecError(`${arch}/${variant}: the model refused the scenario: ${e.message}${hint}`);
    }
    throw e;
  }
  const counters = reportCounters(report, before);
  const result: RunResult = {
    scenario: s.name,
    variant: report.variant,
    arch,
    op: s.op.kind,
    pagesTornDown: report.pagesTornDown,
    foliosTornDown: report.foliosFreed,
    primitiveOps: primitiveOps(counters),
    counters,
    estimatedNs: null,
    simWallNs: report.simWallNs,
    stateBytes: report.stateBytes,
    violations: report.violations.map(violationJson),
  };
  return { result, report };
}
