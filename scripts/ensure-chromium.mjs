#!/usr/bin/env node
// The web visualizer's end-to-end test drives a real Chromium (Debian's package, driven by
// playwright-core). This makes sure one is there before the tests run: it uses CHROMIUM_PATH or
// /usr/bin/chromium, installs Debian's `chromium` with apt-get when running as root on a
// Debian-like machine, and otherwise says exactly what to do. MMGATHER_SKIP_BROWSER=1 skips it.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

const path = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
if (process.env.MMGATHER_SKIP_BROWSER === "1" || existsSync(path)) process.exit(0);

const canApt = process.getuid?.() === 0 && existsSync("/usr/bin/apt-get");
if (!canApt) {
  console.error(
    `No Chromium at ${path}. Install Debian's chromium (apt-get install -y chromium), point CHROMIUM_PATH ` +
      "at a Chromium binary, or set MMGATHER_SKIP_BROWSER=1 to skip the browser test.",
  );
  process.exit(1);
}
console.error("Installing Debian's chromium for the browser test (apt-get; about 30 s)...");
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
execFileSync("apt-get", ["update", "-qq"], { stdio: ["ignore", "ignore", "inherit"], env });
execFileSync("apt-get", ["install", "-y", "-qq", "chromium"], {
  stdio: ["ignore", "ignore", "inherit"],
  env,
});
if (!existsSync(path)) {
  console.error(`apt-get finished but ${path} is still missing`);
  process.exit(1);
}
