// Models: writeback of a shared file's dirty folios running on another CPU while the teardown runs,
// as Linux v6.18 (torvalds/linux, Nov 2025) does it for one range: filemap_fdatawrite_range →
// do_writepages → writeback_iter (mm/page-writeback.c) visits each dirty folio of the range in index
// order; folio_lock; folio_clear_dirty_for_io: folio_mkclean (mm/rmap.c) — nothing when the folio is
// not mapped (`folio_mapped`), else rmap_walk_file over the file's i_mmap, shared VMAs only
// (invalid_mkclean_vma), page_mkclean_one → page_vma_mkclean_one: under the page-table lock of each
// table mapping the folio (page_vma_mapped_walk), every dirty or writable PTE is cleared and flushed
// (ptep_clear_flush → flush_tlb_page), then set back write-protected and clean (a huge PMD likewise
// with pmdp_invalidate); when it cleaned any, folio_mark_dirty — then folio_test_clear_dirty; the folio
// goes to disk (folio_start_writeback, the I/O, folio_end_writeback).
// Why it matters to teardown (commit 5df397dec7c4, Linux 6.2): the page-table lock is what makes
// folio_mkclean wait for a zap that cleared a dirty PTE but has not flushed its TLB yet — only while
// the folio is still mapped. A zap that removes the rmap first lets folio_mkclean return at once, the
// folio is written and cleaned while another CPU still caches a writable, dirty translation, and a
// store through it after the I/O is never written back: checked as `cleanedWhileWritable`.
// Each page-table-lock section, and each folio's clean-and-write, is one step of the generator.
// rmap_walk_file holds i_mmap_rwsem for read over each folio's walk: a munmap splitting one of the file's
// VMAs, or a teardown's free_pgtables unlinking one, waits until it is done.
// Omits: shmem (never written back by writeback_iter: no BDI_CAP_WRITEBACK), the writeback tags and
// their xarray walk (every index of the range is looked up), folio_lock contention (no teardown path
// locks a mapped folio), mmu_notifier_invalidate_range_start/end (devices get the flush through
// flush_tlb_page's secondary invalidation, as the generic flush sends it), I/O time and completion
// order (a folio's write completes within its step), the flush as s390 does it (IPTE: modelled as a
// one-page range flush), arm64 contpte around folio_mkclean (ptep_clear_flush unfolds the block and
// set_pte_at folds it again once the whole folio is clean: here the block keeps its contiguous bit, its
// entries cleaned one by one within the folio's step).
import { PG } from "@mmgather/folio";
import type { FlushShare } from "./cpu-tlb.js";
import { TeardownError } from "./errors.js";
import type { Machine } from "./machine.js";
import type { Mm } from "./mm.js";
import type { OpSteps } from "./mmap-lock.js";
import { LEVEL_PMD } from "./page-tables.js";
import { PMD_HUGE, PTE_DIRTY, PTE_PRESENT, PTE_WRITE, pmdTableId, ptePfn } from "./pte.js";
import type { Vma } from "./vma.js";

/** What one writeback pass did (every count exact). */
export interface WritebackCounters extends FlushShare {
  /** Dirty folios `folio_clear_dirty_for_io` cleaned and wrote (each `folio_start_writeback`). */
  foliosWritten: number;
  /** Their pages. */
  pagesWritten: number;
  /** `folio_mkclean` calls that returned at once because the folio was no longer mapped. */
  mkcleanUnmapped: number;
  /** VMAs `rmap_walk_file` visited (shared VMAs of the file that map the folio's index). */
  rmapVmasVisited: number;
  /** Page-table lock sections of page_vma_mapped_walk (one per table that maps part of the folio). */
  ptlSections: number;
  /** PTEs (and huge PMDs) page_vma_mkclean_one write-protected and cleaned. */
  ptesCleaned: number;
  /**
   * Their TLB flushes (`ptep_clear_flush` → flush_tlb_page, or `pmdp_invalidate`): range invalidations,
   * with the remote CPUs reached, entries dropped and device commands they cost (the report's CPU
   * counters leave this share out).
   */
  tlbFlushes: number;
}

/** A fresh zeroed writeback counter record. */
export function createWritebackCounters(): WritebackCounters {
  return {
    foliosWritten: 0,
    pagesWritten: 0,
    mkcleanUnmapped: 0,
    rmapVmasVisited: 0,
    ptlSections: 0,
    ptesCleaned: 0,
    tlbFlushes: 0,
    remoteCpuFlushes: 0,
    entriesInvalidated: 0,
    secondaryTlbInvalidations: 0,
  };
}

/**
 * ptep_clear_flush / pmdp_invalidate of `nr` pages at virtual page `vpn` of `mmId`: flush_tlb_mm_range
 * on every CPU with the mm loaded and the devices, its share counted in `c`.
 */
function clearFlush(machine: Machine, mmId: number, vpn: number, nr: number, c: WritebackCounters): void {
  const tlbs = machine.tlbs;
  if (tlbs === null) {
    c.tlbFlushes++;
    return;
  }
  tlbs.flushTlbMmRange(mmId, vpn * machine.pageSize, (vpn + nr) * machine.pageSize, c);
}

/**
 * folio_mkclean's walk over one VMA (page_vma_mkclean_one) for the pages of folio `head` ([first,
 * first + nr) file indices) it maps; one page-table-lock section per table, each followed by a yield.
 * Adds the cleaned entries to `c` and returns how many it cleaned.
 */
function* mkcleanVma(
  machine: Machine,
  mm: Mm,
  vma: Vma,
  head: number,
  first: number,
  nr: number,
  c: WritebackCounters,
): Generator<undefined, number, unknown> {
  const pt = mm.pt;
  const span = pt.span[0];
  const lo = Math.max(first, vma.pgoff);
  const hi = Math.min(first + nr, vma.pgoff + (vma.end - vma.start));
  let cleaned = 0;
  for (let idx = lo; idx < hi; ) {
    const vpn = vma.start + (idx - vma.pgoff);
    const base = vpn - (vpn % span);
    const stop = Math.min(hi, idx + (base + span - vpn));
    const pmdId = pt.pmdTable(vpn, false);
    if (pmdId < 0) {
      idx = stop;
      continue;
    }
    const pmd = pt.entries[pmdId]!;
    const pi = pt.index(vpn, LEVEL_PMD);
    const e = pmd[pi];
    if (e === 0) {
      idx = stop;
      continue;
    }
    c.ptlSections++;
    // A present PMD slot is a huge leaf. PMD_HUGE alone does not tell: a slot pointing to a PTE table
    // holds (tableId + 1) << 1, which has that bit set for table ids 7..14, 23..30, …
    if ((e & PTE_PRESENT) !== 0 && (e & PMD_HUGE) !== 0) {
      // A PMD mapping of this folio: pmdp_invalidate, pmd_wrprotect, pmd_mkclean, set_pmd_at.
      if (ptePfn(e) === head && (e & (PTE_DIRTY | PTE_WRITE)) !== 0) {
        clearFlush(machine, mm.id, base, span, c);
        pmd[pi] = e & ~(PTE_DIRTY | PTE_WRITE);
        c.ptesCleaned++;
        cleaned++;
      }
    } else {
      const t = pt.entries[pmdTableId(e)]!;
      for (let j = idx; j < stop; j++) {
        const v = vma.start + (j - vma.pgoff);
        const i = v - base;
        const pte = t[i];
        if (pte <= 0 || (pte & PTE_PRESENT) === 0) continue;
        const pfn = ptePfn(pte);
        if (pfn < head || pfn >= head + nr) continue; // a private COW copy, not this folio
        if ((pte & (PTE_DIRTY | PTE_WRITE)) === 0) continue;
        clearFlush(machine, mm.id, v, 1, c);
        t[i] = pte & ~(PTE_DIRTY | PTE_WRITE);
        c.ptesCleaned++;
        cleaned++;
      }
    }
    yield;
    idx = stop;
  }
  return cleaned;
}

/**
 * Writeback of the dirty page-cache folios of file `mapping` in indices [first, end), on `thread`, as
 * a generator of lock sections. `counters` receives what it did.
 */
export function* writebackSteps(
  machine: Machine,
  mapping: number,
  first: number,
  end: number,
  thread: number,
  counters: WritebackCounters,
): OpSteps {
  const mem = machine.mem;
  const checker = machine.checker;
  const trace = machine.traceSink();
  for (let index = first; index < end; ) {
    const head = mem.filemapGetFolio(mapping, index);
    if (head < 0) {
      index++;
      continue;
    }
    const fFirst = mem.folioIndex(head);
    const nr = mem.folioNrPages(head);
    index = fFirst + nr;
    if (!mem.folioTest(head, PG.dirty)) continue;
    // folio_clear_dirty_for_io → folio_mkclean.
    let cleaned = 0;
    if (!mem.folioMapped(head)) counters.mkcleanUnmapped++;
    else {
      // rmap_walk_file under i_mmap_lock_read: the VMAs it finds stay as they are until it is done —
      // munmap's split (vma_prepare) and free_pgtables' unlink_file_vma take the write side and wait.
      const readers = machine.iMmapReaders;
      readers.set(mapping, (readers.get(mapping) ?? 0) + 1);
      try {
        const vmas = (machine.iMmap.get(mapping) ?? []).slice();
        for (const { mm, vma } of vmas) {
          if (!vma.shared) continue; // invalid_mkclean_vma
          if (vma.pgoff >= fFirst + nr || vma.pgoff + (vma.end - vma.start) <= fFirst) continue;
          counters.rmapVmasVisited++;
          cleaned += yield* mkcleanVma(machine, mm, vma, head, fFirst, nr, counters);
        }
      } finally {
        const n = (readers.get(mapping) ?? 1) - 1;
        if (n === 0) readers.delete(mapping);
        else readers.set(mapping, n);
      }
    }
    // folio_mark_dirty when it cleaned any (a no-op here: the folio is dirty), folio_test_clear_dirty.
    if (!mem.folioTest(head, PG.dirty)) continue;
    mem.folioClear(head, PG.dirty);
    counters.foliosWritten++;
    counters.pagesWritten += nr;
    if (trace !== null) trace({ type: "folioWrittenBack", pfn: head, nr, cleanedPtes: cleaned, thread });
    checker?.onFolioCleaned(head, nr);
    yield;
  }
}

/** Validates a writeback range's VMA kind: only a file with writeback (not shmem, not anon). */
export function checkWritebackVma(kind: string): void {
  if (kind !== "file-shared" && kind !== "file-private") {
    throw new TeardownError(
      "BAD_SPEC",
      "writeback",
      "writeback",
      `writeback needs a file VMA (file-shared or file-private), got ${kind}: ${kind === "shmem" ? "shmem has no writeback (BDI_CAP_WRITEBACK)" : "anonymous memory has no file"}`,
    );
  }
}
