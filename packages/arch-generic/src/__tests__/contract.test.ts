import {
  defineArch,
  encodedNrPages,
  TLB_FLUSH_ALL,
  TLB_RANGE_ULONG_MAX,
  withTlbOps,
} from "@mmgather/mmu-gather";
import {
  checkSecondaryTlbOrder,
  createGatherFixture,
  describeArchContract,
  gatherOn,
  mapAnonFolio,
  recordEvents,
  zapFolios,
} from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import { genericArch } from "../index.js";

describeArchContract(genericArch);

// A third adapter written against the public API alone: every flush invalidates the whole mm, the
// devices sharing the page tables included.
const alwaysMmArch = defineArch({
  name: "always-mm",
  tlbFlush(tlb, ops) {
    ops.flushMm(tlb.freedTables);
    ops.invalidateSecondaryTlbs(0, TLB_FLUSH_ALL);
  },
});
describeArchContract(alwaysMmArch);

describe("the secondary-TLB order check", () => {
  it("finds an adapter that flushes the CPUs but never tells the devices, or tells them too little", () => {
    for (const secondary of ["never", "first-page"] as const) {
      const arch = defineArch({
        name: `devices-${secondary}`,
        tlbFlush(tlb, ops) {
          genericArch.tlbFlush(
            tlb,
            withTlbOps(ops, {
              invalidateSecondaryTlbs(start: number) {
                if (secondary === "first-page") ops.invalidateSecondaryTlbs(start, start + 4096);
              },
            }),
          );
        },
      });
      const fx = createGatherFixture(arch);
      fx.mm.hasNotifiers = true;
      const folios = [mapAnonFolio(fx, 0), mapAnonFolio(fx, 2), mapAnonFolio(fx, 0)];
      const rec = recordEvents();
      const g = gatherOn(fx, encodedNrPages, { events: rec.sink });
      zapFolios(g, folios);
      g.finish();
      const problems = checkSecondaryTlbOrder(rec.events, 4096);
      expect(problems.length).toBe(secondary === "never" ? 3 : 2);
      expect(problems[0]).toMatch(/^page \d+ freed before the secondary TLBs were told about/);
    }
  });

  it("without a subscriber the call is a no-op: no event, whatever the range", () => {
    const fx = createGatherFixture(genericArch);
    const rec = recordEvents();
    const g = gatherOn(fx, encodedNrPages, { events: rec.sink });
    zapFolios(g, [mapAnonFolio(fx, 0)]);
    g.finish();
    expect(rec.events.some((e) => e.type === "secondaryTlbsInvalidated")).toBe(false);
  });
});

describe("genericArch", () => {
  it("is asm-generic on x86-64 geometry with the x86 33-entry ceiling", () => {
    expect(genericArch.noGather).toBe(false);
    expect(genericArch.mergeVmas).toBe(false);
    expect(genericArch.geometry.ptrsPerPte).toBe(512);
    expect(genericArch.geometry.pmdOrder).toBe(9);
    expect(genericArch.fullFlushCeiling).toBe(33);
    expect(TLB_RANGE_ULONG_MAX).toBeGreaterThan(genericArch.geometry.taskSize);
  });
});
