// `teardown-lab differential`: the long random differential run. Case i of seed S is
// @mmgather/teardown's randomScenario(S, i) on the chosen arches, written as a scenario file (the format
// `run` and `differential FILE` read) and run from that file's spec on the three designs with
// runDifferential — so what a failing case prints is exactly what ran. Cases go in chunks (one pool task
// or queue job each); a chunk's reply carries its tally and its failing cases, and the command adds the
// replies up in chunk order, so the output does not depend on where or in which order chunks ran.
// Browser-safe: no node: imports.
import { type ArchTlb, encodedNrPagesFor } from "@mmgather/mmu-gather";
import {
  CASE_KNOBS,
  type CaseFeatures,
  CONCURRENT_ACTORS,
  type DifferentialDesign,
  type DifferentialResult,
  type FolioPolicy,
  randomScenario,
  runDifferential,
  type ScenarioSpec,
} from "@mmgather/teardown";
import { BROKEN, type BrokenCase, realOverrideOf } from "./broken.js";
import { type Scenario, type ScenarioInput, validateScenario } from "./scenario.js";
import { formatSize } from "./size.js";
import { ARCH_TLB, ARCHES, type ArchName, toScenarioSpec, VARIANTS, type VariantName } from "./spec.js";

/** Cases per pool task and per queue job. */
export const DIFFERENTIAL_CHUNK = 50;

/** One chunk of a random run: cases [first, first + count) of `seed` on `arches`. */
export interface DifferentialTask {
  readonly index: number;
  readonly seed: number;
  readonly first: number;
  readonly count: number;
  readonly arches: readonly ArchName[];
  /** A broken case of `BROKEN` in place of the third design. */
  readonly broken?: string;
}

/** Cases per actor, arch, operation and knob. */
export interface DifferentialTally {
  readonly actor: Record<string, number>;
  readonly arch: Record<string, number>;
  readonly op: Record<string, number>;
  readonly knobs: Record<string, number>;
}

/** What one design did in a failing case. */
export interface DesignJson {
  readonly design: string;
  readonly violations: readonly { kind: string; message: string; pfn: number; address: number }[];
  readonly finalStateProblems: readonly string[];
  /** The system call's refusal (-EINVAL, -ENOMEM), or null. */
  readonly refused: string | null;
  /** What the run threw besides, or null. */
  readonly error: string | null;
}

/** A case whose designs disagree, or where one found a violation or a problem. */
export interface CaseFailure {
  readonly index: number;
  /** The scenario's own seed (`seed` in the file). */
  readonly seed: number;
  readonly arch: ArchName;
  readonly actor: string;
  readonly op: string;
  readonly knobs: readonly string[];
  /** Designs grouped by equal final state. */
  readonly groups: readonly (readonly string[])[];
  /** "folio", "swap" or "refusal": what tells the groups apart. */
  readonly differsIn: readonly string[];
  readonly designs: readonly DesignJson[];
  /** The case could not run at all (its spec was refused): a generator bug. */
  readonly error: string | null;
  /** The case as a scenario file: `teardown-lab differential FILE --arch ARCH` runs it again. */
  readonly scenario: ScenarioInput;
}

export type DifferentialReply =
  | {
      readonly index: number;
      readonly cases: number;
      /** Cases every design refused alike (skipped). */
      readonly refused: number;
      readonly tally: DifferentialTally;
      readonly failures: readonly CaseFailure[];
    }
  | { readonly index: number; readonly error: string };

/** Thrown for a `--broken` case that cannot be the third design (it breaks the arch adapter). */
export class DifferentialError extends Error {
  readonly code = "BAD_BROKEN" as const;
  constructor(message: string) {
    super(message);
    this.name = "DifferentialError";
  }
}

/** The broken cases that replace a design (variant, walk or NUMA scan), not the arch adapter. */
export function differentialBrokenNames(): string[] {
  return Object.keys(BROKEN).filter((n) => brokenDesignOverride(BROKEN[n]) !== null);
}

/**
 * What a broken case replaces in a design — its variant, walk, NUMA scan, migration or vCPU fault path
 * — or null when the broken part is the arch adapter itself. A case whose correct run keeps its arch
 * (`realOverrideOf`) only names the machine it shows best on (x86 for a batched-flush race): that arch
 * is dropped, every design of a differential case runs on the case's own adapter.
 */
function brokenDesignOverride(c: BrokenCase): Partial<ScenarioSpec> | null {
  const { arch, ...rest } = c.override;
  if (arch === undefined) return rest;
  return realOverrideOf(c).arch === arch ? rest : null;
}

/**
 * The designs of a run: the three, with the nr-pages one following `kernel`; with `broken`, the broken
 * case's variant, walk or NUMA scan in place of the third.
 */
export function differentialDesigns(kernel: Scenario["kernel"], broken?: string): DifferentialDesign[] {
  const designs: DifferentialDesign[] = VARIANTS.map((v) => {
    if (v !== "encoded-nr-pages") return { name: v, override: { variant: v } };
    const variant = encodedNrPagesFor(kernel);
    return { name: variant.name, override: { variant } };
  });
  if (broken === undefined) return designs;
  const c = Object.hasOwn(BROKEN, broken) ? BROKEN[broken] : undefined;
  const part = c === undefined ? null : brokenDesignOverride(c);
  if (c === undefined || part === null)
    throw new DifferentialError(
      c === undefined
        ? `unknown broken case "${broken}"; expected one of ${differentialBrokenNames().join(", ")}`
        : `${broken} breaks the arch adapter, not a design: every design of a case runs on the same adapter; expected one of ${differentialBrokenNames().join(", ")}`,
    );
  designs[2] = { name: broken, override: { variant: designs[2].override.variant, ...part } };
  return designs;
}

const folioSize = (order: number) => formatSize(4096 << order);

function folioOf(p: FolioPolicy | undefined): ScenarioInput["vmas"][number]["folio"] {
  if (p === undefined) return undefined;
  if ("order" in p) return folioSize(p.order);
  return Object.fromEntries(p.mix.map((m) => [folioSize(m.order), m.weight]));
}

/** The arch name of an adapter of ARCH_TLB. */
function archName(arch: ArchTlb | undefined): ArchName {
  const name = ARCHES.find((a) => ARCH_TLB[a] === (arch ?? ARCH_TLB.generic));
  if (name === undefined) throw new Error(`arch ${arch?.name} is not one of ${ARCHES.join(", ")}`);
  return name;
}

/**
 * A spec of randomScenario as a scenario file: every field it sets, by the file's names (`dontneed` for
 * MADV_DONTNEED, sizes with units). `toScenarioSpec` of it gives the spec back.
 */
export function scenarioOf(spec: ScenarioSpec, name: string): ScenarioInput {
  const range = (op: { vma?: number; offset?: number; length?: number }) => ({
    ...(op.vma === undefined ? {} : { vma: op.vma }),
    ...(op.offset === undefined ? {} : { offset: formatSize(op.offset) }),
    ...(op.length === undefined ? {} : { length: formatSize(op.length) }),
  });
  const c = spec.concurrentOp;
  const opt = <T>(key: string, v: T | undefined) => (v === undefined ? {} : { [key]: v });
  return {
    name,
    seed: spec.seed,
    memory: formatSize(spec.memory),
    ...opt("swap", spec.swap === undefined ? undefined : formatSize(spec.swap)),
    ...opt("cpus", spec.cpus),
    ...opt("lazyCpus", spec.lazyCpus),
    ...opt("gupFast", spec.gupFast),
    ...opt("devices", spec.devices),
    ...opt("kvm", spec.kvm),
    ...opt("tlbEntries", spec.tlbEntries),
    ...opt("touch", spec.touch),
    ...opt("fork", spec.fork),
    ...opt("target", spec.target),
    ...opt("exitedChildren", spec.exitedChildren),
    vmas: spec.vmas.map((v) => ({
      kind: v.kind,
      size: formatSize(v.size),
      ...opt("folio", folioOf(v.folio)),
      ...opt("pmd", v.pmdMapped),
      ...opt("dirty", v.dirtyFraction),
      ...opt("swap", v.swapFraction),
      ...opt("keepInSwapCache", v.keepInSwapCache),
      ...opt("mlock", v.mlock),
      ...opt("populate", v.populate),
      ...opt("readFraction", v.readFraction),
      ...opt("splitAt", v.splitAt === undefined ? undefined : formatSize(v.splitAt)),
      ...opt("shared", v.sharedFraction),
    })),
    op: spec.op.kind === "exit" ? { kind: "exit" } : { kind: fileKind(spec.op.kind), ...range(spec.op) },
    ...(c === undefined ? {} : { concurrentOp: { kind: fileKind(c.kind), ...range(c) } }),
  } as ScenarioInput;
}

/** The file format's name of an operation or actor ("dontneed" for MADV_DONTNEED). */
const fileKind = (k: string) => (k === "madvise" ? "dontneed" : k);

export function emptyTally(arches: readonly ArchName[]): DifferentialTally {
  const zero = (keys: readonly string[]) => Object.fromEntries(keys.map((k) => [k, 0]));
  return {
    actor: zero(["none", ...CONCURRENT_ACTORS.map((a) => fileKind(a.kind))]),
    arch: zero(arches),
    op: zero(["exit", "munmap", "dontneed"]),
    knobs: zero(CASE_KNOBS),
  };
}

function count(tally: DifferentialTally, f: CaseFeatures, arch: ArchName): void {
  const add = (m: Record<string, number>, k: string) => {
    m[k] = (m[k] ?? 0) + 1;
  };
  add(tally.actor, fileKind(f.actor));
  add(tally.arch, arch);
  add(tally.op, fileKind(f.op));
  for (const k of f.knobs) add(tally.knobs, k);
}

/** Adds `b` into `a`. */
export function addTally(a: DifferentialTally, b: DifferentialTally): void {
  for (const part of ["actor", "arch", "op", "knobs"] as const)
    for (const [k, n] of Object.entries(b[part])) a[part][k] = (a[part][k] ?? 0) + n;
}

function designJson(o: DifferentialResult["outcomes"][number]): DesignJson {
  return {
    design: o.design,
    violations: o.violations.map((v) => ({
      kind: v.kind,
      message: v.message,
      pfn: v.pfn,
      address: v.address,
    })),
    finalStateProblems: o.problems,
    refused: o.refused,
    error: o.error,
  };
}

/** A case's failure entry, or null when it passed (or every design refused it alike). */
export function failureOf(
  index: number,
  s: Scenario,
  input: ScenarioInput,
  arch: ArchName,
  r: DifferentialResult,
): CaseFailure | null {
  if (r.passed) return null;
  return {
    index,
    seed: s.seed,
    arch,
    actor: fileKind(r.features.actor),
    op: fileKind(r.features.op),
    knobs: r.features.knobs,
    groups: r.groups,
    differsIn: r.differsIn,
    designs: r.outcomes.map(designJson),
    error: null,
    scenario: input,
  };
}

/** What one case adds to a reply. */
interface CaseOutcome {
  readonly refused: boolean;
  readonly failure: CaseFailure | null;
}

/**
 * Runs scenario `input` (validated as `s`) on `arch` under every design and counts it in `tally`. A
 * case that cannot run at all is a failure with `error` (a generated one means the generator is wrong).
 */
export function runCase(
  index: number,
  input: ScenarioInput,
  arch: ArchName,
  tally: DifferentialTally,
  broken?: string,
): CaseOutcome {
  let s: Scenario;
  try {
    s = validateScenario(input, `case ${index}`);
    const base = toScenarioSpec(s, "encoded-nr-pages" satisfies VariantName, arch);
    const r = runDifferential(base, { designs: differentialDesigns(s.kernel, broken) });
    count(tally, r.features, arch);
    return { refused: r.refused && r.agree, failure: failureOf(index, s, input, arch, r) };
  } catch (e) {
    if (e instanceof DifferentialError) throw e;
    const op = (input.op as { kind?: string }).kind ?? "exit";
    const actor = (input.concurrentOp as { kind?: string } | undefined)?.kind ?? "none";
    return {
      refused: false,
      failure: {
        index,
        seed: typeof input.seed === "number" ? input.seed : 1,
        arch,
        actor,
        op,
        knobs: [],
        groups: [],
        differsIn: [],
        designs: [],
        error: e instanceof Error ? e.message : String(e),
        scenario: input,
      },
    };
  }
}

/** Runs one chunk of a random run. */
export function runDifferentialTask(t: DifferentialTask): DifferentialReply {
  const arches = t.arches.map((a) => ARCH_TLB[a]);
  const tally = emptyTally(t.arches);
  const failures: CaseFailure[] = [];
  let refused = 0;
  for (let i = t.first; i < t.first + t.count; i++) {
    const spec = randomScenario(t.seed, i, { arches });
    const out = runCase(
      i,
      scenarioOf(spec, `differential-${t.seed}-${i}`),
      archName(spec.arch),
      tally,
      t.broken,
    );
    if (out.refused) refused++;
    if (out.failure !== null) failures.push(out.failure);
  }
  return { index: t.index, cases: t.count, refused, tally, failures };
}

/** What the command prints: the whole run, added up. */
export interface DifferentialSummary {
  /** "random" (seeded cases) or the scenario file's path. */
  readonly source: string;
  readonly seed: number | null;
  readonly cases: number;
  readonly arches: readonly ArchName[];
  readonly designs: readonly string[];
  /**
   * Cases no design found anything in, the designs agreeing where that is required (next to a migration
   * it is not: `runDifferential`'s `agreementRequired`); refused ones included.
   */
  readonly passed: number;
  readonly refused: number;
  readonly failed: number;
  readonly tally: DifferentialTally;
  readonly elapsedMs?: number;
  readonly failures: readonly CaseFailure[];
}

function line(label: string, counts: Record<string, number>): string {
  return `${label.padEnd(7)} ${Object.entries(counts)
    .map(([k, n]) => `${k} ${n}`)
    .join(" · ")}`;
}

function describeFailure(f: CaseFailure, file: boolean): string {
  const head = `case ${f.index} (seed ${f.seed}, ${f.arch}, ${f.op}${f.actor === "none" ? "" : ` + ${f.actor}`})`;
  const out: string[] = [];
  if (f.error !== null) out.push(`${head}: could not run: ${f.error}`);
  else if (f.groups.length > 1)
    out.push(
      `${head}: final states differ (${f.differsIn.join(", ")}): ${f.groups.map((g) => g.join(", ")).join(" | ")}`,
    );
  else out.push(`${head}: the designs agree, but:`);
  for (const d of f.designs) {
    const what: string[] = [];
    for (const v of d.violations.slice(0, 3)) what.push(`${v.kind}: ${v.message}`);
    if (d.violations.length > 3) what.push(`… ${d.violations.length - 3} more violations`);
    for (const p of d.finalStateProblems.slice(0, 3)) what.push(`final state: ${p}`);
    if (d.finalStateProblems.length > 3) what.push(`… ${d.finalStateProblems.length - 3} more problems`);
    if (d.refused !== null) what.push(`refused: ${d.refused}`);
    if (d.error !== null) what.push(`threw: ${d.error}`);
    if (what.length > 0) out.push(`  ${d.design}:`, ...what.map((w) => `    ${w}`));
  }
  if (!file) {
    const name = `${f.scenario.name}.json`;
    out.push(
      `  re-run: save the scenario below as ${name}, then teardown-lab differential ${name} --arch ${f.arch}`,
      `  (or teardown-lab run ${name} --arch ${f.arch} for each design's counters and violation trails)`,
      ...JSON.stringify(f.scenario, null, 2)
        .split("\n")
        .map((l) => `  ${l}`),
    );
  }
  return out.join("\n");
}

/** The text output. */
export function formatDifferential(s: DifferentialSummary): string {
  const file = s.source !== "random";
  const lines = [
    file
      ? `differential: ${s.source} on ${s.arches.join(", ")}, designs ${s.designs.join(", ")}`
      : `differential: ${s.cases} cases of seed ${s.seed} on ${s.arches.join(", ")}, designs ${s.designs.join(", ")}`,
    `passed (no violation; the same final state where that is required): ${s.passed} of ${s.cases}${s.refused > 0 ? ` (${s.refused} refused alike by every design: skipped)` : ""}`,
    `failing: ${s.failed}`,
    "",
    line("actor", s.tally.actor),
    line("arch", s.tally.arch),
    line("op", s.tally.op),
    line("knobs", s.tally.knobs),
  ];
  if (s.elapsedMs !== undefined) lines.push(`elapsed ${(s.elapsedMs / 1000).toFixed(1)} s`);
  for (const f of s.failures) lines.push("", describeFailure(f, file));
  return `${lines.join("\n")}\n`;
}
