// Models: struct mmu_gather, struct mmu_gather_batch, the asm-generic hook set
// (include/asm-generic/tlb.h) and the caller-visible API of mm/mmu_gather.c.
// Omits: CONFIG_MMU_GATHER_PAGE_SIZE (powerpc), hugetlb PMD unsharing bits (7.x).
//
// This file is the stable public surface the teardown layer codes against.
// Names here do not change; additions are allowed.

import type { PhysMem } from "@mmgather/folio";
import type { SwapSpace } from "@mmgather/swapcache";

/** Names of the three batch-storage designs. */
export type VariantName = "encoded-page" | "contig-range" | "encoded-nr-pages";

/**
 * The kernel tree whose rules a variant follows: "mm-unstable-2023-08" (the 2023 series' base, around
 * v6.5), "6.9" (the nr-pages design as merged) or "6.18" (the same design with today's rules).
 */
export type KernelTree = "mm-unstable-2023-08" | "6.9" | "6.18";

/** Page-table level whose entries were cleared (drives the flush stride). */
export type TlbLevel = "pte" | "pmd" | "pud" | "p4d";

/**
 * The mm-wide TLB bookkeeping shared by every gather on one mm
 * (`mm->tlb_flush_pending` and s390's `mm->context.flush_mm`).
 * Create one per mm with `createTlbMm()` and pass it to every gather of that mm.
 */
export interface TlbMm {
  /** Identifier for events and listeners. */
  readonly id: number;
  /** `mm->tlb_flush_pending`: gathers currently between gather and finish on this mm. */
  tlbFlushPending: number;
  /** s390 `mm->context.flush_mm`: a lazy whole-mm flush is owed (set by table frees / local-only clears). */
  flushMm: boolean;
  /**
   * Some CPU other than the one running the current gather has the mm attached (s390
   * `cpu_attach_mask` ≠ {this CPU}; `mm_cpumask` elsewhere). Kept up to date by the owner of the CPU
   * model (teardown); false when no CPU is modelled: the zapping thread is then the mm's only user.
   */
  attachedElsewhere: boolean;
  /**
   * `mm_cpumask`: the CPUs that have this mm loaded — running one of its threads, or lazily (see
   * `lazyCpus`). Kept up to date by the owner of the CPU model (teardown); empty when no CPU is
   * modelled.
   */
  cpumask: readonly number[];
  /**
   * The CPUs of `cpumask` in lazy-TLB mode: a kernel thread runs there with this mm still loaded. No
   * user code of the mm runs there until the CPU switches back, and the switch flushes what it missed
   * (x86 `switch_mm_irqs_off` compares `tlb_gen`), so a leaf-only flush may skip them; but their
   * paging-structure caches can still walk the mm's page tables, so a flush after page tables were
   * freed must reach them.
   */
  lazyCpus: readonly number[];
  /**
   * `mm_has_notifiers(mm)`: a secondary MMU subscribed to the mm's notifiers — here a device that shares
   * the process's page tables through its IOMMU (shared virtual addressing, `iommu_sva_bind_device`) and
   * caches their translations in its own TLB. While false, `TlbOps.invalidateSecondaryTlbs` does nothing,
   * as `mmu_notifier_arch_invalidate_secondary_tlbs` does. Kept up to date by the owner of the device
   * model (teardown); false by default.
   */
  hasNotifiers: boolean;
}

/** VMA attributes the gather records at `tlb_start_vma` (`vma_exec`, `vma_huge`, `vma_pfn`). */
export interface VmaTlbFlags {
  /** VM_EXEC: the default `flush_tlb_range` also flushes the I-TLB. */
  readonly exec: boolean;
  /** hugetlb VMA. */
  readonly huge: boolean;
  /** VM_PFNMAP / VM_MIXEDMAP. */
  readonly pfnmap: boolean;
  /**
   * VM_LOCKED: every rmap removal of the VMA munlocks the folio (`munlock_vma_folio`, which the kernel
   * reaches through the `vma` argument of `folio_remove_rmap_*` / `tlb_flush_rmaps`). Default false.
   */
  readonly locked?: boolean;
}

/**
 * Read-only view of the gather. Arch hooks and variant steps receive this,
 * never the mutable engine. Field names follow `struct mmu_gather`.
 */
export interface GatherView {
  /** The mm-wide flush bookkeeping (read `flushMm`, `tlbFlushPending`). */
  readonly mm: Readonly<TlbMm>;
  /**
   * Byte address where the pending TLB range starts (`tlb->start`). The range [start, end) has one
   * meaning when empty (`end` is 0 outside fullmm, after `__tlb_reset_range`): nothing to invalidate
   * by address — the asm-generic `tlb_flush` then does nothing unless `fullmm` or `needFlushAll` asks
   * for the whole mm. A fullmm gather's range is [ULONG_MAX, ULONG_MAX): "the whole mm", not a range.
   */
  readonly start: number;
  /** Byte address one past the pending range (`tlb->end`); 0 = nothing recorded (non-fullmm). */
  readonly end: number;
  /** Why the TLB is being flushed, while `ArchTlb.tlbFlush` (or `pteClear`) runs; null otherwise. */
  readonly flushReason: TlbFlushReason | null;
  /** Whole-mm teardown (exit/exec). */
  readonly fullmm: boolean;
  /** The arch wants a full flush regardless of range. */
  readonly needFlushAll: boolean;
  /** Page-table pages were unhooked since the last flush: walk caches must be flushed too. */
  readonly freedTables: boolean;
  /** At least one queued entry still needs its rmap removed after the TLB flush (6.5 / 7.x). */
  readonly delayedRmap: boolean;
  /** PTE-level leaf entries cleared since the last flush. */
  readonly clearedPtes: boolean;
  /** PMD-level entries cleared since the last flush. */
  readonly clearedPmds: boolean;
  /** PUD-level entries cleared since the last flush. */
  readonly clearedPuds: boolean;
  /** P4D-level entries cleared since the last flush. */
  readonly clearedP4ds: boolean;
  /** Current VMA is VM_EXEC. */
  readonly vmaExec: boolean;
  /** Current VMA is hugetlb. */
  readonly vmaHuge: boolean;
  /** A PFNMAP/MIXEDMAP VMA is in the range. */
  readonly vmaPfn: boolean;
  /** Extra batch pages allocated so far (`tlb->batch_count`). */
  readonly batchCount: number;
  /** The caller declared it holds the PTE lock (`enterPtl` … `leavePtl`). */
  readonly underPtl: boolean;
  /** `tlb_finish_mmu` has run. */
  readonly finished: boolean;
  /**
   * `smp_processor_id()` of the CPU running this gather (`MmuGatherOptions.cpu`): the initiating CPU of
   * its flushes, which flushes itself and interrupts the others (x86 `flush_tlb_mm_range`); -1 when no
   * CPU is modelled.
   */
  readonly cpu: number;
}

/**
 * Why the gather flushes the TLB (`GatherView.flushReason`, and each `tlbFlushed` event's `reason`):
 * - `endVma`: `tlb_end_vma` (an arch without MMU_GATHER_MERGE_VMAS flushes each VMA's range);
 * - `batchFull`: the page batch is full, or no batch page could be allocated, or the delayed-rmap
 *   limit was reached — zap_pte_range's force_flush from a full gather, or `tlb_remove_page`'s own;
 * - `dirtyShared`: zap_pte_range's force_flush for a dirty shared page whose rmap was delayed, before
 *   the page-table lock drops;
 * - `tableFree`: `tlb_table_invalidate` before page-table pages are freed (a full table batch, the
 *   final one, or one table freed at once when no batch could be allocated);
 * - `nested`: `tlb_finish_mmu` under the nested-flush rule (another gather ran on this mm);
 * - `finish`: `tlb_finish_mmu`;
 * - `pteClear`: an arch that invalidates as it clears (s390 IPTE);
 * - `pfnmap`: `tlb_flush_mmu_pfnmap` at the start of `free_pgtables` (v6.15+): a VM_PFNMAP VMA was
 *   zapped since the last flush, and its TLB entries must be gone before it leaves the file's `i_mmap`
 *   (else `unmap_mapping_range` no longer finds it and returns before the flush);
 * - `caller`: any other `flushMmu` / `flushMmuTlbonly` a caller asks for without saying why.
 */
export type TlbFlushReason =
  | "endVma"
  | "batchFull"
  | "dirtyShared"
  | "tableFree"
  | "nested"
  | "finish"
  | "pteClear"
  | "pfnmap"
  | "caller";

/**
 * TLB invalidation kinds seen by the CPU/TLB model.
 * - `range`: `flush_tlb_range` over [start, end) with a stride.
 * - `mm`: `flush_tlb_mm` (whole address space).
 * - `ipte`: s390 INVALIDATE PAGE TABLE ENTRY at PTE clear (immediate, all CPUs).
 * - `idte`: s390 INVALIDATE DAT TABLE ENTRY (whole mm, lazy `flush_mm`).
 * - `invlpgb`: x86 INVLPGB (AMD, Linux v6.15+): one broadcast invalidation of [start, end) with a
 *   stride, or of the mm's whole PCID when `end` is `TLB_FLUSH_ALL`, on every CPU at once — no IPI, so
 *   no CPU's interrupts-off section holds it up.
 */
export type TlbFlushKind = "range" | "mm" | "ipte" | "idte" | "invlpgb";

/**
 * Listener the teardown layer's CPU/TLB model injects. Called synchronously at
 * the moment TLB entries are invalidated. Scalar arguments: no allocation.
 */
export interface TlbListener {
  /**
   * @param mmId `TlbMm.id`
   * @param kind what was invalidated
   * @param start byte address (range/ipte/invlpgb), 0 for mm/idte
   * @param end byte address one past (range/ipte/invlpgb; `TLB_FLUSH_ALL` for an INVLPGB of the whole
   *   PCID), 0 for mm/idte
   * @param stride bytes between invalidated entries (range/ipte/invlpgb), 0 for mm/idte
   * @param walkCaches paging-structure (walk) caches were flushed too
   * @param cpus the CPUs invalidated (range / mm); null: every CPU that has the mm loaded (always for
   *   ipte / idte / invlpgb, which the hardware broadcasts)
   */
  tlbInvalidate(
    mmId: number,
    kind: TlbFlushKind,
    start: number,
    end: number,
    stride: number,
    walkCaches: boolean,
    cpus: readonly number[] | null,
  ): void;
  /**
   * The secondary TLBs of the mm's notifier subscribers were told to invalidate [start, end) bytes
   * (`end` = `TLB_FLUSH_ALL`: everything). Called only while `TlbMm.hasNotifiers`.
   */
  secondaryTlbInvalidate?(mmId: number, start: number, end: number): void;
}

/**
 * What page-table freeing waits for, so that no lockless walker (`gup_fast`, which walks with interrupts
 * disabled and takes no lock) can still read a table when it is freed (mm/mmu_gather.c, v6.18):
 * with MMU_GATHER_RCU_TABLE_FREE a batch is freed by an RCU callback (`tlb_remove_table_free` →
 * `call_rcu`), and a table freed alone when no batch page could be allocated waits for an IPI to every
 * CPU first (`tlb_remove_table_one` → `tlb_remove_table_sync_one`: an interrupts-off walk holds the IPI
 * up until it is done).
 */
export interface TableFreeSync {
  /** `call_rcu`: run `free` once every CPU that was in a read-side critical section has left it. */
  callRcu(free: () => void): void;
  /** `tlb_remove_table_sync_one`: IPI every CPU and wait for each (`smp_call_function(…, 1)`). */
  syncOne(): void;
}

/**
 * What an arch hook may do to the TLB. The gather implements it: it counts,
 * emits events and forwards to the `TlbListener`.
 */
export interface TlbOps {
  /**
   * Invalidate [start, end) with `stride` bytes between entries, on the CPUs `cpus` (a subset of
   * `mm.cpumask`; default: all of them).
   */
  flushRange(start: number, end: number, stride: number, walkCaches: boolean, cpus?: readonly number[]): void;
  /** Invalidate the whole mm on the CPUs `cpus` (default: every CPU in `mm.cpumask`). */
  flushMm(walkCaches: boolean, cpus?: readonly number[]): void;
  /** s390 IPTE for `nr` PTEs starting at `addr` (all CPUs, before the PTE store completes). */
  ipte(addr: number, nr: number): void;
  /**
   * s390 `ptep_flush_lazy` when only this CPU has the mm attached: `nr` PTEs set invalid without any
   * TLB purge, and `flush_mm` set so the next `__tlb_flush_mm_lazy` purges the mm once.
   */
  invalidateLazy(nr: number): void;
  /** s390 IDTE: whole-mm invalidate including walk caches; clears `mm.flushMm`. */
  idte(): void;
  /** Set s390's lazy `mm->context.flush_mm`. */
  setFlushMm(value: boolean): void;
  /**
   * x86 `flush_tlb_func` on each CPU of `cpus` (CPUs of `mm.cpumask`): the initiating CPU
   * (`GatherView.cpu`) runs it itself, every other one on an IPI (`flush_tlb_multi` →
   * `on_each_cpu_mask` / `on_each_cpu_cond_mask`); `cpus` = [the initiating CPU] is flush_tlb_mm_range's
   * local-only branch. [start, end) one INVLPG every `stride` bytes, or a full flush when `end` is
   * `TLB_FLUSH_ALL`. Counted as `flushRange` / `flushMm` count the flush, plus `tlbIpis`,
   * `tlbCpusTargeted` and `tlbLazyCpusSkipped` (lazy CPUs of the cpumask left out of `cpus`).
   */
  flushTlbFunc(
    start: number,
    end: number,
    stride: number,
    walkCaches: boolean,
    cpus: readonly number[],
  ): void;
  /**
   * One x86 INVLPGB (`invlpgb_flush_user_nr_nosync`, or `invlpgb_flush_single_pcid_nosync` when `end` is
   * `TLB_FLUSH_ALL`): a broadcast invalidation of [start, end) with `stride` bytes between entries on
   * every CPU, the initiating one included, with no IPI. It completes asynchronously: `tlbsync` waits.
   */
  invlpgb(start: number, end: number, stride: number, walkCaches: boolean): void;
  /** x86 TLBSYNC (`__tlbsync`): wait until the INVLPGBs this CPU issued have completed on every CPU. */
  tlbsync(): void;
  /**
   * arm64: the TLBI instructions of the range flush being issued — `vaOps` by virtual address, one
   * stride each (TLBI VAE1IS / VALE1IS), and `rangeOps` by range (FEAT_TLBIRANGE: TLBI RVAE1IS /
   * RVALE1IS), as `__flush_tlb_range_op` issues them. Counting only: the invalidation itself is the
   * `flushRange` the arch calls with it.
   */
  tlbiIssued(vaOps: number, rangeOps: number): void;
  /**
   * arm64: `__flush_tlb_range_limit_excess` turned a range flush into `flush_tlb_mm` (too many
   * entries for the TLBI loop). Counting only: the invalidation itself is the arch's `flushMm`.
   */
  tlbiLimitExcess(): void;
  /**
   * arm64 contpte: `set_ptes` gave `blocks` blocks of CONT_PTES entries the contiguous bit directly
   * (`contpte_set_ptes`: aligned, fully covered, no TLB maintenance). Counting only.
   */
  contpteFold(blocks: number): void;
  /**
   * arm64 `contpte_convert` of one block: its `ptes` entries cleared and rewritten with (`fold`) or
   * without the contiguous bit, with a range flush of the block in between whose TLBIs were `vaOps` by
   * address and `rangeOps` by range (0 and 0 when BBML2_NOABORT lets it skip the flush). Counting only:
   * the invalidation itself is the arch's `flushRange`.
   */
  contpteConvert(fold: boolean, ptes: number, vaOps: number, rangeOps: number): void;
  /**
   * arm64 `contpte_[get_and_]clear_full_ptes`: one batched clear (nr > 1), which cleared `blocks`
   * contiguous blocks whole, without unfolding them. Counting only.
   */
  contpteClear(blocks: number): void;
  /**
   * `mmu_notifier_arch_invalidate_secondary_tlbs(mm, start, end)`: tell every secondary TLB sharing the
   * mm's page tables (an IOMMU's, for shared virtual addressing) to drop its translations of [start, end)
   * bytes, its paging-structure caches included; `end` = `TLB_FLUSH_ALL` for the whole address space.
   * Since v6.6 the arch's own TLB flush calls it after invalidating the CPUs (x86 `flush_tlb_mm_range`,
   * arm64 `__flush_tlb_range` / `flush_tlb_mm`, powerpc radix, riscv): a range the CPUs no longer cache
   * but a device still does is as stale as a CPU's. Does nothing unless `mm.hasNotifiers`.
   */
  invalidateSecondaryTlbs(start: number, end: number): void;
}

/**
 * Page-table geometry of an arch: the one definition every layer reads (base page size, entries per
 * table at each of the four levels, PMD order). Nothing else in the model assumes a page size.
 */
export interface ArchGeometry {
  /** log2 of the base page size in bytes (`PAGE_SHIFT`): 12 for 4 KiB pages, 14 for 16 KiB, 16 for 64 KiB. */
  readonly pageShift: number;
  /** Entries per PTE table (`PTRS_PER_PTE`): 512 x86-64, 256 s390. Power of two. */
  readonly ptrsPerPte: number;
  /** Folio order of a PMD mapping (`HPAGE_PMD_ORDER`): 9 x86-64, 8 s390. */
  readonly pmdOrder: number;
  /** Entries per PMD table (`PTRS_PER_PMD`): 512 x86-64, 2048 s390 segment tables. Power of two. */
  readonly ptrsPerPmd: number;
  /** Entries per PUD table (`PTRS_PER_PUD`): 512 x86-64, 2048 s390 region-third tables. Power of two. */
  readonly ptrsPerPud: number;
  /** Entries in the top-level table (`PTRS_PER_PGD`): 512 x86-64 4-level, 2048 s390 region-second. Power of two. */
  readonly ptrsPerPgd: number;
  /** `TASK_SIZE`: the non-fullmm range sentinel start. */
  readonly taskSize: number;
}

/**
 * Cost of each counted primitive, in nanoseconds of CPU time on one machine. The teardown layer's
 * cost model (`COST_TERMS` in `@mmgather/teardown`) multiplies each field by the counter(s) it names
 * and sums: estimated time = Σ counter × cost. No other factor enters an estimate.
 * Each field's doc names the counters it multiplies ("layer.name" as in the teardown report).
 */
export interface CostProfile {
  /** Profile id, e.g. "x86-64-4210r", "arm64-altra", "s390". */
  readonly name: string;
  /** Where the values come from (priors, fit command, machine). */
  readonly source: string;
  /**
   * How far a ratio of two estimates made with this profile (design A's time / design B's on one
   * workload) may be from the real kernel's, as a fraction: the real ratio is taken to lie within
   * [r / (1 + ratioError), r × (1 + ratioError)] of the estimated ratio r. For a fitted profile it is the
   * largest such error over the published design-to-design ratios of its calibration table (rounded up
   * to 0.01, recomputed by `teardown-lab calibrate`); for unfitted priors a documented bound. A verdict
   * calls two designs a tie when their estimates are closer than this. Not a cost term.
   */
  readonly ratioError: number;
  /** ns per PTE cleared, present or swap (`walk.ptesCleared` + `walk.swapPtesCleared`): xchg/store and its scan. */
  readonly pteClear: number;
  /** ns per zap-loop iteration over a run of present PTEs (`walk.presentBatches`): vm_normal_page, folio lookup, dirty/young tests. */
  readonly zapIteration: number;
  /** ns fixed per PTE table walked (`walk.pteTableVisits`): pte_offset_map, lazy-MMU enter/leave, rss flush. */
  readonly pteTable: number;
  /** ns per page-table-lock round trip (`teardown.ptlAcquisitions`). */
  readonly ptlLock: number;
  /** ns per atomic RMW on a folio-level field (`folio.refcountAtomics` + `nrPagesMappedAtomics` + `largeMapcountAtomics` + `entireMapcountAtomics`). */
  readonly atomic: number;
  /** ns per per-page `_mapcount` atomic (`folio.mapcountAtomics`), including the first touch of that page's struct page cache line. */
  readonly pageMapcount: number;
  /** ns per struct page cache line touched by a primitive call (`folio.metadataLines`), at L1/L2 hit cost. */
  readonly structPageLine: number;
  /** ns per memcg/node statistics update (`folio.statUpdates`). */
  readonly statUpdate: number;
  /** ns per lruvec lock round trip (`folio.lruvecLockAcquisitions`). */
  readonly lruvecLock: number;
  /** ns per deferred-split `split_queue_lock` round trip (`folio.splitQueueLockAcquisitions`). */
  readonly splitQueueLock: number;
  /** ns per address_space `i_pages` lock round trip (`folio.pageCacheLockAcquisitions`). */
  readonly pageCacheLock: number;
  /** ns per swap cluster lock round trip (`swap.clusterLocks`). */
  readonly swapClusterLock: number;
  /** ns per swap device (`si->lock`) round trip (`swap.deviceLocks`). */
  readonly swapDeviceLock: number;
  /** ns per folio taken off an LRU list (`folio.lruDels`): list_del touching both neighbours. */
  readonly lruDel: number;
  /** ns per `deferred_split_folio` call (`folio.deferredSplitCalls`), excluding its lock. */
  readonly deferredSplitCall: number;
  /** ns per `munlock_folio` call (`folio.munlockCalls`). */
  readonly munlock: number;
  /**
   * ns per huge PMD split into PTEs (`walk.hugePmdsSplit`): pmd_lock, the local part of
   * pmdp_invalidate's flush, the deposit withdrawal and one set_ptes over a PTE table. The folio-side
   * work (mapcounts, refcount) is counted by the folio terms, remote CPUs by `tlbRemoteCpu`.
   */
  readonly splitHugePmd: number;
  /** ns per `folio_pte_batch` call (`walk.folioPteBatchCalls`): setup, folio bounds, flag masks. */
  readonly folioPteBatch: number;
  /** ns per PTE taken in by `folio_pte_batch` (`walk.folioPteBatchPtes`): one load and compare. */
  readonly folioPteBatchPte: number;
  /** ns per VMA freed (`walk.vmasFreed`): `remove_vma` → `vm_ops->close`, `vm_area_free`. */
  readonly vmaFree: number;
  /** ns per `unlink_anon_vmas` with work (`walk.anonVmaUnlinks`): anon_vma lock, interval-tree erase, chain free. */
  readonly anonVmaUnlink: number;
  /** ns per `unlink_file_vma` (`walk.fileVmaUnlinks`): `i_mmap_lock_write`, interval-tree removal. */
  readonly fileVmaUnlink: number;
  /** ns per `fput` of a file VMA (`walk.fputs`): the reference drop (the final `__fput` is deferred). */
  readonly fput: number;
  /**
   * Extra ns per rmap-removal mapcount decrement that leaves the page still mapped elsewhere
   * (`folio.mapcountSharedDrops`): the line is likely cached by another CPU (a cross-core RFO).
   */
  readonly sharedMapcountDrop: number;
  /** ns per `folio_mark_accessed` / `mark_page_accessed` call (`walk.markAccessedCalls`): flag test and set. */
  readonly markAccessed: number;
  /** ns per mm_struct freed at exit (`walk.mmsFreed`): `__mmdrop`, its `pgd_free` included. */
  readonly mmFree: number;
  /** ns per gather batch slot written (`gather.entriesQueued`). */
  readonly gatherEntry: number;
  /** ns per rmap-removal call overhead beyond its atomics (`gather.rmapCallsImmediate` + `gather.rmapCallsDelayed`). */
  readonly rmapCall: number;
  /** ns per batch page allocated (`gather.batchPagesAllocated` + `gather.tableBatchAllocated`). */
  readonly batchAlloc: number;
  /** ns per `free_swap_cache` check (`gather.freeSwapCacheCalls`). */
  readonly swapCacheCheck: number;
  /** ns per folio removed from the swap cache (`swap.swapCacheDeletes`). */
  readonly swapCacheDelete: number;
  /** ns per swap-PTE reference dropped (`swap.swapPutEntries`). */
  readonly swapEntryFree: number;
  /** ns per folio returned to the page allocator (`folio.foliosFreed`): free_pages_prepare, per-folio memcg uncharge, the buddy insert (wherever it runs: at free or in a pcp drain). */
  readonly folioFree: number;
  /** ns per page returned to the page allocator (`folio.pagesFreed`): per-tail-page checks. */
  readonly pageFree: number;
  /** ns per buddy merge while freeing (`folio.buddyMerges`). */
  readonly buddyMerge: number;
  /** ns per `free_unref_page_list` / `free_unref_folios` batch call (`folio.freeListCalls`). */
  readonly freeBatch: number;
  /** ns per folio added to a per-CPU page list by `free_unref_page_commit` (`folio.pcpFrees`): list_add, count, watermark test. */
  readonly pcpFree: number;
  /** ns per free-side `pcp_spin_trylock` round trip (`folio.pcpLockAcquisitions`). */
  readonly pcpLock: number;
  /** ns per `zone->lock` round trip with irqsave (`folio.zoneLockAcquisitions`): `free_one_page` and each pcp bulk drain. */
  readonly zoneLock: number;
  /** ns fixed per `free_pcppages_bulk` beyond its zone lock (`folio.pcpBulkDrains`): isolation check, list round robin. */
  readonly pcpBulkDrain: number;
  /** ns per memcg `uncharge_batch` (`folio.memcgUnchargeBatches`): page_counter_uncharge atomics, event counts, css_put_many. */
  readonly memcgUncharge: number;
  /** ns per `lru_add_drain` (`folio.lruAddDrainCalls`). */
  readonly lruAddDrain: number;
  /** ns fixed per `tlb_flush_mmu` (`gather.flushMmuCalls`). */
  readonly flushMmu: number;
  /** ns fixed per ≤ 512-entry free chunk incl. its cond_resched (`gather.chunksFreed`). */
  readonly freeChunk: number;
  /** ns fixed per range TLB flush on the local CPU (`gather.tlbFlushRange`). */
  readonly tlbFlushRange: number;
  /** ns per stride entry of a range flush, one INVLPG / TLBI (`gather.tlbFlushRangeEntries`). */
  readonly tlbFlushRangeEntry: number;
  /** ns per whole-mm TLB flush on the local CPU (`gather.tlbFlushMm`). */
  readonly tlbFlushMm: number;
  /** ns per remote CPU flushed by a range / whole-mm flush: an IPI round trip or broadcast wait (`cpu.remoteCpuFlushes`). */
  readonly tlbRemoteCpu: number;
  /** ns per s390 IPTE, one PTE (`gather.ipte`). */
  readonly ipte: number;
  /** ns per s390 IDTE (`gather.idte`). */
  readonly idte: number;
  /** ns per x86 INVLPGB issued (`gather.invlpgb`): the instruction; the broadcast completes asynchronously. */
  readonly invlpgb: number;
  /** ns per x86 TLBSYNC (`gather.tlbsync`): the wait until every CPU has completed the INVLPGBs before it. */
  readonly tlbsync: number;
  /**
   * ns per arm64 TLBI by virtual address (`gather.tlbiVaOps`): issuing one broadcast TLBI VAE1IS /
   * VALE1IS. The DSBs around the loop are `tlbFlushRange`; the remote CPUs' share `tlbRemoteCpu`.
   */
  readonly tlbiVa: number;
  /** ns per arm64 range TLBI, FEAT_TLBIRANGE (`gather.tlbiRangeOps`): one TLBI RVAE1IS / RVALE1IS. */
  readonly tlbiRange: number;
  /**
   * ns per PTE `contpte_convert` rewrites (`gather.contpteConvertedPtes`): its `__ptep_get_and_clear`
   * (an atomic swap) and its `__set_ptes` store. The block's TLB flush is priced by the flush terms.
   */
  readonly contpteConvertPte: number;
  /** ns per page-table page freed (`gather.tablesFreed`). */
  readonly tableFree: number;
  /** ns per `call_rcu` of a table batch (`gather.rcuCalls`). */
  readonly rcuCall: number;
  /** ns per synchronous single-table free, `tlb_remove_table_one` (`gather.tableSyncOne`). */
  readonly tableSyncOne: number;
  /**
   * ns per secondary-TLB invalidation a device receives (`cpu.secondaryTlbInvalidations`): an IOMMU
   * invalidation command for the process's address space and the wait for its completion.
   */
  readonly secondaryTlbInvalidate: number;
}

/** The numeric (per-primitive ns) fields of a `CostProfile`. */
export type CostTermName = Exclude<keyof CostProfile, "name" | "source" | "ratioError">;

/** How page-table pages are freed once unhooked. */
export type TableFreeMode = "rcu" | "direct";

/**
 * The arch port (`asm/tlb.h` over `asm-generic/tlb.h`). Build with `defineArch`.
 * See `arch.ts` for the ordering invariant and the fields each hook may read.
 */
export interface ArchTlb {
  /** Adapter name, e.g. "generic", "s390". */
  readonly name: string;
  /** `MMU_GATHER_NO_GATHER`: pages are freed the moment they are queued; the queue is never full. */
  readonly noGather: boolean;
  /** `MMU_GATHER_MERGE_VMAS`: no TLB flush at `tlb_end_vma`. */
  readonly mergeVmas: boolean;
  /** `tlb_delay_rmap` exists (6.5 / 7.x): dirty file pages may have their rmap removed after the flush. */
  readonly delayRmap: boolean;
  /** The series' `tlb_batch_rmap`: every page's rmap removal deferred to `tlb_flush_rmaps` (contig-range). */
  readonly batchRmap: boolean;
  /** Page-table pages freed after an RCU grace period (`MMU_GATHER_RCU_TABLE_FREE`) or directly after the flush. */
  readonly tableFree: TableFreeMode;
  /** `tlb_needs_table_invalidate()`: flush the TLB again before freeing a table batch. */
  readonly tableInvalidate: boolean;
  /**
   * The adapter's `tlbFlush` calls `invalidateSecondaryTlbs` for everything it invalidates on the CPUs
   * (x86, arm64, powerpc radix and riscv do, from their flush functions): devices sharing a process's page
   * tables (IOMMU SVA) can only be used on such an arch. s390 has no such devices and never calls it.
   */
  readonly invalidatesSecondaryTlbs: boolean;
  /**
   * Range and whole-mm flushes reach remote CPUs by interrupt (x86's `flush_tlb_multi` IPIs): a CPU
   * with interrupts disabled — inside a `gup_fast` walk — holds the flush up until its walk is done, so
   * after the flush no such walk can still hold a table it unlinked. False for hardware broadcast
   * invalidation (arm64 `TLBI …IS`, x86 INVLPGB, s390 IPTE / IDTE): those archs need RCU table free.
   * An arch that flushes some mms by broadcast (x86 with INVLPGB: the mms with a global ASID) cannot rely
   * on its flushes either: false.
   */
  readonly tlbFlushIpi: boolean;
  /**
   * A flush that freed no page table leaves the lazy-TLB CPUs out (x86 `native_flush_tlb_multi` with
   * `should_flush_tlb`: a lazy CPU catches up at its next switch_mm, unless `freed_tables` asked for it).
   * Actors that flush outside a gather follow it (khugepaged's pmdp_collapse_flush); the adapter's
   * `tlbFlush` applies its own rule to the gather's flushes.
   */
  readonly flushSkipsLazyCpus: boolean;
  /** Range flushes larger than this many pages become whole-mm flushes (x86 `tlb_single_page_flush_ceiling` = 33); 0 = no ceiling. */
  readonly fullFlushCeiling: number;
  /** Page-table geometry. */
  readonly geometry: ArchGeometry;
  /** Cost of each counted primitive, ns. */
  readonly cost: CostProfile;
  /**
   * What clearing `nr` PTEs at `addr` does to TLBs (`ptep_get_and_clear_full`).
   * Default: nothing until the flush. s390: IPTE on every CPU.
   * May read: `fullmm`, `mm`.
   */
  pteClear(tlb: GatherView, addr: number, nr: number, ops: TlbOps): void;
  /**
   * `tlb_flush(tlb)`: invalidate what was recorded. Called only when something was cleared.
   * May read: `start`, `end`, `fullmm`, `needFlushAll`, `freedTables`, `cleared*`, `vma*`, `mm`, `cpu`
   * (the initiating CPU) and `flushReason` (why the gather flushes now). An empty range outside fullmm means nothing to
   * invalidate by address (the asm-generic flush does nothing unless `needFlushAll`).
   */
  tlbFlush(tlb: GatherView, ops: TlbOps): void;
  /**
   * Arch side of `pte_free_tlb` & co. after the generic range/bit update (s390 sets `flush_mm`).
   * May read: `fullmm`, `mm`.
   */
  tableFreed(tlb: GatherView, level: TlbLevel, ops: TlbOps): void;
  /**
   * Blocks of contiguous PTEs the arch maps under one TLB entry (arm64 contpte: CONT_PTES entries with
   * the contiguous bit), or null. The owner of the page tables reads it for TLB fills and its checks.
   */
  readonly contPte: ContPteInfo | null;
  /**
   * PTE-aware hook, or null: the arch side of `set_ptes()`, called after the caller wrote `nr` entries
   * from `index` of `ptes` (all of one folio, consecutive pages, none of them a valid entry before).
   * May rewrite any entry of the table (arm64: the contiguous bit). TLB maintenance goes through `ops`.
   */
  readonly setPtes: ((ptes: PteTableView, index: number, nr: number, ops: TlbOps) => void) | null;
  /**
   * PTE-aware hook, or null: the arch side of `[get_and_]clear_full_ptes` (`ptep_get_and_clear_full`
   * for one PTE), called by `MmuGather.clearFullPtes` before the caller clears entries [index, index +
   * nr) of `ptes` (present PTEs of one folio). May rewrite any entry of the table (arm64: unfold a
   * partly covered block) and flush through `ops`. An arch with this hook gives up the gather's fused
   * zap path (`zapFastPath`), which never shows the PTEs; one without it keeps it.
   * May read: `fullmm`, `mm`.
   */
  readonly clearPtes:
    | ((tlb: GatherView, ptes: PteTableView, index: number, nr: number, ops: TlbOps) => void)
    | null;
  /**
   * The arch's batched unmap flush (`CONFIG_ARCH_WANT_BATCHED_UNMAP_TLB_FLUSH`: x86, arm64, riscv), which
   * rmap walks that unmap (migration, reclaim) use instead of a flush per PTE; absent or null where the
   * arch does not select it (asm-generic, s390): those walks flush each PTE as they clear it.
   */
  readonly tlbBatch?: TlbBatchInfo | null;
}

/** An arch's batched unmap TLB flush (`ArchTlb.tlbBatch`; mm/rmap.c and the arch's tlbbatch.h). */
export interface TlbBatchInfo {
  /**
   * `arch_tlbbatch_should_defer`: "remoteCpus" defers when another CPU has the mm in its cpumask (x86:
   * `cpumask_any_but(mm_cpumask(mm), get_cpu()) < nr_cpu_ids`), "smp" whenever more than one CPU is
   * online (arm64: `num_online_cpus() > 1`).
   */
  readonly shouldDefer: "remoteCpus" | "smp";
  /**
   * `arch_tlbbatch_add_pending` issues the invalidation of the range at once without waiting for it
   * (arm64 `__flush_tlb_range_nosync`, x86 INVLPGB): `arch_tlbbatch_flush` and
   * `arch_flush_tlb_batched_pending` only wait (DSB, TLBSYNC), so until then the range may still be
   * cached. False (x86 IPIs): add_pending only records the mm's CPUs, `arch_tlbbatch_flush` flushes
   * them all (`flush_tlb_multi`, a full flush) and `arch_flush_tlb_batched_pending` is `flush_tlb_mm`.
   */
  readonly nosync: boolean;
}

/** Contiguous-PTE blocks of an arch (`ArchTlb.contPte`). */
export interface ContPteInfo {
  /** `CONT_PTES`: entries per block, a power of two dividing `ptrsPerPte` (arm64: 16, 128, 32 for 4K, 16K, 64K). */
  readonly contPtes: number;
  /**
   * The CPUs implement FEAT_BBML2 without conflict aborts (`system_supports_bbml2_noabort()`): a TLB
   * may hold a block's contiguous entry and entries of its PTEs rewritten without the bit at once, so
   * `contpte_convert` skips its TLBI (v6.16+). False: the rewrite must break before it makes.
   */
  readonly bbml2NoAbort: boolean;
}

/**
 * The PTEs of one PTE table as an arch's PTE-aware hook sees them (`pte_t *ptep` and its neighbours):
 * entries by index, in the caller's encoding, read and written only through these accessors, plus the
 * `pte_t` helpers the hook needs. The caller owns the encoding and rebinds one object per call: no
 * allocation per PTE.
 */
export interface PteTableView {
  /** Entries in the table (`PTRS_PER_PTE`). */
  readonly length: number;
  /** Virtual page number of entry 0 (its address is `base` × PAGE_SIZE). */
  readonly base: number;
  /** `__ptep_get`: entry `i`. */
  get(i: number): number;
  /** `__set_pte`: write entry `i` (0 is pte_none), no arch side effect. */
  set(i: number, pte: number): void;
  /** `pte_valid`. */
  valid(pte: number): boolean;
  /** `pte_special`: no struct page behind the PTE (the zero page, a VM_PFNMAP page). */
  special(pte: number): boolean;
  /** `pte_pfn`. */
  pfn(pte: number): number;
  /** `pte_cont`: the contiguous bit. */
  cont(pte: number): boolean;
  /** `pte_mkcont`. */
  mkcont(pte: number): number;
  /** `pte_mknoncont`. */
  mknoncont(pte: number): number;
  /** `pte_dirty`. */
  dirty(pte: number): boolean;
  /** `pte_mkdirty`. */
  mkdirty(pte: number): number;
  /** `pte_mkclean`. */
  mkclean(pte: number): number;
  /** `pte_young`. */
  young(pte: number): boolean;
  /** `pte_mkyoung`. */
  mkyoung(pte: number): number;
  /** `pte_mkold`. */
  mkold(pte: number): number;
  /** `pte_advance_pfn(pte, n)`: the same attributes `n` pages further (n may be negative). */
  advancePfn(pte: number, n: number): number;
  /** `folio_pfn(page_folio(pfn_to_page(pfn)))`: the first pfn of the folio holding `pfn`. */
  folioStart(pfn: number): number;
  /** `folio_nr_pages` of the folio holding `pfn`. */
  folioNrPages(pfn: number): number;
}

/** Fields of `ArchTlb` a caller may override in `defineArch`; `name` is required. */
export type ArchOverrides = Partial<Omit<ArchTlb, "name" | "geometry" | "cost">> & {
  readonly name: string;
  readonly geometry?: Partial<ArchGeometry>;
  readonly cost?: Partial<CostProfile>;
};

/** Codes of `ArchConfigError` (the `#error` path). */
export type ArchConfigErrorCode =
  | "NO_GATHER_WITH_DELAYED_RMAP"
  | "NO_GATHER_WITH_BATCHED_RMAP"
  | "BAD_GEOMETRY"
  | "BAD_COST"
  | "BAD_CEILING"
  | "BAD_HOOK"
  | "BAD_OPTION";

/** Codes of `GatherError`. */
export type GatherErrorCode =
  | "NO_RANGE"
  | "FINISHED"
  | "BAD_PFN"
  | "BAD_NR"
  | "NR_OUTSIDE_FOLIO"
  | "BATCH_OVERFLOW"
  | "UNSUPPORTED"
  | "NOT_UNDER_PTL"
  | "BAD_VARIANT"
  | "BAD_ARGUMENT"
  | "INVARIANT";

/** Why the gather asked its caller to flush (or flushed itself). */
export type ForcedFlushReason =
  | "batchLimit"
  | "batchAllocFailed"
  | "delayedRmapLimit"
  | "tableBatchFull"
  | "tableAllocFailed"
  | "nestedGather";

/** Rmap-removal primitive the walk uses when it removes an rmap immediately. */
export type RmapPrimitive = "pageRemoveRmap" | "folioRemoveRmapPtes" | "folioRemoveRmapRange";

/**
 * Policies the zap walk reads to drive a variant correctly.
 */
export interface VariantPolicy {
  /** contig-range: every page's rmap is removed at `flushRmaps` (when the arch batches rmaps). */
  readonly deferAllRmaps: boolean;
  /** encoded-nr-pages: the walk uses `folio_pte_batch` and queues N pages at once; others go per PTE. */
  readonly walkBatchesFolioPtes: boolean;
  /** Primitive for immediate rmap removal (6.5 `pageRemoveRmap`, 7.x `folioRemoveRmapPtes`). */
  readonly immediateRmap: RmapPrimitive;
  /** `free_pages_and_swap_cache` starts with `lru_add_drain` (6.5 and the series, not 7.x). */
  readonly lruAddDrainOnFree: boolean;
  /** `tlb_next_batch` refuses to go past one extra batch while `delayedRmap` is set (6.5 / 7.x). */
  readonly limitBatchesWhileDelayed: boolean;
  /** The walk zaps runs of swap PTEs at once (`swap_pte_batch` + `free_swap_and_cache_nr`, v6.10+). */
  readonly walkBatchesSwapPtes: boolean;
  /**
   * `tlb_next_batch` stops at `MAX_GATHER_BATCH_COUNT` extra batch pages, forcing a flush (all three
   * trees; include/asm-generic/tlb.h: "to reduce a risk of soft lockups", about 10000 entries per
   * flush). A broken variant can remove the cap.
   */
  readonly capBatchCount: boolean;
  /**
   * `tlb_batch_pages_flush` calls `cond_resched()` after each ≤ `MAX_NR_FOLIOS_PER_FREE`-entry chunk
   * (all three trees; added in 2022 by "mm/mmu_gather: limit free batch count and add schedule point
   * in tlb_batch_pages_flush"). Without it the flush frees every queued entry with no reschedule
   * point, as before that commit.
   */
  readonly condReschedPerChunk: boolean;
  /** The kernel tree these rules follow. */
  readonly kernel: KernelTree;
}

/**
 * Engine operations a variant step may call. Each is one kernel stage; a step
 * composes them. Deliberately broken variants reorder or skip stages.
 */
export interface GatherStageOps {
  /** Read-only gather state. */
  readonly view: GatherView;
  /** `tlb_flush_mmu_tlbonly`: arch flush if anything was cleared, then reset the range. */
  tlbFlushMmuTlbonly(): void;
  /** `tlb_table_flush`: invalidate (if the arch needs it) and free / call_rcu the table batch. */
  tlbTableFlush(): void;
  /** `tlb_batch_pages_flush`: free every queued page in ≤ 512-entry chunks. */
  tlbBatchPagesFlush(): void;
  /** Storage walk of `tlb_flush_rmaps`: remove the pending (delayed) rmaps. */
  tlbFlushRmapsStorage(): void;
  /** `mm_tlb_flush_nested`: another gather is pending on this mm. */
  mmTlbFlushNested(): boolean;
  /** The nested-flush rule: `fullmm = 1`, reset the range, `freed_tables = 1`. */
  forceFlushAll(): void;
  /** `tlb_batch_list_free`: release the extra batch pages. */
  tlbBatchListFree(): void;
  /** `dec_tlb_flush_pending`. */
  decTlbFlushPending(): void;
  /** Set `delayed_rmap`. */
  setDelayedRmap(): void;
  /** Queue a page-table page in the table batch (`tlb_remove_table`). */
  tlbRemoveTable(tablePfn: number): void;
  /** Free a page-table page now, without any flush (only for broken variants / NO_TABLE_FREE). */
  freeTableNow(tablePfn: number): void;
  /** `__tlb_reset_range`: empty range (fullmm: [ULONG_MAX, ULONG_MAX)); `freed_tables` and `cleared_*` off. */
  tlbResetRange(): void;
  /** `__tlb_adjust_range`: widen the range to cover [addr, addr + size). */
  tlbAdjustRange(addr: number, size: number): void;
  /** `tlb_flush_pte_range` / `_pmd_` / `_pud_` / `_p4d_`: widen the range and set that level's `cleared_*`. */
  tlbFlushLevelRange(level: TlbLevel, addr: number, size: number): void;
  /** `tlb->freed_tables = 1`: the next flush must also invalidate page-walk caches. */
  setFreedTables(): void;
}

/**
 * The composable steps of a variant. Each default equals the kernel's code
 * path; override one with `defineVariant` to build a deliberately broken variant.
 */
export interface GatherSteps {
  /** `tlb_flush_mmu`: default TLB → tables → pages. */
  flushMmu(ops: GatherStageOps): void;
  /** `tlb_finish_mmu` body: default nested rule → `flushMmu` → batch list free → dec pending. */
  finishMmu(ops: GatherStageOps, flushMmu: () => void): void;
  /** `tlb_delay_rmap`: may this dirty file page's rmap be delayed? Default: arch says so → set `delayed_rmap`. */
  tlbDelayRmap(ops: GatherStageOps, archAllows: boolean): boolean;
  /** `tlb_flush_rmaps`: default walks the storage's pending entries. */
  flushRmaps(ops: GatherStageOps): void;
  /** Arch-independent part of `__pte_free_tlb`: default queue in the table batch. */
  removeTable(ops: GatherStageOps, tablePfn: number): void;
}

/** A variant: storage design + policies + composable steps. */
export interface GatherVariant {
  /** Display name (a derived variant may rename itself). */
  readonly name: string;
  /** Batch-storage design. */
  readonly storage: VariantName;
  /** Policies the walk reads. */
  readonly policy: VariantPolicy;
  /** Composable steps. */
  readonly steps: GatherSteps;
}

/** Overrides accepted by `defineVariant`. */
export interface VariantOverrides {
  readonly name?: string;
  readonly policy?: Partial<VariantPolicy>;
  readonly steps?: Partial<GatherSteps>;
}

/**
 * Decides whether the `ordinal`-th batch-page allocation (GFP_NOWAIT) succeeds.
 * Ordinals count from 0 per gather; table-batch allocations share the sequence.
 * Must be deterministic (see `seededAllocFailure`, `failAllocAt`).
 */
export type BatchAllocPolicy = (ordinal: number, what: "pages" | "tables") => boolean;

/** Typed event stream (off by default). */
export type GatherEvent =
  | { readonly type: "gatherStarted"; readonly mmId: number; readonly fullmm: boolean }
  | { readonly type: "pteCleared"; readonly addr: number; readonly nr: number }
  | {
      readonly type: "rangeRecorded";
      readonly addr: number;
      readonly size: number;
      /** The level whose `cleared_*` bit goes with it; null for a bare `__tlb_adjust_range` (`tlbAdjustRange`). */
      readonly level: TlbLevel | null;
    }
  | {
      readonly type: "rmapRemoved";
      readonly pfn: number;
      readonly nr: number;
      readonly delayed: boolean;
      readonly primitive: RmapPrimitive;
    }
  | { readonly type: "pageQueued"; readonly pfn: number; readonly nr: number; readonly delayRmap: boolean }
  | {
      readonly type: "tlbFlushed";
      readonly kind: TlbFlushKind;
      /** Why the gather flushed. */
      readonly reason: TlbFlushReason;
      /** The CPUs a range / mm flush targeted; null: every CPU with the mm loaded (and ipte / idte). */
      readonly cpus: readonly number[] | null;
      readonly start: number;
      readonly end: number;
      readonly stride: number;
      readonly walkCaches: boolean;
    }
  | {
      /** `mmu_notifier_arch_invalidate_secondary_tlbs` reached the mm's notifier subscribers. */
      readonly type: "secondaryTlbsInvalidated";
      /** Why the gather flushed (the CPU flush this call belongs to). */
      readonly reason: TlbFlushReason;
      readonly start: number;
      /** One past the last byte, or `TLB_FLUSH_ALL`. */
      readonly end: number;
    }
  | { readonly type: "tlbFlushSkipped" }
  | { readonly type: "rmapsFlushed"; readonly entries: number }
  | {
      readonly type: "pagesFreed";
      readonly pfns: readonly number[];
      readonly nrs: readonly number[];
    }
  | { readonly type: "condResched" }
  | { readonly type: "tableQueued"; readonly pfn: number; readonly level: TlbLevel }
  | { readonly type: "tablesFreed"; readonly pfns: readonly number[]; readonly viaRcu: boolean }
  | { readonly type: "forcedFlush"; readonly reason: ForcedFlushReason }
  | { readonly type: "batchAllocated"; readonly what: "pages" | "tables"; readonly batchCount: number }
  | { readonly type: "batchAllocFailed"; readonly what: "pages" | "tables" }
  | { readonly type: "batchReused" }
  | { readonly type: "gatherFinished"; readonly nested: boolean };

/** Receives gather events. */
export type GatherEventSink = (event: GatherEvent) => void;

/** Forced-flush counts by reason. */
export type ForcedFlushCounters = { [K in ForcedFlushReason]: number };

/** Exact gather counters. Every field counts calls/events since creation or `resetCounters`. */
export interface GatherCounters {
  /** Batch slots written (6.5: one per page; 7.x: 1 or 2 per call; contig-range: ranges started). */
  entriesQueued: number;
  /** Pages handed to the gather (sum of nr over every queue call). */
  pagesQueued: number;
  /** contig-range: pages that extended an open range instead of starting a new one. */
  rangesMerged: number;
  /** Extra page batches allocated (`__get_free_page` successes). */
  batchPagesAllocated: number;
  /** Page-batch allocations that failed (GFP_NOWAIT failure injected). */
  batchAllocFailed: number;
  /** `tlb_next_batch` moved to an already-allocated batch. */
  batchPagesReused: number;
  /** Extra page batches released at finish. */
  batchPagesFreed: number;
  /** Times a queue call returned "full", or an internal forced flush ran, by reason. */
  forcedFlushes: ForcedFlushCounters;
  /** `flush_tlb_range` invalidations. */
  tlbFlushRange: number;
  /** Stride entries covered by those range flushes: Σ ceil((end - start) / stride) (one INVLPG / TLBI each). */
  tlbFlushRangeEntries: number;
  /** `flush_tlb_mm` invalidations. */
  tlbFlushMm: number;
  /**
   * x86 IPIs sent: per `TlbOps.flushTlbFunc`, +1 for each CPU of its target set other than the
   * initiating CPU (`GatherView.cpu`); each runs `flush_tlb_func` in its interrupt handler.
   */
  tlbIpis: number;
  /**
   * x86 CPUs a flush reached: per `TlbOps.flushTlbFunc`, the size of its target set (the initiating CPU
   * included); per `TlbOps.tlbsync` that follows at least one INVLPGB, the CPUs of `mm.cpumask` (the
   * broadcast reaches every CPU with the mm loaded, lazy ones included).
   */
  tlbCpusTargeted: number;
  /**
   * x86 lazy-TLB CPUs left out: per `TlbOps.flushTlbFunc`, +1 for each CPU of `mm.lazyCpus` not in its
   * target set (`should_flush_tlb` when no page table was freed).
   */
  tlbLazyCpusSkipped: number;
  /** x86 INVLPGB instructions (`TlbOps.invlpgb` calls). */
  invlpgb: number;
  /** x86 TLBSYNC instructions (`TlbOps.tlbsync` calls). */
  tlbsync: number;
  /** s390 IPTE instructions (one per PTE). */
  ipte: number;
  /** s390 PTEs invalidated lazily (`ptep_flush_lazy` with only this CPU attached: no IPTE, `flush_mm` set). */
  lazyInvalidations: number;
  /**
   * arm64 TLBIs by virtual address (TLBI VAE1IS / VALE1IS: one per stride of a range flush without
   * FEAT_TLBIRANGE, or the odd page with it), summed from `TlbOps.tlbiIssued`.
   */
  tlbiVaOps: number;
  /** arm64 range TLBIs (FEAT_TLBIRANGE: TLBI RVAE1IS / RVALE1IS), summed from `TlbOps.tlbiIssued`. */
  tlbiRangeOps: number;
  /** arm64 range flushes `__flush_tlb_range_limit_excess` turned into `flush_tlb_mm` (`TlbOps.tlbiLimitExcess`). */
  tlbiLimitExcess: number;
  /**
   * arm64 contpte: blocks given the contiguous bit through this gather's ops — by `contpte_set_ptes`
   * (`TlbOps.contpteFold`, e.g. a THP split inside the zap) or by a `contpte_convert` fold.
   */
  contpteFolds: number;
  /** arm64 contpte: blocks unfolded by `contpte_convert` (a clear or write-protect of part of a block). */
  contpteUnfolds: number;
  /** arm64 contpte: PTEs rewritten by `contpte_convert`, folds and unfolds (CONT_PTES each). */
  contpteConvertedPtes: number;
  /** arm64 contpte: TLBIs the `contpte_convert` flushes issued (also counted in `tlbiVaOps` / `tlbiRangeOps`). */
  contpteConvertTlbis: number;
  /** arm64 contpte: `contpte_[get_and_]clear_full_ptes` calls (batched clears of more than one PTE). */
  contpteBatchedClears: number;
  /** arm64 contpte: contiguous blocks those batched clears cleared whole, without unfolding. */
  contpteBlocksCleared: number;
  /** s390 IDTE instructions. */
  idte: number;
  /** `tlb_flush_mmu_tlbonly` calls that found nothing cleared and did nothing. */
  tlbFlushSkipped: number;
  /** `tlb_flush_mmu_tlbonly` calls that ran the arch flush. */
  tlbFlushes: number;
  /** `tlb_flush_rmaps` calls that removed at least one rmap. */
  rmapFlushes: number;
  /** Rmap-removal primitive calls made after the TLB flush (delayed / batched). */
  rmapCallsDelayed: number;
  /** Rmap-removal primitive calls made immediately through `removeRmap`. */
  rmapCallsImmediate: number;
  /** Pages whose rmap was removed (sum of nr over both kinds). */
  rmapPages: number;
  /** `tlb_flush_mmu` calls. */
  flushMmuCalls: number;
  /** `free_pages_and_swap_cache` / `free_folios_and_swap_cache` calls (one per ≤ 512-entry chunk). */
  chunksFreed: number;
  /** `cond_resched` points passed (one after every chunk). */
  condResched: number;
  /** `lru_add_drain` calls made by the gather. */
  lruAddDrain: number;
  /** `free_swap_cache` calls made by the gather. */
  freeSwapCacheCalls: number;
  /** Release calls into @mmgather/folio (`releasePages`, `foliosPutRefs`, or do-one per range). */
  releaseCalls: number;
  /** Pages whose gathered reference was dropped at free time. */
  pagesReleased: number;
  /** Pages freed on queue by a NO_GATHER arch. */
  pagesFreedOnQueue: number;
  /** Page-table pages queued through `*_free_tlb`. */
  tablesQueued: number;
  /**
   * Page-table pages freed — with RCU table free, counted when their batch is handed to `call_rcu`
   * (the pages themselves go back to the allocator when the grace period ends, see `TableFreeSync`).
   */
  tablesFreed: number;
  /** Table batch pages allocated. */
  tableBatchAllocated: number;
  /** Table batch page allocations that failed. */
  tableBatchAllocFailed: number;
  /** `tlb_remove_table_one` fallbacks (sync + free one). */
  tableSyncOne: number;
  /** RCU callbacks queued for table batches (`call_rcu` of `tlb_remove_table_free`). */
  rcuCalls: number;
  /** Nested gathers detected at finish (forced full flush). */
  nestedFlushes: number;
}

/** Counters of the whole memory model, gathered in one report. */
export interface CountersReport {
  readonly gather: Readonly<GatherCounters>;
  readonly folio: Readonly<PhysMem["counters"]>;
  readonly swap: Readonly<SwapSpace["counters"]> | null;
}

/** Options of `createMmuGather`. */
export interface MmuGatherOptions {
  /** Physical memory the queued pages live in. */
  readonly mem: PhysMem;
  /** Swap space for `free_swap_cache`; omitted = !CONFIG_SWAP. */
  readonly swap?: SwapSpace;
  /** The mm's shared flush bookkeeping (`createTlbMm()`). */
  readonly mm: TlbMm;
  /** The arch adapter. */
  readonly arch: ArchTlb;
  /** Variant object or name. */
  readonly variant: GatherVariant | VariantName;
  /** `tlb_gather_mmu_fullmm` when true, else `tlb_gather_mmu`. */
  readonly fullmm?: boolean;
  /** GFP_NOWAIT outcome of each batch-page allocation (default: always succeed). */
  readonly alloc?: BatchAllocPolicy;
  /** Event sink; omitted = events off (no allocation). */
  readonly events?: GatherEventSink;
  /** CPU/TLB model listener. */
  readonly tlbListener?: TlbListener;
  /**
   * The grace period and IPI page-table freeing waits on (default `IMMEDIATE_TABLE_FREE_SYNC`: no
   * lockless walker exists, a grace period is over at once).
   */
  readonly tableSync?: TableFreeSync;
  /**
   * The CPU running the gather (`smp_processor_id()`, `GatherView.cpu`): an integer >= 0, or -1 (the
   * default) when no CPU is modelled.
   */
  readonly cpu?: number;
}

/**
 * The gather engine's public surface (`struct mmu_gather` + its functions).
 * Raw forms (`removePage`, `removeFolioPages`, `removePageSize`) return true
 * when the caller must flush; convenient forms (`tlbRemovePage*`) flush themselves.
 */
export interface MmuGather extends GatherView {
  /** The variant. */
  readonly variant: GatherVariant;
  /** The arch adapter. */
  readonly arch: ArchTlb;
  /** Exact counters (mutable object owned by the gather; read only). */
  readonly counters: Readonly<GatherCounters>;
  /** Entries queued right now over all batches (slots, not pages). */
  readonly queuedEntries: number;
  /** Pages queued right now (sum of nr). */
  readonly queuedPages: number;

  /** `tlb_start_vma`: record vma bits; flush nothing unless fullmm (then no-op). */
  tlbStartVma(vma: VmaTlbFlags): void;
  /** `tlb_end_vma`: TLB-only flush unless fullmm or MERGE_VMAS. */
  tlbEndVma(vma: VmaTlbFlags): void;
  /**
   * `tlb_flush_mmu_pfnmap` (free_pgtables, Linux v6.15+): unless fullmm, when a VMA recorded with
   * `pfnmap` since the last call was zapped, TLB-only flush (reason `pfnmap`) and clear `vma_pfn`.
   */
  tlbFlushMmuPfnmap(): void;
  /** `update_mmu_tlb`/`ptep_get_and_clear_full` TLB side effect of clearing `nr` PTEs at `addr`. */
  ptepGetAndClear(addr: number, nr: number): void;
  /**
   * `[get_and_]clear_full_ptes` (`ptep_get_and_clear_full` for nr = 1) of `nr` present PTEs from `index`
   * of `ptes` on an arch with a PTE-aware clear (`ArchTlb.clearPtes`): the arch hook first — it may
   * rewrite any entry of the table and flush through this gather — then what `ptepGetAndClear` does for
   * their addresses. The caller clears the `nr` entries afterwards.
   */
  clearFullPtes(ptes: PteTableView, index: number, nr: number): void;
  /**
   * The arch side of `set_ptes()` (`ArchTlb.setPtes`) for `nr` entries the caller just wrote from `index`
   * of `ptes`, with this gather's TLB operations and counters (a THP split inside the zap). Nothing when
   * the arch has no PTE-aware set.
   */
  setPtes(ptes: PteTableView, index: number, nr: number): void;
  /** `tlb_remove_tlb_entry`: record one PTE (`cleared_ptes`). */
  tlbRemoveTlbEntry(addr: number): void;
  /** `tlb_remove_tlb_entries`: record `nr` PTEs. */
  tlbRemoveTlbEntries(addr: number, nr: number): void;
  /** `tlb_remove_pmd_tlb_entry`: record a huge PMD (`cleared_pmds`). */
  tlbRemovePmdTlbEntry(addr: number): void;
  /** `tlb_remove_pud_tlb_entry`: record a huge PUD (`cleared_puds`). */
  tlbRemovePudTlbEntry(addr: number): void;

  /** `tlb_delay_rmap`: whether a dirty file page's rmap may be delayed (sets `delayed_rmap`). */
  tlbDelayRmap(): boolean;
  /** `tlb_batch_rmap` (series): every page's rmap is deferred to `flushRmaps`. */
  tlbBatchRmap(): boolean;
  /** Remove rmaps now with the variant's immediate primitive (the walk, or s390). */
  removeRmap(pfn: number, nr: number): void;

  /** `__tlb_remove_page(tlb, page, delay_rmap)`. Returns true when full (caller must flush). */
  removePage(pfn: number, delayRmap: boolean): boolean;
  /** `__tlb_remove_page_size(tlb, page, delay_rmap, size)`: one entry for a compound page of `pageSize` bytes. */
  removePageSize(pfn: number, delayRmap: boolean, pageSize: number): boolean;
  /** `__tlb_remove_folio_pages(tlb, page, nr, delay_rmap)` (encoded-nr-pages, or any variant on NO_GATHER). */
  removeFolioPages(pfn: number, nr: number, delayRmap: boolean): boolean;
  /** `tlb_remove_page`: queue and flush by itself when full. */
  tlbRemovePage(pfn: number): void;
  /** `tlb_remove_page_size`: queue a compound page and flush by itself when full. */
  tlbRemovePageSize(pfn: number, pageSize: number): void;

  /** The caller took the PTE lock. */
  enterPtl(): void;
  /** The caller is about to drop the PTE lock. */
  leavePtl(): void;
  /** `tlb_discard_rmaps` (series): nothing queued so far is pending rmap removal. */
  discardRmaps(): void;
  /** `tlb_flush_rmaps`: after the TLB flush, before the PTL drops. Requires `enterPtl`. */
  flushRmaps(): void;
  /** `tlb_flush_mmu_tlbonly`; `why` is what the arch hook sees as `flushReason` (default "caller"). */
  flushMmuTlbonly(why?: TlbFlushReason): void;
  /** `tlb_flush_mmu`: TLB → tables → pages; `why` as for `flushMmuTlbonly`. */
  flushMmu(why?: TlbFlushReason): void;
  /** `tlb_finish_mmu`. The gather is unusable afterwards. */
  finish(): void;

  /** `pte_free_tlb`: free a PTE table page (folio pfn) unhooked at `addr`. */
  pteFreeTlb(tablePfn: number, addr: number): void;
  /** `pmd_free_tlb`. */
  pmdFreeTlb(tablePfn: number, addr: number): void;
  /** `pud_free_tlb`. */
  pudFreeTlb(tablePfn: number, addr: number): void;
  /** `p4d_free_tlb`. */
  p4dFreeTlb(tablePfn: number, addr: number): void;

  /** Gather, folio and swap counters together. */
  report(): CountersReport;
  /** Zero the gather counters. */
  resetCounters(): void;
}

/**
 * The unchecked entry points of a gather, for the zap walk's hot path (exported from
 * `@mmgather/mmu-gather/internal`, not semver-stable). "Trusted": the caller guarantees the arguments
 * (pfns read from its own present PTEs, a live folio holding each run); nothing is checked. Each one
 * is exactly a sequence of the checked {@link MmuGather} calls — same state and counters — which the
 * teardown tests check by running the walk both ways.
 */
export interface MmuGatherTrusted {
  /**
   * {@link MmuGather.removeRmap} for a caller that guarantees `head` is the live folio holding
   * `[pfn, pfn + nr)` (the zap walk, which read them from its PTEs): no per-call validation.
   */
  removeRmapTrusted(head: number, pfn: number, nr: number): void;
  /** {@link MmuGather.removePage} without the pfn check, for the zap walk (pfn read from a present PTE). */
  removePageTrusted(pfn: number, delayRmap: boolean): boolean;
  /**
   * {@link MmuGather.removeFolioPages} without the pfn / folio-bounds checks, for the zap walk, whose
   * `folio_pte_batch` already keeps `[pfn, pfn + nr)` inside one live folio.
   */
  removeFolioPagesTrusted(pfn: number, nr: number, delayRmap: boolean): boolean;
  /**
   * True when {@link MmuGatherTrusted.zapPresentTrusted} may stand in for the step-by-step calls: no event sink, the
   * arch's `pteClear` is the asm-generic no-op, it has no PTE-aware clear (`ArchTlb.clearPtes`) and it
   * gathers (not NO_GATHER). Fixed for the
   * gather's life, so the walk reads it once per operation.
   */
  zapFastPath(): boolean;
  /**
   * One fused call for a run of `nr` present PTEs of the live folio `head` whose rmap is not delayed:
   * exactly `ptepGetAndClear(addr, nr)`, `tlbRemoveTlbEntries(addr, nr)`, then, when `rmapNow`,
   * `removeRmapTrusted(head, pfn, nr)`, then `removeFolioPagesTrusted(pfn, nr, false)` — same state and
   * counters. Only valid while {@link MmuGatherTrusted.zapFastPath} is true. Returns true when full.
   */
  zapPresentTrusted(head: number, pfn: number, nr: number, addr: number, rmapNow: boolean): boolean;
  /**
   * The per-PTE (v6.5 / series) walk's loop body for `nr` consecutive present PTEs mapping
   * `[pfn, pfn + nr)` of the live folio `head` (virtual `addr` onwards, PAGE_SIZE apart), none delayed:
   * exactly {@link MmuGatherTrusted.zapPresentTrusted}`(head, pfn + j, 1, addr + j * PAGE_SIZE, rmapNow)` for j = 0, 1, …
   * until one reports full — one call per page, one queue entry per page, same state and counters.
   * Returns the pages consumed, negated when the last one filled the gather. Only valid while
   * {@link MmuGatherTrusted.zapFastPath} is true.
   */
  zapPresentRunPerPageTrusted(head: number, pfn: number, nr: number, addr: number, rmapNow: boolean): number;
  /**
   * The 7.x walk's loop body for `nr` consecutive present PTEs (virtual `addr` onwards, PAGE_SIZE apart)
   * that each map their own live order-0 folio `pfns[j]`, none delayed: exactly
   * {@link MmuGatherTrusted.zapPresentTrusted}`(pfns[j], pfns[j], 1, addr + j * PAGE_SIZE, true)` for j = 0, 1, … until one
   * reports full — one rmap call and one queue entry per page, same state and counters. Returns the
   * pages consumed, negated when the last one filled the gather. Only valid while
   * {@link MmuGatherTrusted.zapFastPath} is true.
   */
  zapSinglesRunTrusted(pfns: Int32Array, nr: number, addr: number): number;
}
