// Shared vitest settings: tests import sibling packages from their sources, so a
// package's tests never depend on another package's build output being fresh.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const pkgs = [
  "folio",
  "swapcache",
  "mmu-gather",
  "arch-generic",
  "arch-s390",
  "arch-x86",
  "arch-arm64",
  "teardown",
  "test-utils",
];

const src = (p: string, file: string) =>
  fileURLToPath(new URL(`./packages/${p}/src/${file}`, import.meta.url));

/** `@mmgather/<p>` → its `src/index.ts`; `@mmgather/<p>/internal` → its `src/internal.ts` where it has one. */
export const workspaceAlias = pkgs.flatMap((p) => [
  { find: new RegExp(`^@mmgather/${p}$`), replacement: src(p, "index.ts") },
  ...(existsSync(src(p, "internal.ts"))
    ? [{ find: new RegExp(`^@mmgather/${p}/internal$`), replacement: src(p, "internal.ts") }]
    : []),
]);
