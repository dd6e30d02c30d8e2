// PMD + PTE mapped THPs and the order-0 slow paths, from __folio_remove_rmap (mm/rmap.c, v6.18),
// v6.9's, and 6.5's page_remove_rmap: a PTE unmap under a PMD mapping unmaps nothing; the PMD unmap of
// a THP still PTE-mapped in part leaves it partially mapped and queues it for deferred split; a THP
// mapped by two PMDs (fork) is unmapped only by the second PMD removal and, fully unmapped, is never
// queued; an order-0 folio's removals through the range / ptes primitives count like page_remove_rmap.

import { describe, expect, it } from "vitest";
import { NodeStat, type PhysMem, type RmapPolicy } from "../index.js";
import { mem } from "./helpers.js";

interface Rules {
  readonly name: string;
  readonly policy: RmapPolicy;
  removePmd(m: PhysMem, h: number): void;
  removePtes(m: PhysMem, h: number, pfn: number, nr: number): void;
}

const RULES: Rules[] = [
  {
    name: "6.5 page_remove_rmap",
    policy: "v6.18",
    removePmd: (m, h) => m.pageRemoveRmap(h, true),
    removePtes: (m, _h, pfn, nr) => {
      for (let i = 0; i < nr; i++) m.pageRemoveRmap(pfn + i, false);
    },
  },
  {
    name: "v6.9 folio_remove_rmap_pmd / _ptes",
    policy: "v6.9",
    removePmd: (m, h) => m.folioRemoveRmapPmd(h),
    removePtes: (m, h, pfn, nr) => m.folioRemoveRmapPtes(h, pfn, nr),
  },
  {
    name: "v6.18 folio_remove_rmap_pmd / _ptes",
    policy: "v6.18",
    removePmd: (m, h) => m.folioRemoveRmapPmd(h),
    removePtes: (m, h, pfn, nr) => m.folioRemoveRmapPtes(h, pfn, nr),
  },
];

const anonMapped = (m: PhysMem) => m.nodeStat(NodeStat.NR_ANON_MAPPED);
const anonThps = (m: PhysMem) => m.nodeStat(NodeStat.NR_ANON_THPS);

function thp(m: PhysMem, pmds: number, ptes: number): number {
  const h = m.allocFolio(9);
  m.folioSetAnon(h, 1, h);
  m.folioRefAdd(h, pmds + ptes);
  for (let i = 0; i < pmds; i++) m.folioAddRmapPmd(h);
  if (ptes > 0) m.folioAddRmapPtes(h, h + 100, ptes);
  return h;
}

describe("THPs mapped by PMD and PTEs", () => {
  for (const r of RULES) {
    it(`${r.name}: PTE unmaps under a PMD change nothing; the PMD unmap leaves 3 pages mapped and queues it`, () => {
      const m = mem({ rmapPolicy: r.policy });
      const h = thp(m, 1, 4);
      expect([anonMapped(m), anonThps(m)]).toEqual([512, 512]);
      m.resetCounters();
      r.removePtes(m, h, h + 100, 1); // the last PTE of page 100, which the PMD still maps
      expect([anonMapped(m), anonThps(m), m.splitQueueLength()]).toEqual([512, 512, 0]);
      expect(m.counters.statUpdates).toBe(0);
      expect(m.folioMapcount(h)).toBe(4);
      r.removePmd(m, h);
      expect([anonMapped(m), anonThps(m)]).toEqual([3, 0]);
      expect(m.splitQueueLength()).toBe(1); // partially mapped: deferred split
      expect(m.folioMapcount(h)).toBe(3);
      expect(m.entireMapcount(h)).toBe(0);
      r.removePtes(m, h, h + 101, 3);
      expect([anonMapped(m), m.folioMapped(h)]).toEqual([0, false]);
      expect(m.splitQueueLength()).toBe(1); // still queued until freed
      m.foliosPutRefs([h], [m.folioRef(h)], 1); // the PTE references and the allocation's
      expect(m.isFree(h)).toBe(true);
      expect(m.splitQueueLength()).toBe(0);
      m.checkInvariants();
    });

    it(`${r.name}: a THP mapped by two PMDs is unmapped by the second removal, never queued`, () => {
      const m = mem({ rmapPolicy: r.policy });
      const h = thp(m, 2, 0);
      expect([anonMapped(m), anonThps(m), m.entireMapcount(h), m.folioMapcount(h)]).toEqual([512, 512, 2, 2]);
      r.removePmd(m, h);
      expect([anonMapped(m), anonThps(m), m.entireMapcount(h), m.folioMapcount(h)]).toEqual([512, 512, 1, 1]);
      expect(m.splitQueueLength()).toBe(0);
      r.removePmd(m, h);
      expect([anonMapped(m), anonThps(m), m.entireMapcount(h), m.folioMapped(h)]).toEqual([0, 0, 0, false]);
      expect(m.splitQueueLength()).toBe(0);
      m.checkInvariants();
    });
  }
});

describe("order-0 folios through the range and ptes removals (the slow path)", () => {
  const REMOVALS: [string, (m: PhysMem, h: number) => void][] = [
    ["folio_remove_rmap_ptes", (m, h) => m.folioRemoveRmapPtes(h, h, 1)],
    ["folio_remove_rmap_range", (m, h) => m.folioRemoveRmapRange(h, h, 1)],
    ["page_remove_rmap", (m, h) => m.pageRemoveRmap(h, false)],
  ];
  for (const [name, remove] of REMOVALS) {
    it(`${name}: a page mapped twice stays counted until its last mapping goes`, () => {
      const m = mem();
      const h = m.allocFolio(0);
      m.folioSetAnon(h, 1, h);
      m.folioRefAdd(h, 2);
      m.folioAddRmapPtes(h, h, 1);
      m.folioAddRmapPtes(h, h, 1);
      expect([m.pageMapcount(h), anonMapped(m)]).toEqual([2, 1]);
      m.resetCounters();
      remove(m, h);
      expect([m.pageMapcount(h), anonMapped(m), m.counters.statUpdates]).toEqual([1, 1, 0]);
      expect(m.counters.mapcountAtomics).toBe(1);
      remove(m, h);
      expect([m.pageMapcount(h), anonMapped(m), m.counters.statUpdates]).toEqual([0, 0, 1]);
      expect(m.folioMapped(h)).toBe(false);
      expect(m.splitQueueLength()).toBe(0);
      m.checkInvariants();
    });
  }
});
