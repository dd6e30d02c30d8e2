// `run` builds a workload once for the designs and arches that share it (SharedBuilds): every cell's
// result is runOne's, whether the build is shared, rebuilt for lack of room, or some cells are skipped.
import { describe, expect, it } from "vitest";
import { withoutTiming } from "../format.js";
import { PRESETS } from "../presets.js";
import { type Cell, runOne, SharedBuilds } from "../run.js";
import { validateScenario } from "../scenario.js";
import { ARCHES, type ArchName, SpecError, VARIANTS } from "../spec.js";

const ALL: Cell[] = ARCHES.flatMap((arch) => VARIANTS.map((variant) => ({ variant, arch })));

/** runOne's result of a cell, or the message of the SpecError it throws. */
function alone(s: ReturnType<typeof validateScenario>, c: Cell): unknown {
  try {
    return withoutTiming(runOne(s, c.variant, c.arch).result);
  } catch (e) {
    if (e instanceof SpecError) return e.message;
    throw e;
  }
}

/** Cells whose run built a workload (a build reports its progress to the cell that builds it). */
let builds = 0;

function shared(runs: SharedBuilds, c: Cell): unknown {
  let built = false;
  try {
    return withoutTiming(
      runs.run(c.variant, c.arch, (phase) => {
        if (phase === "build") built = true;
      }).result,
    );
  } catch (e) {
    if (e instanceof SpecError) return e.message;
    throw e;
  } finally {
    if (built) builds++;
  }
}

describe("SharedBuilds", () => {
  // Builds with room for 4, 2 and 1 copies: generic's build serves x86 too (same tables, no PTE-aware
  // set_ptes) while it is kept; s390 (1 MiB PMDs) and arm64 (contpte) build their own; a build that
  // exits children with the design under test is each design's own; with room for one copy, each cell's.
  for (const [preset, size, expectedBuilds] of [
    ["munmap-1g", "8M", [3, 4, 12]],
    ["fork-shared", "4M", [3, 4, 12]],
    ["exit-kernel-build", "4M", [12, 12, 12]],
    ["shmem-file", "4M", [3, 4, 12]],
  ] as const) {
    it(`${preset}: every cell of every arch as runOne gives it, with room for 4, 2 or 1 copies`, () => {
      const s = validateScenario(PRESETS[preset].build({ size, cpus: 2 }), preset);
      const expected = ALL.map((c) => alone(s, c));
      [4, 2, 1].forEach((copies, i) => {
        builds = 0;
        const runs = new SharedBuilds(s, ALL, {}, copies);
        expect(ALL.map((c) => shared(runs, c))).toEqual(expected);
        expect(builds).toBe(expectedBuilds[i]);
      });
    });
  }

  it("cells skipped after an arch fails leave the others right", () => {
    const s = validateScenario(PRESETS["munmap-1g"].build({ size: "4M", folio: "64K" }), "preset");
    const runs = new SharedBuilds(s, ALL, {}, 3);
    // generic's first design runs, then the CLI skips generic's others (as after a SpecError).
    const picked = [ALL[0], ...ALL.filter((c) => c.arch !== ("generic" satisfies ArchName))];
    for (const c of picked) expect(shared(runs, c)).toEqual(alone(s, c));
    expect(() => runs.run("encoded-page", "generic")).toThrow(/not one of the cells left/);
  });
});
