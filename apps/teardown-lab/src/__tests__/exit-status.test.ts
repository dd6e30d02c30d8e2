// The run's exit status and table follow the final-state checks as well as the safety checker.
import { describe, expect, it } from "vitest";
import { exitStatus, type RunResult, toTable, verdict } from "../format.js";
import { PRESETS } from "../presets.js";
import { runOne } from "../run.js";
import { validateScenario } from "../scenario.js";

function result(): RunResult {
  const s = validateScenario(PRESETS["munmap-1g"].build({ size: "4M", folio: "64K" }), "preset");
  return runOne(s, "encoded-nr-pages", "generic").result;
}

describe("final-state problems", () => {
  it("a clean run exits 0 and its table says 0 problems", () => {
    const r = result();
    expect(r.finalStateProblems).toEqual([]);
    expect(exitStatus([r])).toBe(0);
    expect(toTable([r], verdict([r]))).toMatch(/final-state problems\s+0/);
  });

  it("a run with a final-state problem exits 1 and the table lists it", () => {
    const r = { ...result(), finalStateProblems: ["mm 1: rss[1] = 16 but page tables map 0"] };
    expect(exitStatus([r])).toBe(1);
    const t = toTable([r], verdict([r]));
    expect(t).toContain("FINAL-STATE PROBLEMS in encoded-nr-pages/generic");
    expect(t).toContain("encoded-nr-pages/generic: mm 1: rss[1] = 16 but page tables map 0");
  });

  it("a violation alone also exits 1", () => {
    const r = result();
    const v = { kind: "useAfterFree", message: "m", pfn: 1, address: 0, trail: [] };
    expect(exitStatus([{ ...r, violations: [v] }])).toBe(1);
  });
});
