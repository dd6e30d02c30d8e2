// ScenarioSpec.progress: build then teardown, monotonic, ending at the exact totals, and absent
// progress changes nothing.
import { genericArch } from "@mmgather/arch-generic";
import { describe, expect, it } from "vitest";
import { runScenario, type ScenarioSpec } from "../index.js";

const spec = (op: ScenarioSpec["op"]): ScenarioSpec => ({
  memory: 1 << 30,
  seed: 5,
  arch: genericArch,
  vmas: [
    { kind: "anon", size: 600 << 20, folio: { order: 4 } },
    { kind: "anon", size: 8 << 20, folio: { order: 0 }, populate: 0.5 },
  ],
  op,
});

describe("ScenarioSpec.progress", () => {
  it("reports the build over every VMA's pages, then the teardown's unmapped pages, each monotonic", () => {
    const calls: [string, number, number][] = [];
    const r = runScenario({ ...spec({ kind: "exit" }), progress: (p, d, t) => calls.push([p, d, t]) });
    const build = calls.filter((c) => c[0] === "build");
    const tear = calls.filter((c) => c[0] === "teardown");
    expect(calls.indexOf(tear[0])).toBe(build.length); // every build call comes first
    const total = (608 << 20) / 4096;
    expect(build.every((c) => c[2] === total)).toBe(true);
    // 600 MiB = 153,600 pages: reported inside the first VMA's fault loop every 65,536 pages.
    expect(build.map((c) => c[1])).toEqual([65536, 131072, 153600, total]);
    expect(tear.length).toBeGreaterThan(1);
    for (let i = 1; i < tear.length; i++) expect(tear[i][1]).toBeGreaterThanOrEqual(tear[i - 1][1]);
    const last = tear[tear.length - 1];
    expect(last[1]).toBe(last[2]);
    expect(last[2]).toBe(r.pagesTornDown);
  });

  it("munmap of one VMA counts only its pages as the teardown's total; no hook, same report", () => {
    const calls: [string, number, number][] = [];
    const op = { kind: "munmap", vma: 0, offset: 0, length: 600 << 20 } as const;
    const r = runScenario({ ...spec(op), progress: (p, d, t) => calls.push([p, d, t]) });
    const tear = calls.filter((c) => c[0] === "teardown");
    expect(tear[tear.length - 1][1]).toBe((600 << 20) / 4096);
    const plain = runScenario(spec(op));
    expect({ ...plain, simWallNs: 0 }).toEqual({ ...r, simWallNs: 0 });
    expect(() => runScenario({ ...spec(op), progress: 3 as never })).toThrow(
      /spec.progress must be a function/,
    );
  });
});
