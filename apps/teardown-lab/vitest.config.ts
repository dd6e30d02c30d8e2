import { defineProject } from "vitest/config";
import { workspaceAlias } from "../../vitest.shared.ts";

export default defineProject({
  resolve: { alias: workspaceAlias },
  test: { name: "teardown-lab", include: ["src/**/*.test.ts"], testTimeout: 60_000 },
});
