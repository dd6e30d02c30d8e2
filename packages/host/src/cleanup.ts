// Work that must run however the process ends: normal exit, an uncaught exception (which ends through
// process exit), or SIGINT / SIGTERM / SIGHUP, after which the signal is raised again so the process
// still dies of it (exit status 128 + n for the caller).
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const pending = new Set<() => void>();

function runAll(): void {
  for (const fn of [...pending].reverse()) {
    pending.delete(fn);
    try {
      fn();
    } catch {
      // Best effort on the way out: the next cleanup must still run.
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  runAll();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.kill(process.pid, sig);
}

/** Runs `fn` once on every way out of the process; the returned function runs it now and disarms it. */
export function onExitPath(fn: () => void): () => void {
  if (pending.size === 0) {
    process.on("exit", runAll);
    for (const s of SIGNALS) process.on(s, onSignal);
  }
  pending.add(fn);
  return () => {
    if (!pending.delete(fn)) return;
    if (pending.size === 0) {
      process.removeListener("exit", runAll);
      for (const s of SIGNALS) process.removeListener(s, onSignal);
    }
    fn();
  };
}
