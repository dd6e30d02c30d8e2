// Mutation testing of the folio core (`pnpm mutation folio`; see TESTING.md).
import { strykerConfig } from "../../scripts/stryker.base.mjs";

export default strykerConfig({
  vitestConfig: "vitest.config.ts",
  mutate: [
    "src/rmap.ts",
    "src/rmap-v6.5.ts",
    "src/rmap-series.ts",
    "src/swap.ts",
    "src/page-alloc.ts",
    "src/pcp.ts",
  ],
});
