import { x86_64Xeon4210rCost } from "@mmgather/arch-generic";
import { describeArchContract } from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import { x86Arch, x86InvlpgbArch, x86InvlpgbCost } from "../index.js";

describeArchContract(x86Arch);
describeArchContract(x86InvlpgbArch);

describe("x86 capabilities (arch/x86/Kconfig and asm/tlb.h, v6.18)", () => {
  it("merges VMAs, frees tables after a grace period, delays dirty file rmaps, tells the devices", () => {
    for (const arch of [x86Arch, x86InvlpgbArch]) {
      expect(arch.noGather).toBe(false);
      expect(arch.mergeVmas).toBe(true); // select MMU_GATHER_MERGE_VMAS
      expect(arch.tableFree).toBe("rcu"); // select MMU_GATHER_RCU_TABLE_FREE, unconditional since v6.15
      expect(arch.tableInvalidate).toBe(true); // tlb_needs_table_invalidate(): asm-generic default
      expect(arch.delayRmap).toBe(true);
      expect(arch.invalidatesSecondaryTlbs).toBe(true);
      expect(arch.fullFlushCeiling).toBe(33);
      expect(arch.geometry).toEqual({
        pageShift: 12,
        ptrsPerPte: 512,
        pmdOrder: 9,
        ptrsPerPmd: 512,
        ptrsPerPud: 512,
        ptrsPerPgd: 512,
        taskSize: 2 ** 47 - 2 ** 12,
      });
    }
  });

  it("IPI flushes wait out gup_fast walks; with INVLPGB some flushes are broadcasts that do not", () => {
    expect(x86Arch.tlbFlushIpi).toBe(true);
    expect(x86InvlpgbArch.tlbFlushIpi).toBe(false);
  });

  it("costs: the fitted Xeon 4210R profile; INVLPGB adds its two priors and says so", () => {
    expect(x86Arch.cost).toEqual(x86_64Xeon4210rCost);
    expect(x86InvlpgbArch.cost).toEqual(x86InvlpgbCost);
    const { name, source, ...terms } = x86InvlpgbCost;
    const { name: _n, source: _s, ...fitted } = x86_64Xeon4210rCost;
    expect(terms).toEqual(fitted);
    expect(name).not.toBe(x86_64Xeon4210rCost.name);
    expect(source).toMatch(/INVLPGB and TLBSYNC.*priors, not fitted, not measured/);
    expect(x86InvlpgbCost.invlpgb).toBeGreaterThan(0);
    expect(x86InvlpgbCost.tlbsync).toBeGreaterThan(x86InvlpgbCost.invlpgb);
  });
});
