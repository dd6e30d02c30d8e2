import {
  checkFlushOrder,
  createGatherFixture,
  gatherOn,
  mapAnonFolio,
  mapFileFolio,
  recordEvents,
  zapFolios,
} from "@mmgather/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  contigRange,
  defaultFinishMmu,
  defineArch,
  defineVariant,
  encodedNrPages,
  encodedPage,
  type GatherVariant,
  isArchConfigError,
  isGatherError,
  type MmuGather,
  maxQueuedEntries,
} from "../index.js";

const generic = defineArch({ name: "test-generic", fullFlushCeiling: 33 });
const all: GatherVariant[] = [encodedPage, contigRange, encodedNrPages];

/** Queue order-0 anon pages one by one through the raw API until "full"; return the 1-based count. */
function fillUntilFull(g: MmuGather, heads: number[], delay: boolean): number {
  for (let i = 0; i < heads.length; i++) {
    g.tlbRemoveTlbEntry(i * 4096);
    if (!delay && !g.tlbBatchRmap()) g.removeRmap(heads[i], 1);
    if (g.removePage(heads[i], delay)) return i + 1;
  }
  return -1;
}

describe("capacities and forced-flush points", () => {
  const expected: Record<string, number> = {
    "encoded-page": 9698,
    "contig-range": 9953,
    "encoded-nr-pages": 9678,
  };
  for (const v of all)
    it(`${v.name}: the ${expected[v.name]}th single page is accepted and reports full`, () => {
      const fx = createGatherFixture(generic);
      const heads = Array.from({ length: 10000 }, () => mapAnonFolio(fx, 0).head);
      const g = gatherOn(fx, v);
      expect(maxQueuedEntries(v.storage, 12)).toBe(expected[v.name]);
      expect(fillUntilFull(g, heads, false)).toBe(expected[v.name]);
      expect(g.queuedEntries).toBe(expected[v.name]);
      expect(g.counters.forcedFlushes.batchLimit).toBe(1);
      expect(g.batchCount).toBe(v.storage === "contig-range" ? 39 : 19);
      // Ignoring "full": 6.5 and the series have no slot left; 7.x kept one spare slot for a pair.
      const next = heads[expected[v.name]];
      g.removeRmap(next, 1);
      if (v.storage === "encoded-nr-pages") expect(g.removePage(next, false)).toBe(true);
      else {
        expect(() => g.removePage(next, false)).toThrow(/BATCH_OVERFLOW/);
      }
      g.enterPtl();
      g.flushMmuTlbonly();
      g.flushRmaps();
      g.leavePtl();
      g.flushMmu();
      expect(g.counters.chunksFreed).toBe(1 + g.batchCount);
      expect(g.counters.condResched).toBe(g.counters.chunksFreed);
      g.finish();
      expect(g.counters.batchPagesFreed).toBe(v.storage === "contig-range" ? 39 : 19);
    });

  it("encoded-page: with delayed rmaps pending only local + one batch fill (518), 7.x 7 + 509 = 516", () => {
    for (const [v, n] of [
      [encodedPage, 518],
      [encodedNrPages, 516],
    ] as const) {
      const fx = createGatherFixture(generic);
      const heads = Array.from({ length: 600 }, () => mapAnonFolio(fx, 0).head);
      const g = gatherOn(fx, v);
      expect(g.tlbDelayRmap()).toBe(true);
      expect(fillUntilFull(g, heads, true)).toBe(n);
      expect(g.counters.forcedFlushes.delayedRmapLimit).toBe(1);
      g.enterPtl();
      g.flushMmuTlbonly();
      g.flushRmaps();
      g.leavePtl();
      g.flushMmu();
      g.finish();
      for (const h of heads.slice(0, n)) expect(fx.mem.isFree(h)).toBe(true);
    }
  });

  it("batch pages are reused across flushes, and an allocation failure forces a flush", () => {
    const fx = createGatherFixture(generic);
    const heads = Array.from({ length: 1200 }, () => mapAnonFolio(fx, 0).head);
    const g = gatherOn(fx, encodedPage, { alloc: (ord) => ord !== 2 });
    // bundle 8 + 2 batches of 510 = 1028, then the third allocation (ordinal 2) fails
    expect(fillUntilFull(g, heads, false)).toBe(1028);
    expect(g.counters.forcedFlushes.batchAllocFailed).toBe(1);
    g.flushMmu();
    expect(fillUntilFull(g, heads.slice(1028), false)).toBe(-1);
    expect(g.counters.batchPagesReused).toBe(1);
    g.finish();
    for (const h of heads) expect(fx.mem.isFree(h)).toBe(true);
  });
});

describe("storage details", () => {
  it("contig-range merges within a folio only, and restarts after batch switch and rmap flush", () => {
    const fx = createGatherFixture(generic);
    const a = mapAnonFolio(fx, 3);
    const b = mapAnonFolio(fx, 3);
    expect(b.head).toBe(a.head + 8);
    const g = gatherOn(fx, contigRange);
    g.enterPtl();
    g.discardRmaps();
    g.tlbRemoveTlbEntries(0, 16);
    for (let i = 0; i < 8; i++) g.removePage(a.head + i, false);
    expect(g.counters.entriesQueued).toBe(1);
    for (let i = 0; i < 4; i++) g.removePage(b.head + i, false);
    expect(g.counters.entriesQueued).toBe(2); // b is adjacent but another folio
    g.flushRmaps();
    for (let i = 4; i < 8; i++) g.removePage(b.head + i, false);
    expect(g.counters.entriesQueued).toBe(3); // range_limit reset by tlb_flush_rmaps
    expect(g.counters.rangesMerged).toBe(7 + 3 + 3);
    g.flushRmaps();
    g.leavePtl();
    g.finish();
    expect(fx.mem.isFree(a.head) && fx.mem.isFree(b.head)).toBe(true);
  });

  it("contig-range: the batch moves on when its last slot is started; the range restarts there", () => {
    const fx = createGatherFixture(generic);
    const singles = Array.from({ length: 7 }, () => mapAnonFolio(fx, 0).head);
    const big = mapAnonFolio(fx, 2);
    const g = gatherOn(fx, contigRange);
    g.enterPtl();
    g.tlbRemoveTlbEntries(0, 11);
    for (const h of singles) g.removePage(h, false);
    for (let i = 0; i < 4; i++) g.removePage(big.head + i, false);
    expect(g.counters.entriesQueued).toBe(9);
    expect(g.counters.rangesMerged).toBe(2);
    g.flushRmaps();
    g.leavePtl();
    g.finish();
  });

  it("encoded-nr-pages never splits a page/nr pair at a 512-entry chunk (64 KiB batch pages)", () => {
    const arch64k = defineArch({
      name: "arm64-64k",
      geometry: { pageShift: 16, ptrsPerPte: 8192, pmdOrder: 13, ptrsPerPmd: 8192, ptrsPerPud: 64 },
    });
    const fx = createGatherFixture(arch64k, 1 << 14);
    const singles = Array.from({ length: 7 + 511 }, () => mapAnonFolio(fx, 0).head);
    const pair = mapAnonFolio(fx, 2);
    const rec = recordEvents();
    const g = gatherOn(fx, encodedNrPages, { events: rec.sink });
    g.tlbRemoveTlbEntries(0, 600);
    for (const h of singles) {
      g.removeRmap(h, 1);
      expect(g.removePage(h, false)).toBe(false);
    }
    g.removeRmap(pair.head, 4);
    g.removeFolioPages(pair.head, 4, false);
    g.finish();
    const freed = rec.events.filter((e) => e.type === "pagesFreed");
    expect(freed.length).toBe(2);
    const second = freed[1];
    if (second.type !== "pagesFreed") throw new Error("unreachable");
    expect(second.pfns.length).toBe(512);
    expect(second.nrs[511]).toBe(4);
    expect(g.counters.chunksFreed).toBe(2);
  });

  it("misuse throws typed errors", () => {
    const fx = createGatherFixture(generic);
    const f = mapAnonFolio(fx, 2);
    const g = gatherOn(fx, encodedPage);
    g.tlbRemoveTlbEntry(0);
    const codes: string[] = [];
    for (const fn of [
      () => g.removePage(-1, false),
      () => g.removeFolioPages(f.head, 4, false),
      () => g.removeFolioPages(f.head + 2, 4, false),
      () => g.removePage(f.head, true),
      () => g.flushRmaps(),
    ])
      try {
        fn();
      } catch (e) {
        if (isGatherError(e)) codes.push(e.code);
      }
    expect(codes).toEqual(["BAD_PFN", "UNSUPPORTED", "NR_OUTSIDE_FOLIO", "BAD_ARGUMENT", "NOT_UNDER_PTL"]);
    let archErr: unknown;
    try {
      defineArch({ name: "bad", noGather: true, delayRmap: true });
    } catch (e) {
      archErr = e;
    }
    expect(isArchConfigError(archErr) && archErr.code).toBe("NO_GATHER_WITH_DELAYED_RMAP");
    expect(() => defineArch({ name: "bad2", geometry: { ptrsPerPte: 500 } })).toThrow(/BAD_GEOMETRY/);
  });
});

describe("flush order and broken variants", () => {
  function run(v: GatherVariant) {
    const fx = createGatherFixture(generic);
    const folios = [
      mapAnonFolio(fx, 0),
      mapFileFolio(fx, 0, true),
      mapAnonFolio(fx, 2),
      mapFileFolio(fx, 1, true),
    ];
    const tail = [mapAnonFolio(fx, 1)];
    const rec = recordEvents();
    const g = gatherOn(fx, v, { events: rec.sink });
    zapFolios(g, folios);
    zapFolios(g, tail, 0x800000); // next PTE table: queued, not yet flushed when finish runs
    g.pteFreeTlb(fx.mem.allocFolio(0), 0);
    g.finish();
    const dirty = new Set<number>();
    for (const f of folios) if (f.dirty) for (let i = 0; i < f.nr; i++) dirty.add(f.head + i);
    return { violations: checkFlushOrder(rec.events, dirty), events: rec.events, g };
  }

  for (const v of all)
    it(`${v.name}: TLB → rmaps → tables → pages`, () => {
      const { violations, events } = run(v);
      expect(violations).toEqual([]);
      const types = events.map((e) => e.type);
      const tlb = types.indexOf("tlbFlushed");
      expect(tlb).toBeGreaterThan(-1);
      expect(types.indexOf("rmapsFlushed")).toBeGreaterThan(tlb);
      expect(types.indexOf("pagesFreed")).toBeGreaterThan(types.indexOf("rmapsFlushed"));
    });

  it("catches: free before the TLB flush, delayed rmap ignored, table freed before invalidation", () => {
    const freeFirst = defineVariant(encodedPage, {
      name: "free-first",
      steps: {
        flushMmu(ops) {
          ops.tlbBatchPagesFlush();
          ops.tlbTableFlush();
          ops.tlbFlushMmuTlbonly();
        },
      },
    });
    expect(run(freeFirst).violations.some((m) => m.includes("freed before its TLB flush"))).toBe(true);
    const noDelay = defineVariant(encodedNrPages, { name: "no-delay", steps: { tlbDelayRmap: () => false } });
    expect(run(noDelay).violations.some((m) => m.includes("rmap of dirty file page"))).toBe(true);
    const tableNow = defineVariant(contigRange, {
      name: "table-now",
      steps: { removeTable: (ops, pfn) => ops.freeTableNow(pfn) },
    });
    expect(run(tableNow).violations.some((m) => m.includes("page table"))).toBe(true);
  });

  it("catches: finish ignoring the nested-flush rule", () => {
    const ignoreNested = defineVariant(encodedPage, {
      name: "ignore-nested",
      steps: {
        finishMmu(ops, flush) {
          flush();
          ops.tlbBatchListFree();
          ops.decTlbFlushPending();
        },
      },
    });
    for (const [v, nested] of [
      [encodedPage, 1],
      [ignoreNested, 0],
    ] as const) {
      const fx = createGatherFixture(generic);
      const a = gatherOn(fx, v);
      const b = gatherOn(fx, v);
      a.finish();
      b.finish();
      expect(a.counters.nestedFlushes).toBe(nested);
      expect(a.counters.tlbFlushMm).toBe(nested);
    }
    expect(defaultFinishMmu).toBeTypeOf("function");
  });
});

describe("variants leave identical memory state", () => {
  it("for the same zapped folios (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            order: fc.integer({ min: 0, max: 5 }),
            kind: fc.constantFrom("anon", "clean", "dirty"),
          }),
          {
            minLength: 1,
            maxLength: 40,
          },
        ),
        fc.integer({ min: 0, max: 3 }),
        (specs, failEvery) => {
          const digests = all.map((v) => {
            const fx = createGatherFixture(generic, 1 << 14);
            const folios = specs.map((s) =>
              s.kind === "anon" ? mapAnonFolio(fx, s.order) : mapFileFolio(fx, s.order, s.kind === "dirty"),
            );
            const g = gatherOn(fx, v, { alloc: (ord) => failEvery === 0 || ord % (failEvery + 1) !== 0 });
            zapFolios(g, folios);
            g.finish();
            fx.mem.checkInvariants();
            return `${fx.mem.stateDigest()}|${fx.swap.stateDigest()}`;
          });
          expect(digests[1]).toBe(digests[0]);
          expect(digests[2]).toBe(digests[0]);
        },
      ),
      { numRuns: 60 },
    );
  });
});
