// Models: arch/x86/include/asm/tlb.h over include/asm-generic/tlb.h as of Linux v6.18 (Nov 2025) — x86
// overrides only tlb_flush (flush.ts: flush_tlb_mm_range and its IPI and INVLPGB paths) — and the
// mmu_gather capabilities arch/x86/Kconfig selects: MMU_GATHER_MERGE_VMAS (no flush at tlb_end_vma) and
// MMU_GATHER_RCU_TABLE_FREE, unconditional since v6.15 (a37259732a7d, "x86/mm: Make
// MMU_GATHER_RCU_TABLE_FREE unconditional", for INVLPGB: a broadcast flush waits for no gup_fast walk);
// tlb_needs_table_invalidate() keeps its asm-generic default (true); tlb_delay_rmap() exists (v6.18);
// 4-level paging with 4 KiB pages.
// Omits: what flush.ts omits; 5-level paging; 32-bit and PAE.

import { x86_64Xeon4210rCost } from "@mmgather/arch-generic";
import type { ArchGeometry, ArchTlb, CostProfile } from "@mmgather/mmu-gather";
import { defineArch } from "@mmgather/mmu-gather";
import { makeX86TlbFlush, TLB_SINGLE_PAGE_FLUSH_CEILING } from "./flush.js";

/** x86-64 4-level paging, 4 KiB pages: 512 entries per table, a PMD maps 2 MiB. */
const x86_64Geometry: ArchGeometry = {
  pageShift: 12,
  ptrsPerPte: 512,
  pmdOrder: 9,
  ptrsPerPmd: 512,
  ptrsPerPud: 512,
  ptrsPerPgd: 512,
  taskSize: 2 ** 47 - 2 ** 12,
};

/**
 * Cost profile of `x86InvlpgbArch`: `x86_64Xeon4210rCost`, the project's one profile fitted to a
 * published x86 measurement (no teardown measurement of an INVLPGB machine is published), with the
 * INVLPGB and TLBSYNC priors of `defaultCost` (`invlpgb` 100 ns, `tlbsync` 1000 ns). Provenance in
 * `source`: priors, neither fitted nor measured.
 */
export const x86InvlpgbCost: CostProfile = {
  ...x86_64Xeon4210rCost,
  name: "x86-64-4210r+invlpgb-priors",
  source:
    "x86-64-4210r (fitted, Xeon Silver 4210R) for every term but INVLPGB and TLBSYNC, which that Intel part " +
    "lacks; those two are documented priors, not fitted, not measured: an INVLPGB is issued like an INVLPG " +
    "and completes asynchronously (~100 ns, arch/x86/mm/tlb.c's per-INVLPG figure), a TLBSYNC waits for " +
    "every CPU to complete them (~1 µs, below an IPI round trip); the INVLPGB series' cover letter reports " +
    "only relative gains (TLB invalidation ~40% → ~4% of CPU time in will-it-scale tlb_flush2_threads, " +
    "36-core Milan), not a per-instruction cost",
};

const common = {
  mergeVmas: true,
  // delayRmap, batchRmap: the asm-generic defaults.
  tableFree: "rcu",
  tableInvalidate: true,
  // flush_tlb_mm_range ends with mmu_notifier_arch_invalidate_secondary_tlbs (v6.6+).
  invalidatesSecondaryTlbs: true,
  // native_flush_tlb_multi → should_flush_tlb: lazy-TLB CPUs only when page tables were freed (the
  // adapter's tlbFlush applies it to the gather's flushes: flushTlbMultiCpus).
  flushSkipsLazyCpus: true,
  fullFlushCeiling: TLB_SINGLE_PAGE_FLUSH_CEILING,
  geometry: x86_64Geometry,
} as const;

/**
 * The x86-64 adapter without broadcast invalidation (Intel CPUs, AMD before Zen 3, or a kernel without
 * INVLPGB): every flush is `flush_tlb_func` on the initiating CPU plus an IPI to each other CPU of
 * `mm_cpumask`, lazy-TLB CPUs left out unless page tables were freed; more than 33 stride entries
 * become a full flush; no flush at VMA ends (MERGE_VMAS); page tables freed after an RCU grace period.
 * Cost: `x86_64Xeon4210rCost`.
 */
export const x86Arch: ArchTlb = defineArch({
  name: "x86",
  ...common,
  // Every flush interrupts the remote CPUs: an interrupts-off gup_fast walk holds it up.
  tlbFlushIpi: true,
  // arch_tlbbatch_should_defer: another CPU in mm_cpumask; add_pending records the CPUs, the flush IPIs them.
  tlbBatch: { shouldDefer: "remoteCpus", nosync: false },
  cost: x86_64Xeon4210rCost,
  tlbFlush: makeX86TlbFlush(x86_64Geometry, TLB_SINGLE_PAGE_FLUSH_CEILING, false),
});

/**
 * `x86Arch` on a CPU with INVLPGB (AMD Zen 3 and later, Linux v6.15+): an mm running on more than 3
 * non-lazy CPUs has a global ASID and is flushed by INVLPGB broadcasts and one TLBSYNC — no IPI, lazy
 * CPUs reached too —; smaller mms are flushed by IPIs as on `x86Arch`. Cost: `x86InvlpgbCost`.
 */
export const x86InvlpgbArch: ArchTlb = defineArch({
  name: "x86-invlpgb",
  ...common,
  // Broadcast flushes wait for no interrupts-off section: gup_fast walks are waited out by the RCU
  // grace period of table freeing alone (the model applies this to the adapter's IPI flushes too).
  tlbFlushIpi: false,
  // The batched unmap flush as on x86Arch: arch_tlbbatch_add_pending's INVLPGB path (an mm with a global
  // ASID: invlpgb_flush_user_nr_nosync, waited for by TLBSYNC) is not modelled.
  tlbBatch: { shouldDefer: "remoteCpus", nosync: false },
  cost: x86InvlpgbCost,
  tlbFlush: makeX86TlbFlush(x86_64Geometry, TLB_SINGLE_PAGE_FLUSH_CEILING, true),
});
