// Public API reports: runs API Extractor on each published package's built `dist/index.d.ts` and
// compares the result with the committed `packages/<p>/api/<p>.api.md`.
//
//   node scripts/api-report.mjs           check: exit 1 when a committed report is stale or missing
//   node scripts/api-report.mjs --update  rewrite the committed reports
//
// Needs built packages (`pnpm build`); the root scripts `api:check` / `api:update` build first.
// API Extractor bundles its own TypeScript (6.0.3, the same as ours), so it reads our declarations as tsc wrote them.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const { Extractor, ExtractorConfig, ExtractorLogLevel } = require("@microsoft/api-extractor");

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const PUBLISHED = [
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

const update = process.argv.includes("--update");
const only = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const names = only.length > 0 ? only : PUBLISHED;

const tempRoot = mkdtempSync(join(tmpdir(), "mmgather-api-"));
const stale = [];
const failed = [];
try {
  for (const name of names) {
    if (!PUBLISHED.includes(name)) throw new Error(`not a published package: ${name}`);
    const projectFolder = join(root, "packages", name);
    const entry = join(projectFolder, "dist", "index.d.ts");
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run pnpm build first`);
    const report = join(projectFolder, "api", `${name}.api.md`);
    if (update) mkdirSync(dirname(report), { recursive: true });
    else if (!existsSync(report)) {
      console.error(`api: ${report} is missing: run \`pnpm api:update\` and commit it`);
      stale.push(name);
      continue;
    }
    const config = ExtractorConfig.prepare({
      configObjectFullPath: undefined,
      packageJsonFullPath: join(projectFolder, "package.json"),
      configObject: {
        projectFolder,
        mainEntryPointFilePath: entry,
        bundledPackages: [],
        newlineKind: "lf",
        compiler: {
          // The package's own tsconfig compiles src/; the report is about what users get: dist/*.d.ts.
          overrideTsconfig: {
            compilerOptions: {
              target: "ES2022",
              lib: ["ES2023"],
              module: "NodeNext",
              moduleResolution: "NodeNext",
              types: ["node"],
              strict: true,
              skipLibCheck: true,
            },
            files: [entry],
          },
        },
        apiReport: {
          enabled: true,
          reportFileName: "<unscopedPackageName>.api.md",
          reportFolder: join(projectFolder, "api"),
          reportTempFolder: join(tempRoot, name),
        },
        docModel: { enabled: false },
        dtsRollup: { enabled: false },
        tsdocMetadata: { enabled: false },
        messages: {
          compilerMessageReporting: { default: { logLevel: "error" } },
          extractorMessageReporting: {
            default: { logLevel: "warning", addToApiReportFile: true },
            // We do not tag releases (@public/@beta); everything exported from index.ts is public.
            "ae-missing-release-tag": { logLevel: "none" },
            // Listed with source line numbers, so any edit above a declaration would make the report stale.
            "ae-undocumented": { logLevel: "none", addToApiReportFile: false },
          },
          // TSDoc style nits (e.g. `{@link}` to a module-private name) are not API changes.
          tsdocMessageReporting: { default: { logLevel: "none" } },
        },
      },
    });
    const result = Extractor.invoke(config, {
      localBuild: update,
      showVerboseMessages: false,
      messageCallback: (message) => {
        // API report differences are reported once below, with the file name.
        if (message.messageId === "console-api-report-changed") message.logLevel = ExtractorLogLevel.None;
      },
    });
    if (result.errorCount > 0) failed.push(name);
    else if (result.apiReportChanged && !update) {
      stale.push(name);
      console.error(`api: ${report} is stale (- committed, + now):`);
      printDiff(readFileSync(report, "utf8"), readFileSync(join(tempRoot, name, `${name}.api.md`), "utf8"));
    } else console.log(`api: ${name}: ${update && result.apiReportChanged ? "updated" : "up to date"}`);
  }
} finally {
  rmSync(tempRoot, { recursive: true, force: true });
}

if (failed.length > 0) {
  console.error(`api: API Extractor reported errors for ${failed.join(", ")}`);
  process.exit(1);
}
if (stale.length > 0) {
  console.error(
    `api: public API changed in ${stale.join(", ")}: review, then run \`pnpm api:update\` and commit`,
  );
  process.exit(1);
}

/** A minimal line diff (lines only in the committed report with -, only in the new one with +). */
function printDiff(before, after) {
  const a = before.split("\n");
  const b = after.split("\n");
  const inA = new Set(a);
  const inB = new Set(b);
  for (const line of a) if (!inB.has(line)) console.error(`- ${line}`);
  for (const line of b) if (!inA.has(line)) console.error(`+ ${line}`);
}
