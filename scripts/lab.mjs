#!/usr/bin/env node
// `pnpm lab ARGS` (at the root) or `pnpm -w lab ARGS` (anywhere in the checkout): build the CLI if a
// source changed — quietly: the build's output is shown only when it fails — then run
// `teardown-lab ARGS` in the directory the command was typed in (pnpm runs scripts at the root and
// passes that directory as INIT_CWD), so relative scenario paths resolve where the user is.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const turbo = join(root, "node_modules/.bin/turbo");
if (!existsSync(turbo)) {
  process.stderr.write(
    "teardown-lab: the workspace is not installed; run `pnpm install --frozen-lockfile` first\n",
  );
  process.exit(2);
}
const build = spawnSync(turbo, ["run", "build", "--filter=teardown-lab...", "--output-logs=errors-only"], {
  cwd: root,
  encoding: "utf8",
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1", TURBO_NO_UPDATE_NOTIFIER: "1" },
  maxBuffer: 64 * 1024 * 1024,
});
if (build.status !== 0) {
  process.stderr.write(`${build.stdout ?? ""}${build.stderr ?? ""}`);
  process.stderr.write(`teardown-lab: the build failed (exit ${build.status ?? build.signal})\n`);
  process.exit(build.status ?? 1);
}
// Not a turbo task: pnpm's INIT_CWD only says where the user stands.
const { INIT_CWD: typedIn } = process.env;
const cwd = typedIn !== undefined && existsSync(typedIn) ? typedIn : process.cwd();
const child = spawn(
  process.execPath,
  [join(root, "apps/teardown-lab/dist/teardown-lab.js"), ...process.argv.slice(2)],
  {
    cwd,
    stdio: "inherit",
  },
);
// Ctrl-C reaches the CLI too (same process group); it restores what it changed and exits. Wait for it.
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => {
  if (signal !== null) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
