// Models: khugepaged retracting the page table of a PTE-mapped file THP in the target mm, on another
// CPU while the teardown runs, as Linux v6.18 (torvalds/linux, Nov 2025) does it:
//   khugepaged_scan_mm_slot (mm/khugepaged.c): mmap_read_lock of the mm (a kernel thread: it never
//   loads the mm on its CPU), hpage_collapse_test_exit before each PMD-sized range (an exiting mm is
//   left alone), hpage_collapse_scan_file finding an order-HPAGE_PMD_ORDER folio in the page cache →
//   SCAN_PTE_MAPPED_HUGEPAGE → collapse_pte_mapped_thp(mm, haddr, install_pmd = false):
//     vma_lookup + range_in_vma; find_pmd_or_thp_or_none (no PMD: nothing to retract; a huge PMD:
//     SCAN_PMD_MAPPED); filemap_lock_folio (a reference) of order HPAGE_PMD_ORDER;
//     step 1, under the PTE lock: every present PTE of the range maps the folio's page at its index
//       (a swap / migration entry: SCAN_PTE_NON_PRESENT; another page: abort);
//     mmu_notifier_invalidate_range_start (MMU_NOTIFY_CLEAR) over the PMD range — a KVM guest (kvm.ts)
//       drops its sptes there;
//     step 2, the PTE lock again (pte_offset_map_nolock: the PMD must still point at the table): the same
//       checks, then ptep_clear (no TLB flush: pmdp_collapse_flush does it) and folio_remove_rmap_pte
//       per PTE;
//     step 3: folio_ref_sub and the rss counter, once for all the PTEs cleared;
//     step 4, under the PMD lock and the PTE lock: pmdp_collapse_flush — pmdp_huge_get_and_clear, then
//       flush_tlb_range over the PMD range (`CollapseSteps.pmdpCollapseFlush`);
//     mmu_notifier_invalidate_range_end; mm_dec_nr_ptes; pte_free_defer — the PTE table is freed by an
//       RCU callback (`CollapseSteps.pteFreeDefer`): a gup_fast walk (interrupts off, an RCU read-side
//       section) may still be reading it;
//     abort after clearing some PTEs: flush_tlb_mm, folio_ref_sub, the rss counter; drop_folio:
//       folio_put of the lookup's reference.
// flush_tlb_range of v6.18 reaches every CPU with the mm loaded, lazy-TLB ones included, and drops their
// paging-structure caches on every modelled arch: x86 since "x86/mm: Fix flush_tlb_range() when used for
// zapping normal PMDs" (Jann Horn, January 2025; before it, flush_tlb_mm_range got freed_tables = false
// and native_flush_tlb_multi skipped lazy CPUs, which may still walk into the freed table: the bug of
// 016c4d92cd16, Linux 4.19), arm64 by non-last-level broadcast TLBIs, s390 and asm-generic by flushing
// the whole mm. The table free waits for RCU since Linux 6.6 (pte_free_defer); from 2ba99c5e0881 (Linux
// 6.1) to then, tlb_remove_table_sync_one's IPI stood between the flush and pte_free, and before it a
// gup_fast walk on an arch that flushes by broadcast could still hold the table as it was freed.
// Why it matters to teardown: this is the one path that frees a page table of a live mm outside
// free_pgtables, under mmap_read_lock only, while MADV_DONTNEED (read side too), a munmap's zap after its
// downgrade, exit's unmap_vmas and gup_fast may be walking the same tables.
// Omits: collapse_file (copying small folios into a new THP) and retract_page_tables over other mms
// (this models the scan that finds the THP already in the page cache), MADV_COLLAPSE's set_huge_pmd
// (install_pmd), userfaultfd, the folio lock, the scan's progress accounting and sleeps, the PMD lock as
// its own lock (each step is one section under every lock it takes).
import { PG } from "@mmgather/folio";
import type { FlushShare } from "./cpu-tlb.js";
import { TeardownError } from "./errors.js";
import type { Machine } from "./machine.js";
import type { Mm } from "./mm.js";
import { mmapReadLock, mmapReadUnlock, type OpSteps } from "./mmap-lock.js";
import { LEVEL_PMD } from "./page-tables.js";
import { mkPmdTable, PTE_PRESENT, ptePfn } from "./pte.js";
import { MM_FILEPAGES, MM_SHMEMPAGES } from "./vma.js";

/** What one khugepaged pass did (every count exact). */
export interface CollapseCounters extends FlushShare {
  /** PMD-sized ranges of a file VMA whose page cache holds a PMD-sized folio there. */
  rangesScanned: number;
  /** Page tables retracted: PTEs cleared, PMD cleared and flushed, table handed to pte_free_defer. */
  tablesRetracted: number;
  /** Ranges given up: a PTE that is not the folio's page, a swap or migration entry (abort). */
  aborts: number;
  /** PTEs cleared (ptep_clear + folio_remove_rmap_pte), aborted ranges included. */
  ptesCleared: number;
  /** Page-table-lock sections (step 1, step 2, step 4). */
  ptlSections: number;
  /** pmdp_collapse_flush's flush_tlb_range calls. */
  tlbFlushes: number;
  /** flush_tlb_mm calls of aborts that had cleared PTEs. */
  mmFlushes: number;
  /** Retracted tables freed so far (by their RCU callback, or at once by a broken step). */
  tablesFreed: number;
}

/** What a collapse step works with. */
export interface CollapseContext {
  readonly mm: Mm;
  readonly counters: CollapseCounters;
  /**
   * flush_tlb_range over the PMD-sized range at virtual page `base`: the CPUs with the mm loaded drop
   * its translations and their paging-structure caches, then the mm's devices are told. `freedTables`
   * false is flush_tlb_mm_range's freed_tables = false: an arch whose flushes skip lazy-TLB CPUs then
   * (`ArchTlb.flushSkipsLazyCpus`: x86's should_flush_tlb) leaves them out; on the others it changes
   * nothing (arm64's TLBIs are broadcast, s390 flushes the whole mm).
   */
  flushTlbRange(base: number, freedTables?: boolean): void;
  /** call_rcu: `fn` runs once every gup_fast walk running now has ended. */
  callRcu(fn: () => void): void;
  /** pagetable_dtor_free of a PTE table page whose PMD was cleared. */
  freeTable(tablePfn: number): void;
}

/** The steps of a collapse; each default is the kernel's code. */
export interface CollapseSteps {
  /**
   * pmdp_collapse_flush of `pmd[index]` (the PMD at virtual page `base`, pointing at the PTE table
   * `tablePfn`), under the PMD and PTE locks: clear the PMD (`clearPmd`), then flush.
   */
  pmdpCollapseFlush(ctx: CollapseContext, clearPmd: () => void, base: number, tablePfn: number): void;
  /** pte_free_defer of the retracted PTE table `tablePfn`, after the locks are dropped. */
  pteFreeDefer(ctx: CollapseContext, tablePfn: number): void;
}

/** A khugepaged collapse: a name and its steps. */
export interface Collapse {
  readonly name: string;
  readonly steps: CollapseSteps;
}

/** The kernel's collapse. */
export const collapse: Collapse = Object.freeze({
  name: "collapse_pte_mapped_thp",
  steps: Object.freeze({
    pmdpCollapseFlush(ctx: CollapseContext, clearPmd: () => void, base: number): void {
      clearPmd();
      ctx.flushTlbRange(base, true);
    },
    pteFreeDefer(ctx: CollapseContext, tablePfn: number): void {
      ctx.callRcu(() => ctx.freeTable(tablePfn));
    },
  } satisfies CollapseSteps),
});

/** Derives a collapse from `base`, replacing steps (how a broken one is built). */
export function defineCollapse(
  base: Collapse,
  overrides: { readonly name?: string; readonly steps?: Partial<CollapseSteps> },
): Collapse {
  const steps: CollapseSteps = Object.freeze({ ...base.steps, ...overrides.steps });
  for (const k of ["pmdpCollapseFlush", "pteFreeDefer"] as const)
    if (typeof steps[k] !== "function")
      throw new TeardownError("BAD_SPEC", "khugepaged", "defineCollapse", `step ${k} must be a function`);
  return Object.freeze({ name: overrides.name ?? base.name, steps });
}

/** A fresh zeroed counter record. */
export function createCollapseCounters(): CollapseCounters {
  return {
    rangesScanned: 0,
    tablesRetracted: 0,
    aborts: 0,
    ptesCleared: 0,
    ptlSections: 0,
    tlbFlushes: 0,
    mmFlushes: 0,
    tablesFreed: 0,
    remoteCpuFlushes: 0,
    entriesInvalidated: 0,
    secondaryTlbInvalidations: 0,
  };
}

function contextFor(machine: Machine, mm: Mm, counters: CollapseCounters): CollapseContext {
  const ps = machine.pageSize;
  const span = mm.pt.span[0];
  return {
    mm,
    counters,
    flushTlbRange(base, freedTables = true) {
      counters.tlbFlushes++;
      const tlbs = machine.tlbs;
      if (tlbs === null) return;
      tlbs.markShare();
      let cpus: number[] | null = null;
      if (!freedTables && machine.arch.flushSkipsLazyCpus) {
        const lazy = tlbs.lazyCpus(mm.id);
        cpus = tlbs.cpumask(mm.id).filter((c) => !lazy.includes(c));
      }
      tlbs.tlbInvalidate(mm.id, "range", base * ps, (base + span) * ps, ps, true, cpus);
      tlbs.secondary?.invalidate(mm.id, base * ps, (base + span) * ps);
      tlbs.addShare(counters);
    },
    callRcu(fn) {
      machine.rcu.callRcu(fn);
    },
    freeTable(tablePfn) {
      counters.tablesFreed++;
      machine.mem.folioPut(tablePfn);
    },
  };
}

/** flush_tlb_mm after an abort that cleared PTEs. */
function flushTlbMm(machine: Machine, mm: Mm, c: CollapseCounters): void {
  c.mmFlushes++;
  const tlbs = machine.tlbs;
  if (tlbs === null) return;
  tlbs.markShare();
  tlbs.tlbInvalidate(mm.id, "mm", 0, Number.POSITIVE_INFINITY, machine.pageSize, true);
  tlbs.secondary?.invalidate(mm.id, 0, Number.POSITIVE_INFINITY);
  tlbs.addShare(c);
}

/**
 * Step 1 / step 2's check of a PTE that is not none: a present PTE mapping the folio's page `i` (not a
 * swap or migration entry, not another page).
 */
function mapsFolioPage(pte: number, head: number, i: number): boolean {
  return pte > 0 && (pte & PTE_PRESENT) !== 0 && ptePfn(pte) === head + i;
}

/**
 * collapse_pte_mapped_thp(mm, haddr = `base`, install_pmd = false) on `thread`'s CPU, as a generator of
 * lock sections.
 */
function* collapsePteMappedThp(
  machine: Machine,
  mm: Mm,
  base: number,
  steps: CollapseSteps,
  ctx: CollapseContext,
  c: CollapseCounters,
  thread: number,
): OpSteps {
  const pt = mm.pt;
  const span = pt.span[0];
  const mem = machine.mem;
  // vma_lookup + range_in_vma; find_pmd_or_thp_or_none is PageTables.pteTable (-1 none, -2 huge).
  const vma = mm.findVma(base);
  if (vma === null || base + span > vma.end || vma.mapping < 0 || vma.kind === "pfnmap") return;
  if (pt.pteTable(base, false) === -2) return; // SCAN_PMD_MAPPED
  const index = vma.pgoff + (base - vma.start);
  const head = mem.filemapGetFolio(vma.mapping, index);
  if (head < 0) return; // SCAN_PAGE_NULL
  mem.folioGet(head); // filemap_lock_folio
  try {
    if (mem.folioOrder(head) !== mem.pmdOrder) return; // SCAN_PAGE_COMPOUND
    c.rangesScanned++;
    // A folio that does not start at `index` fails step 1: its page i is not the one PTE i maps.
    let tid = pt.pteTable(base, false);
    if (tid < 0) return; // SCAN_PMD_NONE: nothing mapped, nothing to retract (install_pmd false)
    // Step 1, under the PTE lock.
    c.ptlSections++;
    const t1 = pt.entries[tid]!;
    for (let i = 0; i < span; i++) {
      if (t1[i] !== 0 && !mapsFolioPage(t1[i], head, i)) {
        c.aborts++;
        return;
      }
    }
    yield;
    const kvm = machine.kvm;
    kvm?.invalidateRangeStart(mm.id, base, base + span);
    let retracted = -1;
    try {
      // Step 2: the PTE lock again; the PMD must still point at the same table.
      tid = pt.pteTable(base, false);
      if (tid < 0) {
        c.aborts++;
        return;
      }
      c.ptlSections++;
      const t = pt.entries[tid]!;
      let nr = 0;
      let aborted = false;
      for (let i = 0; i < span; i++) {
        const pte = t[i];
        if (pte === 0) continue;
        if (!mapsFolioPage(pte, head, i)) {
          aborted = true;
          break;
        }
        t[i] = 0; // ptep_clear: no flush until pmdp_collapse_flush
        mem.folioRemoveRmapPtes(head, head + i, 1, vma.locked);
        nr++;
      }
      c.ptesCleared += nr;
      // Step 3 (or the abort's): one folio_ref_sub and one rss update for all of them.
      if (nr > 0) {
        if (aborted) flushTlbMm(machine, mm, c);
        mem.folioRefSubAndTest(head, nr);
        mm.rss[mem.folioTest(head, PG.swapbacked) ? MM_SHMEMPAGES : MM_FILEPAGES] -= nr;
      }
      if (aborted) {
        c.aborts++;
        return;
      }
      yield;
      // Step 4, under the PMD lock and the PTE lock: the table leaves the PMD, the range is flushed.
      c.ptlSections++;
      const pmdId = pt.pmdTable(base, false);
      const pmd = pt.entries[pmdId]!;
      const pi = pt.index(base, LEVEL_PMD);
      const tablePfn = pt.tablePfn[tid];
      const entry = mkPmdTable(tid);
      if (pmd[pi] !== entry)
        throw new TeardownError(
          "INVARIANT",
          "khugepaged",
          "collapsePteMappedThp",
          "the PMD changed under mmap_lock",
        );
      steps.pmdpCollapseFlush(
        ctx,
        () => {
          pmd[pi] = 0;
          machine.tlbs?.noteTableUnlinked(mm.id, tablePfn);
        },
        base,
        tablePfn,
      );
      if (pmd[pi] !== 0)
        throw new TeardownError("BAD_SPEC", "khugepaged", "pmdpCollapseFlush", "the step must clear the PMD");
      pt.releaseId(tid);
      retracted = tablePfn;
      c.tablesRetracted++;
      machine.traceSink()?.({
        type: "pteTableRetracted",
        mmId: mm.id,
        addr: base * machine.pageSize,
        tablePfn,
        ptes: nr,
        thread,
      });
    } finally {
      kvm?.invalidateRangeEnd(mm.id);
    }
    // mm_dec_nr_ptes; pte_free_defer, the locks dropped and the notifiers told.
    if (retracted >= 0) steps.pteFreeDefer(ctx, retracted);
  } finally {
    mem.folioPut(head); // drop_folio
  }
}

/**
 * khugepaged's scan of `mm` over pages [vs, ve): every PMD-sized range inside it, as a generator of lock
 * sections. `thread` names khugepaged's thread in the trail.
 */
export function* khugepagedScanSteps(
  mm: Mm,
  vs: number,
  ve: number,
  c: Collapse,
  counters: CollapseCounters,
  thread = 1,
): OpSteps {
  const machine = mm.machine;
  const ctx = contextFor(machine, mm, counters);
  const span = mm.pt.span[0];
  yield* mmapReadLock(mm);
  try {
    for (let base = Math.ceil(vs / span) * span; base + span <= ve; base += span) {
      if (mm.exiting || mm.dead) break; // hpage_collapse_test_exit
      yield* collapsePteMappedThp(machine, mm, base, c.steps, ctx, counters, thread);
    }
  } finally {
    mmapReadUnlock(mm);
  }
}
