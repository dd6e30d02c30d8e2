// Deliberately broken gather variants and zap walks, built only through the public APIs of
// @mmgather/mmu-gather (defineVariant) and @mmgather/teardown (defineZapWalk), each with a tiny
// scenario on which the checker catches it and the story of what a real kernel would suffer.
// Browser-safe.
import { arm64Arch, createArm64Arch } from "@mmgather/arch-arm64";
import { genericArch } from "@mmgather/arch-generic";
import { x86Arch } from "@mmgather/arch-x86";
import {
  type ArchOverrides,
  type ArchTlb,
  defineArch,
  defineVariant,
  encodedNrPages,
  encodedPage,
  makeGenericTlbFlush,
  TLB_FLUSH_ALL,
  withTlbOps,
} from "@mmgather/mmu-gather";
import {
  collapse,
  defineCollapse,
  defineKvmFault,
  defineMigration,
  defineNumaScan,
  defineZapWalk,
  folioBatchWalk,
  kvmFault,
  MM_ANONPAGES,
  MM_SWAPENTS,
  migration,
  numaScan,
  PTE_WRITE,
  PTE_YOUNG,
  perPteWalk,
  ptePfn,
  pteSwapEntry,
  type ScenarioSpec,
  type ZapWalk,
  type ZapWalkOverrides,
} from "@mmgather/teardown";
import { type Scenario, type ScenarioInput, validateScenario } from "./scenario.js";
import type { VariantName } from "./spec.js";

export interface BrokenCase {
  /** What the broken code does differently. */
  readonly change: string;
  /** The violation kind the checker reports. */
  readonly expect: string;
  /** What would go wrong in a real kernel. */
  readonly consequence: string;
  /** Why the real order prevents it. */
  readonly realOrder: string;
  /** The variant the broken one derives from. */
  readonly base: VariantName;
  /** Seeds to try, in order (a concurrent race needs the right interleaving). */
  readonly seeds: readonly number[];
  /** The tiny scenario that shows it. */
  scenario(seed: number): Scenario;
  /** The spec overrides that install the broken variant / walk. */
  readonly override: Partial<ScenarioSpec>;
  /**
   * The overrides of the correct run on the same machine (default: `override` without its variant and
   * walk — the machine stays, the broken code goes). A case whose broken part is the arch adapter gives
   * the correct adapter here.
   */
  readonly realOverride?: Partial<ScenarioSpec>;
}

/** The overrides of the correct design on a broken case's machine. */
export function realOverrideOf(c: BrokenCase): Partial<ScenarioSpec> {
  if (c.realOverride !== undefined) return c.realOverride;
  const { variant: _variant, walk: _walk, ...machine } = c.override;
  return machine;
}

const freeBeforeFlush = defineVariant(encodedPage, {
  name: "free-before-flush",
  steps: {
    flushMmu(ops) {
      ops.tlbBatchPagesFlush();
      ops.tlbFlushMmuTlbonly();
      ops.tlbTableFlush();
    },
  },
});

/** The generic adapter (x86-64 geometry, its cost profile, the 33-entry ceiling) under another name. */
const likeGeneric = (name: string, overrides: Omit<ArchOverrides, "name"> = {}) =>
  defineArch({ ...genericArch, name, ...overrides });

/**
 * The generic adapter with MMU_GATHER_MERGE_VMAS (as x86 and s390 select it): no TLB flush at
 * tlb_end_vma, so a munmap's pages are still queued, unflushed, at tlb_finish_mmu — where the order
 * of tlb_flush_mmu decides. (At exit the order would not matter: no user code of a dying mm runs.)
 */
const mergeVmasArch = likeGeneric("generic+merge-vmas", { mergeVmas: true });

const delayedRmapIgnored = defineVariant(encodedNrPages, {
  name: "delayed-rmap-ignored",
  steps: { tlbDelayRmap: () => false },
});

const rmapAfterUnlock = defineZapWalk(perPteWalk, {
  name: "rmap-after-unlock",
  steps: {
    endPteTable(ctx) {
      const force = ctx.forceFlush;
      if (force) ctx.tlb.flushMmuTlbonly();
      ctx.unlock();
      ctx.tlb.enterPtl();
      ctx.tlb.flushRmaps();
      ctx.tlb.leavePtl();
      if (force) {
        ctx.forceFlush = false;
        ctx.tlb.flushMmu();
      }
    },
  },
});

const tableFreedEarly = defineZapWalk(folioBatchWalk, {
  name: "table-freed-early",
  steps: { freeTable: (ctx, _level, pfn) => ctx.mem.folioPut(pfn) },
});

/** End of a PTE table: the page-table lock is dropped before the forced TLB flush; rmaps under it again. */
const flushAfterUnlock = defineZapWalk(folioBatchWalk, {
  name: "flush-after-unlock",
  steps: {
    endPteTable(ctx) {
      const force = ctx.forceFlush;
      const table = ctx.lockedTable;
      ctx.unlock();
      if (force) ctx.tlb.flushMmuTlbonly();
      ctx.lock(table);
      if (force || ctx.deferAllRmaps) ctx.tlb.flushRmaps();
      ctx.unlock();
      if (force) {
        ctx.forceFlush = false;
        ctx.forceFromFull = false;
        ctx.tlb.flushMmu();
      }
    },
  },
});

/** The first swap entry of each PTE range is dropped once more before the real zap drops it. */
const doubleSwapFree = defineZapWalk(folioBatchWalk, {
  name: "double-swap-free",
  steps: {
    zapPtes(ctx, t, base, from, to) {
      for (let i = from; i < to; i++) {
        if (t[i] < 0) {
          ctx.swap?.freeSwapAndCache(pteSwapEntry(t[i]));
          break;
        }
      }
      return folioBatchWalk.steps.zapPtes(ctx, t, base, from, to);
    },
  },
});

/**
 * free_swap_and_cache as it was before 82b1c07a0af6 (Linux 6.9): the swap PTEs of each range are
 * zapped with the device looked up but not pinned (no get_swap_device), then the walk goes on as usual.
 */
const unpinnedSwapFree = (base: ZapWalk): ZapWalk =>
  defineZapWalk(base, {
    name: "swap-free-unpinned",
    steps: {
      zapPtes(ctx, t, vbase, from, to) {
        for (let i = from; i < to; i++) {
          if (t[i] >= 0) continue;
          const entry = pteSwapEntry(t[i]);
          t[i] = 0;
          ctx.rss[MM_SWAPENTS]--;
          ctx.counters.swapPtesCleared++;
          ctx.counters.swapBatches++;
          ctx.swap?.freeSwapAndCacheNr(entry, 1, { pinDevice: false });
        }
        return base.steps.zapPtes(ctx, t, vbase, from, to);
      },
    },
  });

/**
 * change_huge_pmd(prot_numa) as it was before ced108037c2a (Linux 4.15): pmdp_huge_get_and_clear, then —
 * the PMD lock still held, while other CPUs run — set_pmd_at of the PROT_NONE entry. In between the PMD
 * reads as none to anyone who looks without the lock.
 */
const numaGetAndClear = defineNumaScan(numaScan, {
  name: "change_huge_pmd with get-and-clear",
  steps: {
    *changeHugePmd(ctx, pmd, index, base) {
      const old = pmd[index];
      pmd[index] = 0;
      ctx.flushPmd(base);
      yield;
      pmd[index] = old & ~(PTE_WRITE | PTE_YOUNG);
      ctx.counters.hugePmdsChanged++;
    },
  },
});

/**
 * A walk broken the same way for each design: `steps` over the per-PTE walk of encoded-page and
 * contig-range, over the folio-batch walk of encoded-nr-pages.
 */
function brokenWalkPerDesign(
  name: string,
  steps: NonNullable<ZapWalkOverrides["steps"]>,
): Readonly<Record<VariantName, ZapWalk>> {
  const perPte = defineZapWalk(perPteWalk, { name, steps });
  return Object.freeze({
    "encoded-page": perPte,
    "contig-range": perPte,
    "encoded-nr-pages": defineZapWalk(folioBatchWalk, { name, steps }),
  });
}

/** zap_pte_range without flush_tlb_batched_pending (the code before 3ea277194daa, Linux 4.12). */
export const BATCHED_PENDING_SKIPPED = brokenWalkPerDesign("no flush_tlb_batched_pending", {
  flushTlbBatchedPending() {},
});

/** unmap_vmas / zap_page_range_single without the mmu notifier calls around them. */
export const MMU_NOTIFIER_SKIPPED = brokenWalkPerDesign("no mmu_notifier_invalidate_range_start/end", {
  mmuNotifierInvalidateRangeStart() {},
  mmuNotifierInvalidateRangeEnd() {},
});

/** KVM's page fault without mmu_invalidate_retry_gfn under mmu_lock: it maps whatever GUP returned. */
export const kvmFaultNoRetry = defineKvmFault(kvmFault, {
  name: "kvm fault without mmu_invalidate_retry",
  steps: { mmuInvalidateRetry: () => false },
});

/** migrate_pages_batch without try_to_unmap_flush between the batch's unmaps and its copies. */
/**
 * pmdp_collapse_flush as x86 had it from 4.19 until January 2025: flush_tlb_range passed freed_tables =
 * false to flush_tlb_mm_range, so native_flush_tlb_multi left the lazy-TLB CPUs out although the flush
 * retracts a page table.
 */
export const collapseFlushSkipsLazy = defineCollapse(collapse, {
  name: "pmdp_collapse_flush without freed_tables",
  steps: {
    pmdpCollapseFlush(ctx, clearPmd, base) {
      clearPmd();
      ctx.flushTlbRange(base, false);
    },
  },
});

/**
 * retract_page_tables / collapse_pte_mapped_thp before 2ba99c5e0881 (Linux 6.1): the retracted table goes
 * back with pte_free right after the flush — no tlb_remove_table_sync_one, no RCU.
 */
export const collapseTableFreedAtOnce = defineCollapse(collapse, {
  name: "pte_free instead of pte_free_defer",
  steps: {
    pteFreeDefer(ctx, tablePfn) {
      ctx.freeTable(tablePfn);
    },
  },
});

export const migrationCopyBeforeFlush = defineMigration(migration, {
  name: "migrate_pages without try_to_unmap_flush",
  steps: { tryToUnmapFlush() {} },
});

/** The PTE loop stops one entry short of the end of each range (an off-by-one in the end address). */
const pteLeftBehind = defineZapWalk(folioBatchWalk, {
  name: "pte-left-behind",
  steps: {
    zapPtes(ctx, t, base, from, to) {
      const end = to - from > 1 ? to - 1 : to;
      const reached = folioBatchWalk.steps.zapPtes(ctx, t, base, from, end);
      return reached < end ? reached : to;
    },
  },
});

/**
 * zap_huge_pmd without its is_huge_zero_pmd branch: a PMD mapping the huge zero folio takes the THP path —
 * rss drops by HPAGE_PMD_NR, the PMD rmap is removed and the folio queued with tlb_remove_page_size.
 */
const hugeZeroAsThp = defineZapWalk(folioBatchWalk, {
  name: "huge-zero-as-thp",
  steps: {
    zapHugePmd(ctx, pmd, pmdTableId, index, base) {
      const head = ptePfn(pmd[index]);
      if (head !== ctx.hugeZeroFolio) {
        folioBatchWalk.steps.zapHugePmd(ctx, pmd, pmdTableId, index, base);
        return;
      }
      const mm = ctx.mm;
      const nr = mm.pt.geo.ptrsPerPte;
      const addr = base * ctx.pageSize;
      ctx.lock(mm.pt.tablePfn[pmdTableId]);
      pmd[index] = 0;
      ctx.tlb.ptepGetAndClear(addr, 1);
      ctx.tlb.tlbRemovePmdTlbEntry(addr);
      const d = mm.deposits[pmdTableId];
      if (d !== null && d !== undefined && d[index] >= 0) {
        ctx.mem.folioPut(d[index]);
        d[index] = -1;
      }
      mm.rss[MM_ANONPAGES] -= nr;
      // The THP branch's rmap removal, in the design's generation: the huge zero folio was never mapped.
      if (ctx.splitAccounting.folioRmap) ctx.mem.folioRemoveRmapPmd(head, false);
      else ctx.mem.pageRemoveRmap(head, true, false);
      ctx.unlock();
      ctx.tlb.tlbRemovePageSize(head, nr * ctx.pageSize);
    },
  },
});

/**
 * zap_present_ptes for a special PTE of a VM_PFNMAP VMA without tlb_remove_tlb_entry: the PTE is cleared,
 * but the gather's range never grows to cover it (cleared_ptes stays 0), so neither tlb_end_vma nor
 * tlb_finish_mmu flushes it. Other VMAs go through the design's own walk.
 */
const pfnmapNoTlbEntry = defineZapWalk(folioBatchWalk, {
  name: "pfnmap-no-tlb-entry",
  steps: {
    zapPtes(ctx, t, base, from, to) {
      if (!ctx.noNormalPages) {
        const own = ctx.tlb.variant.policy.walkBatchesFolioPtes ? folioBatchWalk : perPteWalk;
        return own.steps.zapPtes(ctx, t, base, from, to);
      }
      for (let i = from; i < to; i++) {
        if (t[i] <= 0) continue;
        t[i] = 0;
        ctx.tlb.ptepGetAndClear((base + i) * ctx.pageSize, 1);
        ctx.counters.ptesCleared++;
        ctx.counters.presentBatches++;
      }
      return to;
    },
  },
});

const nestedFlushIgnored = defineVariant(encodedNrPages, {
  name: "nested-flush-ignored",
  steps: {
    finishMmu(ops, flushMmu) {
      flushMmu();
      ops.tlbBatchListFree();
      ops.decTlbFlushPending();
    },
  },
});

/**
 * tlb_next_batch without the MAX_GATHER_BATCH_COUNT cap and tlb_batch_pages_flush without its per-chunk
 * cond_resched: the gather grows until the operation ends and one flush frees everything at once.
 */
const unboundedFree = defineVariant(encodedNrPages, {
  name: "unbounded-free",
  policy: { capBatchCount: false, condReschedPerChunk: false },
});

/**
 * tlb_finish_mmu's nested path as Linux had it before 2019: reset the range (`__tlb_reset_range`, which
 * also clears freed_tables and cleared_*) and re-adjust it to the range again, instead of forcing a
 * whole-mm flush with freed_tables set. With the bits gone, the flush finds nothing to do.
 */
const nestedResetRange = defineVariant(encodedNrPages, {
  name: "nested-reset-range",
  steps: {
    finishMmu(ops, flushMmu) {
      if (ops.mmTlbFlushNested()) {
        const { start, end } = ops.view;
        ops.tlbResetRange();
        if (end > start) ops.tlbAdjustRange(start, end - start);
      }
      flushMmu();
      ops.tlbBatchListFree();
      ops.decTlbFlushPending();
    },
  },
});

/**
 * x86's flush_tlb_mm_range (@mmgather/arch-x86) leaves lazy-TLB CPUs out of its IPIs (should_flush_tlb)
 * unless page tables were freed; `always` leaves them out every time.
 */
const x86LikeArch = (always: boolean) =>
  always
    ? defineArch({
        ...x86Arch,
        name: "x86, skips lazy CPUs",
        tlbFlush(tlb, ops) {
          x86Arch.tlbFlush(
            tlb,
            withTlbOps(ops, {
              flushTlbFunc: (start, end, stride, walkCaches, cpus) =>
                ops.flushTlbFunc(
                  start,
                  end,
                  stride,
                  walkCaches,
                  cpus.filter((c) => !tlb.mm.lazyCpus.includes(c)),
                ),
            }),
          );
        },
      })
    : x86Arch;

/**
 * The x86 flush of v6.6 to v6.14: a range above the 33-entry ceiling becomes [0, TLB_FLUSH_ALL) for the
 * devices too (flush_tlb_mm_range rewrote start and end before the notifier call until v6.15).
 * `secondary` says what the devices then receive:
 * - "none": nothing — an arch flush without the mmu_notifier_arch_invalidate_secondary_tlbs call;
 * - "overflow": the flush-all with its end rounded up to a page, which wraps to 0 — the range the
 *   VT-d driver computed until commit e7ad6c2a4b1a (Linux 6.7-rc3): an empty invalidation;
 * - "same": the range itself (correct).
 */
const sixSixArch = (secondary: "none" | "overflow" | "same") =>
  likeGeneric(
    secondary === "same"
      ? "x86-v6.6"
      : `x86-v6.6, devices get ${secondary === "none" ? "nothing" : "an overflowed range"}`,
    {
      tlbFlush(tlb, ops) {
        let wholeMm = false;
        genericArch.tlbFlush(
          tlb,
          withTlbOps(ops, {
            flushMm(walkCaches, cpus) {
              wholeMm = true;
              ops.flushMm(walkCaches, cpus);
            },
            invalidateSecondaryTlbs(start, end) {
              if (secondary === "none") return;
              const e = wholeMm ? TLB_FLUSH_ALL : end;
              // ALIGN(-1UL, PAGE_SIZE) == 0
              ops.invalidateSecondaryTlbs(
                wholeMm ? 0 : start,
                secondary === "overflow" && e === TLB_FLUSH_ALL ? 0 : e,
              );
            },
          }),
        );
      },
    },
  );

/**
 * An arch whose range / whole-mm flushes are a hardware broadcast (arm64 `TLBI …IS`, x86 INVLPGB): no
 * IPI, so a CPU inside a gup_fast walk (interrupts off) is not waited for. `tableFree` says how it frees
 * page tables: "rcu" after a grace period (MMU_GATHER_RCU_TABLE_FREE), "direct" right after the flush.
 */
const broadcastArch = (tableFree: "rcu" | "direct") =>
  likeGeneric(tableFree === "rcu" ? "broadcast-tlbi" : "broadcast-tlbi, tables freed directly", {
    tlbFlushIpi: false,
    tableFree,
  });

/**
 * A broadcast flush without the whole-mm promotion whose range flushes are last-level only (arm64
 * `TLBI VALE1IS`) even when page tables were freed: walk caches are never invalidated by munmap.
 * `real` keeps the rule arm64's tlb_flush follows: last-level only when `freed_tables` is clear.
 */
const leafOnlyArch = (real: boolean) => {
  const flush = makeGenericTlbFlush(genericArch.geometry, 0);
  return likeGeneric(real ? "last-level-unless-tables" : "last-level-always", {
    tlbFlushIpi: false,
    fullFlushCeiling: 0,
    tlbFlush: real ? flush : lastLevelOnly(flush),
  });
};

/** `flush` with every range invalidation leaf-only (walk caches kept), whatever it was asked for. */
function lastLevelOnly(flush: ArchTlb["tlbFlush"]): ArchTlb["tlbFlush"] {
  return (tlb, ops) =>
    flush(
      tlb,
      withTlbOps(ops, {
        flushRange: (start, end, stride, _walkCaches, cpus) =>
          ops.flushRange(start, end, stride, false, cpus),
      }),
    );
}

/**
 * The arm64 adapter (v6.18 tlb_flush) with `last_level` forced on: every range flush is TLBI VALE1IS,
 * leaf entries only, even after free_pgtables freed page tables. Only a munmap below the flush_tlb_mm
 * fallback (MAX_DVM_OPS = 512 TLBIs without FEAT_TLBIRANGE) goes through it.
 */
const arm64LastLevelAlways = defineArch({
  ...arm64Arch,
  name: "arm64, last-level always",
  tlbFlush: lastLevelOnly(arm64Arch.tlbFlush),
});

/** arm64 with contpte whose clears never unfold: contpte_try_unfold_partial left out of the batched clears. */
const arm64ContpteNoUnfold = defineArch({
  ...arm64Arch,
  name: "arm64, contpte clears without unfolding",
  clearPtes: () => {},
});

/**
 * arm64 with contpte whose contpte_convert skips its TLBI — the v6.16+ elision for BBML2_NOABORT CPUs —
 * on CPUs without BBML2_NOABORT.
 */
const arm64ContpteNoBbml2 = defineArch({
  ...createArm64Arch({ bbml2NoAbort: true }),
  name: "arm64, contpte unfolds without TLBI",
  contPte: { contPtes: 16, bbml2NoAbort: false },
});

/** The MADV_DONTNEED both contpte cases break: 64K folios, [32K, 96K) covers half of two blocks. */
const contpteHalfBlocks = (name: string) =>
  mk({
    name,
    cpus: 2,
    vmas: [{ name: "heap", kind: "anon", size: "1M", folio: "64K" }],
    op: { kind: "dontneed", vma: 0, offset: "32K", length: "64K" },
  });

const mk = (input: ScenarioInput) => () => validateScenario(input, "broken-variant scenario");
const withSeed = (input: ScenarioInput) => (seed: number) =>
  validateScenario({ ...input, seed }, "broken-variant scenario");

export const BROKEN: Readonly<Record<string, BrokenCase>> = {
  "free-before-flush": {
    change: "tlb_flush_mmu frees the gathered pages first and flushes the TLB afterwards",
    expect: "useAfterFree",
    consequence:
      "another CPU still has the old translation in its TLB; the page is already back in the allocator and " +
      "handed to someone else, so that CPU reads or writes another process's (or the kernel's) data through " +
      "the stale entry: a use-after-free and an information leak.",
    realOrder:
      "tlb_flush_mmu calls tlb_flush_mmu_tlbonly() before tlb_batch_pages_flush(): every CPU has dropped the " +
      "translation before the last reference to the page is put, so nothing can reach a freed page.",
    base: "encoded-page",
    seeds: [1],
    scenario: mk({
      name: "free-before-flush",
      cpus: 2,
      vmas: [{ name: "heap", kind: "anon", size: "2M" }],
      op: { kind: "munmap", vma: 0 },
    }),
    // An arch that merges VMAs, so the pages are still queued and unflushed at tlb_finish_mmu.
    override: { variant: freeBeforeFlush, arch: mergeVmasArch },
  },
  "delayed-rmap-ignored": {
    change:
      "tlb_delay_rmap always answers no: dirty shared file pages lose their rmap while PTEs are cleared",
    expect: "dirtyRmapBeforeFlush",
    consequence:
      "once the rmap is gone, writeback (folio_mkclean) cannot find this mapping; another CPU keeps writing " +
      "through its still-valid, writable TLB entry after the page was cleaned and written back — the write " +
      "is lost when the page is reclaimed (the bug commit 5df397dec7c4 fixed).",
    realOrder:
      "a dirty shared file page is queued with the 'delay rmap' bit; its rmap is removed by tlb_flush_rmaps " +
      "only after the TLB flush and still under the page-table lock, so no CPU can write after the rmap goes.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "delayed-rmap-ignored",
      cpus: 2,
      vmas: [{ name: "file", kind: "file-shared", size: "64K", dirty: 1 }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { variant: delayedRmapIgnored },
  },
  "delayed-rmap-ignored-writeback": {
    change:
      "as delayed-rmap-ignored, with a flusher thread writing the file back on another CPU: the zap removes a " +
      "dirty shared page's rmap at once, before the TLB flush",
    expect: "cleanedWhileWritable",
    consequence:
      "folio_mkclean finds the folio unmapped and returns at once, so writeback cleans it and writes it to disk " +
      "while the other CPUs still cache a writable, dirty translation: the program's next store through it " +
      "lands in a clean page after the I/O and is never written — silent data loss, the bug 5df397dec7c4 " +
      "fixed in Linux 6.2.",
    realOrder:
      "the rmap of a dirty shared page stays until tlb_flush_rmaps runs after the TLB flush, under the " +
      "page-table lock: folio_mkclean sees the folio mapped, takes that lock, and so waits until no CPU can " +
      "still write through the old translation.",
    base: "encoded-nr-pages",
    seeds: [3, 5, 6, 9, 10],
    scenario: withSeed({
      name: "delayed-rmap-ignored-writeback",
      cpus: 3,
      vmas: [{ name: "file", kind: "file-shared", size: "64K", dirty: 1 }],
      op: { kind: "munmap", vma: 0 },
      concurrentOp: { kind: "writeback", vma: 0 },
    }),
    override: { variant: delayedRmapIgnored },
  },
  "swap-free-unpinned": {
    change:
      "free_swap_and_cache drops a zapped swap PTE's count without pinning the device (no get_swap_device), " +
      "as before 82b1c07a0af6, while swapoff runs on another CPU",
    expect: "swapDeviceUseAfterFree",
    consequence:
      "swapoff's try_to_unuse cannot see the VMA munmap detached; it waits for inuse_pages to reach 0. The zap " +
      "drops the last swap count, swapoff frees the slot's swap cache, finds the device empty and frees swap_map — " +
      "then free_swap_and_cache reads swap_map again (swap_page_trans_huge_swapped, __try_to_reclaim_swap): " +
      "a use-after-free of the swap device's memory.",
    realOrder:
      "since Linux 6.9 free_swap_and_cache_nr holds get_swap_device for the whole call: swapoff's " +
      "percpu_ref_kill waits (wait_for_completion) until put_swap_device, so swap_map outlives every reader.",
    base: "encoded-nr-pages",
    seeds: [2, 7, 11, 14],
    scenario: withSeed({
      name: "swap-free-unpinned",
      cpus: 2,
      vmas: [{ name: "heap", kind: "anon", size: "4M", swap: 1, keepInSwapCache: true }],
      op: { kind: "munmap", vma: 0 },
      concurrentOp: { kind: "swapoff" },
    }),
    override: { walk: unpinnedSwapFree(folioBatchWalk) },
  },
  "rmap-after-unlock": {
    change: "the walk drops the page-table lock before tlb_flush_rmaps removes the delayed rmaps",
    expect: "rmapOutsidePtl",
    consequence:
      "between the unlock and the rmap removal, rmap walkers (page_mkclean, migration, reclaim) see a page " +
      "whose PTE is gone but whose mapcount says it is mapped, and a racing zap of the same table can " +
      "remove the same rmap twice: mapcount underflow and a page freed while still mapped.",
    realOrder:
      "zap_pte_range calls tlb_flush_rmaps() before pte_unmap_unlock(): the PTE clear and the rmap removal " +
      "look atomic to everyone who takes that lock.",
    base: "encoded-page",
    seeds: [1],
    scenario: mk({
      name: "rmap-after-unlock",
      cpus: 2,
      vmas: [{ name: "file", kind: "file-shared", size: "64K", dirty: 1 }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { variant: "encoded-page", walk: rmapAfterUnlock },
  },
  "table-freed-early": {
    change: "free_pgtables returns a page-table page to the allocator at once instead of through the gather",
    expect: "tableFreedWhileWalkable",
    consequence:
      "another CPU's page-walk cache (or a lockless gup-fast walker) can still reach the table page; once it " +
      "is reused, the hardware walker interprets someone else's data as page-table entries and may map " +
      "arbitrary physical memory.",
    realOrder:
      "tables are queued with tlb_remove_table and freed only after the TLB and walk-cache invalidation " +
      "(and an RCU grace period / IPI), so no walker can still be inside them.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "table-freed-early",
      cpus: 2,
      vmas: [{ name: "heap", kind: "anon", size: "64K" }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { walk: tableFreedEarly },
  },
  "flush-after-unlock": {
    change:
      "at the end of a PTE table the walk drops the page-table lock before the forced TLB flush (the delayed " +
      "rmaps are still removed under the lock, after the flush)",
    expect: "dirtyFlushAfterUnlock",
    consequence:
      "between the unlock and the flush, writeback's folio_mkclean can take the lock, find the PTE already " +
      "cleared, and write the page back as clean while another CPU still writes through its cached writable " +
      "translation: that write is lost when the page is reclaimed.",
    realOrder:
      "zap_pte_range calls tlb_flush_mmu_tlbonly() (and tlb_flush_rmaps()) before pte_unmap_unlock() when a " +
      "dirty shared PTE forced the flush (commit 5df397dec7c4): no CPU can write once the lock is free.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "flush-after-unlock",
      cpus: 2,
      vmas: [{ name: "file", kind: "file-shared", size: "64K", dirty: 1 }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { walk: flushAfterUnlock },
  },
  "double-swap-free": {
    change:
      "the walk drops a swap entry's count once more than it has swap PTEs (a double free_swap_and_cache)",
    expect: "modelGuard",
    consequence:
      "the slot's count reaches zero while another swap PTE still holds it: the slot is reused for another " +
      "page, and the process that still maps the old entry later swaps in someone else's data — silent " +
      "memory corruption; the kernel notices only when a put finds the count already at zero.",
    realOrder:
      "zap_pte_range clears each swap PTE once and drops exactly one swap count for it (free_swap_and_cache, " +
      "or free_swap_and_cache_nr for a batch): counts and swap PTEs stay equal.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "double-swap-free",
      cpus: 1,
      vmas: [{ name: "heap", kind: "anon", size: "256K", swap: 0.5 }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { walk: doubleSwapFree },
  },
  "nested-reset-range": {
    change:
      "tlb_finish_mmu's nested path resets the range (__tlb_reset_range) and re-adjusts it instead of forcing " +
      "a whole-mm flush: the reset also clears freed_tables and the cleared_* bits",
    expect: "staleTlbAfterReturn",
    consequence:
      "with the bits cleared the final flush thinks nothing was unmapped: the racing thread's cleared PTEs stay " +
      "cached in other CPUs' TLBs (and freed page tables in their walk caches) after MADV_DONTNEED returns — " +
      "stale reads and lost writes in user space, as arm64 hit before the 2019 fix.",
    realOrder:
      "under mm_tlb_flush_nested() tlb_finish_mmu sets fullmm and freed_tables (and resets the range) so the " +
      "flush invalidates the whole mm, walk caches included, whatever this gather itself recorded.",
    base: "encoded-nr-pages",
    seeds: Array.from({ length: 40 }, (_, i) => i + 1),
    scenario: withSeed({
      name: "nested-reset-range",
      cpus: 2,
      vmas: [{ name: "heap", kind: "anon", size: "64K" }],
      op: { kind: "dontneed", vma: 0 },
      concurrentOp: { kind: "dontneed", vma: 0 },
    }),
    override: { variant: nestedResetRange },
  },
  "skip-lazy-cpus": {
    change:
      "the arch's TLB flush never sends its IPI to CPUs in lazy-TLB mode, even when the flush follows freeing " +
      "page tables (freed_tables)",
    expect: "tableFreedWhileWalkable",
    consequence:
      "a CPU that ran the process and now runs a kernel thread keeps the mm loaded; its paging-structure " +
      "caches still point at the page tables munmap just freed. A speculative walk there reads the freed (and " +
      "reused) page as a page table: it can load a bogus translation or trip a machine check — the reason x86 " +
      "flushes lazy CPUs whenever tables are freed.",
    realOrder:
      "should_flush_tlb (arch/x86/mm/tlb.c) skips a lazy CPU only when no page tables were freed; with " +
      "freed_tables set the IPI reaches every CPU in mm_cpumask, lazy ones included, before the tables go.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "skip-lazy-cpus",
      cpus: 4,
      lazyCpus: 2,
      vmas: [{ name: "heap", kind: "anon", size: "4M" }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { arch: x86LikeArch(true) },
    realOverride: { arch: x86LikeArch(false) },
  },
  "skip-secondary-tlbs": {
    change:
      "the arch's TLB flush invalidates the CPUs but never calls mmu_notifier_arch_invalidate_secondary_tlbs, " +
      "so a device that shares the process's page tables through its IOMMU keeps its cached translations",
    expect: "secondaryTlbUseAfterFree",
    consequence:
      "a GPU or accelerator bound to the process (shared virtual addressing) still translates the unmapped " +
      "addresses through its IOTLB after munmap freed the pages: its next DMA reads or writes memory that now " +
      "belongs to someone else — a use-after-free no CPU-side check can see. (Exit is safe even so: " +
      "mmu_notifier_release detaches the device before anything is zapped.)",
    realOrder:
      "since v6.6 the arch's flush ends by telling the secondary TLBs the same range (x86 flush_tlb_mm_range, " +
      "arm64 __flush_tlb_range): the devices drop their entries with the CPUs, before tlb_flush_mmu frees a " +
      "page; before v6.6 tlb_flush_mmu_tlbonly called the notifier itself.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "skip-secondary-tlbs",
      cpus: 1,
      devices: 1,
      vmas: [{ name: "buffer", kind: "anon", size: "64K" }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { arch: sixSixArch("none") },
    realOverride: { arch: sixSixArch("same") },
  },
  "secondary-flush-all-overflow": {
    change:
      "a range flush above the 33-page ceiling reaches the devices as a flush of everything, [0, -1UL), and " +
      "the IOMMU driver rounds that end up to a page boundary: it wraps to 0, so the devices invalidate an " +
      "empty range",
    expect: "secondaryTlbUseAfterFree",
    consequence:
      "what Intel VT-d did on v6.6 (fixed by commit e7ad6c2a4b1a in 6.7-rc3): after an MADV_DONTNEED or munmap " +
      "of more than 33 pages, the IOTLB and the device's ATS cache keep translations to pages that go back to " +
      "the allocator — a device using shared virtual addressing DMAs into freed memory. Small ranges are " +
      "flushed by address and stay correct, which is why it went unnoticed.",
    realOrder:
      "the driver must treat an end of -1UL as 'the whole address space' (the fix invalidates every address of " +
      "the PASID then) before it rounds anything; the devices then drop all entries before the pages are freed.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "secondary-flush-all-overflow",
      cpus: 1,
      devices: 1,
      vmas: [{ name: "buffer", kind: "anon", size: "256K" }],
      op: { kind: "dontneed", vma: 0 },
    }),
    override: { arch: sixSixArch("overflow") },
    realOverride: { arch: sixSixArch("same") },
  },
  "gup-fast-direct-table-free": {
    change:
      "an arch whose TLB flush is a hardware broadcast (no IPI: arm64 TLBI …IS, x86 INVLPGB) frees page " +
      "tables right after the flush, as an IPI-flushing arch may, instead of after an RCU grace period",
    expect: "tableFreedUnderGupFast",
    consequence:
      "another thread of the process is inside get_user_pages_fast with interrupts off, reading the page " +
      "table munmap just unlinked: the broadcast flush does not wait for it, the table is freed and reused, " +
      "and the walk reads garbage as PTEs — it can pin and hand out a random page (a use-after-free the " +
      "kernel cannot detect). This is why arm64 frees page tables through RCU, and why x86 made RCU table " +
      "free unconditional (commit a37259732a7d, v6.15) before it flushed with INVLPGB instead of IPIs.",
    realOrder:
      "with MMU_GATHER_RCU_TABLE_FREE the table batch goes to call_rcu: gup_fast's interrupts-off walk is an " +
      "RCU read-side critical section, so the tables are freed only after it ended; an IPI-based flush gets " +
      "the same by waiting for every target CPU to take the interrupt; a table freed alone when no batch page " +
      "can be allocated waits for tlb_remove_table_sync_one's IPI.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "gup-fast-direct-table-free",
      cpus: 2,
      gupFast: 1,
      vmas: [{ name: "heap", kind: "anon", size: "4M" }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { arch: broadcastArch("direct") },
    realOverride: { arch: broadcastArch("rcu") },
  },
  "last-level-only-invalidate": {
    change:
      "the arch's flush always invalidates last-level entries only (arm64 TLBI VALE1IS), even when page tables " +
      "were freed: paging-structure caches are never invalidated by munmap",
    expect: "tableFreedWhileWalkable",
    consequence:
      "no thread of the process touched the memory, yet every CPU with the mm loaded may have walked its page " +
      "tables speculatively and cached the table pages: munmap frees and reuses them while those caches still " +
      "point at them, and the next walk there reads whatever the new owner wrote as page-table entries — " +
      "bogus translations, or a machine check.",
    realOrder:
      "arm64's tlb_flush uses last-level TLBIs only when tlb->freed_tables is clear; once tables were freed it " +
      "invalidates all levels (and x86 flushes the paging-structure caches with the range), before the tables " +
      "go.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "last-level-only-invalidate",
      cpus: 2,
      touch: 0,
      vmas: [{ name: "heap", kind: "anon", size: "4M" }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { arch: leafOnlyArch(false) },
    realOverride: { arch: leafOnlyArch(true) },
  },
  "unbounded-free": {
    change:
      "tlb_next_batch no longer stops at MAX_GATHER_BATCH_COUNT batch pages, and tlb_batch_pages_flush no " +
      "longer calls cond_resched between its 512-entry chunks",
    expect: "freesWithoutResched",
    consequence:
      "exiting a large process frees every one of its pages in one go at tlb_finish_mmu, with no reschedule " +
      "point: on a non-preemptible kernel the CPU is stuck for seconds — soft-lockup and RCU-stall warnings, " +
      "other tasks on that CPU starve. (The cap was added against exactly this; in 2022 even the cap proved " +
      "not enough on machines with 16K pages, which is why the per-chunk cond_resched came.)",
    realOrder:
      "a gather holds at most MAX_GATHER_BATCH_COUNT batch pages (about 10000 entries, the amount tlb.h says is " +
      "safe to free without a preemption point): a full gather forces a flush mid-walk, where zap_pmd_range's " +
      "cond_resched follows; and the flush itself calls cond_resched after every 512 entries.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "unbounded-free",
      cpus: 1,
      vmas: [{ name: "heap", kind: "anon", size: "64M" }],
      op: { kind: "exit" },
    }),
    override: { variant: unboundedFree },
  },
  "deferred-split-fully-unmapped": {
    change:
      'the 6.18 design runs on the folio layer\'s v6.9 rmap (rmapPolicy: "v6.9"): __folio_remove_rmap calls ' +
      "deferred_split_folio for every PTE-level unmap of a large anon folio, whether or not a page of it is " +
      "still mapped — the rule before v6.10's partially-mapped gate (98046944a159)",
    expect: "deferredSplitFullyUnmapped",
    consequence:
      "every mTHP the munmap zaps whole is put on the deferred-split queue although nothing maps it any more and " +
      "the gather is about to free it: split_queue_lock is taken to queue it and again at free to take it off, " +
      "and the deferred-split statistics (the ones users read to see how often their large folios get split) " +
      "count a split that never happens. Harmless for memory safety; a cost and a false signal on exactly the " +
      "path the 2023 series batched: once a whole folio's rmap goes in one call, the unmap can tell a fully " +
      "unmapped folio from a partly unmapped one, and v6.10 stopped queueing the former.",
    realOrder:
      "v6.10+ __folio_remove_rmap computes partially_mapped = nr && atomic_read(mapped) for a PTE-level unmap " +
      "(some page of the folio still mapped after this call) and queues only then; a batch that unmaps the " +
      "whole folio at once (folio_remove_rmap_ptes over folio_pte_batch's run) leaves it off the queue. The " +
      "series' folio_remove_rmap_range had the same gate (nr_mapped).",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "deferred-split-fully-unmapped",
      cpus: 1,
      vmas: [{ name: "heap", kind: "anon", size: "1M", folio: "64K" }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { rmapPolicy: "v6.9" },
    realOverride: {},
  },
  "pte-left-behind": {
    change: "the PTE loop of zap_pte_range stops one entry before the end of each range (an off-by-one)",
    expect: "presentAfterReturn",
    consequence:
      "MADV_DONTNEED returns while the last page of the range is still mapped: the next read returns the old " +
      "contents instead of zeroes (allocators rely on that zeroing to hand out clean memory), and the page is " +
      "not freed while the process lives. After munmap the entry would outlive its VMA: free_pgtables frees " +
      "the table with the entry still in it and the folio's mapcount never drops — a leak the kernel reports " +
      "as a bad rss-counter state at exit.",
    realOrder:
      "zap_pte_range walks every entry up to the end address (do … while (addr != end)), and its callers loop " +
      "until the whole range is done: nothing in the range is present when the operation returns.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "pte-left-behind",
      cpus: 1,
      vmas: [{ name: "heap", kind: "anon", size: "64K" }],
      op: { kind: "dontneed", vma: 0 },
    }),
    override: { walk: pteLeftBehind },
  },
  "huge-zero-as-thp": {
    change:
      "zap_huge_pmd forgets is_huge_zero_pmd: a PMD mapping the huge zero folio is torn down like a THP — " +
      "rss -= HPAGE_PMD_NR, the PMD rmap removed, the folio queued to be put after the flush",
    expect: "negativeCount",
    consequence:
      "the huge zero folio was mapped without a mapcount or a reference of its own (one huge_zero_refcount " +
      "reference per mm stands for all its mappings): removing an rmap drives its mapcount negative, and the " +
      "put after the flush would drop the last page reference of a folio every process still maps read-only — " +
      "it goes back to the allocator, is reused, and every later read of untouched anonymous memory returns " +
      "someone else's data. The rss counters go negative too (a 'Bad rss-counter state' at exit). Paths that " +
      "forgot the huge zero page are a recurring class: the 2016-2017 fixes around its refcounting and " +
      "release_pages.",
    realOrder:
      "zap_huge_pmd tests is_huge_zero_pmd right after clearing the PMD and recording its TLB entry: for the " +
      "huge zero folio it only frees the deposited table (zap_deposited_table) and unlocks — no rss, no rmap, " +
      "no tlb_remove_page_size. The mm's huge-zero reference is dropped once, by mm_put_huge_zero_folio in " +
      "__mmput.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "huge-zero-as-thp",
      cpus: 1,
      vmas: [{ name: "heap", kind: "anon", size: "2M", folio: "2M", pmd: true, readFraction: 1 }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { walk: hugeZeroAsThp },
  },
  "pfnmap-no-tlb-entry": {
    change:
      "zap_present_ptes clears the special PTEs of a VM_PFNMAP VMA (a driver's remap_pfn_range of device " +
      "memory) without tlb_remove_tlb_entry: vm_normal_page is NULL, and the walk treats 'no page' as 'nothing " +
      "to flush'",
    expect: "staleTlbAfterReturn",
    consequence:
      "the gather's range never covers the cleared PTEs, so tlb_end_vma and tlb_finish_mmu find nothing to " +
      "flush: munmap returns while another CPU still translates the old addresses to the device's pfns. No " +
      "refcount or rmap stands behind device memory to delay anything: when the driver then revokes and frees " +
      "it (unmap_mapping_range finds the PTEs already gone and has nothing to flush either) and hands it to " +
      "another process or reprograms the BAR, the stale entry reads and writes someone else's device memory " +
      "(checked as deviceMemoryUseAfterRevoke against a concurrent revoke). Special PTEs left out of the flush " +
      "range are a recurring class: the VM_PFNMAP munmap vs unmap_mapping_range race (b67fbebd4cf9, 2022) " +
      "and its v6.15 rework into free_pgtables.",
    realOrder:
      "v6.18 zap_present_ptes treats a PTE without a normal page exactly like any other for the TLB: " +
      "ptep_get_and_clear_full, then tlb_remove_tlb_entry, which adds the page to the flush range; only the " +
      "rss, rmap and page-freeing steps are skipped. tlb_flush_mmu_pfnmap flushes a VM_PFNMAP VMA's range " +
      "before free_pgtables unlinks it from the file's i_mmap.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "pfnmap-no-tlb-entry",
      cpus: 2,
      vmas: [{ name: "bar", kind: "pfnmap", size: "64K" }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { walk: pfnmapNoTlbEntry },
  },
  "pfnmap-no-tlb-entry-revoke": {
    change:
      "as pfnmap-no-tlb-entry, in the driver's own revoke: unmap_mapping_range's zap_page_range_single clears " +
      "the device PTEs without tlb_remove_tlb_entry while the process munmaps another VMA",
    expect: "deviceMemoryUseAfterRevoke",
    consequence:
      "the revoke's gather records no range, so its tlb_finish_mmu flushes nothing; unmap_mapping_range " +
      "returns and the driver frees (or hands out again) the device memory while the process's other CPU " +
      "still translates its old addresses to it: its next access reads or writes device memory that now " +
      "belongs to someone else.",
    realOrder:
      "zap_present_ptes adds every cleared PTE to the gather's range, special ones included " +
      "(tlb_remove_tlb_entry), so the revoke's tlb_finish_mmu flushes every CPU of each mm it zapped " +
      "before unmap_mapping_range returns.",
    base: "encoded-nr-pages",
    // The revoke must finish while the munmap's gather is not pending (else tlb_finish_mmu's nested-flush
    // rule flushes the whole mm and hides the bug).
    seeds: [5, 7, 10, 11],
    scenario: withSeed({
      name: "pfnmap-no-tlb-entry-revoke",
      cpus: 2,
      vmas: [
        { name: "heap", kind: "anon", size: "64K" },
        { name: "bar", kind: "pfnmap", size: "64K" },
      ],
      op: { kind: "munmap", vma: 0 },
      concurrentOp: { kind: "revoke", vma: 1 },
    }),
    override: { walk: pfnmapNoTlbEntry },
  },
  "numa-pmd-get-and-clear": {
    change:
      "NUMA balancing's change_huge_pmd clears the huge PMD (pmdp_huge_get_and_clear) and only later sets " +
      "the PROT_NONE entry, instead of pmdp_invalidate_ad, which never lets the PMD read as none",
    expect: "presentAfterReturn",
    consequence:
      "MADV_DONTNEED's zap_pmd_range looks at the PMD without its lock, finds none and skips it; the scan " +
      "then puts the entry back, and madvise returns with the THP still mapped: the program reads its old " +
      "data where it expects zeros, and the memory it meant to give back stays in use (the race fixed by " +
      "ced108037c2a in Linux 4.15; munmap is safe — mmap_lock keeps the scan off a detached VMA).",
    realOrder:
      "change_huge_pmd replaces the entry with pmdp_invalidate_ad: the PMD stays trans-huge throughout, so " +
      "zap_pmd_range takes the PMD lock, waits for the scan, and zaps the entry it set.",
    base: "encoded-nr-pages",
    // Two preemptions: the scan clears the PMD, the zap skips it, the scan sets it back before madvise returns.
    seeds: [1, 8, 19, 41],
    scenario: withSeed({
      name: "numa-pmd-get-and-clear",
      cpus: 2,
      vmas: [{ name: "heap", kind: "anon", size: "4M", folio: "2M", pmd: true }],
      op: { kind: "dontneed", vma: 0 },
      concurrentOp: { kind: "numa", vma: 0 },
    }),
    override: { numaScan: numaGetAndClear },
    realOverride: {},
  },
  "batched-pending-skipped": {
    change:
      "zap_pte_range does not call flush_tlb_batched_pending after taking the page-table lock, so it ignores " +
      "the TLB flushes a concurrent migration deferred for this mm (try_to_migrate_one with TTU_BATCH_FLUSH)",
    expect: "staleTlbAfterReturn",
    consequence:
      "migration cleared the PTEs and put migration entries in their place but has not flushed yet; " +
      "MADV_DONTNEED finds the entries, clears them without a TLB entry to flush, and returns while another " +
      "CPU still translates the addresses to the old pages. The program's next accesses there read and write " +
      "the old pages instead of fresh zeroed ones, and those stores are lost once migration frees them (the " +
      "race fixed by 3ea277194daa in Linux 4.12 for munmap, mprotect and madvise). Archs that flush every " +
      "PTE as they clear it (asm-generic, s390) cannot have it.",
    realOrder:
      "every path that changes PTEs another CPU may have unmapped with a deferred flush calls " +
      "flush_tlb_batched_pending under the page-table lock: mm->tlb_flush_batched says a deferred flush may be " +
      "outstanding, so it flushes the mm (x86 flush_tlb_mm, arm64 dsb(ish)) before looking at the PTEs.",
    base: "encoded-nr-pages",
    // The migration must unmap every PTE before the zap reaches the table and flush only after it returns.
    seeds: [10, 25, 30, 31],
    scenario: withSeed({
      name: "batched-pending-skipped",
      cpus: 2,
      vmas: [{ name: "heap", kind: "anon", size: "64K" }],
      op: { kind: "dontneed", vma: 0 },
      concurrentOp: { kind: "migrate", vma: 0 },
    }),
    override: { walk: BATCHED_PENDING_SKIPPED["encoded-nr-pages"], arch: x86Arch },
  },
  "migration-copy-before-flush": {
    change:
      "migrate_pages_batch copies each folio (migrate_folio_move) without first calling try_to_unmap_flush for " +
      "the PTE clears try_to_migrate_one deferred",
    expect: "migratedWhileWritable",
    consequence:
      "another CPU still holds a writable, dirty translation of the old page: its stores after the copy go to " +
      "the old page, which is then freed — the data is silently lost, and the freed page is written through " +
      "the stale entry after it has been reused (a use-after-free as well).",
    realOrder:
      "migrate_pages_batch unmaps the whole batch, calls try_to_unmap_flush once (arch_tlbbatch_flush: IPIs on " +
      "x86, dsb(ish) after the TLBIs on arm64), and only then moves each folio: no CPU can store to an old page " +
      "once its copy starts.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: withSeed({
      name: "migration-copy-before-flush",
      cpus: 2,
      vmas: [{ name: "heap", kind: "anon", size: "64K" }],
      op: { kind: "dontneed", vma: 0, length: "8K" },
      concurrentOp: { kind: "migrate", vma: 0 },
    }),
    override: { migration: migrationCopyBeforeFlush, arch: x86Arch },
    realOverride: { arch: x86Arch },
  },
  "collapse-flush-skips-lazy": {
    change:
      "khugepaged's pmdp_collapse_flush flushes the retracted PMD's range with flush_tlb_range as x86 had it " +
      "from 4.19 (016c4d92cd16) until 2025: freed_tables = false, so the IPIs skip the lazy-TLB CPUs",
    expect: "tableFreedWhileWalkable",
    consequence:
      "a CPU that ran this process and switched to a kernel thread keeps the mm loaded, and its " +
      "paging-structure caches may still hold the PMD entry that pointed at the PTE table. After the RCU " +
      "grace period the table is freed and reused; a speculative walk on that CPU can then load garbage " +
      "from the reused page as PTEs — bogus TLB entries for user addresses, or on some CPUs a machine check. " +
      'The same class as the lazy-TLB flushes reverted in 2018; fixed for this path by "x86/mm: Fix ' +
      'flush_tlb_range() when used for zapping normal PMDs" (Jann Horn, January 2025, marked for stable).',
    realOrder:
      "v6.18's x86 flush_tlb_range passes freed_tables = true: flush_tlb_mm_range then IPIs every CPU in " +
      "mm_cpumask, lazy ones included, and each drops its paging-structure caches before pte_free_defer " +
      "queues the table for freeing. On arm64 and s390 the broken flush is harmless: their invalidations " +
      "reach every CPU anyway (broadcast TLBIs, whole-mm flushes), lazy ones included.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: withSeed({
      name: "collapse-flush-skips-lazy",
      cpus: 3,
      lazyCpus: 1,
      vmas: [
        { name: "heap", kind: "anon", size: "64K" },
        { name: "shm", kind: "shmem", size: "2M", folio: "2M" },
      ],
      op: { kind: "munmap", vma: 0 },
      concurrentOp: { kind: "khugepaged", vma: 1 },
    }),
    override: { collapse: collapseFlushSkipsLazy, arch: x86Arch },
    realOverride: { arch: x86Arch },
  },
  "collapse-table-freed-at-once": {
    change:
      "khugepaged's collapse_pte_mapped_thp frees the retracted PTE table with pte_free right after " +
      "pmdp_collapse_flush — as retract_page_tables did before 2ba99c5e0881 (Linux 6.1) — instead of " +
      "pte_free_defer",
    expect: "tableFreedUnderGupFast",
    consequence:
      "a gup_fast walk on another CPU (interrupts off, no lock) read the PMD before it was cleared and is " +
      "still inside the PTE table. On an arch whose TLB flush is a hardware broadcast (arm64, s390), the " +
      "flush does not wait for it, so the table is freed and may be reused while the walk still reads it " +
      "as PTEs: gup_fast can take a reference on, and hand the caller, an arbitrary page — memory " +
      "corruption reachable from user space (the bug Jann Horn fixed in 2ba99c5e0881).",
    realOrder:
      "pte_free_defer frees the table from an RCU callback: gup_fast's interrupts-off section is an RCU " +
      "read-side critical section, so the table outlives every walk that could have seen it (from Linux " +
      "6.1 to 6.5, tlb_remove_table_sync_one's IPI waited for them instead). On x86 the flush's IPIs wait " +
      "for such walks anyway, which is why the broken free is silent there.",
    base: "encoded-nr-pages",
    seeds: [1, 2, 3, 4, 5, 6, 7, 8],
    scenario: withSeed({
      name: "collapse-table-freed-at-once",
      cpus: 3,
      gupFast: 1,
      vmas: [{ name: "shm", kind: "shmem", size: "2M", folio: "2M" }],
      op: { kind: "dontneed", vma: 0, length: "64K" },
      concurrentOp: { kind: "khugepaged", vma: 0 },
    }),
    override: { collapse: collapseTableFreedAtOnce, arch: arm64Arch },
    realOverride: { arch: arm64Arch },
  },
  "mmu-notifier-skipped": {
    change:
      "unmap_vmas (and zap_page_range_single) zap the range without mmu_notifier_invalidate_range_start / " +
      "_end around it, so subscribers with page tables of their own are never told",
    expect: "kvmSpteUseAfterFree",
    consequence:
      "KVM keeps its sptes for the range: the guest goes on reading and writing pages the host has freed " +
      "and handed to someone else — another process's data, or the host kernel's — a guest-to-host escape.",
    realOrder:
      "unmap_vmas calls mmu_notifier_invalidate_range_start before the first PTE is cleared: KVM zaps its " +
      "sptes of the range and flushes the guest's TLBs, and blocks new ones until _end; the pages are freed " +
      "only after that, by tlb_finish_mmu.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "mmu-notifier-skipped",
      cpus: 1,
      kvm: true,
      vmas: [{ name: "guest-ram", kind: "anon", size: "64K" }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { walk: MMU_NOTIFIER_SKIPPED["encoded-nr-pages"] },
  },
  "kvm-fault-no-retry": {
    change:
      "KVM's page fault sets the spte without checking mmu_invalidate_retry_gfn under mmu_lock: it does not " +
      "notice that an invalidation ran (or is running) since it read mmu_invalidate_seq and looked the page up",
    expect: "kvmSpteUseAfterFree",
    consequence:
      "the vCPU looked up (GUP) a page just before MADV_DONTNEED zapped it and maps it after the " +
      "invalidation zapped the sptes; when the fault drops its GUP reference the page is freed while the " +
      "guest still maps it — the guest reads and writes memory the host reuses.",
    realOrder:
      "the fault reads mmu_invalidate_seq before the GUP and, under mmu_lock, retries when an invalidation " +
      "is in progress over the page or the sequence moved: range_start/_end bracket the zap, so a page the " +
      "zap takes away is never mapped by a fault that looked it up earlier.",
    base: "encoded-nr-pages",
    seeds: [2, 4, 5, 10],
    scenario: withSeed({
      name: "kvm-fault-no-retry",
      cpus: 2,
      kvm: true,
      touch: 0,
      vmas: [{ name: "guest-ram", kind: "anon", size: "64K" }],
      op: { kind: "dontneed", vma: 0 },
      concurrentOp: { kind: "kvm-fault", vma: 0, length: "8K" },
    }),
    override: { kvmFault: kvmFaultNoRetry },
    realOverride: {},
  },
  "nested-flush-ignored": {
    change:
      "tlb_finish_mmu ignores the nested-gather rule: when two threads zap the same range concurrently " +
      "(MADV_DONTNEED racing), it flushes only what this gather cleared",
    expect: "staleTlbAfterReturn",
    consequence:
      "the other thread cleared some PTEs but has not flushed yet; this thread finds them already empty, " +
      "returns to user space and reuses the memory while a CPU still holds the old translation, so user " +
      "space sees stale data or writes are lost.",
    realOrder:
      "tlb_finish_mmu sees mm_tlb_flush_nested() and flushes the whole range (fullmm-style) before returning, " +
      "so no thread returns while any overlapping PTE clear is still unflushed.",
    base: "encoded-nr-pages",
    seeds: Array.from({ length: 40 }, (_, i) => i + 1),
    scenario: withSeed({
      name: "nested-flush-ignored",
      cpus: 2,
      vmas: [{ name: "heap", kind: "anon", size: "64K" }],
      op: { kind: "dontneed", vma: 0 },
      concurrentOp: { kind: "dontneed", vma: 0 },
    }),
    override: { variant: nestedFlushIgnored },
  },
  "arm64-last-level-after-free": {
    change:
      "arm64's tlb_flush invalidates with TLBI VALE1IS (last level only) even when free_pgtables freed page " +
      "tables, instead of switching to TLBI VAE1IS when tlb->freed_tables is set",
    expect: "tableFreedWhileWalkable",
    consequence:
      "the broadcast invalidation drops the leaf translations but leaves every CPU's walk cache pointing at the " +
      "PTE, PMD and PUD tables munmap just handed to RCU: once the grace period frees them, a speculative walk " +
      "on any CPU with the mm loaded reads the new owner's data as page-table entries — a translation to an " +
      "arbitrary page, or an SError. RCU table free protects lockless walkers, not cached walks.",
    realOrder:
      "tlb_flush passes last_level = !tlb->freed_tables to __flush_tlb_range: after a table free the TLBIs are " +
      "VAE1IS, which invalidate the cached walks of every level too (tlb_get_level then gives no TTL hint); " +
      "ranges of MAX_DVM_OPS pages or more become flush_tlb_mm (TLBI ASIDE1IS), which does the same.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: mk({
      name: "arm64-last-level-after-free",
      cpus: 2,
      touch: 0,
      vmas: [{ name: "heap", kind: "anon", size: "1M" }],
      op: { kind: "munmap", vma: 0 },
    }),
    override: { arch: arm64LastLevelAlways },
    realOverride: { arch: arm64Arch },
  },
  "arm64-contpte-no-unfold": {
    change:
      "arm64's batched clear (contpte_[get_and_]clear_full_ptes, and ptep_get_and_clear for one PTE) clears " +
      "part of a contiguous block without unfolding it first (no contpte_try_unfold_partial)",
    expect: "contPteMisprogrammed",
    consequence:
      "the PTEs left in the block keep the contiguous bit over entries that are gone: the block no longer maps " +
      "one run of one folio, which the Arm ARM calls a misprogramming of the Contiguous bit (CONSTRAINED " +
      "UNPREDICTABLE). A TLB fill through any surviving PTE may cache the whole block — and with it the " +
      "translations of the pages MADV_DONTNEED just gave back, which the process then still reads and writes " +
      "after they are freed and reused.",
    realOrder:
      "contpte_try_unfold_partial unfolds a block the batch covers only in part (its first or its last) with " +
      "contpte_convert — clear the block, TLBI it, rewrite it without the bit — before __clear_full_ptes; only " +
      "blocks the batch covers whole are cleared as they are.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: contpteHalfBlocks("arm64-contpte-no-unfold"),
    override: { arch: arm64ContpteNoUnfold },
    realOverride: { arch: arm64Arch },
  },
  "arm64-contpte-unfold-without-tlbi": {
    change:
      "arm64's contpte_convert rewrites a block without the contiguous bit but skips the TLBI between clearing " +
      "and rewriting it — the v6.16 elision that is only valid on CPUs with BBML2_NOABORT — on CPUs without it",
    expect: "contPteTlbConflict",
    consequence:
      "the other CPU still holds the block's contiguous TLB entry while the PTEs under it are rewritten as " +
      "separate entries: without BBML2_NOABORT the TLB may hold both translations for one address and raise a " +
      "TLB conflict abort (or use either), a break-before-make violation.",
    realOrder:
      "contpte_convert clears every entry of the block and flushes it with __flush_tlb_range before __set_ptes " +
      "writes the new entries; only when system_supports_bbml2_noabort() does it skip that flush.",
    base: "encoded-nr-pages",
    seeds: [1],
    scenario: contpteHalfBlocks("arm64-contpte-unfold-without-tlbi"),
    override: { arch: arm64ContpteNoBbml2 },
    realOverride: { arch: arm64Arch },
  },
};

export const BROKEN_NAMES = Object.keys(BROKEN);
