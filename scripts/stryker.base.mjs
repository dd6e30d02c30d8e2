// The Stryker settings both mutation configs share (`pnpm mutation`; see TESTING.md).
/**
 * @param {{ mutate: string[], vitestConfig: string, related?: boolean }} o
 * @returns {import("@stryker-mutator/api/core").PartialStrykerOptions}
 */
export function strykerConfig(o) {
  return {
    testRunner: "vitest",
    vitest: { configFile: o.vitestConfig, related: o.related ?? true },
    plugins: ["@stryker-mutator/vitest-runner"],
    mutate: o.mutate,
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
}
