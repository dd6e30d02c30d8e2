#!/usr/bin/env node
// teardown-lab: compare mmu_gather designs on the same teardown from the command line.
// Exit codes: 0 no violation, 1 the checker found a violation, 2 bad input.
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, freemem, totalmem } from "node:os";
import {
  HOST_FOLIOS,
  HOST_OPS,
  HostError,
  type HostFolio,
  type HostOp,
  measure,
  readSmaps,
  replay,
  type SmapsVma,
  ThpSettings,
} from "@mmgather/host";
import { type CostProfile, NR_PAGES_KERNELS } from "@mmgather/mmu-gather";
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { bpftraceProgram, CountsFileError, compareCounts, formatCounts, parseCounts } from "./bpftrace.js";
import { BROKEN, BROKEN_NAMES } from "./broken.js";
import {
  CALIBRATION_TABLES,
  type CalibrationTable,
  designRatios,
  type FidelityRow,
  fidelity,
  fit,
  formatFidelity,
  loadTable,
} from "./calibrate.js";
import { CalibrationFileError, loadTableFile, resolveProfile } from "./calibration-files.js";
import { scanProcess, scenarioFromSmaps } from "./capture.js";
import {
  addTally,
  type CaseFailure,
  DIFFERENTIAL_CHUNK,
  DifferentialError,
  type DifferentialReply,
  type DifferentialSummary,
  type DifferentialTask,
  differentialBrokenNames,
  differentialDesigns,
  emptyTally,
  formatDifferential,
  runCase,
} from "./differential.js";
import { explainBroken, explainVariant, tinyScenario } from "./explain.js";
import { type ExploreOutput, exploreBroken, exploreScenario } from "./explore.js";
import {
  breakdownTable,
  exitStatus,
  foldedStacks,
  type RunResult,
  toCsv,
  toTable,
  verdict,
  withoutTiming,
} from "./format.js";
import {
  formatMeasured,
  formatReplay,
  formatValidate,
  replayOf,
  toCalibrationTable,
  validateHost,
} from "./host.js";
import { applyOverrides, PRESET_NAMES, PRESETS, type PresetOptions } from "./presets.js";
import { PROFILE_NAMES, PROFILES } from "./profiles.js";
import type { Progress } from "./progress.js";
import { isQueueError, parseQueueUrl, QueueError, type QueueUrl } from "./queue.js";
import { type FailedCell, runCampaign } from "./queue-client.js";
import { runWorker } from "./queue-worker.js";
import { buildGroups, modelCopies, runOne, SharedBuilds } from "./run.js";
import { type Scenario, ScenarioError, type ScenarioInput, validateScenario } from "./scenario.js";
import { readScenarioData } from "./scenario-file.js";
import { FOLIO_SIZES, folioOrder, formatSize, parseSize } from "./size.js";
import {
  ARCHES,
  type ArchName,
  archNotes,
  estimateModelBytes,
  mainVmaFolioSizes,
  SpecError,
  toScenarioSpec,
  VARIANTS,
  type VariantName,
} from "./spec.js";
import type {
  ExploreReply,
  ExploreTask,
  SweepCellReply,
  SweepCells,
  SweepReply,
  SweepTask,
} from "./sweep-worker.js";

/** Exit code for bad input. */
const BAD_INPUT = 2;

/** Fraction of os.totalmem() one run's estimated model bytes may use. */
export const MEMORY_LIMIT_FRACTION = 0.5;

class UsageError extends Error {}

const OPS = ["exit", "munmap", "dontneed"] as const;
type OpName = (typeof OPS)[number];

function folioArg(v: string): string {
  const b = parseSize(v);
  if (b === null || folioOrder(b) === null || b > 2 * 1024 * 1024) {
    throw new InvalidArgumentError(`expected a folio size, one of ${FOLIO_SIZES.join(", ")}`);
  }
  return formatSize(b);
}

function sizeArg(v: string): string {
  const b = parseSize(v);
  if (b === null || b <= 0 || b % 4096 !== 0) {
    throw new InvalidArgumentError('expected a non-zero multiple of 4K such as "64M" or "1G"');
  }
  return formatSize(b);
}

function intArg(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

function listArg<T extends string>(allowed: readonly T[], what: string) {
  return (v: string): T[] => {
    const items = v.split(",").map((x) => x.trim());
    for (const x of items) {
      if (!(allowed as readonly string[]).includes(x)) {
        throw new InvalidArgumentError(`"${x}" is not a ${what}; expected one of ${allowed.join(", ")}`);
      }
    }
    return items as T[];
  };
}

function idArg(v: string): string {
  if (!/^[0-9a-f]{8}$/.test(v))
    throw new InvalidArgumentError("expected the 8 hex digits the first run printed (e.g. 3fa9c2d1)");
  return v;
}

interface CommonOpts {
  preset?: string;
  folio?: string;
  pmd?: boolean;
  size?: string;
  op?: OpName;
  cpus?: number;
  devices?: number;
  seed?: number;
  kernel?: "6.9" | "6.18";
  json?: boolean;
  csv?: boolean;
  progress?: boolean;
  memoryLimit?: string;
  profile?: string;
  /**
   * False with --no-timing: omit every wall-clock field; true with --timing: also show the simulator's
   * wall time in the table (the JSON and CSV carry it unless --no-timing).
   */
  timing?: boolean;
  /** --timing given on the command line (the default `timing: true` comes from --no-timing's definition). */
  showTiming?: boolean;
  /** --exact: every digit of every count in the table. */
  exact?: boolean;
  /** --breakdown: the per-term table after the side-by-side one. */
  breakdown?: boolean;
  /** --folded FILE: write folded stacks of the estimate there. */
  folded?: string;
}

function presetOptions(o: CommonOpts, folio?: string, op?: OpName): PresetOptions {
  return {
    folio: folio ?? o.folio,
    pmd: o.pmd,
    size: o.size,
    op: op ?? o.op,
    cpus: o.cpus,
    devices: o.devices,
    seed: o.seed,
    kernel: o.kernel,
  };
}

/** The scenario a command works on: a file, or a preset (overrides applied to either). */
function loadScenario(file: string | undefined, o: CommonOpts, folio?: string, op?: OpName): Scenario {
  const po = presetOptions(o, folio, op);
  if (file !== undefined && o.preset !== undefined) {
    throw new UsageError("give either a SCENARIO_FILE or --preset, not both");
  }
  if (file !== undefined) return validateScenario(applyOverrides(readScenarioData(file), po), file);
  if (o.preset === undefined) {
    throw new UsageError(`give a SCENARIO_FILE or --preset NAME (presets: ${PRESET_NAMES.join(", ")})`);
  }
  const p = Object.hasOwn(PRESETS, o.preset) ? PRESETS[o.preset] : undefined;
  if (p === undefined) {
    throw new UsageError(`unknown preset "${o.preset}"; expected one of ${PRESET_NAMES.join(", ")}`);
  }
  const built = p.build(po);
  return validateScenario(
    {
      ...built,
      ...(po.kernel === undefined ? {} : { kernel: po.kernel }),
      ...(po.devices === undefined ? {} : { devices: po.devices }),
    },
    `preset ${o.preset}`,
  );
}

/** The limit model bytes are checked against: --memory-limit, else MEMORY_LIMIT_FRACTION × totalmem. */
function memoryLimit(o: CommonOpts): { bytes: number; why: string } {
  if (o.memoryLimit !== undefined) {
    return { bytes: parseSize(o.memoryLimit)!, why: `--memory-limit ${o.memoryLimit}` };
  }
  const total = totalmem();
  return {
    bytes: Math.floor(total * MEMORY_LIMIT_FRACTION),
    why: `${MEMORY_LIMIT_FRACTION * 100}% of this machine's ${formatGiB(total)} (os.totalmem())`,
  };
}

function formatGiB(n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GiB` : `${(n / 1024 ** 2).toFixed(0)} MiB`;
}

function checkMemory(s: Scenario, o: CommonOpts): void {
  const est = estimateModelBytes(s);
  const lim = memoryLimit(o);
  if (est > lim.bytes) {
    throw new UsageError(
      `refusing to run ${s.name}: the model would need about ${formatGiB(est)}, more than the limit of ` +
        `${formatGiB(lim.bytes)} (${lim.why}); use a smaller --size or fewer/smaller VMAs`,
    );
  }
}

/** `--profile`: a built-in name or a profile file, read once per command. */
function profileOf(o: CommonOpts): CostProfile | undefined {
  return o.profile === undefined ? undefined : resolveProfile(o.profile);
}

function selected<T extends string>(v: T | "all" | undefined, all: readonly T[]): T[] {
  return v === undefined || v === "all" ? [...all] : [v];
}

/** The progress bar's constructor (cli-progress), loaded only when a bar is shown. */
async function progressBars(show: boolean): Promise<typeof import("./progress.js").createProgress | null> {
  return show ? (await import("./progress.js")).createProgress : null;
}

function wantProgress(o: CommonOpts): boolean {
  return o.progress === true || process.stderr.isTTY === true;
}

function output(all: readonly RunResult[], o: CommonOpts, extra: readonly string[] = []): string {
  const results = o.timing === false ? all.map(withoutTiming) : all;
  if (o.json) return `${JSON.stringify(results, null, 2)}\n`;
  if (o.csv) return toCsv(results, extra);
  const table = toTable(results, verdict(results), { exact: o.exact, timing: o.showTiming === true });
  return o.breakdown === true ? `${table}\n${breakdownTable(results)}` : table;
}

/** How the fitted profile's `ratioError` came about: the design ratios it was taken from. */
function designRatioLine(table: CalibrationTable, profile: CostProfile): string {
  const ratios = designRatios(table, profile);
  if (ratios.length === 0)
    return `Design-ratio error: no two designs measured on one workload; kept the priors' ±${(100 * profile.ratioError).toFixed(0)} %.`;
  const worst = ratios.reduce((a, b) => (b.error > a.error ? b : a));
  return (
    `Design-ratio error (ratioError, used to call ties): ±${(100 * profile.ratioError).toFixed(0)} % — the largest of ` +
    `${ratios.length} published design-to-design ratios, ${worst.id}: model ${worst.predicted.toFixed(3)}, ` +
    `published ${worst.published.toFixed(3)}.`
  );
}

/** Runs every (arch, variant) of one scenario; an arch the scenario can't run on is skipped when "all". */
function runMatrix(
  s: Scenario,
  variants: readonly VariantName[],
  arches: readonly ArchName[],
  explicitArch: boolean,
  progress: Progress | null,
  profile: CostProfile | undefined,
  copies: number,
): RunResult[] {
  const results: RunResult[] = [];
  const cells = arches.flatMap((arch) => variants.map((variant) => ({ variant, arch })));
  const runs = new SharedBuilds(s, cells, { profile }, copies);
  for (const arch of arches) {
    for (const note of archNotes(s, arch)) process.stderr.write(`note: ${note}\n`);
    try {
      for (const variant of variants) {
        const progressOf = progress?.phase(`${variant}/${arch}`);
        results.push(runs.run(variant, arch, { progress: progressOf }).result);
        progress?.tick(`${variant}/${arch}`);
      }
    } catch (e) {
      if (!(e instanceof SpecError) || explicitArch) throw e;
      process.stderr.write(`note: skipping ${arch}: ${e.message}\n`);
      for (let i = 0; i < variants.length; i++) progress?.tick(`${arch} skipped`);
    }
  }
  if (results.length === 0) throw new UsageError("nothing could run on the chosen arches");
  return results;
}

/** The options that pick and shape the scenario's main VMA (every command that loads a scenario). */
const shapeOptions = (cmd: Command): Command =>
  cmd
    .option("--preset <name>", `built-in scenario (${PRESET_NAMES.join(", ")})`)
    .option("--folio <size>", `folio size of the main VMA: ${FOLIO_SIZES.join(", ")}`, folioArg)
    .option("--pmd", "map PMD-sized folios with a PMD (default: PTE-mapped)")
    .option("--size <size>", "size of the main VMA (e.g. 64M, 1G)", sizeArg);

const commonOptions = (cmd: Command): Command =>
  shapeOptions(cmd)
    .option("--cpus <n>", "CPUs running threads of the process", intArg(0, 64))
    .option(
      "--devices <n>",
      "devices sharing the process's page tables through their IOMMU (SVA), each with its own TLB; needs --cpus ≥ 1",
      intArg(0, 8),
    )
    .option("--seed <n>", "seed for every random choice", intArg(0, 2 ** 32 - 1))
    .addOption(
      new Option(
        "--kernel <version>",
        "kernel whose rules the encoded-nr-pages design follows (default 6.18)",
      ).choices(NR_PAGES_KERNELS),
    )
    .option("--json", "print the documented JSON array")
    .option("--csv", "print CSV (the JSON fields flattened)")
    .option("--progress", "show progress on stderr even when it is not a terminal")
    .option("--no-timing", "omit the simulator's wall-clock time, so equal inputs give byte-identical output")
    .option(
      "--profile <name|file>",
      `cost profile of the estimate: ${PROFILE_NAMES.join(", ")}, or a profile file (calibrate --out); default: the arch's`,
    )
    .option(
      "--memory-limit <size>",
      `refuse runs whose estimated model memory exceeds this (default ${MEMORY_LIMIT_FRACTION * 100}% of RAM)`,
      sizeArg,
    );

/** `--queue URL` (and `--resume ID`, which needs it), checked before anything runs. */
function queueOf(o: { queue?: string; resume?: string }): QueueUrl | undefined {
  if (o.resume !== undefined && o.queue === undefined)
    throw new UsageError("--resume needs --queue (the Redis the cells were queued on)");
  return o.queue === undefined ? undefined : parseQueueUrl(o.queue);
}

const note = (line: string) => process.stderr.write(`note: ${line}\n`);

async function sweep(file: string | undefined, o: CommonOpts & SweepOpts): Promise<number> {
  const queue = queueOf(o);
  if (queue !== undefined && o.threads !== undefined)
    throw new UsageError(
      "--threads sizes the local pool; with --queue each worker has its own (worker --threads)",
    );
  // The default list leaves out what cannot exist: an anonymous main VMA has no order-1 (8K) folios.
  const folios = o.folios ?? mainVmaFolioSizes(loadScenario(file, o));
  const ops = o.ops ?? [undefined];
  const variants = o.variant === undefined || o.variant === "all" ? [...VARIANTS] : [o.variant];
  const arches = o.arch === undefined || o.arch === "all" ? [...ARCHES] : [o.arch];
  // A task is the cells of one scenario that share a build (buildGroups): its worker builds the
  // workload once and runs each design / arch on a copy (SharedBuilds). Cells keep the sweep's order.
  const tasks: SweepCells[] = [];
  const cells: { folio: string; pmd: boolean; variant: VariantName; arch: ArchName }[] = [];
  const profile = profileOf(o);
  for (const op of ops) {
    for (const folio of folios) {
      const s = loadScenario(file, o, folio, op);
      checkMemory(s, o);
      const point: { index: number; variant: VariantName; arch: ArchName }[] = [];
      for (const arch of arches) {
        for (const variant of variants) {
          point.push({ index: cells.length, variant, arch });
          cells.push({ folio, pmd: o.pmd === true, variant, arch });
        }
      }
      for (const group of buildGroups(s, point, { profile }))
        tasks.push({ index: tasks.length, scenario: s, cells: group, profile });
    }
  }
  const bars = await progressBars(wantProgress(o));
  const startProgress = () => bars?.(cells.length, "sweep") ?? null;
  const labelsOf = (t: SweepCells) => t.cells.map((c) => `${c.variant}/${c.arch}`);
  // Prints the rows (and notes); throws when tasks failed on the queue, after printing the other cells.
  const print = (
    replies: readonly (SweepReply | undefined)[],
    failed: readonly FailedCell[],
    id?: string,
  ) => {
    const byCell: (SweepCellReply | undefined)[] = new Array(cells.length);
    for (const r of replies) if (r !== undefined) for (const c of r.cells) byCell[c.index] = c;
    const results: (RunResult & { folio: string; pmd: boolean })[] = [];
    const skipped = new Set<string>();
    for (const r of byCell) {
      if (r === undefined) continue;
      if ("error" in r) {
        skipped.add(r.error);
        continue;
      }
      results.push({ folio: cells[r.index].folio, pmd: cells[r.index].pmd, ...r.result });
    }
    for (const why of skipped) process.stderr.write(`note: skipped: ${why}\n`);
    let failedCells = 0;
    for (const f of failed) {
      for (const c of tasks[f.index].cells) {
        failedCells++;
        note(
          `cell ${c.index} (${c.variant}/${c.arch}, folio ${cells[c.index].folio}) failed on the queue: ${f.reason}`,
        );
      }
    }
    if (results.length === 0 && failed.length === 0) throw new UsageError("no cell of the sweep could run");
    const shown = o.timing === false ? results.map(withoutTiming) : results;
    process.stdout.write(o.json ? `${JSON.stringify(shown, null, 2)}\n` : toCsv(shown, ["folio", "pmd"]));
    if (failed.length > 0)
      throw new QueueError(
        "CELL_FAILED",
        `${failedCells} of ${cells.length} cells failed on the queue (listed above; the others are printed): ` +
          `add --resume ${id} to the same command to run them again`,
      );
    return exitStatus(results);
  };
  if (queue === undefined) {
    const limit = memoryLimit(o).bytes;
    // Every core, as many as the models of the largest scenario fit the memory limit side by side.
    const fit = Math.min(...tasks.map((x) => modelCopies(limit, x.scenario)));
    const threads = o.threads ?? Math.max(1, Math.min(availableParallelism(), fit));
    const local = splitForThreads(tasks, threads).map(
      (t): SweepTask => ({ ...t, copies: modelCopies(limit, t.scenario, threads) }),
    );
    return print(await sweepLocally(local, threads, startProgress(), labelsOf), []);
  }
  return runCampaign<SweepReply, 0 | 1>(
    {
      url: queue,
      cells: { kind: "sweep", tasks },
      seedOf: (i) => tasks[i].scenario.seed,
      labelsOf: (i) => labelsOf(tasks[i]),
      resume: o.resume,
      startProgress,
      note,
    },
    (r) => {
      if (r.rerun > 0)
        note(
          `${r.rerun} time${r.rerun === 1 ? "" : "s"} a worker stopped answering mid-cell; the cell ran again on another`,
        );
      return print(r.replies, r.failed, r.id);
    },
  );
}

/**
 * The local sweep's tasks, with the largest split in halves (by cells, re-indexed) while there are
 * fewer tasks than threads, so every thread has work: a split builds the workload once per half.
 */
function splitForThreads(tasks: readonly SweepCells[], threads: number): SweepCells[] {
  const out = [...tasks];
  while (out.length < threads) {
    let big = 0;
    for (let i = 1; i < out.length; i++) if (out[i].cells.length > out[big].cells.length) big = i;
    const t = out[big];
    if (t === undefined || t.cells.length < 2) break;
    const half = Math.ceil(t.cells.length / 2);
    out.splice(big, 1, { ...t, cells: t.cells.slice(0, half) }, { ...t, cells: t.cells.slice(half) });
  }
  return out.map((t, index) => ({ ...t, index }));
}

/** Tasks on this machine's worker pool (dist/sweep-worker.js, function `name`), replies by index. */
async function runLocally<T extends { readonly index: number }, R>(
  tasks: readonly T[],
  name: string,
  threads: number,
  progress: Progress | null,
  labelsOf: (t: T) => readonly string[],
): Promise<R[]> {
  const { Tinypool } = await import("tinypool");
  const pool = new Tinypool({
    filename: new URL("./sweep-worker.js", import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
  });
  const replies: R[] = new Array(tasks.length);
  try {
    await Promise.all(
      tasks.map(async (t) => {
        replies[t.index] = (await pool.run(t, { name })) as R;
        for (const label of labelsOf(t)) progress?.tick(label);
      }),
    );
  } finally {
    progress?.stop();
    await pool.destroy();
  }
  return replies;
}

/** The sweep's tasks on this machine's worker pool, replies by index. */
function sweepLocally(
  tasks: readonly SweepTask[],
  threads: number,
  progress: Progress | null,
  labelsOf: (t: SweepTask) => readonly string[],
): Promise<SweepReply[]> {
  return runLocally<SweepTask, SweepReply>(tasks, "default", threads, progress, labelsOf);
}

interface DifferentialOpts {
  cases: number;
  seed: number;
  arch: ArchName | "all";
  broken?: string;
  json?: boolean;
  timing?: boolean;
  progress?: boolean;
  threads?: number;
  queue?: string;
  resume?: string;
}

const casesLabel = (t: DifferentialTask) => `cases ${t.first}–${t.first + t.count - 1}`;

/** `teardown-lab differential`: random cases (locally or on the queue), or one scenario file. */
async function differential(file: string | undefined, o: DifferentialOpts, cmd: Command): Promise<number> {
  const queue = queueOf(o);
  if (queue !== undefined && o.threads !== undefined)
    throw new UsageError(
      "--threads sizes the local pool; with --queue each worker has its own (worker --threads)",
    );
  const arches = selected(o.arch, ARCHES);
  const t0 = performance.now();
  const summarise = (
    source: string,
    ran: readonly ArchName[],
    designs: readonly string[],
    cases: number,
    refused: number,
    tally: DifferentialSummary["tally"],
    failures: readonly CaseFailure[],
  ): number => {
    const summary: DifferentialSummary = {
      source,
      seed: source === "random" ? o.seed : null,
      cases,
      arches: ran,
      designs,
      passed: cases - failures.length,
      refused,
      failed: failures.length,
      tally,
      elapsedMs: o.timing === false ? undefined : Math.round(performance.now() - t0),
      failures,
    };
    process.stdout.write(o.json ? `${JSON.stringify(summary, null, 2)}\n` : formatDifferential(summary));
    return failures.length > 0 ? 1 : 0;
  };

  if (file !== undefined) {
    for (const opt of ["cases", "seed"])
      if (cmd.getOptionValueSource(opt) === "cli")
        throw new UsageError(
          `--${opt} draws random cases; a SCENARIO_FILE is one case: give one or the other`,
        );
    if (queue !== undefined)
      throw new UsageError("--queue runs random cases on the workers; a SCENARIO_FILE runs here");
    const data = readScenarioData(file);
    const s = validateScenario(data, file);
    checkMemory(s, {});
    const ran: ArchName[] = [];
    const failures: CaseFailure[] = [];
    let refused = 0;
    const tally = emptyTally(arches);
    for (const arch of arches) {
      try {
        toScenarioSpec(s, "encoded-nr-pages", arch);
      } catch (e) {
        if (!(e instanceof SpecError) || o.arch !== "all") throw e;
        note(`skipping ${arch}: ${e.message}`);
        continue;
      }
      const out = runCase(ran.length, data as ScenarioInput, arch, tally, o.broken);
      ran.push(arch);
      if (out.refused) refused++;
      if (out.failure !== null) failures.push(out.failure);
    }
    if (ran.length === 0) throw new UsageError("nothing could run on the chosen arches");
    for (const a of arches) if (!ran.includes(a)) delete tally.arch[a];
    const designs = differentialDesigns(s.kernel, o.broken).map((d) => d.name);
    return summarise(file, ran, designs, ran.length, refused, tally, failures);
  }

  const designs = differentialDesigns("6.18", o.broken).map((d) => d.name);
  const threads = o.threads ?? availableParallelism();
  // Locally: chunks small enough to keep every thread busy; on the queue: always DIFFERENTIAL_CHUNK, so
  // `--resume` finds the same jobs whatever machine it runs on.
  const chunk =
    queue === undefined
      ? Math.max(1, Math.min(DIFFERENTIAL_CHUNK, Math.ceil(o.cases / (4 * threads))))
      : DIFFERENTIAL_CHUNK;
  const tasks: DifferentialTask[] = [];
  for (let first = 0; first < o.cases; first += chunk)
    tasks.push({
      index: tasks.length,
      seed: o.seed,
      first,
      count: Math.min(chunk, o.cases - first),
      arches,
      ...(o.broken === undefined ? {} : { broken: o.broken }),
    });
  const bars = await progressBars(wantProgress(o));
  const startProgress = () => bars?.(tasks.length, "differential") ?? null;
  const print = (replies: readonly (DifferentialReply | undefined)[]): number => {
    const tally = emptyTally(arches);
    const failures: CaseFailure[] = [];
    let refused = 0;
    for (const r of replies) {
      if (r === undefined) continue;
      if ("error" in r) throw new Error(`chunk ${r.index} of the differential run stopped: ${r.error}`);
      addTally(tally, r.tally);
      refused += r.refused;
      failures.push(...r.failures);
    }
    return summarise("random", arches, designs, o.cases, refused, tally, failures);
  };
  if (queue === undefined)
    return print(
      await runLocally<DifferentialTask, DifferentialReply>(
        tasks,
        "differentialTask",
        threads,
        startProgress(),
        (t) => [casesLabel(t)],
      ),
    );
  return runCampaign<DifferentialReply, number>(
    {
      url: queue,
      cells: { kind: "differential", tasks },
      seedOf: () => o.seed,
      labelsOf: (i) => [casesLabel(tasks[i])],
      resume: o.resume,
      startProgress,
      note,
    },
    (r) => {
      if (r.rerun > 0)
        note(
          `${r.rerun} time${r.rerun === 1 ? "" : "s"} a worker stopped answering mid-chunk; the chunk ran again on another`,
        );
      if (r.failed.length > 0)
        throw new QueueError(
          "CELL_FAILED",
          `${r.failed.length} of ${tasks.length} chunks failed on the queue (chunk ${r.failed[0].index}: ` +
            `${r.failed[0].reason}); add --resume ${r.id} to the same command to run them again`,
        );
      return print(r.replies);
    },
  );
}

interface SweepOpts {
  folios?: string[];
  ops?: OpName[];
  variant?: VariantName | "all";
  arch?: ArchName | "all";
  threads?: number;
  /** --queue URL: run the cells as jobs on this Redis (teardown-lab worker runs them). */
  queue?: string;
  /** --resume ID: collect an earlier `--queue` run's cells. */
  resume?: string;
}

export function makeProgram(setExit: (code: number) => void): Command {
  const program = new Command("teardown-lab")
    .description(
      "Compare Linux mmu_gather designs on the same process teardown (exit / munmap / MADV_DONTNEED).",
    )
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  commonOptions(
    program
      .command("run")
      .description("run one scenario under every variant (and arch) and compare them side by side")
      .argument("[SCENARIO_FILE]", "scenario file (JSON or YAML)"),
  )
    .addOption(new Option("--op <op>", "operation").choices(OPS))
    .addOption(new Option("--variant <name>", "gather variant").choices([...VARIANTS, "all"]).default("all"))
    .addOption(new Option("--arch <name>", "arch adapter").choices([...ARCHES, "all"]).default("generic"))
    .option(
      "--timing",
      "show the simulator's own wall time in the table too (the first design run pays the JIT's warm-up)",
    )
    .option("--exact", "print every digit of every count in the table (262,144 instead of 262.1k)")
    .option("--breakdown", "after the table, the estimated time of each design by phase and cost term")
    .option(
      "--folded <file>",
      "write the estimate as folded stacks (arch/design;phase;term ns) for flamegraph tools and speedscope",
    )
    .action(
      async (
        file: string | undefined,
        o: CommonOpts & { variant: VariantName | "all"; arch: ArchName | "all" },
        cmd: Command,
      ) => {
        if (o.json && o.csv) throw new UsageError("--json and --csv exclude each other");
        o.showTiming = o.timing === true && cmd.getOptionValueSource("timing") === "cli";
        const s = loadScenario(file, o);
        checkMemory(s, o);
        const variants = selected(o.variant, VARIANTS);
        const arches = selected(o.arch, ARCHES);
        const bars = await progressBars(wantProgress(o));
        const progress = bars?.(variants.length * arches.length, s.name) ?? null;
        let results: RunResult[];
        try {
          // Copies of the model that fit the memory limit at once: one build shared by the designs
          // (and arches) and a working copy need two.
          const copies = modelCopies(memoryLimit(o).bytes, s);
          results = runMatrix(s, variants, arches, o.arch !== "all", progress, profileOf(o), copies);
        } finally {
          progress?.stop();
        }
        if (o.folded !== undefined) writeFileSync(o.folded, foldedStacks(results));
        process.stdout.write(output(results, o));
        setExit(exitStatus(results));
      },
    );

  commonOptions(
    program
      .command("sweep")
      .description("folio sizes × variants × arches (× ops) on a worker pool; CSV (default) or JSON")
      .argument("[SCENARIO_FILE]", "scenario file (JSON or YAML)"),
  )
    .option(
      "--folios <list>",
      `folio sizes, comma-separated (default ${FOLIO_SIZES.join(",")})`,
      (v: string) => v.split(",").map((x) => folioArg(x.trim())),
    )
    .option(
      "--ops <list>",
      `operations, comma-separated (default: the scenario's)`,
      listArg(OPS, "operation"),
    )
    .addOption(new Option("--variant <name>", "gather variant").choices([...VARIANTS, "all"]).default("all"))
    .addOption(new Option("--arch <name>", "arch adapter").choices([...ARCHES, "all"]).default("all"))
    .option(
      "--threads <n>",
      "worker threads (default: one per core, fewer when the models would not fit the memory limit)",
      intArg(1, 64),
    )
    .option(
      "--queue <url>",
      "queue the cells on Redis (redis://HOST:PORT[/DB]) for teardown-lab worker to run",
    )
    .option("--resume <id>", "with --queue: collect the results of an earlier run of the same command", idArg)
    .action(async (file: string | undefined, o: CommonOpts & SweepOpts) => {
      if (o.json && o.csv) throw new UsageError("--json and --csv exclude each other");
      setExit(await sweep(file, o));
    });

  const scenarioOptions = (cmd: Command): Command =>
    shapeOptions(cmd.argument("[SCENARIO_FILE]", "scenario file (JSON or YAML)"))
      .addOption(new Option("--op <op>", "operation").choices(OPS))
      .option("--seed <n>", "seed for every random choice", intArg(0, 2 ** 32 - 1));

  scenarioOptions(
    program
      .command("bpftrace")
      .description(
        "write a bpftrace program counting, on a real kernel, the kernel functions the model counts during the scenario's operation",
      ),
  )
    .option("--out <file>", "write the program there (default: stdout)")
    .action((file: string | undefined, o: CommonOpts & { out?: string }) => {
      const text = bpftraceProgram(loadScenario(file, o));
      if (o.out === undefined) process.stdout.write(text);
      else writeFileSync(o.out, text);
    });

  scenarioOptions(
    program
      .command("compare-counts")
      .description("read a teardown-lab bpftrace program's output and print it next to the model's counters")
      .requiredOption("--counts <file>", "bpftrace's output (the @calls and @windows lines)"),
  )
    .addOption(
      new Option("--variant <name>", "design whose counters to compare")
        .choices(VARIANTS)
        .default("encoded-nr-pages"),
    )
    .option("--json", "print the rows as JSON")
    .action((file: string | undefined, o: CommonOpts & { counts: string; variant: VariantName }) => {
      let text: string;
      try {
        text = readFileSync(o.counts, "utf8");
      } catch (e) {
        throw new CountsFileError(`${o.counts}: cannot read it (${(e as NodeJS.ErrnoException).code ?? e})`);
      }
      const k = parseCounts(text, o.counts);
      const s = loadScenario(file, o);
      const model = runOne(s, o.variant, "generic").result.counters;
      const rows = compareCounts(k, model);
      if (o.json) process.stdout.write(`${JSON.stringify({ windows: k.windows, rows }, null, 2)}\n`);
      else process.stdout.write(`${formatCounts(rows, k.windows, o.variant)}\n`);
    });

  program
    .command("explain")
    .description("narrate a tiny teardown step by step, per variant; or show a broken variant caught")
    .addOption(new Option("--variant <name>", "gather variant").choices([...VARIANTS, "all"]).default("all"))
    .addOption(new Option("--arch <name>", "arch adapter").choices([...ARCHES]).default("generic"))
    .addOption(new Option("--broken <name>", "run a deliberately broken variant").choices(BROKEN_NAMES))
    .option("--verbose", "also show page-table lock and cond_resched events")
    .action((o: { variant: VariantName | "all"; arch: ArchName; broken?: string; verbose?: boolean }) => {
      if (o.broken !== undefined) {
        const out = explainBroken(o.broken, o.arch);
        process.stdout.write(`${out.text}\n`);
        setExit(out.violations > 0 ? 1 : 0);
        return;
      }
      const s = tinyScenario();
      const parts = [
        `Scenario: ${s.description}.`,
        "Each line is one event of the teardown, in the order the model (and the kernel) does it.",
        "",
      ];
      let violations = 0;
      for (const variant of selected(o.variant, VARIANTS)) {
        const out = explainVariant(s, variant, o.arch, o.verbose === true);
        parts.push(out.text, "");
        violations += out.violations;
      }
      parts.push(
        `Deliberately broken variants (teardown-lab explain --broken NAME): ${BROKEN_NAMES.join(", ")}.`,
      );
      process.stdout.write(`${parts.join("\n")}\n`);
      setExit(violations > 0 ? 1 : 0);
    });

  commonOptions(
    program
      .command("explore")
      .description(
        "run every interleaving of a scenario's two racing threads up to a preemption bound; print how many " +
          "ran and the shortest failing one with its trail",
      )
      .argument("[SCENARIO_FILE]", "scenario file (JSON or YAML) with a concurrentOp"),
  )
    .addOption(new Option("--variant <name>", "gather variant").choices([...VARIANTS, "all"]).default("all"))
    .addOption(new Option("--arch <name>", "arch adapter").choices([...ARCHES]).default("generic"))
    .option("--bound <n>", "most preemptions per interleaving", intArg(0, 8), 2)
    .option("--max <n>", "stop after this many interleavings", intArg(1, 10_000_000), 20_000)
    .addOption(
      new Option(
        "--broken <name>",
        "explore a deliberately broken variant's scenario, then the real design's",
      ).choices(BROKEN_NAMES),
    )
    .option("--queue <url>", "run each design's exploration as a job on Redis (redis://HOST:PORT[/DB])")
    .option("--resume <id>", "with --queue: collect the results of an earlier run of the same command", idArg)
    .action(
      async (
        file: string | undefined,
        o: CommonOpts & {
          variant: VariantName | "all";
          arch: ArchName;
          bound: number;
          max: number;
          broken?: string;
          queue?: string;
          resume?: string;
        },
      ) => {
        if (o.csv) throw new UsageError("explore prints text or --json, not CSV");
        const queue = queueOf(o);
        const bars = await progressBars(wantProgress(o));
        const timing = o.timing !== false;
        const tasks: ExploreTask[] = [];
        if (o.broken !== undefined) {
          if (file !== undefined || o.preset !== undefined)
            throw new UsageError("--broken brings its own scenario: give no SCENARIO_FILE or --preset");
          tasks.push({ index: 0, broken: o.broken, arch: o.arch, bound: o.bound, max: o.max, timing });
        } else {
          const s = loadScenario(file, o);
          checkMemory(s, o);
          for (const variant of selected(o.variant, VARIANTS))
            tasks.push({
              index: tasks.length,
              scenario: s,
              variant,
              arch: o.arch,
              bound: o.bound,
              max: o.max,
              timing,
            });
        }
        const print = (outs: readonly ExploreOutput[]) => {
          const shown =
            o.timing === false
              ? outs.map((x) => ({ ...x.json, elapsedMs: undefined }))
              : outs.map((x) => x.json);
          process.stdout.write(
            o.json ? `${JSON.stringify(shown, null, 2)}\n` : `${outs.map((x) => x.text).join("\n\n")}\n`,
          );
          setExit(outs.some((x) => x.json.failing > 0) ? 1 : 0);
        };
        if (queue === undefined) {
          print(
            tasks.flatMap((t) =>
              t.broken !== undefined
                ? exploreBroken(t.broken, t.arch, t.bound, t.max, t.timing)
                : [
                    exploreScenario({
                      scenario: t.scenario!,
                      variant: t.variant!,
                      arch: t.arch,
                      bound: t.bound,
                      max: t.max,
                      timing: t.timing,
                    }),
                  ],
            ),
          );
          return;
        }
        // What the local command would refuse (the scenario cannot run on the arch) is refused here too.
        for (const t of tasks) if (t.scenario !== undefined) toScenarioSpec(t.scenario, t.variant!, t.arch);
        await runCampaign<ExploreReply, void>(
          {
            url: queue,
            cells: { kind: "explore", tasks },
            seedOf: (i) =>
              tasks[i].scenario?.seed ?? BROKEN[o.broken!].scenario(BROKEN[o.broken!].seeds[0]).seed,
            labelsOf: (i) => [tasks[i].variant ?? tasks[i].broken!],
            resume: o.resume,
            startProgress: () => bars?.(tasks.length, "explore") ?? null,
            note,
          },
          (r) => {
            if (r.failed.length > 0)
              throw new QueueError(
                "CELL_FAILED",
                `the exploration of ${tasks[r.failed[0].index].variant ?? o.broken} failed on the queue: ` +
                  `${r.failed[0].reason}; add --resume ${r.id} to the same command to run it again`,
              );
            print(
              r.replies.flatMap((x) => {
                if (x === undefined || !("error" in x)) return x?.outputs ?? [];
                if (x.input) throw new UsageError(x.error);
                throw new QueueError("CELL_FAILED", `the exploration failed on its worker: ${x.error}`);
              }),
            );
          },
        );
      },
    );

  program
    .command("differential")
    .description(
      "run random workloads with every actor on the three designs: their final states must agree and no " +
        "checker may fire; or re-run one case from its scenario file",
    )
    .argument("[SCENARIO_FILE]", "a failing case's scenario (as printed), run on the --arch adapters")
    .option("--cases <n>", "random cases to run", intArg(1, 100_000_000), 1000)
    .option(
      "--seed <n>",
      "seed of the run: case i of seed S is always the same workload",
      intArg(0, 2 ** 32 - 1),
      1,
    )
    .addOption(
      new Option("--arch <name>", "arch adapter the cases are drawn on (all: each case on one of them)")
        .choices([...ARCHES, "all"])
        .default("all"),
    )
    .addOption(
      new Option(
        "--broken <name>",
        "a deliberately broken design in place of encoded-nr-pages: the run must then fail",
      ).choices(differentialBrokenNames()),
    )
    .option("--json", "print the summary as JSON")
    .option("--no-timing", "omit the elapsed time, so equal inputs give byte-identical output")
    .option("--progress", "show progress on stderr even when it is not a terminal")
    .option("--threads <n>", "worker threads (default: one per core)", intArg(1, 256))
    .option(
      "--queue <url>",
      "run the cases as jobs on Redis (redis://HOST:PORT[/DB]) for teardown-lab worker",
    )
    .option("--resume <id>", "with --queue: collect the results of an earlier run of the same command", idArg)
    .action(async (file: string | undefined, o: DifferentialOpts, cmd: Command) => {
      setExit(await differential(file, o, cmd));
    });

  program
    .command("calibrate")
    .description(
      "fit a cost profile's free terms to a measurement table: a built-in one or your own (NNLS; see README)",
    )
    .addArgument(new Argument("[table]", "built-in table").choices([...CALIBRATION_TABLES]))
    .option("--table <file>", "your measurement table (the format of calibration/*.json)")
    .option("--out <file>", "write the fitted profile there (use it with --profile FILE)")
    .option("--json", "print the fitted profile as JSON only")
    .action((name: string | undefined, o: { json?: boolean; table?: string; out?: string }) => {
      if ((name === undefined) === (o.table === undefined))
        throw new UsageError("give either a built-in table name or --table FILE");
      const table = o.table === undefined ? loadTable(name!) : loadTableFile(o.table);
      const r = fit(table);
      if (o.out !== undefined) writeFileSync(o.out, `${JSON.stringify(r.profile, null, 2)}\n`);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(r.profile, null, 2)}\n`);
        return;
      }
      const lines = [
        `Calibration of ${table.profile} (${table.machine}): ${table.points.length} ${table.kind} points, ` +
          `${table.free.length} free terms, priors ${table.priors}, ridge λ = ${table.ridge}.`,
        `Source: ${table.source}`,
        "",
        "term              prior ns   fitted ns",
        ...Object.entries(r.fitted).map(
          ([k, v]) =>
            `${k.padEnd(16)}  ${v.prior.toFixed(2).padStart(8)}  ${v.fitted.toFixed(2).padStart(10)}`,
        ),
        "",
        r.undetermined.length === 0
          ? "Every free term is determined by the table."
          : `The table cannot determine: ${r.undetermined.map((u) => `${u.term} (${u.why})`).join("; ")}.`,
        `RMS residual of the fit: ${(100 * r.rms).toFixed(2)} % (${table.kind === "absolute" ? "relative error of the time" : "error of the change, percentage points"}).`,
        designRatioLine(table, r.profile),
        "Residuals per point (teardown-lab fidelity prints every published point):",
        formatFidelity(fidelity(table, r.profile)),
        "",
        o.out !== undefined
          ? `Fitted profile written to ${o.out} (run, sweep and fidelity take it with --profile ${o.out}).`
          : "Fitted profile (built-in tables: committed in the arch package):",
        ...(o.out !== undefined ? [] : [JSON.stringify(r.profile, null, 2)]),
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
    });

  program
    .command("fidelity")
    .description("every measured point: the model's prediction, the measured value and the error")
    .option("--table <file>", "your measurement table instead of the built-in ones")
    .option("--profile <name|file>", "the profile to predict with (default: each built-in table's own)")
    .addOption(
      new Option(
        "--arch <name>",
        "the adapter the model runs each point on; all: every adapter side by side (those whose PMD the points' folios fit)",
      )
        .choices([...ARCHES, "all"])
        .default("generic"),
    )
    .option("--json", "print the rows as JSON")
    .action((o: { json?: boolean; table?: string; profile?: string; arch: ArchName | "all" }) => {
      const profile = o.profile === undefined ? undefined : resolveProfile(o.profile);
      if (o.table !== undefined && profile === undefined)
        throw new UsageError("--table needs --profile (the profile to predict it with)");
      const tables =
        o.table !== undefined
          ? [{ table: loadTableFile(o.table), profile: profile! }]
          : CALIBRATION_TABLES.map((name) => ({
              table: loadTable(name),
              profile: profile ?? PROFILES[name],
            }));
      const rows: FidelityRow[] = [];
      for (const arch of selected(o.arch, ARCHES))
        for (const t of tables) {
          try {
            rows.push(...fidelity(t.table, t.profile, arch));
          } catch (e) {
            if (!(e instanceof SpecError) || o.arch !== "all") throw e;
            process.stderr.write(`note: ${t.table.profile} skipped on ${arch}: ${e.message}\n`);
          }
        }
      if (o.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else process.stdout.write(`${formatFidelity(rows)}\n`);
    });

  program
    .command("capture")
    .description("write a scenario that reproduces a running process's memory (from /proc/PID/smaps)")
    .argument("<pid>", "process id", intArg(1, 2 ** 22))
    .option("--out <file>", "write the scenario there (YAML; default: stdout)")
    .action(async (pid: number, o: { out?: string }) => {
      let vmas: SmapsVma[];
      try {
        vmas = readSmaps(pid);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new UsageError(
          code === "ENOENT"
            ? `no process ${pid} (or not on Linux: /proc/${pid}/smaps does not exist)`
            : `cannot read /proc/${pid}/smaps: ${(e as Error).message}`,
        );
      }
      const { scenario, notes } = scenarioFromSmaps(vmas, `pid-${pid}`, scanProcess(pid, vmas));
      validateScenario(scenario as unknown as Record<string, unknown>, `capture of ${pid}`);
      const { stringify } = await import("yaml");
      const text = `${notes.map((n) => `# note: ${n}`).join("\n")}\n${stringify(scenario)}`;
      for (const n of notes) process.stderr.write(`note: ${n}\n`);
      if (o.out === undefined) process.stdout.write(text);
      else writeFileSync(o.out, text);
    });

  const host = program
    .command("host")
    .description("measure the running kernel's teardown and check the model against it (Linux, root)");

  host
    .command("measure")
    .description(
      "time munmap / exit / MADV_DONTNEED / fork-shared / shmem / file-private teardown on this kernel per folio size",
    )
    .option(
      "--ops <list>",
      `operations, comma-separated (${HOST_OPS.join(", ")})`,
      listArg(HOST_OPS, "host operation"),
      [...HOST_OPS],
    )
    .option(
      "--folio <list>",
      `folio layouts (${HOST_FOLIOS.join(", ")}; 2M is PTE-mapped, 2M-pmd PMD-mapped)`,
      listArg(HOST_FOLIOS, "folio layout"),
      [...HOST_FOLIOS],
    )
    .option("--size <size>", "bytes per mapping", sizeArg, "1G")
    .option("--rounds <n>", "rounds per point (interleaved)", intArg(1, 99), 9)
    .option("--configure-thp", "set the mTHP sysfs knobs per folio size (restored on every exit path)")
    .option("--out <file>", "write the table (calibration format) there")
    .option("--json", "print the table as JSON")
    .option("--progress", "show a progress bar even when stderr is not a terminal")
    .action(
      async (o: {
        ops: HostOp[];
        folio: HostFolio[];
        size: string;
        rounds: number;
        configureThp?: boolean;
        out?: string;
        json?: boolean;
        progress?: boolean;
      }) => {
        if (process.platform !== "linux")
          throw new HostError("HOST_NOT_LINUX", `host measure needs Linux; this is ${process.platform}`);
        if (process.getuid?.() !== 0)
          throw new HostError(
            "HOST_NOT_ROOT",
            "host measure needs root: it checks every layout through /proc/PID/pagemap PFNs and " +
              "/proc/kpageflags (hidden from other users), and --configure-thp writes sysfs",
          );
        const bytes = parseSize(o.size)!;
        const thp = o.configureThp ? new ThpSettings() : undefined;
        let progress: Progress | null = null;
        const bars = await progressBars(o.progress === true || process.stderr.isTTY === true);
        const t = await measure({
          ops: o.ops,
          folios: o.folio,
          bytes,
          rounds: o.rounds,
          thp,
          progress: (done, total, label) => {
            if (o.progress !== true && process.stderr.isTTY !== true) return;
            if (bars === null) return;
            progress ??= bars(total, "host measure");
            progress.tick(label);
            if (done === total) progress.stop();
          },
        });
        const table = toCalibrationTable(t, thp !== undefined);
        if (o.out !== undefined) writeFileSync(o.out, `${JSON.stringify(table, null, 2)}\n`);
        if (o.json) process.stdout.write(`${JSON.stringify(table, null, 2)}\n`);
        else
          process.stdout.write(
            `${formatMeasured(table)}\n${o.out !== undefined ? `Table written to ${o.out} (host validate --table ${o.out}; calibrate --table ${o.out}).\n` : ""}`,
          );
      },
    );

  host
    .command("validate")
    .description("fit the munmap points of a measured table, predict every other point, print the errors")
    .requiredOption("--table <file>", "a table written by host measure --out")
    .option("--json", "print the rows as JSON")
    .action((o: { table: string; json?: boolean }) => {
      const table = loadTableFile(o.table);
      if (table.kind !== "absolute" || !table.points.some((p) => p.hostOp === "munmap"))
        throw new UsageError(`${o.table} has no measured munmap points (write one with host measure --out)`);
      const v = validateHost(table);
      if (o.json)
        process.stdout.write(
          `${JSON.stringify({ fitted: v.fit.fitted, rows: v.rows, medianHeldOut: v.medianHeldOut, worstHeldOut: v.worstHeldOut, excluded: v.excluded }, null, 2)}\n`,
        );
      else process.stdout.write(`${formatValidate(v)}\n`);
    });

  host
    .command("replay")
    .description(
      "build a scenario's layout in a real child process, time its exit / munmap / MADV_DONTNEED, print it next to the prediction",
    )
    .argument("[scenario]", "scenario file (JSON or YAML), or use --preset")
    .option("--preset <name>", `built-in scenario (${PRESET_NAMES.join(", ")})`)
    .option("--folio <size>", "folio size of the main VMA", folioArg)
    .option("--pmd", "map PMD-sized folios with a PMD")
    .option("--size <size>", "size of the main VMA", sizeArg)
    .addOption(new Option("--op <op>", "operation").choices(OPS))
    .option("--rounds <n>", "rounds (interleaved with the exit baseline)", intArg(1, 99), 5)
    .option("--configure-thp", "set the mTHP knobs per mapping while it is faulted in (root; restored)")
    .option(
      "--profile <name|file>",
      `cost profile of the prediction: ${PROFILE_NAMES.join(", ")}, or a profile file (calibrate --out)`,
      "default-priors",
    )
    .option("--json", "print measured, predicted and the notes as JSON")
    .action(
      async (
        file: string | undefined,
        o: CommonOpts & { rounds: number; configureThp?: boolean; profile: string },
      ) => {
        const s = loadScenario(file, o);
        const profile = resolveProfile(o.profile);
        const { config, expect, notes } = replayOf(s);
        const total = config.mappings.reduce((a, m) => a + m.bytes, 0);
        if (total > 0.5 * freemem())
          throw new UsageError(
            `the scenario maps ${formatSize(total)}; this machine has ${formatSize(Math.floor(freemem() / 4096) * 4096)} free (at most half of it is used)`,
          );
        const thp = o.configureThp ? new ThpSettings() : undefined;
        const r = await replay({ config, rounds: o.rounds, thp });
        const predicted = VARIANTS.map((variant) => ({
          variant,
          ms: runOne(s, variant, "generic", { profile }).result.estimatedNs / 1e6,
        }));
        if (o.json)
          process.stdout.write(
            `${JSON.stringify({ scenario: s.name, op: s.op.kind, measured: r.seconds, baseline: r.baseline, layouts: r.layouts, predicted, profile: profile.name, notReproduced: notes }, null, 2)}\n`,
          );
        else process.stdout.write(`${formatReplay(s, r, expect, predicted, profile.name, notes)}\n`);
      },
    );

  program
    .command("worker")
    .description(
      "run the sweep cells, explorations and differential chunks queued on Redis (sweep, explore and " +
        "differential --queue) on this " +
        "machine's cores, until SIGINT or SIGTERM",
    )
    .requiredOption("--queue <url>", "the Redis the jobs are queued on: redis://HOST:PORT[/DB]")
    .option(
      "--threads <n>",
      "jobs run at once, each on a pool thread (default: one per core)",
      intArg(1, 256),
    )
    .option(
      "--stall-timeout <s>",
      "seconds a job's lock lasts unrenewed: a killed worker's job goes to another worker within about twice that",
      intArg(1, 3600),
      30,
    )
    .option("--verbose", "a line per job started and finished")
    .action(async (o: { queue: string; threads?: number; stallTimeout: number; verbose?: boolean }) => {
      const url = parseQueueUrl(o.queue);
      await runWorker({
        url,
        threads: o.threads ?? availableParallelism(),
        memoryLimitBytes: Math.floor(totalmem() * MEMORY_LIMIT_FRACTION),
        stallTimeoutMs: o.stallTimeout * 1000,
        verbose: o.verbose === true,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      setExit(0);
    });

  program
    .command("presets")
    .description("list the built-in scenarios")
    .option("--json", "print them as JSON (name, summary, scenario with default options)")
    .action((o: { json?: boolean }) => {
      if (o.json) {
        const list = PRESET_NAMES.map((name) => ({
          name,
          summary: PRESETS[name].summary,
          scenario: PRESETS[name].build({}),
        }));
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      const w = Math.max(...PRESET_NAMES.map((n) => n.length));
      for (const name of PRESET_NAMES) process.stdout.write(`${name.padEnd(w)}  ${PRESETS[name].summary}\n`);
      process.stdout.write(`\nBroken variants for explain --broken: ${BROKEN_NAMES.join(", ")}\n`);
      for (const n of BROKEN_NAMES) process.stdout.write(`  ${n.padEnd(22)} ${BROKEN[n].change}\n`);
    });

  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  let code = 0;
  const program = makeProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv as string[]);
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit 0; every parse error has already been printed by commander.
      return e.exitCode === 0 ? 0 : BAD_INPUT;
    }
    if (
      e instanceof ScenarioError ||
      e instanceof SpecError ||
      e instanceof UsageError ||
      e instanceof CalibrationFileError ||
      e instanceof CountsFileError ||
      e instanceof HostError ||
      e instanceof DifferentialError ||
      isQueueError(e)
    ) {
      process.stderr.write(`teardown-lab: ${e.message}\n`);
      return BAD_INPUT;
    }
    throw e;
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(
      `teardown-lab: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exitCode = 3;
  },
);
