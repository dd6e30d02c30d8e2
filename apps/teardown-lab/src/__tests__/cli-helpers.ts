// Spawns the built CLI the way a user runs it.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const APP_DIR = fileURLToPath(new URL("../../", import.meta.url));
/** The package's bin: the CLI bundled into one file (vite.cli.config.ts). */
export const CLI = fileURLToPath(new URL("../../dist/teardown-lab.js", import.meta.url));

export interface CliRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(args: readonly string[], env: Record<string, string> = {}): CliRun {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: APP_DIR,
    encoding: "utf8",
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
