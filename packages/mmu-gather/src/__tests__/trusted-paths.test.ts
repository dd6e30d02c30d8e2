// The unchecked entry points the zap walk uses on its hot path (`@mmgather/mmu-gather/internal`) are
// each documented as exactly a sequence of checked calls. Checked here inside the package, on random
// folio layouts, every design and both flush arrangements, with batch-page allocations failing at
// random: the fused calls and their documented sequences leave the same gather counters, the same
// physical memory and swap state, and report "full" at the same pages.

import { gatherTrusted } from "@mmgather/mmu-gather/internal";
import { createGatherFixture, gatherOn, mapAnonFolio } from "@mmgather/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  contigRange,
  defineArch,
  encodedNrPages,
  encodedPage,
  type GatherVariant,
  type MmuGather,
} from "../index.js";

const PAGE = 4096;

interface Setup {
  readonly orders: number[];
  readonly mergeVmas: boolean;
  readonly failEvery: number;
}

/** zap_pte_range's force_flush: TLB and pending rmaps under the lock, then the pages after it. */
function forceFlush(g: MmuGather): void {
  g.enterPtl();
  g.flushMmuTlbonly("batchFull");
  g.flushRmaps();
  g.leavePtl();
  g.flushMmu("batchFull");
}

/** Builds the folios and a gather, zaps them fused or step by step; returns what must match. */
function run(
  variant: GatherVariant,
  s: Setup,
  fused: boolean,
): { digest: string; counters: string; fulls: number[] } {
  const arch = defineArch({ name: "t", mergeVmas: s.mergeVmas, fullFlushCeiling: 33 });
  const fx = createGatherFixture(arch);
  const folios = s.orders.map((o) => mapAnonFolio(fx, o));
  let n = 0;
  const g: MmuGather = gatherOn(fx, variant, { alloc: () => s.failEvery === 0 || ++n % s.failEvery !== 0 });
  const t = gatherTrusted(g);
  expect(t.zapFastPath()).toBe(true);
  const rmapNow = !g.tlbBatchRmap();
  const batch = variant.policy.walkBatchesFolioPtes;
  const fulls: number[] = [];
  let addr = 0x400000;
  let page = 0;
  // Zap runs of order-0 folios together (the 7.x walk's zapSinglesRunTrusted), large folios alone.
  for (let i = 0; i < folios.length; ) {
    const f = folios[i];
    if (batch && f.nr === 1) {
      let k = i;
      while (k < folios.length && folios[k].nr === 1) k++;
      const pfns = Int32Array.from(folios.slice(i, k), (x) => x.head);
      let done = 0;
      while (done < pfns.length) {
        let used: number;
        let full: boolean;
        if (fused) {
          const r = t.zapSinglesRunTrusted(pfns.subarray(done), pfns.length - done, addr);
          used = Math.abs(r);
          full = r < 0;
        } else {
          used = 0;
          full = false;
          while (!full && done + used < pfns.length) {
            const p = pfns[done + used];
            g.ptepGetAndClear(addr + used * PAGE, 1);
            g.tlbRemoveTlbEntries(addr + used * PAGE, 1);
            t.removeRmapTrusted(p, p, 1);
            full = t.removeFolioPagesTrusted(p, 1, false);
            used++;
          }
        }
        done += used;
        addr += used * PAGE;
        page += used;
        if (full) {
          fulls.push(page);
          forceFlush(g);
        }
      }
      i = k;
      continue;
    }
    let off = 0;
    while (off < f.nr) {
      let used: number;
      let full: boolean;
      if (batch) {
        used = f.nr - off;
        if (fused) full = t.zapPresentTrusted(f.head, f.head + off, used, addr, rmapNow);
        else {
          g.ptepGetAndClear(addr, used);
          g.tlbRemoveTlbEntries(addr, used);
          if (rmapNow) t.removeRmapTrusted(f.head, f.head + off, used);
          full = t.removeFolioPagesTrusted(f.head + off, used, false);
        }
      } else if (fused) {
        const r = t.zapPresentRunPerPageTrusted(f.head, f.head + off, f.nr - off, addr, rmapNow);
        used = Math.abs(r);
        full = r < 0;
      } else {
        used = 0;
        full = false;
        while (!full && off + used < f.nr) {
          const p = f.head + off + used;
          full = t.zapPresentTrusted(f.head, p, 1, addr + used * PAGE, rmapNow);
          used++;
        }
      }
      off += used;
      addr += used * PAGE;
      page += used;
      if (full) {
        fulls.push(page);
        forceFlush(g);
      }
    }
    i++;
  }
  // contig-range removes its deferred rmaps at the end of the table, under the lock.
  g.enterPtl();
  g.flushRmaps();
  g.leavePtl();
  g.finish();
  fx.mem.checkInvariants();
  return {
    digest: `${fx.mem.stateDigest()} ${fx.swap.stateDigest()}`,
    counters: JSON.stringify(g.counters),
    fulls,
  };
}

describe("trusted (fused) gather entry points equal their documented checked sequences", () => {
  for (const variant of [encodedPage, contigRange, encodedNrPages]) {
    it(`${variant.name}: same counters, state and full points on random layouts`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.constantFrom(0, 0, 0, 1, 2, 4), { minLength: 1, maxLength: 120 }),
          fc.boolean(),
          fc.constantFrom(0, 0, 2, 3),
          (orders, mergeVmas, failEvery) => {
            const s = { orders, mergeVmas, failEvery };
            const a = run(variant, s, false);
            const b = run(variant, s, true);
            expect(b.fulls).toEqual(a.fulls);
            expect(b.counters).toBe(a.counters);
            expect(b.digest).toBe(a.digest);
          },
        ),
        { numRuns: 60 },
      );
    });
  }

  it("no batch page can be allocated: the on-stack bundle fills every few pages, at the same pages both ways", () => {
    const s = { orders: [...new Array(100).fill(0), 2, 4, 0, 0, 1], mergeVmas: true, failEvery: 1 };
    for (const variant of [encodedPage, contigRange, encodedNrPages]) {
      const a = run(variant, s, false);
      const b = run(variant, s, true);
      expect(a.fulls.length).toBeGreaterThan(10);
      expect(b).toEqual(a);
    }
  });
});
