// A third-party ArchTlb adapter, written by the release test the way a user would: only the public API of
// the installed @mmgather/mmu-gather (defineArch + types), plugged into the installed @mmgather/teardown.
// It runs in a folder where `npm install @mmgather/teardown` was the only install: mmu-gather arrived as
// teardown's peer dependency, so the adapter and teardown share one gather. Each console.log line states
// its expected output in the trailing comment (checked by run-example.mjs).

import { realpathSync } from "node:fs";
import { createRequire } from "node:module";
import {
  type ArchTlb,
  defineArch,
  type GatherView,
  isArchConfigError,
  type TlbOps,
} from "@mmgather/mmu-gather";
import { runScenario, type ScenarioSpec } from "@mmgather/teardown";

// One copy of the gather: the user's import, teardown's and the default arch's resolve to the same file.
const require = createRequire(import.meta.url);
const userGather = realpathSync(require.resolve("@mmgather/mmu-gather"));
const teardownRequire = createRequire(require.resolve("@mmgather/teardown"));
const teardownGather = realpathSync(teardownRequire.resolve("@mmgather/mmu-gather"));
const genericGather = realpathSync(
  createRequire(teardownRequire.resolve("@mmgather/arch-generic")).resolve("@mmgather/mmu-gather"),
);
console.log(userGather === teardownGather && userGather === genericGather); // true

// An arch without ranged invalidation: every tlb_flush drops the whole mm (like a CPU with no INVLPG).
let hookCalls = 0;
function flushWholeMm(tlb: GatherView, ops: TlbOps): void {
  hookCalls++;
  ops.flushMm(tlb.freedTables);
}
const wholeMmArch: ArchTlb = defineArch({ name: "whole-mm-only", tlbFlush: flushWholeMm });

const spec = (arch: ArchTlb): ScenarioSpec => ({
  memory: 64 << 20,
  arch,
  cpus: 2,
  seed: 7,
  vmas: [
    {
      kind: "anon",
      size: 4 << 20,
      folio: {
        mix: [
          { order: 0, weight: 3 },
          { order: 4, weight: 1 },
        ],
      },
    },
    { kind: "file-shared", size: 1 << 20, dirtyFraction: 0.5 },
  ],
  op: { kind: "munmap", vma: 0, length: 4 << 20 },
});

const report = runScenario(spec(wholeMmArch));
console.log(report.arch); // whole-mm-only
console.log(report.violations.length, report.finalState.problems.length); // 0 0: safe, nothing leaked
console.log(hookCalls > 0, report.tlbFlushes.range, report.tlbFlushes.mm >= hookCalls); // true 0 true

// A broken adapter that never invalidates: teardown's checker must catch stale TLB entries to freed pages.
const noFlushArch = defineArch({ name: "never-flushes", tlbFlush: () => {} });
console.log(runScenario(spec(noFlushArch)).violations.length > 0); // true

// Impossible combinations are refused at definition time, with a brand-checked error.
let refused: unknown;
try {
  defineArch({ name: "impossible", noGather: true, delayRmap: true });
} catch (e) {
  refused = e;
}
console.log(isArchConfigError(refused)); // true
