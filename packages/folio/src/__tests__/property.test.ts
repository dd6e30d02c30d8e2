import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createPhysMem, NodeStat, type PhysMem } from "../index.js";

interface Live {
  head: number;
  order: number;
  anon: boolean;
  pte: number[]; // PTE mappings per page (model)
  pmd: number;
}

/** Ops are interpreted against the current state: `pick` chooses a live folio, `a`/`b` pick pages. */
const op = fc.record({
  kind: fc.integer({ min: 0, max: 9 }),
  pick: fc.nat(),
  a: fc.nat(),
  b: fc.nat(),
  order: fc.constantFrom(0, 0, 1, 2, 3, 4, 9),
});

function expectedMapped(live: Live[], anon: boolean): number {
  let n = 0;
  for (const f of live) {
    if (f.anon !== anon) continue;
    if (f.pmd > 0) n += 1 << f.order;
    else n += f.pte.filter((c) => c > 0).length;
  }
  return n;
}

function unmapAll(m: PhysMem, f: Live, variant: number): void {
  if (f.pmd > 0) {
    for (let i = 0; i < f.pmd; i++) {
      if (variant % 2 === 0) m.pageRemoveRmap(f.head, true);
      else m.folioRemoveRmapPmd(f.head);
    }
    m.folioRefSubAndTest(f.head, f.pmd);
    f.pmd = 0;
  }
  for (let i = 0; i < f.pte.length; i++) {
    while (f.pte[i] > 0) {
      if (variant === 0) m.pageRemoveRmap(f.head + i, false);
      else if (variant === 1) m.folioRemoveRmapRange(f.head, f.head + i, 1);
      else m.folioRemoveRmapPtes(f.head, f.head + i, 1);
      m.folioRefSubAndTest(f.head, 1);
      f.pte[i]--;
    }
  }
}

describe("property: random allocate / map / unmap / free sequences keep every invariant", () => {
  it("holds for all three rmap-removal algorithms and all release paths", () => {
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 0, max: 2 }),
        (ops, variant) => {
          const m = createPhysMem({ nrPages: 4096, nrNodes: 2, nrMemcgs: 2 });
          const initial = m.freeBlockList();
          const file = m.createAddressSpace({ swapBacked: false });
          let nextIndex = 0;
          const live: Live[] = [];
          for (const o of ops) {
            const f = live.length > 0 ? live[o.pick % live.length] : undefined;
            switch (o.kind) {
              case 0:
              case 1: {
                let h: number;
                try {
                  h = m.allocFolio(o.order, { node: o.a % 2, memcg: o.b % 2 });
                } catch {
                  break;
                }
                const anon = o.kind === 0;
                if (anon) m.folioSetAnon(h, 1, h);
                else {
                  m.filemapAddFolio(file, h, nextIndex);
                  nextIndex += 512;
                }
                live.push({ head: h, order: o.order, anon, pte: new Array(1 << o.order).fill(0), pmd: 0 });
                break;
              }
              case 2:
              case 3: {
                if (!f) break;
                const nr = 1 << f.order;
                const first = o.a % nr;
                const n = 1 + (o.b % (nr - first));
                m.folioRefAdd(f.head, n);
                m.folioAddRmapPtes(f.head, f.head + first, n);
                for (let i = first; i < first + n; i++) f.pte[i]++;
                break;
              }
              case 4: {
                if (f?.order !== 9) break;
                m.folioGet(f.head);
                m.folioAddRmapPmd(f.head);
                f.pmd++;
                break;
              }
              case 5: {
                if (!f) break;
                // unmap a mapped run with the chosen algorithm
                const nr = 1 << f.order;
                const first = o.a % nr;
                let n = 0;
                while (first + n < nr && f.pte[first + n] > 0) n++;
                if (n === 0) break;
                if (variant === 0) for (let i = 0; i < n; i++) m.pageRemoveRmap(f.head + first + i, false);
                else if (variant === 1) m.folioRemoveRmapRange(f.head, f.head + first, n);
                else m.folioRemoveRmapPtes(f.head, f.head + first, n);
                for (let i = first; i < first + n; i++) f.pte[i]--;
                m.releasePages(
                  Array.from({ length: n }, (_, i) => f.head + first + i),
                  0,
                  n,
                );
                break;
              }
              case 6: {
                if (!f || m.folioTest(f.head, 1 << 3)) break;
                try {
                  m.folioAddLru(f.head);
                } catch {
                  // already pending in the LRU-add batch
                }
                break;
              }
              case 7:
                m.lruAddDrain();
                break;
              case 8:
              case 9: {
                if (!f) break;
                unmapAll(m, f, variant);
                live.splice(live.indexOf(f), 1);
                if (!f.anon) m.filemapRemoveFolio(f.head);
                if (o.kind === 8) m.folioPut(f.head);
                else if (variant === 2) m.foliosPutRefs([f.head], [1], 1);
                else {
                  m.foliosPutRefsInit();
                  m.foliosPutRefsDoOne(f.head, 1);
                  m.foliosPutRefsComplete();
                }
                break;
              }
            }
            m.checkInvariants();
            expect(m.nodeStat(NodeStat.NR_ANON_MAPPED)).toBe(expectedMapped(live, true));
            expect(m.nodeStat(NodeStat.NR_FILE_MAPPED)).toBe(expectedMapped(live, false));
          }
          for (const f of [...live]) {
            unmapAll(m, f, variant);
            if (!f.anon) m.filemapRemoveFolio(f.head);
            m.folioPut(f.head);
          }
          m.lruAddDrain();
          m.checkInvariants();
          expect(m.nrFreePages()).toBe(4096);
          expect(m.freeBlockList()).toEqual(initial);
          expect(m.splitQueueLength()).toBe(0);
          for (let s = 0; s < 7; s++) expect(m.nodeStat(s)).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
