import { defineArch, TLB_RANGE_ULONG_MAX } from "@mmgather/mmu-gather";
import { describeArchContract } from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import { genericArch } from "../index.js";

describeArchContract(genericArch);

// A third adapter written against the public API alone: every flush invalidates the whole mm.
const alwaysMmArch = defineArch({
  name: "always-mm",
  tlbFlush(tlb, ops) {
    ops.flushMm(tlb.freedTables);
  },
});
describeArchContract(alwaysMmArch);

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
