// Shared vitest settings: tests import sibling packages from their sources, so a
// package's tests never depend on another package's build output being fresh.
import { fileURLToPath } from "node:url";

const pkgs = ["folio", "swapcache", "mmu-gather", "arch-generic", "arch-s390", "teardown", "test-utils"];

export const workspaceAlias = Object.fromEntries(
  pkgs.map((p) => [
    `@mmgather/${p}`,
    fileURLToPath(new URL(`./packages/${p}/src/index.ts`, import.meta.url)),
  ]),
);
