// Runs one scenario for one (variant, arch) — or for several, building the workload once for those
// whose builds are the same (SharedBuilds; `buildGroups` splits a scenario's cells by build for the
// sweep's tasks) — and shapes the documented RunResult. Counters are the
// teardown phase's own, as @mmgather/teardown reports them (folio, swap and cpu layers are deltas over
// the operation); the estimate is the report's: Σ counter × the cost profile. Browser-safe.
import type { CostProfile } from "@mmgather/mmu-gather";
import { isSwapError } from "@mmgather/swapcache";
import {
  type BuiltScenario,
  buildScenario,
  cloneBuilt,
  flattenCounters,
  isTeardownError,
  runBuilt,
  runScenario,
  type ScenarioProgress,
  type ScenarioSpec,
  sharesBuild,
  type TeardownReport,
  type TrailEvent,
} from "@mmgather/teardown";
import type { RunResult, ViolationJson } from "./format.js";
import { describeEvent } from "./narrate.js";
import type { Scenario } from "./scenario.js";
import { formatSize } from "./size.js";
import { type ArchName, estimateModelBytes, SpecError, toScenarioSpec, type VariantName } from "./spec.js";

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

/** The teardown spec of one run: the scenario's for (variant, arch) with the run's options applied. */
function fullSpec(s: Scenario, variant: VariantName, arch: ArchName, opts: RunOptions): ScenarioSpec {
  return {
    ...toScenarioSpec(s, variant, arch),
    ...opts.override,
    events: opts.events,
    costProfile: opts.profile,
    progress: opts.progress,
  };
}

/** What the model refused, as the SpecError the CLI reports (exit 2); anything else unchanged. */
function refusal(e: unknown, full: ScenarioSpec, variant: VariantName, arch: ArchName): unknown {
  if (isSwapError(e) && e.code === "ENOSPC") {
    return new SpecError(
      `${arch}/${variant}: the model's swap (${formatSize(full.swap ?? 0)}) is too small for the swap-out the scenario asks for; set a larger "swap"`,
    );
  }
  if (isTeardownError(e)) {
    const hint =
      e.code === "ENOMEM"
        ? ` (the model has ${formatSize(full.memory)} of physical memory; set a larger "memory" in the scenario)`
        : "";
    return new SpecError(`${arch}/${variant}: the model refused the scenario: ${e.message}${hint}`);
  }
  return e;
}

/** `f()`, with what the model refuses thrown as SpecError. */
function modelCall<T>(full: ScenarioSpec, variant: VariantName, arch: ArchName, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw refusal(e, full, variant, arch);
  }
}

function output(s: Scenario, arch: ArchName, report: TeardownReport): RunOutput {
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

/** Runs a scenario's teardown for one variant on one arch. Throws SpecError for what cannot run. */
export function runOne(s: Scenario, variant: VariantName, arch: ArchName, opts: RunOptions = {}): RunOutput {
  const full = fullSpec(s, variant, arch, opts);
  return output(
    s,
    arch,
    modelCall(full, variant, arch, () => runScenario(full)),
  );
}

/** One (variant, arch) run of a scenario. */
export interface Cell {
  readonly variant: VariantName;
  readonly arch: ArchName;
}

/** What one cell's run of SharedBuilds may add to the shared options: its own progress and event sinks. */
export type CellOptions = Pick<RunOptions, "progress" | "events">;

/** The teardown spec of a cell, or null when the cell cannot run (its run throws the SpecError). */
function specOrNull(s: Scenario, c: Cell, opts: RunOptions): ScenarioSpec | null {
  try {
    return fullSpec(s, c.variant, c.arch, opts);
  } catch {
    return null;
  }
}

/**
 * The cells of one scenario split by build, in the order of each group's first cell, each group in
 * the cells' order: the cells of a group share one build (`sharesBuild` with the group's first), so
 * SharedBuilds over the group builds the workload once. A cell that cannot run is a group of its own.
 * The sweep sends each group to one worker thread (or queue worker) as one task.
 */
export function buildGroups<C extends Cell>(
  s: Scenario,
  cells: readonly C[],
  opts: Omit<RunOptions, "progress" | "events"> = {},
): C[][] {
  const groups: { spec: ScenarioSpec | null; cells: C[] }[] = [];
  for (const c of cells) {
    const spec = specOrNull(s, c, opts);
    const g = spec === null ? undefined : groups.find((x) => x.spec !== null && sharesBuild(x.spec, spec));
    if (g === undefined) groups.push({ spec, cells: [c] });
    else g.cells.push(c);
  }
  return groups.map((g) => g.cells);
}

/**
 * Copies of the model that fit `limitBytes` at once when `threads` runs (pool threads, each with its
 * SharedBuilds) go on side by side: the limit over threads × the scenario's estimated bytes. SharedBuilds
 * shares a build only with 2 or more (the build and a working copy).
 */
export function modelCopies(limitBytes: number, s: Scenario, threads = 1): number {
  return Math.floor(limitBytes / (Math.max(1, threads) * Math.max(1, estimateModelBytes(s))));
}

/**
 * Runs the cells of one scenario, in their order, building the workload once for the cells whose
 * builds are the same (`sharesBuild`: every design, and arches whose page tables and set_ptes agree)
 * and running each on an exact copy of it (`cloneBuilt`; the last cell of a build runs on the build
 * itself). Each `run` returns what `runOne(s, variant, arch, { ...opts, ...cell })` would; a build's
 * progress is reported to the cell that builds it. `copies` bounds the copies of the model held at
 * once (`modelCopies`: the memory limit over the scenario's estimated bytes): a build is kept for
 * later cells only while it and a working copy fit, and below 2 every cell builds its own, as `runOne`
 * does. `builds` counts the workloads built.
 */
export class SharedBuilds {
  private readonly bases: BuiltScenario[] = [];
  /** The working copy of `from`, reused (copied into) by the next cell of that build on its arch. */
  private work: { readonly built: BuiltScenario; readonly from: BuiltScenario } | null = null;
  private next = 0;
  private built = 0;
  private readonly s: Scenario;
  private readonly cells: readonly Cell[];
  private readonly opts: RunOptions;
  private readonly copies: number;

  constructor(
    s: Scenario,
    cells: readonly Cell[],
    opts: Omit<RunOptions, "progress" | "events">,
    copies: number,
  ) {
    this.s = s;
    this.cells = cells;
    this.opts = opts;
    this.copies = copies;
  }

  /** Workloads built so far, a build the model refused included (one per cell when nothing is shared). */
  get builds(): number {
    return this.built;
  }

  private drop(b: BuiltScenario): void {
    const i = this.bases.indexOf(b);
    if (i >= 0) this.bases.splice(i, 1);
    if (this.work?.from === b) this.work = null;
  }

  /** Runs cell (variant, arch), the next of the cells or a later one (cells skipped are not run). */
  run(variant: VariantName, arch: ArchName, cell: CellOptions = {}): RunOutput {
    let i = this.next;
    while (i < this.cells.length && (this.cells[i].variant !== variant || this.cells[i].arch !== arch)) i++;
    if (i === this.cells.length)
      throw new Error(`cell ${variant}/${arch} is not one of the cells left to run`);
    this.next = i + 1;
    const full = fullSpec(this.s, variant, arch, { ...this.opts, ...cell });
    if (this.copies < 2) {
      this.built++;
      return output(
        this.s,
        arch,
        modelCall(full, variant, arch, () => runScenario(full)),
      );
    }
    let base = this.bases.find((b) => sharesBuild(b.spec, full));
    if (base === undefined) {
      // Room for this build and a working copy: older builds go first.
      while (this.bases.length > 0 && this.bases.length + 2 > this.copies) this.drop(this.bases[0]);
      this.built++;
      base = modelCall(full, variant, arch, () => buildScenario(full));
      this.bases.push(base);
    }
    const from = base;
    const later = this.cells.slice(i + 1).some((c) => {
      const spec = specOrNull(this.s, c, this.opts);
      return spec !== null && sharesBuild(from.spec, spec);
    });
    let b: BuiltScenario;
    if (!later && from.machine.arch === full.arch) {
      b = from;
      this.drop(from);
    } else {
      const w = this.work;
      const into = w !== null && w.from === from && w.built.machine.arch === full.arch ? w.built : undefined;
      // A copy the model refused half-way is not copied into again.
      if (into !== undefined) this.work = null;
      b = modelCall(full, variant, arch, () => cloneBuilt(from, full, into));
      this.work = { built: b, from };
      if (!later) this.drop(from);
    }
    try {
      return output(
        this.s,
        arch,
        modelCall(full, variant, arch, () => runBuilt(b, full)),
      );
    } catch (e) {
      // A run the model refused half-way leaves its copy as it stopped: the next cell makes a new one.
      if (this.work?.built === b) this.work = null;
      throw e;
    }
  }
}
