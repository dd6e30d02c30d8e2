// Mutation testing of the folio core (`pnpm mutation folio`; see TESTING.md).
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.config.ts" },
  plugins: ["@stryker-mutator/vitest-runner"],
  mutate: [
    "src/rmap.ts",
    "src/rmap-v6.5.ts",
    "src/rmap-series.ts",
    "src/swap.ts",
    "src/page-alloc.ts",
    "src/pcp.ts",
  ],
  // The vitest configs import ../../vitest.shared.ts, which a sandbox copy of one package lacks.
  inPlace: true,
  incremental: true,
  incrementalFile: "mutation/stryker-incremental.json",
  coverageAnalysis: "perTest",
  concurrency: 2,
  ignoreStatic: true,
  reporters: ["clear-text", "progress", "json"],
  jsonReporter: { fileName: "mutation/report.json" },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  thresholds: { high: 80, low: 70, break: null },
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always",
};
