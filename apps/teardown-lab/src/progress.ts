// Progress bar on stderr (cli-progress), shown when stderr is a terminal or --progress is given:
// designs done of the total, the phase in progress (building the workload, a design's teardown)
// with its share done and its rate in pages per second.
import type { ScenarioProgress } from "@mmgather/teardown";
import cliProgress from "cli-progress";

export interface Progress {
  /** One column (design × arch) finished. */
  tick(label: string): void;
  /** The `ScenarioSpec.progress` hook of the column `label` about to run. */
  phase(label: string): ScenarioProgress;
  stop(): void;
}

/** "12.3M pages/s" */
function rate(pages: number, ms: number): string {
  if (ms <= 0) return "";
  const r = (pages * 1000) / ms;
  return r >= 1e6
    ? `${(r / 1e6).toFixed(1)}M pages/s`
    : r >= 1e3
      ? `${(r / 1e3).toFixed(0)}k pages/s`
      : `${r.toFixed(0)} pages/s`;
}

export function createProgress(total: number, title: string): Progress {
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${title} [{bar}] {value}/{total} {label}`,
      hideCursor: false,
      clearOnComplete: false,
      noTTYOutput: true,
      notTTYSchedule: 1000,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { label: "" });
  const tty = process.stderr.isTTY === true;
  let lastDraw = performance.now();
  let stopped = false;
  return {
    tick(label) {
      bar.increment(1, { label });
    },
    phase(label) {
      let current: "build" | "teardown" | null = null;
      let t0 = 0;
      return (phase, done, all) => {
        const now = performance.now();
        if (phase !== current) {
          current = phase;
          t0 = now;
        }
        const what = phase === "build" ? "building the workload" : `${label} teardown`;
        const pct = all > 0 ? ` ${Math.floor((100 * done) / all)}%` : "";
        bar.update({ label: `${what}${pct} ${rate(done, now - t0)}`.trimEnd() });
        // The model runs synchronously: cli-progress's own redraw timer cannot fire until it returns,
        // so redraw here, at most every 100 ms on a terminal and every second otherwise.
        if (now - lastDraw >= (tty ? 100 : 1000)) {
          lastDraw = now;
          bar.render();
        }
      };
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
