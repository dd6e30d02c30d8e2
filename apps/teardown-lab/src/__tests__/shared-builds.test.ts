// `run` builds a workload once for the designs and arches that share it (SharedBuilds): every cell's
// result is runOne's, whether the build is shared, rebuilt for lack of room, or some cells are skipped.
// `sweep` (its pool threads and queue workers) runs the cells of each build group (buildGroups) as one
// task through the same SharedBuilds: one build per task, every cell's reply runOne's.
import { describe, expect, it } from "vitest";
import { withoutTiming } from "../format.js";
import { PRESETS } from "../presets.js";
import { buildGroups, type Cell, modelCopies, runOne, SharedBuilds } from "../run.js";
import { validateScenario } from "../scenario.js";
import { ARCHES, type ArchName, estimateModelBytes, SpecError, VARIANTS } from "../spec.js";
import runTask, { type SweepCellReply } from "../sweep-worker.js";

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
      runs.run(c.variant, c.arch, {
        progress: (phase) => {
          if (phase === "build") built = true;
        },
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

describe("sweep tasks: buildGroups and the pool's runTask", () => {
  const indexed = ALL.map((c, index) => ({ ...c, index }));
  const label = (g: readonly Cell[]) => g.map((c) => `${c.variant}/${c.arch}`);

  it("groups a scenario's cells by build: generic with x86, s390 and arm64 alone; a cell that cannot run alone", () => {
    const s = validateScenario(PRESETS["munmap-1g"].build({ size: "4M", folio: "2M" }), "preset");
    const groups = buildGroups(s, indexed);
    const of = (a: ArchName) => VARIANTS.map((v) => `${v}/${a}`);
    // 2M folios don't exist on s390 (1M PMD): each of its cells is refused alone.
    expect(groups.map(label)).toEqual([
      [...of("generic"), ...of("x86")],
      ...of("s390").map((x) => [x]),
      of("arm64"),
    ]);
    // A build that exits children with the design under test is each cell's own.
    const k = validateScenario(PRESETS["exit-kernel-build"].build({ size: "4M", cpus: 2 }), "preset");
    expect(buildGroups(k, indexed).map(label)).toEqual(ALL.map((c) => [`${c.variant}/${c.arch}`]));
  });

  for (const [preset, folio] of [
    ["munmap-1g", "64K"],
    ["fork-shared", "4K"],
    ["shmem-file", "2M"],
  ] as const) {
    it(`${preset} ${folio}: each group is one build, and every cell's reply is runOne's (or its error)`, () => {
      const s = validateScenario(PRESETS[preset].build({ size: "4M", folio, cpus: 2 }), preset);
      const expected = ALL.map((c) => alone(s, c));
      const got: unknown[] = new Array(ALL.length);
      const groups = buildGroups(s, indexed);
      let builds = 0;
      groups.forEach((cells, index) => {
        const reply = runTask({ index, scenario: s, cells, copies: 2 });
        expect(reply.index).toBe(index);
        expect(reply.cells.map((c) => c.index)).toEqual(cells.map((c) => c.index));
        const ok = reply.cells.filter((c) => "result" in c).length;
        // One build per group whose cells run; a refused cell builds nothing.
        expect(reply.builds).toBe(ok > 0 ? 1 : 0);
        builds += reply.builds;
        for (const c of reply.cells as SweepCellReply[])
          got[c.index] = "error" in c ? c.error : withoutTiming(c.result);
      });
      expect(got).toEqual(expected);
      // generic's build serves x86 too: fewer builds than arches, far fewer than cells.
      expect(builds).toBe(groups.filter((g) => typeof expected[g[0].index] !== "string").length);
      expect(builds).toBeLessThan(ARCHES.length);
    });
  }

  it("with room for one copy (modelCopies < 2) every cell of a task builds its own, with the same replies", () => {
    const s = validateScenario(PRESETS["munmap-1g"].build({ size: "4M", folio: "16K" }), "preset");
    const est = estimateModelBytes(s);
    expect(modelCopies(2 * est, s)).toBe(2);
    expect(modelCopies(2 * est, s, 2)).toBe(1);
    const [first] = buildGroups(s, indexed);
    const shared = runTask({ index: 0, scenario: s, cells: first, copies: modelCopies(4 * est, s, 2) });
    const own = runTask({ index: 0, scenario: s, cells: first, copies: modelCopies(2 * est, s, 2) });
    expect(shared.builds).toBe(1);
    expect(own.builds).toBe(first.length);
    const strip = (r: typeof own) => r.cells.map((c) => ("result" in c ? withoutTiming(c.result) : c.error));
    expect(strip(shared)).toEqual(strip(own));
    expect(strip(own)).toEqual(first.map((c) => alone(s, c)));
  });
});
