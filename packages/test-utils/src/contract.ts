// Models: the behaviour every gather variant and every ArchTlb adapter must share (docs/kernel-reference.md
// §5, §6, §9) as reusable vitest suites. Omits: per-variant capacities (pinned in mmu-gather's tests).

import type { ArchTlb, GatherVariant } from "@mmgather/mmu-gather";
import {
  contigRange,
  defineArch,
  encodedNrPages,
  encodedPage,
  failAllocAt,
  isGatherError,
} from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import {
  createGatherFixture,
  gatherOn,
  type MappedFolio,
  mapAnonFolio,
  mapFileFolio,
  recordEvents,
  zapFolios,
} from "./fixture.js";
import { checkFlushOrder, checkSecondaryTlbOrder } from "./order.js";

function mixedFolios(fx: ReturnType<typeof createGatherFixture>): MappedFolio[] {
  const out: MappedFolio[] = [];
  for (let i = 0; i < 40; i++) out.push(mapAnonFolio(fx, i % 5));
  out.push(mapFileFolio(fx, 0, true));
  out.push(mapFileFolio(fx, 2, true));
  out.push(mapFileFolio(fx, 0, false));
  for (let i = 0; i < 10; i++) out.push(mapAnonFolio(fx, 4));
  return out;
}

function dirtyPfns(folios: readonly MappedFolio[]): Set<number> {
  const s = new Set<number>();
  for (const f of folios) if (f.file && f.dirty) for (let i = 0; i < f.nr; i++) s.add(f.head + i);
  return s;
}

/** Contract every variant keeps on `arch`. */
export function describeGatherContract(variant: GatherVariant, arch: ArchTlb): void {
  describe(`gather contract: ${variant.name} on ${arch.name}`, () => {
    it("zaps and frees every anon page, unmaps file pages, leaves invariants intact", () => {
      const fx = createGatherFixture(arch);
      const folios = mixedFolios(fx);
      const g = gatherOn(fx, variant);
      zapFolios(g, folios);
      g.finish();
      for (const f of folios) {
        if (f.file) expect(fx.mem.folioMapcount(f.head)).toBe(0);
        else expect(fx.mem.isFree(f.head)).toBe(true);
      }
      expect(fx.mm.tlbFlushPending).toBe(0);
      fx.mem.checkInvariants();
      fx.swap.checkInvariants();
    });

    it("orders TLB invalidate → delayed rmap → free, and tables after a walk-cache flush", () => {
      const fx = createGatherFixture(arch);
      const folios = mixedFolios(fx);
      const rec = recordEvents();
      const g = gatherOn(fx, variant, { events: rec.sink });
      zapFolios(g, folios);
      const table = fx.mem.allocFolio(0);
      g.pteFreeTlb(table, 0x400000);
      g.finish();
      expect(checkFlushOrder(rec.events, dirtyPfns(folios))).toEqual([]);
      expect(fx.mem.isFree(table)).toBe(true);
    });

    it("loses and double-frees nothing when every batch-page allocation fails", () => {
      const fx = createGatherFixture(arch);
      const folios = mixedFolios(fx);
      const g = gatherOn(fx, variant, { alloc: () => false });
      zapFolios(g, folios);
      const table = fx.mem.allocFolio(0);
      g.pteFreeTlb(table, 0x400000);
      g.finish();
      for (const f of folios) if (!f.file) expect(fx.mem.isFree(f.head)).toBe(true);
      expect(fx.mem.isFree(table)).toBe(true);
      if (!arch.noGather) expect(g.counters.batchAllocFailed).toBeGreaterThan(0);
      expect(g.counters.tableSyncOne).toBe(1);
      fx.mem.checkInvariants();
    });

    it("rejects a queue without a recorded range and any use after finish", () => {
      const fx = createGatherFixture(arch);
      const f = mapAnonFolio(fx, 0);
      const g = gatherOn(fx, variant);
      let err: unknown;
      try {
        g.removePage(f.head, false);
      } catch (e) {
        err = e;
      }
      expect(isGatherError(err) && err.code).toBe("NO_RANGE");
      g.finish();
      expect(() => g.flushMmu()).toThrow(/FINISHED/);
    });

    it("forces a full flush with freed tables when another gather is pending on the mm", () => {
      const fx = createGatherFixture(arch);
      const a = gatherOn(fx, variant);
      const b = gatherOn(fx, variant);
      const f = mapAnonFolio(fx, 0);
      a.enterPtl();
      a.discardRmaps();
      a.tlbRemoveTlbEntry(0x1000);
      if (!a.tlbBatchRmap()) a.removeRmap(f.head, 1);
      a.removePage(f.head, false);
      a.flushRmaps();
      a.leavePtl();
      a.finish();
      expect(fx.mem.isFree(f.head)).toBe(true);
      expect(a.counters.nestedFlushes).toBe(1);
      b.finish();
      expect(b.counters.nestedFlushes).toBe(0);
      expect(fx.mm.tlbFlushPending).toBe(0);
    });
  });
}

/** Contract every adapter keeps under every kernel variant. */
export function describeArchContract(arch: ArchTlb): void {
  describe(`arch contract: ${arch.name}`, () => {
    for (const v of [encodedPage, contigRange, encodedNrPages]) describeGatherContract(v, arch);

    it("a NO_GATHER arch never holds a page and never reports full; others hold until the flush", () => {
      const fx = createGatherFixture(arch);
      const folios: MappedFolio[] = [];
      for (let i = 0; i < 64; i++) folios.push(mapAnonFolio(fx, 0));
      const g = gatherOn(fx, encodedPage, { alloc: failAllocAt([0]) });
      const pageSize = 2 ** arch.geometry.pageShift;
      // The first batch-page allocation fails: a gathering arch is full after its 8-entry bundle.
      let firstFull = -1;
      for (let i = 0; i < folios.length; i++) {
        const f = folios[i];
        g.ptepGetAndClear(i * pageSize, 1);
        g.tlbRemoveTlbEntry(i * pageSize);
        g.removeRmap(f.head, 1);
        const full = g.removePage(f.head, false);
        if (arch.noGather) {
          expect(full).toBe(false);
          expect(g.queuedEntries).toBe(0);
          expect(fx.mem.isFree(f.head)).toBe(true);
        } else if (full) {
          firstFull = i;
          break;
        } else expect(fx.mem.isFree(f.head)).toBe(false);
      }
      if (!arch.noGather) {
        expect(firstFull).toBe(7);
        expect(g.counters.forcedFlushes.batchAllocFailed).toBe(1);
        g.flushMmu();
        for (let i = firstFull + 1; i < folios.length; i++) {
          g.tlbRemoveTlbEntry(i * pageSize);
          g.removeRmap(folios[i].head, 1);
          if (g.removePage(folios[i].head, false)) g.flushMmu();
        }
      }
      g.finish();
      for (const f of folios) expect(fx.mem.isFree(f.head)).toBe(true);
    });

    it("secondary TLBs: told about every cleared address before its page is freed, or never called", () => {
      for (const variant of [encodedPage, contigRange, encodedNrPages]) {
        const fx = createGatherFixture(arch);
        fx.mm.hasNotifiers = true; // a device shares the page tables
        const folios = mixedFolios(fx);
        const rec = recordEvents();
        const g = gatherOn(fx, variant, { events: rec.sink });
        zapFolios(g, folios);
        g.finish();
        const told = rec.events.filter((e) => e.type === "secondaryTlbsInvalidated");
        if (!arch.invalidatesSecondaryTlbs) {
          expect(told).toEqual([]);
          continue;
        }
        expect(told.length).toBeGreaterThan(0);
        expect(checkSecondaryTlbOrder(rec.events, 2 ** arch.geometry.pageShift)).toEqual([]);
      }
    });

    it("hooks receive a read-only view; a third adapter built on the public API passes the contract", () => {
      let attempted = false;
      const probe = defineArch({
        ...arch,
        name: `${arch.name}-probe`,
        tlbFlush(tlb, ops) {
          attempted = true;
          expect(() => {
            (tlb as { start: number }).start = 0;
          }).toThrow(TypeError);
          arch.tlbFlush(tlb, ops);
        },
      });
      const fx = createGatherFixture(probe);
      const folios = [mapAnonFolio(fx, 0), mapAnonFolio(fx, 3)];
      const g = gatherOn(fx, encodedPage);
      zapFolios(g, folios);
      g.finish();
      expect(attempted).toBe(true);
      for (const f of folios) expect(fx.mem.isFree(f.head)).toBe(true);
    });
  });
}
