// Child processes for the benches that time whole commands (queue.mjs, sweep.mjs).
import { spawn } from "node:child_process";

/** Starts `cmd args`, collecting its output; `exited` resolves with the exit code. */
export function start(cmd, args) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  const p = { child, out: "", err: "" };
  child.stdout.on("data", (d) => {
    p.out += d;
  });
  child.stderr.on("data", (d) => {
    p.err += d;
  });
  p.exited = new Promise((r) => child.on("exit", r));
  return p;
}

/**
 * Cores this run can have: a CPU-bound loop alone, then two at once, each in its own process
 * (2 × alone / together: 2.0 on two idle cores, 1.0 when other work leaves one).
 */
export async function freeCores() {
  const spin =
    "let x=0;const t=performance.now();for(let i=0;i<2e8;i++)x=(x*1103515245+12345)|0;console.log(performance.now()-t,x)";
  const once = async (n) => {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: n }, () => start(process.execPath, ["-e", spin]).exited));
    return performance.now() - t0;
  };
  const alone = await once(1);
  return (2 * alone) / (await once(2));
}
