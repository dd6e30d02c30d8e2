// The deferred-split observer: called once per folio added to a deferred-split queue (mm/huge_memory.c
// deferred_split_folio's list_add_tail), after the rmap removal that queued it has updated every
// mapcount — so an observer can tell a partially mapped folio (v6.10+ and the series queue only those)
// from a fully unmapped one (v6.9's rule, before 98046944a159). Never called when the folio was already
// queued, in the swap cache, or of order < 2.

import { describe, expect, it } from "vitest";
import type { PhysMem, RmapPolicy } from "../index.js";
import { mappedAnon, mem } from "./helpers.js";

function watch(m: PhysMem): Array<[number, boolean, number]> {
  const seen: Array<[number, boolean, number]> = [];
  m.setDeferredSplitObserver((head) => seen.push([head, m.folioMapped(head), m.splitQueueLength()]));
  return seen;
}

describe("setDeferredSplitObserver", () => {
  const cases: Array<[RmapPolicy, number]> = [
    ["v6.18", 0],
    ["v6.9", 1],
  ];
  for (const [policy, wholeQueued] of cases) {
    it(`${policy}: told of each queued folio once, with its mapcounts already updated`, () => {
      const m = mem({ rmapPolicy: policy });
      const seen = watch(m);
      const whole = mappedAnon(m, 3);
      const part = mappedAnon(m, 3);
      m.folioRemoveRmapPtes(whole, whole, 8);
      m.folioRemoveRmapPtes(part, part, 2);
      m.folioRemoveRmapPtes(part, part + 2, 2); // already queued: no second call
      const expected: Array<[number, boolean, number]> = [];
      if (wholeQueued) expected.push([whole, false, 1]);
      expected.push([part, true, wholeQueued + 1]);
      expect(seen).toEqual(expected);
    });
  }

  it("6.5 page_remove_rmap: the first per-page unmap queues, while the rest stay mapped", () => {
    const m = mem();
    const seen = watch(m);
    const h = mappedAnon(m, 2);
    for (let i = 0; i < 4; i++) m.pageRemoveRmap(h + i, false);
    expect(seen).toEqual([[h, true, 1]]);
  });

  it("a PMD unmap of a THP still PTE-mapped in part queues it mapped; one fully unmapped is not queued", () => {
    const m = mem();
    const seen = watch(m);
    const a = m.allocFolio(9);
    const b = m.allocFolio(9);
    for (const h of [a, b]) {
      m.folioSetAnon(h, 1, h);
      m.folioRefAdd(h, 2);
      m.folioAddRmapPmd(h);
    }
    m.folioAddRmapPtes(a, a + 7, 1);
    m.folioRemoveRmapPmd(a);
    m.folioRemoveRmapPmd(b);
    expect(seen).toEqual([[a, true, 1]]);
  });

  it("order-1 folios are never queued; null removes the observer; anything else is EINVAL", () => {
    const m = mem({ rmapPolicy: "v6.9" });
    const seen = watch(m);
    const small = mappedAnon(m, 1);
    m.folioRemoveRmapPtes(small, small, 2);
    expect(seen).toEqual([]);
    m.setDeferredSplitObserver(null);
    const h = mappedAnon(m, 3);
    m.folioRemoveRmapPtes(h, h, 1);
    expect(m.splitQueueLength()).toBe(1);
    expect(seen).toEqual([]);
    expect(() => m.setDeferredSplitObserver(42 as never)).toThrow(
      expect.objectContaining({
        code: "EINVAL",
        message: expect.stringMatching(/observer must be a function/),
      }),
    );
  });
});
