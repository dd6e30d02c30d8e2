// Models: a KVM guest backed by the target process's memory — KVM's own page tables for it (the
// secondary MMU: sptes, guest page → host pfn) and its mmu_notifier subscription, as Linux v6.18
// (torvalds/linux, Nov 2025) virt/kvm/kvm_main.c and arch/x86/kvm/mmu/mmu.c run them:
// - kvm_mmu_notifier_invalidate_range_start → kvm_mmu_invalidate_begin (mmu_invalidate_in_progress
//   + 1, the range recorded) and kvm_unmap_gfn_range (every spte of the range zapped, the guest's TLBs
//   flushed: kvm_flush_remote_tlbs), under mmu_lock; invalidate_range_end → kvm_mmu_invalidate_end
//   (mmu_invalidate_seq + 1, in_progress − 1). The teardown calls them around unmap_vmas /
//   zap_page_range_single (the `mmuNotifierInvalidateRangeStart` / `End` steps of the zap walk): the
//   pages are freed only later, by tlb_finish_mmu, after range_end.
// - kvm_mmu_notifier_release (mmu_notifier_release, first thing in exit_mmap): every spte zapped.
// - A vCPU's page fault on guest memory (`kvmFaultSteps`): mmu_seq = mmu_invalidate_seq, then
//   __kvm_faultin_pfn → hva_to_pfn, a GUP of the host page (a reference; nothing when the host has no
//   present PTE there); then under mmu_lock is_page_fault_stale → mmu_invalidate_retry_gfn — an
//   invalidation in progress over the page, or one that ended since mmu_seq was read — makes it drop
//   the page and fault again; else the spte is set; kvm_release_faultin_page drops the GUP reference.
//   KVM holds no reference for an spte: the notifier is what keeps a freed page out of the guest.
// The checker reports a page freed while an spte still maps it (`kvmSpteUseAfterFree`).
// Omits: memslots (guest memory is the process's address space, gfn = virtual page), huge sptes (a
// huge host mapping becomes one spte per page), the guest's own TLB contents (zapping an spte and
// kvm_flush_remote_tlbs are one step), TDP MMU vs shadow MMU differences, dirty logging, the
// MMU_NOTIFY_* event filters (every invalidation zaps), async page faults, a fault that faults the host
// page in (a page with no present PTE is skipped).
import { TeardownError } from "./errors.js";
import type { Machine } from "./machine.js";
import type { Mm } from "./mm.js";
import type { OpSteps } from "./mmap-lock.js";
import { LEVEL_PMD } from "./page-tables.js";
import { ptePfn } from "./pte.js";

/** What KVM's secondary MMU did during the run (every count exact). */
export interface KvmCounters {
  /** invalidate_range_start calls it received (kvm_mmu_invalidate_begin). */
  rangeStarts: number;
  /** invalidate_range_end calls it received (kvm_mmu_invalidate_end). */
  rangeEnds: number;
  /** sptes zapped by invalidations and release. */
  sptesZapped: number;
  /** kvm_flush_remote_tlbs after an invalidation that zapped any. */
  remoteTlbFlushes: number;
  /** vCPU faults that set an spte. */
  sptesMapped: number;
  /** vCPU faults that found an invalidation in their way and faulted again (mmu_invalidate_retry_gfn). */
  faultRetries: number;
  /** vCPU faults that found no present host PTE (nothing to map). */
  faultsNoPage: number;
}

/** A fresh zeroed counter record. */
export function createKvmCounters(): KvmCounters {
  return {
    rangeStarts: 0,
    rangeEnds: 0,
    sptesZapped: 0,
    remoteTlbFlushes: 0,
    sptesMapped: 0,
    faultRetries: 0,
    faultsNoPage: 0,
  };
}

/** KVM's secondary MMU of one VM whose memory is mm `mmId`'s address space. */
export class KvmMmu {
  readonly mmId: number;
  /** sptes: guest page (virtual page of the mm) → host pfn. */
  readonly sptes = new Map<number, number>();
  /** sptes per host pfn (what the checker reads at a free). */
  readonly spteRefs: Uint16Array;
  /** kvm->mmu_invalidate_seq. */
  mmuInvalidateSeq = 0;
  /** kvm->mmu_invalidate_in_progress. */
  mmuInvalidateInProgress = 0;
  /** kvm->mmu_invalidate_range_start / _end (pages), the union of the invalidations in progress. */
  rangeStart = 0;
  rangeEnd = 0;
  /** mmu_notifier_release ran: the subscription is gone. */
  released = false;
  readonly counters: KvmCounters = createKvmCounters();

  constructor(mmId: number, nrPhysPages: number) {
    this.mmId = mmId;
    this.spteRefs = new Uint16Array(nrPhysPages);
  }

  /** Sets the spte of guest page `vpn` to host `pfn` (a vCPU fault, or the guest's accesses). */
  map(vpn: number, pfn: number): void {
    const old = this.sptes.get(vpn);
    if (old === pfn) return;
    if (old !== undefined) this.spteRefs[old]--;
    this.sptes.set(vpn, pfn);
    this.spteRefs[pfn]++;
  }

  /** Zaps the sptes of pages [vs, ve); returns how many. */
  private zap(vs: number, ve: number): number {
    let n = 0;
    const sptes = this.sptes;
    if (ve - vs < sptes.size) {
      // A range smaller than the guest (a migrated folio, a partial munmap): look its pages up.
      for (let vpn = vs; vpn < ve; vpn++) {
        const pfn = sptes.get(vpn);
        if (pfn === undefined) continue;
        sptes.delete(vpn);
        this.spteRefs[pfn]--;
        n++;
      }
    } else {
      for (const [vpn, pfn] of sptes) {
        if (vpn < vs || vpn >= ve) continue;
        sptes.delete(vpn);
        this.spteRefs[pfn]--;
        n++;
      }
    }
    this.counters.sptesZapped += n;
    if (n > 0) this.counters.remoteTlbFlushes++;
    return n;
  }

  /** kvm_mmu_notifier_invalidate_range_start over pages [vs, ve) of mm `mmId`; returns the sptes zapped. */
  invalidateRangeStart(mmId: number, vs: number, ve: number): number {
    if (mmId !== this.mmId || this.released) return 0;
    this.counters.rangeStarts++;
    // kvm_mmu_invalidate_begin: the first invalidation sets the range, nested ones widen it.
    if (this.mmuInvalidateInProgress++ === 0) {
      this.rangeStart = vs;
      this.rangeEnd = ve;
    } else {
      this.rangeStart = Math.min(this.rangeStart, vs);
      this.rangeEnd = Math.max(this.rangeEnd, ve);
    }
    return this.zap(vs, ve);
  }

  /** kvm_mmu_notifier_invalidate_range_end. */
  invalidateRangeEnd(mmId: number): void {
    if (mmId !== this.mmId || this.released) return;
    this.counters.rangeEnds++;
    this.mmuInvalidateSeq++;
    if (this.mmuInvalidateInProgress === 0) {
      throw new TeardownError("INVARIANT", "kvm", "invalidateRangeEnd", "range_end without range_start");
    }
    this.mmuInvalidateInProgress--;
  }

  /** kvm_mmu_notifier_release: every spte goes, and no notifier reaches KVM again. */
  release(mmId: number): number {
    if (mmId !== this.mmId || this.released) return 0;
    this.released = true;
    return this.zap(0, Number.POSITIVE_INFINITY);
  }

  /**
   * Makes this guest an exact copy of `src`'s (same physical memory size): sptes, sequence, invalidations
   * in progress, counters. A model facility (cloneBuilt), nothing the kernel does.
   */
  copyFrom(src: KvmMmu): void {
    if (src.spteRefs.length !== this.spteRefs.length || src.mmId !== this.mmId)
      throw new TeardownError("EINVAL", "kvm", "copyFrom", "the two guests differ in memory or mm");
    if (src === this) return;
    this.sptes.clear();
    for (const [k, v] of src.sptes) this.sptes.set(k, v);
    this.spteRefs.set(src.spteRefs);
    this.mmuInvalidateSeq = src.mmuInvalidateSeq;
    this.mmuInvalidateInProgress = src.mmuInvalidateInProgress;
    this.rangeStart = src.rangeStart;
    this.rangeEnd = src.rangeEnd;
    this.released = src.released;
    Object.assign(this.counters, src.counters);
  }

  /** Model bytes: the per-pfn counts and about 32 B per spte. */
  stateBytes(): number {
    return this.spteRefs.byteLength + this.sptes.size * 32;
  }
}

/** What a vCPU fault step works with. */
export interface KvmFaultContext {
  readonly kvm: KvmMmu;
  readonly counters: KvmCounters;
}

/** The steps of a vCPU's page fault; each default is the kernel's code. */
export interface KvmFaultSteps {
  /**
   * Under mmu_lock, before the spte is set: mmu_invalidate_retry_gfn(kvm, mmuSeq, gfn) — true makes the
   * fault drop its page and start again.
   */
  mmuInvalidateRetry(ctx: KvmFaultContext, mmuSeq: number, vpn: number): boolean;
}

/** A vCPU fault path: a name and its steps. */
export interface KvmFault {
  readonly name: string;
  readonly steps: KvmFaultSteps;
}

function mmuInvalidateRetryDefault(ctx: KvmFaultContext, mmuSeq: number, vpn: number): boolean {
  const kvm = ctx.kvm;
  if (kvm.mmuInvalidateInProgress > 0 && vpn >= kvm.rangeStart && vpn < kvm.rangeEnd) return true;
  return kvm.mmuInvalidateSeq !== mmuSeq;
}

/** The kernel's fault path (kvm_faultin_pfn + is_page_fault_stale). */
export const kvmFault: KvmFault = Object.freeze({
  name: "kvm_mmu_page_fault",
  steps: Object.freeze({ mmuInvalidateRetry: mmuInvalidateRetryDefault }),
});

/** Derives a fault path from `base`, replacing steps (how a broken one is built). */
export function defineKvmFault(
  base: KvmFault,
  overrides: { readonly name?: string; readonly steps?: Partial<KvmFaultSteps> },
): KvmFault {
  const steps: KvmFaultSteps = Object.freeze({ ...base.steps, ...overrides.steps });
  if (typeof steps.mmuInvalidateRetry !== "function") {
    throw new TeardownError(
      "BAD_SPEC",
      "kvm",
      "defineKvmFault",
      "step mmuInvalidateRetry must be a function",
    );
  }
  return Object.freeze({ name: overrides.name ?? base.name, steps });
}

/** The host pfn a present PTE or huge PMD of `mm` maps at `vpn`, or -1. */
function hostPfn(mm: Mm, vpn: number): number {
  const pt = mm.pt;
  const span = pt.span[0];
  const id = pt.pteTable(vpn, false);
  if (id === -1) return -1;
  if (id === -2) return ptePfn(pt.entries[pt.pmdTable(vpn, false)]![pt.index(vpn, LEVEL_PMD)]) + (vpn % span);
  const pte = pt.entries[id]![vpn % span];
  return pte > 0 ? ptePfn(pte) : -1;
}

/**
 * A vCPU faulting in guest pages [vs, ve) of `mm` once each, on another CPU: per page one step for
 * the GUP (hva_to_pfn) and one under mmu_lock (retry check, spte, reference dropped); a retried page
 * starts again. Not a teardown: it holds no mmap_lock across the steps (GUP takes it for its walk).
 */
export function* kvmFaultSteps(
  machine: Machine,
  mm: Mm,
  vs: number,
  ve: number,
  fault: KvmFault,
  thread: number,
): OpSteps {
  const kvm = machine.kvm;
  if (kvm === null || kvm.mmId !== mm.id) {
    throw new TeardownError(
      "BAD_SPEC",
      "kvm",
      "kvmFault",
      "a vCPU fault needs a KVM guest on the target mm (kvm: true)",
    );
  }
  const mem = machine.mem;
  const trace = machine.traceSink();
  const ctx: KvmFaultContext = { kvm, counters: kvm.counters };
  for (let vpn = vs; vpn < ve; vpn++) {
    for (;;) {
      // mmu_seq, then hva_to_pfn: GUP takes a reference on the host page.
      const mmuSeq = kvm.mmuInvalidateSeq;
      const pfn = hostPfn(mm, vpn);
      if (pfn < 0 || pfn === machine.zeroPfn || pfn >= machine.nrPages) {
        kvm.counters.faultsNoPage++;
        break;
      }
      const head = mem.folioHead(pfn);
      mem.folioGet(head);
      if (trace !== null) trace({ type: "kvmGup", addr: vpn * machine.pageSize, pfn, mmuSeq, thread });
      yield;
      // mmu_lock.
      if (fault.steps.mmuInvalidateRetry(ctx, mmuSeq, vpn)) {
        kvm.counters.faultRetries++;
        if (trace !== null) trace({ type: "kvmFaultRetry", addr: vpn * machine.pageSize, thread });
        mem.folioPut(head);
        yield;
        continue;
      }
      if (!kvm.released) {
        kvm.map(vpn, pfn);
        kvm.counters.sptesMapped++;
        if (trace !== null) trace({ type: "kvmSpteSet", addr: vpn * machine.pageSize, pfn, thread });
      }
      // kvm_release_faultin_page: the GUP reference goes; the spte holds none.
      mem.folioPut(head);
      yield;
      break;
    }
  }
}
