// Statistics and LRU membership land in the folio's own lruvec — one per (node, memcg), as
// folio_lruvec() picks it (include/linux/memcontrol.h) and __lruvec_stat_mod_folio / lruvec_del_folio
// update it (v6.18). Every rmap removal primitive and every release path is run against folios spread
// over two nodes and three memcgs, touching only one lruvec's folios: that lruvec's counts change by
// exactly what was unmapped / released, every other lruvec's stay as they were.

import { describe, expect, it } from "vitest";
import { NodeStat, type PhysMem } from "../index.js";
import { mem } from "./helpers.js";

interface World {
  readonly m: PhysMem;
  /** Heads per lruvec, each an anon folio mapped by PTEs (one reference per PTE) and on the LRU. */
  readonly byLruvec: Map<number, number[]>;
}

function world(): World {
  const m = mem({ nrPages: 16384, nrNodes: 2, nrMemcgs: 3 });
  const byLruvec = new Map<number, number[]>();
  for (let node = 0; node < 2; node++)
    for (let memcg = 0; memcg < 3; memcg++)
      for (const order of [0, 2, 0, 3]) {
        const h = m.allocFolio(order, { memcg, node });
        m.folioSetAnon(h, 9, h);
        const nr = 1 << order;
        m.folioRefAdd(h, nr);
        m.folioAddRmapPtes(h, h, nr);
        m.folioAddLru(h);
        const l = m.lruvecOf(h);
        byLruvec.set(l, [...(byLruvec.get(l) ?? []), h]);
      }
  m.lruAddDrain();
  return { m, byLruvec };
}

/** [anon mapped pages, LRU folios, LRU pages] of every lruvec. */
function snapshot(w: World): Map<number, [number, number, number]> {
  const out = new Map<number, [number, number, number]>();
  for (const l of w.byLruvec.keys())
    out.set(l, [w.m.lruvecStat(l, NodeStat.NR_ANON_MAPPED), w.m.lruvecNrFolios(l), w.m.lruvecNrPages(l)]);
  return out;
}

const pagesOf = (m: PhysMem, heads: number[]) => heads.reduce((n, h) => n + m.folioNrPages(h), 0);

describe("per-lruvec accounting over two nodes and three memcgs", () => {
  it("the world: six lruvecs, each with its own 4 folios (14 pages) mapped and on the LRU", () => {
    const w = world();
    expect(w.byLruvec.size).toBe(6);
    for (const [l, heads] of w.byLruvec) {
      expect(heads).toHaveLength(4);
      expect(snapshot(w).get(l)).toEqual([14, 4, 14]);
    }
  });

  const RMAPS: [string, (m: PhysMem, h: number) => void][] = [
    ["folio_remove_rmap_ptes (7.x)", (m, h) => m.folioRemoveRmapPtes(h, h, m.folioNrPages(h))],
    ["folio_remove_rmap_range (the series)", (m, h) => m.folioRemoveRmapRange(h, h, m.folioNrPages(h))],
    [
      "page_remove_rmap, one page at a time (6.5)",
      (m, h) => {
        for (let i = 0; i < m.folioNrPages(h); i++) m.pageRemoveRmap(h + i, false);
      },
    ],
  ];
  for (const [name, unmap] of RMAPS) {
    for (const target of [1, 4]) {
      it(`${name}: unmapping lruvec ${target}'s folios changes only its NR_ANON_MAPPED`, () => {
        const w = world();
        const before = snapshot(w);
        const heads = w.byLruvec.get(target)!;
        for (const h of heads) unmap(w.m, h);
        const after = snapshot(w);
        for (const [l, v] of before) {
          if (l === target) expect(after.get(l)).toEqual([v[0] - pagesOf(w.m, heads), v[1], v[2]]);
          else expect(after.get(l)).toEqual(v);
        }
        w.m.checkInvariants();
      });
    }
  }

  const RELEASES: [string, (m: PhysMem, heads: number[], refs: number[]) => void][] = [
    ["folios_put_refs (7.x)", (m, heads, refs) => m.foliosPutRefs(heads, refs, heads.length)],
    [
      "release_pages (6.5, one entry per page)",
      (m, heads) => {
        const pages: number[] = [];
        for (const h of heads) for (let i = 0; i < m.folioNrPages(h); i++) pages.push(h + i);
        m.releasePages(pages, 0, pages.length);
      },
    ],
    [
      "the series' folios_put_refs context",
      (m, heads, refs) => {
        m.foliosPutRefsInit();
        heads.forEach((h, i) => {
          m.foliosPutRefsDoOne(h, refs[i]);
        });
        m.foliosPutRefsComplete();
      },
    ],
  ];
  for (const [name, release] of RELEASES) {
    for (const target of [2, 3]) {
      it(`${name}: releasing lruvec ${target}'s folios empties only its LRU`, () => {
        const w = world();
        const heads = w.byLruvec.get(target)!;
        for (const h of heads) w.m.folioRemoveRmapPtes(h, h, w.m.folioNrPages(h));
        const before = snapshot(w);
        // The PTE references, then the allocation's: the folios are freed.
        release(
          w.m,
          heads,
          heads.map((h) => w.m.folioNrPages(h)),
        );
        for (const h of heads) w.m.folioPut(h);
        const after = snapshot(w);
        for (const [l, v] of before) {
          if (l === target) expect(after.get(l)).toEqual([0, 0, 0]);
          else expect(after.get(l)).toEqual(v);
        }
        for (const h of heads) expect(w.m.isFree(h)).toBe(true);
        w.m.checkInvariants();
      });
    }
  }

  it("a release across all six lruvecs takes each lruvec lock at least once and leaves every LRU empty", () => {
    const w = world();
    const heads = [...w.byLruvec.values()].flat();
    for (const h of heads) w.m.folioRemoveRmapPtes(h, h, w.m.folioNrPages(h));
    for (const h of heads) w.m.folioPut(h); // the allocation's reference: the PTE ones remain
    w.m.resetCounters();
    for (let i = 0; i < heads.length; i += 31) {
      const batch = heads.slice(i, i + 31);
      w.m.foliosPutRefs(
        batch,
        batch.map((h) => w.m.folioNrPages(h)),
        batch.length,
      );
    }
    // Heads are grouped by lruvec in allocation order: one lock per lruvec run.
    expect(w.m.counters.lruvecLockAcquisitions).toBe(6);
    for (const l of w.byLruvec.keys()) expect(snapshot(w).get(l)).toEqual([0, 0, 0]);
  });
});
