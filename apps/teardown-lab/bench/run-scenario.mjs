// One runScenario call as @mmgather/teardown's README makes it, for bench/product.mjs to time in a
// fresh process: 1 GiB of 64 KiB anonymous folios, munmap, encoded-nr-pages.
import { runScenario } from "@mmgather/teardown";

const r = runScenario({
  memory: 2 * 2 ** 30,
  seed: 1,
  cpus: 2,
  vmas: [{ kind: "anon", size: 1 << 30, folio: { order: 4 } }],
  variant: "encoded-nr-pages",
  op: { kind: "munmap", vma: 0 },
});
if (r.violations.length !== 0 || r.finalState.problems.length !== 0) process.exit(1);
