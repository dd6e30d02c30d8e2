import { describe, expect, it } from "vitest";
import type { PhysMem } from "../index.js";
import { FOLIO_BATCH_SIZE, PAGEVEC_SIZE, PG } from "../index.js";
import { lruSmall, mappedAnon, mem } from "./helpers.js";

/** 7.x free_pages_and_swap_cache shape: heads in folio_batches of ≤ 31 with one ref each. */
function putInBatches(m: PhysMem, heads: number[], refs?: number[]): void {
  for (let i = 0; i < heads.length; i += FOLIO_BATCH_SIZE) {
    const hs = heads.slice(i, i + FOLIO_BATCH_SIZE);
    const rs = refs ? refs.slice(i, i + FOLIO_BATCH_SIZE) : hs.map(() => 1);
    m.foliosPutRefs(hs, rs, hs.length);
  }
}

function seriesPut(m: PhysMem, heads: number[]): void {
  m.foliosPutRefsInit();
  for (const h of heads) m.foliosPutRefsDoOne(h, 1);
  m.foliosPutRefsComplete();
}

describe("lruvec lock acquisitions when releasing", () => {
  it("100 small LRU folios, one lruvec: release_pages 4 (= ceil(100/32)), series 4, folios_put_refs 4 batches → 4", () => {
    for (const alg of ["release_pages", "series", "folios_put_refs"] as const) {
      const m = mem();
      const heads = lruSmall(m, 100);
      m.resetCounters();
      if (alg === "release_pages") m.releasePages(heads, 0, heads.length);
      else if (alg === "series") seriesPut(m, heads);
      else putInBatches(m, heads);
      expect(m.counters.lruvecLockAcquisitions).toBe(4);
      expect(m.counters.foliosFreed).toBe(100);
      expect(m.counters.lruDels).toBe(100);
      expect(m.counters.refcountAtomics).toBe(100);
      expect(m.counters.freeListCalls).toBe(alg === "folios_put_refs" ? 4 : 1);
      expect(m.lruvecNrFolios(0)).toBe(0);
      m.checkInvariants();
    }
  });

  it("33 folios: release_pages relocks after 32 (2), one 31+2 folio_batch split also 2", () => {
    const a = mem();
    a.releasePages(lruSmall(a, 33), 0, 33);
    const b = mem();
    const hb = lruSmall(b, 33);
    b.resetCounters();
    putInBatches(b, hb);
    expect(a.counters.lruvecLockAcquisitions - 3).toBe(2); // 3 from LRU-add batch moves (15+15+3)
    expect(b.counters.lruvecLockAcquisitions).toBe(2);
  });

  it("entries that do not drop to zero still count toward release_pages' lock_batch", () => {
    const m = mem();
    const heads = lruSmall(m, 40);
    for (const h of heads.slice(1, 33)) m.folioGet(h); // entries 1..32 keep a reference
    m.resetCounters();
    m.releasePages(heads, 0, 40);
    // lock at entry 0; entry 32 is the 32nd processed while held → unlock; entry 33 relocks
    expect(m.counters.lruvecLockAcquisitions).toBe(2);
    expect(m.counters.foliosFreed).toBe(8);
  });

  it("alternating memcgs relock on every lruvec change in all three algorithms", () => {
    for (const alg of ["release_pages", "series", "folios_put_refs"] as const) {
      const m = mem({ nrMemcgs: 2 });
      const heads: number[] = [];
      for (let i = 0; i < 10; i++) heads.push(...lruSmall(m, 1, i % 2));
      expect(m.lruvecOf(heads[0])).toBe(0);
      expect(m.lruvecOf(heads[1])).toBe(1);
      m.resetCounters();
      if (alg === "release_pages") m.releasePages(heads, 0, 10);
      else if (alg === "series") seriesPut(m, heads);
      else putInBatches(m, heads);
      expect(m.counters.lruvecLockAcquisitions).toBe(10);
      m.checkInvariants();
    }
  });

  it("large LRU folios: release_pages takes the lock once per folio, folios_put_refs once per batch", () => {
    const mk = () => {
      const m = mem();
      const heads: number[] = [];
      for (let i = 0; i < 5; i++) {
        const h = m.allocFolio(2);
        m.folioAddLru(h); // large folios move the LRU-add batch at once
        heads.push(h);
      }
      m.resetCounters();
      return { m, heads };
    };
    const a = mk();
    a.m.releasePages(a.heads, 0, 5);
    expect(a.m.counters.lruvecLockAcquisitions).toBe(5);
    expect(a.m.counters.foliosFreed).toBe(5);
    expect(a.m.counters.freeListCalls).toBe(1);
    const b = mk();
    putInBatches(b.m, b.heads);
    expect(b.m.counters.lruvecLockAcquisitions).toBe(1);
    expect(b.m.counters.pagesFreed).toBe(20);
    const c = mk();
    seriesPut(c.m, c.heads);
    expect(c.m.counters.lruvecLockAcquisitions).toBe(5);
  });

  it("small, large, small in one lruvec: release_pages 3 (unlock for the large folio), folios_put_refs 1", () => {
    const mk = () => {
      const m = mem();
      const [s1] = lruSmall(m, 1);
      const l = m.allocFolio(3);
      m.folioAddLru(l);
      const [s2] = lruSmall(m, 1);
      m.resetCounters();
      return { m, heads: [s1, l, s2] };
    };
    const a = mk();
    a.m.releasePages(a.heads, 0, 3);
    expect(a.m.counters.lruvecLockAcquisitions).toBe(3);
    const b = mk();
    putInBatches(b.m, b.heads);
    expect(b.m.counters.lruvecLockAcquisitions).toBe(1);
  });

  it("folios not on the LRU are freed without the lruvec lock", () => {
    const m = mem();
    const heads = [m.allocFolio(0), m.allocFolio(0), m.allocFolio(1)];
    m.releasePages(heads, 0, 3);
    expect(m.counters.lruvecLockAcquisitions).toBe(0);
    expect(m.counters.foliosFreed).toBe(3);
  });

  it("series do_one and folios_put_refs drop refs per folio; release_pages one per entry (tail pfns allowed)", () => {
    const m = mem();
    const h = m.allocFolio(3);
    m.folioRefAdd(h, 7);
    m.resetCounters();
    m.releasePages([h + 1, h + 5, h], 0, 3);
    expect(m.folioRef(h)).toBe(5);
    expect(m.counters.refcountAtomics).toBe(3);
    m.foliosPutRefsInit();
    m.foliosPutRefsDoOne(h, 4);
    m.foliosPutRefsComplete();
    expect(m.folioRef(h)).toBe(1);
    m.foliosPutRefs([h], [1], 1);
    expect(m.isFree(h)).toBe(true);
    expect(m.counters.refcountAtomics).toBe(5);
  });

  it("folios_put_refs dequeues deferred-split folios within the batch (one split-queue lock each)", () => {
    const m = mem();
    const h = m.allocFolio(3);
    m.folioSetAnon(h, 1, 0);
    m.folioRefAdd(h, 2);
    m.folioAddRmapPtes(h, h, 2);
    m.folioRemoveRmapPtes(h, h, 1);
    m.folioRemoveRmapPtes(h, h + 1, 1);
    expect(m.folioTest(h, PG.deferredQueued)).toBe(true);
    m.resetCounters();
    m.foliosPutRefs([h], [3], 1);
    expect(m.counters.splitQueueLockAcquisitions).toBe(1);
    expect(m.counters.deferredSplitDequeued).toBe(1);
    expect(m.splitQueueLength()).toBe(0);
    m.checkInvariants();
  });

  it("stale PG_mlocked is cleared at free", () => {
    const m = mem();
    const h = m.allocFolio(0);
    m.folioSet(h, PG.mlocked);
    m.releasePages([h], 0, 1);
    expect(m.counters.mlockClearedAtFree).toBe(1);
  });
});

describe("LRU add batch", () => {
  it("holds a reference per folio until the batch moves; moves at PAGEVEC_SIZE with one lock per lruvec change", () => {
    const m = mem();
    const heads: number[] = [];
    for (let i = 0; i < PAGEVEC_SIZE - 1; i++) {
      const h = m.allocFolio(0);
      m.folioAddLru(h);
      heads.push(h);
    }
    expect(m.folioRef(heads[0])).toBe(2);
    expect(m.lruAddBatchCount()).toBe(14);
    expect(m.counters.lruvecLockAcquisitions).toBe(0);
    const last = m.allocFolio(0);
    m.folioAddLru(last);
    expect(m.lruAddBatchCount()).toBe(0);
    expect(m.counters.lruvecLockAcquisitions).toBe(1);
    expect(m.folioRef(heads[0])).toBe(1);
    expect(m.folioTest(last, PG.lru)).toBe(true);
    expect(m.lruvecNrPages(0)).toBe(15);
    m.checkInvariants();
  });

  it("lru_add_drain moves pending folios, counts the call, and frees folios whose only ref was the batch", () => {
    const m = mem();
    const a = m.allocFolio(0);
    const b = m.allocFolio(0);
    m.folioAddLru(a);
    m.folioAddLru(b);
    m.folioPut(b); // b now only referenced by the batch
    m.resetCounters();
    m.lruAddDrain();
    m.lruAddDrain();
    expect(m.counters.lruAddDrainCalls).toBe(2);
    expect(m.isFree(b)).toBe(true);
    expect(m.folioTest(a, PG.lru)).toBe(true);
    // lock once to add both, once in release_pages to take b off the LRU again
    expect(m.counters.lruvecLockAcquisitions).toBe(2);
    m.checkInvariants();
  });
});

describe("a put never leaves a live folio with fewer references than mappings", () => {
  // mappedAnon(order 2): one reference per PTE (4) plus the allocation's: refcount 5, mapcount 4.
  // Each put path refuses to go below 4 while the folio stays allocated: that put ran before its
  // rmap was removed (or was one too many), and the folio could reach zero still mapped.
  const paths: [string, (m: PhysMem, h: number) => void][] = [
    [
      "folio_put",
      (m, h) => {
        m.folioPut(h);
        m.folioPut(h);
      },
    ],
    ["folios_put_refs", (m, h) => m.foliosPutRefs([h], [2], 1)],
    ["release_pages", (m, h) => m.releasePages([h, h + 1], 0, 2)],
    [
      "series __folios_put_refs_do_one",
      (m, h) => {
        m.foliosPutRefsInit();
        m.foliosPutRefsDoOne(h, 2);
      },
    ],
    ["folio_ref_sub_and_test", (m, h) => void m.folioRefSubAndTest(h, 2)],
  ];
  for (const [name, put] of paths) {
    it(`${name}: REFCOUNT_BELOW_MAPCOUNT`, () => {
      const m = mem();
      const h = mappedAnon(m, 2);
      let code = "";
      try {
        put(m, h);
      } catch (e) {
        code = (e as { code?: string }).code ?? "untyped";
      }
      expect(code).toBe("REFCOUNT_BELOW_MAPCOUNT");
    });
  }

  it("the same puts after the rmaps are removed are fine", () => {
    const m = mem();
    const h = mappedAnon(m, 2);
    m.folioRemoveRmapPtes(h, h, 4);
    m.foliosPutRefs([h], [4], 1);
    expect(m.folioRef(h)).toBe(1);
    m.folioPut(h);
    expect(m.isFree(h)).toBe(true);
  });
});
