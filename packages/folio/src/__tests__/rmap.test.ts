import { describe, expect, it } from "vitest";
import { COMPOUND_MAPPED, NodeStat, PG } from "../index.js";
import { mappedAnon, mem } from "./helpers.js";

describe("rmap accounting", () => {
  it("mapping a small page twice: mapcount 2, NR_ANON_MAPPED counts it once", () => {
    const m = mem();
    const h = m.allocFolio(0);
    m.folioSetAnon(h, 1, 0);
    m.folioRefAdd(h, 2);
    m.resetCounters();
    m.folioAddRmapPtes(h, h, 1);
    m.folioAddRmapPtes(h, h, 1);
    expect(m.pageMapcount(h)).toBe(2);
    expect(m.folioMapcount(h)).toBe(2);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(1);
    expect(m.counters.mapcountAtomics).toBe(2);
    expect(m.counters.statUpdates).toBe(1);
    m.pageRemoveRmap(h, false);
    expect(m.pageMapcount(h)).toBe(1);
    expect(m.folioMapped(h)).toBe(true);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(1);
    m.folioRemoveRmapPtes(h, h, 1);
    expect(m.folioMapped(h)).toBe(false);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(0);
    expect(m.counters.statUpdates).toBe(2);
    m.checkInvariants();
  });

  it("a THP both PMD- and PTE-mapped follows the COMPOUND_MAPPED arithmetic", () => {
    const m = mem();
    const h = m.allocFolio(9);
    m.folioSetAnon(h, 1, 0);
    m.folioRefAdd(h, 20);
    m.folioAddRmapPmd(h);
    expect(m.nrPagesMapped(h)).toBe(COMPOUND_MAPPED);
    expect(m.nodeStat(NodeStat.NR_ANON_THPS)).toBe(512);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(512);
    m.folioAddRmapPtes(h, h + 10, 4);
    expect(m.nrPagesMapped(h)).toBe(COMPOUND_MAPPED + 4);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(512); // already counted through the PMD
    expect(m.entireMapcount(h)).toBe(1);
    expect(m.largeMapcount(h)).toBe(5);
    // removing a PTE while PMD-mapped unmaps nothing
    m.resetCounters();
    m.pageRemoveRmap(h + 10, false);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(512);
    expect(m.counters.statUpdates).toBe(0);
    expect(m.counters.deferredSplitCalls).toBe(0);
    // removing the PMD: 512 - 3 still PTE-mapped pages become unmapped; partially mapped → queued (6.5)
    m.pageRemoveRmap(h, true);
    expect(m.nrPagesMapped(h)).toBe(3);
    expect(m.nodeStat(NodeStat.NR_ANON_THPS)).toBe(0);
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(3);
    expect(m.counters.statUpdates).toBe(2);
    expect(m.splitQueueLength()).toBe(1);
    m.checkInvariants();
  });

  it("a PMD-only THP unmapped by PMD is not queued (6.5 and 7.x)", () => {
    for (const variant of ["6.5", "7.x"] as const) {
      const m = mem();
      const h = m.allocFolio(9);
      m.folioSetAnon(h, 1, 0);
      m.folioRefAdd(h, 1);
      m.folioAddRmapPmd(h);
      m.resetCounters();
      if (variant === "6.5") m.pageRemoveRmap(h, true);
      else m.folioRemoveRmapPmd(h);
      expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(0);
      expect(m.nodeStat(NodeStat.NR_ANON_THPS)).toBe(0);
      expect(m.splitQueueLength()).toBe(0);
      expect(m.counters.entireMapcountAtomics).toBe(1);
      expect(m.counters.nrPagesMappedAtomics).toBe(1);
      expect(m.counters.largeMapcountAtomics).toBe(variant === "7.x" ? 1 : 0);
      expect(m.counters.statUpdates).toBe(2);
      m.checkInvariants();
    }
  });

  it("file THP PMD mappings go to NR_FILE_PMDMAPPED / NR_SHMEM_PMDMAPPED", () => {
    const m = mem();
    const file = m.createAddressSpace({ swapBacked: false });
    const shm = m.createAddressSpace({ swapBacked: true });
    const a = m.allocFolio(9);
    const b = m.allocFolio(9);
    m.filemapAddFolio(file, a, 0);
    m.filemapAddFolio(shm, b, 512);
    m.folioAddRmapPmd(a);
    m.folioAddRmapPmd(b);
    expect(m.nodeStat(NodeStat.NR_FILE_PMDMAPPED)).toBe(512);
    expect(m.nodeStat(NodeStat.NR_SHMEM_PMDMAPPED)).toBe(512);
    expect(m.nodeStat(NodeStat.NR_FILE_MAPPED)).toBe(1024);
    expect(m.nodeStat(NodeStat.NR_ANON_THPS)).toBe(0);
    m.checkInvariants();
    m.folioRemoveRmapPmd(a);
    m.pageRemoveRmap(b, true);
    expect(m.nodeStat(NodeStat.NR_FILE_PMDMAPPED)).toBe(0);
    expect(m.nodeStat(NodeStat.NR_SHMEM_PMDMAPPED)).toBe(0);
    expect(m.nodeStat(NodeStat.NR_FILE_MAPPED)).toBe(0);
    expect(m.splitQueueLength()).toBe(0);
    m.checkInvariants();
  });

  it("per-call counters of the three removal functions for a whole order-3 folio", () => {
    const m = mem();
    const a = mappedAnon(m, 3);
    const b = mappedAnon(m, 3);
    const c = mappedAnon(m, 3);
    m.resetCounters();
    for (let i = 0; i < 8; i++) m.pageRemoveRmap(a + i, false);
    expect(m.counters).toMatchObject({
      mapcountAtomics: 8,
      nrPagesMappedAtomics: 8,
      largeMapcountAtomics: 0,
      statUpdates: 8,
      deferredSplitCalls: 8,
      deferredSplitQueued: 1,
      splitQueueLockAcquisitions: 1,
    });
    m.resetCounters();
    m.folioRemoveRmapRange(b, b, 8);
    expect(m.counters).toMatchObject({
      mapcountAtomics: 8,
      nrPagesMappedAtomics: 1,
      largeMapcountAtomics: 0,
      statUpdates: 1,
      deferredSplitCalls: 0,
      splitQueueLockAcquisitions: 0,
      metadataLines: 8,
    });
    m.resetCounters();
    m.folioRemoveRmapPtes(c, c, 8);
    expect(m.counters).toMatchObject({
      mapcountAtomics: 8,
      nrPagesMappedAtomics: 1,
      largeMapcountAtomics: 1,
      statUpdates: 1,
      deferredSplitCalls: 0,
      splitQueueLockAcquisitions: 0,
      metadataLines: 8,
    });
    expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(0);
    m.checkInvariants();
  });

  it("metadata lines count distinct struct pages: head and page[1] outside the range add one each", () => {
    const m = mem();
    const h = mappedAnon(m, 4);
    m.resetCounters();
    m.folioRemoveRmapPtes(h, h + 4, 2); // pages 4,5 + head + page[1]; queues: + head (dup) + page[2]
    expect(m.counters.metadataLines).toBe(2 + 2 + 2);
    m.resetCounters();
    m.folioRemoveRmapPtes(h, h + 1, 1); // page[1] is the range itself: 1 + head
    expect(m.counters.metadataLines).toBe(2);
  });

  describe("deferred split: when each algorithm queues", () => {
    it("6.5 page_remove_rmap: unmapping a whole order-3 folio page by page queues it, dequeued at free", () => {
      const m = mem();
      const h = mappedAnon(m, 3);
      m.resetCounters();
      for (let i = 0; i < 8; i++) {
        m.pageRemoveRmap(h + i, false);
        expect(m.folioTest(h, PG.deferredQueued)).toBe(true);
        m.folioPut(h);
      }
      expect(m.counters.splitQueueLockAcquisitions).toBe(1);
      expect(m.splitQueueLength()).toBe(1);
      m.folioPut(h);
      expect(m.isFree(h)).toBe(true);
      expect(m.counters.splitQueueLockAcquisitions).toBe(2);
      expect(m.counters.deferredSplitQueued).toBe(1);
      expect(m.counters.deferredSplitDequeued).toBe(1);
      expect(m.splitQueueLength()).toBe(0);
      m.checkInvariants();
    });

    it("series folio_remove_rmap_range and 7.x folio_remove_rmap_ptes of the whole folio do not queue", () => {
      for (const fn of ["range", "ptes"] as const) {
        const m = mem();
        const h = mappedAnon(m, 3);
        m.resetCounters();
        if (fn === "range") m.folioRemoveRmapRange(h, h, 8);
        else m.folioRemoveRmapPtes(h, h, 8);
        expect(m.splitQueueLength()).toBe(0);
        m.folioRefSubAndTest(h, 8);
        m.folioPut(h);
        expect(m.counters.splitQueueLockAcquisitions).toBe(0);
        expect(m.isFree(h)).toBe(true);
      }
    });

    it("rmapPolicy v6.9: every PTE-level unmap that unmaps a page calls deferred_split_folio, whole or not", () => {
      // v6.9 __folio_remove_rmap: `if (folio_test_large(folio) && folio_test_anon(folio)) if (level ==
      // RMAP_LEVEL_PTE || nr < nr_pmdmapped) deferred_split_folio(folio)` inside `if (nr)`.
      const m69 = mem({ rmapPolicy: "v6.9" });
      const m18 = mem();
      for (const m of [m69, m18]) {
        const whole = mappedAnon(m, 3);
        const part = mappedAnon(m, 3);
        m.resetCounters();
        m.folioRemoveRmapPtes(whole, whole, 8);
        m.folioRemoveRmapPtes(part, part, 2);
        m.folioRemoveRmapPtes(part, part + 2, 2);
        m.checkInvariants();
      }
      // v6.9: the whole unmap queues too (lock), the second partial call returns early (queued).
      expect(m69.counters.deferredSplitCalls).toBe(3);
      expect(m69.counters.splitQueueLockAcquisitions).toBe(2);
      expect(m69.splitQueueLength()).toBe(2);
      expect(m69.counters.deferredSplitQueued).toBe(2);
      // v6.18: only the partial folio, once, flagged PG_partially_mapped.
      expect(m18.counters.deferredSplitCalls).toBe(1);
      expect(m18.counters.splitQueueLockAcquisitions).toBe(1);
      expect(m18.splitQueueLength()).toBe(1);
      // No PG_partially_mapped before v6.12.
      for (let pfn = 0; pfn < m69.nrPages; pfn++)
        if (!m69.isFree(pfn) && m69.folioHead(pfn) === pfn)
          expect(m69.folioTest(pfn, PG.partiallyMapped)).toBe(false);
    });

    it("rmapPolicy is validated", () => {
      expect(() => mem({ rmapPolicy: "v6.1" as never })).toThrow(/rmapPolicy must be "v6.9" or "v6.18"/);
    });

    it("a partial unmap queues in all three; 7.x also sets partially_mapped and takes the lock only once", () => {
      const m = mem();
      const a = mappedAnon(m, 3);
      const b = mappedAnon(m, 3);
      const c = mappedAnon(m, 3);
      m.resetCounters();
      for (let i = 0; i < 4; i++) m.pageRemoveRmap(a + i, false);
      expect(m.folioTest(a, PG.deferredQueued)).toBe(true);
      expect(m.counters.splitQueueLockAcquisitions).toBe(1);
      m.folioRemoveRmapRange(b, b, 2);
      m.folioRemoveRmapRange(b, b + 2, 2);
      expect(m.folioTest(b, PG.deferredQueued)).toBe(true);
      expect(m.counters.splitQueueLockAcquisitions).toBe(2);
      m.folioRemoveRmapPtes(c, c, 2);
      m.folioRemoveRmapPtes(c, c + 2, 2);
      expect(m.folioTest(c, PG.deferredQueued)).toBe(true);
      expect(m.folioTest(c, PG.partiallyMapped)).toBe(true);
      expect(m.counters.splitQueueLockAcquisitions).toBe(3);
      expect(m.counters.deferredSplitCalls).toBe(4 + 2 + 1);
      expect(m.splitQueueLength()).toBe(3);
      m.checkInvariants();
    });

    it("the last range of a split unmap still queues in the series when pages stay mapped elsewhere", () => {
      const m = mem();
      const h = mappedAnon(m, 3);
      m.folioRefAdd(h, 1);
      m.folioAddRmapPtes(h, h, 1); // page 0 mapped twice
      m.folioRemoveRmapRange(h, h, 8);
      expect(m.pageMapcount(h)).toBe(1);
      expect(m.folioTest(h, PG.deferredQueued)).toBe(true);
      expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(1);
    });

    it("is skipped for folios in the swap cache, file folios and order-1 folios", () => {
      const m = mem();
      const sc = mappedAnon(m, 3);
      m.folioSet(sc, PG.swapcache);
      m.pageRemoveRmap(sc, false);
      m.folioRemoveRmapPtes(sc, sc + 1, 1);
      const o1 = mappedAnon(m, 1);
      m.pageRemoveRmap(o1, false);
      m.folioRemoveRmapPtes(o1, o1 + 1, 1);
      const file = m.createAddressSpace({ swapBacked: false });
      const f = m.allocFolio(3);
      m.filemapAddFolio(file, f, 0);
      m.folioRefAdd(f, 8);
      m.folioAddRmapPtes(f, f, 8);
      m.pageRemoveRmap(f, false);
      m.folioRemoveRmapRange(f, f + 1, 2);
      expect(m.splitQueueLength()).toBe(0);
      expect(m.counters.splitQueueLockAcquisitions).toBe(0);
      m.checkInvariants();
    });
  });

  it("munlock on removal from a VM_LOCKED VMA: 6.5 only for small folios or compound removal", () => {
    const m = mem();
    const big = mappedAnon(m, 2);
    m.folioSet(big, PG.mlocked);
    m.pageRemoveRmap(big, false, true);
    expect(m.folioTest(big, PG.mlocked)).toBe(true);
    m.folioRemoveRmapPtes(big, big + 1, 1, true);
    expect(m.folioTest(big, PG.mlocked)).toBe(false);
    expect(m.counters.munlockCalls).toBe(1);
  });
});
