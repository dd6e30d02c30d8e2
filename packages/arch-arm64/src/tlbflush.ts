// Models: arm64 TLB maintenance for the mmu_gather as of Linux v6.18 (Nov 2025):
//   arch/arm64/include/asm/tlb.h       tlb_flush, tlb_get_level
//   arch/arm64/include/asm/tlbflush.h  __flush_tlb_range → __flush_tlb_range_nosync,
//                                      __flush_tlb_range_limit_excess, __flush_tlb_range_op,
//                                      __TLBI_RANGE_PAGES / __TLBI_RANGE_NUM, MAX_TLBI_RANGE_PAGES,
//                                      MAX_DVM_OPS, flush_tlb_mm
// Every invalidation is a broadcast TLBI …IS followed by DSB ISH: the hardware reaches every CPU, no
// IPI is sent, so a CPU inside gup_fast (interrupts off) is not waited for.
//   tlb_flush  fullmm (exit): nothing unless page tables were freed, then flush_tlb_mm — the ASID
//              allocator never reuses the ASID without invalidating the whole TLB, so only the walk
//              caches matter. Otherwise __flush_tlb_range over [start, end) with the unmap stride,
//              last_level = !freed_tables (TLBI VALE1IS: leaf entries only, walk caches kept; TLBI
//              VAE1IS: every level) and the TTL hint of tlb_get_level.
//   __flush_tlb_range  start / end rounded to the stride; flush_tlb_mm instead when
//              __flush_tlb_range_limit_excess (without FEAT_TLBIRANGE: (end - start) >= MAX_DVM_OPS ×
//              stride, MAX_DVM_OPS = PTRS_PER_PTE; and pages > MAX_TLBI_RANGE_PAGES either way); else the
//              __flush_tlb_range_op loop, then mmu_notifier_arch_invalidate_secondary_tlbs(start, end).
//   __flush_tlb_range_op  without FEAT_TLBIRANGE one TLBI per stride; with it, one range TLBI per
//              non-zero (scale, num) digit from scale 3 down to 0, and one TLBI by address for an odd
//              last page (or a range of one page).
//   flush_tlb_mm  TLBI ASIDE1IS (every level of the ASID), then the secondary TLBs get [0, -1UL).
// The TTL hint only speeds a TLBI up on FEAT_TTL hardware: it invalidates nothing more or less.
// Omits: KPTI (the user-ASID twin of every TLBI; Neoverse N1 needs none), FEAT_LPA2's 64 KiB-aligned
// range starts (52-bit VA), the TLBI ordering barriers' own cost (costed per flush by the profile).

import type { ArchGeometry, GatherView, TlbOps } from "@mmgather/mmu-gather";
import { TLB_FLUSH_ALL, tlbGetUnmapShift } from "@mmgather/mmu-gather";

/** `TLBI_TTL_UNKNOWN` (INT_MAX): no level hint — the TLBI looks at every level. */
export const TLBI_TTL_UNKNOWN = 0x7fffffff;

/** `__TLBI_RANGE_PAGES(num, scale)`: pages one range TLBI covers, (num + 1) << (5 × scale + 1). */
export function tlbiRangePages(num: number, scale: number): number {
  return (num + 1) * 2 ** (5 * scale + 1);
}

/** `MAX_TLBI_RANGE_PAGES` = __TLBI_RANGE_PAGES(31, 3): 2^21 pages, the most one range loop covers. */
export const MAX_TLBI_RANGE_PAGES = tlbiRangePages(31, 3);

/** `__TLBI_RANGE_NUM(pages, scale)`: the num operand for `pages` at `scale`, -1 when none fits. */
export function tlbiRangeNum(pages: number, scale: number): number {
  const p = Math.min(pages, tlbiRangePages(31, scale));
  return Math.floor(p / 2 ** (5 * scale + 1)) - 1;
}

/** The TLBIs one `__flush_tlb_range_op` loop issues. */
export interface TlbiCount {
  /** TLBIs by virtual address, one stride each (VAE1IS / VALE1IS). */
  readonly vaOps: number;
  /** Range TLBIs (RVAE1IS / RVALE1IS). */
  readonly rangeOps: number;
}

/**
 * `__flush_tlb_range_op` over `pages` base pages (a multiple of `stridePages`) as the v6.18 loop runs
 * it: without FEAT_TLBIRANGE (`tlbRange` false) one TLBI per stride; with it, TLBI by address only for
 * a lone page, else one range TLBI per scale (3 down to 0) whose `__TLBI_RANGE_NUM` is not -1.
 */
export function flushTlbRangeOps(pages: number, stridePages: number, tlbRange: boolean): TlbiCount {
  let left = pages;
  let scale = 3;
  let vaOps = 0;
  let rangeOps = 0;
  while (left > 0) {
    if (!tlbRange || left === 1) {
      vaOps++;
      left -= stridePages;
      continue;
    }
    const num = tlbiRangeNum(left, scale);
    if (num >= 0) {
      rangeOps++;
      left -= tlbiRangePages(num, scale);
    }
    scale--;
  }
  return { vaOps, rangeOps };
}

/** `MAX_DVM_OPS` = PTRS_PER_PTE: the most TLBIs one range flush may issue without FEAT_TLBIRANGE. */
export function maxDvmOps(geometry: ArchGeometry): number {
  return geometry.ptrsPerPte;
}

/**
 * `__flush_tlb_range_limit_excess(start, end, pages, stride)` (v6.13 to v6.18): flush the whole mm
 * instead when, without FEAT_TLBIRANGE, the range needs MAX_DVM_OPS or more TLBIs, or when it spans
 * more than MAX_TLBI_RANGE_PAGES pages.
 */
export function flushTlbRangeLimitExcess(
  start: number,
  end: number,
  stride: number,
  tlbRange: boolean,
  geometry: ArchGeometry,
): boolean {
  const pages = (end - start) / 2 ** geometry.pageShift;
  return (!tlbRange && end - start >= maxDvmOps(geometry) * stride) || pages > MAX_TLBI_RANGE_PAGES;
}

/**
 * `tlb_get_level`: the TTL hint of the flush — 3 (PTE), 2 (PMD), 1 (PUD) or 0 (P4D) when exactly that
 * level's entries were cleared and no table was freed, else TLBI_TTL_UNKNOWN.
 */
export function tlbGetLevel(tlb: GatherView): number {
  if (tlb.freedTables) return TLBI_TTL_UNKNOWN;
  const { clearedPtes: pte, clearedPmds: pmd, clearedPuds: pud, clearedP4ds: p4d } = tlb;
  if (pte && !(pmd || pud || p4d)) return 3;
  if (pmd && !(pte || pud || p4d)) return 2;
  if (pud && !(pte || pmd || p4d)) return 1;
  if (p4d && !(pte || pmd || pud)) return 0;
  return TLBI_TTL_UNKNOWN;
}

/** `flush_tlb_mm`: TLBI ASIDE1IS — every entry and walk-cache entry of the ASID, on every CPU. */
export function flushTlbMm(ops: TlbOps): void {
  ops.flushMm(true);
  ops.invalidateSecondaryTlbs(0, TLB_FLUSH_ALL);
}

/**
 * `__flush_tlb_range(vma, start, end, stride, last_level, tlb_level)`: start and end rounded to the
 * stride, the limit check, the TLBI loop (counted with `ops.tlbiIssued`), the secondary TLBs.
 */
export function flushTlbRange(
  ops: TlbOps,
  start: number,
  end: number,
  stride: number,
  lastLevel: boolean,
  tlbRange: boolean,
  geometry: ArchGeometry,
): void {
  const s = Math.floor(start / stride) * stride;
  const e = Math.ceil(end / stride) * stride;
  if (flushTlbRangeLimitExcess(s, e, stride, tlbRange, geometry)) {
    ops.tlbiLimitExcess();
    flushTlbMm(ops);
    return;
  }
  const pageSize = 2 ** geometry.pageShift;
  const tlbis = flushTlbRangeOps((e - s) / pageSize, stride / pageSize, tlbRange);
  ops.flushRange(s, e, stride, !lastLevel);
  ops.tlbiIssued(tlbis.vaOps, tlbis.rangeOps);
  ops.invalidateSecondaryTlbs(s, e);
}

/** The arm64 `tlb_flush` for `geometry`, with or without FEAT_TLBIRANGE. */
export function makeArm64TlbFlush(
  geometry: ArchGeometry,
  tlbRange: boolean,
): (tlb: GatherView, ops: TlbOps) => void {
  return (tlb, ops) => {
    const lastLevel = !tlb.freedTables;
    if (tlb.fullmm) {
      // The ASID is never reused without a full invalidation: only freed tables need flushing.
      if (!lastLevel) flushTlbMm(ops);
      return;
    }
    // tlb_flush_mmu_tlbonly only calls with something cleared, so the range is not empty.
    if (tlb.end === 0) return;
    const stride = 2 ** tlbGetUnmapShift(tlb, geometry);
    flushTlbRange(ops, tlb.start, tlb.end, stride, lastLevel, tlbRange, geometry);
  };
}
