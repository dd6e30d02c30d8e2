#!/usr/bin/env node
// The job-queue tests of teardown-lab (`sweep --queue`, `worker`) start their own redis-server
// (Debian's package) on 127.0.0.1. This makes sure one is there before the tests run: it uses
// REDIS_SERVER or redis-server on the PATH, and installs Debian's `redis-server` with apt-get when
// running as root on a Debian-like machine (without starting its service: the tests start their own).
// When none can be had it says why and exits 0: those tests are then skipped, naming the reason.
// MMGATHER_SKIP_REDIS=1 skips them.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const bin = process.env.REDIS_SERVER ?? "redis-server";
const found = () => spawnSync(bin, ["--version"], { stdio: "ignore" }).error === undefined;
if (process.env.MMGATHER_SKIP_REDIS === "1" || found()) process.exit(0);

const canApt =
  process.getuid?.() === 0 && existsSync("/usr/bin/apt-get") && process.env.REDIS_SERVER === undefined;
if (!canApt) {
  console.error(
    `No ${bin}: the queue tests will be skipped. Install Debian's redis-server (apt-get install -y ` +
      "redis-server) or point REDIS_SERVER at a redis-server binary to run them.",
  );
  process.exit(0);
}
console.error("Installing Debian's redis-server for the queue tests (apt-get; about 20 s)...");
// RUNLEVEL=1 keeps the package's init script from starting a server of its own.
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive", RUNLEVEL: "1" };
try {
  execFileSync("apt-get", ["update", "-qq"], { stdio: ["ignore", "ignore", "inherit"], env });
  execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "redis-server"], {
    stdio: ["ignore", "ignore", "inherit"],
    env,
  });
} catch (e) {
  console.error(`apt-get could not install redis-server (${e.message}): the queue tests will be skipped.`);
  process.exit(0);
}
if (!found()) console.error(`apt-get finished but ${bin} is still missing: the queue tests will be skipped.`);
