// The visualizer page: controls, results table, uPlot charts, timelines and violations.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { COST_TERMS, type CostPhase } from "@mmgather/teardown";
import { BROKEN_NAMES } from "../src/broken.js";
import { ns, type RunResult, verdict } from "../src/format.js";
import { PRESET_NAMES, PRESETS } from "../src/presets.js";
import { FOLIO_SIZES } from "../src/size.js";
import { ARCHES, type ArchName } from "../src/spec.js";
import type { Reply, Request, Sweep, Timeline } from "./protocol.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const COLORS = ["#c0392b", "#3552b8", "#0b7a3e", "#8e44ad"];

const presetSel = $<HTMLSelectElement>("preset");
const folioSel = $<HTMLSelectElement>("folio");
const brokenSel = $<HTMLSelectElement>("broken");
const status = $("status");

for (const name of [...PRESET_NAMES, "custom"]) presetSel.add(new Option(name, name));
for (const f of FOLIO_SIZES) folioSel.add(new Option(f, f));
for (const b of BROKEN_NAMES) brokenSel.add(new Option(b, b));
for (const a of ARCHES) $<HTMLSelectElement>("arch").add(new Option(a, a));
folioSel.value = "64K";
$<HTMLTextAreaElement>("scenario").value = JSON.stringify(
  PRESETS["dirty-shared-file"].build({ size: "8M" }),
  null,
  2,
);

const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
let nextId = 1;
const charts: uPlot[] = [];

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

function send(req: WithoutId<Request>): void {
  status.textContent = "running…";
  document.body.dataset.state = "running";
  worker.postMessage({ ...req, id: nextId++ });
}

$("run").addEventListener("click", () => {
  const preset = presetSel.value === "custom" ? null : presetSel.value;
  send({
    kind: "run",
    preset,
    scenarioText: $<HTMLTextAreaElement>("scenario").value,
    folio: folioSel.value,
    size: $<HTMLInputElement>("size").value.trim(),
    pmd: $<HTMLInputElement>("pmd").checked,
    arch: $<HTMLSelectElement>("arch").value as ArchName,
  });
});

$("run-broken").addEventListener("click", () => {
  send({ kind: "broken", name: brokenSel.value, arch: $<HTMLSelectElement>("arch").value as ArchName });
});

const fmt = (n: number) => n.toLocaleString("en-US");

const ROWS: [string, (r: RunResult) => number | string][] = [
  ["pages torn down", (r) => r.pagesTornDown],
  ["folios freed", (r) => r.foliosTornDown],
  ["primitive operations", (r) => r.primitiveOps],
  ["estimated kernel time (ns)", (r) => Math.round(r.estimatedNs)],
  ["gather.entriesQueued", (r) => r.counters["gather.entriesQueued"] ?? 0],
  ["gather.tlbFlushes", (r) => r.counters["gather.tlbFlushes"] ?? 0],
  ["gather.forcedFlushes.batchLimit", (r) => r.counters["gather.forcedFlushes.batchLimit"] ?? 0],
  ["gather.rmapCallsImmediate", (r) => r.counters["gather.rmapCallsImmediate"] ?? 0],
  ["gather.rmapCallsDelayed", (r) => r.counters["gather.rmapCallsDelayed"] ?? 0],
  ["folio.refcountAtomics", (r) => r.counters["folio.refcountAtomics"] ?? 0],
  ["folio.mapcountAtomics", (r) => r.counters["folio.mapcountAtomics"] ?? 0],
  ["folio.lruvecLockAcquisitions", (r) => r.counters["folio.lruvecLockAcquisitions"] ?? 0],
  ["folio.statUpdates", (r) => r.counters["folio.statUpdates"] ?? 0],
  ["teardown.ptlAcquisitions", (r) => r.counters["teardown.ptlAcquisitions"] ?? 0],
  ["violations", (r) => r.violations.length],
];

function renderTable(results: readonly RunResult[]): void {
  const t = $<HTMLTableElement>("results");
  t.replaceChildren();
  const head = t.createTHead().insertRow();
  head.insertCell().outerHTML = "<th>counter</th>";
  for (const r of results) {
    const th = document.createElement("th");
    th.textContent = `${r.variant} / ${r.arch}`;
    th.dataset.variant = r.variant;
    head.append(th);
  }
  const body = t.createTBody();
  for (const [label, get] of ROWS) {
    const row = body.insertRow();
    row.insertCell().textContent = label;
    const vals = results.map(get);
    const nums = vals.filter((v): v is number => typeof v === "number");
    const min = Math.min(...nums);
    vals.forEach((v, i) => {
      const td = row.insertCell();
      td.dataset.variant = results[i].variant;
      td.dataset.counter = label;
      if (typeof v === "number") {
        td.dataset.value = String(v);
        td.textContent = fmt(v);
        if (results.length > 1 && v === min && nums.some((x) => x !== min) && label !== "violations") {
          td.className = "best";
        }
      } else td.textContent = v;
    });
  }
}

/** Phase colours of the breakdown, in teardown order. */
const PHASE_COLORS: Readonly<Record<CostPhase, string>> = {
  zap_pte_range: "#3552b8",
  rmap: "#c0392b",
  tlb_flush: "#1d2330",
  free_pages: "#0b7a3e",
  swap: "#8e44ad",
  free_pgtables: "#b7950b",
  vma: "#7f8c8d",
};

/**
 * The cost picture: one stacked bar per design, a block per phase, widths on one scale (the slowest
 * design fills the row), so both the totals and where each design spends its time compare at a glance.
 */
function renderBreakdown(results: readonly RunResult[]): void {
  const el = $("breakdown");
  el.replaceChildren();
  const max = Math.max(1, ...results.map((r) => r.estimatedNs));
  const phases = Object.keys(PHASE_COLORS) as CostPhase[];
  for (const r of results) {
    const row = document.createElement("div");
    row.className = "bd-row";
    row.dataset.variant = r.variant;
    const label = document.createElement("span");
    label.className = "bd-label";
    label.textContent = `${r.variant} / ${r.arch}`;
    const bar = document.createElement("span");
    bar.className = "bd-bar";
    for (const phase of phases) {
      const terms = COST_TERMS.filter((t) => t.phase === phase && (r.estimate.terms[t.name] ?? 0) > 0);
      const total = terms.reduce((a, t) => a + r.estimate.terms[t.name], 0);
      if (total <= 0) continue;
      const seg = document.createElement("span");
      seg.className = "bd-seg";
      seg.dataset.phase = phase;
      seg.dataset.ns = String(total);
      seg.style.width = `${(100 * total) / max}%`;
      seg.style.background = PHASE_COLORS[phase];
      seg.title =
        `${phase}: ${ns(total)} (${((100 * total) / r.estimatedNs).toFixed(1)} %)\n` +
        terms
          .sort((a, b) => r.estimate.terms[b.name] - r.estimate.terms[a.name])
          .map((t) => `  ${t.name}: ${ns(r.estimate.terms[t.name])}`)
          .join("\n");
      bar.append(seg);
    }
    const total = document.createElement("span");
    total.className = "bd-total";
    total.textContent = ns(r.estimatedNs);
    row.append(label, bar, total);
    el.append(row);
  }
  const legend = document.createElement("div");
  legend.className = "bd-legend";
  for (const phase of phases) {
    const item = document.createElement("span");
    item.innerHTML = `<i style="background:${PHASE_COLORS[phase]}"></i>${phase}`;
    legend.append(item);
  }
  el.append(legend);
}

/** Compact tick labels: 1.2k, 3.4M, so long axes never overlap. */
function compact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(n / 1e3).toPrecision(3)}k`;
  return String(+n.toPrecision(3));
}

function width(): number {
  return Math.max(400, $("output").clientWidth - 40);
}

function renderChart(sweep: Sweep | null): void {
  const el = $("chart");
  el.replaceChildren();
  $("chart-title").hidden = sweep === null;
  if (sweep === null) return;
  $("chart-profile").textContent = `cost profile ${sweep.profile}, log scale`;
  const variants = Object.keys(sweep.estimatedNs);
  el.dataset.series = JSON.stringify(sweep);
  const data = [
    sweep.folios.map((_, i) => i),
    ...variants.map((v) => sweep.estimatedNs[v]),
  ] as uPlot.AlignedData;
  charts.push(
    new uPlot(
      {
        width: width(),
        height: 260,
        scales: { x: { time: false }, y: { distr: 3 } },
        axes: [
          {
            label: "folio size",
            size: 50,
            values: (_u, ticks) => ticks.map((t) => sweep.folios[t] ?? ""),
            splits: () => sweep.folios.map((_, i) => i),
          },
          {
            label: "estimated kernel time",
            size: 90,
            values: (_u, ticks) =>
              ticks.map((t) =>
                t == null ? "" : t >= 1e6 ? `${t / 1e6} ms` : t >= 1e3 ? `${t / 1e3} µs` : `${t} ns`,
              ),
          },
        ],
        series: [
          { label: "folio size", value: (_u, v) => sweep.folios[v] ?? "" },
          ...variants.map((v, i) => ({
            label: v,
            stroke: COLORS[i],
            width: 2,
            points: { show: true, size: 6 },
          })),
        ],
      },
      data,
      el,
    ),
  );
}

function renderTimelines(timelines: Record<string, Timeline>): void {
  const el = $("timelines");
  el.replaceChildren();
  // One x range and one y range for every design, so the timelines compare directly.
  const all = Object.values(timelines);
  const xMax = Math.max(1, ...all.map((t) => t.x[t.x.length - 1] ?? 0));
  const yMax = Math.max(1, ...all.map((t) => Math.max(0, ...t.fill)));
  Object.entries(timelines).forEach(([name, t], i) => {
    const box = document.createElement("div");
    box.className = "timeline";
    box.dataset.variant = name;
    const h = document.createElement("h3");
    h.innerHTML = `${name} <span class="counts">${fmt(t.events)} events · ${fmt(t.counts.queued)} queue calls · ${t.counts.forced} forced flushes · ${t.counts.tlb} TLB flushes · ${t.counts.free} frees</span>`;
    box.append(h);
    el.append(box);
    const marker = (label: string, color: string, shape: "tri" | "dot" | "sq") => ({
      label,
      stroke: color,
      fill: color,
      paths: () => null,
      points: { show: true, size: shape === "dot" ? 7 : 9, fill: color, stroke: color, space: 0 },
    });
    charts.push(
      new uPlot(
        {
          width: width(),
          height: 170,
          legend: { show: false },
          scales: { x: { time: false, range: [0, xMax] }, y: { range: [0, yMax * 1.05] } },
          axes: [
            {
              label: "event # (same scale for every design)",
              size: 50,
              space: 80,
              values: (_u, ticks) => ticks.map(compact),
            },
            {
              label: "pages",
              size: 70,
              splits: () => [0, Math.round(yMax / 2), yMax],
              values: (_u, ticks) => ticks.map(compact),
            },
          ],
          series: [
            {},
            {
              label: "pages in gather",
              stroke: COLORS[i % COLORS.length],
              width: 1.5,
              fill: `${COLORS[i % COLORS.length]}22`,
            },
            marker("forced flush", "#e67e22", "tri"),
            marker("TLB flush", "#1d2330", "dot"),
            marker("free", "#0b7a3e", "sq"),
          ],
        },
        [t.x, t.fill, t.forced, t.tlb, t.free] as uPlot.AlignedData,
        box,
      ),
    );
  });
}

function renderViolations(results: readonly RunResult[], explanation: string | null): void {
  const el = $("violations");
  el.replaceChildren();
  let n = 0;
  for (const r of results) {
    for (const v of r.violations.slice(0, 1)) {
      n++;
      const d = document.createElement("div");
      d.className = "violation";
      d.dataset.kind = v.kind;
      const title = document.createElement("b");
      title.textContent = `${r.variant}: ${v.kind}`;
      const msg = document.createElement("p");
      msg.textContent = v.message;
      const ol = document.createElement("ol");
      for (const line of v.trail) {
        const li = document.createElement("li");
        li.textContent = line;
        ol.append(li);
      }
      d.append(title, msg, ol);
      if (r.violations.length > 1) {
        const more = document.createElement("p");
        more.textContent = `… and ${r.violations.length - 1} more violation(s) of this run.`;
        d.append(more);
      }
      el.append(d);
    }
  }
  if (explanation !== null) {
    const pre = document.createElement("pre");
    pre.className = "explanation";
    pre.textContent = explanation;
    el.append(pre);
  }
  if (n === 0) {
    const p = document.createElement("p");
    p.className = "ok";
    p.textContent = "No violation: every page was freed only after every CPU's TLB was flushed.";
    el.prepend(p);
  }
}

worker.onmessage = (ev: MessageEvent<Reply>) => {
  const r = ev.data;
  for (const c of charts.splice(0)) c.destroy();
  if (!r.ok) {
    status.textContent = r.error;
    document.body.dataset.state = "error";
    return;
  }
  $("verdict").textContent = verdict(r.results);
  $("notes").textContent = r.notes.join(" ");
  renderTable(r.results);
  renderBreakdown(r.results);
  renderChart(r.sweep);
  renderTimelines(r.timelines);
  renderViolations(r.results, r.explanation);
  status.textContent = `done: ${r.title}`;
  document.body.dataset.state = "done";
};

worker.onerror = (e) => {
  status.textContent = `worker error: ${e.message}`;
  document.body.dataset.state = "error";
};

status.textContent = "ready";
document.body.dataset.state = "ready";
