// The immediate rmap removal of each variant is its kernel's primitive, called as that kernel calls it:
// v6.5 zap_pte_range → page_remove_rmap(page, vma, false) once per page; the 2023 series →
// folio_remove_rmap_range(folio, page, nr, vma) once per run; v6.18 → folio_remove_rmap_ptes(folio,
// page, nr, vma) once per run. Checked against the folio layer's own entry points on a twin memory:
// same state, same folio counters. Also VM_LOCKED / VM_PFNMAP bookkeeping of tlb_start_vma, the range
// the trusted paths record, and NO_GATHER's free_swap_cache.

import { gatherTrusted } from "@mmgather/mmu-gather/internal";
import {
  createGatherFixture,
  type GatherFixture,
  gatherOn,
  mapAnonFolio,
  mapFileFolio,
} from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import {
  contigRange,
  defineArch,
  defineVariant,
  encodedNrPages,
  encodedPage,
  type GatherVariant,
  maxTableBatch,
} from "../index.js";

const arch = defineArch({ name: "test-merge", mergeVmas: true });
const noBatch = defineArch({ name: "no-batch", mergeVmas: true, batchRmap: false });
const PAGE = 4096;

const seriesRange = defineVariant(contigRange, {
  name: "series-range-rmap",
  policy: { immediateRmap: "folioRemoveRmapRange" },
});

/** Two identical memories with one order-3 anon and one order-2 file folio each. */
function twins(a = noBatch): [GatherFixture, GatherFixture] {
  const make = () => {
    const fx = createGatherFixture(a, 1 << 12);
    mapAnonFolio(fx, 3);
    mapFileFolio(fx, 2, false);
    return fx;
  };
  return [make(), make()];
}

function snapshot(fx: GatherFixture): string {
  return `${fx.mem.stateDigest()} ${JSON.stringify(fx.mem.counters)}`;
}

describe("removeRmap calls the variant's kernel primitive, and counts its calls", () => {
  const cases: Array<
    [GatherVariant, string, (fx: GatherFixture, head: number, pfn: number, nr: number) => void, number]
  > = [
    [
      encodedPage,
      "pageRemoveRmap",
      (fx, _h, pfn, nr) => {
        for (let i = 0; i < nr; i++) fx.mem.pageRemoveRmap(pfn + i, false);
      },
      3,
    ],
    [
      contigRange,
      "pageRemoveRmap",
      (fx, _h, pfn, nr) => {
        for (let i = 0; i < nr; i++) fx.mem.pageRemoveRmap(pfn + i, false);
      },
      3,
    ],
    [seriesRange, "folioRemoveRmapRange", (fx, h, pfn, nr) => fx.mem.folioRemoveRmapRange(h, pfn, nr), 1],
    [encodedNrPages, "folioRemoveRmapPtes", (fx, h, pfn, nr) => fx.mem.folioRemoveRmapPtes(h, pfn, nr), 1],
  ];
  for (const [v, prim, direct, calls] of cases)
    it(`${v.name}: ${prim}, ${calls} call(s) for 3 PTEs of a large folio`, () => {
      for (const file of [false, true]) {
        const [a, b] = twins();
        const head = findHead(a, file);
        expect(findHead(b, file)).toBe(head);
        expect(snapshot(a)).toBe(snapshot(b));
        const g = gatherOn(a, v);
        g.removeRmap(head + 1, 3);
        direct(b, head, head + 1, 3);
        expect(snapshot(a)).toBe(snapshot(b));
        expect(g.counters.rmapCallsImmediate).toBe(calls);
        expect(g.counters.rmapPages).toBe(3);
        g.finish();
      }
    });
});

/** The head of the fixture's anon (order 3) or file (order 2) folio. */
function findHead(fx: GatherFixture, file: boolean): number {
  const want = file ? 2 : 3;
  for (let pfn = fx.mem.nodeEnd(0) - 1; pfn >= 0; pfn--) {
    if (fx.mem.isFree(pfn)) continue;
    const h = fx.mem.folioHead(pfn);
    if (fx.mem.folioOrder(h) === want && fx.mem.folioMapcount(h) > 0) return h;
    pfn = h;
  }
  throw new Error("folio not found");
}

describe("tlb_start_vma: VM_LOCKED per VMA, VM_PFNMAP only if some VMA had it", () => {
  it("an mlocked folio unmapped from a VMA that is not VM_LOCKED is not munlocked", () => {
    for (const locked of [undefined, false, true]) {
      const fx = createGatherFixture(arch);
      const f = mapAnonFolio(fx, 0);
      fx.mem.mlockFolio(f.head);
      const g = gatherOn(fx, encodedNrPages);
      const before = fx.mem.counters.munlockCalls;
      if (locked !== undefined) g.tlbStartVma({ exec: false, huge: false, pfnmap: false, locked });
      g.tlbRemoveTlbEntry(0x400000);
      g.removeRmap(f.head, 1);
      expect(fx.mem.counters.munlockCalls - before).toBe(locked === true ? 1 : 0);
      g.removePage(f.head, false);
      g.finish();
    }
  });

  it("a gather that never saw a PFNMAP VMA has vma_pfn clear", () => {
    const fx = createGatherFixture(arch);
    const g = gatherOn(fx, encodedNrPages);
    expect(g.vmaPfn).toBe(false);
    g.tlbStartVma({ exec: false, huge: false, pfnmap: false });
    expect(g.vmaPfn).toBe(false);
    g.tlbStartVma({ exec: false, huge: false, pfnmap: true });
    expect(g.vmaPfn).toBe(true);
    g.finish();
  });
});

describe("which arch capability tlb_delay_rmap asks", () => {
  it("the series asks tlb_batch_rmap; 6.5 and 7.x ask tlb_delay_rmap", () => {
    const combos = [
      { delayRmap: true, batchRmap: false },
      { delayRmap: false, batchRmap: true },
    ];
    for (const c of combos) {
      const a = defineArch({ name: "combo", mergeVmas: true, ...c });
      const fx = createGatherFixture(a);
      for (const v of [encodedPage, contigRange, encodedNrPages]) {
        const g = gatherOn(fx, v);
        expect(g.tlbDelayRmap()).toBe(v.storage === "contig-range" ? c.batchRmap : c.delayRmap);
        expect(g.tlbBatchRmap()).toBe(v.storage === "contig-range" && c.batchRmap);
        g.finish();
      }
    }
  });
});

describe("the trusted paths record the PTE range as tlb_remove_tlb_entries would", () => {
  it("end never shrinks, start never grows", () => {
    const fx = createGatherFixture(arch);
    const a = mapAnonFolio(fx, 2);
    const b = mapAnonFolio(fx, 2);
    const g = gatherTrusted(gatherOn(fx, encodedNrPages));
    g.zapPresentTrusted(a.head, a.head, 4, 0x800000, true);
    g.zapPresentTrusted(b.head, b.head, 4, 0x400000, true);
    expect([g.start, g.end]).toEqual([0x400000, 0x804000]);
    g.finish();
  });

  for (const [name, v, a] of [
    ["VM_LOCKED fallback", encodedNrPages, arch],
    ["per-PTE storage", encodedPage, noBatch],
  ] as const)
    it(`zapSinglesRunTrusted (${name}): PAGE_SIZE apart from addr`, () => {
      const fx = createGatherFixture(a);
      const pfns = Int32Array.from({ length: 5 }, () => mapAnonFolio(fx, 0).head);
      const g = gatherTrusted(gatherOn(fx, v));
      g.tlbStartVma({ exec: false, huge: false, pfnmap: false, locked: true });
      expect(g.zapSinglesRunTrusted(pfns, 5, 0x600000)).toBe(5);
      expect([g.start, g.end]).toEqual([0x600000, 0x600000 + 5 * PAGE]);
      g.finish();
    });

  it("zapPresentRunPerPageTrusted on encoded-nr-pages: PAGE_SIZE apart from addr", () => {
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 2);
    const g = gatherTrusted(gatherOn(fx, encodedNrPages));
    expect(g.zapPresentRunPerPageTrusted(f.head, f.head + 1, 3, 0x600000, true)).toBe(3);
    expect([g.start, g.end]).toEqual([0x600000, 0x600000 + 3 * PAGE]);
    g.finish();
  });

  it("a fused entry is never marked delay_rmap: a later delayed flush does not remove its rmap again", () => {
    for (const v of [encodedPage, encodedNrPages]) {
      const fx = createGatherFixture(arch);
      const anon = mapAnonFolio(fx, 0);
      const file = mapFileFolio(fx, 0, true);
      const g = gatherTrusted(gatherOn(fx, v));
      g.enterPtl();
      expect(g.zapPresentTrusted(anon.head, anon.head, 1, 0x400000, true)).toBe(false);
      g.tlbRemoveTlbEntry(0x401000);
      expect(g.tlbDelayRmap()).toBe(true);
      g.removePage(file.head, true);
      g.flushMmuTlbonly("dirtyShared");
      g.flushRmaps();
      g.leavePtl();
      expect(g.counters).toMatchObject({ rmapCallsImmediate: 1, rmapCallsDelayed: 1, rmapPages: 2 });
      g.finish();
      fx.mem.checkInvariants();
      expect(fx.mem.isFree(anon.head)).toBe(true);
    }
  });
});

describe("pfn 0 is a page frame number", () => {
  it("the lowest pfn is queued and freed like any other", () => {
    const fx = createGatherFixture(arch, 16);
    const f = mapAnonFolio(fx, 4);
    expect(f.head).toBe(0);
    const g = gatherOn(fx, encodedPage);
    g.tlbRemoveTlbEntries(0x400000, 16);
    g.removeRmap(0, 16);
    for (let i = 0; i < 16; i++) g.removePage(i, false);
    g.finish();
    expect(fx.mem.isFree(0)).toBe(true);
  });
});

describe("table batches: MAX_TABLE_BATCH follows the table-free mode", () => {
  it("509 tables per batch with RCU table free, 511 without (4 KiB pages)", () => {
    for (const [mode, max] of [
      ["rcu", 509],
      ["direct", 511],
    ] as const) {
      expect(maxTableBatch(12, mode === "rcu")).toBe(max);
      const a = defineArch({ name: mode, mergeVmas: true, tableFree: mode });
      const fx = createGatherFixture(a);
      const g = gatherOn(fx, encodedNrPages);
      const tables = Array.from({ length: max }, () => fx.mem.allocFolio(0));
      tables.slice(0, max - 1).forEach((t, i) => {
        g.pteFreeTlb(t, 0x400000 + i * 0x200000);
      });
      expect(g.counters.forcedFlushes.tableBatchFull).toBe(0);
      expect(fx.mem.isFree(tables[0])).toBe(false);
      g.pteFreeTlb(tables[max - 1], 0x400000);
      expect(g.counters.forcedFlushes.tableBatchFull).toBe(1);
      expect(tables.every((t) => fx.mem.isFree(t))).toBe(true);
      g.finish();
    }
  });
});

describe("NO_GATHER: free_page_and_swap_cache at queue time empties the swap cache", () => {
  const ng = defineArch({ name: "ng", noGather: true, delayRmap: false, batchRmap: false });
  for (const order of [0, 2])
    it(`order ${order}: the folio leaves the swap cache and is freed at once`, () => {
      const fx = createGatherFixture(ng);
      const f = mapAnonFolio(fx, order);
      fx.swap.folioAllocSwap(f.head);
      const g = gatherOn(fx, encodedNrPages);
      g.tlbRemoveTlbEntries(0x400000, f.nr);
      g.removeRmap(f.head, f.nr);
      g.removeFolioPages(f.head, f.nr, false);
      expect(fx.swap.slotsInUse()).toBe(0);
      expect(fx.mem.isFree(f.head)).toBe(true);
      expect(g.counters).toMatchObject({ freeSwapCacheCalls: 1, releaseCalls: 1, pagesFreedOnQueue: f.nr });
      fx.swap.checkInvariants();
      g.finish();
    });

  it("an order-0 folio is put with folio_put, a run with folios_put_refs: same memory either way", () => {
    const [a, b] = [createGatherFixture(ng), createGatherFixture(ng)];
    const fa = mapAnonFolio(a, 0);
    const fb = mapAnonFolio(b, 0);
    const g = gatherOn(a, encodedNrPages);
    g.tlbRemoveTlbEntry(0);
    g.removeRmap(fa.head, 1);
    const before = JSON.stringify(a.mem.counters);
    g.removePage(fa.head, false);
    b.mem.folioRemoveRmapPtes(fb.head, fb.head, 1);
    expect(JSON.stringify(b.mem.counters)).toBe(before);
    b.swap.freeSwapCache(fb.head);
    b.mem.folioPut(fb.head);
    expect(`${a.mem.stateDigest()} ${JSON.stringify(a.mem.counters)}`).toBe(
      `${b.mem.stateDigest()} ${JSON.stringify(b.mem.counters)}`,
    );
    g.finish();
  });
});
