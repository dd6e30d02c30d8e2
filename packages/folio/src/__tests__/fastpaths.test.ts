// The @internal fast paths must leave exactly the state and counters of the public primitives they
// stand for, and must still catch the misuse the public checks catch.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FolioError, PG, type PhysMem } from "../index.js";
import {
  folioRemoveRmapPteListTrusted,
  folioRemoveRmapPtesTrusted,
  folioRemoveRmapRangeTrusted,
  folioState,
  pageRemoveRmapPtesTrusted,
  pageRemoveRmapPteTrusted,
} from "../internal.js";
import { mappedAnon, mem } from "./helpers.js";

function counters(m: PhysMem): Record<string, number> {
  return { ...m.counters };
}

describe("pageRemoveRmapPteTrusted", () => {
  for (const order of [0, 2, 4, 9]) {
    it(`order ${order}: same state and counters as pageRemoveRmap(pfn, false), page by page`, () => {
      const a = mem();
      const b = mem();
      const ha = mappedAnon(a, order);
      const hb = mappedAnon(b, order);
      expect(hb).toBe(ha);
      a.resetCounters();
      b.resetCounters();
      for (let i = 0; i < 1 << order; i++) {
        a.pageRemoveRmap(ha + i, false);
        pageRemoveRmapPteTrusted(folioState(b), hb, hb + i);
        expect(counters(b)).toEqual(counters(a));
      }
      expect(b.stateDigest()).toBe(a.stateDigest());
      a.checkInvariants();
      b.checkInvariants();
    });
  }

  it("still detects mapcount underflow and changes nothing", () => {
    const m = mem();
    const h = mappedAnon(m, 0);
    pageRemoveRmapPteTrusted(folioState(m), h, h);
    const before = m.stateDigest();
    expect(() => pageRemoveRmapPteTrusted(folioState(m), h, h)).toThrow(FolioError);
    expect(m.stateDigest()).toBe(before);
  });
});

describe("pageRemoveRmapPtesTrusted", () => {
  for (const order of [0, 2, 4, 9]) {
    it(`order ${order}: same state and counters as pageRemoveRmap(pfn, false) per page, over split runs`, () => {
      const a = mem();
      const b = mem();
      const ha = mappedAnon(a, order);
      const hb = mappedAnon(b, order);
      a.resetCounters();
      b.resetCounters();
      const nr = 1 << order;
      // Runs of 1, 2, 3, … pages, so the last page of the folio lands inside a run.
      for (let i = 0, run = 1; i < nr; i += run, run++) {
        const k = Math.min(run, nr - i);
        for (let j = 0; j < k; j++) a.pageRemoveRmap(ha + i + j, false);
        pageRemoveRmapPtesTrusted(folioState(b), hb, hb + i, k);
        expect(counters(b)).toEqual(counters(a));
      }
      expect(b.stateDigest()).toBe(a.stateDigest());
      a.checkInvariants();
      b.checkInvariants();
    });
  }

  it("property: same state and counters as per-page pageRemoveRmap with shared PTEs, a PMD mapping, file folios", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 4, 9),
        fc.boolean(),
        fc.boolean(),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 512, maxLength: 512 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }),
        (order, anon, pmd, extra, runs) => {
          const nr = 1 << order;
          const a = mem();
          const b = mem();
          const setup = (m: PhysMem): number => {
            const h = m.allocFolio(order);
            if (anon) m.folioSetAnon(h, 7, h);
            else m.filemapAddFolio(m.createAddressSpace({ swapBacked: false }), h, 0);
            m.folioRefAdd(h, nr);
            m.folioAddRmapPtes(h, h, nr);
            // Some pages mapped by more PTEs (fork): their removal leaves them mapped.
            for (let i = 0; i < nr; i++)
              for (let k = 0; k < extra[i]; k++) {
                m.folioRefAdd(h, 1);
                m.folioAddRmapPtes(h, h + i, 1);
              }
            if (pmd && order === 9) {
              m.folioRefAdd(h, 1);
              m.folioAddRmapPmd(h);
            }
            return h;
          };
          const ha = setup(a);
          const hb = setup(b);
          a.resetCounters();
          b.resetCounters();
          let i = 0;
          for (const run of runs) {
            if (i >= nr) break;
            const k = Math.min(run, nr - i);
            for (let j = 0; j < k; j++) a.pageRemoveRmap(ha + i + j, false);
            pageRemoveRmapPtesTrusted(folioState(b), hb, hb + i, k);
            i += k;
          }
          expect(counters(b)).toEqual(counters(a));
          expect(b.stateDigest()).toBe(a.stateDigest());
          b.checkInvariants();
        },
      ),
      { numRuns: 150 },
    );
  });

  it("detects mapcount underflow at the failing page", () => {
    const m = mem();
    const h = mappedAnon(m, 2);
    pageRemoveRmapPteTrusted(folioState(m), h, h + 2);
    expect(() => pageRemoveRmapPtesTrusted(folioState(m), h, h, 4)).toThrow(FolioError);
    expect(m.pageMapcount(h + 3)).toBe(1);
  });

  it("on underflow leaves the state and counters of the per-page calls made before the failing page", () => {
    const a = mem();
    const b = mem();
    const ha = mappedAnon(a, 4);
    const hb = mappedAnon(b, 4);
    a.pageRemoveRmap(ha + 5, false);
    b.pageRemoveRmap(hb + 5, false);
    a.resetCounters();
    b.resetCounters();
    for (let j = 0; j < 5; j++) a.pageRemoveRmap(ha + j, false);
    expect(() => a.pageRemoveRmap(ha + 5, false)).toThrow(FolioError);
    expect(() => pageRemoveRmapPtesTrusted(folioState(b), hb, hb, 8)).toThrow(FolioError);
    expect(counters(b)).toEqual(counters(a));
    expect(b.stateDigest()).toBe(a.stateDigest());
  });
});

describe("freeing checks against the LRU-add batch", () => {
  it("a folio whose last reference goes while it sits in the batch is refused, inside or outside the batch's pfn range", () => {
    const m = mem();
    const a = m.allocFolio(0);
    const b = m.allocFolio(0);
    const c = m.allocFolio(0);
    m.folioAddLru(a);
    m.folioAddLru(c);
    // Corrupt the batch's reference to `a` (and to `c`) so that the caller's put is the last one.
    m.folioRefSubAndTest(a, 1);
    m.folioRefSubAndTest(c, 1);
    expect(() => m.foliosPutRefs([a], [1], 1)).toThrow(/LRU-add batch/);
    expect(() => m.foliosPutRefs([c], [1], 1)).toThrow(/LRU-add batch/);
    // `b` lies between them (inside the range filter) but is not in the batch: freed normally.
    m.foliosPutRefs([b], [1], 1);
    expect(m.isFree(b)).toBe(true);
  });
});

describe("order-0 rmap removal fast paths", () => {
  const prims = [
    [
      "folioRemoveRmapPtesTrusted",
      (m: PhysMem, h: number) => folioRemoveRmapPtesTrusted(folioState(m), h, h, 1),
    ],
    [
      "folioRemoveRmapRangeTrusted",
      (m: PhysMem, h: number) => folioRemoveRmapRangeTrusted(folioState(m), h, h, 1),
    ],
    [
      "pageRemoveRmapPtesTrusted",
      (m: PhysMem, h: number) => pageRemoveRmapPtesTrusted(folioState(m), h, h, 1),
    ],
  ] as const;
  for (const [name, remove] of prims)
    for (const anon of [true, false])
      it(`${name} (${anon ? "anon" : "file"}): same state and counters as pageRemoveRmap, shared then last mapping, then underflow`, () => {
        const setup = (m: PhysMem): number => {
          const h = m.allocFolio(0, { memcg: 1 });
          if (anon) m.folioSetAnon(h, 7, h);
          else m.filemapAddFolio(m.createAddressSpace({ swapBacked: false }), h, 0);
          m.folioRefAdd(h, 2);
          m.folioAddRmapPtes(h, h, 1);
          m.folioAddRmapPtes(h, h, 1);
          return h;
        };
        const a = mem({ nrMemcgs: 2 });
        const b = mem({ nrMemcgs: 2 });
        const ha = setup(a);
        const hb = setup(b);
        a.resetCounters();
        b.resetCounters();
        for (let k = 0; k < 2; k++) {
          a.pageRemoveRmap(ha, false);
          remove(b, hb);
          expect(counters(b)).toEqual(counters(a));
          expect(b.stateDigest()).toBe(a.stateDigest());
        }
        b.checkInvariants();
        const before = b.stateDigest();
        expect(() => remove(b, hb)).toThrow(FolioError);
        expect(b.stateDigest()).toBe(before);
      });
});

describe("foliosPutRefs order-0 fast loop", () => {
  // The fast loop is skipped while the LRU-add batch holds a folio: twin `b` parks an unrelated folio
  // there before the call (general steps for every entry), twin `a` after it (fast loop); after a
  // drain both must hold the same state and counters.
  it("property: same state and counters as the general per-folio steps (orders, LRU, mlock, memcgs, nodes, refs)", () => {
    const folioArb = fc.record({
      order: fc.constantFrom(0, 0, 0, 1, 2, 4),
      anon: fc.boolean(),
      lru: fc.constantFrom(true, true, false),
      mlocked: fc.constantFrom(false, false, false, true),
      memcg: fc.integer({ min: 0, max: 2 }),
      node: fc.integer({ min: 0, max: 1 }),
      extraRefs: fc.constantFrom(0, 0, 0, 1),
    });
    fc.assert(
      fc.property(fc.array(folioArb, { minLength: 1, maxLength: 31 }), fc.boolean(), (fs, twoNodes) => {
        const build = () => {
          const m = mem({ nrNodes: twoNodes ? 2 : 1, nrMemcgs: 3 });
          const heads: number[] = [];
          const refs: number[] = [];
          for (const f of fs) {
            const h = m.allocFolio(f.order, { memcg: f.memcg, node: twoNodes ? f.node : 0 });
            if (f.anon) m.folioSetAnon(h, 3, h);
            if (f.lru) m.folioAddLru(h);
            if (f.mlocked) m.folioSet(h, PG.mlocked);
            if (f.extraRefs > 0) m.folioRefAdd(h, f.extraRefs);
            heads.push(h);
            refs.push(1);
          }
          m.lruAddDrain();
          const parked = m.allocFolio(0);
          m.resetCounters();
          return { m, heads, refs, parked };
        };
        const a = build();
        const b = build();
        b.m.folioAddLru(b.parked);
        b.m.foliosPutRefs(b.heads, b.refs, b.heads.length);
        a.m.foliosPutRefs(a.heads, a.refs, a.heads.length);
        a.m.folioAddLru(a.parked);
        a.m.lruAddDrain();
        b.m.lruAddDrain();
        expect(counters(a.m)).toEqual(counters(b.m));
        expect(a.m.stateDigest()).toBe(b.m.stateDigest());
        a.m.checkInvariants();
        b.m.checkInvariants();
      }),
      { numRuns: 200, seed: 5 },
    );
  });
});

describe("freeOrder0List", () => {
  // With a free observer installed every folio goes through freeToBuddy one by one: the reference for
  // the one-loop order-0 free (aligned-block and buddy-pair shortcuts, pcp commits in their own loop).
  it("property: same state and counters as freeToBuddy per folio (aligned blocks, pairs, fragmentation, pcp drains)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1e6 }),
        fc.integer({ min: 64, max: 1500 }),
        fc.constantFrom("ascending", "descending", "shuffled" as const),
        (seed, count, orderKind) => {
          let x = seed;
          const rnd = () => {
            x = (x * 1103515245 + 12345) & 0x7fffffff;
            return x / 0x80000000;
          };
          const build = (observe: boolean) => {
            const m = mem({ nrPages: 4096 });
            const hs: number[] = [];
            for (let i = 0; i < count; i++) hs.push(m.allocFolio(0));
            // Fragment: free some now (one by one), keep the rest for the batched release.
            const keep: number[] = [];
            for (const h of hs)
              if (rnd() < 0.2) m.folioPut(h);
              else keep.push(h);
            if (orderKind === "descending") keep.reverse();
            else if (orderKind === "shuffled")
              for (let i = keep.length - 1; i > 0; i--) {
                const j = Math.floor(rnd() * (i + 1));
                [keep[i], keep[j]] = [keep[j], keep[i]];
              }
            if (observe) m.setFreeObserver(() => {});
            m.resetCounters();
            for (let i = 0; i < keep.length; i += 31) {
              const part = keep.slice(i, i + 31);
              m.foliosPutRefs(
                part,
                part.map(() => 1),
                part.length,
              );
            }
            return m;
          };
          x = seed;
          const a = build(false);
          x = seed;
          const b = build(true);
          expect(counters(a)).toEqual(counters(b));
          expect(a.stateDigest()).toBe(b.stateDigest());
          expect(a.freeBlockList()).toEqual(b.freeBlockList());
          a.checkInvariants();
        },
      ),
      { numRuns: 60, seed: 9 },
    );
  });
});

describe("folioRemoveRmapPteList", () => {
  it("property: same state and counters as folioRemoveRmapPtes(pfn, pfn, 1) per entry (shared, file, memcgs, nodes, large, underflow)", () => {
    const folioArb = fc.record({
      order: fc.constantFrom(0, 0, 0, 2),
      anon: fc.boolean(),
      maps: fc.integer({ min: 1, max: 3 }),
      memcg: fc.integer({ min: 0, max: 2 }),
      node: fc.integer({ min: 0, max: 1 }),
    });
    fc.assert(
      fc.property(
        fc.array(folioArb, { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        (fs, picks, twoNodes) => {
          const build = () => {
            const m = mem({ nrNodes: twoNodes ? 2 : 1, nrMemcgs: 3 });
            const heads: number[] = [];
            for (const f of fs) {
              const h = m.allocFolio(f.order, { memcg: f.memcg, node: twoNodes ? f.node : 0 });
              if (f.anon) m.folioSetAnon(h, 3, h);
              m.folioRefAdd(h, f.maps);
              for (let i = 0; i < f.maps; i++) m.folioAddRmapPtes(h, h, 1);
              heads.push(h);
            }
            m.resetCounters();
            return { m, list: Int32Array.from(picks, (p) => heads[p % heads.length]) };
          };
          const a = build();
          const b = build();
          let errA: unknown = null;
          let errB: unknown = null;
          try {
            for (const h of a.list) a.m.folioRemoveRmapPtes(h, h, 1);
          } catch (e) {
            errA = e;
          }
          try {
            folioRemoveRmapPteListTrusted(folioState(b.m), b.list, b.list.length);
          } catch (e) {
            errB = e;
          }
          expect(errB === null).toBe(errA === null);
          if (errA !== null) expect((errB as FolioError).code).toBe((errA as FolioError).code);
          expect(counters(b.m)).toEqual(counters(a.m));
          expect(b.m.stateDigest()).toBe(a.m.stateDigest());
        },
      ),
      { numRuns: 200, seed: 3 },
    );
  });
});
