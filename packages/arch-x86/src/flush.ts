// Models: the x86-64 TLB flush of an mmu_gather as of Linux v6.18 (Nov 2025): tlb_flush()
// (arch/x86/include/asm/tlb.h: the whole mm when fullmm or need_flush_all, else [start, end) with
// tlb_get_unmap_shift's stride, through flush_tlb_mm_range(mm, start, end, stride_shift, freed_tables))
// and, in arch/x86/mm/tlb.c, flush_tlb_mm_range(), get_flush_tlb_info() (more than
// tlb_single_page_flush_ceiling = 33 stride entries → start 0, end TLB_FLUSH_ALL), flush_tlb_multi() →
// native_flush_tlb_multi() (on_each_cpu_mask over mm_cpumask when page tables were freed, else
// on_each_cpu_cond_mask with should_flush_tlb, which leaves lazy-TLB CPUs out), flush_tlb_func() (one
// INVLPG per stride entry, or flush_tlb_local for TLB_FLUSH_ALL; both drop the CPU's paging-structure
// caches for the PCID, Intel SDM vol. 3A §4.10.4.1), and the broadcast path of v6.15+ for an mm with a
// global ASID: broadcast_tlb_flush() (INVLPGB per up to invlpgb_count_max entries, or one
// invlpgb_flush_single_pcid_nosync for TLB_FLUSH_ALL, then __tlbsync), where consider_global_asid()
// gives a global ASID to an mm that mm_active_cpus_exceeds(mm, 3): more than 3 CPUs with it loaded and
// not lazy. flush_tlb_mm_range ends with mmu_notifier_arch_invalidate_secondary_tlbs(mm, start, end) on
// the range asked for (also above the ceiling since v6.15).
// Omits: PCIDs and tlb_gen (a CPU that missed a flush catches up with a full one; here each CPU does what
// the initiator asked), a lazy CPU's switch to init_mm when an IPI reaches it (it only drops what the
// flush covers), trim_cpumask (the model's mm_cpumask holds only CPUs with the mm loaded), the transition
// to a global ASID (mm_in_asid_transition: IPIs to every CPU until all use it) and consider_global_asid's
// 1-in-32 sampling (an mm busy enough has its global ASID already), PTI (the user PCID doubles INVLPGs and
// INVLPGBs; CPUs with INVLPGB do not need PTI), paravirt flush_tlb_multi (KVM, Xen, Hyper-V), x86-PAE
// need_flush_all, 5-level paging, LAM.

import type { ArchGeometry, GatherView, TlbMm, TlbOps } from "@mmgather/mmu-gather";
import { TLB_FLUSH_ALL, tlbGetUnmapShift } from "@mmgather/mmu-gather";

/** `tlb_single_page_flush_ceiling` (arch/x86/mm/tlb.c): at most this many INVLPGs, else a full flush. */
export const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;

/**
 * `invlpgb_count_max`: pages one INVLPGB may invalidate, CPUID Fn8000_0008 EDX[15:0] + 1 (read at boot
 * by get_cpu_cap). The value is the CPU's; 8 here is an assumption of the model, not a figure from a
 * datasheet.
 */
export const INVLPGB_COUNT_MAX = 8;

/** `consider_global_asid`: a global ASID once `mm_active_cpus_exceeds(mm, 3)`. */
const GLOBAL_ASID_ACTIVE_CPUS = 3;

/**
 * `mm_global_asid(mm) != 0`, as the model decides it: the mm runs on more than 3 CPUs that have it
 * loaded and are not lazy (`mm_active_cpus_exceeds(mm, 3)`), so one of its flushes since it got that
 * busy has given it a global ASID, which it keeps for its life.
 */
export function mmHasGlobalAsid(mm: Readonly<TlbMm>): boolean {
  let active = 0;
  for (const c of mm.cpumask) if (!mm.lazyCpus.includes(c) && ++active > GLOBAL_ASID_ACTIVE_CPUS) return true;
  return false;
}

/**
 * `native_flush_tlb_multi`'s CPU set: all of `mm_cpumask` when page tables were freed (a lazy CPU's
 * paging-structure caches may still walk them: "send the IPI everywhere"), else the CPUs
 * `should_flush_tlb` accepts — not the lazy ones, which catch up at their next switch_mm.
 */
function flushTlbMultiCpus(mm: Readonly<TlbMm>, freedTables: boolean): readonly number[] {
  if (freedTables) return mm.cpumask;
  return mm.cpumask.filter((c) => !mm.lazyCpus.includes(c));
}

/**
 * `broadcast_tlb_flush`: INVLPGBs of up to `INVLPGB_COUNT_MAX` entries over [start, end) (PMD stride
 * when the stride is a PMD, one entry per step above it), or one INVLPGB of the whole PCID, then TLBSYNC.
 * No FINAL_ONLY flag in v6.18: each INVLPGB drops the paging-structure caches too.
 */
function broadcastTlbFlush(
  ops: TlbOps,
  start: number,
  end: number,
  strideShift: number,
  pmdShift: number,
): void {
  const stride = 2 ** strideShift;
  if (end === TLB_FLUSH_ALL) ops.invlpgb(0, TLB_FLUSH_ALL, stride, true);
  else {
    let addr = start;
    do {
      let nr = 1;
      if (strideShift <= pmdShift)
        nr = Math.min(Math.max(Math.floor((end - addr) / stride), 1), INVLPGB_COUNT_MAX);
      ops.invlpgb(addr, Math.min(addr + nr * stride, end), stride, true);
      addr += nr * stride;
    } while (addr < end);
  }
  ops.tlbsync();
}

/**
 * `flush_tlb_mm_range(mm, start, end, stride_shift, freed_tables)` from the gather's CPU (`tlb.cpu`).
 * `invlpgb`: X86_FEATURE_INVLPGB, so an mm with a global ASID is flushed by broadcast.
 */
export function flushTlbMmRange(
  tlb: GatherView,
  ops: TlbOps,
  start: number,
  end: number,
  strideShift: number,
  freedTables: boolean,
  invlpgb: boolean,
  geometry: ArchGeometry,
  ceiling: number,
): void {
  const stride = 2 ** strideShift;
  // get_flush_tlb_info: (end - start) >> stride_shift entries above the ceiling → a full flush.
  let s = start;
  let e = end;
  if (e !== TLB_FLUSH_ALL && Math.floor((e - s) / stride) > ceiling) {
    s = 0;
    e = TLB_FLUSH_ALL;
  }
  const mm = tlb.mm;
  const cpu = tlb.cpu;
  if (invlpgb && mmHasGlobalAsid(mm)) {
    broadcastTlbFlush(ops, s, e, strideShift, geometry.pageShift + Math.log2(geometry.ptrsPerPte));
  } else if (mm.cpumask.some((c) => c !== cpu)) {
    // cpumask_any_but(mm_cpumask(mm), cpu) < nr_cpu_ids → flush_tlb_multi(mm_cpumask(mm), info)
    ops.flushTlbFunc(s, e, stride, true, flushTlbMultiCpus(mm, freedTables));
  } else if (cpu >= 0) {
    // mm == cpu_tlbstate.loaded_mm: flush_tlb_func on this CPU alone, no IPI.
    if (mm.cpumask.includes(cpu)) ops.flushTlbFunc(s, e, stride, true, [cpu]);
  } else if (e === TLB_FLUSH_ALL) {
    // No CPU modelled: the gather's own CPU flushes, locally (the asm-generic accounting).
    ops.flushMm(true);
  } else ops.flushRange(s, e, stride, true);
  ops.invalidateSecondaryTlbs(start, end);
}

/**
 * x86's `tlb_flush(tlb)` for `geometry`: the whole mm ([0, TLB_FLUSH_ALL)) when fullmm or need_flush_all,
 * else the recorded range, with `tlb_get_unmap_shift`'s stride and `freed_tables`.
 */
export function makeX86TlbFlush(
  geometry: ArchGeometry,
  ceiling: number,
  invlpgb: boolean,
): (tlb: GatherView, ops: TlbOps) => void {
  return (tlb, ops) => {
    const strideShift = tlbGetUnmapShift(tlb, geometry);
    if (tlb.fullmm || tlb.needFlushAll)
      flushTlbMmRange(tlb, ops, 0, TLB_FLUSH_ALL, strideShift, tlb.freedTables, invlpgb, geometry, ceiling);
    // A cleared_* bit always comes with a range in the kernel; an empty one has nothing to invalidate.
    else if (tlb.end > 0)
      flushTlbMmRange(tlb, ops, tlb.start, tlb.end, strideShift, tlb.freedTables, invlpgb, geometry, ceiling);
  };
}
