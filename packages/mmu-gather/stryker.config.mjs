// Mutation testing of the gather's core (`pnpm mutation mmu-gather`; see TESTING.md).
import { strykerConfig } from "../../scripts/stryker.base.mjs";

export default strykerConfig({
  vitestConfig: "vitest.mutation.config.ts",
  // The test set spans sibling packages, which vitest's related-file lookup misses.
  related: false,
  mutate: ["src/storage.ts", "src/gather.ts", "src/variants.ts", "src/arch.ts"],
});
