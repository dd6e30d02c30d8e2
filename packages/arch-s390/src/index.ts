// Models: arch/s390/include/asm/tlb.h (MMU_GATHER_NO_GATHER, no delayed rmap, tlb_flush =
// __tlb_flush_mm_lazy, pte/pmd/pud/p4d_free_tlb setting flush_mm) and the PTE clears of
// arch/s390/include/asm/pgtable.h + arch/s390/mm/pgtable.c as of Linux v6.18 (Nov 2025):
// ptep_get_and_clear_full with `full` (exit) only stores _PAGE_INVALID — no IPTE, flush_mm untouched
// (no CPU runs a dying mm); otherwise ptep_xchg_lazy → ptep_flush_lazy: with only this CPU in
// cpu_attach_mask the PTE is set invalid and flush_mm is set (one IDTE later, at
// __tlb_flush_mm_lazy), else IPTE (ptep_ipte_global) purges every CPU at once.
// Omits: CSP fallback without IDTE, KVM gmap ASCEs / protected guests, 2 KiB PTE fragments of v6.5,
// the local-only IPTE variant (MACHINE_HAS_TLB_LC).

import type { ArchTlb, CostProfile, GatherView, TlbOps } from "@mmgather/mmu-gather";
import { defaultCost, defineArch } from "@mmgather/mmu-gather";

/**
 * s390 cost profile (IBM z15-class core, 5.2 GHz). Provenance: documented estimates only — no
 * published teardown measurement exists for s390 and none of these numbers was fitted or measured
 * here. Per-primitive costs as `defaultCost` except the TLB: IPTE purges every CPU's entry for one
 * PTE before the store completes (a broadcast, ~100–300 ns), IDTE purges a whole address space
 * (~1–2 µs); there are no IPIs and no range flushes.
 */
export const s390Cost: CostProfile = {
  ...defaultCost,
  name: "s390",
  source:
    "documented estimates for a z15-class core (IPTE ~100–300 ns broadcast, IDTE ~1–2 µs); not fitted, not measured",
  ipte: 200,
  idte: 1500,
  tlbFlushMm: 1500,
  tlbRemoteCpu: 0,
};

/**
 * PTE clear: `ptep_get_and_clear_full(full = tlb->fullmm)`. Exit stores _PAGE_INVALID and nothing else;
 * otherwise `ptep_flush_lazy`: lazy (invalid bit + flush_mm) when no other CPU has the mm attached,
 * IPTE when one has.
 */
function s390PteClear(tlb: GatherView, addr: number, nr: number, ops: TlbOps): void {
  if (tlb.fullmm) return;
  if (tlb.mm.attachedElsewhere) ops.ipte(addr, nr);
  else ops.invalidateLazy(nr);
}

/** `__tlb_flush_mm_lazy`: IDTE only if a lazy flush is owed; range and cleared_* are ignored. */
function s390TlbFlush(tlb: GatherView, ops: TlbOps): void {
  if (tlb.mm.flushMm) ops.idte();
}

/** s390 `*_free_tlb`: a freed table must be purged from every CPU before reuse → flush_mm. */
function s390TableFreed(_tlb: GatherView, _level: string, ops: TlbOps): void {
  ops.setFlushMm(true);
}

/**
 * The s390 adapter: IPTE or a lazy invalidation at PTE clear (nothing at exit), pages freed the moment
 * they are queued (no batch ever holds a page), rmaps never delayed, whole-mm IDTE at flush only when
 * `flush_mm` is set, RCU table batch, 256-entry PTE tables (1 MiB segments, PMD order 8), MERGE_VMAS.
 */
export const s390Arch: ArchTlb = defineArch({
  name: "s390",
  noGather: true,
  mergeVmas: true,
  delayRmap: false,
  batchRmap: false,
  tableFree: "rcu",
  tableInvalidate: true,
  // No shared-virtual-addressing IOMMU on s390: nothing calls mmu_notifier_arch_invalidate_secondary_tlbs.
  invalidatesSecondaryTlbs: false,
  // IPTE / IDTE purge every CPU's TLB in hardware: no interrupt, so gup_fast walks are waited for by
  // RCU table free alone.
  tlbFlushIpi: false,
  fullFlushCeiling: 0,
  geometry: {
    pageShift: 12,
    ptrsPerPte: 256,
    pmdOrder: 8,
    ptrsPerPmd: 2048,
    ptrsPerPud: 2048,
    ptrsPerPgd: 2048,
    taskSize: 2 ** 42,
  },
  cost: s390Cost,
  pteClear: s390PteClear,
  tlbFlush: s390TlbFlush,
  tableFreed: s390TableFreed,
});
