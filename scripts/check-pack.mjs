// `pnpm check:pack`: pack each published package the way `pnpm publish` does (workspace: ranges
// rewritten), then check the tarball: file list and manifest (scripts/release/tarball.mjs), publint,
// and Are The Types Wrong with the esm-only profile. Expects built packages (the root script builds first).

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { checkTarball, summarize } from "./release/tarball.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const PUBLISHED = [
  "folio",
  "swapcache",
  "mmu-gather",
  "arch-generic",
  "arch-s390",
  "arch-x86",
  "arch-arm64",
  "teardown",
  "host",
];

const out = mkdtempSync(join(tmpdir(), "mmgather-pack-"));
const failures = [];
try {
  for (const name of PUBLISHED) {
    const dest = join(out, name);
    mkdirSync(dest);
    execFileSync("pnpm", ["pack", "--pack-destination", dest], {
      cwd: join(root, "packages", name),
      stdio: "ignore",
    });
    const [tgz] = readdirSync(dest).filter((f) => f.endsWith(".tgz"));
    const file = join(dest, tgz);
    const result = checkTarball(file);
    console.log(summarize(result));
    for (const p of result.problems) failures.push(`${name}: ${p}`);
    try {
      const text = execFileSync(bin("publint"), ["run", file, "--strict"], { encoding: "utf8" });
      console.log(`  publint --strict: ${text.trim().split("\n").pop()}`);
    } catch (e) {
      console.error(e.stdout, e.stderr);
      failures.push(`${name}: publint failed`);
    }
    try {
      // Exit code 0 means no problem outside the profile's ignored resolutions (node10, node16-cjs).
      const text = execFileSync(bin("attw"), [file, "--profile", "esm-only", "--format", "json"], {
        encoding: "utf8",
        maxBuffer: 64 << 20,
      });
      const ignored = Object.keys(JSON.parse(text).problems ?? {});
      console.log(
        `  attw --profile esm-only: no problems${ignored.length ? ` (ignored by the profile: ${ignored.join(", ")})` : ""}`,
      );
    } catch (e) {
      console.error(e.stdout?.slice(0, 4000), e.stderr);
      failures.push(`${name}: attw failed`);
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
if (failures.length > 0) {
  for (const f of failures) console.error(`✗ ${f}`);
  process.exit(1);
}
console.log(
  `check:pack: ${PUBLISHED.length} packages OK (files, manifest, publint --strict, attw --profile esm-only)`,
);
