// Models: include/asm-generic/tlb.h defaults on x86-64 geometry (arch/x86/include/asm/tlb.h flush
// shape: range with unmap stride, whole-mm above tlb_single_page_flush_ceiling = 33 entries).
// Omits: INVLPGB, PCID/lazy-TLB CPU tracking (the teardown CPU model owns CPUs), x86-PAE need_flush_all.

import type { ArchTlb } from "@mmgather/mmu-gather";
import { defineArch } from "@mmgather/mmu-gather";
import { x86_64Xeon4210rCost } from "./profiles.js";

export { arm64AltraCost, arm64AltraPriorCost, x86_64Xeon4210rCost } from "./profiles.js";

/**
 * The asm-generic adapter: pages are gathered and freed after a range (or whole-mm) flush, dirty
 * file rmaps are delayed (6.5/7.x) or every rmap batched (series), page tables go through an RCU
 * table batch, TLB flushed at every VMA end (no MERGE_VMAS), 512-entry tables, PMD order 9.
 * Its cost profile is `x86_64Xeon4210rCost`; a run may pick another (e.g. `arm64AltraCost`).
 */
export const genericArch: ArchTlb = defineArch({
  name: "generic",
  // noGather, mergeVmas, delayRmap, batchRmap, tableFree, tableInvalidate: genericArchDefaults.
  fullFlushCeiling: 33,
  geometry: {
    pageShift: 12,
    ptrsPerPte: 512,
    pmdOrder: 9,
    ptrsPerPmd: 512,
    ptrsPerPud: 512,
    ptrsPerPgd: 512,
    taskSize: 2 ** 47 - 2 ** 12,
  },
  cost: x86_64Xeon4210rCost,
});
