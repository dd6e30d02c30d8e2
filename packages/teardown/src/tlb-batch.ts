// Models: the deferred ("batched") TLB flush of rmap walks that unmap, as Linux v6.18 (torvalds/linux,
// Nov 2025) mm/rmap.c has it under CONFIG_ARCH_WANT_BATCHED_UNMAP_TLB_FLUSH (x86, arm64, riscv; the
// arch's side is `ArchTlb.tlbBatch`):
//   should_defer_flush(mm, TTU_BATCH_FLUSH) → arch_tlbbatch_should_defer(mm);
//   set_tlb_ubc_flush_pending(mm, pteval, start, end): arch_tlbbatch_add_pending (x86: the mm's CPUs
//     join the batch's cpumask; arm64: TLBI of the range without a DSB; both tell the mmu notifiers'
//     secondary TLBs at once), flush_required, mm->tlb_flush_batched's pending count + 1, writable if
//     the PTE was dirty;
//   try_to_unmap_flush: arch_tlbbatch_flush (x86: flush_tlb_multi of the cpumask, a full flush; arm64:
//     dsb(ish)), then flush_required and writable cleared — mm->tlb_flush_batched is left alone;
//   flush_tlb_batched_pending(mm), under the page-table lock by every path that changes PTEs another CPU
//     may have unmapped with a deferred flush (zap_pte_range here): when the pending count differs from
//     the flushed one, arch_flush_tlb_batched_pending (x86 flush_tlb_mm, arm64 dsb(ish)) and flushed =
//     pending. Commit 3ea277194daa (Linux 4.12) added it: without it munmap / MADV_DONTNEED find the
//     PTE already cleared, flush nothing for it, and return while another CPU can still use the old
//     translation.
// Omits: the pending counter's overflow reset (TLB_FLUSH_BATCH_PENDING_LARGE) and the cmpxchg that keeps
// a flush deferred during flush_tlb_batched_pending (one step here: no thread runs in between),
// try_to_unmap_flush_dirty (reclaim's; migration flushes everything), riscv, x86's INVLPGB batch path.
import type { TlbBatchInfo } from "@mmgather/mmu-gather";
import { TLB_FLUSH_ALL } from "@mmgather/mmu-gather";
import type { FlushShare } from "./cpu-tlb.js";
import type { Machine } from "./machine.js";
import type { Mm } from "./mm.js";

/** `struct tlbflush_unmap_batch` (current->tlb_ubc) of the thread that unmaps. */
export interface TlbUnmapBatch {
  /** A deferred flush is outstanding (`flush_required`). */
  flushRequired: boolean;
  /** One of the deferred PTEs was dirty (`writable`). */
  writable: boolean;
  /** What the arch batch holds: per deferred clear, mm id, first page and end page (flat triples). */
  readonly pending: number[];
}

/** A fresh, empty unmap batch. */
export function createTlbUnmapBatch(): TlbUnmapBatch {
  return { flushRequired: false, writable: false, pending: [] };
}

/** The arch's batched flush, or null when it flushes every PTE as it clears it. */
export function tlbBatchOf(machine: Machine): TlbBatchInfo | null {
  return machine.arch.tlbBatch ?? null;
}

/**
 * should_defer_flush(mm, TTU_BATCH_FLUSH) for a walk running on `cpu`: the arch batches, and either
 * another CPU has the mm loaded ("remoteCpus", x86) or the machine has more than one CPU ("smp",
 * arm64). Without CPUs modelled there is nothing to defer.
 */
export function shouldDeferFlush(machine: Machine, mm: Mm, cpu: number): boolean {
  const tb = tlbBatchOf(machine);
  const tlbs = machine.tlbs;
  if (tb === null || tlbs === null) return false;
  if (tb.shouldDefer === "smp") return tlbs.nrCpus > 1;
  const mask = tlbs.cpumask(mm.id);
  for (const c of mask) if (c !== cpu) return true;
  return false;
}

/**
 * set_tlb_ubc_flush_pending for the PTEs of pages [vs, ve) of `mm` just cleared (their old value had
 * the dirty bit when `dirty`): the arch batch takes them, the devices are told now, mm's pending
 * count goes up. `share` receives the device invalidations.
 */
export function setTlbUbcFlushPending(
  machine: Machine,
  ubc: TlbUnmapBatch,
  mm: Mm,
  vs: number,
  ve: number,
  dirty: boolean,
  share: FlushShare,
): void {
  const tb = tlbBatchOf(machine)!;
  const tlbs = machine.tlbs!;
  const ps = machine.pageSize;
  ubc.pending.push(mm.id, vs, ve);
  if (tb.nosync) mm.tlbBatchRanges.push(vs, ve);
  // mmu_notifier_arch_invalidate_secondary_tlbs from arch_tlbbatch_add_pending: x86 the whole mm,
  // arm64 the range (from __flush_tlb_range_nosync).
  const d = tlbs.secondary;
  if (d !== null) {
    tlbs.markShare();
    if (tb.nosync) d.invalidate(mm.id, vs * ps, ve * ps);
    else d.invalidate(mm.id, 0, TLB_FLUSH_ALL);
    tlbs.addShare(share);
  }
  ubc.flushRequired = true;
  mm.tlbFlushBatchedPending++;
  if (dirty) ubc.writable = true;
}

/**
 * try_to_unmap_flush: when a flush is outstanding, arch_tlbbatch_flush — x86 flushes every CPU of the
 * batch completely (modelled as a whole-mm invalidation of each mm in the batch), arm64's DSB completes
 * the TLBIs issued for each range. Returns whether it had work; `share` receives the cost.
 */
export function tryToUnmapFlush(machine: Machine, ubc: TlbUnmapBatch, share: FlushShare): boolean {
  if (!ubc.flushRequired) return false;
  const tb = tlbBatchOf(machine);
  const tlbs = machine.tlbs;
  const p = ubc.pending;
  if (tb !== null && tlbs !== null) {
    const ps = machine.pageSize;
    tlbs.markShare();
    if (tb.nosync) {
      for (let i = 0; i < p.length; i += 3)
        tlbs.tlbInvalidate(p[i], "range", p[i + 1] * ps, p[i + 2] * ps, ps, false);
    } else {
      const done = new Set<number>();
      for (let i = 0; i < p.length; i += 3) {
        if (done.has(p[i])) continue;
        done.add(p[i]);
        tlbs.tlbInvalidate(p[i], "mm", 0, TLB_FLUSH_ALL, 0, true);
      }
    }
    tlbs.addShare(share);
    share.tlbFlushes++;
  }
  p.length = 0;
  ubc.flushRequired = false;
  ubc.writable = false;
  return true;
}

/**
 * flush_tlb_batched_pending(mm), the page-table lock held: when a deferred flush of this mm may still
 * be outstanding (pending ≠ flushed), arch_flush_tlb_batched_pending — x86 flush_tlb_mm (every CPU of
 * the mm, walk caches included), arm64 dsb(ish) (the TLBIs issued for the mm complete) — and flushed =
 * pending. Returns whether it flushed; the CPU counters it adds belong to the caller.
 */
export function flushTlbBatchedPending(machine: Machine, mm: Mm): boolean {
  if (mm.tlbFlushBatchedPending === mm.tlbFlushBatchedFlushed) return false;
  const tb = tlbBatchOf(machine);
  const tlbs = machine.tlbs;
  if (tb !== null && tlbs !== null) {
    const ps = machine.pageSize;
    const r = mm.tlbBatchRanges;
    if (tb.nosync) {
      for (let i = 0; i < r.length; i += 2)
        tlbs.tlbInvalidate(mm.id, "range", r[i] * ps, r[i + 1] * ps, ps, false);
    } else {
      tlbs.tlbInvalidate(mm.id, "mm", 0, TLB_FLUSH_ALL, 0, true);
      tlbs.secondary?.invalidate(mm.id, 0, TLB_FLUSH_ALL);
    }
  }
  mm.tlbBatchRanges.length = 0;
  mm.tlbFlushBatchedFlushed = mm.tlbFlushBatchedPending;
  return true;
}
