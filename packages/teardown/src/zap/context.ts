// Models: the state zap_pte_range and its callers carry through one unmap (struct zap_details, the
// on-stack rss[] array, force_flush) plus the PTE lock of the table being zapped.
// Omits: zap_details filtering (even_cows / single folio) — every operation here zaps everything.
import type { PhysMem } from "@mmgather/folio";
import { type FolioState, folioState } from "@mmgather/folio/internal";
import type { GatherVariant, MmuGather } from "@mmgather/mmu-gather";
import { gatherTrusted, type MmuGatherTrusted } from "@mmgather/mmu-gather/internal";
import type { SwapSpace } from "@mmgather/swapcache";
import type { Checker, TrailEventSink } from "../checker.js";
import type { SplitAccounting } from "../huge-memory.js";
import type { Mm } from "../mm.js";
import type { PteTableAccess } from "../pte-view.js";
import { NR_MM_COUNTERS, type Vma } from "../vma.js";

/** Work counters of the walk itself (the gather, folio and swap layers count their own). */
export interface WalkCounters {
  /** Present PTEs cleared. */
  ptesCleared: number;
  /** Swap PTEs cleared. */
  swapPtesCleared: number;
  /**
   * Migration entries cleared (a concurrent migration's, still in place when the walk got there): rss
   * of the folio's kind − 1 each, nothing else.
   */
  migrationPtesCleared: number;
  /**
   * flush_tlb_batched_pending calls that flushed (a deferred flush of another CPU's unmapping rmap walk
   * was outstanding for the mm): x86 flush_tlb_mm, arm64 dsb(ish). Their invalidations are in the CPU
   * counters.
   */
  batchedPendingFlushes: number;
  /** Runs of present PTEs handed to the gather in one call (7.x batches; 1 per PTE otherwise). */
  presentBatches: number;
  /** Runs of swap PTEs released in one call. */
  swapBatches: number;
  /** PMD-mapped THPs zapped by zap_huge_pmd. */
  hugePmdsZapped: number;
  /**
   * Huge PMDs split into PTEs by the operation (`THP_SPLIT_PMD`): a zap covering part of one, or a VMA
   * boundary of a partial munmap falling inside one (see huge-memory.ts).
   */
  hugePmdsSplit: number;
  /** zap_pte_range calls (one per PTE table visit, a refill re-visit counts again). */
  pteTableVisits: number;
  /** Forced flushes the walk ran because the gather was full. */
  forcedFlushBatchFull: number;
  /** Forced flushes the walk ran because of dirty shared file pages (delayed rmap). */
  forcedFlushDirtyShared: number;
  /** Page-table pages handed to the gather by free_pgtables, by level (pte, pmd, pud). */
  tablesFreed: [number, number, number];
  /** Deposited PTE tables freed by zap_deposited_table. */
  depositsFreed: number;
  /** Top-level tables freed (pgd_free at the end of exit_mmap: 1 on exit, else 0). */
  pgdsFreed: number;
  /**
   * `folio_pte_batch` calls of the 7.x walk: one per present PTE of a large folio with more than one
   * PTE left in the range (`max_nr != 1 && folio_test_large`).
   */
  folioPteBatchCalls: number;
  /** PTEs taken in by those calls (the first one included): each is read and compared once. */
  folioPteBatchPtes: number;
  /** VMAs freed (`remove_vma`: `vm_ops->close`, `vm_area_free`): every VMA on exit, the detached ones on munmap. */
  vmasFreed: number;
  /** `unlink_anon_vmas` calls that had work (the VMA has an anon_vma), from free_pgtables. */
  anonVmaUnlinks: number;
  /** `unlink_file_vma` calls (file and shmem VMAs), from free_pgtables. */
  fileVmaUnlinks: number;
  /** `fput` of a file VMA's file in `remove_vma`. */
  fputs: number;
  /** mm_structs freed (`mmdrop` → `__mmdrop` at the end of exit: 1 on exit, else 0). */
  mmsFreed: number;
  /**
   * `folio_mark_accessed` / `mark_page_accessed` calls for young PTEs of file and shmem folios (every
   * modelled VMA has recency: no VM_SEQ_READ / VM_RAND_READ): one per PTE in the per-PTE walk (v6.5's
   * `mark_page_accessed(page)`), one per `folio_pte_batch` run in the 7.x walk.
   */
  markAccessedCalls: number;
}

/** A fresh zeroed counter record. */
export function createWalkCounters(): WalkCounters {
  return {
    ptesCleared: 0,
    swapPtesCleared: 0,
    migrationPtesCleared: 0,
    batchedPendingFlushes: 0,
    presentBatches: 0,
    swapBatches: 0,
    hugePmdsZapped: 0,
    hugePmdsSplit: 0,
    pteTableVisits: 0,
    forcedFlushBatchFull: 0,
    forcedFlushDirtyShared: 0,
    tablesFreed: [0, 0, 0],
    depositsFreed: 0,
    pgdsFreed: 0,
    folioPteBatchCalls: 0,
    folioPteBatchPtes: 0,
    vmasFreed: 0,
    anonVmaUnlinks: 0,
    fileVmaUnlinks: 0,
    fputs: 0,
    mmsFreed: 0,
    markAccessedCalls: 0,
  };
}

/** Everything one thread's unmap carries. One object per operation, never per PTE. */
export class ZapContext {
  readonly mm: Mm;
  readonly mem: PhysMem;
  readonly swap: SwapSpace | null;
  /** The gather, with its trusted entry points (`@mmgather/mmu-gather/internal`). */
  readonly tlb: MmuGather & MmuGatherTrusted;
  readonly checker: Checker | null;
  /** Where the walk's own events go (checker trail and/or the user's sink); null when off. */
  readonly trace: TrailEventSink | null;
  readonly counters: WalkCounters;
  /** Thread number (for events). */
  readonly thread: number;
  /** `tlb_batch_rmap` (contig-range on a batching arch): every rmap deferred to the end of the table. */
  readonly deferAllRmaps: boolean;
  /**
   * The walk may hand a non-delayed present-PTE run to the gather in one fused call
   * (`zapPresentTrusted`): no checker, no events, no arch PTE-clear hook. Decided once per operation.
   */
  readonly fused: boolean;
  /** The folio layer's state, for its Trusted entry points on the walk's hot path. */
  readonly fs: FolioState;
  /** `PAGE_SIZE` of the arch: a PTE's virtual address is its page number × pageSize. */
  readonly pageSize: number;
  /**
   * The machine's zero page (-1: none exists yet, so no PTE maps it): a present PTE with this pfn is
   * one vm_normal_page returns NULL for. One integer compare on the walk's hot path.
   */
  readonly zeroPfn: number;
  /** Head pfn of the machine's huge zero folio (-1: none yet): is_huge_zero_pmd. */
  readonly hugeZeroFolio: number;
  /**
   * The arch clears PTEs through a PTE-aware hook (`ArchTlb.clearPtes`, arm64 contpte): the walk hands it
   * the table before clearing a batch (`MmuGather.clearFullPtes`), through `ptes`. Decided once per
   * operation; false keeps every other path as it was.
   */
  readonly pteAware: boolean;
  /** The arch's view of the table being zapped (the machine's, rebound per table). */
  readonly ptes: PteTableAccess;
  /** `CONT_PTES` of an arch with contiguous blocks, else 0 (arm64's `pte_batch_hint`, the checks). */
  readonly contPtes: number;
  /** Check contiguous blocks (checker on, an arch with contiguous blocks), and whether BBML2 allows skipping the unfold's TLBI. */
  readonly checkCont: boolean;
  private readonly bbml2: boolean;
  /** The PTE table of the lock section now running (null outside one, or in a huge PMD's). */
  zapTable: Int32Array | null = null;
  /** Virtual page of `zapTable`'s entry 0. */
  zapBase = 0;
  /** The entries [zapFrom, zapTo) of `zapTable` the section may zap. */
  zapFrom = 0;
  zapTo = 0;
  /** The VMA being zapped. */
  vma: Vma | null = null;
  /**
   * The VMA being zapped is VM_PFNMAP: vm_normal_page returns NULL for every PTE of it, so the walk
   * clears them as special PTEs (zapSpecialPtes) without looking at any folio. Set per VMA by unmapVmas.
   */
  noNormalPages = false;
  /** The on-stack rss[] deltas of the current PTE table. */
  readonly rss = new Float64Array(NR_MM_COUNTERS);
  /** force_flush of the current PTE table. */
  forceFlush = false;
  /** The force_flush came from a full gather (vs. a dirty shared page). */
  forceFromFull = false;
  /** pfn of the page-table page whose lock is held (-1 none). */
  lockedTable = -1;
  /** How a PMD split made by this walk is counted (huge-memory.ts). */
  readonly splitAccounting: SplitAccounting;
  /** The pfns of one run of order-0 PTEs handed to the gather (7.x fused walk); one PTE table long. */
  readonly runPfns: Int32Array;

  constructor(mm: Mm, tlb: MmuGather, checker: Checker | null, counters: WalkCounters, thread: number) {
    this.mm = mm;
    this.mem = mm.machine.mem;
    this.fs = folioState(this.mem);
    this.swap = mm.machine.swap;
    this.pageSize = mm.machine.pageSize;
    this.zeroPfn = mm.machine.zeroPfn;
    this.hugeZeroFolio = mm.machine.hugeZeroFolio;
    this.tlb = gatherTrusted(tlb);
    this.checker = checker;
    this.trace = mm.machine.traceSink();
    this.counters = counters;
    this.thread = thread;
    this.deferAllRmaps = tlb.tlbBatchRmap();
    this.fused = checker === null && this.trace === null && this.tlb.zapFastPath();
    this.runPfns = new Int32Array(this.fused ? mm.pt.geo.ptrsPerPte : 0);
    const arch = mm.machine.arch;
    this.pteAware = arch.clearPtes !== null;
    this.ptes = mm.machine.pteView;
    this.contPtes = arch.contPte?.contPtes ?? 0;
    this.checkCont = checker !== null && this.contPtes > 0;
    this.bbml2 = arch.contPte?.bbml2NoAbort ?? false;
    this.splitAccounting = splitAccountingFor(counters, tlb.variant);
  }

  /** cond_resched() at the end of each zap_pmd_range iteration (where the walk yields). */
  condResched(): void {
    if (this.checker !== null) this.checker.onResched();
  }

  /** pte_offset_map_lock / pmd_lock: take the lock of the table at `tablePfn`. */
  lock(tablePfn: number): void {
    this.mm.ptlAcquisitions++;
    this.lockedTable = tablePfn;
    this.tlb.enterPtl();
    const c = this.checker;
    if (c !== null) c.ptlHeld++;
    const t = this.trace;
    if (t !== null) t({ type: "ptlLocked", mmId: this.mm.id, tablePfn, thread: this.thread });
  }

  /**
   * `[get_and_]clear_full_ptes` of `nr` present PTEs of `t` from `i` on a PTE-aware arch: the arch sees
   * the table first (it may unfold a block at either end), then the checker looks at what it left.
   * The caller clears the entries after.
   */
  clearFullPtes(t: Int32Array, base: number, i: number, nr: number): void {
    const ptes = this.ptes;
    const writes = ptes.writes;
    this.tlb.clearFullPtes(ptes.bind(t, base), i, nr);
    // Only a hook that rewrote entries can have left a stale block entry behind.
    if (this.checkCont && !this.bbml2 && ptes.writes !== writes)
      this.checker!.checkContUnfold(this.mm.id, t, base, i, nr, this.contPtes);
  }

  /** pte_unmap_unlock / spin_unlock. */
  unlock(): void {
    const zt = this.zapTable;
    if (this.checkCont && zt !== null)
      this.checker!.checkContBlocks(this.mm.id, zt, this.zapBase, this.zapFrom, this.zapTo, this.contPtes);
    this.tlb.leavePtl();
    const c = this.checker;
    const t = this.trace;
    if (t !== null)
      t({ type: "ptlUnlocked", mmId: this.mm.id, tablePfn: this.lockedTable, thread: this.thread });
    if (c !== null) {
      c.ptlHeld--;
      c.onPtlUnlock(this.thread);
    }
    this.lockedTable = -1;
  }

  /** add_mm_rss_vec: apply and zero the table's rss deltas (one add per nonzero counter). */
  addMmRssVec(): void {
    const r = this.rss;
    const m = this.mm.rss;
    for (let i = 0; i < NR_MM_COUNTERS; i++) {
      if (r[i] !== 0) {
        m[i] += r[i];
        r[i] = 0;
      }
    }
  }
}

/** Split accounting of an operation of design `variant`: 7.x designs remove the PMD rmap per folio. */
export function splitAccountingFor(counters: WalkCounters, variant: GatherVariant): SplitAccounting {
  return { counters, folioRmap: variant.policy.immediateRmap === "folioRemoveRmapPtes" };
}
