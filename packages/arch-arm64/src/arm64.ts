// Models: the arm64 mmu_gather adapter as Linux v6.18 (Nov 2025) configures it:
//   arch/arm64/Kconfig     selects MMU_GATHER_RCU_TABLE_FREE (page tables freed after an RCU grace
//                          period: the broadcast TLBI does not wait for gup_fast), not
//                          MMU_GATHER_MERGE_VMAS (tlb_end_vma flushes every VMA), not NO_GATHER.
//   asm/tlb.h              tlb_flush (tlbflush.ts), __pte_free_tlb / __pmd_free_tlb / __pud_free_tlb
//                          (tlb_remove_ptdesc: the generic table batch, no arch TLB work),
//                          tlb_needs_table_invalidate (the generic default: flush before freeing tables).
//   asm-generic/tlb.h      tlb_delay_rmap (dirty file rmaps after the flush).
// Geometry per granule (geometry.ts); FEAT_TLBIRANGE is an option (tlbflush.ts); contiguous PTEs
// (CONFIG_ARM64_CONTPTE, default y) are an option (contpte.ts), and BBML2_NOABORT with them.
// Omits: KPTI, hugetlb (contiguous PMDs), the ASID allocator (a fullmm flush relies on it, as the kernel does).

import type { ArchTlb, CostProfile } from "@mmgather/mmu-gather";
import { ArchConfigError, defineArch } from "@mmgather/mmu-gather";
import { contPtesFor, makeContpteClearPtes, makeContpteSetPtes } from "./contpte.js";
import { arm64Cost } from "./cost.js";
import { type Arm64PageSize, arm64Geometry } from "./geometry.js";
import { makeArm64TlbFlush } from "./tlbflush.js";

/** Options of {@link createArm64Arch}. */
export interface Arm64Options {
  /** Base page size, the translation granule (default "4K"). */
  readonly pageSize?: Arm64PageSize;
  /**
   * FEAT_TLBIRANGE (`system_supports_tlb_range()`, Armv8.4): range flushes issue range TLBIs and may span
   * up to MAX_TLBI_RANGE_PAGES before falling back to `flush_tlb_mm`. Default false: Neoverse N1
   * (Ampere Altra, the default cost profile) has no range TLBI.
   */
  readonly tlbRange?: boolean;
  /**
   * CONFIG_ARM64_CONTPTE (v6.9+, on in defconfig): naturally aligned, fully mapped blocks of CONT_PTES
   * entries of one large folio get the contiguous bit at `set_ptes`, are cleared whole by the batched
   * clears and unfolded when a clear covers them in part. Default true.
   */
  readonly contpte?: boolean;
  /**
   * The CPUs implement BBML2 without conflict aborts (`system_supports_bbml2_noabort()`): contpte_convert
   * skips its TLBI (v6.16+). Default false: Neoverse N1 has no BBML2. Only with `contpte`.
   */
  readonly bbml2NoAbort?: boolean;
  /** Cost profile (default {@link arm64Cost}). */
  readonly cost?: CostProfile;
  /**
   * Adapter name (default "arm64", with the page size, "+tlbirange", "-nocontpte" and "+bbml2" when they
   * are not the defaults).
   */
  readonly name?: string;
}

const OPTION_KEYS = new Set(["pageSize", "tlbRange", "contpte", "bbml2NoAbort", "cost", "name"]);

function refuse(method: string, message: string): never {
  throw new ArchConfigError("BAD_OPTION", "arch-arm64", method, message);
}

/**
 * An arm64 adapter: broadcast TLBI flushes (no IPI, RCU table free), last-level-only invalidation
 * unless page tables were freed, range TLBIs with FEAT_TLBIRANGE, the geometry of the chosen granule,
 * contiguous PTEs (contpte) unless turned off.
 */
export function createArm64Arch(options: Arm64Options = {}): ArchTlb {
  const m = "createArm64Arch";
  if (typeof options !== "object" || options === null) refuse(m, "options must be an object");
  for (const k of Object.keys(options)) if (!OPTION_KEYS.has(k)) refuse(m, `unknown option "${k}"`);
  const pageSize = options.pageSize ?? "4K";
  const geometry = arm64Geometry(pageSize);
  const tlbRange = options.tlbRange ?? false;
  if (typeof tlbRange !== "boolean") refuse(m, `tlbRange must be a boolean, got ${String(tlbRange)}`);
  const contpte = options.contpte ?? true;
  if (typeof contpte !== "boolean") refuse(m, `contpte must be a boolean, got ${String(contpte)}`);
  const bbml2NoAbort = options.bbml2NoAbort ?? false;
  if (typeof bbml2NoAbort !== "boolean")
    refuse(m, `bbml2NoAbort must be a boolean, got ${String(bbml2NoAbort)}`);
  if (bbml2NoAbort && !contpte) refuse(m, "bbml2NoAbort only changes contpte_convert: it needs contpte");
  const name =
    options.name ??
    `arm64${pageSize === "4K" ? "" : `-${pageSize.toLowerCase()}`}${tlbRange ? "+tlbirange" : ""}${contpte ? "" : "-nocontpte"}${bbml2NoAbort ? "+bbml2" : ""}`;
  const cont = { contPtes: contPtesFor(geometry.pageShift), geometry, tlbRange, bbml2NoAbort };
  return defineArch({
    name,
    // noGather, delayRmap, batchRmap, tableInvalidate: the asm-generic defaults.
    mergeVmas: false,
    tableFree: "rcu",
    // TLBI …IS is a hardware broadcast: no CPU takes an interrupt, so no gup_fast walk is waited for.
    tlbFlushIpi: false,
    // arch_tlbbatch_should_defer: more than one CPU online; add_pending issues TLBI …IS without a DSB
    // (__flush_tlb_range_nosync), arch_tlbbatch_flush and arch_flush_tlb_batched_pending are dsb(ish).
    tlbBatch: { shouldDefer: "smp", nosync: true },
    // __flush_tlb_range / flush_tlb_mm call mmu_notifier_arch_invalidate_secondary_tlbs.
    invalidatesSecondaryTlbs: true,
    geometry,
    cost: options.cost ?? arm64Cost,
    tlbFlush: makeArm64TlbFlush(geometry, tlbRange),
    // Without contpte no PTE-aware hook: the gather keeps its fused zap path.
    contPte: contpte ? { contPtes: cont.contPtes, bbml2NoAbort } : null,
    setPtes: contpte ? makeContpteSetPtes(cont) : null,
    clearPtes: contpte ? makeContpteClearPtes(cont) : null,
  });
}

/** The default arm64 adapter: 4 KiB pages, contpte, no FEAT_TLBIRANGE, no BBML2, the Altra cost profile. */
export const arm64Arch: ArchTlb = createArm64Arch();
