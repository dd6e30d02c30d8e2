// Models: arch/s390/include/asm/tlb.h (MMU_GATHER_NO_GATHER, no delayed rmap, tlb_flush =
// __tlb_flush_mm_lazy, pte/pmd/pud/p4d_free_tlb setting flush_mm) and ptep_flush_lazy's IPTE
// (arch/s390/mm/pgtable.c). Omits: local-only attach (invalid bit + flush_mm instead of IPTE),
// CSP fallback without IDTE, KVM gmap ASCEs, 2 KiB PTE fragments of v6.5.

import type { ArchTlb, CostProfile, GatherView, TlbOps } from "@mmgather/mmu-gather";
import { defaultCost, defineArch } from "@mmgather/mmu-gather";

/**
 * s390 cost profile (IBM z15-class core, 5.2 GHz): documented estimates, not fitted — no published
 * teardown measurement exists for s390. Per-primitive costs as `defaultCost` except the TLB: IPTE
 * purges every CPU's entry for one PTE before the store completes (a broadcast, ~100–300 ns), IDTE
 * purges a whole address space (~1–2 µs); there are no IPIs and no range flushes.
 */
export const s390Cost: CostProfile = {
  ...defaultCost,
  name: "s390",
  source: "documented estimates for a z15-class core (IPTE ~100–300 ns broadcast, IDTE ~1–2 µs), not fitted",
  ipte: 200,
  idte: 1500,
  tlbFlushMm: 1500,
  tlbRemoteCpu: 0,
};

/** Clearing a valid PTE goes through IPTE: every CPU's TLB entry is purged before the store completes. */
function s390PteClear(_tlb: GatherView, addr: number, nr: number, ops: TlbOps): void {
  // The kernel (unverified) overwrites the PTE without IPTE when fullmm, since no CPU runs a dying
  // mm; the model invalidates anyway so the free-at-queue below stays safe against any modelled CPU.
  ops.ipte(addr, nr);
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
 * The s390 adapter: IPTE at PTE clear, pages freed the moment they are queued (no batch ever holds
 * a page), rmaps never delayed, whole-mm IDTE at flush only when `flush_mm` is set, RCU table batch,
 * 256-entry PTE tables (1 MiB segments, PMD order 8), MERGE_VMAS.
 */
export const s390Arch: ArchTlb = defineArch({
  name: "s390",
  noGather: true,
  mergeVmas: true,
  delayRmap: false,
  batchRmap: false,
  tableFree: "rcu",
  tableInvalidate: true,
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
