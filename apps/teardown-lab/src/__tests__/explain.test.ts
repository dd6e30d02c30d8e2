import { describe, expect, it } from "vitest";
import { explainVariant, tinyScenario } from "../explain.js";

describe("explain narration", () => {
  it("folds a page-by-page repeat into one line and keeps the step numbering", () => {
    const { text } = explainVariant(tinyScenario(), "encoded-page", "generic");
    // The 64 KiB folio's 16 pages go through clear → record → rmap → queue; the local bundle holds 8
    // entries, so the first 8 pages are narrated as one page plus "7 more times".
    expect(text).toContain("… the same 4 steps again, 7 more times (pfns 4113 … 4119)");
    const numbers = [...text.matchAll(/^\s*(\d+)\. /gm)].map((m) => Number(m[1]));
    expect(numbers[0]).toBe(1);
    // After a folded line the numbering skips exactly the folded events.
    const lines = text.split("\n");
    const fold = lines.findIndex((l) => l.includes("7 more times"));
    const before = Number(/^\s*(\d+)\./.exec(lines[fold - 1])![1]);
    const after = Number(/^\s*(\d+)\./.exec(lines[fold + 1])![1]);
    expect(after - before - 1).toBe(7 * 4);
  });

  it("prints every event with --verbose", () => {
    const { text } = explainVariant(tinyScenario(), "encoded-page", "generic", true);
    expect(text).not.toContain("… the same");
    expect(text).toContain("thread 0 takes the page-table lock");
  });
});
