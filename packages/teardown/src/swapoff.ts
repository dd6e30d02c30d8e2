// Models: swapoff(2) of the machine's swap device on another CPU while the teardown runs, as Linux v6.18
// (torvalds/linux, Nov 2025) mm/swapfile.c does it: SWP_WRITEOK cleared (del_from_avail_list), then
// try_to_unuse — for each live mm (the mmlist), under mmap_read_lock, each anon VMA in its tree
// (unuse_mm → unuse_vma, only VMAs with an anon_vma) → unuse_pte_range: one page-table-lock section per
// PTE table that holds swap PTEs of the device; each gets its folio (swap_cache_get_folio, or a new
// order-0 folio read in and added to the swap cache) and unuse_pte maps it back: MM_SWAPENTS − 1,
// MM_ANONPAGES + 1, folio_get, the anon rmap (folio_add_new_anon_rmap for a new folio), an old,
// read-only PTE, swap_free — then the swap-cache pass (folio_free_swap of every slot left with only its
// cache), repeated while inuse_pages > 0 (a VMA munmap detached is not in the tree: its swap PTEs are
// the zap's to free). Then percpu_ref_kill(&si->users), wait_for_completion until every
// get_swap_device pin is put, and swap_map freed.
// It runs in parallel with the zap's lock sections: once try_to_unuse has made its first pass and only
// waits for inuse_pages to drop, it may act inside free_swap_and_cache_nr right after the zap dropped a
// swap count (SwapSpace.setParallelWindow) — the worst case of two CPUs. A free_swap_and_cache without
// its get_swap_device pin (the code before 82b1c07a0af6, Linux 6.9) then reads a freed swap_map:
// reported as `swapDeviceUseAfterFree`.
// Each PTE unuse_pte writes goes through the arch's set_ptes hook (set_pte_at of one PTE: arm64's
// contpte_try_fold folds a block of a swap-cache folio once its last entry is back, flushing directly).
// Omits: per-CPU LRU batches (the swap-ins' folio_add_lru batch is drained when swapoff ends), swapin
// readahead (one order-0 folio per entry read in), large-folio swap-in, KSM copies,
// VM_LOCKED (mlock of swapped-in pages), the I/O itself, signals (-EINTR), shmem_unuse, frontswap /
// zswap invalidation, the swap device's own files (swap_file, extents).
import { SWAP_FREED, SWP_OFFSET_BITS, type SwapSpace } from "@mmgather/swapcache";
import { TeardownError } from "./errors.js";
import type { Machine } from "./machine.js";
import type { Mm } from "./mm.js";
import { mmapReadLock, mmapReadUnlock, type OpSteps } from "./mmap-lock.js";
import { LEVEL_PMD } from "./page-tables.js";
import { mkPte, PTE_PRESENT, pmdTableId, pteSwapEntry } from "./pte.js";
import { archSetPtes } from "./pte-view.js";
import { MM_ANONPAGES, MM_SWAPENTS, type Vma } from "./vma.js";

/** What one swapoff did (every count exact). */
export interface SwapoffCounters {
  /** try_to_unuse passes over the mmlist (more than one while the teardown still holds entries). */
  passes: number;
  /** Page-table-lock sections of unuse_pte_range (tables that held swap PTEs of the device). */
  ptlSections: number;
  /** Swap PTEs unuse_pte mapped back. */
  ptesUnused: number;
  /** Of those, entries whose folio the swap cache still held. */
  swapCacheHits: number;
  /** Order-0 folios read in for entries the swap cache did not hold. */
  foliosReadIn: number;
  /** Folios the swap-cache pass freed from the swap cache (folio_free_swap). */
  cacheFreed: number;
  /** 1 when swap_map was freed (swapoff completed), else 0. */
  completed: number;
}

/** A fresh zeroed swapoff counter record. */
export function createSwapoffCounters(): SwapoffCounters {
  return {
    passes: 0,
    ptlSections: 0,
    ptesUnused: 0,
    swapCacheHits: 0,
    foliosReadIn: 0,
    cacheFreed: 0,
    completed: 0,
  };
}

/** swapoff of device 0 as a generator of lock sections, on `thread`. */
export function* swapoffSteps(machine: Machine, counters: SwapoffCounters): OpSteps {
  const swap = machine.swap;
  if (swap === null) {
    throw new TeardownError("BAD_SPEC", "swapoff", "swapoff", "swapoff needs a swap device (swap > 0)");
  }
  const type = 0;
  const trace = machine.traceSink();
  swap.swapoffStart(type);
  let waiting = false;
  try {
    for (;;) {
      counters.passes++;
      for (const mm of machine.mms.slice()) {
        // mmget_not_zero fails for an exiting mm: its exit_mmap frees its swap at its own pace.
        if (mm.dead || mm.exiting) continue;
        yield* mmapReadLock(mm);
        try {
          for (const vma of mm.vmas.slice()) {
            if (vma.anonVma < 0) continue; // unuse_vma: only VMAs with an anon_vma
            yield* unuseVma(mm, vma, swap, type, counters);
          }
        } finally {
          mmapReadUnlock(mm);
        }
      }
      counters.cacheFreed += swap.swapoffFreeCached(type);
      if (swap.inusePages(type) === 0 || swap.swapoffState(type) === SWAP_FREED) break;
      // Entries still in use that no VMA in any tree maps: a zap is freeing them. Wait, and let this
      // CPU act inside the zap's free_swap_and_cache_nr meanwhile.
      if (!waiting) {
        waiting = true;
        if (trace !== null) trace({ type: "swapoffProgress", device: type, stage: "waiting" });
        // Since the pass, only the slots a zap just dropped counts from can have been left cache-only.
        swap.setParallelWindow((t, offset, nr) => {
          if (t !== type || counters.completed === 1) return;
          counters.cacheFreed += swap.swapoffFreeCached(type, offset, nr);
          if (swap.swapoffTryFinish(type)) {
            counters.completed = 1;
            if (trace !== null) trace({ type: "swapoffProgress", device: type, stage: "swapMapFreed" });
          }
        });
      }
      yield "wait";
    }
    // percpu_ref_kill + wait_for_completion: the pins of running free_swap_and_cache calls.
    while (!swap.swapoffTryFinish(type)) yield "wait";
    if (counters.completed === 0 && trace !== null)
      trace({ type: "swapoffProgress", device: type, stage: "swapMapFreed" });
    counters.completed = 1;
    // The swapped-in folios' per-CPU LRU batch (folio_add_lru) is drained on swapoff's CPU.
    machine.mem.lruAddDrain();
  } finally {
    swap.setParallelWindow(null);
  }
}

/** unuse_vma → unuse_pte_range over one VMA: one lock section per PTE table with work. */
function* unuseVma(mm: Mm, vma: Vma, swap: SwapSpace, type: number, c: SwapoffCounters): OpSteps {
  const pt = mm.pt;
  const span = pt.span[0];
  for (let base = Math.floor(vma.start / span) * span; base < vma.end; base += span) {
    const pmdId = pt.pmdTable(base, false);
    if (pmdId < 0) continue;
    const e = pt.entries[pmdId]![pt.index(base, LEVEL_PMD)];
    if (e === 0 || (e & PTE_PRESENT) !== 0) continue; // none, or a huge PMD (no PMD swap entries here)
    const t = pt.entries[pmdTableId(e)]!;
    const from = Math.max(vma.start, base) - base;
    const to = Math.min(vma.end, base + span) - base;
    let unused = 0;
    for (let i = from; i < to; i++) {
      if (t[i] >= 0) continue;
      const entry = pteSwapEntry(t[i]);
      if (entry >>> SWP_OFFSET_BITS !== type) continue;
      t[i] = unusePte(mm, vma, swap, entry, base + i, c);
      // set_pte_at: one PTE; the arch may fold a block it completes (arm64 contpte_try_fold).
      archSetPtes(mm, t, base, i, 1, null);
      unused++;
    }
    if (unused === 0) continue; // no lock section: the table holds no swap PTE of the device
    c.ptlSections++;
    yield;
  }
}

/** unuse_pte: the folio for `entry` (cached or read in) mapped back at `vpn`; returns the new PTE. */
function unusePte(mm: Mm, vma: Vma, swap: SwapSpace, entry: number, vpn: number, c: SwapoffCounters): number {
  const mem = mm.machine.mem;
  let head = swap.swapCacheGetFolio(entry); // with a lookup reference
  let pfn: number;
  if (head >= 0) {
    c.swapCacheHits++;
    pfn = head + (entry - mem.folioSwap(head));
    mem.folioGet(head);
    mem.folioAddRmapPtes(head, pfn, 1);
  } else {
    // read_swap_cache_async: a new order-0 folio, in the swap cache for the slot, read from disk.
    try {
      head = mem.allocFolio(0);
    } catch (e) {
      throw new TeardownError("ENOMEM", "swapoff", "unusePte", "out of memory reading a page in", {
        cause: e,
      });
    }
    c.foliosReadIn++;
    swap.addToSwapCache(head, entry);
    mem.folioAddLru(head);
    pfn = head;
    mem.folioGet(head);
    // folio_add_new_anon_rmap: the folio becomes this VMA's anon page.
    mem.folioSetAnon(head, vma.anonVma, vpn);
    mem.folioAddRmapPtes(head, head, 1);
  }
  mm.rss[MM_SWAPENTS]--;
  mm.rss[MM_ANONPAGES]++;
  swap.swapFree(entry, 1);
  mem.folioPut(head); // folio_unlock + folio_put of unuse_pte_range's reference
  c.ptesUnused++;
  return mkPte(pfn, 0); // pte_mkold(mk_pte(page, vm_page_prot)): read-only, old, clean
}
