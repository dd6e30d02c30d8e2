import { defineProject } from "vitest/config";
import { workspaceAlias } from "../../vitest.shared.ts";

export default defineProject({
  resolve: { alias: workspaceAlias },
  // Property and differential runs take seconds on a loaded 2-core machine; no test asserts time.
  test: { name: "arch-arm64", include: ["src/**/*.test.ts"], testTimeout: 60_000 },
});
