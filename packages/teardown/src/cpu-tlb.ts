// Models: per-CPU TLBs and paging-structure (walk) caches of the threads of an mm, as the x86 SDM
// and s390 PoP describe them: a translation cached at access stays usable until an invalidation
// (INVLPG range / full flush / INVLPGB broadcast / IPTE / IDTE) covers it; a walk-cache entry keeps a page-table page
// reachable until a flush that includes walk caches. A cached translation is a hazard for a freed
// page only while user code can still use it: not on a CPU whose thread of that mm is inside a
// teardown (it cannot touch user memory until the operation returns, after its flush), and never for
// an exiting mm (exit_mmap runs once mm_users is 0: no user code of it runs anywhere again).
// Lazy-TLB CPUs (a kernel thread runs there with the mm still loaded) keep their entries, but no user
// code of the mm runs there until the CPU switches back, which flushes what it missed (x86
// switch_mm_irqs_off and tlb_gen): their TLB entries are no hazard and no stale entry after a return;
// their walk caches stay hazards. A flush reaches the CPUs the arch targets (mm_cpumask by default).
// Walks are speculative too: while a table is reachable any CPU with the mm loaded may cache it, so a
// table unlinked from its parent stays a hazard on each such CPU until a walk-cache invalidation of the
// mm reaches it, whatever the access phase touched (s390 included: IDTE is that invalidation).
// A lockless walk (gup_fast: interrupts off, no lock) holds the page-table pages on its path until it
// re-enables interrupts; an IPI-based flush to its CPU (x86) waits for that, a broadcast one (arm64
// TLBI, INVLPGB, s390 IPTE) does not — there only an RCU grace period or tlb_remove_table_sync_one does.
// An INVLPGB reaches every CPU with the mm loaded, lazy ones included (they keep the mm's global ASID
// loaded), and is never waited for by an interrupts-off section, whatever `flushIpi` says.
// A PTE with arm64's contiguous bit is cached as one entry covering its whole block (the architecture
// allows it; the access phase fills it so), and any invalidation overlapping the block drops it.
// Omits: ASID/PCID reuse, associativity (direct-mapped here), global pages, speculative leaf (TLB)
// fills after the access phase, TLBI level (TTL) hints: an invalidation drops entries of every level.
import type { TlbFlushKind, TlbListener } from "@mmgather/mmu-gather";
import { TLB_FLUSH_ALL } from "@mmgather/mmu-gather";
import { TeardownError } from "./errors.js";
import type { SecondaryTlbs } from "./secondary-tlb.js";

/**
 * What let a lockless walk finish before a table it read could go: the flush's IPI, the IPI of
 * `tlb_remove_table_sync_one`, the end of an RCU grace period, or nothing (it simply ended).
 */
export type LocklessWalkEnd = "flushIpi" | "syncOne" | "gracePeriod" | "done";

/**
 * The CPU-counter share of flushes a concurrent actor (writeback, the NUMA scan) made outside the
 * measured operation: the report takes it out of the operation's CPU counters.
 */
export interface FlushShare {
  /** Range invalidations it sent (one per flush). */
  tlbFlushes: number;
  /** Whole-mm invalidations it sent (flush_tlb_mm), when the actor makes any. */
  mmFlushes?: number;
  /** Remote CPUs those flushes reached. */
  remoteCpuFlushes: number;
  /** Cached translations they dropped. */
  entriesInvalidated: number;
  /** Invalidation commands they sent to devices sharing the page tables. */
  secondaryTlbInvalidations: number;
}

/** Sizes of the modelled caches. */
export interface CpuTlbConfig {
  /** Number of CPUs (each may run a thread of any mm). */
  readonly nrCpus: number;
  /** `PAGE_SHIFT` of the arch: flush ranges arrive in bytes, entries are kept per virtual page. */
  readonly pageShift: number;
  /** TLB entries per CPU (power of two; direct-mapped by virtual page). Default 1536 rounded to 2048. */
  readonly tlbEntries?: number;
  /** Walk-cache entries per CPU (power of two). Default 64. */
  readonly walkEntries?: number;
}

const INVALID = -1;

/**
 * TLBs and walk caches of all CPUs in flat typed arrays (slot = cpu * entries + index), plus per-pfn
 * counts of cached references so "is pfn X still reachable from any CPU?" is one array read.
 */
export class CpuTlbs implements TlbListener {
  readonly nrCpus: number;
  readonly entries: number;
  readonly walkEntries: number;
  /** `PAGE_SIZE` in bytes. */
  readonly pageSize: number;
  /** Cached virtual page (base of a huge entry); -1 = invalid. */
  readonly tlbVpn: Float64Array;
  /** Physical page of the cached translation (first pfn of a huge entry). */
  readonly tlbPfn: Int32Array;
  /** Pages covered by the entry (1 or the PMD size). */
  readonly tlbNr: Int32Array;
  /** mm id the entry belongs to. */
  readonly tlbMm: Int32Array;
  /** Walk cache: pfn of the cached page-table page; -1 = invalid. */
  readonly walkPfn: Int32Array;
  /** Walk cache: mm id. */
  readonly walkMm: Int32Array;
  /** Cached translations per pfn, over all CPUs. */
  readonly tlbRefs: Uint16Array;
  /** The part of `tlbRefs` user code can still use (entries whose slot is live, see `tlbLive`). */
  readonly hazardRefs: Uint16Array;
  /** 1 while a slot's entry counts in `hazardRefs`; 0 while its CPU is quiesced for the entry's mm. */
  readonly tlbLive: Uint8Array;
  /**
   * 1 when the slot caches a writable translation whose dirty bit is already set (filled from a PTE or
   * PMD with both): a store through it needs no page walk, so it reaches the page even after the PTE is
   * gone or write-protected, until an invalidation drops the entry.
   */
  readonly tlbWrite: Uint8Array;
  /** The part of `hazardRefs` from writable, dirty entries (`tlbWrite`): user code can store through them. */
  readonly writeHazardRefs: Uint16Array;
  /** Per CPU: the mm whose teardown threads are running there (-1 none) and how many (`quiesce`). */
  readonly cpuQuiesced: Int32Array;
  private readonly quiesceDepth: Int32Array;
  /** Cached walk entries per page-table pfn, over all CPUs. */
  readonly walkRefs: Uint16Array;
  /** mm id whose thread runs on each CPU, or that it keeps loaded in lazy-TLB mode (-1 idle). */
  readonly cpuMm: Int32Array;
  /** mm id each CPU holds in lazy-TLB mode (-1 none): `cpuMm` is the same mm, no user code runs. */
  readonly cpuLazy: Int32Array;
  /** Invalidations received, by kind. */
  readonly invalidations = { range: 0, mm: 0, ipte: 0, idte: 0, invlpgb: 0 };
  /** Cached translations dropped by invalidations. */
  entriesInvalidated = 0;
  /**
   * +k per range / whole-mm invalidation of an mm that k CPUs run a thread of: the remote flushes
   * (IPIs on x86, TLBI broadcast on arm64) the initiating CPU waits for. IPTE / IDTE / INVLPGB are not
   * counted (the instruction itself purges every CPU; INVLPGB's wait is its TLBSYNC, which the gather
   * counts).
   */
  remoteCpuFlushes = 0;
  /**
   * Page-table pages a lockless walk (`gup_fast`, interrupts disabled, no lock) is reading, per pfn over
   * all CPUs: each walk holds the tables on its path until it re-enables interrupts.
   */
  readonly locklessRefs: Uint16Array;
  /** Per CPU ×3: the tables its lockless walk holds (-1 none). */
  private readonly walkHeld: Int32Array;
  /** CPUs inside a lockless walk now. */
  locklessWalkers = 0;
  /** Range / whole-mm flushes interrupt the target CPUs (`ArchTlb.tlbFlushIpi`): a walk there ends first. */
  flushIpi = true;
  /** Hook run when a lockless walk ends (the checker's trail). */
  onWalkDone: ((cpu: number, by: LocklessWalkEnd) => void) | null = null;
  /**
   * Speculative walks: while a page-table page is reachable, any CPU with its mm loaded (lazy ones
   * included) may have walked it — touched or not — and cached it. Per CPU, the count of walk-cache
   * invalidations of its mm it has received (an epoch); per table unlinked from its parent and not yet
   * freed, the epoch at its unlink. A table is safe to free once every CPU of the mm got a walk-cache
   * invalidation after the unlink.
   */
  private readonly walkFlushedAt: Float64Array;
  private walkEpoch = 0;
  private readonly unlinkedAt = new Map<number, number>();
  private readonly unlinkedFrom = new Map<number, number>();
  /** The devices sharing page tables of the machine's mms (IOMMU SVA), if any are modelled. */
  secondary: SecondaryTlbs | null = null;
  /** Hook run after each invalidation (the checker's trail). */
  onInvalidate: ((mmId: number, kind: TlbFlushKind, start: number, end: number) => void) | null = null;

  constructor(config: CpuTlbConfig, nrPhysPages: number) {
    this.nrCpus = config.nrCpus;
    this.pageSize = 2 ** config.pageShift;
    this.entries = roundPow2(config.tlbEntries ?? 2048);
    this.walkEntries = roundPow2(config.walkEntries ?? 64);
    const n = this.nrCpus * this.entries;
    this.tlbVpn = new Float64Array(n).fill(INVALID);
    this.tlbPfn = new Int32Array(n);
    this.tlbNr = new Int32Array(n);
    this.tlbMm = new Int32Array(n);
    this.tlbLive = new Uint8Array(n);
    this.tlbWrite = new Uint8Array(n);
    const w = this.nrCpus * this.walkEntries;
    this.walkPfn = new Int32Array(w).fill(INVALID);
    this.walkMm = new Int32Array(w);
    this.tlbRefs = new Uint16Array(nrPhysPages);
    this.hazardRefs = new Uint16Array(nrPhysPages);
    this.writeHazardRefs = new Uint16Array(nrPhysPages);
    this.walkRefs = new Uint16Array(nrPhysPages);
    this.cpuMm = new Int32Array(this.nrCpus).fill(-1);
    this.cpuLazy = new Int32Array(this.nrCpus).fill(-1);
    this.cpuQuiesced = new Int32Array(this.nrCpus).fill(-1);
    this.quiesceDepth = new Int32Array(this.nrCpus);
    this.locklessRefs = new Uint16Array(nrPhysPages);
    this.walkHeld = new Int32Array(this.nrCpus * 3).fill(INVALID);
    this.walkFlushedAt = new Float64Array(this.nrCpus);
  }

  /** `tablePfn` of `mmId` was just unlinked from its parent table (pmd_clear / pud_clear before *_free_tlb). */
  noteTableUnlinked(mmId: number, tablePfn: number): void {
    this.unlinkedAt.set(tablePfn, ++this.walkEpoch);
    this.unlinkedFrom.set(tablePfn, mmId);
  }

  /**
   * A CPU that may still hold the unlinked table `tablePfn` in its paging-structure cache from a
   * speculative walk — one with the table's mm loaded that no walk-cache invalidation of that mm reached
   * since the unlink —, or -1 (also for a page that is no unlinked table). Forgets the table (it is
   * being freed).
   */
  speculativeWalker(tablePfn: number): number {
    if (this.unlinkedAt.size === 0) return -1;
    const at = this.unlinkedAt.get(tablePfn);
    if (at === undefined) return -1;
    const mmId = this.unlinkedFrom.get(tablePfn)!;
    this.unlinkedAt.delete(tablePfn);
    this.unlinkedFrom.delete(tablePfn);
    for (let c = 0; c < this.nrCpus; c++) if (this.cpuMm[c] === mmId && this.walkFlushedAt[c] < at) return c;
    return -1;
  }

  /**
   * A thread of `mmId` on `cpu` is inside `gup_fast` (`lockless_pages_from_mm`): interrupts are off and
   * it reads `tables` (the page-table pages on its path, up to 3) until it is done.
   */
  locklessWalkStart(cpu: number, tables: readonly number[]): void {
    this.locklessWalkEnd(cpu, "done");
    for (let i = 0; i < tables.length && i < 3; i++) {
      this.walkHeld[cpu * 3 + i] = tables[i];
      this.locklessRefs[tables[i]]++;
    }
    if (tables.length > 0) this.locklessWalkers++;
  }

  /** The walk on `cpu` ends (`local_irq_restore`), `by` what let it finish first. */
  locklessWalkEnd(cpu: number, by: LocklessWalkEnd): void {
    let held = false;
    for (let i = cpu * 3; i < cpu * 3 + 3; i++) {
      const p = this.walkHeld[i];
      if (p === INVALID) continue;
      this.locklessRefs[p]--;
      this.walkHeld[i] = INVALID;
      held = true;
    }
    if (!held) return;
    this.locklessWalkers--;
    if (this.onWalkDone !== null) this.onWalkDone(cpu, by);
  }

  /** Whether `cpu` is inside a lockless walk. */
  inLocklessWalk(cpu: number): boolean {
    return this.walkHeld[cpu * 3] !== INVALID;
  }

  /**
   * An IPI reaches every CPU and is waited for (`tlb_remove_table_sync_one`), or a grace period ends
   * (`by`): no lockless walk that began before is still running.
   */
  endLocklessWalks(by: LocklessWalkEnd): void {
    if (this.locklessWalkers === 0) return;
    for (let c = 0; c < this.nrCpus; c++) this.locklessWalkEnd(c, by);
  }

  /**
   * Caches a translation of `nr` pages at `vpn` → `pfn` on `cpu` (evicting the slot's entry);
   * `writable`: the entry is writable with its dirty bit set (see `tlbWrite`).
   */
  fillTlb(cpu: number, mmId: number, vpn: number, pfn: number, nr: number, writable = false): void {
    const slot = cpu * this.entries + (Math.floor(vpn / nr) % this.entries);
    if (this.tlbVpn[slot] === vpn && this.tlbMm[slot] === mmId) {
      if (writable && this.tlbWrite[slot] === 0) {
        this.tlbWrite[slot] = 1;
        if (this.tlbLive[slot] !== 0) for (let i = 0; i < nr; i++) this.writeHazardRefs[pfn + i]++;
      }
      return;
    }
    this.dropTlbSlot(slot);
    this.tlbVpn[slot] = vpn;
    this.tlbPfn[slot] = pfn;
    this.tlbNr[slot] = nr;
    this.tlbMm[slot] = mmId;
    this.tlbWrite[slot] = writable ? 1 : 0;
    const live = this.cpuQuiesced[cpu] !== mmId && this.cpuLazy[cpu] !== mmId;
    this.tlbLive[slot] = live ? 1 : 0;
    for (let i = 0; i < nr; i++) this.tlbRefs[pfn + i]++;
    if (live) {
      for (let i = 0; i < nr; i++) this.hazardRefs[pfn + i]++;
      if (writable) for (let i = 0; i < nr; i++) this.writeHazardRefs[pfn + i]++;
    }
  }

  /** Caches a walk entry for the page-table page `tablePfn` on `cpu`. */
  fillWalk(cpu: number, mmId: number, tablePfn: number): void {
    const slot = cpu * this.walkEntries + (tablePfn % this.walkEntries);
    if (this.walkPfn[slot] === tablePfn) return;
    if (this.walkPfn[slot] !== INVALID) this.walkRefs[this.walkPfn[slot]]--;
    this.walkPfn[slot] = tablePfn;
    this.walkMm[slot] = mmId;
    this.walkRefs[tablePfn]++;
  }

  private dropTlbSlot(slot: number): void {
    if (this.tlbVpn[slot] === INVALID) return;
    const pfn = this.tlbPfn[slot];
    const nr = this.tlbNr[slot];
    for (let i = 0; i < nr; i++) this.tlbRefs[pfn + i]--;
    if (this.tlbLive[slot] !== 0) {
      for (let i = 0; i < nr; i++) this.hazardRefs[pfn + i]--;
      if (this.tlbWrite[slot] !== 0) for (let i = 0; i < nr; i++) this.writeHazardRefs[pfn + i]--;
    }
    this.tlbVpn[slot] = INVALID;
    this.tlbWrite[slot] = 0;
  }

  private setLive(cpu: number, mmId: number, live: 0 | 1): void {
    if (live === 1 && this.cpuLazy[cpu] === mmId) return;
    const d = live === 1 ? 1 : -1;
    for (let s = cpu * this.entries, end = s + this.entries; s < end; s++) {
      if (this.tlbVpn[s] === INVALID || this.tlbMm[s] !== mmId || this.tlbLive[s] === live) continue;
      this.tlbLive[s] = live;
      const pfn = this.tlbPfn[s];
      for (let i = 0, nr = this.tlbNr[s]; i < nr; i++) this.hazardRefs[pfn + i] += d;
      if (this.tlbWrite[s] !== 0)
        for (let i = 0, nr = this.tlbNr[s]; i < nr; i++) this.writeHazardRefs[pfn + i] += d;
    }
  }

  /** The CPU a teardown thread runs on (thread t on CPU t; threads share CPUs when there are fewer). */
  cpuOfThread(thread: number): number {
    return thread % this.nrCpus;
  }

  /**
   * A thread of `mmId` on `cpu` enters a teardown: until `resume`, that CPU's entries of the mm are
   * not usable by user code. Nests (two threads time-sliced on one CPU).
   */
  quiesce(cpu: number, mmId: number): void {
    if (this.quiesceDepth[cpu]++ === 0) {
      this.cpuQuiesced[cpu] = mmId;
      this.setLive(cpu, mmId, 0);
    }
  }

  /** The thread returns to user space: the CPU's remaining entries of the mm are usable again. */
  resume(cpu: number, mmId: number): void {
    if (--this.quiesceDepth[cpu] === 0) {
      this.cpuQuiesced[cpu] = -1;
      this.setLive(cpu, mmId, 1);
    }
  }

  /**
   * `cpu`, which ran a thread of `mmId`, switches to a kernel thread and keeps the mm loaded
   * (enter_lazy_tlb): its TLB entries of the mm are no longer usable by user code; its walk caches are.
   */
  enterLazy(cpu: number, mmId: number): void {
    if (this.cpuMm[cpu] !== mmId || this.cpuLazy[cpu] === mmId) return;
    this.cpuLazy[cpu] = mmId;
    this.setLive(cpu, mmId, 0);
  }

  /** `mm_cpumask` of `mmId`: CPUs with it loaded, running or lazy. */
  cpumask(mmId: number): number[] {
    const out: number[] = [];
    for (let c = 0; c < this.nrCpus; c++) if (this.cpuMm[c] === mmId) out.push(c);
    return out;
  }

  /** The lazy-TLB CPUs of `mmId`. */
  lazyCpus(mmId: number): number[] {
    const out: number[] = [];
    for (let c = 0; c < this.nrCpus; c++) if (this.cpuLazy[c] === mmId) out.push(c);
    return out;
  }

  /** exit_mmap of `mmId` (mm_users is 0): no CPU will use its entries again. */
  retireMm(mmId: number): void {
    for (let c = 0; c < this.nrCpus; c++) this.setLive(c, mmId, 0);
  }

  /** Some CPU other than `cpu` runs a thread of `mmId` (s390 cpu_attach_mask, mm_cpumask). */
  attachedElsewhere(cpu: number, mmId: number): boolean {
    const m = this.cpuMm;
    for (let c = 0; c < m.length; c++) if (c !== cpu && m[c] === mmId) return true;
    return false;
  }

  /** Drops every cached translation of `mmId` overlapping pages [vs, ve) (on `cpus`, default all). */
  invalidatePages(mmId: number, vs: number, ve: number, cpus: readonly number[] | null = null): void {
    if (cpus === null) for (let c = 0; c < this.nrCpus; c++) this.invalidatePagesOn(c, mmId, vs, ve);
    else for (const c of cpus) this.invalidatePagesOn(c, mmId, vs, ve);
  }

  private invalidatePagesOn(cpu: number, mmId: number, vs: number, ve: number): void {
    for (let s = cpu * this.entries, end = s + this.entries; s < end; s++) {
      const v = this.tlbVpn[s];
      if (v !== INVALID && this.tlbMm[s] === mmId && v < ve && v + this.tlbNr[s] > vs) {
        this.dropTlbSlot(s);
        this.entriesInvalidated++;
      }
    }
  }

  /** Drops every walk-cache entry of `mmId` (on `cpus`, default all). */
  invalidateWalks(mmId: number, cpus: readonly number[] | null = null): void {
    const epoch = ++this.walkEpoch;
    if (cpus === null) for (let c = 0; c < this.nrCpus; c++) this.invalidateWalksOn(c, mmId, epoch);
    else for (const c of cpus) this.invalidateWalksOn(c, mmId, epoch);
  }

  private invalidateWalksOn(cpu: number, mmId: number, epoch: number): void {
    if (this.cpuMm[cpu] === mmId) this.walkFlushedAt[cpu] = epoch;
    for (let s = cpu * this.walkEntries, end = s + this.walkEntries; s < end; s++) {
      const p = this.walkPfn[s];
      if (p !== INVALID && this.walkMm[s] === mmId) {
        this.walkRefs[p]--;
        this.walkPfn[s] = INVALID;
      }
    }
  }

  /**
   * Any CPU not in lazy-TLB mode for `mmId` still caches a translation of it into pages [vs, ve)?
   * Returns the vpn or -1. (A lazy CPU flushes what it missed before user code of the mm runs there.)
   * With `benign`, a cached page it accepts (`benign(vpn, pfn, writable)`) does not count.
   */
  findCached(
    mmId: number,
    vs: number,
    ve: number,
    benign: ((vpn: number, pfn: number, writable: boolean) => boolean) | null = null,
  ): number {
    for (let c = 0; c < this.nrCpus; c++) {
      if (this.cpuLazy[c] === mmId) continue;
      for (let s = c * this.entries, end = s + this.entries; s < end; s++) {
        const v = this.tlbVpn[s];
        if (v === INVALID || this.tlbMm[s] !== mmId || v >= ve || v + this.tlbNr[s] <= vs) continue;
        if (benign === null) return Math.max(v, vs);
        const hi = Math.min(ve, v + this.tlbNr[s]);
        for (let p = Math.max(v, vs); p < hi; p++)
          if (!benign(p, this.tlbPfn[s] + (p - v), this.tlbWrite[s] !== 0)) return p;
      }
    }
    return -1;
  }

  /**
   * A CPU whose user code can use a cached entry of `mmId` for exactly the `nr` pages at `vpn` (a huge
   * or contiguous-block entry of that size), or -1. One slot per CPU: the TLB is direct-mapped.
   */
  cachedBlock(mmId: number, vpn: number, nr: number): number {
    const k = Math.floor(vpn / nr) % this.entries;
    for (let c = 0; c < this.nrCpus; c++) {
      const s = c * this.entries + k;
      if (this.tlbVpn[s] === vpn && this.tlbMm[s] === mmId && this.tlbNr[s] === nr && this.tlbLive[s] !== 0)
        return c;
    }
    return -1;
  }

  /** Pfn of a cached translation of `vpn` (any CPU) or -1. */
  cachedPfn(mmId: number, vpn: number): number {
    const n = this.tlbVpn.length;
    for (let s = 0; s < n; s++) {
      const v = this.tlbVpn[s];
      if (v !== INVALID && this.tlbMm[s] === mmId && v <= vpn && vpn < v + this.tlbNr[s]) {
        return this.tlbPfn[s] + (vpn - v);
      }
    }
    return -1;
  }

  /** TlbListener: called by the gather when TLB entries are invalidated. */
  tlbInvalidate(
    mmId: number,
    kind: TlbFlushKind,
    start: number,
    end: number,
    _stride: number,
    walkCaches: boolean,
    cpus: readonly number[] | null = null,
  ): void {
    this.invalidations[kind]++;
    if (kind === "range" || kind === "mm") {
      const cpuMm = this.cpuMm;
      if (cpus !== null) {
        for (const c of cpus) if (cpuMm[c] === mmId) this.remoteCpuFlushes++;
      } else for (let c = 0; c < cpuMm.length; c++) if (cpuMm[c] === mmId) this.remoteCpuFlushes++;
      // An IPI is taken only once interrupts are back on: the initiator waits out each target's walk.
      if (this.flushIpi && this.locklessWalkers > 0) {
        if (cpus !== null) {
          for (const c of cpus) if (cpuMm[c] === mmId) this.locklessWalkEnd(c, "flushIpi");
        } else
          for (let c = 0; c < cpuMm.length; c++) if (cpuMm[c] === mmId) this.locklessWalkEnd(c, "flushIpi");
      }
    }
    const on = kind === "range" || kind === "mm" ? cpus : null;
    if (kind === "range" || kind === "ipte" || (kind === "invlpgb" && end !== TLB_FLUSH_ALL))
      this.invalidatePages(mmId, Math.floor(start / this.pageSize), Math.ceil(end / this.pageSize), on);
    else this.invalidatePages(mmId, 0, Number.POSITIVE_INFINITY, on);
    if (walkCaches || kind === "mm" || kind === "idte") this.invalidateWalks(mmId, on);
    if (this.onInvalidate !== null) this.onInvalidate(mmId, kind, start, end);
  }

  /**
   * flush_tlb_mm_range outside a gather (ptep_clear_flush, pmdp_invalidate, flush_pmd_tlb_range): the
   * CPUs with the mm loaded drop [start, end), then mmu_notifier_arch_invalidate_secondary_tlbs tells the
   * devices the same range. `share` (when given) receives what the flush added to the CPU counters.
   */
  flushTlbMmRange(mmId: number, start: number, end: number, share: FlushShare | null = null): void {
    if (share !== null) this.markShare();
    this.tlbInvalidate(mmId, "range", start, end, end - start, false);
    this.secondary?.invalidate(mmId, start, end);
    if (share === null) return;
    share.tlbFlushes++;
    this.addShare(share);
  }

  private markRemote = 0;
  private markDropped = 0;
  private markDevice = 0;

  /**
   * Marks the CPU and device counters before an actor's invalidations; `addShare` then adds what they
   * cost since to the actor's share (not reentrant: one mark at a time).
   */
  markShare(): void {
    this.markRemote = this.remoteCpuFlushes;
    this.markDropped = this.entriesInvalidated;
    this.markDevice = this.secondary?.invalidations ?? 0;
  }

  /** Adds the remote flushes, dropped entries and device commands since `markShare` to `share`. */
  addShare(share: FlushShare): void {
    share.remoteCpuFlushes += this.remoteCpuFlushes - this.markRemote;
    share.entriesInvalidated += this.entriesInvalidated - this.markDropped;
    share.secondaryTlbInvalidations += (this.secondary?.invalidations ?? 0) - this.markDevice;
  }

  /** TlbListener: `mmu_notifier_arch_invalidate_secondary_tlbs` reached the mm's devices. */
  secondaryTlbInvalidate(mmId: number, start: number, end: number): void {
    if (this.secondary !== null) this.secondary.invalidate(mmId, start, end);
  }

  /**
   * Makes these caches an exact copy of `src`'s (same CPUs, cache sizes and physical pages): every
   * translation and walk entry, the per-pfn reference counts, quiesced, lazy and lockless-walk state,
   * speculative-walk epochs and the counters; the devices' caches too. The hooks and `flushIpi` stay
   * this object's (they belong to its machine and arch). A model facility, nothing the kernel does.
   */
  copyFrom(src: CpuTlbs): void {
    if (
      src.nrCpus !== this.nrCpus ||
      src.entries !== this.entries ||
      src.walkEntries !== this.walkEntries ||
      src.pageSize !== this.pageSize ||
      src.tlbRefs.length !== this.tlbRefs.length ||
      (src.secondary === null) !== (this.secondary === null)
    )
      throw new TeardownError("EINVAL", "cpu-tlb", "copyFrom", "the two CPU models differ in size");
    if (src === this) return;
    this.tlbVpn.set(src.tlbVpn);
    this.tlbPfn.set(src.tlbPfn);
    this.tlbNr.set(src.tlbNr);
    this.tlbMm.set(src.tlbMm);
    this.walkPfn.set(src.walkPfn);
    this.walkMm.set(src.walkMm);
    this.tlbRefs.set(src.tlbRefs);
    this.hazardRefs.set(src.hazardRefs);
    this.tlbLive.set(src.tlbLive);
    this.tlbWrite.set(src.tlbWrite);
    this.writeHazardRefs.set(src.writeHazardRefs);
    this.cpuQuiesced.set(src.cpuQuiesced);
    this.quiesceDepth.set(src.quiesceDepth);
    this.walkRefs.set(src.walkRefs);
    this.cpuMm.set(src.cpuMm);
    this.cpuLazy.set(src.cpuLazy);
    Object.assign(this.invalidations, src.invalidations);
    this.entriesInvalidated = src.entriesInvalidated;
    this.remoteCpuFlushes = src.remoteCpuFlushes;
    this.locklessRefs.set(src.locklessRefs);
    this.walkHeld.set(src.walkHeld);
    this.locklessWalkers = src.locklessWalkers;
    this.walkFlushedAt.set(src.walkFlushedAt);
    this.walkEpoch = src.walkEpoch;
    this.unlinkedAt.clear();
    for (const [k, v] of src.unlinkedAt) this.unlinkedAt.set(k, v);
    this.unlinkedFrom.clear();
    for (const [k, v] of src.unlinkedFrom) this.unlinkedFrom.set(k, v);
    if (this.secondary !== null) this.secondary.copyFrom(src.secondary!);
  }

  /** Model bytes (the devices' caches included). */
  stateBytes(): number {
    return (
      (this.secondary?.stateBytes() ?? 0) +
      this.tlbVpn.byteLength +
      this.tlbPfn.byteLength +
      this.tlbNr.byteLength +
      this.tlbMm.byteLength +
      this.walkPfn.byteLength +
      this.walkMm.byteLength +
      this.tlbRefs.byteLength +
      this.hazardRefs.byteLength +
      this.tlbLive.byteLength +
      this.tlbWrite.byteLength +
      this.writeHazardRefs.byteLength +
      this.walkRefs.byteLength +
      this.cpuMm.byteLength +
      this.cpuLazy.byteLength +
      this.locklessRefs.byteLength +
      this.walkHeld.byteLength
    );
  }
}

/** The smallest power of two ≥ n (cache sizes). */
export function roundPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
