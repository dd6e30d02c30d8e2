// Turns teardown trail events into sentences a student can follow, and groups them into the
// phases the visualizer's timeline draws. Browser-safe.
import { TLB_FLUSH_ALL } from "@mmgather/mmu-gather";
import type { TrailEvent } from "@mmgather/teardown";

const hex = (n: number) => (Number.isFinite(n) ? `0x${n.toString(16)}` : "the end");
const pages = (n: number) => (n === 1 ? "1 page" : `${n} pages`);

const RMAP: Record<string, string> = {
  pageRemoveRmap: "page_remove_rmap (one page)",
  folioRemoveRmapPtes: "folio_remove_rmap_ptes (a run of PTEs of one folio)",
  folioRemoveRmapRange: "folio_remove_rmap_range (a contiguous range of one folio)",
};

const FORCED: Record<string, string> = {
  batchLimit: "the gather holds the most pages it may (MAX_GATHER_BATCH_COUNT), so it must flush now",
  batchAllocFailed: "no memory for another batch page (GFP_NOWAIT failed), so it must flush now",
  delayedRmapLimit: "too many delayed rmaps are pending, so it must flush before taking more",
  tableBatchFull: "the page-table batch is full, so it must flush now",
  tableAllocFailed: "no memory for a page-table batch, so the table is freed synchronously after an IPI",
  nestedGather: "another thread's gather overlapped this one, so tlb_finish_mmu flushes the whole range",
};

const TLB: Record<string, string> = {
  range: "flush_tlb_range: every CPU drops its TLB entries for",
  mm: "flush_tlb_mm: every CPU drops all TLB entries of this mm (whole-mm teardown, or a range too large to flush page by page)",
  ipte: "IPTE: the PTE was invalidated on every CPU as it was cleared:",
  idte: "IDTE: every CPU drops all translations of this address space",
  invlpgb: "INVLPGB: one broadcast, no IPI — every CPU drops its TLB entries for",
};

/** Why the gather flushed (TlbFlushReason); "caller" and "pteClear" need no words. */
const WHY: Record<string, string> = {
  endVma: "end of the VMA (tlb_end_vma)",
  batchFull: "the gather was full",
  dirtyShared: "a dirty shared page's rmap is delayed: flush before the page-table lock drops",
  tableFree: "before page-table pages are freed (tlb_table_invalidate)",
  nested: "tlb_finish_mmu's nested-flush rule: the whole mm",
  finish: "tlb_finish_mmu",
  pfnmap: "a VM_PFNMAP VMA leaves the file's i_mmap (tlb_flush_mmu_pfnmap in free_pgtables)",
};

/** What let a lockless walk end before a table it read could go. */
const WALK_END: Record<string, string> = {
  flushIpi: " — the TLB flush's IPI waits for it",
  syncOne: " — tlb_remove_table_sync_one's IPI waits for it",
  gracePeriod: " — the RCU grace period waits for it",
};

/**
 * One sentence for one event. `flushed` says whether a TLB flush came after the last PTE clear (known
 * when the sentence is part of a narrated sequence): a delayed rmap removal then says which side of the
 * flush it is on.
 */
export function describeEvent(e: TrailEvent, flushed?: boolean): string {
  switch (e.type) {
    case "gatherStarted":
      return `tlb_gather_mmu: start a gather for mm ${e.mmId}${e.fullmm ? " (fullmm: the whole address space goes)" : ""}`;
    case "pteCleared":
      return `clear ${pages(e.nr)} of PTEs at ${hex(e.addr)} (ptep_get_and_clear): the CPU can no longer walk to them, but TLBs may still hold them`;
    case "rangeRecorded":
      return `record ${hex(e.addr)}+${hex(e.size)}${e.level === null ? "" : ` (${e.level} level)`} in the range the next TLB flush must cover`;
    case "rmapRemoved":
      if (!e.delayed)
        return `remove the rmap of pfn ${e.pfn} (${pages(e.nr)}) right away: ${RMAP[e.primitive] ?? e.primitive}`;
      return flushed === false
        ? `remove the rmap of pfn ${e.pfn} (${pages(e.nr)}) at the end of the PTE table, before the TLB flush: ${RMAP[e.primitive] ?? e.primitive} — batched (tlb_flush_rmaps), still under the page-table lock; the page stays allocated until the flush`
        : `remove the rmap of pfn ${e.pfn} (${pages(e.nr)})${flushed === true ? " now that the TLB is flushed" : ""}: ${RMAP[e.primitive] ?? e.primitive} — delayed, still under the page-table lock`;
    case "pageQueued":
      return `queue pfn ${e.pfn} (${pages(e.nr)}) in the gather's batch${e.delayRmap ? ", marked 'delay rmap' (dirty shared file page)" : ""}; it is freed only after the TLB flush`;
    case "tlbFlushed":
      return (
        (e.kind === "range" || e.kind === "ipte" || (e.kind === "invlpgb" && e.end < TLB_FLUSH_ALL)
          ? `${TLB[e.kind]} ${hex(e.start)}–${hex(e.end)}${e.walkCaches ? " (and page-walk caches)" : ""}`
          : e.kind === "invlpgb"
            ? `INVLPGB: one broadcast, no IPI — every CPU drops all TLB entries of this mm's PCID${e.walkCaches ? " (and page-walk caches)" : ""}`
            : `${TLB[e.kind] ?? e.kind}${e.walkCaches ? " (and page-walk caches)" : ""}`) +
        (WHY[e.reason] === undefined ? "" : ` — ${WHY[e.reason]}`)
      );
    case "secondaryTlbsInvalidated":
      return e.end >= TLB_FLUSH_ALL
        ? "mmu_notifier_arch_invalidate_secondary_tlbs: every device sharing the page tables drops all its translations of this mm"
        : `mmu_notifier_arch_invalidate_secondary_tlbs: every device sharing the page tables drops its translations of ${hex(e.start)}–${hex(e.end)} (and its cached walks)`;
    case "locklessWalkDone":
      return `the gup_fast walk on CPU ${e.cpu} ends (interrupts back on)${WALK_END[e.by] ?? ""}`;
    case "rcuGracePeriod":
      return `RCU grace period over: ${e.callbacks} page-table free${e.callbacks === 1 ? "" : "s"} that waited for the lockless walks run now`;
    case "mmuNotifierRelease":
      return `mmu_notifier_release: ${e.devices === 1 ? "the device" : `${e.devices} devices`} sharing mm ${e.mmId}'s page tables ${e.devices === 1 ? "is" : "are"} detached and drop every translation before anything is zapped`;
    case "tlbFlushSkipped":
      return "TLB flush skipped: nothing was cleared since the last one";
    case "rmapsFlushed":
      return `tlb_flush_rmaps: ${e.entries} delayed rmap entr${e.entries === 1 ? "y" : "ies"} processed${flushed === false ? " at the end of the PTE table, before the lock is dropped (the TLB flush comes later)" : flushed === true ? ", after the TLB flush and before the lock is dropped" : ", before the lock is dropped"}`;
    case "pagesFreed": {
      const total = e.nrs.reduce((a, b) => a + b, 0);
      return `free_pages_and_swap_cache: drop the gather's references to ${e.pfns.length} entr${e.pfns.length === 1 ? "y" : "ies"} (${pages(total)}); pages whose last reference this was go back to the allocator`;
    }
    case "condResched":
      return "cond_resched: a chance to let another task run between free chunks";
    case "tableQueued":
      return `queue the ${e.level}-level page table at pfn ${e.pfn} for freeing after the flush`;
    case "tablesFreed":
      return `free ${e.pfns.length} page-table page(s)${e.viaRcu ? " after an RCU grace period" : ""}: no CPU can be walking them any more`;
    case "forcedFlush":
      return `forced flush: ${FORCED[e.reason] ?? e.reason}`;
    case "batchAllocated":
      return `allocate another ${e.what} batch page (now ${e.batchCount})`;
    case "batchAllocFailed":
      return `could not allocate a ${e.what} batch page`;
    case "batchReused":
      return "reuse an already-allocated batch page";
    case "gatherFinished":
      return `tlb_finish_mmu: final flush and free${e.nested ? " (nested: another gather ran on this mm at the same time)" : ""}`;
    case "opStarted":
      return e.end <= e.start
        ? `${e.op} starts: the whole address space of mm ${e.mmId} goes`
        : `${e.op} starts on mm ${e.mmId}: ${hex(e.start)}–${hex(e.end)}`;
    case "opReturned":
      return e.op === "revoke"
        ? "unmap_mapping_range returns: the driver frees the device memory it revoked"
        : `${e.op} returns to user space (mm ${e.mmId})`;
    case "ptlLocked":
      return `thread ${e.thread} takes the page-table lock of table pfn ${e.tablePfn}`;
    case "ptlUnlocked":
      return `thread ${e.thread} drops the page-table lock of table pfn ${e.tablePfn}`;
    case "hugePmdZapped":
      return `zap_huge_pmd: clear the PMD mapping pfn ${e.pfn} at ${hex(e.addr)} (a whole PMD-sized folio at once)`;
    case "walkForcedFlush":
      return e.reason === "batchFull"
        ? `zap_pte_range ends this PTE table early: the gather is full, so flush TLB and free before going on (thread ${e.thread})`
        : `zap_pte_range flushes at the end of this PTE table: a dirty shared file page's rmap was delayed and must be removed after the TLB flush, before the lock is dropped (thread ${e.thread})`;
    case "pageFreed":
      return `pfn ${e.pfn} (${pages(e.nr)}) goes back to the page allocator`;
    case "swapoffProgress":
      return e.stage === "waiting"
        ? `swapoff (another CPU): try_to_unuse swapped in every entry it could find; it waits for the ${e.device === 0 ? "" : `device ${e.device}'s `}slots the teardown still holds`
        : `swapoff (another CPU): inuse_pages is 0 and nothing pins the device — percpu_ref_kill, then swap_map is freed`;
    case "kvmGup":
      return `vCPU (thread ${e.thread}): a guest fault at ${hex(e.addr)} reads mmu_invalidate_seq (${e.mmuSeq}) and looks the host page up with GUP: pfn ${e.pfn}, one reference taken`;
    case "kvmFaultRetry":
      return `vCPU (thread ${e.thread}): under mmu_lock, mmu_invalidate_retry_gfn sees an invalidation since the lookup of ${hex(e.addr)}: drop the page, fault again`;
    case "kvmSpteSet":
      return `vCPU (thread ${e.thread}): KVM maps guest page ${hex(e.addr)} to pfn ${e.pfn} in its spte, under mmu_lock, and drops the GUP reference (an spte holds none)`;
    case "mmuNotifierRange":
      return e.edge === "start"
        ? `mmu_notifier_invalidate_range_start ${hex(e.start)}–${hex(e.end)}: KVM marks the range in progress and zaps ${e.sptesZapped} spte${e.sptesZapped === 1 ? "" : "s"} of it (thread ${e.thread})`
        : `mmu_notifier_invalidate_range_end ${hex(e.start)}–${hex(e.end)}: KVM's mmu_invalidate_seq moves on; faults that read the old one must retry (thread ${e.thread})`;
    case "migrationEntrySet":
      return e.deferred
        ? `migration (thread ${e.thread}): try_to_migrate_one clears the PTE at ${hex(e.addr)} (pfn ${e.pfn}) and puts a migration entry there; its TLB flush is deferred to the batch (set_tlb_ubc_flush_pending: mm->tlb_flush_batched says so)`
        : `migration (thread ${e.thread}): try_to_migrate_one clears and flushes the PTE at ${hex(e.addr)} (pfn ${e.pfn}, ptep_clear_flush) and puts a migration entry there`;
    case "migrationEntryZapped":
      return `thread ${e.thread} clears the migration entry at ${hex(e.addr)} (pfn ${e.pfn}): not a present PTE, so nothing is added to the range to flush`;
    case "batchedPendingFlushed":
      return `flush_tlb_batched_pending: a deferred flush of mm ${e.mmId} may be outstanding, so thread ${e.thread} flushes the mm before touching its PTEs`;
    case "folioMigrated":
      return `migration (thread ${e.thread}): the ${pages(e.nr)} at pfn ${e.pfn} are copied to the new folio at pfn ${e.to}, and remove_migration_ptes maps it where the migration entries still are`;
    case "pteTableRetracted":
      return `khugepaged (thread ${e.thread}): collapse_pte_mapped_thp clears the ${e.ptes} PTE${e.ptes === 1 ? "" : "s"} of a file THP at ${hex(e.addr)}, then pmdp_collapse_flush clears the PMD and flushes the range; the PTE table (pfn ${e.tablePfn}) goes to pte_free_defer`;
    case "folioWrittenBack":
      return e.cleanedPtes > 0
        ? `writeback (thread ${e.thread}): folio_mkclean write-protects and flushes ${e.cleanedPtes} mapping${e.cleanedPtes === 1 ? "" : "s"} of the dirty folio at pfn ${e.pfn}, then cleans it and writes its ${pages(e.nr)} to disk`
        : `writeback (thread ${e.thread}): folio_mkclean finds no writable mapping of the dirty folio at pfn ${e.pfn} (not mapped, or only by PTEs already gone), so it cleans it and writes its ${pages(e.nr)} to disk at once`;
    case "tlbInvalidated":
      return e.kind === "range" || e.kind === "ipte" || (e.kind === "invlpgb" && e.end < TLB_FLUSH_ALL)
        ? `the CPUs drop their cached translations (${e.kind}) of mm ${e.mmId} for ${hex(e.start)}–${hex(e.end)}`
        : `the CPUs drop every cached translation of mm ${e.mmId} (${e.kind})`;
    default:
      return JSON.stringify(e);
  }
}

/** Timeline lanes of the visualizer. */
export const LANES = ["clear", "queue", "rmap", "forced", "tlb", "free", "table"] as const;
export type Lane = (typeof LANES)[number];

/** The lane of an event, or null for bookkeeping events the timeline omits. */
export function laneOf(e: TrailEvent): Lane | null {
  switch (e.type) {
    case "pteCleared":
    case "hugePmdZapped":
      return "clear";
    case "pageQueued":
      return "queue";
    case "rmapRemoved":
    case "rmapsFlushed":
      return "rmap";
    case "forcedFlush":
    case "walkForcedFlush":
      return "forced";
    case "tlbFlushed":
    case "tlbInvalidated":
    case "secondaryTlbsInvalidated":
    case "mmuNotifierRelease":
    case "locklessWalkDone":
      return "tlb";
    case "rcuGracePeriod":
      return "table";
    case "pagesFreed":
    case "pageFreed":
      return "free";
    case "tableQueued":
    case "tablesFreed":
      return "table";
    default:
      return null;
  }
}

const BOOKKEEPING = new Set(["ptlLocked", "ptlUnlocked", "condResched", "batchReused"]);

/**
 * Numbered sentences for a run of events; a step sequence that repeats page after page is one line
 * ("the same 4 steps again, 15 more times"). `verbose` keeps lock and cond_resched events.
 */
export function narrateEvents(events: readonly TrailEvent[], verbose = false): string[] {
  const lines: string[] = [];
  const shown = verbose ? events : events.filter((e) => !BOOKKEEPING.has(e.type));
  // Whether a TLB flush came after the last PTE clear, at each shown event (in order).
  const flushedAt: boolean[] = [];
  let flushed = true;
  for (const e of shown) {
    if (e.type === "pteCleared" || e.type === "hugePmdZapped") flushed = false;
    else if (e.type === "tlbFlushed") flushed = true;
    flushedAt.push(flushed);
  }
  let n = 0;
  for (let i = 0; i < shown.length; ) {
    const period = verbose ? 0 : repeatPeriod(shown, i);
    const cycle = period === 0 ? 1 : period;
    for (let j = i; j < i + cycle; j++)
      lines.push(`${String(++n).padStart(3)}. ${describeEvent(shown[j], flushedAt[j])}`);
    i += cycle;
    if (period === 0) continue;
    // The same steps again for the next pages: one line instead of a page-by-page repeat.
    let reps = 0;
    while (i + period <= shown.length && sameTypes(shown, i - period, i, period)) {
      i += period;
      reps++;
    }
    const first = firstPfn(shown, i - reps * period, i - (reps - 1) * period);
    const last = firstPfn(shown, i - period, i);
    const range = first >= 0 && last >= 0 ? ` (pfns ${first} … ${last})` : "";
    const what = period === 1 ? "the same step" : `the same ${period} steps`;
    lines.push(`     … ${what} again, ${reps} more time${reps === 1 ? "" : "s"}${range}`);
    n += reps * period;
  }
  return lines;
}

/** Smallest period p (1..6) such that the event types from `i` repeat at least 3 times; 0 if none. */
function repeatPeriod(events: readonly TrailEvent[], i: number): number {
  for (let p = 1; p <= 6; p++) {
    if (i + 3 * p > events.length) break;
    if (sameTypes(events, i, i + p, p) && sameTypes(events, i, i + 2 * p, p)) return p;
  }
  return 0;
}

function sameTypes(events: readonly TrailEvent[], a: number, b: number, len: number): boolean {
  for (let k = 0; k < len; k++) if (events[a + k].type !== events[b + k].type) return false;
  return true;
}

/** The first pfn any event in [from, to) names, or -1. */
function firstPfn(events: readonly TrailEvent[], from: number, to: number): number {
  for (let k = from; k < to; k++) {
    const e = events[k];
    if ("pfn" in e && typeof e.pfn === "number") return e.pfn;
  }
  return -1;
}
