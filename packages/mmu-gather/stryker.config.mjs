// Mutation testing of the gather's core (`pnpm mutation mmu-gather`; see TESTING.md).
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  // related: false — the test set spans sibling packages, which vitest's related-file lookup misses.
  vitest: { configFile: "vitest.mutation.config.ts", related: false },
  plugins: ["@stryker-mutator/vitest-runner"],
  mutate: ["src/storage.ts", "src/gather.ts", "src/variants.ts", "src/arch.ts"],
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
