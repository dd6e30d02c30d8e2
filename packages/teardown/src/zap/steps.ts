// Models: zap_pte_range (mm/memory.c) in its v6.5 per-PTE form (also the 2023 contig-range series,
// which only moves every rmap removal to tlb_flush_rmaps at the end of the table) and in its 7.x form
// (do_zap_pte_range: runs of none PTEs skipped, zap_present_ptes + folio_pte_batch +
// zap_present_folio_ptes, zap_nonpresent_ptes with swap_pte_batch + free_swap_and_cache_nr — one swap
// PTE at a time under v6.9's rules), the end
// of each table (TLB flush and delayed rmaps under the PTL, frees after it), zap_huge_pmd
// (mm/huge_memory.c, with zap_deposited_table) and the pte/pmd/pud_free_tlb hand-off of free_pgtables.
// mark_page_accessed / folio_mark_accessed of young file PTEs are counted (markAccessedCalls), their
// LRU effect (PG_referenced, activation) is not modelled.
// The zero page (Linux v6.18 zap_present_ptes, and v6.5's zap_pte_range alike): vm_normal_page
// returns NULL, so the PTE is cleared and its TLB entry recorded (ptep_get_and_clear_full,
// tlb_remove_tlb_entry) one PTE at a time — no rss, no rmap, nothing queued; the fused fast paths stop
// their runs at it. A huge zero PMD (zap_huge_pmd, is_huge_zero_pmd): cleared, its TLB entry recorded
// (tlb_remove_pmd_tlb_entry comes before the branch), the deposited table freed (zap_deposited_table:
// no DAX VMAs here), and nothing else: no rss, no rmap, no tlb_remove_page_size.
// VM_PFNMAP VMAs (v6.18 zap_present_ptes): every PTE is special, so each is cleared like a zero PTE —
// one zap_present_ptes call per PTE, nothing queued. The walk knows it per VMA (ctx.noNormalPages) and
// runs a loop of its own for such a table (zapSpecialPtes): no device pfn ever reaches a folio lookup or
// the gather's page calls, and the fused paths stay untouched.
// On an arch with a PTE-aware clear (arm64 contpte) both walks hand it the PTE table before clearing
// (MmuGather.clearFullPtes, after which the batch's dirty / young bits are read): one PTE at a time in
// the per-PTE walk (ptep_get_and_clear_full), the folio_pte_batch run in the 7.x walk, whose batch then
// takes a contiguous block in one read (arm64's pte_batch_hint) and never crosses a change of the
// contiguous bit (pte_same). The fused paths are off there (the gather's zapFastPath).
// Migration entries (a concurrent migration's, migrate.ts): the folio's rss counter drops, the entry is
// cleared, nothing else (v6.5 zap_pte_range and v6.18 zap_nonpresent_ptes alike). Each page-table-lock
// section starts with flush_tlb_batched_pending (the walk's `flushTlbBatchedPending` step).
// Omits: uffd-wp markers, device/hwpoison entries,
// need_resched breaks (they change no state), PMD-level IDTE on s390 (one IPTE stands in for it).
import { PG } from "@mmgather/folio";
import {
  flagsOrder0,
  folioFlagsTrusted,
  folioHeadTrusted,
  folioNrPagesTrusted,
} from "@mmgather/folio/internal";
import { TeardownError } from "../errors.js";
import { removePmdRmap } from "../huge-memory.js";
import { LEVEL_PMD, LEVEL_PTE } from "../page-tables.js";
import {
  isMigrationPte,
  migrationPtePfn,
  PTE_CONT,
  PTE_DIRTY,
  PTE_WRITE,
  PTE_YOUNG,
  ptePfn,
  pteSwapEntry,
} from "../pte.js";
import { flushTlbBatchedPending } from "../tlb-batch.js";
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS } from "../vma.js";
import type { ZapContext } from "./context.js";

/**
 * The composable steps of a zap walk. Each default is the kernel's code; override one with
 * `defineZapWalk` to build a deliberately broken walk.
 */
export interface ZapWalkSteps {
  /**
   * unmap_vmas / zap_page_range_single, before the first VMA: mmu_notifier_invalidate_range_start over
   * pages [vs, ve) — subscribers with page tables of their own (KVM) drop their mappings of the range.
   */
  mmuNotifierInvalidateRangeStart(ctx: ZapContext, vs: number, ve: number): void;
  /** After the last VMA (before tlb_finish_mmu frees anything): mmu_notifier_invalidate_range_end. */
  mmuNotifierInvalidateRangeEnd(ctx: ZapContext, vs: number, ve: number): void;
  /**
   * Step 4 of zap_pte_range, right after the PTE lock is taken: flush_tlb_batched_pending(mm) — a
   * flush another CPU's rmap walk deferred for this mm (migration, tlb-batch.ts) is done now, before
   * this walk finds those PTEs already cleared and flushes nothing for them.
   */
  flushTlbBatchedPending(ctx: ZapContext): void;
  /**
   * The PTE loop of one zap_pte_range call over `t[from, to)` (the PTL is held). `base` is the virtual
   * page of `t[0]`. Sets `ctx.forceFlush`; returns the index reached (< `to` when the gather filled).
   */
  zapPtes(ctx: ZapContext, t: Int32Array, base: number, from: number, to: number): number;
  /**
   * Steps 9–11 of zap_pte_range: under the PTL, TLB flush if forced, then the delayed / batched rmaps;
   * `ctx.unlock()`; after it, the full flush (frees) if forced.
   */
  endPteTable(ctx: ZapContext): void;
  /** zap_huge_pmd for the PMD-mapped THP at `pmd[index]`, whose range starts at virtual page `base`. */
  zapHugePmd(ctx: ZapContext, pmd: Int32Array, pmdTableId: number, index: number, base: number): void;
  /** Hand one unhooked page-table page of `level` (0 PTE, 1 PMD, 2 PUD) mapping `addr` to the gather. */
  freeTable(ctx: ZapContext, level: number, tablePfn: number, addr: number): void;
}

/** A zap walk: a name and its steps. */
export interface ZapWalk {
  readonly name: string;
  readonly steps: ZapWalkSteps;
}

/** Overrides accepted by `defineZapWalk`. */
export interface ZapWalkOverrides {
  readonly name?: string;
  readonly steps?: Partial<ZapWalkSteps>;
}

/** mm_counter(): the rss counter of a live folio (head read from a present PTE, so no checks). */
function rssIndexOf(ctx: ZapContext, head: number): number {
  const f = folioFlagsTrusted(ctx.fs, head);
  if ((f & PG.anon) !== 0) return MM_ANONPAGES;
  return (f & PG.swapbacked) !== 0 ? MM_SHMEMPAGES : MM_FILEPAGES;
}

/**
 * The gather is full (__tlb_remove_page returned true): force_flush, counted as a full batch, and
 * zap_pte_range leaves the table at `next` (the flush frees the batch, then the walk resumes there).
 */
function batchFull(ctx: ZapContext, next: number): number {
  ctx.forceFlush = true;
  ctx.forceFromFull = true;
  return next;
}

/**
 * A dirty file page's rmap is delayed (tlb_delay_rmap): force_flush before the PTL is dropped, counted
 * as a dirty-shared flush unless the gather already filled in this table.
 */
function forceFlushDirtyShared(ctx: ZapContext): void {
  if (!ctx.forceFlush) ctx.forceFromFull = false;
  ctx.forceFlush = true;
}

/**
 * A migration entry (is_migration_entry): the rss counter of the folio it points to drops by one and the
 * entry is cleared (pte_clear_not_present_full) — no rmap, no reference, nothing queued: the migration
 * already removed the rmap and dropped the PTE's reference when it installed the entry, and it still
 * holds the folio. v6.5's zap_pte_range and v6.18's zap_nonpresent_ptes alike, one entry at a time.
 */
function zapMigrationPte(ctx: ZapContext, t: Int32Array, i: number): void {
  const pfn = migrationPtePfn(t[i]);
  const head = folioHeadTrusted(ctx.fs, pfn);
  if (ctx.trace !== null)
    ctx.trace({
      type: "migrationEntryZapped",
      mmId: ctx.mm.id,
      addr: (ctx.zapBase + i) * ctx.pageSize,
      pfn,
      thread: ctx.thread,
    });
  t[i] = 0;
  ctx.rss[rssIndexOf(ctx, head)]--;
  ctx.counters.migrationPtesCleared++;
}

/**
 * One swap PTE cleared and its slot dropped (`free_swap_and_cache`), as v6.5 to v6.9 do it; a
 * migration entry takes its own branch (zapMigrationPte).
 */
function zapSwapPte(ctx: ZapContext, t: Int32Array, i: number): void {
  const pte = t[i];
  if (isMigrationPte(pte)) {
    zapMigrationPte(ctx, t, i);
    return;
  }
  t[i] = 0;
  ctx.rss[MM_SWAPENTS]--;
  ctx.counters.swapPtesCleared++;
  ctx.counters.swapBatches++;
  ctx.swap!.freeSwapAndCache(pteSwapEntry(pte));
}

/**
 * A special PTE — the zero page, or any PTE of a VM_PFNMAP VMA (vm_normal_page is NULL):
 * ptep_get_and_clear_full and tlb_remove_tlb_entry, nothing else — no rss, no rmap, no gather entry.
 * One zap_present_ptes call of one PTE.
 */
function zapSpecialPte(ctx: ZapContext, t: Int32Array, i: number, addr: number): void {
  t[i] = 0;
  ctx.tlb.ptepGetAndClear(addr, 1);
  ctx.tlb.tlbRemoveTlbEntry(addr);
  ctx.counters.ptesCleared++;
  ctx.counters.presentBatches++;
}

/**
 * zap_pte_range over a table of a VM_PFNMAP VMA (`ctx.noNormalPages`): every present PTE is special
 * (zapSpecialPte); a pfnmap VMA has no swap entries. The same in the v6.5 and 7.x walks (none runs are
 * skipped either way; folio_pte_batch never runs without a folio). Never fills the gather.
 */
export function zapSpecialPtes(
  ctx: ZapContext,
  t: Int32Array,
  base: number,
  from: number,
  to: number,
): number {
  const pageSize = ctx.pageSize;
  for (let i = from; i < to; i++) {
    if (t[i] > 0) zapSpecialPte(ctx, t, i, (base + i) * pageSize);
  }
  return to;
}

/** v6.5 zap_pte_range loop: one PTE, one rmap call, one gather entry at a time. */
export function zapPtesPerPte(
  ctx: ZapContext,
  t: Int32Array,
  base: number,
  from: number,
  to: number,
): number {
  if (ctx.noNormalPages) return zapSpecialPtes(ctx, t, base, from, to);
  const tlb = ctx.tlb;
  const mem = ctx.mem;
  const fs = ctx.fs;
  const rss = ctx.rss;
  const c = ctx.counters;
  const checker = ctx.checker;
  const deferAll = ctx.deferAllRmaps;
  const fused = ctx.fused;
  const pageSize = ctx.pageSize;
  const zero = ctx.zeroPfn;
  const pteAware = ctx.pteAware;
  for (let i = from; i < to; i++) {
    let pte = t[i];
    if (pte === 0) continue;
    const addr = (base + i) * pageSize;
    if (pte > 0) {
      const pfn = ptePfn(pte);
      if (pfn === zero) {
        zapSpecialPte(ctx, t, i, addr);
        continue;
      }
      if (fused) {
        const head = folioHeadTrusted(fs, pfn);
        const idx = rssIndexOf(ctx, head);
        const anon = idx === MM_ANONPAGES;
        if (anon || (pte & PTE_DIRTY) === 0) {
          // The per-PTE body below with delay = false for this PTE and the following ones that map the
          // next pages of the same folio and would take this branch too, in one gather call that still
          // makes one rmap call and one queue entry per page (and stops where the gather fills).
          const fnr = folioNrPagesTrusted(fs, head);
          if (fnr === 1) {
            c.ptesCleared++;
            c.presentBatches++;
            if (!anon && (pte & PTE_YOUNG) !== 0) c.markAccessedCalls++;
            rss[idx]--;
            t[i] = 0;
            if (tlb.zapPresentTrusted(head, pfn, 1, addr, !deferAll)) {
              return batchFull(ctx, i + 1);
            }
            continue;
          }
          let n = 1;
          const fend = fnr + head;
          while (i + n < to && pfn + n < fend) {
            const p = t[i + n];
            if (p <= 0 || ptePfn(p) !== pfn + n || (!anon && (p & PTE_DIRTY) !== 0)) break;
            n++;
          }
          const r = tlb.zapPresentRunPerPageTrusted(head, pfn, n, addr, !deferAll);
          const k = r < 0 ? -r : r;
          for (let j = i; j < i + k; j++) {
            if (!anon && (t[j] & PTE_YOUNG) !== 0) c.markAccessedCalls++;
            t[j] = 0;
          }
          c.ptesCleared += k;
          c.presentBatches += k;
          rss[idx] -= k;
          if (r < 0) {
            return batchFull(ctx, i + k);
          }
          i += k - 1;
          continue;
        }
      }
      if (pteAware) {
        // ptep_get_and_clear_full on a PTE-aware arch: it sees the table first (arm64 unfolds a
        // contiguous block here, merging the block's dirty / young bits into every entry).
        ctx.clearFullPtes(t, base, i, 1);
        pte = t[i];
      } else tlb.ptepGetAndClear(addr, 1);
      t[i] = 0;
      tlb.tlbRemoveTlbEntry(addr);
      c.ptesCleared++;
      c.presentBatches++;
      const head = folioHeadTrusted(fs, pfn);
      let delay = false;
      const idx = rssIndexOf(ctx, head);
      if (idx !== MM_ANONPAGES && (pte & PTE_DIRTY) !== 0) {
        mem.folioSet(head, PG.dirty);
        if (checker !== null) checker.noteDirtyFileClear(pfn, 1, ctx.thread);
        if (tlb.tlbDelayRmap()) {
          delay = !deferAll;
          forceFlushDirtyShared(ctx);
        }
      }
      if (idx !== MM_ANONPAGES && (pte & PTE_YOUNG) !== 0) c.markAccessedCalls++;
      rss[idx]--;
      if (!delay && !deferAll) tlb.removeRmapTrusted(head, pfn, 1);
      if (tlb.removePageTrusted(pfn, delay)) {
        return batchFull(ctx, i + 1);
      }
    } else {
      zapSwapPte(ctx, t, i);
    }
  }
  return to;
}

/**
 * The 7.x fused walk's run of PTEs from `t[i]` (= `pte`, whose pfn has flags `f0`) that each map their
 * own order-0 folio and are not delayed: one gather call (zapSinglesRunTrusted) that still makes one
 * rmap call and one queue entry per page and stops where the gather fills. Each pfn's flags are read
 * once; rss is counted per kind. Returns the next index, negated when the gather filled (force_flush
 * is then set).
 */
function zapOrder0Run(
  ctx: ZapContext,
  t: Int32Array,
  i: number,
  to: number,
  addr: number,
  pte: number,
  f0: number,
): number {
  const fs = ctx.fs;
  const rss = ctx.rss;
  const c = ctx.counters;
  const pfns = ctx.runPfns;
  const zero = ctx.zeroPfn;
  let n = 0;
  let anonN = 0;
  let shmemN = 0;
  let youngFileN = 0;
  let j = i;
  let p = pte;
  let f = f0;
  for (;;) {
    pfns[n++] = ptePfn(p);
    if ((f & PG.anon) !== 0) anonN++;
    else if ((f & PG.swapbacked) !== 0) shmemN++;
    if ((f & PG.anon) === 0 && (p & PTE_YOUNG) !== 0) youngFileN++;
    if (++j === to) break;
    p = t[j];
    if (p <= 0 || ptePfn(p) === zero) break;
    f = folioFlagsTrusted(fs, ptePfn(p));
    if (!flagsOrder0(f) || ((f & PG.anon) === 0 && (p & PTE_DIRTY) !== 0)) break;
  }
  const r = ctx.tlb.zapSinglesRunTrusted(pfns, n, addr);
  const k = r < 0 ? -r : r;
  if (k !== n) {
    // The gather filled inside the run: count the pages it took.
    anonN = 0;
    shmemN = 0;
    youngFileN = 0;
    for (let q = 0; q < k; q++) {
      const fq = folioFlagsTrusted(fs, pfns[q]);
      if ((fq & PG.anon) !== 0) anonN++;
      else {
        if ((fq & PG.swapbacked) !== 0) shmemN++;
        if ((t[i + q] & PTE_YOUNG) !== 0) youngFileN++;
      }
    }
  }
  for (let q = i; q < i + k; q++) t[q] = 0;
  c.markAccessedCalls += youngFileN;
  c.ptesCleared += k;
  c.presentBatches += k;
  if (anonN !== 0) rss[MM_ANONPAGES] -= anonN;
  if (shmemN !== 0) rss[MM_SHMEMPAGES] -= shmemN;
  if (k - anonN - shmemN !== 0) rss[MM_FILEPAGES] -= k - anonN - shmemN;
  if (r < 0) {
    return batchFull(ctx, -(i + k));
  }
  return i + k;
}

/**
 * arm64 `pte_batch_hint` for the PTE `pte` at virtual page `vpn`: with the contiguous bit, the entries
 * left in its block of `cont` (all vouched for by this one read); otherwise 1.
 */
function pteBatchHint(pte: number, vpn: number, cont: number): number {
  return (pte & PTE_CONT) !== 0 && cont > 0 ? cont - (vpn % cont) : 1;
}

/**
 * zap_present_ptes of the 7.x walk on an arch that clears through a PTE-aware hook (arm64 contpte), for
 * the present, normal PTE `pte` = `t[i]`: folio_pte_batch with the arch's `pte_batch_hint` (a PTE with
 * the contiguous bit vouches for the rest of its block: one read for the block), a batch never crossing
 * a change of the contiguous bit (pte_same compares it); then `clear_full_ptes` /
 * `get_and_clear_full_ptes` — the arch hook first (it unfolds a block the batch covers only in part),
 * the batch's dirty / young bits read after it (an unfold merges the block's into every entry) — and
 * zap_present_folio_ptes as the step-by-step path does it. Returns the next index, negated when the
 * gather filled (force_flush is then set).
 */
function zapPresentPtesAware(
  ctx: ZapContext,
  t: Int32Array,
  base: number,
  i: number,
  to: number,
  pte: number,
): number {
  const tlb = ctx.tlb;
  const fs = ctx.fs;
  const c = ctx.counters;
  const pfn = ptePfn(pte);
  const head = folioHeadTrusted(fs, pfn);
  const fnr = folioNrPagesTrusted(fs, head);
  const cont = ctx.contPtes;
  let n = 1;
  if (fnr > 1 && to - i > 1) {
    // folio_pte_batch: max_nr stops at the folio's end; the hint skips the rest of a contiguous block.
    const max = Math.min(to - i, head + fnr - pfn);
    const key = pte & (PTE_WRITE | PTE_CONT);
    n = pteBatchHint(pte, base + i, cont);
    let reads = 1;
    while (n < max) {
      const p = t[i + n];
      if (p <= 0 || ptePfn(p) !== pfn + n || (p & (PTE_WRITE | PTE_CONT)) !== key) break;
      reads++;
      n += pteBatchHint(p, base + i + n, cont);
    }
    if (n > max) n = max;
    c.folioPteBatchCalls++;
    c.folioPteBatchPtes += reads;
  }
  const addr = (base + i) * ctx.pageSize;
  ctx.clearFullPtes(t, base, i, n);
  let merged = 0;
  for (let k = i; k < i + n; k++) {
    merged |= t[k];
    t[k] = 0;
  }
  const idx = rssIndexOf(ctx, head);
  if (idx !== MM_ANONPAGES && (merged & PTE_YOUNG) !== 0) c.markAccessedCalls++;
  c.ptesCleared += n;
  c.presentBatches++;
  let delay = false;
  if (idx !== MM_ANONPAGES && (merged & PTE_DIRTY) !== 0) {
    ctx.mem.folioSet(head, PG.dirty);
    if (ctx.checker !== null) ctx.checker.noteDirtyFileClear(pfn, n, ctx.thread);
    if (tlb.tlbDelayRmap()) {
      delay = true;
      forceFlushDirtyShared(ctx);
    }
  }
  ctx.rss[idx] -= n;
  tlb.tlbRemoveTlbEntries(addr, n);
  if (!delay) tlb.removeRmapTrusted(head, pfn, n);
  if (tlb.removeFolioPagesTrusted(pfn, n, delay)) return -batchFull(ctx, i + n);
  return i + n;
}

/** 7.x do_zap_pte_range loop: none runs skipped, folio_pte_batch, swap_pte_batch. */
export function zapPtesFolioBatch(
  ctx: ZapContext,
  t: Int32Array,
  base: number,
  from: number,
  to: number,
): number {
  if (ctx.noNormalPages) return zapSpecialPtes(ctx, t, base, from, to);
  const tlb = ctx.tlb;
  const mem = ctx.mem;
  const fs = ctx.fs;
  const rss = ctx.rss;
  const c = ctx.counters;
  const checker = ctx.checker;
  const fused = ctx.fused;
  const pageSize = ctx.pageSize;
  const swapBatch = tlb.variant.policy.walkBatchesSwapPtes;
  const zero = ctx.zeroPfn;
  let i = from;
  while (i < to) {
    const pte = t[i];
    if (pte === 0) {
      i++;
      while (i < to && t[i] === 0) i++;
      continue;
    }
    const addr = (base + i) * pageSize;
    if (pte > 0) {
      const pfn = ptePfn(pte);
      if (pfn === zero) {
        // zap_present_ptes: no page, so no folio_pte_batch — one PTE per call.
        zapSpecialPte(ctx, t, i, addr);
        i++;
        continue;
      }
      if (fused) {
        const f0 = folioFlagsTrusted(fs, pfn);
        if (flagsOrder0(f0) && ((f0 & PG.anon) !== 0 || (pte & PTE_DIRTY) === 0)) {
          // A run of PTEs that each map their own order-0 folio and take the fused branch below
          // (folio_pte_batch stops at 1 for each), in a function of its own.
          const r = zapOrder0Run(ctx, t, i, to, addr, pte, f0);
          if (r < 0) return -r;
          i = r;
          continue;
        }
      }
      if (ctx.pteAware) {
        const r = zapPresentPtesAware(ctx, t, base, i, to, pte);
        if (r < 0) return -r;
        i = r;
        continue;
      }
      // A present PTE maps a live folio: the hot path reads it unchecked, and folio_pte_batch below
      // keeps [pfn, pfn + n) inside it, which is what the gather's trusted calls require.
      const head = folioHeadTrusted(fs, pfn);
      const fnr = folioNrPagesTrusted(fs, head);
      let n = 1;
      let merged = pte;
      // ptep_get_and_clear of the batch: each PTE is cleared as folio_pte_batch takes it in.
      t[i] = 0;
      if (fnr > 1 && to - i > 1) {
        // folio_pte_batch: same folio, consecutive pfns, same write bit; dirty/young OR-merged.
        const fend = head + fnr;
        const wr = pte & PTE_WRITE;
        while (i + n < to) {
          const p = t[i + n];
          if (p <= 0 || ptePfn(p) !== pfn + n || pfn + n >= fend || (p & PTE_WRITE) !== wr) break;
          merged |= p;
          t[i + n] = 0;
          n++;
        }
        c.folioPteBatchCalls++;
        c.folioPteBatchPtes += n;
      }
      const idx = rssIndexOf(ctx, head);
      // folio_mark_accessed once per run of a file folio when any PTE of it was young.
      if (idx !== MM_ANONPAGES && (merged & PTE_YOUNG) !== 0) c.markAccessedCalls++;
      if (fused && (idx === MM_ANONPAGES || (merged & PTE_DIRTY) === 0)) {
        // The step-by-step sequence below with delay = false, in one gather call.
        c.ptesCleared += n;
        c.presentBatches++;
        rss[idx] -= n;
        if (tlb.zapPresentTrusted(head, pfn, n, addr, true)) {
          return batchFull(ctx, i + n);
        }
        i += n;
        continue;
      }
      tlb.ptepGetAndClear(addr, n);
      c.ptesCleared += n;
      c.presentBatches++;
      let delay = false;
      if (idx !== MM_ANONPAGES && (merged & PTE_DIRTY) !== 0) {
        mem.folioSet(head, PG.dirty);
        if (checker !== null) checker.noteDirtyFileClear(pfn, n, ctx.thread);
        if (tlb.tlbDelayRmap()) {
          delay = true;
          forceFlushDirtyShared(ctx);
        }
      }
      rss[idx] -= n;
      tlb.tlbRemoveTlbEntries(addr, n);
      if (!delay) tlb.removeRmapTrusted(head, pfn, n);
      if (tlb.removeFolioPagesTrusted(pfn, n, delay)) {
        return batchFull(ctx, i + n);
      }
      i += n;
    } else if (isMigrationPte(pte)) {
      zapMigrationPte(ctx, t, i);
      i++;
    } else if (swapBatch) {
      // swap_pte_batch: consecutive offsets on one device (genuine swap entries only).
      const entry = pteSwapEntry(pte);
      const type = entry >>> 26;
      let n = 1;
      while (i + n < to && t[i + n] === pte - n && (entry + n) >>> 26 === type) n++;
      for (let k = 0; k < n; k++) t[i + k] = 0;
      rss[MM_SWAPENTS] -= n;
      c.swapPtesCleared += n;
      c.swapBatches++;
      ctx.swap!.freeSwapAndCacheNr(entry, n);
      i += n;
    } else {
      // v6.9: one free_swap_and_cache per swap PTE.
      zapSwapPte(ctx, t, i);
      i++;
    }
  }
  return to;
}

/** The trail's record of one mmu notifier call over pages [vs, ve). */
function traceNotifier(
  ctx: ZapContext,
  edge: "start" | "end",
  vs: number,
  ve: number,
  sptesZapped: number,
): void {
  if (ctx.trace !== null)
    ctx.trace({
      type: "mmuNotifierRange",
      edge,
      mmId: ctx.mm.id,
      start: vs * ctx.pageSize,
      end: ve * ctx.pageSize,
      sptesZapped,
      thread: ctx.thread,
    });
}

/** mmu_notifier_invalidate_range_start: the machine's KVM guest, if any, zaps its sptes of the range. */
export function mmuNotifierInvalidateRangeStartDefault(ctx: ZapContext, vs: number, ve: number): void {
  const kvm = ctx.mm.machine.kvm;
  if (kvm === null) return;
  traceNotifier(ctx, "start", vs, ve, kvm.invalidateRangeStart(ctx.mm.id, vs, ve));
}

/** mmu_notifier_invalidate_range_end: the machine's KVM guest, if any, ends the invalidation. */
export function mmuNotifierInvalidateRangeEndDefault(ctx: ZapContext, vs: number, ve: number): void {
  const kvm = ctx.mm.machine.kvm;
  if (kvm === null) return;
  kvm.invalidateRangeEnd(ctx.mm.id);
  traceNotifier(ctx, "end", vs, ve, 0);
}

/** flush_tlb_batched_pending under the PTE lock (tlb-batch.ts), counted when it flushed. */
export function flushTlbBatchedPendingDefault(ctx: ZapContext): void {
  if (!flushTlbBatchedPending(ctx.mm.machine, ctx.mm)) return;
  ctx.counters.batchedPendingFlushes++;
  if (ctx.trace !== null) ctx.trace({ type: "batchedPendingFlushed", mmId: ctx.mm.id, thread: ctx.thread });
}

/** End of zap_pte_range: TLB → delayed rmaps under the PTL; unlock; free after it. */
export function endPteTableDefault(ctx: ZapContext): void {
  const tlb = ctx.tlb;
  const force = ctx.forceFlush;
  if (force && ctx.trace !== null)
    ctx.trace({
      type: "walkForcedFlush",
      reason: ctx.forceFromFull ? "batchFull" : "dirtyShared",
      mmId: ctx.mm.id,
      thread: ctx.thread,
    });
  const why = ctx.forceFromFull ? "batchFull" : "dirtyShared";
  if (force) tlb.flushMmuTlbonly(why);
  // 6.5 / 7.x flush delayed rmaps only when forced; the series flushes its batched rmaps always.
  if (force || ctx.deferAllRmaps) tlb.flushRmaps();
  ctx.unlock();
  if (force) {
    if (ctx.forceFromFull) ctx.counters.forcedFlushBatchFull++;
    else ctx.counters.forcedFlushDirtyShared++;
    ctx.forceFlush = false;
    ctx.forceFromFull = false;
    tlb.flushMmu(why);
  }
}

/** zap_deposited_table: pgtable_trans_huge_withdraw + pte_free of the PMD's deposited table. */
function zapDepositedTable(ctx: ZapContext, pmdTableId: number, index: number): void {
  const d = ctx.mm.deposits[pmdTableId];
  if (d !== null && d !== undefined && d[index] >= 0) {
    ctx.mem.folioPut(d[index]);
    d[index] = -1;
    ctx.counters.depositsFreed++;
  }
}

/**
 * zap_huge_pmd: clear the PMD, drop the rmap at once, free the deposit, queue the THP; a huge zero PMD
 * only frees its deposit.
 */
export function zapHugePmdDefault(
  ctx: ZapContext,
  pmd: Int32Array,
  pmdTableId: number,
  index: number,
  base: number,
): void {
  const tlb = ctx.tlb;
  const mem = ctx.mem;
  const mm = ctx.mm;
  const e = pmd[index];
  const head = ptePfn(e);
  const nr = mm.pt.geo.ptrsPerPte;
  const addr = base * ctx.pageSize;
  ctx.lock(mm.pt.tablePfn[pmdTableId]);
  pmd[index] = 0;
  tlb.ptepGetAndClear(addr, 1);
  tlb.tlbRemovePmdTlbEntry(addr);
  if (head === ctx.hugeZeroFolio) {
    // is_huge_zero_pmd: zap_deposited_table, spin_unlock, and nothing else.
    zapDepositedTable(ctx, pmdTableId, index);
    if (ctx.trace !== null) ctx.trace({ type: "hugePmdZapped", mmId: mm.id, addr, pfn: head });
    ctx.counters.hugePmdsZapped++;
    ctx.unlock();
    return;
  }
  const idx = rssIndexOf(ctx, head);
  if (idx !== MM_ANONPAGES && (e & PTE_DIRTY) !== 0) mem.folioSet(head, PG.dirty);
  if (idx === MM_ANONPAGES) zapDepositedTable(ctx, pmdTableId, index);
  mm.rss[idx] -= nr;
  removePmdRmap(mem, ctx.splitAccounting.folioRmap, head, ctx.vma?.locked === true);
  if (ctx.trace !== null) ctx.trace({ type: "hugePmdZapped", mmId: mm.id, addr, pfn: head });
  if (ctx.checker !== null) ctx.checker.onRmapRemoved(head, 1, false);
  ctx.counters.hugePmdsZapped++;
  ctx.unlock();
  tlb.tlbRemovePageSize(head, nr * ctx.pageSize);
}

/** pte_free_tlb / pmd_free_tlb / pud_free_tlb. */
export function freeTableDefault(ctx: ZapContext, level: number, tablePfn: number, addr: number): void {
  const tlb = ctx.tlb;
  if (level === LEVEL_PTE) tlb.pteFreeTlb(tablePfn, addr);
  else if (level === LEVEL_PMD) tlb.pmdFreeTlb(tablePfn, addr);
  else tlb.pudFreeTlb(tablePfn, addr);
}

/** v6.5 / contig-range walk: per-PTE zap_pte_range. */
export const perPteWalk: ZapWalk = Object.freeze({
  name: "per-pte",
  steps: Object.freeze({
    mmuNotifierInvalidateRangeStart: mmuNotifierInvalidateRangeStartDefault,
    mmuNotifierInvalidateRangeEnd: mmuNotifierInvalidateRangeEndDefault,
    flushTlbBatchedPending: flushTlbBatchedPendingDefault,
    zapPtes: zapPtesPerPte,
    endPteTable: endPteTableDefault,
    zapHugePmd: zapHugePmdDefault,
    freeTable: freeTableDefault,
  }),
});

/** 7.x walk: folio_pte_batch + swap_pte_batch. */
export const folioBatchWalk: ZapWalk = Object.freeze({
  name: "folio-batch",
  steps: Object.freeze({
    mmuNotifierInvalidateRangeStart: mmuNotifierInvalidateRangeStartDefault,
    mmuNotifierInvalidateRangeEnd: mmuNotifierInvalidateRangeEndDefault,
    flushTlbBatchedPending: flushTlbBatchedPendingDefault,
    zapPtes: zapPtesFolioBatch,
    endPteTable: endPteTableDefault,
    zapHugePmd: zapHugePmdDefault,
    freeTable: freeTableDefault,
  }),
});

/** Derives a walk from `base`, replacing steps (how a broken walk is built). */
export function defineZapWalk(base: ZapWalk, overrides: ZapWalkOverrides): ZapWalk {
  const steps: ZapWalkSteps = Object.freeze({ ...base.steps, ...overrides.steps });
  for (const k of [
    "mmuNotifierInvalidateRangeStart",
    "mmuNotifierInvalidateRangeEnd",
    "flushTlbBatchedPending",
    "zapPtes",
    "endPteTable",
    "zapHugePmd",
    "freeTable",
  ] as const) {
    if (typeof steps[k] !== "function") {
      throw new TeardownError("UNKNOWN_WALK", "zap", "defineZapWalk", `step ${k} must be a function`);
    }
  }
  return Object.freeze({ name: overrides.name ?? base.name, steps });
}
