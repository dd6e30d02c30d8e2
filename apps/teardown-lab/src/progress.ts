// Progress bar on stderr (cli-progress), shown when stderr is a terminal or --progress is given.
import cliProgress from "cli-progress";

export interface Progress {
  tick(label: string): void;
  stop(): void;
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
  let stopped = false;
  return {
    tick(label) {
      bar.increment(1, { label });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
