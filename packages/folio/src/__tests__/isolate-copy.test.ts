// folio_isolate_lru (mm/vmscan.c, v6.18) as migration uses it, and PhysMem.copyFrom (a model facility:
// one built workload copied for each design). Written from the kernel's stated semantics: isolation
// succeeds only for a folio on an LRU list, takes it off that list under its own lruvec's lock with a
// reference for the isolator, clears PG_lru and keeps PG_active; a folio still in a per-CPU LRU-add
// batch, or already isolated, is not isolated again.
import { describe, expect, it } from "vitest";
import { createPhysMem, PG } from "../index.js";
import { mappedAnon, mem, refusal } from "./helpers.js";

describe("folioIsolateLru", () => {
  it("takes a folio off its own lruvec with one reference; PG_lru goes, PG_active stays", () => {
    const m = mem({ nrPages: 8192, nrNodes: 2, nrMemcgs: 2 });
    const heads = [0, 1, 2, 3].map((i) => {
      const h = mappedAnon(m, i === 3 ? 2 : 0, { node: i % 2, memcg: i >> 1 });
      m.folioAddLru(h);
      return h;
    });
    m.lruAddDrain();
    const h = heads[3];
    m.folioSet(h, PG.active);
    const lv = m.lruvecOf(h);
    const others = heads.filter((x) => m.lruvecOf(x) !== lv).map((x) => m.lruvecOf(x));
    const before = others.map((l) => [m.lruvecNrFolios(l), m.lruvecNrPages(l)]);
    const [folios, pages] = [m.lruvecNrFolios(lv), m.lruvecNrPages(lv)];
    const ref = m.folioRef(h);
    m.resetCounters();
    expect(m.folioIsolateLru(h)).toBe(true);
    expect(m.folioRef(h)).toBe(ref + 1);
    expect(m.folioTest(h, PG.lru)).toBe(false);
    expect(m.folioTest(h, PG.active)).toBe(true);
    expect(m.lruvecNrFolios(lv)).toBe(folios - 1);
    expect(m.lruvecNrPages(lv)).toBe(pages - 4);
    expect(others.map((l) => [m.lruvecNrFolios(l), m.lruvecNrPages(l)])).toEqual(before);
    expect(m.counters.lruvecLockAcquisitions).toBe(1);
    expect(m.counters.refcountAtomics).toBe(1);
    // One metadata line: the folio's flags and LRU links (lruvec_del_folio).
    expect(m.counters.metadataLines).toBe(1);
    expect(m.counters.lruDels).toBe(1);
    // Isolated already: nothing changes.
    expect(m.folioIsolateLru(h)).toBe(false);
    expect(m.folioRef(h)).toBe(ref + 1);
    expect(m.lruvecNrFolios(lv)).toBe(folios - 1);
    // Put back (folio_putback_lru = folio_add_lru + folio_put): on the LRU again, the reference gone.
    m.folioAddLru(h);
    m.folioPut(h);
    m.lruAddDrain();
    expect(m.folioTest(h, PG.lru)).toBe(true);
    expect(m.folioRef(h)).toBe(ref);
    expect(m.lruvecNrFolios(lv)).toBe(folios);
    m.checkInvariants();
  });

  it("a folio still in the LRU-add batch, or never added, is not isolated", () => {
    const m = mem();
    const h = mappedAnon(m, 0);
    expect(m.folioIsolateLru(h)).toBe(false);
    m.folioAddLru(h);
    const ref = m.folioRef(h);
    expect(m.folioIsolateLru(h)).toBe(false);
    expect(m.folioRef(h)).toBe(ref);
    m.lruAddDrain();
    expect(m.folioIsolateLru(h)).toBe(true);
  });

  it("an isolated folio whose last reference goes is freed without touching any LRU list", () => {
    const m = mem();
    const h = m.allocFolio(0);
    m.folioAddLru(h);
    m.lruAddDrain();
    const lv = m.lruvecOf(h);
    expect(m.folioIsolateLru(h)).toBe(true);
    const folios = m.lruvecNrFolios(lv);
    m.folioPut(h); // the allocation's
    m.folioPut(h); // the isolation's
    expect(m.isFree(h)).toBe(true);
    expect(m.lruvecNrFolios(lv)).toBe(folios);
    m.checkInvariants();
  });

  it("refuses what is not a folio head", () => {
    const m = mem();
    const h = m.allocFolio(2);
    expect(refusal(() => m.folioIsolateLru(h + 1)).method).toBe("folioIsolateLru");
    expect(refusal(() => m.folioIsolateLru(-1)).code).toBe("BAD_PFN");
  });
});

describe("PhysMem.copyFrom", () => {
  it("an exact, independent copy: same digest, and changes to either leave the other alone", () => {
    const a = mem({ nrPages: 4096, nrMemcgs: 2 });
    const x = mappedAnon(a, 2, { memcg: 1 });
    a.folioAddLru(x);
    a.lruAddDrain();
    const b = createPhysMem({ nrPages: 4096, nrMemcgs: 2 });
    b.copyFrom(a);
    expect(b.stateDigest()).toBe(a.stateDigest());
    expect(b.folioRef(x)).toBe(a.folioRef(x));
    const digestA = a.stateDigest();
    b.folioPut(x);
    b.allocFolio(0);
    expect(a.stateDigest()).toBe(digestA);
    expect(b.stateDigest()).not.toBe(digestA);
    b.checkInvariants();
    // Copying again brings the used copy back.
    b.copyFrom(a);
    expect(b.stateDigest()).toBe(digestA);
  });

  it("refuses a memory of another size", () => {
    const a = mem({ nrPages: 4096 });
    const b = mem({ nrPages: 8192 });
    expect(refusal(() => b.copyFrom(a)).code).toBe("EINVAL");
  });
});
