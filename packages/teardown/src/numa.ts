// Models: NUMA balancing's hinting scan of the target mm on another CPU while the teardown runs, as Linux
// v6.18 (torvalds/linux, Nov 2025) does it for PMD-mapped THPs: task_numa_work → change_prot_numa
// (mm/mempolicy.c) → change_protection(MM_CP_PROT_NUMA) (mm/mprotect.c) under mmap_read_lock, over the
// VMAs in the tree; for each huge PMD, change_huge_pmd (mm/huge_memory.c) under the PMD lock:
// pmdp_invalidate_ad — the entry is flushed from the TLBs but never reads as none — then set_pmd_at of
// the PROT_NONE entry. Commit ced108037c2a (Linux 4.15) made it so: with pmdp_huge_get_and_clear and a
// later set_pmd_at, MADV_DONTNEED's zap_pmd_range (which looks at the PMD without the lock) could see
// none in between, skip it, and return with the THP still mapped once the scan put the entry back.
// The change of one huge PMD is a pluggable step (`NumaScan.steps.changeHugePmd`): a generator whose
// every yield is a point where other CPUs run while this one holds the PMD lock.
// Omits: PTE-mapped pages (change_pte_range changes them under the PTE lock, which the zap takes too,
// and flushes through its own mmu_gather), the hinting faults and the migrations they trigger, the scan
// period and size, PROT_NONE as its own bit (the entry stays present with its write and young bits
// cleared), the huge zero folio and already-PROT_NONE entries (skipped, as change_huge_pmd does).
import type { FlushShare } from "./cpu-tlb.js";
import { TeardownError } from "./errors.js";
import type { Machine } from "./machine.js";
import type { Mm } from "./mm.js";
import { mmapReadLock, mmapReadUnlock, type OpSteps } from "./mmap-lock.js";
import { LEVEL_PMD } from "./page-tables.js";
import { PMD_HUGE, PTE_PRESENT, PTE_WRITE, PTE_YOUNG, ptePfn } from "./pte.js";

/** What one hinting scan did (every count exact). */
export interface NumaScanCounters extends FlushShare {
  /** Huge PMDs change_huge_pmd made PROT_NONE. */
  hugePmdsChanged: number;
  /**
   * Their TLB flushes (pmdp_invalidate_ad: a PMD-range flush each), with the remote CPUs reached,
   * entries dropped and device commands they cost (the report's CPU counters leave this share out).
   */
  tlbFlushes: number;
}

/** What a `changeHugePmd` step works with. */
export interface NumaScanContext {
  readonly mm: Mm;
  readonly counters: NumaScanCounters;
  /** Flushes the PMD-sized range at virtual page `base` from every CPU (and device) of the mm. */
  flushPmd(base: number): void;
}

/** The steps of a hinting scan; each default is the kernel's code. */
export interface NumaScanSteps {
  /**
   * change_huge_pmd of `pmd[index]` (the huge PMD at virtual page `base`), the PMD lock held from the
   * first instruction to the last; each `yield` lets other CPUs run while it is held.
   */
  changeHugePmd(
    ctx: NumaScanContext,
    pmd: Int32Array,
    index: number,
    base: number,
  ): Generator<undefined, void>;
}

/** A hinting scan: a name and its steps. */
export interface NumaScan {
  readonly name: string;
  readonly steps: NumaScanSteps;
}

/** v6.18 change_huge_pmd(prot_numa): pmdp_invalidate_ad, then set_pmd_at(pmd_modify(old, PAGE_NONE)). */
// biome-ignore lint/correctness/useYield: the kernel's change is one lock section with nothing to yield
function* changeHugePmdDefault(
  ctx: NumaScanContext,
  pmd: Int32Array,
  index: number,
  base: number,
): Generator<undefined, void> {
  const old = pmd[index];
  ctx.flushPmd(base);
  pmd[index] = old & ~(PTE_WRITE | PTE_YOUNG);
  ctx.counters.hugePmdsChanged++;
}

/** The kernel's hinting scan. */
export const numaScan: NumaScan = Object.freeze({
  name: "change_prot_numa",
  steps: Object.freeze({ changeHugePmd: changeHugePmdDefault }),
});

/** Derives a hinting scan from `base`, replacing steps (how a broken one is built). */
export function defineNumaScan(
  base: NumaScan,
  overrides: { readonly name?: string; readonly steps?: Partial<NumaScanSteps> },
): NumaScan {
  const steps: NumaScanSteps = Object.freeze({ ...base.steps, ...overrides.steps });
  if (typeof steps.changeHugePmd !== "function") {
    throw new TeardownError("BAD_SPEC", "numa", "defineNumaScan", "step changeHugePmd must be a function");
  }
  return Object.freeze({ name: overrides.name ?? base.name, steps });
}

/** A fresh zeroed counter record. */
export function createNumaScanCounters(): NumaScanCounters {
  return {
    hugePmdsChanged: 0,
    tlbFlushes: 0,
    remoteCpuFlushes: 0,
    entriesInvalidated: 0,
    secondaryTlbInvalidations: 0,
  };
}

/**
 * task_numa_work's change_prot_numa over pages [vs, ve) of `mm`'s VMAs in the tree, as a generator of
 * lock sections (one per huge PMD, plus the scan's own yields).
 */
export function* numaScanSteps(
  mm: Mm,
  vs: number,
  ve: number,
  scan: NumaScan,
  counters: NumaScanCounters,
): OpSteps {
  const machine: Machine = mm.machine;
  const ctx: NumaScanContext = {
    mm,
    counters,
    flushPmd(base) {
      const tlbs = machine.tlbs;
      if (tlbs === null) counters.tlbFlushes++;
      else
        tlbs.flushTlbMmRange(
          mm.id,
          base * machine.pageSize,
          (base + mm.pt.span[0]) * machine.pageSize,
          counters,
        );
    },
  };
  yield* mmapReadLock(mm);
  try {
    const pt = mm.pt;
    const span = pt.span[0];
    for (const vma of mm.vmas.slice()) {
      if (vma.kind === "pfnmap") continue; // VM_PFNMAP is not migratable
      const s = Math.max(vs, vma.start);
      const e = Math.min(ve, vma.end);
      for (let base = Math.ceil(s / span) * span; base + span <= e; base += span) {
        if (vma.start > base || vma.end < base + span) continue;
        const pmdId = pt.pmdTable(base, false);
        if (pmdId < 0) continue;
        const pmd = pt.entries[pmdId]!;
        const i = pt.index(base, LEVEL_PMD);
        const ent = pmd[i];
        // pmd_trans_huge, not the huge zero folio, not PROT_NONE already (no young, no write bit here).
        if ((ent & PTE_PRESENT) === 0 || (ent & PMD_HUGE) === 0) continue;
        if (ptePfn(ent) === machine.hugeZeroFolio || (ent & (PTE_WRITE | PTE_YOUNG)) === 0) continue;
        yield* scan.steps.changeHugePmd(ctx, pmd, i, base);
        yield;
      }
    }
  } finally {
    mmapReadUnlock(mm);
  }
}
