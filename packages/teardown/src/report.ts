// Models: the numbers a kernel engineer would collect around one teardown (perf counters, the
// "Bad rss-counter state" check of check_mm, /proc/vmstat deltas) as one JSON-serialisable object.
// The final-state checks leave the zero page, the huge zero folio and device memory (VM_PFNMAP PTEs
// of pfns above RAM) out of rss and mapcounts (the kernel never counts them) and check
// huge_zero_refcount: the shrinker's reference plus one per live mm with MMF_HUGE_ZERO_FOLIO.
// Omits: nothing the model counts.
//
// Every counter in a report is a teardown-phase count. The gather and walk counters belong to the
// operation already; the folio, swap and CPU layers count for the machine's whole life (the workload
// build included), so `runBuilt` snapshots them just before the operation (`snapshotLayers`) and the
// report carries end − start for every one of their fields.
import type { FolioCounters } from "@mmgather/folio";
import { PG } from "@mmgather/folio";
import type { CostProfile, ForcedFlushCounters, GatherCounters } from "@mmgather/mmu-gather";
import type { SwapCounters } from "@mmgather/swapcache";
import type { Violation } from "./checker.js";
import { type CostEstimate, estimateCost } from "./cost.js";
import type { FlushShare } from "./cpu-tlb.js";
import type { CollapseCounters } from "./khugepaged.js";
import type { KvmCounters } from "./kvm.js";
import type { Machine } from "./machine.js";
import type { MigrateCounters } from "./migrate.js";
import type { Mm } from "./mm.js";
import type { NumaScanCounters } from "./numa.js";
import type { OpResult } from "./ops.js";
import { isMigrationPte, migrationPtePfn, PTE_PRESENT, pmdTableId, ptePfn, pteSwapEntry } from "./pte.js";
import type { SwapoffCounters } from "./swapoff.js";
import type { WritebackCounters } from "./writeback.js";
import type { WalkCounters } from "./zap/context.js";

/** Final-state checks after the operation. Each is true when it holds. */
export interface FinalStateChecks {
  /** After exit: every rss counter of the exited mm is zero ("Bad rss-counter state" otherwise). */
  readonly rssZeroAfterExit: boolean;
  /** Every live mm's rss counters equal a recount of its page tables. */
  readonly rssMatchesPageTables: boolean;
  /** Every anon folio still allocated is mapped by a live mm or held by the swap cache. */
  readonly anonFoliosAccounted: boolean;
  /** Every page-cache folio has refcount = pages (cache refs) + mappings + swap/other refs it should have. */
  readonly pageCacheIntact: boolean;
  /** Every swap slot in use is referenced by a swap PTE of a live mm or the swap cache. */
  readonly noLeakedSwapSlots: boolean;
  /** PhysMem and SwapSpace `checkInvariants()` pass; every allocated folio is accounted for. */
  readonly statisticsConsistent: boolean;
  /** Messages for every failed check. */
  readonly problems: readonly string[];
}

/** The report of one run. JSON-serialisable (no Infinity, no functions). */
export interface TeardownReport {
  /** Operation: "exit", "munmap" or "madvise". */
  readonly op: string;
  /** Gather variant name. */
  readonly variant: string;
  /** Zap walk name. */
  readonly walk: string;
  /** Arch adapter name. */
  readonly arch: string;
  /** Base pages whose mapping was removed (present PTEs cleared + pages of zapped huge PMDs). */
  readonly pagesTornDown: number;
  /** Pages returned to the allocator during the operation (data, tables, batch pages). */
  readonly pagesFreed: number;
  /** Folios returned to the allocator during the operation (data folios and page-table pages). */
  readonly foliosFreed: number;
  /**
   * Data folios returned to the allocator: `foliosFreed` minus `pageTablePagesFreed` (anon, file,
   * shmem folios whose last reference the operation dropped).
   */
  readonly dataFoliosFreed: number;
  /**
   * Page-table pages returned to the allocator: tables freed through the gather (`gather.tablesFreed`),
   * deposited PTE tables (`walk.depositsFreed`) and the PGD at exit (`walk.pgdsFreed`).
   */
  readonly pageTablePagesFreed: number;
  /** Swap PTEs zapped. */
  readonly swapEntriesZapped: number;
  /** Forced flushes by reason: the walk's (batchFull, dirtyShared) and the gather's own reasons. */
  readonly forcedFlushes: { readonly batchFull: number; readonly dirtyShared: number } & ForcedFlushCounters;
  /** TLB flushes by kind (as counted by the gather). */
  readonly tlbFlushes: {
    readonly range: number;
    readonly mm: number;
    readonly ipte: number;
    readonly idte: number;
    /** x86 INVLPGB instructions (`gather.invlpgb`). */
    readonly invlpgb: number;
    /** x86 TLBSYNC instructions (`gather.tlbsync`). */
    readonly tlbsync: number;
    readonly skipped: number;
  };
  /**
   * How x86 flushes reached the other CPUs (as counted by the gather; all 0 on other arches): IPIs sent
   * (`gather.tlbIpis`), CPUs reached by IPI, locally or by INVLPGB broadcast (`gather.tlbCpusTargeted`),
   * lazy-TLB CPUs left out (`gather.tlbLazyCpusSkipped`).
   */
  readonly shootdown: {
    readonly ipis: number;
    readonly cpusTargeted: number;
    readonly lazyCpusSkipped: number;
  };
  /** Extra gather batch pages allocated. */
  readonly batchPagesAllocated: number;
  /** Page-table-lock acquisitions during the operation. */
  readonly ptlAcquisitions: number;
  /** Gathers used. */
  readonly gathers: number;
  /** Counters of every layer, teardown phase only (folio / swap / cpu: end minus start of the operation). */
  readonly counters: {
    readonly gather: GatherCounters;
    readonly folio: FolioCounters;
    readonly swap: SwapCounters | null;
    readonly walk: WalkCounters;
    /** CPU/TLB model: invalidations received by kind, entries dropped, remote CPUs flushed; null without CPUs. */
    readonly cpu: CpuCounters | null;
  };
  /** Estimated kernel time: Σ counter × the cost profile's ns per primitive (see `COST_TERMS`). */
  readonly estimate: CostEstimate;
  /** Safety violations found by the checker (empty when none or when the checker is off). */
  readonly violations: readonly Violation[];
  /** Final-state checks. */
  readonly finalState: FinalStateChecks;
  /** Wall-clock nanoseconds the simulator spent in the teardown phase alone. */
  readonly simWallNs: number;
  /**
   * What a concurrent writeback thread did (`concurrentOp.kind` "writeback"), or null. Its TLB flushes
   * are its own: `counters.cpu` and the estimate leave them out.
   */
  readonly writeback: WritebackCounters | null;
  /**
   * What a concurrent swapoff did (`concurrentOp.kind` "swapoff"), or null. Its swap-ins and swap-cache
   * frees are part of `counters.folio` and `counters.swap` (they share those layers with the teardown).
   */
  readonly swapoff: SwapoffCounters | null;
  /**
   * What a concurrent NUMA hinting scan did (`concurrentOp.kind` "numa"), or null. Its PMD flushes are
   * its own: `counters.cpu` and the estimate leave them out.
   */
  readonly numa: NumaScanCounters | null;
  /**
   * What a concurrent migration did (`concurrentOp.kind` "migrate"), or null. Its TLB flushes are its
   * own (`counters.cpu` and the estimate leave them out); its isolations, new folios, rmap changes and
   * frees are part of `counters.folio` (it shares that layer with the teardown).
   */
  readonly migrate: MigrateCounters | null;
  /**
   * What khugepaged did next to the operation (`concurrentOp.kind` "khugepaged"), or null. Its TLB
   * flushes are its own (`counters.cpu` and the estimate leave them out); its rmap removals and the
   * page tables it frees are part of `counters.folio`.
   */
  readonly khugepaged: CollapseCounters | null;
  /**
   * What a KVM guest on the target mm (`ScenarioSpec.kvm`) saw during the run — notifier calls, sptes
   * zapped, vCPU faults and their retries —, or null without a guest.
   */
  readonly kvm: KvmCounters | null;
  /**
   * Contiguous PTEs, on an arch that maps them (`ArchTlb.contPte`, arm64 contpte), or null: what the
   * operation's batched clears, unfolds and folds did — the `contpte*` gather counters, whose
   * `contpte_convert` PTEs and TLBIs the estimate prices.
   */
  readonly contpte: ContPteReport | null;
  /** Model bytes of the machine (memory, swap, tables, CPUs) at the start of the teardown. */
  readonly stateBytes: number;
  /** `stateBytes` divided by the pages mapped when the teardown started (0 if none). */
  readonly stateBytesPerMappedPage: number;
}

/** What a teardown did to contiguous-PTE blocks (`TeardownReport.contpte`). */
export interface ContPteReport {
  /** `CONT_PTES` of the arch. */
  readonly contPtes: number;
  /** Batched clears (`contpte_[get_and_]clear_full_ptes`). */
  readonly batchedClears: number;
  /** Blocks those batched clears cleared whole, without unfolding. */
  readonly blocksCleared: number;
  /** Blocks unfolded by `contpte_convert` (a clear covering part of a block). */
  readonly unfolds: number;
  /** Blocks given the contiguous bit during the operation (a THP split in the zap, a completed block). */
  readonly folds: number;
  /** TLBIs the unfolds' and folds' flushes issued. */
  readonly convertTlbis: number;
}

/** Counters of the CPU/TLB model. */
export interface CpuCounters {
  readonly invalidations: Record<string, number>;
  readonly entriesInvalidated: number;
  readonly remoteCpuFlushes: number;
  /** Invalidation commands devices sharing the page tables received (`SecondaryTlbs.invalidations`; 0 without devices). */
  readonly secondaryTlbInvalidations: number;
}

/** Machine-lifetime counters of the folio, swap and CPU layers at one instant. */
export interface LayerSnapshot {
  readonly folio: FolioCounters;
  readonly swap: SwapCounters | null;
  readonly cpu: CpuCounters | null;
}

/** Copies the machine-wide counters (taken just before an operation, subtracted after it). */
export function snapshotLayers(machine: Machine): LayerSnapshot {
  const t = machine.tlbs;
  return {
    folio: { ...machine.mem.counters },
    swap: machine.swap !== null ? { ...machine.swap.counters } : null,
    cpu:
      t !== null
        ? {
            invalidations: { ...t.invalidations },
            entriesInvalidated: t.entriesInvalidated,
            remoteCpuFlushes: t.remoteCpuFlushes,
            secondaryTlbInvalidations: t.secondary?.invalidations ?? 0,
          }
        : null,
  };
}

/** The teardown's share of the CPU counters: the flushes of concurrent actors (`shares`) taken out. */
function withoutShares(cpu: CpuCounters, shares: readonly (FlushShare | null)[]): CpuCounters {
  let out = cpu;
  for (const f of shares) {
    if (f === null) continue;
    out = {
      invalidations:
        f.mmFlushes === undefined
          ? { ...out.invalidations, range: (out.invalidations.range ?? 0) - f.tlbFlushes }
          : {
              ...out.invalidations,
              range: (out.invalidations.range ?? 0) - f.tlbFlushes,
              mm: (out.invalidations.mm ?? 0) - f.mmFlushes,
            },
      entriesInvalidated: out.entriesInvalidated - f.entriesInvalidated,
      remoteCpuFlushes: out.remoteCpuFlushes - f.remoteCpuFlushes,
      secondaryTlbInvalidations: out.secondaryTlbInvalidations - f.secondaryTlbInvalidations,
    };
  }
  return out;
}

/** What counter record `now` gained since `before` (field by field, nested records too). */
export function delta<T extends object>(now: T, before: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(now)) {
    const b = (before as Record<string, unknown>)[k];
    out[k] = typeof v === "number" ? v - (b as number) : delta(v as object, b as object);
  }
  return out as T;
}

const TABLE_LEVELS = ["pte", "pmd", "pud"];

function flatten(obj: unknown, prefix: string, out: Record<string, number>): void {
  if (obj === null || typeof obj !== "object") return;
  if (Array.isArray(obj)) {
    obj.forEach((v, i) => {
      if (typeof v === "number") out[`${prefix}.${TABLE_LEVELS[i] ?? i}`] = v;
    });
    return;
  }
  for (const [key, value] of Object.entries(obj)) {
    const name = `${prefix}.${key}`;
    if (typeof value === "number") out[name] = value;
    else flatten(value, name, out);
  }
}

/**
 * Every teardown-phase counter of a report as "layer.name" → count, sorted by name: `gather.*`,
 * `walk.*`, `folio.*`, `swap.*`, `cpu.*` and `teardown.*` (PTL acquisitions, gathers, pages freed,
 * swap entries zapped, the walk's forced flushes, final-state problems). The names `COST_TERMS` uses.
 */
export function flattenCounters(
  r: Pick<
    TeardownReport,
    "counters" | "ptlAcquisitions" | "gathers" | "pagesFreed" | "swapEntriesZapped" | "forcedFlushes"
  > & {
    readonly finalState?: FinalStateChecks;
  },
): Record<string, number> {
  const out: Record<string, number> = {};
  flatten(r.counters.gather, "gather", out);
  flatten(r.counters.walk, "walk", out);
  flatten(r.counters.folio, "folio", out);
  flatten(r.counters.swap, "swap", out);
  flatten(r.counters.cpu, "cpu", out);
  out["teardown.ptlAcquisitions"] = r.ptlAcquisitions;
  out["teardown.gathers"] = r.gathers;
  out["teardown.pagesFreed"] = r.pagesFreed;
  out["teardown.swapEntriesZapped"] = r.swapEntriesZapped;
  out["teardown.forcedFlushes.batchFull"] = r.forcedFlushes.batchFull;
  out["teardown.forcedFlushes.dirtyShared"] = r.forcedFlushes.dirtyShared;
  if (r.finalState !== undefined) out["teardown.finalStateProblems"] = r.finalState.problems.length;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Runs the final-state checks over the machine. `exited` is the mm that exited, if any. */
export function checkFinalState(machine: Machine, exited: Mm | null): FinalStateChecks {
  const problems: string[] = [];
  const mem = machine.mem;
  const swap = machine.swap;
  const rssZeroAfterExit = exited === null || exited.rss.every((x) => x === 0);
  if (!rssZeroAfterExit)
    problems.push(`exited mm ${exited!.id} has rss ${Array.from(exited!.rss).join(",")}`);
  // Recount every live mm, and collect the folios reachable from page tables.
  const nr = machine.nrPages;
  const mapRefs = new Int32Array(nr); // mappings per folio head seen in live page tables
  const tablePages = new Uint8Array(nr);
  let rssOk = true;
  let swapPtes = 0;
  const zero = machine.zeroPfn;
  const hugeZero = machine.hugeZeroFolio;
  let hugeZeroUsers = 0;
  // Swap PTEs per swap entry over every live mm (a final check, not a hot path).
  const swapRefs = new Map<number, number>();
  for (const mm of machine.mms) {
    if (mm.hugeZeroFolio) hugeZeroUsers++;
    if (mm.dead) continue;
    const pt = mm.pt;
    for (let id = 0; id < pt.entries.length; id++)
      if (pt.entries[id] !== null && pt.tablePfn[id] >= 0) tablePages[pt.tablePfn[id]] = 1;
    for (const d of mm.deposits) if (d !== null) for (const p of d) if (p >= 0) tablePages[p] = 1;
    const count = [0, 0, 0, 0];
    for (let id = 0; id < pt.entries.length; id++) {
      const t = pt.entries[id];
      if (t === null) continue;
      const level = pt.tableLevel[id];
      for (let i = 0; i < t.length; i++) {
        const e = t[i];
        if (e === 0) continue;
        if (level === 0) {
          if (isMigrationPte(e)) {
            // Every migration ends by replacing its entries (or a zap clears them): one left behind
            // would fault forever (migration_entry_wait on a folio nobody migrates).
            const mp = migrationPtePfn(e);
            count[mem.isFree(mp) ? 1 : counterOf(machine, mem.folioHead(mp))]++;
            if (problems.length < 20)
              problems.push(
                `mm ${mm.id}: a migration entry for pfn ${migrationPtePfn(e)} is left in a page table`,
              );
            continue;
          }
          if (e < 0) {
            count[2]++;
            swapPtes++;
            const entry = pteSwapEntry(e);
            swapRefs.set(entry, (swapRefs.get(entry) ?? 0) + 1);
            continue;
          }
          if (ptePfn(e) === zero) continue; // a special PTE: no folio counted
          if (ptePfn(e) >= nr) continue; // a VM_PFNMAP PTE of device memory: no folio, no rss
          const h = mem.folioHead(ptePfn(e));
          mapRefs[h]++;
          count[counterOf(machine, h)]++;
        } else if (level === 1 && (e & PTE_PRESENT) !== 0) {
          const h = ptePfn(e);
          if (h === hugeZero) continue; // the huge zero folio: no rss, no mapcount
          mapRefs[h]++;
          count[counterOf(machine, h)] += pt.span[0];
        } else if (pmdTableId(e) < 0) {
          rssOk = false;
        }
      }
    }
    for (let k = 0; k < 4; k++) {
      if (count[k] !== mm.rss[k]) {
        rssOk = false;
        problems.push(`mm ${mm.id}: rss[${k}] = ${mm.rss[k]} but page tables map ${count[k]}`);
      }
    }
  }
  let anonOk = true;
  let cacheOk = true;
  let accounted = true;
  let swapCachePages = 0;
  for (let pfn = 0; pfn < nr; ) {
    if (mem.isFree(pfn)) {
      pfn++;
      continue;
    }
    const h = mem.folioHead(pfn);
    const n = mem.folioNrPages(h);
    if (h !== pfn) {
      pfn++;
      continue;
    }
    if (h === zero || h === hugeZero) {
      // Allocated once per machine and never freed: the allocation's reference only.
      if (mem.folioRef(h) !== 1) {
        accounted = false;
        if (problems.length < 20) problems.push(`zero folio ${h}: refcount ${mem.folioRef(h)}, expected 1`);
      }
      pfn += n;
      continue;
    }
    const ref = mem.folioRef(h);
    const inSwap = mem.folioTest(h, PG.swapcache);
    if (inSwap) swapCachePages += n;
    // The mlock batch holds a reference on each folio munlock_folio queued (until the next drain).
    const batchRefs = mem.mlockBatchRefs(h);
    if (mem.folioTest(h, PG.anon)) {
      const expect = mapRefs[h] + (inSwap ? n : 0) + batchRefs;
      if ((mapRefs[h] === 0 && !inSwap && batchRefs === 0) || ref !== expect) {
        anonOk = false;
        if (problems.length < 20) problems.push(`anon folio ${h}: refcount ${ref}, expected ${expect}`);
      }
    } else if (mem.folioMapping(h) >= 0 && tablePages[h] === 0) {
      const expect = n + mapRefs[h] + batchRefs;
      if (ref !== expect) {
        cacheOk = false;
        if (problems.length < 20) problems.push(`page-cache folio ${h}: refcount ${ref}, expected ${expect}`);
      }
    } else if (tablePages[h] === 0) {
      accounted = false;
      if (problems.length < 20)
        problems.push(`folio ${h} (order ${mem.folioOrder(h)}) is allocated but unaccounted`);
    }
    pfn += n;
  }
  let swapOk = true;
  if (swap !== null) {
    // Each swap entry's count is exactly the swap PTEs that hold it: every zapped swap PTE released
    // one count, none more (free_swap_and_cache), and none was released for a PTE still there.
    for (const [entry, refs] of swapRefs) {
      const n = swap.swapMapValue(entry) === 0 ? 0 : swap.swapCount(entry);
      if (n !== refs) {
        swapOk = false;
        if (problems.length < 20)
          problems.push(`swap entry ${entry}: count ${n}, but ${refs} swap PTE(s) hold it`);
      }
    }
    const inUse = swap.slotsInUse();
    if (inUse > swapPtes + swapCachePages) {
      swapOk = false;
      problems.push(
        `${inUse} swap slots in use, only ${swapPtes} swap PTEs and ${swapCachePages} swap-cache pages`,
      );
    }
  }
  const hugeZeroRefs = hugeZero < 0 ? 0 : 1 + hugeZeroUsers;
  if (machine.hugeZeroRefcount !== hugeZeroRefs) {
    accounted = false;
    problems.push(
      `huge_zero_refcount ${machine.hugeZeroRefcount}, expected ${hugeZeroRefs} (the shrinker's and one per mm with MMF_HUGE_ZERO_FOLIO)`,
    );
  }
  let invOk = true;
  try {
    mem.checkInvariants();
    swap?.checkInvariants();
  } catch (e) {
    invOk = false;
    problems.push(String((e as Error).message));
  }
  return {
    rssZeroAfterExit,
    rssMatchesPageTables: rssOk,
    anonFoliosAccounted: anonOk,
    pageCacheIntact: cacheOk,
    noLeakedSwapSlots: swapOk,
    statisticsConsistent: invOk && accounted,
    problems,
  };
}

function counterOf(machine: Machine, head: number): number {
  const mem = machine.mem;
  if (mem.folioTest(head, PG.anon)) return 1;
  return mem.folioTest(head, PG.swapbacked) ? 3 : 0;
}

/** Builds the report of one operation. */
export function buildReport(
  machine: Machine,
  mm: Mm,
  r: OpResult,
  freed: { folios: number; pages: number },
  ptl: number,
  simWallNs: number,
  stateBytes: number,
  mappedPages: number,
  violationsBefore: number,
  before: LayerSnapshot,
  cost: CostProfile,
  writeback: WritebackCounters | null = null,
  swapoff: SwapoffCounters | null = null,
  numa: NumaScanCounters | null = null,
  migrate: MigrateCounters | null = null,
  kvm: KvmCounters | null = null,
  khugepaged: CollapseCounters | null = null,
): TeardownReport {
  const g = r.gather;
  const w = r.walkCounters;
  const now = snapshotLayers(machine);
  const tablePages = g.tablesFreed + w.depositsFreed + w.pgdsFreed;
  const base = {
    op: r.op,
    variant: r.variant.name,
    walk: r.walk.name,
    arch: machine.arch.name,
    pagesTornDown: w.ptesCleared + w.hugePmdsZapped * machine.geometry.ptrsPerPte,
    pagesFreed: freed.pages,
    foliosFreed: freed.folios,
    dataFoliosFreed: freed.folios - tablePages,
    pageTablePagesFreed: tablePages,
    swapEntriesZapped: w.swapPtesCleared,
    forcedFlushes: {
      batchFull: w.forcedFlushBatchFull,
      dirtyShared: w.forcedFlushDirtyShared,
      ...g.forcedFlushes,
    },
    tlbFlushes: {
      range: g.tlbFlushRange,
      mm: g.tlbFlushMm,
      ipte: g.ipte,
      idte: g.idte,
      invlpgb: g.invlpgb,
      tlbsync: g.tlbsync,
      skipped: g.tlbFlushSkipped,
    },
    shootdown: {
      ipis: g.tlbIpis,
      cpusTargeted: g.tlbCpusTargeted,
      lazyCpusSkipped: g.tlbLazyCpusSkipped,
    },
    batchPagesAllocated: g.batchPagesAllocated,
    ptlAcquisitions: ptl,
    gathers: r.gathers,
    counters: {
      gather: g,
      folio: delta(now.folio, before.folio),
      swap: now.swap !== null && before.swap !== null ? delta(now.swap, before.swap) : null,
      walk: { ...w, tablesFreed: [...w.tablesFreed] as [number, number, number] },
      cpu:
        now.cpu !== null && before.cpu !== null
          ? withoutShares(delta(now.cpu, before.cpu), [writeback, numa, migrate, khugepaged])
          : null,
    },
    violations: machine.checker !== null ? machine.checker.violations.slice(violationsBefore) : [],
    finalState: checkFinalState(machine, r.op === "exit" ? mm : null),
    simWallNs,
    writeback: writeback === null ? null : { ...writeback },
    swapoff: swapoff === null ? null : { ...swapoff },
    numa: numa === null ? null : { ...numa },
    migrate: migrate === null ? null : { ...migrate },
    khugepaged: khugepaged === null ? null : { ...khugepaged },
    kvm: kvm === null ? null : { ...kvm },
    contpte:
      machine.arch.contPte === null
        ? null
        : {
            contPtes: machine.arch.contPte.contPtes,
            batchedClears: g.contpteBatchedClears,
            blocksCleared: g.contpteBlocksCleared,
            unfolds: g.contpteUnfolds,
            folds: g.contpteFolds,
            convertTlbis: g.contpteConvertTlbis,
          },
    stateBytes,
    stateBytesPerMappedPage: mappedPages > 0 ? stateBytes / mappedPages : 0,
  };
  return { ...base, estimate: estimateCost(flattenCounters(base), cost) };
}
