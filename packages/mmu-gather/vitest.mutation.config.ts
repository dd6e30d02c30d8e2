// The mutation run's test set (`pnpm mutation`): this package's tests plus the arch contract suite
// (@mmgather/test-utils) as the shipped adapters run it — the contract exercises the arch
// defaults and the gather's flush paths through every adapter.
import { defineProject } from "vitest/config";
import { workspaceAlias } from "../../vitest.shared.ts";

export default defineProject({
  resolve: { alias: workspaceAlias },
  // The packages/ folder is the root, so the contract tests of the adapters are in the project.
  root: "..",
  test: {
    name: "mmu-gather+contracts",
    include: [
      "mmu-gather/src/**/*.test.ts",
      "arch-generic/src/__tests__/contract.test.ts",
      "arch-s390/src/__tests__/contract.test.ts",
      "arch-x86/src/__tests__/contract.test.ts",
    ],
  },
});
