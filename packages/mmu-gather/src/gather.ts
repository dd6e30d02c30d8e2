// Models: struct mmu_gather and mm/mmu_gather.c — tlb_gather_mmu(_fullmm), __tlb_adjust_range,
// __tlb_reset_range, tlb_start_vma/tlb_end_vma, tlb_remove_tlb_entr(y|ies), __tlb_remove_page_size,
// __tlb_remove_folio_pages, tlb_flush_mmu_tlbonly, tlb_flush_mmu_pfnmap (Linux v6.15+: the VM_PFNMAP
// flush free_pgtables runs before the VMAs leave i_mmap; vma_pfn is sticky until it runs),
// tlb_flush_rmaps, tlb_flush_mmu, tlb_finish_mmu,
// tlb_remove_table / tlb_table_flush / tlb_remove_table_one, pte/pmd/pud/p4d_free_tlb,
// and s390's MMU_GATHER_NO_GATHER (free_page_and_swap_cache at queue time). Its TlbOps count what the
// arch's flush issues: range / whole-mm flushes, s390 IPTE / IDTE, and x86 as of v6.18 (arch/x86/mm/tlb.c):
// flush_tlb_func on a CPU set, locally on the initiating CPU and by IPI elsewhere, and INVLPGB / TLBSYNC.
// Omits: CONFIG_MMU_GATHER_PAGE_SIZE, hugetlb unsharing.

import type { PhysMem } from "@mmgather/folio";
import {
  type FolioState,
  folioRemoveRmapPteListTrusted,
  folioRemoveRmapPtesTrusted,
  folioRemoveRmapRangeTrusted,
  folioState,
  pageRemoveRmapPtesTrusted,
} from "@mmgather/folio/internal";
import type { SwapSpace } from "@mmgather/swapcache";
import { genericPteClear } from "./arch.js";
import { MAX_ENCODABLE_PFN, maxTableBatch, TLB_FLUSH_ALL, TLB_RANGE_ULONG_MAX } from "./constants.js";
import { GatherError } from "./errors.js";
import {
  ContigRangeStorage,
  EncodedNrPagesStorage,
  EncodedPageStorage,
  type StorageHost,
} from "./storage.js";
import type {
  ArchTlb,
  BatchAllocPolicy,
  CountersReport,
  ForcedFlushReason,
  GatherCounters,
  GatherEvent,
  GatherStageOps,
  GatherVariant,
  GatherView,
  MmuGather,
  MmuGatherOptions,
  MmuGatherTrusted,
  PteTableView,
  TableFreeSync,
  TlbFlushReason,
  TlbLevel,
  TlbListener,
  TlbMm,
  TlbOps,
  VmaTlbFlags,
} from "./types.js";
import { getVariant } from "./variants.js";

let nextMmId = 1;

/**
 * The default `TableFreeSync` of a gather used on its own: no lockless walker exists, so a grace period
 * is over at once and the IPI finds no one to wait for.
 */
export const IMMEDIATE_TABLE_FREE_SYNC: TableFreeSync = Object.freeze({
  callRcu(free: () => void): void {
    free();
  },
  syncOne(): void {},
});

/** Create the mm-wide flush bookkeeping shared by every gather on one mm. */
export function createTlbMm(id?: number): TlbMm {
  return {
    id: id ?? nextMmId++,
    tlbFlushPending: 0,
    flushMm: false,
    attachedElsewhere: false,
    cpumask: [],
    lazyCpus: [],
    hasNotifiers: false,
  };
}

/** Fresh zeroed counters. */
export function createGatherCounters(): GatherCounters {
  return {
    entriesQueued: 0,
    pagesQueued: 0,
    rangesMerged: 0,
    batchPagesAllocated: 0,
    batchAllocFailed: 0,
    batchPagesReused: 0,
    batchPagesFreed: 0,
    forcedFlushes: {
      batchLimit: 0,
      batchAllocFailed: 0,
      delayedRmapLimit: 0,
      tableBatchFull: 0,
      tableAllocFailed: 0,
      nestedGather: 0,
    },
    tlbFlushRange: 0,
    tlbFlushRangeEntries: 0,
    tlbFlushMm: 0,
    tlbIpis: 0,
    tlbCpusTargeted: 0,
    tlbLazyCpusSkipped: 0,
    invlpgb: 0,
    tlbsync: 0,
    ipte: 0,
    lazyInvalidations: 0,
    tlbiVaOps: 0,
    tlbiRangeOps: 0,
    tlbiLimitExcess: 0,
    contpteFolds: 0,
    contpteUnfolds: 0,
    contpteConvertedPtes: 0,
    contpteConvertTlbis: 0,
    contpteBatchedClears: 0,
    contpteBlocksCleared: 0,
    idte: 0,
    tlbFlushSkipped: 0,
    tlbFlushes: 0,
    rmapFlushes: 0,
    rmapCallsDelayed: 0,
    rmapCallsImmediate: 0,
    rmapPages: 0,
    flushMmuCalls: 0,
    chunksFreed: 0,
    condResched: 0,
    lruAddDrain: 0,
    freeSwapCacheCalls: 0,
    releaseCalls: 0,
    pagesReleased: 0,
    pagesFreedOnQueue: 0,
    tablesQueued: 0,
    tablesFreed: 0,
    tableBatchAllocated: 0,
    tableBatchAllocFailed: 0,
    tableSyncOne: 0,
    rcuCalls: 0,
    nestedFlushes: 0,
  };
}

const alwaysAlloc: BatchAllocPolicy = () => true;
const FLUSH_REASONS: ReadonlySet<string> = new Set<TlbFlushReason>([
  "endVma",
  "batchFull",
  "dirtyShared",
  "tableFree",
  "nested",
  "finish",
  "pteClear",
  "pfnmap",
  "caller",
]);

const M = "gather";

/** policy.immediateRmap as a small integer: 6.5's page_remove_rmap per page. */
const RMAP_PAGE = 0;
/** 7.x folio_remove_rmap_ptes: one call per folio run. */
const RMAP_FOLIO_PTES = 1;
/** The series' folio_remove_rmap_range: one call per folio run. */
const RMAP_FOLIO_RANGE = 2;

type Storage = EncodedPageStorage | EncodedNrPagesStorage | ContigRangeStorage;

/** The engine. Users see it through `MmuGather`; arch hooks and steps through `GatherView`. */
class MmuGatherImpl implements MmuGather, MmuGatherTrusted, GatherStageOps, StorageHost, TlbOps {
  readonly mem: PhysMem;
  /** The folio layer's state, for its Trusted entry points. */
  private readonly fs: FolioState;
  readonly swap: SwapSpace | null;
  readonly mm: TlbMm;
  readonly arch: ArchTlb;
  readonly variant: GatherVariant;
  readonly counters: GatherCounters = createGatherCounters();
  readonly sink: ((e: GatherEvent) => void) | null;
  readonly limitBatchesWhileDelayed: boolean;
  readonly lruAddDrainOnFree: boolean;
  readonly capBatchCount: boolean;
  readonly condReschedPerChunk: boolean;
  readonly batchRmap: boolean;
  private readonly listener: TlbListener | null;
  private readonly tableSync: TableFreeSync;
  private readonly alloc: BatchAllocPolicy;
  private allocOrdinal = 0;
  private readonly storage: Storage | null;
  /** The storage by kind (exactly one non-null unless NO_GATHER): monomorphic fast-path dispatch. */
  private readonly encPage: EncodedPageStorage | null;
  private readonly encNr: EncodedNrPagesStorage | null;
  private readonly contig: ContigRangeStorage | null;
  /** zapPresentTrusted may be used (see zapFastPath). */
  private readonly fastZap: boolean;
  private readonly pageSize: number;
  private readonly taskSize: number;
  private readonly tableMax: number;
  private tableBatch: Int32Array | null = null;
  private tableStore: Int32Array | null = null;
  private tableNr = 0;
  private readonly flushMmuBound: () => void;
  private readonly ro: GatherView;
  /** The arch's pteClear hook, or null when it is the asm-generic no-op (skips a call per PTE run). */
  private readonly pteClearHook: ArchTlb["pteClear"] | null;
  /** policy.immediateRmap as RMAP_PAGE / RMAP_FOLIO_PTES / RMAP_FOLIO_RANGE (a small-integer switch). */
  private readonly immPrim: number;
  private readonly oneHead = new Int32Array(1);
  private readonly oneRef = new Int32Array(1);

  start = 0;
  end = 0;
  fullmm: boolean;
  needFlushAll = false;
  freedTables = false;
  delayedRmap = false;
  // Stryker disable next-line BooleanLiteral: the constructor's resetRange() clears it before any use
  clearedPtes = false;
  clearedPmds = false;
  clearedPuds = false;
  clearedP4ds = false;
  vmaExec = false;
  vmaHuge = false;
  vmaPfn = false;
  /** The current VMA is VM_LOCKED (recorded at tlb_start_vma, fullmm included). */
  vmaLocked = false;
  underPtl = false;
  finished = false;
  /** The CPU running the gather, -1 when none is modelled (`MmuGatherOptions.cpu`). */
  readonly cpu: number;
  /** INVLPGBs issued since the last TLBSYNC (x86): a TLBSYNC after none reached no CPU. */
  private invlpgbPending = false;

  constructor(o: MmuGatherOptions) {
    if (o.mem === undefined || o.mm === undefined || o.arch === undefined)
      throw new GatherError("BAD_ARGUMENT", M, "createMmuGather", "mem, mm and arch are required");
    this.mem = o.mem;
    this.fs = folioState(o.mem);
    this.swap = o.swap ?? null;
    this.mm = o.mm;
    this.arch = o.arch;
    this.variant = typeof o.variant === "string" ? getVariant(o.variant) : o.variant;
    this.sink = o.events ?? null;
    this.listener = o.tlbListener ?? null;
    this.tableSync = o.tableSync ?? IMMEDIATE_TABLE_FREE_SYNC;
    this.alloc = o.alloc ?? alwaysAlloc;
    const fn = (x: unknown, k: string) => typeof (x as Record<string, unknown> | null)?.[k] === "function";
    if (this.listener !== null && !fn(this.listener, "tlbInvalidate"))
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        "createMmuGather",
        "tlbListener.tlbInvalidate must be a function",
      );
    if (!fn(this.tableSync, "callRcu") || !fn(this.tableSync, "syncOne"))
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        "createMmuGather",
        "tableSync must have callRcu(free) and syncOne() functions",
      );
    if (typeof this.alloc !== "function")
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        "createMmuGather",
        "alloc must be a function (ordinal, what) => boolean",
      );
    const cpu = o.cpu ?? -1;
    if (!Number.isInteger(cpu) || cpu < -1)
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        "createMmuGather",
        `cpu must be an integer >= 0 (or -1: no CPU modelled), got ${JSON.stringify(cpu)}`,
      );
    this.cpu = cpu;
    this.fullmm = o.fullmm === true;
    const policy = this.variant.policy;
    this.limitBatchesWhileDelayed = policy.limitBatchesWhileDelayed;
    this.lruAddDrainOnFree = policy.lruAddDrainOnFree;
    this.capBatchCount = policy.capBatchCount;
    this.condReschedPerChunk = policy.condReschedPerChunk;
    this.batchRmap = policy.deferAllRmaps && this.arch.batchRmap && !this.arch.noGather;
    const shift = this.arch.geometry.pageShift;
    this.pageSize = 2 ** shift;
    this.taskSize = this.arch.geometry.taskSize;
    this.tableMax = maxTableBatch(shift, this.arch.tableFree === "rcu");
    if (this.arch.noGather) this.storage = null;
    else if (this.variant.storage === "encoded-page") this.storage = new EncodedPageStorage(this, shift);
    else if (this.variant.storage === "encoded-nr-pages")
      this.storage = new EncodedNrPagesStorage(this, shift);
    else if (this.variant.storage === "contig-range") this.storage = new ContigRangeStorage(this, shift);
    else
      throw new GatherError("BAD_VARIANT", M, "createMmuGather", `unknown storage "${this.variant.storage}"`);
    this.pteClearHook = this.arch.pteClear === genericPteClear ? null : this.arch.pteClear;
    const st = this.storage;
    this.encPage = st instanceof EncodedPageStorage ? st : null;
    this.encNr = st instanceof EncodedNrPagesStorage ? st : null;
    this.contig = st instanceof ContigRangeStorage ? st : null;
    this.fastZap =
      this.sink === null && this.pteClearHook === null && this.arch.clearPtes === null && st !== null;
    const prim = policy.immediateRmap;
    this.immPrim =
      prim === "pageRemoveRmap"
        ? RMAP_PAGE
        : prim === "folioRemoveRmapPtes"
          ? RMAP_FOLIO_PTES
          : RMAP_FOLIO_RANGE;
    // tlb_finish_mmu's own tlb_flush_mmu: keeps the reason finish set ("finish" or "nested").
    this.flushMmuBound = () => this.flushMmu(this.why);
    // The one object arch hooks see: getters only, frozen — assignments throw in strict mode.
    this.ro = Object.freeze(
      Object.defineProperties({} as GatherView, {
        mm: { get: () => this.mm, enumerable: true },
        start: { get: () => this.start, enumerable: true },
        end: { get: () => this.end, enumerable: true },
        fullmm: { get: () => this.fullmm, enumerable: true },
        needFlushAll: { get: () => this.needFlushAll, enumerable: true },
        freedTables: { get: () => this.freedTables, enumerable: true },
        delayedRmap: { get: () => this.delayedRmap, enumerable: true },
        clearedPtes: { get: () => this.clearedPtes, enumerable: true },
        clearedPmds: { get: () => this.clearedPmds, enumerable: true },
        clearedPuds: { get: () => this.clearedPuds, enumerable: true },
        clearedP4ds: { get: () => this.clearedP4ds, enumerable: true },
        vmaExec: { get: () => this.vmaExec, enumerable: true },
        vmaHuge: { get: () => this.vmaHuge, enumerable: true },
        vmaPfn: { get: () => this.vmaPfn, enumerable: true },
        batchCount: { get: () => this.batchCount, enumerable: true },
        underPtl: { get: () => this.underPtl, enumerable: true },
        finished: { get: () => this.finished, enumerable: true },
        flushReason: { get: () => this.flushReason, enumerable: true },
        cpu: { get: () => this.cpu, enumerable: true },
      }),
    );
    // __tlb_gather_mmu
    this.resetRange();
    this.mm.tlbFlushPending++;
    if (this.sink !== null) this.sink({ type: "gatherStarted", mmId: this.mm.id, fullmm: this.fullmm });
  }

  // ---- flush reasons ------------------------------------------------------------------------------
  /** Why the flush now being asked for runs (TlbFlushReason); "caller" outside any known path. */
  private why: TlbFlushReason = "caller";
  /** `GatherView.flushReason`: `why` while the arch hook runs, null otherwise. */
  flushReason: TlbFlushReason | null = null;

  private checkReason(method: string, why: TlbFlushReason): void {
    if (!FLUSH_REASONS.has(why))
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        method,
        `unknown flush reason ${JSON.stringify(why)}; expected one of ${[...FLUSH_REASONS].join(", ")}`,
      );
  }

  // ---- GatherView extras -------------------------------------------------------------------------
  get batchCount(): number {
    return this.storage === null ? 0 : this.storage.batchCount;
  }
  get queuedEntries(): number {
    return this.storage === null ? 0 : this.storage.queuedEntries();
  }
  get queuedPages(): number {
    return this.storage === null ? 0 : this.storage.queuedPages();
  }
  get view(): GatherView {
    return this.ro;
  }

  // ---- range tracking ----------------------------------------------------------------------------
  private resetRange(): void {
    if (this.fullmm) {
      this.start = TLB_RANGE_ULONG_MAX;
      this.end = TLB_RANGE_ULONG_MAX;
    } else {
      this.start = this.taskSize;
      this.end = 0;
    }
    this.freedTables = false;
    this.clearedPtes = false;
    this.clearedPmds = false;
    this.clearedPuds = false;
    this.clearedP4ds = false;
  }

  private adjustRange(addr: number, size: number, level: TlbLevel | null): void {
    // Stryker disable next-line EqualityOperator: at equality the assignment changes nothing
    if (addr < this.start) this.start = addr;
    // Stryker disable next-line EqualityOperator: at equality the assignment changes nothing
    if (addr + size > this.end) this.end = addr + size;
    if (this.sink !== null) this.sink({ type: "rangeRecorded", addr, size, level });
  }

  private live(method: string): void {
    if (this.finished)
      throw new GatherError("FINISHED", M, method, "the gather was used after tlb_finish_mmu");
  }

  tlbStartVma(vma: VmaTlbFlags): void {
    this.live("tlbStartVma");
    this.vmaLocked = vma.locked === true;
    if (this.fullmm) return;
    this.vmaExec = vma.exec;
    this.vmaHuge = vma.huge;
    this.vmaPfn = this.vmaPfn || vma.pfnmap;
  }

  tlbEndVma(_vma: VmaTlbFlags): void {
    this.live("tlbEndVma");
    if (this.fullmm || this.arch.mergeVmas) return;
    this.tlbFlushMmuTlbonlyFor("endVma");
  }

  tlbFlushMmuPfnmap(): void {
    this.live("tlbFlushMmuPfnmap");
    if (this.fullmm || !this.vmaPfn) return;
    this.tlbFlushMmuTlbonlyFor("pfnmap");
    this.vmaPfn = false;
  }

  ptepGetAndClear(addr: number, nr: number): void {
    this.live("ptepGetAndClear");
    if (this.sink !== null) this.sink({ type: "pteCleared", addr, nr });
    const hook = this.pteClearHook;
    if (hook !== null) {
      this.flushReason = "pteClear";
      hook(this.ro, addr, nr, this);
      this.flushReason = null;
    }
  }

  clearFullPtes(ptes: PteTableView, index: number, nr: number): void {
    this.live("clearFullPtes");
    if (!Number.isInteger(index) || !Number.isInteger(nr) || nr < 1 || index < 0 || index + nr > ptes.length)
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        "clearFullPtes",
        `entries [${index}, ${index + nr}) are not inside a table of ${ptes.length}`,
      );
    const addr = (ptes.base + index) * this.pageSize;
    if (this.sink !== null) this.sink({ type: "pteCleared", addr, nr });
    const aware = this.arch.clearPtes;
    const hook = this.pteClearHook;
    if (aware === null && hook === null) return;
    this.flushReason = "pteClear";
    if (aware !== null) aware(this.ro, ptes, index, nr, this);
    if (hook !== null) hook(this.ro, addr, nr, this);
    this.flushReason = null;
  }

  setPtes(ptes: PteTableView, index: number, nr: number): void {
    this.live("setPtes");
    const hook = this.arch.setPtes;
    if (hook !== null) hook(ptes, index, nr, this);
  }

  tlbRemoveTlbEntry(addr: number): void {
    this.live("tlbRemoveTlbEntry");
    this.adjustRange(addr, this.pageSize, "pte");
    this.clearedPtes = true;
  }

  tlbRemoveTlbEntries(addr: number, nr: number): void {
    this.live("tlbRemoveTlbEntries");
    this.adjustRange(addr, this.pageSize * nr, "pte");
    this.clearedPtes = true;
  }

  tlbRemovePmdTlbEntry(addr: number): void {
    this.live("tlbRemovePmdTlbEntry");
    this.adjustRange(addr, this.pageSize * this.arch.geometry.ptrsPerPte, "pmd");
    this.clearedPmds = true;
  }

  tlbRemovePudTlbEntry(addr: number): void {
    this.live("tlbRemovePudTlbEntry");
    this.adjustRange(
      addr,
      this.pageSize * this.arch.geometry.ptrsPerPte * this.arch.geometry.ptrsPerPmd,
      "pud",
    );
    this.clearedPuds = true;
  }

  // ---- rmap --------------------------------------------------------------------------------------
  tlbDelayRmap(): boolean {
    this.live("tlbDelayRmap");
    const arch = this.arch;
    const allows =
      !arch.noGather && (this.variant.storage === "contig-range" ? this.batchRmap : arch.delayRmap);
    return this.variant.steps.tlbDelayRmap(this, allows);
  }

  tlbBatchRmap(): boolean {
    return this.batchRmap;
  }

  removeRmap(pfn: number, nr: number): void {
    this.live("removeRmap");
    const head = this.checkRun("removeRmap", pfn, nr);
    this.removeRmapTrusted(head, pfn, nr);
  }

  removeRmapTrusted(head: number, pfn: number, nr: number): void {
    // Stryker disable next-line ConditionalExpression: live() checks finished itself; the guard only saves a call
    if (this.finished) this.live("removeRmap");
    this.rmapNow(head, pfn, nr);
    if (this.sink !== null)
      this.sink({
        type: "rmapRemoved",
        pfn,
        nr,
        delayed: false,
        primitive: this.variant.policy.immediateRmap,
      });
  }

  /**
   * The variant's immediate rmap removal of [pfn, pfn + nr) of the folio at `head`, counted: 6.5's
   * page_remove_rmap loop (one call per page), the series' folio_remove_rmap_range or 7.x's
   * folio_remove_rmap_ptes (one call). Emits no event (callers that have a sink do).
   */
  private rmapNow(head: number, pfn: number, nr: number): void {
    const fs = this.fs;
    const c = this.counters;
    const prim = this.immPrim;
    const locked = this.vmaLocked;
    if (prim === RMAP_FOLIO_PTES) {
      folioRemoveRmapPtesTrusted(fs, head, pfn, nr, locked);
      c.rmapCallsImmediate++;
    } else if (prim === RMAP_PAGE) {
      pageRemoveRmapPtesTrusted(fs, head, pfn, nr, locked);
      c.rmapCallsImmediate += nr;
    } else {
      folioRemoveRmapRangeTrusted(fs, head, pfn, nr, locked);
      c.rmapCallsImmediate++;
    }
    c.rmapPages += nr;
  }

  /**
   * __tlb_adjust_range(addr_j, PAGE_SIZE) for the nr PTEs from `addr` (their union) and cleared_ptes:
   * what tlb_remove_tlb_entries records for a run of cleared PTEs.
   */
  private adjustPteRange(addr: number, nr: number): void {
    // Stryker disable next-line EqualityOperator: at equality the assignment changes nothing
    if (addr < this.start) this.start = addr;
    const e = addr + nr * this.pageSize;
    // Stryker disable next-line EqualityOperator: at equality the assignment changes nothing
    if (e > this.end) this.end = e;
    this.clearedPtes = true;
  }

  private checkPfn(method: string, pfn: number): void {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= MAX_ENCODABLE_PFN)
      throw new GatherError("BAD_PFN", M, method, `pfn ${pfn} is not a page frame number`);
  }

  private checkRun(method: string, pfn: number, nr: number): number {
    this.checkPfn(method, pfn);
    if (!Number.isInteger(nr) || nr < 1) throw new GatherError("BAD_NR", M, method, `nr ${nr} must be >= 1`);
    let head: number;
    try {
      head = this.mem.folioHead(pfn);
    } catch (cause) {
      throw new GatherError("BAD_PFN", M, method, `pfn ${pfn} is outside physical memory`, { cause });
    }
    if (pfn + nr > head + this.mem.folioNrPages(head))
      throw new GatherError(
        "NR_OUTSIDE_FOLIO",
        M,
        method,
        `[${pfn}, ${pfn + nr}) leaves the folio at ${head} (${this.mem.folioNrPages(head)} pages)`,
      );
    return head;
  }

  // ---- fused zap entry ---------------------------------------------------------------------------
  zapFastPath(): boolean {
    return this.fastZap;
  }

  zapPresentTrusted(head: number, pfn: number, nr: number, addr: number, rmapNow: boolean): boolean {
    // Stryker disable next-line ConditionalExpression: live() checks finished itself; the guard only saves a call
    if (this.finished) this.live("ptepGetAndClear");
    // ptepGetAndClear: no sink, asm-generic pte_clear (fastZap) — nothing to do.
    this.adjustPteRange(addr, nr);
    if (rmapNow) this.rmapNow(head, pfn, nr);
    // queue(): end > 0 was just ensured (or fullmm's ULONG_MAX); the storage exists (fastZap).
    let full: boolean;
    const en = this.encNr;
    if (en !== null) full = en.add(pfn, nr, false);
    else {
      if (nr !== 1)
        throw new GatherError(
          "UNSUPPORTED",
          M,
          "removeFolioPages",
          `${this.variant.name} queues one page per call (policy.walkBatchesFolioPtes is false)`,
        );
      const ep = this.encPage;
      if (ep !== null) full = ep.add(pfn, false);
      else full = (this.contig as ContigRangeStorage).addHead(pfn, head);
    }
    if (full) this.forced((this.storage as Storage).fullReason);
    return full;
  }

  zapSinglesRunTrusted(pfns: Int32Array, nr: number, addr: number): number {
    // Stryker disable next-line ConditionalExpression: live() checks finished itself; the guard only saves a call
    if (this.finished) this.live("ptepGetAndClear");
    const en = this.encNr;
    if (en === null || this.immPrim !== RMAP_FOLIO_PTES || this.vmaLocked) {
      for (let j = 0; j < nr; j++) {
        const pfn = pfns[j];
        if (this.zapPresentTrusted(pfn, pfn, 1, addr + j * this.pageSize, true)) return -(j + 1);
      }
      return nr;
    }
    // Queue first: the rmap removals below touch no gather state, so the order within the run is
    // immaterial; doing them after the queue knows where it stops keeps each loop over locals.
    const k = en.addSinglesRun(pfns, nr);
    this.adjustPteRange(addr, k);
    folioRemoveRmapPteListTrusted(this.fs, pfns, k);
    const c = this.counters;
    c.rmapCallsImmediate += k;
    c.rmapPages += k;
    if (en.runFull) {
      this.forced(en.fullReason);
      return -k;
    }
    return k;
  }

  zapPresentRunPerPageTrusted(head: number, pfn: number, nr: number, addr: number, rmapNow: boolean): number {
    // Stryker disable next-line ConditionalExpression: live() checks finished itself; the guard only saves a call
    if (this.finished) this.live("ptepGetAndClear");
    const ep = this.encPage;
    const cr = this.contig;
    let k: number;
    let full: boolean;
    if (ep !== null) {
      k = ep.addRun(pfn, nr);
      full = ep.runFull;
    } else if (cr !== null) {
      k = cr.addRunHead(pfn, head, nr);
      full = cr.runFull;
    } else {
      // encoded-nr-pages under a per-PTE walk: page by page.
      for (let j = 0; j < nr; j++)
        if (this.zapPresentTrusted(head, pfn + j, 1, addr + j * this.pageSize, rmapNow)) return -(j + 1);
      return nr;
    }
    this.adjustPteRange(addr, k);
    // A per-PTE walk: k rmap calls of one page each (6.5's page loop is already one call per page).
    if (rmapNow) {
      // Stryker disable next-line ConditionalExpression: k one-page page_remove_rmap calls equal one k-page call (same state and counters)
      if (this.immPrim === RMAP_PAGE) this.rmapNow(head, pfn, k);
      else for (let j = 0; j < k; j++) this.rmapNow(head, pfn + j, 1);
    }
    if (full) {
      this.forced((this.storage as Storage).fullReason);
      return -k;
    }
    return k;
  }

  // ---- queueing ----------------------------------------------------------------------------------
  private queue(method: string, pfn: number, nr: number, delay: boolean): boolean {
    // Stryker disable next-line ConditionalExpression: live() checks finished itself; the guard only saves a call
    if (this.finished) this.live(method);
    if (this.end === 0)
      throw new GatherError(
        "NO_RANGE",
        M,
        method,
        "no TLB range recorded before queueing (VM_BUG_ON(!tlb->end))",
      );
    const storage = this.storage;
    if (storage === null) return this.freeOnQueue(method, pfn, nr, delay);
    if (delay && !this.delayedRmap && storage.kind !== "contig-range")
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        method,
        "delay_rmap without tlbDelayRmap() having set delayed_rmap",
      );
    if (this.sink !== null) this.sink({ type: "pageQueued", pfn, nr, delayRmap: delay });
    let full: boolean;
    if (storage instanceof EncodedNrPagesStorage) full = storage.add(pfn, nr, delay);
    else if (storage instanceof EncodedPageStorage) full = storage.add(pfn, delay);
    else full = storage.add(pfn);
    if (full) this.forced(storage.fullReason);
    return full;
  }

  private forced(reason: ForcedFlushReason): void {
    this.counters.forcedFlushes[reason]++;
    if (this.sink !== null) this.sink({ type: "forcedFlush", reason });
  }

  /** NO_GATHER (s390): free_page_and_swap_cache / free_pages_and_swap_cache of one entry, now. */
  private freeOnQueue(method: string, pfn: number, nr: number, delay: boolean): boolean {
    if (delay)
      throw new GatherError(
        "INVARIANT",
        M,
        method,
        "a NO_GATHER arch cannot delay rmap removal (s390 WARN_ON)",
      );
    const mem = this.mem;
    const head = mem.folioHead(pfn);
    if (this.sink !== null) {
      this.sink({ type: "pageQueued", pfn, nr, delayRmap: false });
      this.sink({ type: "pagesFreed", pfns: [pfn], nrs: [nr] });
    }
    if (this.swap !== null) {
      this.swap.freeSwapCache(head);
      this.counters.freeSwapCacheCalls++;
    }
    if (nr === 1) mem.folioPut(head);
    else {
      this.oneHead[0] = head;
      this.oneRef[0] = nr;
      mem.foliosPutRefs(this.oneHead, this.oneRef, 1);
    }
    this.counters.releaseCalls++;
    this.counters.pagesQueued += nr;
    this.counters.pagesReleased += nr;
    this.counters.pagesFreedOnQueue += nr;
    return false;
  }

  removePage(pfn: number, delayRmap: boolean): boolean {
    this.checkPfn("removePage", pfn);
    return this.queue("removePage", pfn, 1, delayRmap);
  }

  removePageTrusted(pfn: number, delayRmap: boolean): boolean {
    return this.queue("removePage", pfn, 1, delayRmap);
  }

  removePageSize(pfn: number, delayRmap: boolean, pageSize: number): boolean {
    this.checkPfn("removePageSize", pfn);
    if (!Number.isInteger(pageSize) || pageSize < this.pageSize || (pageSize & (pageSize - 1)) !== 0)
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        "removePageSize",
        `page size ${pageSize} is not a power-of-two page size`,
      );
    return this.queue("removePageSize", pfn, 1, delayRmap);
  }

  removeFolioPages(pfn: number, nr: number, delayRmap: boolean): boolean {
    this.checkRun("removeFolioPages", pfn, nr);
    if (nr > 1 && this.storage !== null && this.storage.kind !== "encoded-nr-pages")
      throw new GatherError(
        "UNSUPPORTED",
        M,
        "removeFolioPages",
        `${this.variant.name} queues one page per call (policy.walkBatchesFolioPtes is false)`,
      );
    return this.queue("removeFolioPages", pfn, nr, delayRmap);
  }

  removeFolioPagesTrusted(pfn: number, nr: number, delayRmap: boolean): boolean {
    if (nr > 1 && this.storage !== null && this.storage.kind !== "encoded-nr-pages")
      throw new GatherError(
        "UNSUPPORTED",
        M,
        "removeFolioPages",
        `${this.variant.name} queues one page per call (policy.walkBatchesFolioPtes is false)`,
      );
    return this.queue("removeFolioPages", pfn, nr, delayRmap);
  }

  tlbRemovePage(pfn: number): void {
    if (this.removePage(pfn, false)) this.flushMmu("batchFull");
  }

  tlbRemovePageSize(pfn: number, pageSize: number): void {
    if (this.removePageSize(pfn, false, pageSize)) this.flushMmu("batchFull");
  }

  // ---- PTL, rmaps, flushes ------------------------------------------------------------------------
  enterPtl(): void {
    this.live("enterPtl");
    this.underPtl = true;
  }

  leavePtl(): void {
    this.live("leavePtl");
    this.underPtl = false;
  }

  discardRmaps(): void {
    this.live("discardRmaps");
    if (this.storage !== null) this.storage.discardRmaps();
  }

  flushRmaps(): void {
    this.live("flushRmaps");
    if (!this.underPtl)
      throw new GatherError(
        "NOT_UNDER_PTL",
        M,
        "flushRmaps",
        "tlb_flush_rmaps must run before the PTL is dropped",
      );
    this.variant.steps.flushRmaps(this);
  }

  flushMmuTlbonly(why: TlbFlushReason = "caller"): void {
    this.live("flushMmuTlbonly");
    this.checkReason("flushMmuTlbonly", why);
    this.tlbFlushMmuTlbonlyFor(why);
  }

  flushMmu(why: TlbFlushReason = "caller"): void {
    this.live("flushMmu");
    this.checkReason("flushMmu", why);
    this.counters.flushMmuCalls++;
    const prev = this.why;
    this.why = why;
    this.variant.steps.flushMmu(this);
    this.why = prev;
  }

  finish(): void {
    this.live("finish");
    const nested = this.mm.tlbFlushPending > 1;
    // "nested" once the nested-flush rule (forceFlushAll) runs.
    this.why = "finish";
    this.variant.steps.finishMmu(this, this.flushMmuBound);
    this.why = "caller";
    this.finished = true;
    this.underPtl = false;
    if (this.sink !== null) this.sink({ type: "gatherFinished", nested });
  }

  // ---- GatherStageOps -----------------------------------------------------------------------------
  tlbFlushMmuTlbonly(): void {
    if (!(this.freedTables || this.clearedPtes || this.clearedPmds || this.clearedPuds || this.clearedP4ds)) {
      this.counters.tlbFlushSkipped++;
      if (this.sink !== null) this.sink({ type: "tlbFlushSkipped" });
      return;
    }
    this.counters.tlbFlushes++;
    this.flushReason = this.why;
    this.arch.tlbFlush(this.ro, this);
    this.flushReason = null;
    this.resetRange();
  }

  tlbTableFlush(): void {
    const batch = this.tableBatch;
    if (batch === null) return;
    this.tlbTableInvalidate();
    const n = this.tableNr;
    this.tableNr = 0;
    this.tableBatch = null;
    if (this.arch.tableFree !== "rcu") {
      if (this.sink !== null)
        this.sink({ type: "tablesFreed", pfns: Array.from(batch.subarray(0, n)), viaRcu: false });
      for (let i = 0; i < n; i++) this.putTable(batch[i]);
      return;
    }
    // tlb_remove_table_free → call_rcu: the tables go once the grace period is over (counted now, when
    // they leave the gather; the callback may run after tlb_finish_mmu).
    this.counters.rcuCalls++;
    this.counters.tablesFreed += n;
    const pfns = batch.slice(0, n);
    const mem = this.mem;
    const sink = this.sink;
    this.tableSync.callRcu(() => {
      if (sink !== null) sink({ type: "tablesFreed", pfns: Array.from(pfns), viaRcu: true });
      for (let i = 0; i < pfns.length; i++) mem.folioPut(pfns[i]);
    });
  }

  private tlbTableInvalidate(): void {
    if (this.arch.tableInvalidate) this.tlbFlushMmuTlbonlyFor("tableFree");
  }

  /** `tlb_flush_mmu_tlbonly` with `why` as the reason the arch hook sees, restored afterwards. */
  private tlbFlushMmuTlbonlyFor(why: TlbFlushReason): void {
    const prev = this.why;
    this.why = why;
    this.tlbFlushMmuTlbonly();
    this.why = prev;
  }

  private putTable(pfn: number): void {
    this.mem.folioPut(pfn);
    this.counters.tablesFreed++;
  }

  tlbBatchPagesFlush(): void {
    if (this.storage !== null) this.storage.pagesFlush();
  }

  tlbFlushRmapsStorage(): void {
    if (this.storage === null) return;
    const calls = this.storage.flushRmaps();
    if (calls > 0) {
      this.counters.rmapFlushes++;
      if (this.sink !== null) this.sink({ type: "rmapsFlushed", entries: calls });
    }
  }

  mmTlbFlushNested(): boolean {
    return this.mm.tlbFlushPending > 1;
  }

  forceFlushAll(): void {
    this.fullmm = true;
    this.resetRange();
    this.freedTables = true;
    this.counters.nestedFlushes++;
    this.forced("nestedGather");
    if (this.why === "finish") this.why = "nested";
  }

  tlbBatchListFree(): void {
    if (this.storage !== null) this.storage.listFree();
  }

  decTlbFlushPending(): void {
    this.mm.tlbFlushPending--;
  }

  setDelayedRmap(): void {
    this.delayedRmap = true;
  }

  tlbRemoveTable(tablePfn: number): void {
    if (this.tableBatch === null) {
      if (!this.tryAllocBatch("tables")) {
        // tlb_remove_table_one: invalidate, sync with walkers, free this one table.
        this.forced("tableAllocFailed");
        this.tlbTableInvalidate();
        this.counters.tableSyncOne++;
        this.tableSync.syncOne();
        if (this.sink !== null) this.sink({ type: "tablesFreed", pfns: [tablePfn], viaRcu: false });
        this.putTable(tablePfn);
        return;
      }
      if (this.tableStore === null) this.tableStore = new Int32Array(this.tableMax);
      this.tableBatch = this.tableStore;
      this.tableNr = 0;
      this.counters.tableBatchAllocated++;
      if (this.sink !== null) this.sink({ type: "batchAllocated", what: "tables", batchCount: 1 });
    }
    this.tableBatch[this.tableNr++] = tablePfn;
    if (this.tableNr === this.tableMax) {
      this.forced("tableBatchFull");
      this.tlbTableFlush();
    }
  }

  tlbResetRange(): void {
    this.resetRange();
  }

  tlbAdjustRange(addr: number, size: number): void {
    this.checkSpan("tlbAdjustRange", addr, size);
    this.adjustRange(addr, size, null);
  }

  tlbFlushLevelRange(level: TlbLevel, addr: number, size: number): void {
    this.checkSpan("tlbFlushLevelRange", addr, size);
    if (level === "pte") this.clearedPtes = true;
    else if (level === "pmd") this.clearedPmds = true;
    else if (level === "pud") this.clearedPuds = true;
    else if (level === "p4d") this.clearedP4ds = true;
    else
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        "tlbFlushLevelRange",
        `unknown level ${JSON.stringify(level)}`,
      );
    this.adjustRange(addr, size, level);
  }

  setFreedTables(): void {
    this.freedTables = true;
  }

  private checkSpan(method: string, addr: number, size: number): void {
    if (
      !Number.isSafeInteger(addr) ||
      !Number.isSafeInteger(size) ||
      addr < 0 ||
      size <= 0 ||
      addr + size > this.taskSize
    )
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        method,
        `[${addr}, ${addr} + ${size}) is not a non-empty range of user addresses`,
      );
  }

  freeTableNow(tablePfn: number): void {
    if (this.sink !== null) this.sink({ type: "tablesFreed", pfns: [tablePfn], viaRcu: false });
    this.putTable(tablePfn);
  }

  // ---- StorageHost --------------------------------------------------------------------------------
  tryAllocBatch(what: "pages" | "tables"): boolean {
    const ok = this.alloc(this.allocOrdinal++, what);
    if (!ok) {
      if (what === "pages") this.counters.batchAllocFailed++;
      else this.counters.tableBatchAllocFailed++;
      if (this.sink !== null) this.sink({ type: "batchAllocFailed", what });
    }
    return ok;
  }

  // ---- TlbOps -------------------------------------------------------------------------------------
  flushRange(
    start: number,
    end: number,
    stride: number,
    walkCaches: boolean,
    cpus?: readonly number[],
  ): void {
    this.invalidateRange(start, end, stride, walkCaches, this.checkCpus("flushRange", cpus));
  }

  private invalidateRange(
    start: number,
    end: number,
    stride: number,
    walkCaches: boolean,
    targets: readonly number[] | null,
  ): void {
    this.counters.tlbFlushRange++;
    this.counters.tlbFlushRangeEntries += Math.ceil((end - start) / stride);
    if (this.sink !== null)
      this.sink({
        type: "tlbFlushed",
        kind: "range",
        reason: this.flushReason ?? this.why,
        cpus: targets,
        start,
        end,
        stride,
        walkCaches,
      });
    if (this.listener !== null)
      this.listener.tlbInvalidate(this.mm.id, "range", start, end, stride, walkCaches, targets);
  }

  flushMm(walkCaches: boolean, cpus?: readonly number[]): void {
    this.invalidateMm(walkCaches, this.checkCpus("flushMm", cpus));
  }

  private invalidateMm(walkCaches: boolean, targets: readonly number[] | null): void {
    this.counters.tlbFlushMm++;
    if (this.sink !== null)
      this.sink({
        type: "tlbFlushed",
        kind: "mm",
        reason: this.flushReason ?? this.why,
        cpus: targets,
        start: 0,
        end: 0,
        stride: 0,
        walkCaches,
      });
    if (this.listener !== null) this.listener.tlbInvalidate(this.mm.id, "mm", 0, 0, 0, walkCaches, targets);
  }

  flushTlbFunc(
    start: number,
    end: number,
    stride: number,
    walkCaches: boolean,
    cpus: readonly number[],
  ): void {
    if (cpus === undefined)
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        "flushTlbFunc",
        "cpus is required: the CPUs flush_tlb_func runs on (the initiating one included)",
      );
    const targets = this.checkCpus("flushTlbFunc", cpus)!;
    const c = this.counters;
    const self = this.cpu;
    for (let i = 0; i < targets.length; i++) if (targets[i] !== self) c.tlbIpis++;
    c.tlbCpusTargeted += targets.length;
    const lazy = this.mm.lazyCpus;
    for (let i = 0; i < lazy.length; i++) if (!targets.includes(lazy[i])) c.tlbLazyCpusSkipped++;
    if (end === TLB_FLUSH_ALL) this.invalidateMm(walkCaches, targets);
    else this.invalidateRange(start, end, stride, walkCaches, targets);
  }

  invlpgb(start: number, end: number, stride: number, walkCaches: boolean): void {
    if (
      !Number.isFinite(start) ||
      !Number.isFinite(end) ||
      start < 0 ||
      end <= start ||
      !(stride > 0) ||
      (end !== TLB_FLUSH_ALL && end > this.taskSize)
    )
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        "invlpgb",
        `[${start}, ${end}) with stride ${stride} is not a range of user addresses (end TLB_FLUSH_ALL: the whole PCID)`,
      );
    this.counters.invlpgb++;
    this.invlpgbPending = true;
    if (this.sink !== null)
      this.sink({
        type: "tlbFlushed",
        kind: "invlpgb",
        reason: this.flushReason ?? this.why,
        cpus: null,
        start,
        end,
        stride,
        walkCaches,
      });
    if (this.listener !== null)
      this.listener.tlbInvalidate(this.mm.id, "invlpgb", start, end, stride, walkCaches, null);
  }

  tlbsync(): void {
    this.counters.tlbsync++;
    if (this.invlpgbPending) this.counters.tlbCpusTargeted += this.mm.cpumask.length;
    this.invlpgbPending = false;
  }

  /** A CPU set an arch passed: null (all) when omitted; each must be in mm_cpumask. */
  private checkCpus(method: string, cpus: readonly number[] | undefined): readonly number[] | null {
    if (cpus === undefined) return null;
    const mask = this.mm.cpumask;
    if (!Array.isArray(cpus) || !cpus.every((c) => mask.includes(c)))
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        method,
        `cpus ${JSON.stringify(cpus)} must be CPUs of the mm's cpumask [${mask.join(", ")}]`,
      );
    return cpus.slice();
  }

  ipte(addr: number, nr: number): void {
    this.counters.ipte += nr;
    const end = addr + nr * this.pageSize;
    if (this.sink !== null)
      this.sink({
        type: "tlbFlushed",
        kind: "ipte",
        reason: this.flushReason ?? this.why,
        cpus: null,
        start: addr,
        end,
        stride: this.pageSize,
        walkCaches: false,
      });
    if (this.listener !== null)
      this.listener.tlbInvalidate(this.mm.id, "ipte", addr, end, this.pageSize, false, null);
  }

  invalidateLazy(nr: number): void {
    this.counters.lazyInvalidations += nr;
    this.mm.flushMm = true;
  }

  idte(): void {
    this.counters.idte++;
    this.mm.flushMm = false;
    if (this.sink !== null)
      this.sink({
        type: "tlbFlushed",
        kind: "idte",
        reason: this.flushReason ?? this.why,
        cpus: null,
        start: 0,
        end: 0,
        stride: 0,
        walkCaches: true,
      });
    if (this.listener !== null) this.listener.tlbInvalidate(this.mm.id, "idte", 0, 0, 0, true, null);
  }

  setFlushMm(value: boolean): void {
    this.mm.flushMm = value;
  }

  tlbiIssued(vaOps: number, rangeOps: number): void {
    if (!Number.isInteger(vaOps) || !Number.isInteger(rangeOps) || vaOps < 0 || rangeOps < 0)
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        "tlbiIssued",
        `TLBI counts must be integers >= 0, got ${vaOps} and ${rangeOps}`,
      );
    this.counters.tlbiVaOps += vaOps;
    this.counters.tlbiRangeOps += rangeOps;
  }

  tlbiLimitExcess(): void {
    this.counters.tlbiLimitExcess++;
  }

  contpteFold(blocks: number): void {
    this.checkCount("contpteFold", blocks);
    this.counters.contpteFolds += blocks;
  }

  contpteConvert(fold: boolean, ptes: number, vaOps: number, rangeOps: number): void {
    this.checkCount("contpteConvert", ptes);
    this.tlbiIssued(vaOps, rangeOps);
    const c = this.counters;
    if (fold) c.contpteFolds++;
    else c.contpteUnfolds++;
    c.contpteConvertedPtes += ptes;
    c.contpteConvertTlbis += vaOps + rangeOps;
  }

  contpteClear(blocks: number): void {
    this.checkCount("contpteClear", blocks);
    this.counters.contpteBatchedClears++;
    this.counters.contpteBlocksCleared += blocks;
  }

  private checkCount(method: string, n: number): void {
    if (!Number.isInteger(n) || n < 0)
      throw new GatherError("BAD_ARGUMENT", M, method, `count must be an integer >= 0, got ${n}`);
  }

  invalidateSecondaryTlbs(start: number, end: number): void {
    if (!this.mm.hasNotifiers) return; // mm_has_notifiers() is false: the call is a no-op
    if (!Number.isFinite(start) || !Number.isFinite(end) || start < 0 || end < start)
      throw new GatherError(
        "BAD_ARGUMENT",
        M,
        "invalidateSecondaryTlbs",
        `range [${start}, ${end}) must be 0 <= start <= end (end TLB_FLUSH_ALL for everything)`,
      );
    if (this.sink !== null)
      this.sink({ type: "secondaryTlbsInvalidated", reason: this.flushReason ?? this.why, start, end });
    if (this.listener?.secondaryTlbInvalidate !== undefined)
      this.listener.secondaryTlbInvalidate(this.mm.id, start, end);
  }

  // ---- page-table freeing ---------------------------------------------------------------------------
  private freeTlb(method: string, tablePfn: number, addr: number, level: TlbLevel): void {
    this.live(method);
    this.checkPfn(method, tablePfn);
    this.adjustRange(addr, this.pageSize, level === "pte" ? "pmd" : level === "pmd" ? "pud" : "p4d");
    if (level === "pte") this.clearedPmds = true;
    else if (level === "pmd") this.clearedPuds = true;
    else if (level === "pud") this.clearedP4ds = true;
    this.freedTables = true;
    this.arch.tableFreed(this.ro, level, this);
    this.counters.tablesQueued++;
    if (this.sink !== null) this.sink({ type: "tableQueued", pfn: tablePfn, level });
    this.variant.steps.removeTable(this, tablePfn);
  }

  pteFreeTlb(tablePfn: number, addr: number): void {
    this.freeTlb("pteFreeTlb", tablePfn, addr, "pte");
  }
  pmdFreeTlb(tablePfn: number, addr: number): void {
    this.freeTlb("pmdFreeTlb", tablePfn, addr, "pmd");
  }
  pudFreeTlb(tablePfn: number, addr: number): void {
    this.freeTlb("pudFreeTlb", tablePfn, addr, "pud");
  }
  p4dFreeTlb(tablePfn: number, addr: number): void {
    this.freeTlb("p4dFreeTlb", tablePfn, addr, "p4d");
  }

  // ---- reporting ----------------------------------------------------------------------------------
  report(): CountersReport {
    return {
      gather: this.counters,
      folio: this.mem.counters,
      swap: this.swap === null ? null : this.swap.counters,
    };
  }

  resetCounters(): void {
    const fresh = createGatherCounters();
    Object.assign(this.counters, fresh);
    this.counters.forcedFlushes = fresh.forcedFlushes;
  }
}

/** True for a gather made by {@link createMmuGather} (it carries the trusted entry points). */
export function isGatherImpl(tlb: MmuGather): tlb is MmuGather & MmuGatherTrusted {
  return tlb instanceof MmuGatherImpl;
}

/**
 * `tlb_gather_mmu` (fullmm false) / `tlb_gather_mmu_fullmm` (fullmm true): a fresh gather on `mm`.
 * Increments `mm.tlbFlushPending`; `finish()` decrements it.
 */

export function createMmuGather(options: MmuGatherOptions): MmuGather {
  return new MmuGatherImpl(options);
}
