// Models: page migration of the anon folios a range of the target mm maps, on another CPU while the
// teardown runs — migrate_pages(2) / mbind(MPOL_MF_MOVE) moving them to another node — as Linux v6.18
// (torvalds/linux, Nov 2025) does it:
//   migrate_to_node (mm/mempolicy.c): lru_cache_disable (the per-CPU LRU-add batches drained),
//   mmap_read_lock, queue_pages_range → queue_folios_pte_range: one page-table-lock section per PTE
//   table, each present PTE of a normal anon folio → migrate_folio_add → folio_isolate_lru (a
//   reference, off the LRU), once per folio; mmap_read_unlock; then migrate_pages (mm/migrate.c),
//   without mmap_lock → migrate_pages_batch, NR_MAX_BATCHED_MIGRATION (HPAGE_PMD_NR) pages a batch:
//   1. migrate_folio_unmap, per folio: one whose other references are all gone (refcount 1, "freed from
//      under us") is released; else a new folio of the same order (alloc_migration_target; none: put
//      back on the LRU, -ENOMEM), then try_to_migrate(src, TTU_BATCH_FLUSH) → rmap_walk →
//      try_to_migrate_one, under the page-table lock of each table mapping the folio: per PTE,
//      should_defer_flush ? ptep_get_and_clear + set_tlb_ubc_flush_pending : ptep_clear_flush;
//      pte_dirty → folio_mark_dirty; set_pte_at of a writable / readable migration entry;
//      folio_remove_rmap_pte; folio_put — all between mmu_notifier_invalidate_range_start and _end
//      (MMU_NOTIFY_MIGRATE) over the folio's range, which a KVM guest (kvm.ts) hears.
//   2. try_to_unmap_flush, once for the batch, before any folio of it is copied (`MigrationSteps`).
//   3. migrate_folio_move, per folio: move_to_new_folio (folio_migrate_mapping wants only the expected
//      references — else -EAGAIN, put back —, the copy, folio_migrate_flags), folio_add_lru(dst),
//      remove_migration_ptes(src, dst): under each table's lock every migration entry still pointing
//      at src becomes a PTE of dst (writable if the entry was; folio_get, folio_add_anon_rmap_pte),
//      folio_put(dst) (the allocation's reference), migrate_folio_done: folio_put(src) (the isolation's)
//      frees it.
// Why it matters to teardown: a zap that meets a migration entry flushes nothing for that page while
// the deferred flush may still be outstanding, so munmap / MADV_DONTNEED could return with the old
// translation still usable on another CPU — zap_pte_range's flush_tlb_batched_pending closes that
// (tlb-batch.ts; commit 3ea277194daa). And a copy made while a CPU still caches a writable, dirty
// translation of the source loses every store through it after the copy: `migratedWhileWritable`.
// The rmap walk finds every live mm whose page tables map a page of the folio at its index (an anon
// folio's index is its virtual page, and a fork family maps it at the same address), the tables as
// they are when it gets there: one a teardown freed meanwhile is gone (free_pgtables' unlink_anon_vmas
// would wait for the walk's anon_vma lock, so no walk reads a table being freed).
// Omits: file and shmem folios, PMD-mapped THPs (set_pmd_migration_entry), folios in the swap cache,
// in a VM_LOCKED VMA, queued for deferred split or mapped by a device's lockless walk, retries (an
// -EAGAIN folio is put back), splitting a large folio that cannot be migrated whole, the migration
// entry's dirty / young bits and READ_EXCLUSIVE, NUMA placement (the new folio comes from the same
// allocator), the copy's time, the folio lock, arm64 contpte around the clears.
import { PG } from "@mmgather/folio";
import type { FlushShare } from "./cpu-tlb.js";
import { TeardownError } from "./errors.js";
import type { Machine } from "./machine.js";
import type { Mm } from "./mm.js";
import { mmapReadLock, mmapReadUnlock, type OpSteps } from "./mmap-lock.js";
import {
  isMigrationPte,
  isWritableMigrationPte,
  migrationPtePfn,
  mkMigrationPte,
  mkPte,
  PTE_DIRTY,
  PTE_WRITE,
  ptePfn,
} from "./pte.js";
import {
  createTlbUnmapBatch,
  setTlbUbcFlushPending,
  shouldDeferFlush,
  type TlbUnmapBatch,
  tryToUnmapFlush,
} from "./tlb-batch.js";

/** What one migration run did (every count exact). */
export interface MigrateCounters extends FlushShare {
  /** Folios queue_pages_range isolated from the LRU (folio_isolate_lru). */
  foliosIsolated: number;
  /** Folios migrated: unmapped, copied and remapped to a new folio (MIGRATEPAGE_SUCCESS). */
  foliosMigrated: number;
  /** Folios whose every other reference was gone when migrate_folio_unmap looked: released, not copied. */
  foliosFreedUnderUs: number;
  /** Folios put back on the LRU: no new folio (-ENOMEM) or unexpected references at the move (-EAGAIN). */
  foliosPutBack: number;
  /** PTEs try_to_migrate_one replaced with migration entries. */
  ptesUnmapped: number;
  /** Migration entries remove_migration_pte turned into PTEs of the new folio. */
  ptesRemapped: number;
  /** Page-table-lock sections (queue_folios_pte_range, try_to_migrate_one, remove_migration_pte). */
  ptlSections: number;
  /** PTE clears whose TLB flush try_to_migrate_one deferred (set_tlb_ubc_flush_pending). */
  flushesDeferred: number;
  /** try_to_unmap_flush calls with a deferred flush to do (at most one per batch). */
  batchFlushes: number;
  /**
   * Its TLB flushes: ptep_clear_flush of each PTE it did not defer, and each batch flush, with the
   * remote CPUs reached, entries dropped and device commands they cost (the report's CPU counters
   * leave this share out).
   */
  tlbFlushes: number;
}

/** A fresh zeroed migration counter record. */
export function createMigrateCounters(): MigrateCounters {
  return {
    foliosIsolated: 0,
    foliosMigrated: 0,
    foliosFreedUnderUs: 0,
    foliosPutBack: 0,
    ptesUnmapped: 0,
    ptesRemapped: 0,
    ptlSections: 0,
    flushesDeferred: 0,
    batchFlushes: 0,
    tlbFlushes: 0,
    remoteCpuFlushes: 0,
    entriesInvalidated: 0,
    secondaryTlbInvalidations: 0,
  };
}

/** What a migration step works with. */
export interface MigrationContext {
  readonly machine: Machine;
  readonly counters: MigrateCounters;
  /** The migrating thread's deferred-flush batch (current->tlb_ubc). */
  readonly ubc: TlbUnmapBatch;
}

/** The steps of a migration; each default is the kernel's code. */
export interface MigrationSteps {
  /**
   * Between a batch's unmaps and its copies: try_to_unmap_flush — every flush try_to_migrate_one
   * deferred is done before any folio of the batch is copied or freed.
   */
  tryToUnmapFlush(ctx: MigrationContext): void;
}

/** A migration: a name and its steps. */
export interface Migration {
  readonly name: string;
  readonly steps: MigrationSteps;
}

function tryToUnmapFlushDefault(ctx: MigrationContext): void {
  if (tryToUnmapFlush(ctx.machine, ctx.ubc, ctx.counters)) ctx.counters.batchFlushes++;
}

/** The kernel's migration (migrate_pages_batch). */
export const migration: Migration = Object.freeze({
  name: "migrate_pages",
  steps: Object.freeze({ tryToUnmapFlush: tryToUnmapFlushDefault }),
});

/** Derives a migration from `base`, replacing steps (how a broken one is built). */
export function defineMigration(
  base: Migration,
  overrides: { readonly name?: string; readonly steps?: Partial<MigrationSteps> },
): Migration {
  const steps: MigrationSteps = Object.freeze({ ...base.steps, ...overrides.steps });
  if (typeof steps.tryToUnmapFlush !== "function") {
    throw new TeardownError(
      "BAD_SPEC",
      "migrate",
      "defineMigration",
      "step tryToUnmapFlush must be a function",
    );
  }
  return Object.freeze({ name: overrides.name ?? base.name, steps });
}

/** NR_MAX_BATCHED_MIGRATION: pages per migrate_pages_batch call (HPAGE_PMD_NR). */
function batchPages(mm: Mm): number {
  return mm.pt.geo.ptrsPerPte;
}

/**
 * queue_pages_range over pages [vs, ve) of `mm`: the heads of the anon folios to migrate, each
 * isolated from the LRU, one lock section per PTE table with any.
 */
function* queuePagesRange(mm: Mm, vs: number, ve: number, out: number[], c: MigrateCounters): OpSteps {
  const machine = mm.machine;
  const mem = machine.mem;
  const pt = mm.pt;
  const span = pt.span[0];
  for (const vma of mm.vmas.slice()) {
    if (vma.kind !== "anon" || vma.locked) continue;
    const s = Math.max(vs, vma.start);
    const e = Math.min(ve, vma.end);
    for (let base = Math.floor(s / span) * span; base < e; base += span) {
      const id = pt.pteTable(base, false);
      if (id < 0) continue; // none, or a PMD-mapped THP (not modelled)
      const t = pt.entries[id]!;
      let queued = 0;
      for (let v = Math.max(s, base); v < Math.min(e, base + span); v++) {
        const pte = t[v - base];
        if (pte <= 0) continue;
        const pfn = ptePfn(pte);
        if (pfn === machine.zeroPfn) continue;
        const head = mem.folioHead(pfn);
        if (!mem.folioTest(head, PG.anon) || mem.folioTest(head, PG.swapcache)) continue;
        if (mem.folioTest(head, PG.deferredQueued) || mem.folioTest(head, PG.mlocked)) continue;
        // migrate_folio_add: folio_isolate_lru fails for an isolated one (already queued).
        if (!mem.folioIsolateLru(head)) continue;
        out.push(head);
        c.foliosIsolated++;
        queued++;
      }
      if (queued > 0) {
        c.ptlSections++;
        yield;
      }
    }
  }
}

/**
 * The rmap walk over the `nr` pages at virtual page `index`: for every live mm, each PTE table that maps
 * part of the range as it is now, `visit(mm, table, base, from, to)` under that table's lock (entries
 * [from, to) of the range, `base` the table's first page); a section that did work (`visit` returned
 * more than 0) is a step of its own.
 */
function* rmapWalkTables(
  machine: Machine,
  index: number,
  nr: number,
  c: MigrateCounters,
  visit: (mm: Mm, t: Int32Array, base: number, from: number, to: number) => number,
): OpSteps {
  for (const mm of machine.mms.slice()) {
    if (mm.dead) continue;
    const span = mm.pt.span[0];
    for (let v = index; v < index + nr; ) {
      const base = v - (v % span);
      const stop = Math.min(index + nr, base + span);
      // The PTE table mapping it now (none, a huge PMD, or freed meanwhile: nothing to visit).
      const id = mm.pt.pteTable(v, false);
      if (id >= 0 && visit(mm, mm.pt.entries[id]!, base, v, stop) > 0) {
        c.ptlSections++;
        yield;
      }
      v = stop;
    }
  }
}

/**
 * try_to_migrate(src) → try_to_migrate_one per mapping: each table's PTEs of the folio become migration
 * entries under its lock (one step each).
 */
function tryToMigrate(ctx: MigrationContext, head: number, nr: number, cpu: number, thread: number): OpSteps {
  const machine = ctx.machine;
  const trace = machine.traceSink();
  const mem = machine.mem;
  const c = ctx.counters;
  const ps = machine.pageSize;
  const index = mem.folioIndex(head);
  const kvm = machine.kvm;
  return rmapWalkTables(machine, index, nr, c, (mm, t, base, from, to) => {
    if (!mem.folioMapped(head)) return 0;
    const defer = shouldDeferFlush(machine, mm, cpu);
    // try_to_migrate_one's mmu_notifier_invalidate_range_start (MMU_NOTIFY_MIGRATE) over the folio's
    // range in this VMA: a KVM guest drops its sptes before the PTEs go.
    kvm?.invalidateRangeStart(mm.id, from, to);
    let cleared = 0;
    for (let k = from; k < to; k++) {
      const pte = t[k - base];
      if (pte <= 0 || ptePfn(pte) !== head + (k - index)) continue;
      t[k - base] = 0;
      if (defer) {
        setTlbUbcFlushPending(machine, ctx.ubc, mm, k, k + 1, (pte & PTE_DIRTY) !== 0, c);
        c.flushesDeferred++;
      } else if (machine.tlbs === null) c.tlbFlushes++;
      else machine.tlbs.flushTlbMmRange(mm.id, k * ps, (k + 1) * ps, c);
      if (trace !== null)
        trace({
          type: "migrationEntrySet",
          mmId: mm.id,
          addr: k * ps,
          pfn: ptePfn(pte),
          deferred: defer,
          thread,
        });
      if ((pte & PTE_DIRTY) !== 0) mem.folioSet(head, PG.dirty);
      t[k - base] = mkMigrationPte(ptePfn(pte), (pte & PTE_WRITE) !== 0);
      mem.folioRemoveRmapPtes(head, ptePfn(pte), 1);
      mem.folioPut(head);
      c.ptesUnmapped++;
      cleared++;
    }
    kvm?.invalidateRangeEnd(mm.id);
    return cleared;
  });
}

/**
 * remove_migration_ptes(src, dst): every migration entry still pointing at src maps dst instead (src
 * itself when the move failed). A PTE of src again takes back the reference and mapping the unmap gave
 * up.
 */
function removeMigrationPtes(ctx: MigrationContext, src: number, dst: number, nr: number): OpSteps {
  const mem = ctx.machine.mem;
  const c = ctx.counters;
  const index = mem.folioIndex(dst);
  return rmapWalkTables(ctx.machine, index, nr, c, (_mm, t, base, from, to) => {
    let remapped = 0;
    for (let k = from; k < to; k++) {
      const e = t[k - base];
      if (!isMigrationPte(e) || migrationPtePfn(e) !== src + (k - index)) continue;
      const pfn = dst + (k - index);
      mem.folioGet(dst);
      mem.folioAddRmapPtes(dst, pfn, 1);
      // A fresh PTE: old (not young), clean; writable when the entry was.
      t[k - base] = mkPte(pfn, isWritableMigrationPte(e) ? PTE_WRITE : 0);
      c.ptesRemapped++;
      remapped++;
    }
    return remapped;
  });
}

/** folio_putback_lru: back on the LRU (through the LRU-add batch), the isolation's reference dropped. */
function putBack(machine: Machine, head: number, c: MigrateCounters): void {
  machine.mem.folioAddLru(head);
  machine.mem.folioPut(head);
  c.foliosPutBack++;
}

/** Flags folio_migrate_flags carries over that the model has. */
const MIGRATED_FLAGS = [PG.referenced, PG.active, PG.dirty] as const;

/**
 * Migration of the anon folios mapped in pages [vs, ve) of `mm`, on `thread`, as a generator of lock
 * sections. `counters` receives what it did.
 */
export function* migratePagesSteps(
  mm: Mm,
  vs: number,
  ve: number,
  thread: number,
  mig: Migration,
  counters: MigrateCounters,
): OpSteps {
  const machine = mm.machine;
  const mem = machine.mem;
  const checker = machine.checker;
  const trace = machine.traceSink();
  const cpu = machine.tlbs?.cpuOfThread(thread) ?? -1;
  const ctx: MigrationContext = { machine, counters, ubc: createTlbUnmapBatch() };
  // lru_cache_disable: every CPU's LRU-add batch is drained, so folio_isolate_lru finds the folios.
  mem.lruAddDrain();
  const folios: number[] = [];
  yield* mmapReadLock(mm);
  try {
    yield* queuePagesRange(mm, vs, ve, folios, counters);
  } finally {
    mmapReadUnlock(mm);
  }
  const limit = batchPages(mm);
  for (let first = 0; first < folios.length; ) {
    // migrate_pages_batch over the next NR_MAX_BATCHED_MIGRATION pages' worth of folios.
    const batch: number[] = [];
    const dsts: number[] = [];
    let pages = 0;
    while (
      first < folios.length &&
      (batch.length === 0 || pages + mem.folioNrPages(folios[first]) <= limit)
    ) {
      const head = folios[first++];
      pages += mem.folioNrPages(head);
      // migrate_folio_unmap.
      if (mem.folioRef(head) === 1) {
        // Freed from under us: only the isolation's reference is left.
        mem.folioPut(head);
        counters.foliosFreedUnderUs++;
        continue;
      }
      const nr = mem.folioNrPages(head);
      const order = mem.folioOrder(head);
      let dst: number;
      try {
        dst = mem.allocFolio(order);
      } catch (e) {
        if ((e as { code?: string }).code !== "ENOMEM") throw e;
        putBack(machine, head, counters);
        continue;
      }
      yield* tryToMigrate(ctx, head, nr, cpu, thread);
      batch.push(head);
      dsts.push(dst);
    }
    mig.steps.tryToUnmapFlush(ctx);
    yield;
    for (let i = 0; i < batch.length; i++) {
      const src = batch[i];
      const dst = dsts[i];
      const nr = mem.folioNrPages(src);
      // folio_migrate_mapping: an anon folio without swap cache must hold only the isolation's
      // reference once unmapped — another (a teardown's gather still holding the page) is -EAGAIN.
      if (mem.folioRef(src) !== 1) {
        // migrate_folio_undo_src / _dst: the entries map src again, dst goes back to the allocator.
        mem.folioPut(dst);
        yield* removeMigrationPtes(ctx, src, src, nr);
        putBack(machine, src, counters);
        continue;
      }
      // The copy (folio_mc_copy), then folio_migrate_flags.
      if (checker !== null) checker.onFolioMigrated(src, nr);
      mem.folioSetAnon(dst, mem.folioMapping(src), mem.folioIndex(src));
      for (const f of MIGRATED_FLAGS) if (mem.folioTest(src, f)) mem.folioSet(dst, f);
      mem.folioAddLru(dst);
      yield* removeMigrationPtes(ctx, src, dst, nr);
      mem.folioPut(dst);
      if (trace !== null) trace({ type: "folioMigrated", pfn: src, to: dst, nr, thread });
      // migrate_folio_done: the isolation's reference; nothing else holds src, so it is freed.
      mem.folioPut(src);
      counters.foliosMigrated++;
    }
  }
  // The new and put-back folios' LRU-add batch is drained on this CPU when the migration ends (the
  // model's LRU-add batch is one for the machine).
  mem.lruAddDrain();
}
