// Models: unmap_vmas → unmap_single_vma → unmap_page_range → zap_p4d/pud/pmd_range → zap_pte_range
// (mm/memory.c) with tlb_start_vma / tlb_end_vma, and free_pgtables → free_pgd_range with its
// floor/ceiling rule (mm/memory.c). Each PTE-table (or huge PMD) critical section ends with a
// `yield`, so two threads can be interleaved at page-table-lock granularity.
// VM_PFNMAP VMAs (Linux v6.18): tlb_start_vma records vma_pfn (sticky in the gather) and the walk
// treats every PTE of the VMA as special (ctx.noNormalPages); free_pgtables starts with
// tlb_flush_mmu_pfnmap (v6.15+), so no TLB entry of a pfnmap VMA survives its unlink from i_mmap — the
// callers (ops.ts) run it before they wait for i_mmap_rwsem, as the kernel does before unlink_file_vma.
// PAT bookkeeping is not here in v6.18: untrack_pfn left unmap_single_vma in v6.16 (pfnmap_untrack
// runs when the last VMA sharing the pfnmap_track_ctx is freed), and is not modelled.
// Omits: hugetlb VMAs, huge PUDs, uprobes, vma merging inside free_pgtables, PAT.

import { splitHugePmd } from "../huge-memory.js";
import type { OpSteps } from "../mmap-lock.js";
import { LEVEL_PGD, LEVEL_PMD, LEVEL_PTE, type PageTables } from "../page-tables.js";
import { PTE_PRESENT, pmdTableId } from "../pte.js";
import type { Vma } from "../vma.js";
import type { ZapContext } from "./context.js";
import type { ZapWalk } from "./steps.js";

const NO_VMA_FLAGS = Object.freeze({ exec: false, huge: false, pfnmap: false, locked: false });
const LOCKED_VMA_FLAGS = Object.freeze({ exec: false, huge: false, pfnmap: false, locked: true });
const PFNMAP_VMA_FLAGS = Object.freeze({ exec: false, huge: false, pfnmap: true, locked: false });

/**
 * unmap_vmas over `vmas` clipped to pages [vs, ve), between mmu_notifier_invalidate_range_start and
 * _end (zap_page_range_single has the same pair around its one VMA); yields after every lock section.
 */
export function* unmapVmas(
  ctx: ZapContext,
  walk: ZapWalk,
  vmas: readonly Vma[],
  vs: number,
  ve: number,
): OpSteps {
  walk.steps.mmuNotifierInvalidateRangeStart(ctx, vs, ve);
  for (const vma of vmas) {
    const s = Math.max(vs, vma.start);
    const e = Math.min(ve, vma.end);
    if (s >= e) continue;
    ctx.vma = vma;
    const pfnmap = vma.kind === "pfnmap";
    ctx.noNormalPages = pfnmap;
    const flags = pfnmap ? PFNMAP_VMA_FLAGS : vma.locked ? LOCKED_VMA_FLAGS : NO_VMA_FLAGS;
    ctx.tlb.tlbStartVma(flags);
    yield* unmapPageRange(ctx, walk, s, e);
    ctx.tlb.tlbEndVma(flags);
  }
  ctx.vma = null;
  ctx.noNormalPages = false;
  walk.steps.mmuNotifierInvalidateRangeEnd(ctx, vs, ve);
}

/** unmap_page_range → zap_pmd_range → zap_pte_range for pages [vs, ve) of one VMA. */
export function* unmapPageRange(ctx: ZapContext, walk: ZapWalk, vs: number, ve: number): OpSteps {
  const pt = ctx.mm.pt;
  const span = pt.span[0];
  const steps = walk.steps;
  const counters = ctx.counters;
  for (let base = Math.floor(vs / span) * span; base < ve; base += span) {
    const pmdId = pt.pmdTable(base, false);
    if (pmdId < 0) {
      // No PMD table: skip the whole PMD table's span.
      base = Math.floor(base / pt.span[1]) * pt.span[1] + pt.span[1] - span;
      continue;
    }
    const pmd = pt.entries[pmdId]!;
    const pi = pt.index(base, LEVEL_PMD);
    const e = pmd[pi];
    if (e === 0) continue;
    if ((e & PTE_PRESENT) !== 0) {
      // A huge PMD covering the whole step is zapped whole; a partial range would split it first.
      if (base >= vs && base + span <= ve) {
        steps.zapHugePmd(ctx, pmd, pmdId, pi, base);
        ctx.condResched();
        yield;
        continue;
      }
      // zap_pmd_range: a range that covers part of the THP splits it first (__split_huge_pmd).
      splitHugePmd(ctx.mm, ctx.vma!, pmdId, pi, base, ctx.splitAccounting, ctx.tlb);
      if (pmd[pi] === 0) continue; // a file THP's mapping is gone with the split
    }
    const entry = pmd[pi];
    const tid = pmdTableId(entry);
    const t = pt.entries[tid]!;
    const to = Math.min(ve, base + span) - base;
    let from = Math.max(vs, base) - base;
    // zap_pmd_range redoes the same PMD while zap_pte_range stops early (gather full), reading it again:
    // between two visits another thread under mmap_lock's read side (khugepaged) may have retracted the
    // table — pte_offset_map_lock finds the PMD changed, and the PMD is skipped as none.
    while (from < to) {
      if (pmd[pi] !== entry) break;
      counters.pteTableVisits++;
      ctx.lock(pt.tablePfn[tid]);
      steps.flushTlbBatchedPending(ctx);
      ctx.zapTable = t;
      ctx.zapBase = base;
      ctx.zapFrom = from;
      ctx.zapTo = to;
      if (ctx.deferAllRmaps) ctx.tlb.discardRmaps();
      from = steps.zapPtes(ctx, t, base, from, to);
      ctx.addMmRssVec();
      steps.endPteTable(ctx);
      ctx.zapTable = null;
      ctx.condResched();
      yield;
    }
  }
}

/**
 * free_pgtables / free_pgd_range: frees every page table that maps only addresses inside
 * [floor, ceiling) and is reachable from pages [vs, ve). `ceiling` Infinity = USER_PGTABLES_CEILING.
 */
export function freePgtables(
  ctx: ZapContext,
  walk: ZapWalk,
  vmas: readonly Vma[],
  floor: number,
  ceiling: number,
): void {
  const pt = ctx.mm.pt;
  const counters = ctx.counters;
  // Like the kernel, each VMA's ceiling is the next unmapped VMA's start, so a table shared with a
  // later VMA of the same call survives until that VMA is processed.
  for (let i = 0; i < vmas.length; i++) {
    const v = vmas[i];
    // unlink_anon_vmas / unlink_file_vma(_batch): the VMA leaves the rmap trees before its tables go.
    if (v.anonVma >= 0) counters.anonVmaUnlinks++;
    if (v.mapping >= 0) {
      counters.fileVmaUnlinks++;
      ctx.mm.machine.iMmapRemove(v);
    }
    const c = i + 1 < vmas.length ? vmas[i + 1].start : ceiling;
    freeLevel(ctx, walk, pt, pt.pgd, LEVEL_PGD, 0, v.start, v.end, floor, c);
  }
}

function freeLevel(
  ctx: ZapContext,
  walk: ZapWalk,
  pt: PageTables,
  id: number,
  level: number,
  regionBase: number,
  vs: number,
  ve: number,
  floor: number,
  ceiling: number,
): void {
  const t = pt.entries[id]!;
  const childSpan = pt.span[level - 1];
  const first = Math.floor((Math.max(vs, regionBase) - regionBase) / childSpan);
  const last = Math.min(pt.ptrs[level] - 1, Math.floor((ve - 1 - regionBase) / childSpan));
  for (let i = first; i <= last; i++) {
    const e = t[i];
    if (e === 0 || (e & PTE_PRESENT) !== 0) continue;
    const cb = regionBase + i * childSpan;
    const cid = pmdTableId(e);
    if (level - 1 > LEVEL_PTE) freeLevel(ctx, walk, pt, cid, level - 1, cb, vs, ve, floor, ceiling);
    if (cb >= floor && cb + childSpan <= ceiling) {
      t[i] = 0;
      const pfn = pt.tablePfn[cid];
      if (pfn < 0) {
        // A folded level (pgtable-nopud.h): the entry was the parent's; pud_free_tlb does nothing.
        pt.releaseId(cid);
        continue;
      }
      // Unlinked: from now on no walk reaches it, but a CPU may still cache it from an earlier one.
      if (ctx.checker !== null) ctx.mm.machine.tlbs?.noteTableUnlinked(ctx.mm.id, pfn);
      if (level - 1 === LEVEL_PMD && ctx.mm.deposits[cid] !== undefined) ctx.mm.deposits[cid] = null;
      pt.releaseId(cid);
      ctx.counters.tablesFreed[level - 1]++;
      walk.steps.freeTable(ctx, level - 1, pfn, cb * ctx.pageSize);
    }
  }
}
