// Models: nothing in the kernel; a systematic search over the interleavings of a scenario's two
// concurrent threads (its operation and `concurrentOp`) at the granularity the operations yield —
// one page-table-lock section, one huge PMD, an mmap_lock wait, a gather's setup or finish — with a
// preemption bound, as CHESS does (Musuvathi and Qadeer, "Iterative context bounding for systematic
// testing of multithreaded programs", PLDI 2007). A preemption is a switch away from a thread that
// could have gone on; a switch when it finished or waits for mmap_lock is free. Every interleaving
// with at most `bound` preemptions is run exactly once, from the scenario as a fresh build gives it: the
// scenario is built once and each run takes an exact copy of it (`cloneBuilt`, into the previous run's
// machine). Interleavings are tried in order of
// their preemption count, so the first failures found are the ones with the fewest preemptions.
// Omits: partial-order reduction (two steps on disjoint tables are still tried both ways), more
// than the two threads a scenario can name.
import type { TrailEvent } from "./checker.js";
import { cloneBuilt } from "./clone.js";
import { TeardownError } from "./errors.js";
import type { OpSteps } from "./mmap-lock.js";
import type { TeardownReport } from "./report.js";
import {
  type BuiltScenario,
  buildScenario,
  runBuiltWith,
  type ScenarioSpec,
  type Scheduler,
} from "./scenario.js";

/** How far `explore` searches. */
export interface ExploreOptions {
  /** Most preemptions per interleaving (integer 0–8, default 2). */
  readonly bound?: number;
  /** Stop after running this many interleavings (default 20000). */
  readonly maxInterleavings?: number;
  /** Stop at the first failing interleaving instead of counting them all (default false). */
  readonly stopAtFirstFailure?: boolean;
}

/** One interleaving that broke a safety property or left a bad final state. */
export interface ExploreFailure {
  /** The thread (0 = `op`, 1 = `concurrentOp`) that ran each step, from the first. */
  readonly schedule: readonly number[];
  /** Preemptions in `schedule`. */
  readonly preemptions: number;
  /** Steps run until the first violation (all of them when only the final state is wrong). */
  readonly steps: number;
  /** The report of that run: its violations (with trails) and final-state problems. */
  readonly report: TeardownReport;
}

/** What `explore` tried and found. */
export interface ExploreResult {
  /** The preemption bound searched. */
  readonly bound: number;
  /** Interleavings run. */
  readonly explored: number;
  /** Of those, how many had at most 0, 1, … `bound` preemptions (index = preemptions). */
  readonly exploredByPreemptions: readonly number[];
  /** Interleavings that failed. */
  readonly failing: number;
  /** True when every interleaving within the bound was run (neither cap nor early stop cut it). */
  readonly complete: boolean;
  /** Wall time of the search, milliseconds. */
  readonly elapsedMs: number;
  /** The failure with the fewest preemptions, then the fewest steps to its first violation. */
  readonly shortest: ExploreFailure | null;
}

/** One step of a replayed schedule: which thread ran, whether it preempted another, what happened. */
export interface ScheduleStep {
  /** 0: the scenario's `op`; 1: its `concurrentOp`. */
  readonly thread: number;
  /** The previous thread could have continued. */
  readonly preempted: boolean;
  /** It only found mmap_lock taken and waits. */
  readonly waited: boolean;
  /** Events of the step, in order (only when replayed with `runSchedule`). */
  readonly events: readonly TrailEvent[];
}

/** A run of one schedule, as `runSchedule` returns it. */
export interface ScheduleRun {
  /** The run's report (violations with trails, final state, counters). */
  readonly report: TeardownReport;
  /** Every step run, in order. */
  readonly steps: readonly ScheduleStep[];
}

const DEFAULT_BOUND = 2;
const DEFAULT_MAX = 20000;
/** A run longer than this many steps is a livelock of the model, not a schedule. */
const MAX_STEPS = 1 << 20;

function bad(method: string, msg: string): never {
  throw new TeardownError("BAD_SPEC", "explore", method, msg);
}

interface Trace {
  /** Thread of each step. */
  readonly threads: number[];
  /** Bit i set: thread i could run at that step. */
  readonly enabled: number[];
  readonly waited: boolean[];
  /** Step at which the first violation was reported (-1: none during the steps). */
  firstViolation: number;
}

/**
 * The scheduler of one run: follows `prefix`, then keeps running the current thread until it ends or
 * waits, then the lowest-numbered thread that can run (no preemption after the prefix).
 */
function scheduler(prefix: readonly number[], trace: Trace, violations: () => number): Scheduler {
  return (threads: OpSteps[]) => {
    const n = threads.length;
    const done = new Array<boolean>(n).fill(false);
    const waiting = new Array<boolean>(n).fill(false);
    const v0 = violations();
    let cur = -1;
    try {
      for (let step = 0; ; step++) {
        let mask = 0;
        let live = 0;
        for (let i = 0; i < n; i++) {
          if (done[i]) continue;
          live |= 1 << i;
          if (!waiting[i]) mask |= 1 << i;
        }
        if (live === 0) return;
        if (mask === 0)
          throw new TeardownError("DEADLOCK", "explore", "explore", "every live thread waits for mmap_lock");
        if (step === MAX_STEPS)
          throw new TeardownError("INVARIANT", "explore", "explore", `no end after ${MAX_STEPS} steps`);
        let t: number;
        if (step < prefix.length) {
          t = prefix[step];
          // (BAD_SPEC, not INVARIANT: in checking mode the run would turn INVARIANT into a violation.)
          if (((mask >> t) & 1) === 0)
            throw new TeardownError(
              "BAD_SPEC",
              "explore",
              "runSchedule",
              `schedule step ${step} names thread ${t}, which ${done[t] ? "has finished" : "cannot run"}`,
            );
        } else t = cur >= 0 && ((mask >> cur) & 1) !== 0 ? cur : 31 - Math.clz32(mask & -mask);
        trace.threads.push(t);
        trace.enabled.push(mask);
        cur = t;
        const r = threads[t].next();
        const waited = r.done !== true && r.value === "wait";
        trace.waited.push(waited);
        if (r.done === true) done[t] = true;
        waiting[t] = waited;
        // A step that did something may have released mmap_lock: the waiters may try again.
        if (!waited) for (let i = 0; i < n; i++) if (i !== t) waiting[i] = false;
        if (trace.firstViolation < 0 && violations() > v0) trace.firstViolation = step;
      }
    } finally {
      for (let i = 0; i < n; i++) if (!done[i]) threads[i].return(undefined);
    }
  };
}

function emptyTrace(): Trace {
  return { threads: [], enabled: [], waited: [], firstViolation: -1 };
}

/**
 * One interleaving on a copy of the scenario built once (`cloneBuilt`: each run starts from exactly the
 * state a fresh build gives), reusing the previous run's copy when there is one.
 */
function runPrefix(
  built: { base: BuiltScenario; scratch: BuiltScenario | null },
  spec: ScenarioSpec,
  prefix: readonly number[],
): { report: TeardownReport; trace: Trace } {
  const b = cloneBuilt(built.base, spec, built.scratch ?? undefined);
  built.scratch = b;
  const checker = b.machine.checker;
  const trace = emptyTrace();
  const report = runBuiltWith(
    b,
    spec,
    scheduler(prefix, trace, () => (checker === null ? 0 : checker.violations.length)),
  );
  return { report, trace };
}

function failed(r: TeardownReport): boolean {
  return r.violations.length > 0 || r.finalState.problems.length > 0;
}

/** Step i switches away from a thread that could have gone on. */
function isPreemption(t: Trace, i: number): boolean {
  return i > 0 && t.threads[i] !== t.threads[i - 1] && ((t.enabled[i] >> t.threads[i - 1]) & 1) !== 0;
}

function checkSpec(spec: ScenarioSpec, method: string): void {
  if (typeof spec !== "object" || spec === null) bad(method, "spec must be an object");
  if (spec.events !== undefined)
    bad(method, "spec.events: the explorer runs each interleaving without a trail sink");
  if (spec.checker === false) bad(method, "spec.checker: the explorer needs the safety checker on");
}

/**
 * Runs every interleaving of the scenario's two threads with at most `bound` preemptions (or until a
 * cap), and reports how many it ran and the shortest failing one. A scenario without
 * `concurrentOp` has exactly one interleaving.
 */
export function explore(spec: ScenarioSpec, opts: ExploreOptions = {}): ExploreResult {
  checkSpec(spec, "explore");
  const bound = opts.bound ?? DEFAULT_BOUND;
  if (!Number.isInteger(bound) || bound < 0 || bound > 8)
    bad("explore", `bound must be an integer in [0, 8], got ${bound}`);
  const max = opts.maxInterleavings ?? DEFAULT_MAX;
  if (!Number.isInteger(max) || max < 1)
    bad("explore", `maxInterleavings must be a positive integer, got ${max}`);
  const t0 = performance.now();
  const built = { base: buildScenario(spec), scratch: null as BuiltScenario | null };
  // One stack of schedule prefixes per preemption count; each prefix ends with the step at which it
  // leaves its parent's schedule, so every schedule is reached from exactly one prefix.
  const pending: number[][][] = Array.from({ length: bound + 1 }, () => []);
  pending[0].push([]);
  const byPreemptions = new Array<number>(bound + 1).fill(0);
  let explored = 0;
  let failing = 0;
  let shortest: ExploreFailure | null = null;
  let stopped = false;
  for (let p = 0; p <= bound && !stopped; p++) {
    const stack = pending[p];
    while (stack.length > 0) {
      if (explored === max) {
        stopped = true;
        break;
      }
      const prefix = stack.pop()!;
      const { report, trace } = runPrefix(built, spec, prefix);
      explored++;
      byPreemptions[p]++;
      if (failed(report)) {
        failing++;
        const steps = trace.firstViolation >= 0 ? trace.firstViolation + 1 : trace.threads.length;
        if (
          shortest === null ||
          p < shortest.preemptions ||
          (p === shortest.preemptions && steps < shortest.steps)
        )
          shortest = { schedule: trace.threads.slice(), preemptions: p, steps, report };
        if (opts.stopAtFirstFailure === true) {
          stopped = true;
          break;
        }
      }
      // Children: leave this schedule at a step after the prefix, for another thread that could run.
      // The steps after the prefix add no preemption, so before any of them there were exactly p.
      const th = trace.threads;
      for (let j = th.length - 1; j >= prefix.length; j--) {
        const others = trace.enabled[j] & ~(1 << th[j]);
        if (others === 0) continue;
        const prev = j > 0 ? th[j - 1] : -1;
        for (let a = 0; a < 31; a++) {
          if (((others >> a) & 1) === 0) continue;
          const switches = prev >= 0 && a !== prev && ((trace.enabled[j] >> prev) & 1) !== 0;
          const pre = p + (switches ? 1 : 0);
          if (pre > bound) continue;
          const child = th.slice(0, j);
          child.push(a);
          pending[pre].push(child);
        }
      }
    }
  }
  const complete = !stopped && pending.every((s) => s.length === 0);
  return {
    bound,
    explored,
    exploredByPreemptions: byPreemptions,
    failing,
    complete,
    elapsedMs: performance.now() - t0,
    shortest,
  };
}

/**
 * Runs the scenario once with its threads in the order `schedule` gives (as `explore` reports it;
 * when the schedule ends first, the current thread goes on, then the lowest-numbered one), and returns
 * the report with each step's thread and events.
 */
export function runSchedule(spec: ScenarioSpec, schedule: readonly number[]): ScheduleRun {
  checkSpec(spec, "runSchedule");
  if (!Array.isArray(schedule) || !schedule.every((t) => t === 0 || t === 1))
    bad("runSchedule", "schedule must be an array of thread numbers (0 or 1)");
  const steps: { thread: number; preempted: boolean; waited: boolean; events: TrailEvent[] }[] = [];
  const outside: TrailEvent[] = [];
  const b = buildScenario(spec);
  const checker = b.machine.checker;
  const trace = emptyTrace();
  const inner = scheduler(schedule, trace, () => (checker === null ? 0 : checker.violations.length));
  let sink = outside;
  const report = runBuiltWith(b, { ...spec, events: (e) => sink.push(e) }, (threads) => {
    // Route each step's events to it: wrap each thread so a step opens a new bucket.
    const wrapped = threads.map((g, i) =>
      stepRecorder(g, () => {
        sink = [];
        steps.push({ thread: i, preempted: false, waited: false, events: sink });
      }),
    );
    inner(wrapped);
  });
  for (let i = 0; i < steps.length; i++) {
    steps[i].preempted = isPreemption(trace, i);
    steps[i].waited = trace.waited[i];
  }
  if (outside.length > 0 && steps.length === 0)
    steps.push({ thread: 0, preempted: false, waited: false, events: outside });
  return { report, steps };
}

/** A generator that calls `onStep` before each step of `g`. */
function* stepRecorder(g: OpSteps, onStep: () => void): OpSteps {
  try {
    for (;;) {
      onStep();
      const r = g.next();
      if (r.done === true) return;
      yield r.value;
    }
  } finally {
    g.return(undefined);
  }
}
