// The model, in a Web Worker: validates the scenario, runs the three variants, sweeps folio sizes
// for the chart and turns the event trace into timelines. Uses the same modules as the CLI: the
// designs of each folio size run on copies of one build (SharedBuilds), as `run` and `sweep` do.
import type { TrailEvent } from "@mmgather/teardown";
import * as yaml from "yaml";
import { BROKEN } from "../src/broken.js";
import type { RunResult } from "../src/format.js";
import { applyOverrides, PRESETS } from "../src/presets.js";
import { runOne, SharedBuilds } from "../src/run.js";
import { parseScenarioData, type Scenario, validateScenario } from "../src/scenario.js";
import { archNotes, mainVmaFolioSizes, VARIANTS } from "../src/spec.js";
import type { Reply, Request, RunRequest, Sweep, Timeline } from "./protocol.js";

const MAX_POINTS = 1500;

/**
 * Copies of the model held at once: one build and the working copy its designs run on. The page has no
 * memory limit to divide (the browser gives none), and one copy more than a run alone holds.
 */
const COPIES = 2;

/** Buckets an event trace into the gather's fill level and its flush / free markers. */
function timeline(events: readonly TrailEvent[]): Timeline {
  const n = events.length;
  const per = Math.max(1, Math.ceil(n / MAX_POINTS));
  const t: Timeline = {
    x: [],
    fill: [],
    tlb: [],
    forced: [],
    free: [],
    events: n,
    counts: { tlb: 0, forced: 0, free: 0, queued: 0 },
  };
  let fill = 0;
  let tlb = false;
  let forced = false;
  let free = false;
  for (let i = 0; i < n; i++) {
    const e = events[i];
    if (e.type === "pageQueued") {
      fill += e.nr;
      t.counts.queued++;
    } else if (e.type === "pagesFreed") {
      for (const k of e.nrs) fill -= k;
      if (fill < 0) fill = 0;
      free = true;
      t.counts.free++;
    } else if (e.type === "tlbFlushed") {
      tlb = true;
      t.counts.tlb++;
    } else if (e.type === "forcedFlush" || e.type === "walkForcedFlush") {
      forced = true;
      t.counts.forced++;
    }
    if ((i + 1) % per === 0 || i === n - 1) {
      t.x.push(i + 1);
      t.fill.push(fill);
      t.tlb.push(tlb ? fill : null);
      t.forced.push(forced ? fill : null);
      t.free.push(free ? fill : null);
      tlb = forced = free = false;
    }
  }
  return t;
}

function scenarioFor(req: RunRequest, folio: string): Scenario {
  const o = { folio, size: req.size || undefined, pmd: req.pmd };
  if (req.preset !== null) {
    const p = PRESETS[req.preset];
    if (p === undefined) throw new Error(`unknown preset ${req.preset}`);
    return validateScenario(p.build(o), `preset ${req.preset}`);
  }
  const raw = parseScenarioData(req.scenarioText, "pasted scenario", () => yaml);
  return validateScenario(
    applyOverrides(raw, folio === "" ? {} : { folio, pmd: req.pmd }),
    "pasted scenario",
  );
}

function run(req: RunRequest): Reply {
  const s = scenarioFor(req, req.folio);
  const results: RunResult[] = [];
  const timelines: Record<string, Timeline> = {};
  const cells = VARIANTS.map((variant) => ({ variant, arch: req.arch }));
  const runs = new SharedBuilds(s, cells, {}, COPIES);
  for (const variant of VARIANTS) {
    const events: TrailEvent[] = [];
    results.push(runs.run(variant, req.arch, { events: (e) => events.push(e) }).result);
    timelines[variant] = timeline(events);
  }
  // The chart: estimated kernel time per folio size of the main VMA (sizes the arch has).
  const folios = mainVmaFolioSizes(s, req.arch);
  const sweep: Sweep = { folios, estimatedNs: {}, profile: results[0]?.estimate.profile ?? "" };
  for (const v of VARIANTS) sweep.estimatedNs[v] = [];
  for (const f of folios) {
    if (f === req.folio) {
      for (const v of VARIANTS) sweep.estimatedNs[v].push(results.find((r) => r.variant === v)!.estimatedNs);
      continue;
    }
    const folioRuns = new SharedBuilds(scenarioFor(req, f), cells, {}, COPIES);
    for (const v of VARIANTS) sweep.estimatedNs[v].push(folioRuns.run(v, req.arch).result.estimatedNs);
  }
  return {
    id: req.id,
    ok: true,
    title: s.description ?? s.name,
    results,
    sweep,
    timelines,
    notes: archNotes(s, req.arch),
    explanation: null,
  };
}

self.onmessage = (ev: MessageEvent<Request>) => {
  const req = ev.data;
  let reply: Reply;
  try {
    if (req.kind === "run") reply = run(req);
    else {
      const c = BROKEN[req.name];
      const s = c.scenario(c.seeds[0]);
      const events: TrailEvent[] = [];
      let result: RunResult | undefined;
      for (const seed of c.seeds) {
        events.length = 0;
        result = runOne(c.scenario(seed), c.base, req.arch, {
          override: c.override,
          events: (e) => events.push(e),
        }).result;
        if (result.violations.length > 0) break;
      }
      reply = {
        id: req.id,
        ok: true,
        title: `broken variant ${req.name}: ${c.change} (${s.vmas.length} VMA, ${s.cpus} CPUs)`,
        results: result === undefined ? [] : [result],
        sweep: null,
        timelines: { [req.name]: timeline(events) },
        notes: [],
        explanation: `What it changes: ${c.change}.\n\nIn a real kernel: ${c.consequence}\n\nWhy the real order prevents it: ${c.realOrder}`,
      };
    }
  } catch (e) {
    reply = { id: req.id, ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  self.postMessage(reply);
};
