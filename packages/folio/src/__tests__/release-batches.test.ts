// Lock, batch and line counts of the batched release paths of mm/swap.c and mm/page_alloc.c as the
// model follows them, away from the first lruvec, memcg and node (a sentinel that only index 0 would
// pass for is noticed here):
// - 6.5 release_pages: the lruvec lock is held across consecutive small LRU folios of one lruvec,
//   dropped when `++lock_batch == SWAP_CLUSTER_MAX` (every entry counts, also one that only drops a
//   reference) and before a large folio (released by __folio_put_large under its own lock);
//   mem_cgroup_uncharge_list makes one uncharge_batch per run of one memcg; free_unref_page_list
//   takes the pcp lock per run of one zone and drops it every SWAP_CLUSTER_MAX pages.
// - lru_add_drain: folio_batch_move_lru relocks per lruvec change, then folios_put drops the batch's
//   references; an empty LRU-add or mlock batch is not drained at all.
// - 7.x folios_put_refs: returns before mem_cgroup_uncharge_folios / free_unref_folios when no folio
//   reached zero; free_unref_folios takes the pcp lock only for pcp orders (≤ PAGE_ALLOC_COSTLY_ORDER
//   and the PMD order), once per run of one zone; large folios are dequeued from deferred split.
// - __folio_put: an LRU folio costs its lruvec lock and its lruvec_del_folio line; a stale PG_mlocked
//   is cleared at free (UNEVICTABLE_PGCLEARED).
// Each `struct page` line a primitive touches counts once per primitive (see FolioCounters).
import { describe, expect, it } from "vitest";
import { PG, type PhysMem } from "../index.js";
import { folioState, foliosPutRefsDoOneTrusted, releasePagesTrusted } from "../internal.js";
import { counterDelta, lruSmall, mappedAnon, mem, refusal } from "./helpers.js";

type Key = keyof PhysMem["counters"];

const delta = counterDelta;

const LOCKS = [
  "lruvecLockAcquisitions",
  "memcgUnchargeBatches",
  "pcpLockAcquisitions",
  "freeListCalls",
] as const;

describe("6.5 release_pages away from lruvec, memcg and node 0", () => {
  it("three LRU folios of memcg 1: one lruvec lock, one uncharge batch, one pcp lock, one free list", () => {
    const m = mem({ nrMemcgs: 2 });
    const hs = lruSmall(m, 3, 1);
    expect(
      delta(m, [...LOCKS, "lruDels", "refcountAtomics", "foliosFreed"], () => m.releasePages(hs, 0, 3)),
    ).toEqual({
      lruvecLockAcquisitions: 1,
      memcgUnchargeBatches: 1,
      pcpLockAcquisitions: 1,
      freeListCalls: 1,
      lruDels: 3,
      refcountAtomics: 3,
      foliosFreed: 3,
    });
    m.checkInvariants();
  });

  it("the lruvec and pcp locks are dropped after SWAP_CLUSTER_MAX (32) entries: 33 folios take each twice", () => {
    for (const [n, locks] of [
      [32, 1],
      [33, 2],
    ] as const) {
      const m = mem({ nrMemcgs: 2 });
      const hs = lruSmall(m, n, 1);
      expect(
        delta(m, LOCKS, () => m.releasePages(hs, 0, n)),
        `${n} folios`,
      ).toEqual({
        lruvecLockAcquisitions: locks,
        memcgUnchargeBatches: 1,
        pcpLockAcquisitions: locks,
        freeListCalls: 1,
      });
    }
  });

  it("an entry that only drops a reference counts toward the lock batch", () => {
    // a, 31 pages of a large folio others still hold, b: b is the 33rd entry, the lock is re-taken.
    const m = mem({ nrMemcgs: 2 });
    const [a, b] = lruSmall(m, 2, 1);
    const big = m.allocFolio(5, { memcg: 1 });
    m.folioRefAdd(big, 33);
    const pages = [a, ...Array.from({ length: 31 }, (_, i) => big + i), b];
    expect(
      delta(m, ["lruvecLockAcquisitions", "refcountAtomics", "metadataLines"], () =>
        m.releasePages(pages, 0, 33),
      ),
    ).toMatchObject({ lruvecLockAcquisitions: 2, refcountAtomics: 33 });
    expect(m.folioRef(big)).toBe(3);
    // With one such entry in between, the lock is held throughout.
    const [c, d] = lruSmall(m, 2, 1);
    expect(delta(m, ["lruvecLockAcquisitions"], () => m.releasePages([c, big, d], 0, 3))).toEqual({
      lruvecLockAcquisitions: 1,
    });
    // Only references dropped: one atomic and one line (the head page's _refcount) per entry.
    expect(
      delta(m, ["refcountAtomics", "metadataLines", "foliosFreed"], () => m.releasePages([big], 0, 1)),
    ).toEqual({
      refcountAtomics: 1,
      metadataLines: 1,
      foliosFreed: 0,
    });
    m.checkInvariants();
  });

  it("counts per entry: one call over [p, x] costs the atomics and lines of [x] then [p]", () => {
    // Two machines with the same history: p a page of a folio others still hold, x a folio's last reference.
    const run = (split: boolean) => {
      const m = mem();
      const big = m.allocFolio(2);
      m.folioRefAdd(big, 1);
      const x = m.allocFolio(0);
      return delta(m, ["refcountAtomics", "metadataLines"], () => {
        if (split) {
          m.releasePages([x], 0, 1);
          m.releasePages([big + 1], 0, 1);
        } else m.releasePages([big + 1, x], 0, 2);
      });
    };
    expect(run(false)).toEqual(run(true));
    expect(run(false).refcountAtomics).toBe(2);
  });

  it("refuses the last reference of a mapped large folio, wherever its neighbours' fields stand", () => {
    // A large folio right after an unmapped order-1 folio (whose page[1] holds _large_mapcount -1).
    const m = mem();
    const small = new Set(Array.from({ length: 4 }, () => m.allocFolio(1)));
    const h = Array.from({ length: 4 }, () => m.allocFolio(2)).find((c) => small.has(c - 2)) ?? -1;
    expect(h).toBeGreaterThan(0);
    m.folioSetAnon(h, 7, h);
    m.folioAddRmapPtes(h, h + 1, 1); // its second page mapped once, on the allocation's reference
    expect(refusal(() => m.releasePages([h], 0, 1)).code).toBe("FREE_MAPPED");
    expect(refusal(() => m.foliosPutRefs([h], [1], 1)).code).toBe("FREE_MAPPED");
  });

  it("a large folio is released under its own lock; the next LRU folio re-takes the lruvec lock", () => {
    const m = mem({ nrMemcgs: 2 });
    const [a] = lruSmall(m, 1, 1);
    const big = m.allocFolio(2, { memcg: 1 });
    m.folioAddLru(big); // a large folio drains the batch at once
    const [b] = lruSmall(m, 1, 1);
    expect(m.folioTest(big, PG.lru)).toBe(true);
    expect(
      delta(m, ["lruvecLockAcquisitions", "lruDels", "foliosFreed"], () => m.releasePages([a, big, b], 0, 3)),
    ).toEqual({ lruvecLockAcquisitions: 3, lruDels: 3, foliosFreed: 3 });
  });

  it("one uncharge batch per run of one memcg (1 1 0 1: three)", () => {
    const m = mem({ nrMemcgs: 2 });
    const hs = [1, 1, 0, 1].map((memcg) => m.allocFolio(0, { memcg }));
    expect(delta(m, ["memcgUnchargeBatches"], () => m.releasePages(hs, 0, 4))).toEqual({
      memcgUnchargeBatches: 3,
    });
  });

  it("two nodes: the pcp lock per run of one zone, node 1 first; dropped after 32 pages on node 1", () => {
    const m = mem({ nrPages: 8192, nrNodes: 2 });
    const hs = [1, 1, 0].map((node) => m.allocFolio(0, { node }));
    expect(delta(m, ["pcpLockAcquisitions"], () => m.releasePages(hs, 0, 3))).toEqual({
      pcpLockAcquisitions: 2,
    });
    const many = Array.from({ length: 33 }, () => m.allocFolio(0, { node: 1 }));
    expect(delta(m, ["pcpLockAcquisitions"], () => m.releasePages(many, 0, 33))).toEqual({
      pcpLockAcquisitions: 2,
    });
    m.checkInvariants();
  });

  it("names itself in its refusals, the freeing one included", () => {
    const m = mem();
    expect(refusal(() => m.releasePages("ab" as unknown as number[], 0, 0))).toMatchObject({
      code: "EINVAL",
      method: "releasePages",
    });
    const h = mappedAnon(m, 0);
    m.folioRefSubAndTest(h, 1); // the allocation's reference: the page table's is the last
    expect(refusal(() => m.releasePages([h], 0, 1))).toMatchObject({
      code: "FREE_MAPPED",
      method: "releasePages",
    });
  });
});

describe("lru_add_drain", () => {
  it("memcg 1: one lruvec lock; a line per lruvec_add_folio and per dropped batch reference", () => {
    const m = mem({ nrMemcgs: 2 });
    const hs = [m.allocFolio(0, { memcg: 1 }), m.allocFolio(0, { memcg: 1 })];
    for (const h of hs) m.folioAddLru(h);
    expect(
      delta(m, ["lruvecLockAcquisitions", "lruAdds", "refcountAtomics", "metadataLines", "foliosFreed"], () =>
        m.lruAddDrain(),
      ),
    ).toEqual({
      lruvecLockAcquisitions: 1,
      lruAdds: 2,
      refcountAtomics: 2,
      metadataLines: 4,
      foliosFreed: 0,
    });
    expect(hs.map((h) => m.folioRef(h))).toEqual([1, 1]);
  });

  it("with both batches empty, nothing is drained (no free list, no mlock batch)", () => {
    const m = mem();
    expect(
      delta(m, ["lruAddDrainCalls", "freeListCalls", "mlockBatchDrains", "metadataLines"], () =>
        m.lruAddDrain(),
      ),
    ).toEqual({
      lruAddDrainCalls: 1,
      freeListCalls: 0,
      mlockBatchDrains: 0,
      metadataLines: 0,
    });
  });
});

describe("lru_add_drain's release of the batch references", () => {
  it("a batch whose reference someone else dropped underflows, named after lru_add_drain", () => {
    const m = mem();
    const h = m.allocFolio(0);
    m.folioAddLru(h);
    expect(m.folioRefSubAndTest(h, 2)).toBe(true);
    expect(refusal(() => m.lruAddDrain())).toMatchObject({
      code: "REFCOUNT_UNDERFLOW",
      method: "lruAddDrain",
    });
  });
});

describe("the per-CPU LRU-add batch's membership", () => {
  it("a lower pfn batched after a higher one is in the batch", () => {
    const m = mem();
    const p = Array.from({ length: 5 }, () => m.allocFolio(0)).sort((x, y) => x - y);
    for (const h of [p[2], p[0], p[4], p[1]]) m.folioAddLru(h);
    for (const h of [p[2], p[0], p[4], p[1]])
      expect(refusal(() => m.folioAddLru(h)).message).toContain(
        `(${h}): folio is already in the LRU-add batch`,
      );
    m.folioAddLru(p[3]);
    expect(m.lruAddBatchCount()).toBe(5);
  });

  it("a drained folio is no longer in it, whatever the batch's array still holds", () => {
    const m = mem();
    const q = Array.from({ length: 5 }, () => m.allocFolio(0)).sort((x, y) => x - y);
    for (const h of [q[0], q[4], q[2]]) m.folioAddLru(h);
    m.lruAddDrain();
    // A new batch around q[2]'s pfn, shorter than the last one.
    m.folioAddLru(q[1]);
    m.folioAddLru(q[3]);
    m.folioPut(q[2]); // its last reference: not batched, so it is freed
    expect(m.isFree(q[2])).toBe(true);
  });
});

describe("__folio_put and free_unref_page", () => {
  it("an LRU folio's last put costs its lruvec lock, its lruvec_del_folio and one more line", () => {
    // Two machines with the same history but for the LRU: the same pfn, the same buddy merges.
    const keys = ["lruvecLockAcquisitions", "lruDels", "metadataLines"] as const;
    const a = mem();
    const [onLru] = lruSmall(a, 1);
    const b = mem();
    const off = b.allocFolio(0);
    expect(off).toBe(onLru);
    const da = delta(a, keys, () => a.folioPut(onLru));
    const db = delta(b, keys, () => b.folioPut(off));
    expect([da.lruvecLockAcquisitions, da.lruDels, da.metadataLines - db.metadataLines]).toEqual([1, 1, 1]);
    expect([db.lruvecLockAcquisitions, db.lruDels]).toEqual([0, 0]);
  });

  it("a stale PG_mlocked is cleared at free, on every release path", () => {
    const m = mem();
    const hs = Array.from({ length: 3 }, () => m.allocFolio(0));
    for (const h of hs) m.folioSet(h, PG.mlocked);
    expect(delta(m, ["mlockClearedAtFree"], () => m.folioPut(hs[0]))).toEqual({ mlockClearedAtFree: 1 });
    expect(delta(m, ["mlockClearedAtFree"], () => m.releasePages([hs[1]], 0, 1))).toEqual({
      mlockClearedAtFree: 1,
    });
    expect(delta(m, ["mlockClearedAtFree"], () => m.foliosPutRefs([hs[2]], [1], 1))).toEqual({
      mlockClearedAtFree: 1,
    });
  });

  it("freeFolio on the caller's last reference does what folio_put does; at refcount 0 it drops none", () => {
    // Two machines with the same history: the same folio freed either way.
    const [a, b] = [mem(), mem()];
    const [ha] = lruSmall(a, 1);
    const [hb] = lruSmall(b, 1);
    const keys = Object.keys(a.counters) as Key[];
    expect(delta(a, keys, () => a.freeFolio(ha))).toEqual(delta(b, keys, () => b.folioPut(hb)));
    const c = a.allocFolio(0);
    expect(a.folioRefSubAndTest(c, 1)).toBe(true);
    expect(delta(a, ["refcountAtomics", "foliosFreed"], () => a.freeFolio(c))).toEqual({
      refcountAtomics: 0,
      foliosFreed: 1,
    });
  });

  it("refuses a pfn outside memory or a tail page with the checks' own codes", () => {
    const m = mem();
    expect(refusal(() => m.freeFolio(m.nrPages)).code).toBe("BAD_PFN");
    const h = m.allocFolio(1);
    expect(refusal(() => m.folioAddLru(h + 1))).toMatchObject({ code: "NOT_HEAD", method: "folioAddLru" });
    m.foliosPutRefsInit();
    expect(refusal(() => m.foliosPutRefsDoOne(m.nrPages, 1)).code).toBe("BAD_PFN");
    m.foliosPutRefsComplete();
  });
});

describe("the series' folios_put_refs context", () => {
  it("each step names itself in its refusals", () => {
    const m = mem();
    const h = m.allocFolio(0);
    expect(refusal(() => m.foliosPutRefsComplete()).method).toBe("foliosPutRefsComplete");
    m.foliosPutRefsInit();
    expect(refusal(() => m.foliosPutRefsInit()).method).toBe("foliosPutRefsInit");
    expect(refusal(() => m.foliosPutRefsDoOne(h, 2))).toEqual({
      code: "REFCOUNT_UNDERFLOW",
      method: "foliosPutRefsDoOne",
      message: expect.stringContaining(`(${h}): dropping 2 refs from refcount 1`),
    });
    m.foliosPutRefsComplete();
  });

  it("memcg 1: the first LRU folio freed takes the lruvec lock, the next of that lruvec keeps it", () => {
    const m = mem({ nrMemcgs: 2 });
    const hs = lruSmall(m, 2, 1);
    m.foliosPutRefsInit();
    expect(
      delta(m, ["lruvecLockAcquisitions", "lruDels"], () => {
        for (const h of hs) m.foliosPutRefsDoOne(h, 1);
      }),
    ).toEqual({ lruvecLockAcquisitions: 1, lruDels: 2 });
    m.foliosPutRefsComplete();
    expect(hs.every((h) => m.isFree(h))).toBe(true);
  });

  it("the trusted entries still refuse a missing context and a free page", () => {
    const m = mem();
    const s = folioState(m);
    const h = m.allocFolio(0);
    expect(refusal(() => foliosPutRefsDoOneTrusted(s, h, 1))).toEqual({
      code: "BAD_STATE",
      method: "foliosPutRefsDoOne",
      message: expect.stringContaining("no open context"),
    });
    const big = m.allocFolio(1);
    m.foliosPutRefsInit();
    expect(refusal(() => foliosPutRefsDoOneTrusted(s, big + 1, 1))).toEqual({
      code: "NOT_HEAD",
      method: "foliosPutRefsDoOne",
      message: expect.stringContaining(`(${big + 1}): not the head of an allocated folio`),
    });
    m.foliosPutRefsComplete();
    m.folioPut(h);
    expect(refusal(() => releasePagesTrusted(s, [h], 0, 1))).toMatchObject({
      code: "USE_AFTER_FREE",
      method: "releasePages",
      message: expect.stringContaining(`(${h}): not the head of an allocated folio`),
    });
  });
});

describe("7.x folios_put_refs", () => {
  it("no folio reaches zero: one atomic and one line each, no uncharge, no free list", () => {
    const m = mem();
    const hs = [m.allocFolio(0), m.allocFolio(2)];
    for (const h of hs) m.folioRefAdd(h, 2);
    expect(
      delta(m, ["refcountAtomics", "metadataLines", "freeListCalls", "memcgUnchargeBatches"], () =>
        m.foliosPutRefs(hs, [1, 2], 2),
      ),
    ).toEqual({ refcountAtomics: 2, metadataLines: 2, freeListCalls: 0, memcgUnchargeBatches: 0 });
  });

  it("memcg 1, one small and one large LRU folio: one lruvec lock, one uncharge batch", () => {
    const m = mem({ nrMemcgs: 2 });
    const [a] = lruSmall(m, 1, 1);
    const big = m.allocFolio(1, { memcg: 1 });
    m.folioAddLru(big);
    m.folioSet(a, PG.mlocked); // the general path for a as well
    for (const [heads, n] of [
      [[a, big], 2],
      [lruSmall(m, 2, 1), 2],
    ] as const) {
      expect(
        delta(m, ["lruvecLockAcquisitions", "memcgUnchargeBatches", "lruDels"], () =>
          m.foliosPutRefs(heads, [1, 1], n),
        ),
      ).toEqual({ lruvecLockAcquisitions: 1, memcgUnchargeBatches: 1, lruDels: 2 });
    }
  });

  it("the pcp lock for pcp orders only (3 and the PMD order, not 4), per zone run, node 1 first", () => {
    const m = mem({ nrPages: 8192, nrNodes: 2 });
    for (const [order, locks] of [
      [3, 1],
      [4, 0],
      [9, 1],
    ] as const) {
      const h = m.allocFolio(order, { node: 1 });
      expect(
        delta(m, ["pcpLockAcquisitions"], () => m.foliosPutRefs([h], [1], 1)),
        `order ${order}`,
      ).toEqual({
        pcpLockAcquisitions: locks,
      });
    }
    // Order 0 only: a batch over both nodes, then one on node 0 alone.
    const two = [m.allocFolio(0, { node: 0 }), m.allocFolio(0, { node: 1 })];
    expect(delta(m, ["pcpLockAcquisitions"], () => m.foliosPutRefs(two, [1, 1], 2))).toEqual({
      pcpLockAcquisitions: 2,
    });
    const one = m.allocFolio(0, { node: 0 });
    expect(delta(m, ["pcpLockAcquisitions"], () => m.foliosPutRefs([one], [1], 1))).toEqual({
      pcpLockAcquisitions: 1,
    });
  });

  it("an order-2 folio queued for deferred split is dequeued when freed", () => {
    const m = mem();
    const h = mappedAnon(m, 2);
    m.folioRemoveRmapPtes(h, h, 1);
    expect(m.splitQueueLength()).toBe(1);
    m.folioRemoveRmapPtes(h, h + 1, 3);
    expect(delta(m, ["deferredSplitDequeued"], () => m.foliosPutRefs([h], [5], 1))).toEqual({
      deferredSplitDequeued: 1,
    });
    expect(m.splitQueueLength()).toBe(0);
    m.checkInvariants();
  });

  it("refuses a page-cache folio's last reference while it is still in its mapping", () => {
    const m = mem();
    const as = m.createAddressSpace({ swapBacked: false });
    const h = m.allocFolio(0);
    m.filemapAddFolio(as, h, 0);
    m.folioPut(h); // the allocation's reference: the page cache's is the last
    expect(refusal(() => m.foliosPutRefs([h], [1], 1))).toMatchObject({
      code: "FREE_BAD_FLAGS",
      method: "foliosPutRefs",
    });
  });

  it("checks every argument before it drops a reference", () => {
    const m = mem();
    const h = m.allocFolio(0);
    const h2 = m.allocFolio(0);
    for (const [heads, refs, nr] of [
      ["ab", [1], 0],
      [[h], "ab", 0],
      [[h], [1, 1], 2],
      [[h, h2], [1], 2],
    ] as const) {
      expect(
        refusal(() => m.foliosPutRefs(heads as ArrayLike<number>, refs as ArrayLike<number>, nr)),
      ).toMatchObject({
        code: "EINVAL",
        method: "foliosPutRefs",
        message: expect.stringMatching(nr === 0 ? /array-likes/ : /within both arrays/),
      });
    }
    expect(refusal(() => m.foliosPutRefs([h, m.nrPages], [1, 1], 2)).code).toBe("BAD_PFN");
    expect(m.isFree(h)).toBe(false);
    expect(m.folioRef(h)).toBe(1);
  });
});
