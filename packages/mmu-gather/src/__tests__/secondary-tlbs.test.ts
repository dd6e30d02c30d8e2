// mmu_notifier_arch_invalidate_secondary_tlbs as the gather offers it to arch hooks (TlbOps), and the
// generic flush's use of it: x86 flush_tlb_mm_range (v6.18; since v6.15's 4a02ed8e1cc3) ends with the
// call for the range it was asked to flush — [0, TLB_FLUSH_ALL) for a whole-mm flush, the recorded range
// otherwise, even when the CPUs got a whole-mm flush above the ceiling. A no-op while the mm has no
// notifier subscriber.

import { createGatherFixture, gatherOn, mapAnonFolio, zapFolios } from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import {
  defineArch,
  encodedNrPages,
  type GatherEvent,
  genericTlbFlush,
  isGatherError,
  makeGenericTlbFlush,
  TLB_FLUSH_ALL,
  type TlbListener,
  withTlbOps,
} from "../index.js";

/** A listener that keeps what reaches the CPUs and the devices, in order. */
function listener() {
  const calls: string[] = [];
  const l: TlbListener = {
    tlbInvalidate(_mm, kind, start, end) {
      calls.push(`cpu ${kind} ${start}-${end}`);
    },
    secondaryTlbInvalidate(_mm, start, end) {
      calls.push(`devices ${start}-${end === TLB_FLUSH_ALL ? "all" : end}`);
    },
  };
  return { l, calls };
}

function run(opts: { fullmm?: boolean; pages: number; notifiers: boolean; ceiling?: number }) {
  const arch = defineArch({ name: "generic-test", fullFlushCeiling: opts.ceiling ?? 33 });
  const fx = createGatherFixture(arch);
  fx.mm.hasNotifiers = opts.notifiers;
  const { l, calls } = listener();
  const events: GatherEvent[] = [];
  const g = gatherOn(fx, encodedNrPages, {
    fullmm: opts.fullmm,
    tlbListener: l,
    events: (e) => events.push(e),
  });
  zapFolios(
    g,
    Array.from({ length: opts.pages }, () => mapAnonFolio(fx, 0)),
  );
  g.finish();
  return { calls, events, g };
}

describe("secondary TLBs (mmu_notifier_arch_invalidate_secondary_tlbs)", () => {
  it("a range flush tells the devices the same range, after the CPUs", () => {
    const { calls, events } = run({ pages: 4, notifiers: true });
    const start = 0x400000;
    const end = start + 4 * 4096;
    expect(calls).toEqual([`cpu range ${start}-${end}`, `devices ${start}-${end}`]);
    const e = events.find((x) => x.type === "secondaryTlbsInvalidated");
    expect(e).toEqual({ type: "secondaryTlbsInvalidated", reason: "finish", start, end });
  });

  it("above the ceiling the CPUs get a whole-mm flush, the devices still the range asked for", () => {
    const { calls } = run({ pages: 40, notifiers: true });
    const start = 0x400000;
    expect(calls).toEqual(["cpu mm 0-0", `devices ${start}-${start + 40 * 4096}`]);
  });

  it("a fullmm flush tells the devices everything: [0, TLB_FLUSH_ALL)", () => {
    const { calls, events } = run({ pages: 2, notifiers: true, fullmm: true });
    expect(calls).toEqual(["cpu mm 0-0", "devices 0-all"]);
    expect(events.filter((e) => e.type === "secondaryTlbsInvalidated")).toEqual([
      { type: "secondaryTlbsInvalidated", reason: "finish", start: 0, end: TLB_FLUSH_ALL },
    ]);
  });

  it("without a notifier subscriber the call does nothing: no event, no listener call", () => {
    const { calls, events } = run({ pages: 4, notifiers: false });
    expect(calls).toEqual([`cpu range ${0x400000}-${0x400000 + 4 * 4096}`]);
    expect(events.some((e) => e.type === "secondaryTlbsInvalidated")).toBe(false);
  });

  it("a listener without the optional method is fine", () => {
    const fx = createGatherFixture(defineArch({ name: "generic-test" }));
    fx.mm.hasNotifiers = true;
    const seen: string[] = [];
    const g = gatherOn(fx, encodedNrPages, {
      tlbListener: { tlbInvalidate: (_m, kind) => seen.push(kind) },
    });
    zapFolios(g, [mapAnonFolio(fx, 0)]);
    g.finish();
    expect(seen).toEqual(["range"]);
  });

  it("refuses a range that is not one, with a typed error", () => {
    for (const [start, end] of [
      [-4096, 0],
      [8192, 4096],
      [Number.NaN, 4096],
      [0, Number.POSITIVE_INFINITY],
    ]) {
      const arch = defineArch({
        name: "bad-range",
        tlbFlush(tlb, ops) {
          genericTlbFlush(tlb, ops);
          ops.invalidateSecondaryTlbs(start, end);
        },
      });
      const fx = createGatherFixture(arch);
      fx.mm.hasNotifiers = true;
      const g = gatherOn(fx, encodedNrPages);
      zapFolios(g, [mapAnonFolio(fx, 0)]);
      try {
        g.finish();
        expect.unreachable(`[${start}, ${end}) accepted`);
      } catch (e) {
        expect(isGatherError(e) && e.code).toBe("BAD_ARGUMENT");
        expect(String(e)).toMatch(/invalidateSecondaryTlbs/);
      }
    }
  });

  it("the generic flush with no ceiling never promotes: the devices and the CPUs get the same range", () => {
    const arch = defineArch({
      name: "no-ceiling",
      tlbFlush: makeGenericTlbFlush(defineArch({ name: "g" }).geometry, 0),
    });
    const fx = createGatherFixture(arch);
    fx.mm.hasNotifiers = true;
    const { l, calls } = listener();
    const g = gatherOn(fx, encodedNrPages, { tlbListener: l });
    zapFolios(
      g,
      Array.from({ length: 40 }, () => mapAnonFolio(fx, 0)),
    );
    g.finish();
    const start = 0x400000;
    const end = start + 40 * 4096;
    expect(calls).toEqual([`cpu range ${start}-${end}`, `devices ${start}-${end}`]);
  });

  it("withTlbOps replaces the operations given and forwards the others to the gather", () => {
    const arch = defineArch({
      name: "cpus-0-only",
      tlbFlush(tlb, ops) {
        genericTlbFlush(
          tlb,
          withTlbOps(ops, { flushRange: (s, e, stride, w) => ops.flushRange(s, e, stride, w, [0]) }),
        );
      },
    });
    const fx = createGatherFixture(arch);
    fx.mm.hasNotifiers = true;
    fx.mm.cpumask = [0, 1];
    const events: GatherEvent[] = [];
    const g = gatherOn(fx, encodedNrPages, { events: (e) => events.push(e) });
    zapFolios(g, [mapAnonFolio(fx, 0)]);
    g.finish();
    const flushed = events.filter((e) => e.type === "tlbFlushed");
    expect(flushed.map((e) => e.type === "tlbFlushed" && e.cpus)).toEqual([[0]]);
    // Not replaced: still reaches the gather, which emits the event.
    expect(events.some((e) => e.type === "secondaryTlbsInvalidated")).toBe(true);
  });
});
