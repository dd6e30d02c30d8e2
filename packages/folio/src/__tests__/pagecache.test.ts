import { describe, expect, it } from "vitest";
import { NodeStat, PG } from "../index.js";
import { mem } from "./helpers.js";

describe("page cache", () => {
  it("holds folio_nr_pages references per folio, so file folios outlive their mappings", () => {
    const m = mem();
    const as = m.createAddressSpace({ swapBacked: false });
    const h = m.allocFolio(2);
    m.resetCounters();
    m.filemapAddFolio(as, h, 8);
    expect(m.folioRef(h)).toBe(5);
    expect(m.counters.pageCacheLockAcquisitions).toBe(1);
    expect(m.counters.refcountAtomics).toBe(1);
    expect(m.nodeStat(NodeStat.NR_FILE_PAGES)).toBe(4);
    expect(m.folioMapping(h)).toBe(as);
    expect(m.folioIndex(h)).toBe(8);
    for (let i = 8; i < 12; i++) expect(m.filemapGetFolio(as, i)).toBe(h);
    expect(m.filemapGetFolio(as, 12)).toBe(-1);
    expect(m.filemapGetFolio(as, 7)).toBe(-1);
    m.folioPut(h); // the allocation's reference: the page cache keeps it alive
    m.folioRefAdd(h, 4);
    m.folioAddRmapPtes(h, h, 4);
    expect(m.nodeStat(NodeStat.NR_FILE_MAPPED)).toBe(4);
    m.folioRemoveRmapPtes(h, h, 4);
    m.releasePages([h, h + 1, h + 2, h + 3], 0, 4);
    expect(m.isFree(h)).toBe(false);
    expect(m.folioRef(h)).toBe(4);
    m.checkInvariants();
    m.filemapRemoveFolio(h);
    expect(m.isFree(h)).toBe(true);
    expect(m.nodeStat(NodeStat.NR_FILE_PAGES)).toBe(0);
    expect(m.filemapGetFolio(as, 8)).toBe(-1);
    m.checkInvariants();
  });

  it("shmem address spaces set PG_swapbacked and count NR_SHMEM", () => {
    const m = mem();
    const as = m.createAddressSpace({ swapBacked: true });
    const h = m.allocFolio(0);
    m.filemapAddFolio(as, h, 3);
    expect(m.folioTest(h, PG.swapbacked)).toBe(true);
    expect(m.folioTest(h, PG.anon)).toBe(false);
    expect(m.nodeStat(NodeStat.NR_SHMEM)).toBe(1);
    m.filemapRemoveFolio(h);
    expect(m.folioRef(h)).toBe(1);
    expect(m.nodeStat(NodeStat.NR_SHMEM)).toBe(0);
    m.checkInvariants();
  });

  it("refuses misaligned indices, occupied ranges, anon folios and mapped removal", () => {
    const m = mem();
    const as = m.createAddressSpace({ swapBacked: false });
    const big = m.allocFolio(3);
    expect(() => m.filemapAddFolio(as, big, 4)).toThrow(/multiple of 8/);
    const small = m.allocFolio(0);
    m.filemapAddFolio(as, small, 5);
    expect(() => m.filemapAddFolio(as, big, 0)).toThrow(/index 5 is occupied/);
    m.filemapAddFolio(as, big, 8);
    const other = m.allocFolio(0);
    expect(() => m.filemapAddFolio(as, other, 9)).toThrow(/occupied/);
    const anon = m.allocFolio(0);
    m.folioSetAnon(anon, 1, 0);
    expect(() => m.filemapAddFolio(as, anon, 100)).toThrow(/anonymous/);
    m.folioAddRmapPtes(small, small, 1);
    expect(() => m.filemapRemoveFolio(small)).toThrow(/still mapped/);
    expect(() => m.filemapRemoveFolio(other)).toThrow(/not in the page cache/);
  });
});
