import { createPhysMem, PG } from "@mmgather/folio";
import { describe, expect, it } from "vitest";
import {
  createSwapSpace,
  isSwapError,
  SWAP_HAS_CACHE,
  SWAPFILE_CLUSTER,
  type SwapErrorCode,
  swpEntry,
  swpOffset,
  swpType,
} from "../index.js";
import { mapFolio, swapOutAndReclaim, unmapFolio, world } from "./helpers.js";

function code(fn: () => unknown): SwapErrorCode | "none" | "other" {
  try {
    fn();
    return "none";
  } catch (e) {
    return isSwapError(e) ? e.code : "other";
  }
}

describe("folioAllocSwap (add_to_swap)", () => {
  it("puts a small folio in the swap cache with one reference, PG_swapcache, folio->swap and PG_dirty", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    const entry = swap.folioAllocSwap(head);
    expect(swpType(entry)).toBe(0);
    expect(swpOffset(entry)).toBeGreaterThan(0);
    expect(mem.folioTest(head, PG.swapcache)).toBe(true);
    expect(mem.folioTest(head, PG.dirty)).toBe(true);
    expect(mem.folioSwap(head)).toBe(entry);
    expect(mem.folioRef(head)).toBe(2);
    expect(swap.swapMapValue(entry)).toBe(SWAP_HAS_CACHE);
    expect(swap.swapCount(entry)).toBe(0);
    expect(swap.swapCacheFolio(entry)).toBe(head);
    expect(swap.slotsInUse()).toBe(1);
    expect(swap.counters).toMatchObject({
      slotsAllocated: 1,
      swapCacheAdds: 1,
      deviceLocks: 1,
      clusterLocks: 1,
    });
    swap.checkInvariants();
  });

  it("gives a large folio nr contiguous, naturally aligned slots and nr references", () => {
    const { mem, swap } = world();
    swap.folioAllocSwap(mem.allocFolio(0)); // occupy slot 1 so alignment matters
    const head = mem.allocFolio(4);
    const entry = swap.folioAllocSwap(head);
    expect(swpOffset(entry) % 16).toBe(0);
    expect(mem.folioRef(head)).toBe(17);
    for (let i = 0; i < 16; i++) {
      expect(swap.swapMapValue(entry + i)).toBe(SWAP_HAS_CACHE);
      expect(swap.swapCacheFolio(entry + i)).toBe(head);
    }
    expect(swap.slotsInUse()).toBe(17);
    expect(swap.counters.slotsAllocated).toBe(17);
    swap.checkInvariants();
  });

  it("never hands out the header slot and fails with ENOSPC when full, changing nothing", () => {
    const { mem, swap } = world([4]); // slots 1..3 usable
    const e = [0, 1, 2].map(() => swap.folioAllocSwap(mem.allocFolio(0)));
    expect(e.map(swpOffset).sort()).toEqual([1, 2, 3]);
    const extra = mem.allocFolio(0);
    const before = swap.stateDigest();
    expect(code(() => swap.folioAllocSwap(extra))).toBe("ENOSPC");
    expect(swap.stateDigest()).toBe(before);
    expect(mem.folioTest(extra, PG.swapcache)).toBe(false);
    expect(mem.folioRef(extra)).toBe(1);
  });

  it("refuses an order-2 folio when only unaligned free slots remain", () => {
    const { mem, swap } = world([8]); // aligned quads: 4..7 only (0..3 holds the header)
    const one = swap.folioAllocSwap(mem.allocFolio(0));
    expect(swpOffset(one)).toBe(1);
    const quad = swap.folioAllocSwap(mem.allocFolio(2));
    expect(swpOffset(quad)).toBe(4);
    expect(code(() => swap.folioAllocSwap(mem.allocFolio(2)))).toBe("ENOSPC");
  });

  it("moves on to the next device when the first is full", () => {
    const { mem, swap } = world([2, 64]);
    const a = swap.folioAllocSwap(mem.allocFolio(0));
    const b = swap.folioAllocSwap(mem.allocFolio(0));
    expect([swpType(a), swpType(b)]).toEqual([0, 1]);
    swap.checkInvariants();
  });

  it("refuses a folio already in the swap cache, a tail pfn, a free pfn, and folios above one cluster", () => {
    const { mem, swap } = world([2048], 8192);
    const head = mem.allocFolio(2);
    swap.folioAllocSwap(head);
    expect(code(() => swap.folioAllocSwap(head))).toBe("IN_SWAPCACHE");
    expect(code(() => swap.folioAllocSwap(head + 1))).toBe("BAD_FOLIO");
    expect(code(() => swap.folioAllocSwap(4000))).toBe("BAD_FOLIO");
    expect(code(() => swap.folioAllocSwap(-1))).toBe("BAD_FOLIO");
    expect(code(() => swap.folioAllocSwap(1e9))).toBe("BAD_FOLIO");
    swap.checkInvariants();
  });

  it("refuses a folio larger than one swap cluster (THP swap stops at PMD size)", () => {
    const mem = createPhysMem({ nrPages: 4096, pmdOrder: 10 });
    const swap = createSwapSpace(mem, { devices: [{ nrSlots: 4096 }] });
    const head = mem.allocFolio(10);
    expect(code(() => swap.folioAllocSwap(head))).toBe("EINVAL");
    expect(swap.slotsInUse()).toBe(0);
    expect(mem.folioRef(head)).toBe(1);
  });

  it("allocates a PMD-sized folio a whole cluster, never cluster 0 (it holds the header)", () => {
    const { mem, swap } = world([4 * SWAPFILE_CLUSTER], 4096);
    const head = mem.allocFolio(9);
    const entry = swap.folioAllocSwap(head);
    expect(swpOffset(entry) % SWAPFILE_CLUSTER).toBe(0);
    expect(swpOffset(entry)).toBeGreaterThanOrEqual(SWAPFILE_CLUSTER);
    swap.checkInvariants();
  });
});

describe("swapDuplicate (swap_duplicate)", () => {
  it("adds one swap-PTE reference per entry and refuses a free slot", () => {
    const { mem, swap } = world();
    const entry = swap.folioAllocSwap(mem.allocFolio(0));
    swap.swapDuplicate(entry);
    swap.swapDuplicate(entry);
    expect(swap.swapCount(entry)).toBe(2);
    expect(swap.swapMapValue(entry)).toBe(SWAP_HAS_CACHE | 2);
    expect(code(() => swap.swapDuplicate(entry + 1))).toBe("DUP_FREE_SLOT");
    expect(swap.counters.swapDuplicates).toBe(2);
  });

  it("stops at SWAP_MAP_MAX instead of wrapping", () => {
    const { mem, swap } = world();
    const entry = swap.folioAllocSwap(mem.allocFolio(0));
    for (let i = 0; i < 0x3e; i++) swap.swapDuplicate(entry);
    expect(code(() => swap.swapDuplicate(entry))).toBe("COUNT_OVERFLOW");
    expect(swap.swapCount(entry)).toBe(0x3e);
    swap.checkInvariants();
  });

  it("validates the whole run before changing any slot", () => {
    const { mem, swap } = world();
    const entry = swap.folioAllocSwap(mem.allocFolio(1)); // two slots
    expect(code(() => swap.swapDuplicate(entry, 3))).toBe("DUP_FREE_SLOT");
    expect(swap.swapCount(entry)).toBe(0);
    swap.swapDuplicate(entry, 2);
    expect([swap.swapCount(entry), swap.swapCount(entry + 1)]).toEqual([1, 1]);
    expect(swap.counters.clusterLocks).toBe(2); // allocation + one for the batched duplicate
  });
});

describe("freeSwapCache (free_swap_cache)", () => {
  it("keeps the folio while a swap PTE still references its slot; free_swap_and_cache of that PTE frees it", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    const entry = swap.folioAllocSwap(head);
    swap.swapDuplicate(entry); // another process still has a swap PTE for it
    expect(swap.freeSwapCache(head)).toBe(false);
    expect(mem.folioTest(head, PG.swapcache)).toBe(true);
    expect(swap.swapCacheFolio(entry)).toBe(head);
    expect(mem.folioRef(head)).toBe(2);

    swap.resetCounters();
    swap.freeSwapAndCache(entry);
    expect(mem.folioTest(head, PG.swapcache)).toBe(false);
    expect(mem.folioSwap(head)).toBe(0);
    expect(mem.folioRef(head)).toBe(1); // the swap cache's reference is gone, the lookup ref dropped
    expect(swap.swapMapValue(entry)).toBe(0);
    expect(swap.slotsInUse()).toBe(0);
    expect({ ...swap.counters }).toEqual({
      clusterLocks: 3, // entry free, folio_swapped, put_swap_folio
      deviceLocks: 0,
      swapCacheLookups: 1,
      swapCacheAdds: 0,
      swapCacheDeletes: 1,
      slotsAllocated: 0,
      slotsFreed: 1,
      swapDuplicates: 0,
      swapPutEntries: 1,
      freeSwapCacheCalls: 0,
      folioTrylocks: 1,
      folioTrylockFails: 0,
      folioFreeSwapCalls: 1,
    });
    swap.checkInvariants();
    mem.folioPut(head);
    mem.checkInvariants();
  });

  it("removes an unmapped, unlocked, unreferenced folio: slots freed, nr references dropped, PG_dirty set", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(3);
    const entry = swap.folioAllocSwap(head);
    mem.folioClear(head, PG.dirty);
    swap.resetCounters();
    expect(swap.freeSwapCache(head + 5)).toBe(true); // any page of the folio (v6.5 passes pages)
    expect(mem.folioRef(head)).toBe(1);
    expect(mem.folioTest(head, PG.swapcache)).toBe(false);
    expect(mem.folioTest(head, PG.dirty)).toBe(true);
    expect(mem.folioTest(head, PG.locked)).toBe(false);
    for (let i = 0; i < 8; i++) expect(swap.swapCacheFolio(entry + i)).toBe(-1);
    expect(swap.slotsInUse()).toBe(0);
    expect(swap.counters).toMatchObject({
      freeSwapCacheCalls: 1,
      folioTrylocks: 1,
      swapCacheDeletes: 1,
      slotsFreed: 8,
      deviceLocks: 1, // whole run freed under si->lock
      swapCacheLookups: 0,
    });
    swap.checkInvariants();
  });

  it("refuses while the folio is mapped", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    mapFolio(mem, head);
    swap.folioAllocSwap(head);
    swap.resetCounters();
    expect(swap.freeSwapCache(head)).toBe(false);
    expect(mem.folioTest(head, PG.swapcache)).toBe(true);
    expect(swap.counters.folioTrylocks).toBe(0);
    unmapFolio(mem, head);
    expect(swap.freeSwapCache(head)).toBe(true);
  });

  it("refuses while the folio is locked (trylock fails) and leaves the lock alone", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    swap.folioAllocSwap(head);
    mem.folioSet(head, PG.locked);
    expect(swap.freeSwapCache(head)).toBe(false);
    expect(mem.folioTest(head, PG.locked)).toBe(true);
    expect(mem.folioTest(head, PG.swapcache)).toBe(true);
    expect(swap.counters).toMatchObject({ folioTrylocks: 1, folioTrylockFails: 1, folioFreeSwapCalls: 0 });
    mem.folioClear(head, PG.locked);
    expect(swap.freeSwapCache(head)).toBe(true);
  });

  it("refuses under writeback", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    swap.folioAllocSwap(head);
    mem.folioSet(head, PG.writeback);
    expect(swap.freeSwapCache(head)).toBe(false);
    expect(mem.folioTest(head, PG.swapcache)).toBe(true);
    expect(mem.folioTest(head, PG.locked)).toBe(false);
    expect(swap.counters.folioFreeSwapCalls).toBe(1);
    mem.folioClear(head, PG.writeback);
    expect(swap.freeSwapCache(head)).toBe(true);
    swap.checkInvariants();
  });

  it("returns at the flag test for a folio not in the swap cache", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    expect(swap.freeSwapCache(head)).toBe(false);
    expect(swap.counters).toMatchObject({ freeSwapCacheCalls: 1, folioTrylocks: 0, folioFreeSwapCalls: 0 });
  });

  it("keeps a large folio while any one of its slots is still referenced (folio_swapped)", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(2);
    const entry = swap.folioAllocSwap(head);
    swap.swapDuplicate(entry + 3);
    expect(swap.folioSwapped(head)).toBe(true);
    expect(swap.freeSwapCache(head)).toBe(false);
    swap.freeSwapAndCache(entry + 3);
    expect(mem.folioTest(head, PG.swapcache)).toBe(false);
    expect(swap.slotsInUse()).toBe(0);
  });

  it("throws NO_CALLER_REF instead of dropping the last reference", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    swap.folioAllocSwap(head);
    mem.folioPut(head); // only the swap cache holds it now
    expect(mem.folioRef(head)).toBe(1);
    expect(code(() => swap.freeSwapCache(head))).toBe("NO_CALLER_REF");
    expect(mem.folioTest(head, PG.locked)).toBe(false);
    expect(mem.folioTest(head, PG.swapcache)).toBe(true);
    swap.checkInvariants();
  });
});

describe("folioFreeSwap and deleteFromSwapCache", () => {
  it("folio_free_swap returns false when not in swap cache, under writeback, or still swapped", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    expect(swap.folioFreeSwap(head)).toBe(false);
    const entry = swap.folioAllocSwap(head);
    mem.folioSet(head, PG.writeback);
    expect(swap.folioFreeSwap(head)).toBe(false);
    mem.folioClear(head, PG.writeback);
    swap.swapDuplicate(entry);
    expect(swap.folioFreeSwap(head)).toBe(false);
    expect(swap.counters.folioFreeSwapCalls).toBe(3);
    swap.swapFree(entry);
    expect(swap.swapMapValue(entry)).toBe(SWAP_HAS_CACHE);
    expect(swap.folioFreeSwap(head)).toBe(true);
    expect(swap.slotsInUse()).toBe(0);
  });

  it("delete_from_swap_cache keeps slots referenced by swap PTEs and drops the nr cache references", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(2);
    const entry = swap.folioAllocSwap(head);
    swap.swapDuplicate(entry, 2); // PTEs for the first two pages only
    swap.resetCounters();
    swap.deleteFromSwapCache(head);
    expect(mem.folioRef(head)).toBe(1);
    expect(mem.folioTest(head, PG.swapcache)).toBe(false);
    expect(mem.folioSwap(head)).toBe(0);
    expect([0, 1, 2, 3].map((i) => swap.swapMapValue(entry + i))).toEqual([1, 1, 0, 0]);
    expect(swap.slotsInUse()).toBe(2);
    expect(swap.counters).toMatchObject({
      swapCacheDeletes: 1,
      slotsFreed: 2,
      clusterLocks: 1,
      deviceLocks: 0,
    });
    swap.checkInvariants();
    mem.folioPut(head);
    swap.freeSwapAndCacheNr(entry, 2);
    expect(swap.slotsInUse()).toBe(0);
    expect(swap.counters.swapCacheLookups).toBe(0); // no slot was left holding only the cache bit
  });

  it("refuses a folio not in the swap cache or under writeback, and one the caller holds no ref on", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    expect(code(() => swap.deleteFromSwapCache(head))).toBe("NOT_IN_SWAPCACHE");
    swap.folioAllocSwap(head);
    mem.folioSet(head, PG.writeback);
    expect(code(() => swap.deleteFromSwapCache(head))).toBe("WRITEBACK");
    mem.folioClear(head, PG.writeback);
    mem.folioPut(head);
    expect(code(() => swap.deleteFromSwapCache(head))).toBe("NO_CALLER_REF");
    swap.checkInvariants();
  });
});

describe("freeSwapAndCache / freeSwapAndCacheNr", () => {
  it("frees a slot whose folio is gone (reclaimed) without a swap-cache lookup", () => {
    const w = world();
    const entry = swapOutAndReclaim(w, 0);
    expect(w.swap.swapMapValue(entry)).toBe(1);
    w.swap.resetCounters();
    w.swap.freeSwapAndCache(entry);
    expect(w.swap.swapMapValue(entry)).toBe(0);
    expect(w.swap.counters).toMatchObject({
      clusterLocks: 1,
      swapCacheLookups: 0,
      slotsFreed: 1,
      swapPutEntries: 1,
    });
  });

  it("throws DOUBLE_FREE on a free slot or a slot only the cache holds, changing nothing", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(1);
    const entry = swap.folioAllocSwap(head);
    swap.swapDuplicate(entry);
    const before = swap.stateDigest();
    expect(code(() => swap.freeSwapAndCacheNr(entry, 2))).toBe("DOUBLE_FREE");
    expect(code(() => swap.freeSwapAndCache(entry + 1))).toBe("DOUBLE_FREE");
    expect(code(() => swap.freeSwapAndCache(entry + 2))).toBe("DOUBLE_FREE");
    expect(swap.stateDigest()).toBe(before);
  });

  it("rejects bad entries with BAD_ENTRY / EINVAL", () => {
    const { swap } = world([64]);
    expect(code(() => swap.freeSwapAndCache(0))).toBe("BAD_ENTRY");
    expect(code(() => swap.freeSwapAndCache(swpEntry(1, 5)))).toBe("BAD_ENTRY");
    expect(code(() => swap.freeSwapAndCache(swpEntry(0, 64)))).toBe("BAD_ENTRY");
    expect(code(() => swap.freeSwapAndCache(1.5))).toBe("BAD_ENTRY");
    expect(code(() => swap.freeSwapAndCacheNr(swpEntry(0, 60), 8))).toBe("BAD_ENTRY");
    expect(code(() => swap.freeSwapAndCacheNr(swpEntry(0, 1), 0))).toBe("EINVAL");
    expect(code(() => swap.swapCount(swpEntry(0, 0)))).toBe("BAD_ENTRY");
  });

  it("leaves a mapped folio in the swap cache unless swap is full (TTRS_UNMAPPED | TTRS_FULL)", () => {
    const { mem, swap } = world([4]); // 3 usable slots
    const head = mem.allocFolio(0);
    mapFolio(mem, head);
    const entry = swap.folioAllocSwap(head);
    swap.swapDuplicate(entry);
    swap.freeSwapAndCache(entry);
    expect(mem.folioTest(head, PG.swapcache)).toBe(true); // 2 of 3 free: not full
    expect(swap.counters.folioFreeSwapCalls).toBe(0);

    swap.swapDuplicate(entry);
    swap.folioAllocSwap(mem.allocFolio(0));
    swap.folioAllocSwap(mem.allocFolio(0)); // 0 of 3 free: vm_swap_full
    expect(swap.vmSwapFull()).toBe(true);
    swap.freeSwapAndCache(entry);
    expect(mem.folioTest(head, PG.swapcache)).toBe(false);
    expect(mem.folioMapped(head)).toBe(true);
    swap.checkInvariants();
  });

  it("keeps the folio when its trylock fails", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    const entry = swap.folioAllocSwap(head);
    swap.swapDuplicate(entry);
    mem.folioSet(head, PG.locked);
    swap.freeSwapAndCache(entry);
    expect(swap.swapMapValue(entry)).toBe(SWAP_HAS_CACHE);
    expect(mem.folioTest(head, PG.swapcache)).toBe(true);
    expect(mem.folioRef(head)).toBe(2);
    expect(swap.counters.folioTrylockFails).toBe(1);
    mem.folioClear(head, PG.locked);
    expect(swap.freeSwapCache(head)).toBe(true);
  });

  it("frees the folio itself when the lookup reference is the last one besides the cache's", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(2);
    const entry = swap.folioAllocSwap(head);
    swap.swapDuplicate(entry, 4);
    mem.folioPut(head); // only the swap cache holds the folio now
    swap.freeSwapAndCacheNr(entry, 4);
    expect(mem.isFree(head)).toBe(true);
    expect(swap.slotsInUse()).toBe(0);
    swap.checkInvariants();
    mem.checkInvariants();
  });

  it("batched over a large folio: one cluster lock for the run, one lookup, same state as N single calls", () => {
    const run = (batched: boolean) => {
      const w = world();
      const heads = [w.mem.allocFolio(3), w.mem.allocFolio(3)];
      const entries = heads.map((h) => w.swap.folioAllocSwap(h));
      expect(entries[1]).toBe(entries[0]! + 8);
      for (const e of entries) w.swap.swapDuplicate(e, 8);
      for (const h of heads) w.mem.folioPut(h);
      w.swap.resetCounters();
      if (batched) w.swap.freeSwapAndCacheNr(entries[0]!, 16);
      else for (let i = 0; i < 16; i++) w.swap.freeSwapAndCache(entries[0]! + i);
      w.swap.checkInvariants();
      w.mem.checkInvariants();
      return { digest: w.swap.stateDigest(), mem: w.mem.stateDigest(), c: { ...w.swap.counters } };
    };
    const one = run(true);
    const many = run(false);
    expect(one.digest).toBe(many.digest);
    expect(one.mem).toBe(many.mem);
    expect(one.c).toMatchObject({
      swapPutEntries: 16,
      slotsFreed: 16,
      swapCacheDeletes: 2,
      swapCacheLookups: 2,
    });
    // 1 for the run + per folio: folio_swapped and put_swap_folio.
    expect(one.c.clusterLocks).toBe(1 + 2 * 2);
    // Single calls: 16 entry frees; lookups on every call (each slot is left with only the cache bit),
    // folio_swapped on each, put_swap_folio twice.
    expect(many.c.clusterLocks).toBe(16 + 16 + 2);
    expect(many.c.swapCacheLookups).toBe(16);
    expect(many.c.folioFreeSwapCalls).toBe(16);
  });

  it("takes one cluster lock per cluster a batched run crosses", () => {
    const { mem, swap } = world([3 * SWAPFILE_CLUSTER], 4096);
    const heads: number[] = [];
    for (let i = 0; i < SWAPFILE_CLUSTER + 8; i++) heads.push(mem.allocFolio(0));
    const entries = heads.map((h) => swap.folioAllocSwap(h));
    for (const e of entries) swap.swapDuplicate(e);
    for (const h of heads) swap.deleteFromSwapCache(h);
    const start = swpEntry(0, SWAPFILE_CLUSTER - 4);
    expect(swap.swapCount(start)).toBe(1);
    swap.resetCounters();
    swap.freeSwapAndCacheNr(start, 8);
    expect(swap.counters.clusterLocks).toBe(2);
    expect(swap.counters.slotsFreed).toBe(8);
  });
});

describe("addToSwapCache and swapFree (swap-in)", () => {
  it("re-adds a folio for slots still in use and refuses free or already-cached slots", () => {
    const w = world();
    const entry = swapOutAndReclaim(w, 1);
    const { mem, swap } = w;
    const head = mem.allocFolio(1);
    swap.addToSwapCache(head, entry);
    expect(swap.swapMapValue(entry)).toBe(SWAP_HAS_CACHE | 1);
    expect(mem.folioRef(head)).toBe(3);
    expect(mem.folioSwap(head)).toBe(entry);
    const other = mem.allocFolio(1);
    expect(code(() => swap.addToSwapCache(other, entry))).toBe("CACHE_EXISTS");
    expect(code(() => swap.addToSwapCache(other, entry + 2))).toBe("DUP_FREE_SLOT");
    expect(code(() => swap.addToSwapCache(other, entry + 1))).toBe("EINVAL");
    swap.checkInvariants();
    // do_swap_page: PTEs become present again; the swap references go, the cache keeps the slots.
    swap.swapFree(entry, 2);
    expect(swap.swapMapValue(entry)).toBe(SWAP_HAS_CACHE);
    expect(swap.freeSwapCache(head)).toBe(true);
    expect(swap.slotsInUse()).toBe(0);
  });
});

describe("checkInvariants, stateDigest, stateBytes", () => {
  it("detects a swap cache folio that lost PG_swapcache behind the model's back", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    swap.folioAllocSwap(head);
    swap.checkInvariants();
    mem.folioClear(head, PG.swapcache);
    expect(code(() => swap.checkInvariants())).toBe("INVARIANT");
  });

  it("detects a folio claiming PG_swapcache that the swap cache does not hold", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(1);
    mem.folioSet(head, PG.swapcache);
    mem.folioSetSwap(head, swpEntry(0, 8));
    expect(code(() => swap.checkInvariants())).toBe("INVARIANT");
    mem.folioClear(head, PG.swapcache);
    mem.folioSetSwap(head, 0);
    swap.checkInvariants();
  });

  it("refuses a page-cache folio and a mem that is not a PhysMem", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    mem.filemapAddFolio(mem.createAddressSpace({ swapBacked: false }), head, 0);
    expect(code(() => swap.folioAllocSwap(head))).toBe("IN_PAGE_CACHE");
    expect(code(() => createSwapSpace({} as never, { devices: [{ nrSlots: 8 }] }))).toBe("EINVAL");
  });

  it("detects folio->swap no longer covering the slot", () => {
    const { mem, swap } = world();
    const head = mem.allocFolio(0);
    const entry = swap.folioAllocSwap(head);
    mem.folioSetSwap(head, entry + 1);
    expect(code(() => swap.checkInvariants())).toBe("INVARIANT");
  });

  it("digest follows semantic state, not counters or allocator position", () => {
    const a = world();
    const b = world();
    expect(a.swap.stateDigest()).toBe(b.swap.stateDigest());
    const e = swapOutAndReclaim(a, 0);
    expect(a.swap.stateDigest()).not.toBe(b.swap.stateDigest());
    a.swap.freeSwapAndCache(e);
    a.swap.resetCounters();
    expect(a.swap.stateDigest()).toBe(b.swap.stateDigest());
  });

  it("stateBytes is about five bytes per slot", () => {
    const { swap } = world([1 << 16]);
    expect(swap.stateBytes()).toBe((1 << 16) * 5 + 2 * 128);
  });

  it("rejects bad configurations", () => {
    const { mem } = world();
    const mk = (devices: { nrSlots: number }[]) => () => world(devices.map((d) => d.nrSlots));
    expect(code(mk([]))).toBe("EINVAL");
    expect(code(mk([{ nrSlots: 1 }]))).toBe("EINVAL");
    expect(code(mk([{ nrSlots: 2.5 }]))).toBe("EINVAL");
    expect(mem).toBeDefined();
  });
});
