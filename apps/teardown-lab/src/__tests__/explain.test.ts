import { TLB_FLUSH_ALL } from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import { explainVariant, tinyScenario } from "../explain.js";
import { describeEvent } from "../narrate.js";

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

describe("x86 INVLPGB in words", () => {
  it("a ranged INVLPGB names its range, a whole-PCID one says so, both say there is no IPI", () => {
    const base = {
      type: "tlbFlushed",
      kind: "invlpgb",
      reason: "finish",
      cpus: null,
      stride: 4096,
      walkCaches: true,
    } as const;
    expect(describeEvent({ ...base, start: 0x400000, end: 0x408000 } as never)).toBe(
      "INVLPGB: one broadcast, no IPI — every CPU drops its TLB entries for 0x400000–0x408000 (and page-walk caches) — tlb_finish_mmu",
    );
    expect(describeEvent({ ...base, start: 0, end: TLB_FLUSH_ALL } as never)).toMatch(
      /^INVLPGB: one broadcast, no IPI — every CPU drops all TLB entries of this mm's PCID \(and page-walk caches\)/,
    );
    expect(
      describeEvent({
        type: "tlbInvalidated",
        kind: "invlpgb",
        mmId: 1,
        start: 0x1000,
        end: 0x2000,
      } as never),
    ).toBe("the CPUs drop their cached translations (invlpgb) of mm 1 for 0x1000–0x2000");
  });
});
