// Models: the safety rules of include/asm-generic/tlb.h ("unhook page, TLB invalidate page, free
// page"), commit 5df397dec7c4 (delayed rmap for dirty shared file pages, under the PTL), RCU /
// IPI-synchronised page-table freeing, tlb_finish_mmu's nested-flush rule, bounded frees between
// reschedule points (MAX_GATHER_BATCH_COUNT, cond_resched in zap_pmd_range and tlb_batch_pages_flush), and the folio count
// invariants (mapcount ≤ refcount, nothing negative) — checked against the CPU/TLB model at the
// moment each event happens. A cached translation is a use-after-free hazard only while user code
// can use it (CpuTlbs.hazardRefs): not an exiting mm's, not the zapping CPU's own while its thread is
// in the kernel; walk-cache entries always are (lazy-TLB CPUs walk freed tables). A device sharing the
// page tables (SecondaryTlbs) never enters the kernel: its cached translations and walks are hazards
// until mmu_notifier_arch_invalidate_secondary_tlbs (or exit's mmu_notifier_release) drops them.
// A lockless walk (gup_fast) holds the tables on its path until an IPI, a grace period or its own end
// lets it finish (CpuTlbs.locklessRefs): a table freed under one is reported.
// Contiguous PTEs (arm64 contpte, Arm ARM "misprogramming of the Contiguous bit"): when a PTE table's
// lock is released, every block holding a valid PTE with the contiguous bit must be whole — all its
// entries valid, contiguous, one naturally aligned run of pfns, the same permissions — or a TLB fill
// through any of them may return the translation of another address of the block: one whose PTE is
// gone, to a page that is freed or reused (CONSTRAINED UNPREDICTABLE). And when an arch rewrites a
// block without the bit, no CPU that can run the mm's user code may still cache the block's
// contiguous entry unless the CPUs have BBML2_NOABORT: without it the TLB may hold both entries for
// one address (a TLB conflict abort, or either translation).
// Device memory a driver revoked (unmap_mapping_range over its device file, Linux v6.18) is freed by
// the driver once the unmap returns: no CPU that can run user code and no device may still cache a
// translation to any pfn of it then, and no PTE may still map it.
// Omits: KSM, hugetlb.

import type { PhysMem } from "@mmgather/folio";
import { type GatherEvent, MAX_GATHER_ENTRIES, MMU_GATHER_BUNDLE } from "@mmgather/mmu-gather";
import type { CpuTlbs, LocklessWalkEnd } from "./cpu-tlb.js";
import { TeardownError } from "./errors.js";
import type { KvmMmu } from "./kvm.js";
import { PTE_CONT, PTE_WRITE, ptePfn } from "./pte.js";

/** The PTE bits every entry of a contiguous block must share (permissions and the bit itself). */
const CONT_PROT_MASK = PTE_WRITE | PTE_CONT;

/** What went wrong. */
export type ViolationKind =
  | "useAfterFree"
  | "dirtyRmapBeforeFlush"
  | "rmapOutsidePtl"
  | "tableFreedWhileWalkable"
  | "tableFreedUnderGupFast"
  | "staleTlbAfterReturn"
  | "secondaryTlbUseAfterFree"
  | "staleSecondaryTlbAfterReturn"
  | "presentAfterReturn"
  | "dirtyFlushAfterUnlock"
  | "freesWithoutResched"
  | "modelGuard"
  | "mapcountExceedsRefcount"
  | "negativeCount"
  | "cleanedWhileWritable"
  | "migratedWhileWritable"
  | "kvmSpteUseAfterFree"
  | "swapDeviceUseAfterFree"
  | "deviceMemoryUseAfterRevoke"
  | "contPteMisprogrammed"
  | "contPteTlbConflict"
  | "deferredSplitFullyUnmapped";

/** Why zap_pte_range set force_flush: the gather filled, or a dirty shared file page delayed its rmap. */
export type WalkForcedFlushReason = "batchFull" | "dirtyShared";

/** Receives every event of a teardown, in order (`ScenarioSpec.events`). */
export type TrailEventSink = (e: TrailEvent) => void;

/** Events the teardown layer adds to the gather's own in the trail. */
export type TeardownEvent =
  | {
      readonly type: "opStarted";
      readonly op: string;
      readonly mmId: number;
      readonly start: number;
      readonly end: number;
    }
  | { readonly type: "opReturned"; readonly op: string; readonly mmId: number }
  | { readonly type: "ptlLocked"; readonly mmId: number; readonly tablePfn: number; readonly thread: number }
  | {
      readonly type: "ptlUnlocked";
      readonly mmId: number;
      readonly tablePfn: number;
      readonly thread: number;
    }
  | { readonly type: "hugePmdZapped"; readonly mmId: number; readonly addr: number; readonly pfn: number }
  | {
      /** zap_pte_range's force_flush at the end of a PTE table, and why it was set. */
      readonly type: "walkForcedFlush";
      readonly reason: WalkForcedFlushReason;
      readonly mmId: number;
      readonly thread: number;
    }
  | { readonly type: "pageFreed"; readonly pfn: number; readonly nr: number }
  | {
      /** A lockless walk (gup_fast) on `cpu` ended, `by` what let it finish (see `LocklessWalkEnd`). */
      readonly type: "locklessWalkDone";
      readonly cpu: number;
      readonly by: LocklessWalkEnd;
    }
  | {
      /** The RCU grace period ended and `callbacks` table frees that waited for it ran. */
      readonly type: "rcuGracePeriod";
      readonly callbacks: number;
    }
  | {
      /** exit_mmap's `mmu_notifier_release`: `devices` devices detached from the address space. */
      readonly type: "mmuNotifierRelease";
      readonly mmId: number;
      readonly devices: number;
    }
  | {
      /**
       * Writeback (folio_clear_dirty_for_io) cleaned the dirty folio at `pfn` (`nr` pages) and wrote it;
       * its folio_mkclean write-protected `cleanedPtes` mappings first (0: none left, or not mapped).
       */
      readonly type: "folioWrittenBack";
      readonly pfn: number;
      readonly nr: number;
      readonly cleanedPtes: number;
      readonly thread: number;
    }
  | {
      /**
       * khugepaged's collapse_pte_mapped_thp retracted the PTE table `tablePfn` of mm `mmId` at `addr`:
       * its `ptes` PTEs of a file THP cleared, the PMD cleared and the range flushed; the table goes to
       * pte_free_defer.
       */
      readonly type: "pteTableRetracted";
      readonly mmId: number;
      readonly addr: number;
      readonly tablePfn: number;
      readonly ptes: number;
      readonly thread: number;
    }
  | {
      /**
       * try_to_migrate_one replaced the PTE at `addr` of mm `mmId` (mapping `pfn`) with a migration
       * entry; its TLB flush was deferred to the migration's try_to_unmap_flush (`deferred`), or done
       * at once (ptep_clear_flush).
       */
      readonly type: "migrationEntrySet";
      readonly mmId: number;
      readonly addr: number;
      readonly pfn: number;
      readonly deferred: boolean;
      readonly thread: number;
    }
  | {
      /**
       * A vCPU's fault read mmu_invalidate_seq (`mmuSeq`) and looked the host page of guest page `addr`
       * up (hva_to_pfn: GUP), taking a reference on `pfn`.
       */
      readonly type: "kvmGup";
      readonly addr: number;
      readonly pfn: number;
      readonly mmuSeq: number;
      readonly thread: number;
    }
  | {
      /** Under mmu_lock the vCPU's fault saw an invalidation in its way: it drops the page and faults again. */
      readonly type: "kvmFaultRetry";
      readonly addr: number;
      readonly thread: number;
    }
  | {
      /** A vCPU's fault set KVM's spte for the guest page at `addr` to host `pfn`. */
      readonly type: "kvmSpteSet";
      readonly addr: number;
      readonly pfn: number;
      readonly thread: number;
    }
  | {
      /**
       * mmu_notifier_invalidate_range_start ("start") or _end ("end") over [start, end) of mm `mmId`;
       * `sptesZapped` is what KVM dropped (start only).
       */
      readonly type: "mmuNotifierRange";
      readonly edge: "start" | "end";
      readonly mmId: number;
      readonly start: number;
      readonly end: number;
      readonly sptesZapped: number;
      readonly thread: number;
    }
  | {
      /** A zap cleared the migration entry at `addr` of mm `mmId` (pointing at `pfn`): nothing to flush. */
      readonly type: "migrationEntryZapped";
      readonly mmId: number;
      readonly addr: number;
      readonly pfn: number;
      readonly thread: number;
    }
  | {
      /** flush_tlb_batched_pending found a deferred flush of mm `mmId` outstanding and did it. */
      readonly type: "batchedPendingFlushed";
      readonly mmId: number;
      readonly thread: number;
    }
  | {
      /**
       * Migration copied the folio at `pfn` (`nr` pages) to the new folio at `to` and mapped the new one
       * where the old one's migration entries still were.
       */
      readonly type: "folioMigrated";
      readonly pfn: number;
      readonly to: number;
      readonly nr: number;
      readonly thread: number;
    }
  | {
      /**
       * swapoff of swap device `device` reached `stage`: "waiting" — try_to_unuse made a pass and waits
       * for inuse_pages to drop (entries only the teardown still holds); "swapMapFreed" — every pin was
       * put and swap_map is freed.
       */
      readonly type: "swapoffProgress";
      readonly device: number;
      readonly stage: "waiting" | "swapMapFreed";
    }
  | {
      readonly type: "tlbInvalidated";
      readonly mmId: number;
      readonly kind: string;
      readonly start: number;
      readonly end: number;
    };

/** One entry of a violation's trail. */
export type TrailEvent = GatherEvent | TeardownEvent;

/** A broken safety property, reported at the moment it happened. */
export interface Violation {
  /** Which rule. */
  readonly kind: ViolationKind;
  /** Human-readable explanation. */
  readonly message: string;
  /** Page frame involved (-1 if none). */
  readonly pfn: number;
  /** Virtual byte address involved (-1 if none). */
  readonly address: number;
  /** The last events before the violation, oldest first. */
  readonly trail: readonly TrailEvent[];
}

/**
 * The most folios a teardown may free with no reschedule point in between: include/asm-generic/tlb.h
 * (v6.18, and the two older trees) caps a gather at MAX_GATHER_BATCH_COUNT batches because "10K pages
 * freed at once should be safe even without a preemption point" — 10000 entries plus the on-stack
 * bundle. A 2022 commit added a cond_resched after every 512-entry chunk of tlb_batch_pages_flush on top
 * (after rcu_sched starvation on 16K-page machines), so today's kernel stays far below it.
 */
export const FREES_WITHOUT_RESCHED_BOUND = MAX_GATHER_ENTRIES + MMU_GATHER_BUNDLE;

/** Collects violations; fed by the free observer, the gather's events and the walk. */
export class Checker {
  readonly mem: PhysMem;
  readonly tlbs: CpuTlbs | null;
  readonly violations: Violation[] = [];
  /** Set on pfns whose dirty, non-anon PTE was cleared and whose rmap is not yet removed. */
  readonly dirtyFile: Uint8Array;
  private readonly ring: (TrailEvent | undefined)[];
  private ringPos = 0;
  private ringLen = 0;
  /** PTE locks currently held (over all threads). */
  ptlHeld = 0;
  /** Per thread: pfns whose dirty shared PTE it cleared under the page-table lock it holds now. */
  private readonly dirtyUnderPtl = new Map<number, number[]>();
  /** Stop recording after this many violations (a broken run would otherwise flood). */
  readonly maxViolations: number;
  /** Folios freed since the last reschedule point (cond_resched, system-call entry). */
  private freesSinceResched = 0;

  /** `PAGE_SIZE` of the machine, for the byte addresses of reports. */
  readonly pageSize: number;
  /** KVM's secondary MMU, when a guest is modelled: its sptes are checked at every free. */
  kvm: KvmMmu | null = null;
  /**
   * The design under test follows a kernel whose rmap queues only partially mapped folios for deferred
   * split (v6.10+: `__folio_remove_rmap`'s `partially_mapped` gate, 98046944a159): set from the gather
   * variant's `policy.kernel` at each gather ("6.18"). Older trees (mm-unstable 2023-08's per-page
   * page_remove_rmap, v6.9) queue a folio their unmap left fully unmapped, and are not held to it.
   */
  partialDeferredSplitOnly = false;

  constructor(
    mem: PhysMem,
    tlbs: CpuTlbs | null,
    nrPhysPages: number,
    trailLength = 32,
    maxViolations = 100,
    pageSize = 2 ** mem.pageShift,
  ) {
    this.mem = mem;
    this.pageSize = pageSize;
    this.tlbs = tlbs;
    this.dirtyFile = new Uint8Array(nrPhysPages);
    this.ring = new Array(trailLength);
    this.maxViolations = maxViolations;
  }

  /**
   * Makes this checker an exact copy of `src`'s state (same size): violations, dirty-file marks, the
   * trail (events are immutable records, shared), held PTLs, per-thread dirty pages and the reschedule
   * count. A model facility, nothing the kernel does.
   */
  copyFrom(src: Checker): void {
    if (
      src.dirtyFile.length !== this.dirtyFile.length ||
      src.ring.length !== this.ring.length ||
      src.maxViolations !== this.maxViolations
    )
      throw new TeardownError("EINVAL", "checker", "copyFrom", "the two checkers differ in size");
    if (src === this) return;
    this.violations.length = 0;
    for (const v of src.violations) this.violations.push(v);
    this.dirtyFile.set(src.dirtyFile);
    for (let i = 0; i < src.ring.length; i++) this.ring[i] = src.ring[i];
    this.ringPos = src.ringPos;
    this.ringLen = src.ringLen;
    this.ptlHeld = src.ptlHeld;
    this.dirtyUnderPtl.clear();
    for (const [k, v] of src.dirtyUnderPtl) this.dirtyUnderPtl.set(k, v.slice());
    this.freesSinceResched = src.freesSinceResched;
    this.partialDeferredSplitOnly = src.partialDeferredSplitOnly;
  }

  /** Appends an event to the trail ring. */
  record(e: TrailEvent): void {
    this.ring[this.ringPos] = e;
    this.ringPos = (this.ringPos + 1) % this.ring.length;
    if (this.ringLen < this.ring.length) this.ringLen++;
  }

  /** The trail, oldest first. */
  trail(): TrailEvent[] {
    const out: TrailEvent[] = [];
    const n = this.ring.length;
    for (let i = 0; i < this.ringLen; i++) out.push(this.ring[(this.ringPos - this.ringLen + i + n) % n]!);
    return out;
  }

  report(kind: ViolationKind, message: string, pfn: number, address: number): void {
    if (this.violations.length >= this.maxViolations) return;
    this.violations.push({ kind, message, pfn, address, trail: this.trail() });
  }

  /** The gather's event sink. */
  onGatherEvent(e: GatherEvent): void {
    this.record(e);
    if (e.type === "rmapRemoved") this.onRmapRemoved(e.pfn, e.nr, e.delayed);
    else if (e.type === "condResched") this.freesSinceResched = 0;
  }

  /**
   * A reschedule point outside the gather: zap_pmd_range's cond_resched after each PMD (after each
   * yield of the walk), or entering the system call.
   */
  onResched(): void {
    this.freesSinceResched = 0;
  }

  /** Walk-side rmap removal that does not go through the gather (zap_huge_pmd). */
  onRmapRemoved(pfn: number, nr: number, delayed: boolean): void {
    if (delayed && this.ptlHeld === 0) {
      this.report(
        "rmapOutsidePtl",
        `delayed rmap of pfn ${pfn} removed after the page-table lock was dropped`,
        pfn,
        -1,
      );
    }
    const t = this.tlbs;
    for (let i = 0; i < nr; i++) {
      const p = pfn + i;
      if (this.dirtyFile[p] !== 0) {
        this.dirtyFile[p] = 0;
        if (t !== null && t.hazardRefs[p] > 0) {
          this.report(
            "dirtyRmapBeforeFlush",
            `rmap of dirty shared file page pfn ${p} removed while a CPU still caches a writable translation`,
            p,
            -1,
          );
        }
      }
    }
    this.checkCounts(pfn);
  }

  /**
   * A dirty PTE of a non-anon folio was cleared (the page is now "dirty, rmap pending") by `thread`
   * under the page-table lock it holds: until that lock is dropped, the TLB must be flushed.
   */
  noteDirtyFileClear(pfn: number, nr: number, thread = 0): void {
    let pending = this.dirtyUnderPtl.get(thread);
    if (pending === undefined) {
      pending = [];
      this.dirtyUnderPtl.set(thread, pending);
    }
    for (let i = 0; i < nr; i++) {
      this.dirtyFile[pfn + i] = 1;
      pending.push(pfn + i);
    }
  }

  /**
   * `thread` drops a page-table lock: every dirty shared PTE it cleared under it must be flushed from
   * every TLB first (zap_pte_range: tlb_flush_mmu_tlbonly before pte_unmap_unlock, 5df397dec7c4).
   * Otherwise, once the lock is free, folio_mkclean can take it, find the PTE gone and clean the
   * page while another CPU still writes through its cached writable translation.
   */
  onPtlUnlock(thread: number): void {
    const pending = this.dirtyUnderPtl.get(thread);
    if (pending === undefined || pending.length === 0) return;
    const t = this.tlbs;
    if (t !== null) {
      for (const p of pending) {
        if (t.hazardRefs[p] > 0) {
          this.report(
            "dirtyFlushAfterUnlock",
            `page-table lock dropped while a CPU still caches a writable translation to dirty shared pfn ${p}`,
            p,
            -1,
          );
          break;
        }
      }
    }
    pending.length = 0;
  }

  /** PhysMem free observer: a folio of `nr` pages at `pfn` goes back to the allocator. */
  onFree(pfn: number, nr: number): void {
    this.record({ type: "pageFreed", pfn, nr });
    if (++this.freesSinceResched === FREES_WITHOUT_RESCHED_BOUND + 1) {
      this.report(
        "freesWithoutResched",
        `more than ${FREES_WITHOUT_RESCHED_BOUND} folios freed with no reschedule point in between (a soft lockup on a non-preemptible kernel)`,
        pfn,
        -1,
      );
    }
    const k = this.kvm;
    if (k !== null) {
      for (let p = pfn; p < pfn + nr; p++) {
        if (k.spteRefs[p] > 0) {
          this.report(
            "kvmSpteUseAfterFree",
            `pfn ${p} returned to the allocator while KVM still maps it in the guest (an spte): the guest reads and writes a page the host reused`,
            p,
            -1,
          );
          return;
        }
      }
    }
    const t = this.tlbs;
    if (t === null) return;
    const d = t.secondary;
    for (let i = 0; i < nr; i++) {
      const p = pfn + i;
      // Consumed for every freed page, so no later free of the same pfn sees a stale unlink.
      const c = t.speculativeWalker(p);
      if (t.locklessRefs[p] > 0) {
        this.report(
          "tableFreedUnderGupFast",
          `page-table page pfn ${p} freed while a lockless walk (gup_fast, interrupts off) on another CPU still reads it`,
          p,
          -1,
        );
        return;
      }
      if (d !== null && (d.tlbRefs[p] > 0 || d.walkRefs[p] > 0)) {
        const table = d.tlbRefs[p] === 0;
        this.report(
          table ? "tableFreedWhileWalkable" : "secondaryTlbUseAfterFree",
          table
            ? `page-table page pfn ${p} freed while a device's IOMMU walk cache can still reach it`
            : `pfn ${p} returned to the allocator while a device's TLB still translates to it`,
          p,
          -1,
        );
        return;
      }
      if (t.hazardRefs[p] > 0) {
        this.report(
          "useAfterFree",
          `pfn ${p} returned to the allocator while a CPU still caches a translation to it`,
          p,
          -1,
        );
        return;
      }
      if (t.walkRefs[p] > 0) {
        this.report(
          "tableFreedWhileWalkable",
          `page-table page pfn ${p} freed while a CPU's walk cache can still reach it`,
          p,
          -1,
        );
        return;
      }
      if (c >= 0) {
        this.report(
          "tableFreedWhileWalkable",
          `page-table page pfn ${p} freed while CPU ${c}, which has the mm loaded, got no walk-cache invalidation since the table was unlinked (a speculative walk may have cached it)`,
          p,
          -1,
        );
        return;
      }
    }
  }

  /**
   * Writeback cleaned the folio of `nr` pages at `head` and sent it to disk: no CPU may still cache a
   * writable, dirty translation to it, or a store through that entry lands after the I/O and leaves the
   * folio clean — the data is never written (folio_mkclean found the folio unmapped, or did not wait
   * for the zap's flush: 5df397dec7c4).
   */
  onFolioCleaned(head: number, nr: number): void {
    const t = this.tlbs;
    if (t === null) return;
    for (let p = head; p < head + nr; p++) {
      if (t.writeHazardRefs[p] > 0) {
        this.report(
          "cleanedWhileWritable",
          `writeback cleaned dirty file pfn ${p} while a CPU still caches a writable, dirty translation to it: a store through it after the I/O is lost`,
          p,
          -1,
        );
        return;
      }
    }
  }

  /**
   * Migration is about to copy the `nr` pages of the folio at `head` (move_to_new_folio): a CPU that
   * still caches a writable, dirty translation of one can store into the old page after the copy, and
   * the store is lost with it (`migratedWhileWritable`).
   */
  onFolioMigrated(head: number, nr: number): void {
    const t = this.tlbs;
    if (t === null) return;
    for (let p = head; p < head + nr; p++) {
      if (t.writeHazardRefs[p] > 0) {
        this.report(
          "migratedWhileWritable",
          `migration copied pfn ${p} while a CPU still caches a writable, dirty translation to it: a store through it after the copy is lost`,
          p,
          -1,
        );
        return;
      }
    }
  }

  /**
   * A driver's unmap_mapping_range returned and it frees the `nr` device pages at `pfn` (pfns above RAM,
   * never seen by the allocator): a translation any CPU's user code or any device can still use is a
   * use-after-free of device memory (`deviceMemoryUseAfterRevoke`). `present` is `[mmId, vpn, pfn]` of a
   * PTE the unmap left present in a VMA it zapped, or empty (`presentAfterReturn`).
   */
  onDeviceMemoryFreed(pfn: number, nr: number, present: readonly number[]): void {
    this.record({ type: "opReturned", op: "revoke", mmId: -1 });
    const ps = this.pageSize;
    if (present.length >= 3) {
      this.report(
        "presentAfterReturn",
        `revoke returned with a present PTE of mm ${present[0]} at ${hex(present[1] * ps)} in the unmapped range`,
        present[2],
        present[1] * ps,
      );
    }
    const t = this.tlbs;
    if (t === null) return;
    const d = t.secondary;
    for (let p = pfn; p < pfn + nr; p++) {
      if (t.hazardRefs[p] > 0 || (d !== null && d.tlbRefs[p] > 0)) {
        this.report(
          "deviceMemoryUseAfterRevoke",
          `device pfn ${p} freed by its driver after unmap_mapping_range returned while ${t.hazardRefs[p] > 0 ? "a CPU" : "a device's TLB"} still caches a translation to it`,
          p,
          -1,
        );
        return;
      }
    }
  }

  /**
   * A PTE table's lock is released: every block of `contPtes` entries overlapping `t[from, to)` (`t`
   * the table whose entry 0 maps virtual page `base`) that holds a valid PTE with the contiguous bit must
   * be whole (see the header), else `contPteMisprogrammed`.
   */
  checkContBlocks(
    mmId: number,
    t: Int32Array,
    base: number,
    from: number,
    to: number,
    contPtes: number,
  ): void {
    for (let b = from - (from % contPtes); b < to; b += contPtes) {
      let cont = -1;
      for (let j = b; j < b + contPtes; j++)
        if (t[j] > 0 && (t[j] & PTE_CONT) !== 0) {
          cont = j;
          break;
        }
      if (cont < 0) continue;
      const first = t[b];
      const pfn0 = ptePfn(first);
      let whole = first > 0 && pfn0 % contPtes === 0;
      for (let j = 0; whole && j < contPtes; j++) {
        const p = t[b + j];
        whole =
          p > 0 &&
          (p & PTE_CONT) !== 0 &&
          ptePfn(p) === pfn0 + j &&
          (p & CONT_PROT_MASK) === (first & CONT_PROT_MASK);
      }
      if (whole) continue;
      const addr = (base + cont) * this.pageSize;
      this.report(
        "contPteMisprogrammed",
        `mm ${mmId}: the PTE at ${hex(addr)} keeps the contiguous bit, but its ${contPtes}-entry block at ${hex((base + b) * this.pageSize)} no longer maps one aligned run of pages (an entry is gone or differs): a TLB fill through it may return the translation of any address of the block — to a page that address no longer maps, one that is freed or reused`,
        ptePfn(t[cont]),
        addr,
      );
      return;
    }
  }

  /**
   * An arch's clear hook just rewrote the PTEs of `t` (entry 0 at virtual page `base`) around `t[index,
   * index + nr)`: for the blocks at the two ends (the only ones a clear unfolds), none of whose PTEs has
   * the contiguous bit any more, no CPU whose user code can run may still cache the block's contiguous
   * entry (`contPteTlbConflict`), unless the CPUs have BBML2_NOABORT.
   */
  checkContUnfold(
    mmId: number,
    t: Int32Array,
    base: number,
    index: number,
    nr: number,
    contPtes: number,
  ): void {
    const tlbs = this.tlbs;
    if (tlbs === null) return;
    const firstBlock = index - (index % contPtes);
    const last = index + nr - 1;
    const lastBlock = last - (last % contPtes);
    for (let k = 0; k < 2; k++) {
      const b = k === 0 ? firstBlock : lastBlock;
      if (k === 1 && b === firstBlock) break;
      let cont = false;
      for (let j = b; j < b + contPtes; j++) if ((t[j] & PTE_CONT) !== 0 && t[j] > 0) cont = true;
      if (cont) continue;
      const cpu = tlbs.cachedBlock(mmId, base + b, contPtes);
      if (cpu < 0) continue;
      const addr = (base + b) * this.pageSize;
      this.report(
        "contPteTlbConflict",
        `CPU ${cpu} still caches the contiguous translation of the ${contPtes}-page block at ${hex(addr)} of mm ${mmId} after its PTEs were rewritten without the contiguous bit and no TLB invalidation in between (break-before-make): the TLB may now hold two entries for one address — a TLB conflict abort, or the stale block's translation`,
        tlbs.cachedPfn(mmId, base + b),
        addr,
      );
      return;
    }
  }

  /**
   * PhysMem's deferred-split observer: folio `head` was just added to a deferred-split queue, its
   * mapcounts already updated by the rmap removal that queued it. Under the rules of v6.10+ only a
   * partially mapped large anon folio is queued; one with no page mapped anywhere is about to be freed,
   * and queueing it takes split_queue_lock twice (here and again at free) and counts a
   * THP_DEFERRED_SPLIT_PAGE event for a folio nobody can split.
   */
  onDeferredSplitQueued(head: number): void {
    if (!this.partialDeferredSplitOnly || this.mem.folioMapped(head)) return;
    this.report(
      "deferredSplitFullyUnmapped",
      `folio ${head} (${this.mem.folioNrPages(head)} pages) queued for deferred split with no page of it mapped anywhere`,
      head,
      -1,
    );
  }

  /** mapcount ≤ refcount, nothing negative, for the folio containing `pfn`. */
  checkCounts(pfn: number): void {
    const m = this.mem;
    if (m.isFree(pfn)) return;
    const head = m.folioHead(pfn);
    const ref = m.folioRef(head);
    const map = m.folioMapcount(head);
    if (ref < 0 || map < 0 || m.pageMapcount(pfn) < 0) {
      this.report("negativeCount", `folio ${head}: refcount ${ref}, mapcount ${map}`, pfn, -1);
    } else if (map > ref) {
      this.report("mapcountExceedsRefcount", `folio ${head}: mapcount ${map} > refcount ${ref}`, pfn, -1);
    }
  }

  /**
   * munmap / madvise returned: no CPU may still cache a translation into what it zapped — the page
   * ranges `ranges` ([start, end) pairs, flattened): the part of the requested range that was mapped
   * by a VMA when the operation took mmap_lock. A range another thread had already detached is not the
   * returning operation's (MADV_DONTNEED finds a hole there and skips it). `refaultSame` (MADV_DONTNEED,
   * whose VMAs stay) accepts a cached page the user cannot tell from the fault that would replace it:
   * the very page-cache page a fault would map there, read-only or of shmem (no write through it can be
   * lost) — what another thread's cleared-but-not-yet-flushed PTE of a file leaves (khugepaged's
   * collapse_pte_mapped_thp clears them and flushes at pmdp_collapse_flush). `presentAt` is the first
   * virtual page of those ranges whose PTE or PMD is still present (-1: none), `presentPfn` its page.
   */
  onOpReturn(
    op: string,
    mmId: number,
    ranges: readonly number[],
    presentAt = -1,
    presentPfn = -1,
    refaultSame: ((vpn: number, pfn: number, writable: boolean) => boolean) | null = null,
  ): void {
    this.record({ type: "opReturned", op, mmId });
    if (presentAt >= 0) {
      // zap_pte_range / zap_huge_pmd clear every entry of the range before the operation returns:
      // a present one left behind maps a page the process no longer has a VMA (or the data) for.
      this.report(
        "presentAfterReturn",
        `${op} returned with a present page-table entry at ${hex(presentAt * this.pageSize)} in the zapped range`,
        presentPfn,
        presentAt * this.pageSize,
      );
    }
    const t = this.tlbs;
    if (t === null) return;
    const d = t.secondary;
    for (let i = 0; d !== null && i + 1 < ranges.length; i += 2) {
      const v = d.findCached(mmId, ranges[i], ranges[i + 1]);
      if (v >= 0) {
        this.report(
          "staleSecondaryTlbAfterReturn",
          `${op} returned while a device's TLB still translates ${hex(v * t.pageSize)} in the zapped range`,
          d.cachedPfn(mmId, v),
          v * t.pageSize,
        );
        return;
      }
    }
    for (let i = 0; i + 1 < ranges.length; i += 2) {
      const v = t.findCached(mmId, ranges[i], ranges[i + 1], refaultSame);
      if (v >= 0) {
        this.report(
          "staleTlbAfterReturn",
          `${op} returned while a CPU still caches a translation at ${hex(v * t.pageSize)} in the zapped range`,
          t.cachedPfn(mmId, v),
          v * t.pageSize,
        );
        return;
      }
    }
  }
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
