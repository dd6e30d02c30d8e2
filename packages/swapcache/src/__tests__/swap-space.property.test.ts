import { PG } from "@mmgather/folio";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isSwapError, swpEntry } from "../index.js";
import { world } from "./helpers.js";

const NR_SLOTS = 48;

type Op =
  | { k: "alloc"; order: number }
  | { k: "swapOut"; i: number }
  | { k: "dupPage"; i: number; page: number }
  | { k: "fork"; i: number }
  | { k: "freePte"; i: number }
  | { k: "freePteRun"; i: number; max: number }
  | { k: "swapIn"; i: number }
  | { k: "freeSwapCache"; i: number; page: number }
  | { k: "delete"; i: number }
  | { k: "toggle"; i: number; flag: "locked" | "writeback" }
  | { k: "putFolio"; i: number };

const idx = fc.nat({ max: 1000 });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ k: fc.constant("alloc" as const), order: fc.integer({ min: 0, max: 3 }) }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("swapOut" as const), i: idx }) },
  {
    weight: 4,
    arbitrary: fc.record({ k: fc.constant("dupPage" as const), i: idx, page: fc.nat({ max: 7 }) }),
  },
  fc.record({ k: fc.constant("fork" as const), i: idx }),
  fc.record({ k: fc.constant("freePte" as const), i: idx }),
  fc.record({ k: fc.constant("freePteRun" as const), i: idx, max: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ k: fc.constant("swapIn" as const), i: idx }),
  fc.record({ k: fc.constant("freeSwapCache" as const), i: idx, page: fc.nat({ max: 7 }) }),
  fc.record({ k: fc.constant("delete" as const), i: idx }),
  fc.record({
    k: fc.constant("toggle" as const),
    i: idx,
    flag: fc.constantFrom("locked" as const, "writeback" as const),
  }),
  fc.record({ k: fc.constant("putFolio" as const), i: idx }),
);

/** Work summed over every run, to show the generator reaches the interesting paths. */
const seen = {
  lookups: 0,
  trylockFails: 0,
  deletes: 0,
  freeSwapCacheHits: 0,
  batchedRuns: 0,
  enospc: 0,
  swapIns: 0,
};

/** Runs `ops` on a fresh world, checking invariants after each; then drops everything. */
function run(ops: Op[]): void {
  const w = world([NR_SLOTS], 512);
  const { mem, swap } = w;
  const folios: number[] = []; // folios we hold one reference on
  const ptes: number[] = []; // swap PTEs: one swap-count reference each
  const pick = <T>(a: T[], i: number): T | undefined => (a.length === 0 ? undefined : a[i % a.length]);
  const removePte = (e: number): boolean => {
    const j = ptes.indexOf(e);
    if (j < 0) return false;
    ptes.splice(j, 1);
    return true;
  };
  const swapcache = (h: number) => mem.folioTest(h, PG.swapcache);

  for (const o of ops) {
    switch (o.k) {
      case "alloc": {
        try {
          folios.push(mem.allocFolio(o.order));
        } catch {
          // out of page frames: nothing to do
        }
        break;
      }
      case "swapOut": {
        const h = pick(folios, o.i);
        if (h === undefined || swapcache(h)) break;
        try {
          swap.folioAllocSwap(h);
        } catch (e) {
          if (!isSwapError(e) || e.code !== "ENOSPC") throw e;
          seen.enospc++;
        }
        break;
      }
      case "dupPage": {
        // try_to_unmap turns one PTE of a swap-cache folio into a swap PTE.
        const h = pick(folios, o.i);
        if (h === undefined || !swapcache(h)) break;
        const e = mem.folioSwap(h) + (o.page % mem.folioNrPages(h));
        if (swap.swapCount(e) >= 0x3e) break;
        swap.swapDuplicate(e);
        ptes.push(e);
        break;
      }
      case "fork": {
        const e = pick(ptes, o.i);
        if (e === undefined || swap.swapCount(e) >= 0x3e) break;
        swap.swapDuplicate(e);
        ptes.push(e);
        break;
      }
      case "freePte": {
        const e = pick(ptes, o.i);
        if (e === undefined) break;
        removePte(e);
        swap.freeSwapAndCache(e);
        break;
      }
      case "freePteRun": {
        // swap_pte_batch: consecutive entries, each backed by one swap PTE we own.
        const e = pick(ptes, o.i);
        if (e === undefined) break;
        let n = 0;
        while (n < o.max && removePte(e + n)) n++;
        swap.freeSwapAndCacheNr(e, n);
        if (n > 1) seen.batchedRuns++;
        break;
      }
      case "swapIn": {
        // do_swap_page for a reclaimed slot: a new folio enters the swap cache, the PTE is mapped back.
        const e = pick(ptes, o.i);
        if (e === undefined || swap.swapCacheFolio(e) >= 0) break;
        let h: number;
        try {
          h = mem.allocFolio(0);
        } catch {
          break;
        }
        swap.addToSwapCache(h, e);
        removePte(e);
        swap.swapFree(e);
        folios.push(h);
        seen.swapIns++;
        break;
      }
      case "freeSwapCache": {
        const h = pick(folios, o.i);
        if (h === undefined) break;
        if (swap.freeSwapCache(h + (o.page % mem.folioNrPages(h)))) seen.freeSwapCacheHits++;
        break;
      }
      case "delete": {
        // Reclaim's __remove_mapping: out of the swap cache whatever the swap counts.
        const h = pick(folios, o.i);
        if (h === undefined || !swapcache(h) || mem.folioTest(h, PG.writeback)) break;
        swap.deleteFromSwapCache(h);
        break;
      }
      case "toggle": {
        const h = pick(folios, o.i);
        if (h === undefined) break;
        const f = PG[o.flag];
        if (mem.folioTest(h, f)) mem.folioClear(h, f);
        else mem.folioSet(h, f);
        break;
      }
      case "putFolio": {
        // Drop our reference; a swap-cache folio lives on, held by the cache alone.
        const h = pick(folios, o.i);
        if (h === undefined) break;
        folios.splice(folios.indexOf(h), 1);
        mem.folioClear(h, PG.locked);
        mem.folioClear(h, PG.writeback);
        mem.folioPut(h);
        break;
      }
    }
    swap.checkInvariants();
    mem.checkInvariants();
  }

  seen.lookups += swap.counters.swapCacheLookups;
  seen.trylockFails += swap.counters.folioTrylockFails;
  seen.deletes += swap.counters.swapCacheDeletes;

  // Drop everything: every swap PTE, then every folio we hold, then orphans only the cache holds.
  for (const h of folios) {
    mem.folioClear(h, PG.locked);
    mem.folioClear(h, PG.writeback);
  }
  while (ptes.length > 0) swap.freeSwapAndCache(ptes.pop()!);
  for (const h of folios) {
    if (swapcache(h)) swap.deleteFromSwapCache(h);
    mem.folioPut(h);
  }
  for (let off = 1; off < NR_SLOTS; off++) {
    const e = swpEntry(0, off);
    const h = swap.swapCacheGetFolio(e);
    if (h < 0) continue;
    swap.deleteFromSwapCache(h);
    mem.folioPut(h);
  }
  swap.checkInvariants();
  mem.checkInvariants();
  expect(swap.slotsInUse()).toBe(0);
  expect(swap.counters.slotsAllocated).toBe(swap.counters.slotsFreed);
  expect(swap.counters.swapCacheAdds).toBe(swap.counters.swapCacheDeletes);
  for (let p = 0; p < 512; p++) expect(mem.isFree(p)).toBe(true);
}

describe("swap space under random operation sequences", () => {
  it("keeps every invariant and leaks no slot or folio", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 150, size: "max" }), (ops) => run(ops)),
      { numRuns: 300 },
    );
    for (const [k, v] of Object.entries(seen)) expect(v, k).toBeGreaterThan(0);
  });

  it("freeSwapAndCacheNr over a run frees the same as one freeSwapAndCache per entry", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            order: fc.integer({ min: 0, max: 3 }),
            refs: fc.integer({ min: 1, max: 3 }),
            keep: fc.boolean(),
            mapped: fc.boolean(),
          }),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        (specs) => {
          const build = () => {
            const w = world([NR_SLOTS], 512);
            const entries: number[] = [];
            for (const s of specs) {
              const h = w.mem.allocFolio(s.order);
              let e: number;
              try {
                e = w.swap.folioAllocSwap(h);
              } catch {
                w.mem.folioPut(h);
                continue;
              }
              const nr = w.mem.folioNrPages(h);
              for (let r = 0; r < s.refs; r++) w.swap.swapDuplicate(e, nr);
              if (s.mapped) {
                // Each PTE mapping holds a reference (as a fault's folio_ref_add does).
                w.mem.folioSetAnon(h, 1, h);
                w.mem.folioRefAdd(h, nr);
                w.mem.folioAddRmapPtes(h, h, nr);
              }
              if (!s.keep && !s.mapped) w.mem.folioPut(h);
              for (let i = 0; i < nr; i++) entries.push(e + i);
            }
            return { w, entries };
          };
          const a = build();
          const b = build();
          // Zap every run of consecutive entries once: batched in a, one by one in b.
          const runs = (entries: number[]) => {
            const sorted = [...entries].sort((x, y) => x - y);
            const out: [number, number][] = [];
            for (const e of sorted) {
              const last = out[out.length - 1];
              if (last && last[0] + last[1] === e) last[1]++;
              else out.push([e, 1]);
            }
            return out;
          };
          for (const [e, n] of runs(a.entries)) a.w.swap.freeSwapAndCacheNr(e, n);
          // Same runs in the same order (vm_swap_full depends on what was freed before).
          for (const [e, n] of runs(b.entries)) for (let i = 0; i < n; i++) b.w.swap.freeSwapAndCache(e + i);
          a.w.swap.checkInvariants();
          b.w.swap.checkInvariants();
          expect(a.w.swap.stateDigest()).toBe(b.w.swap.stateDigest());
          expect(a.w.mem.stateDigest()).toBe(b.w.mem.stateDigest());
          expect(a.w.swap.counters.slotsFreed).toBe(b.w.swap.counters.slotsFreed);
          expect(a.w.swap.counters.clusterLocks).toBeLessThanOrEqual(b.w.swap.counters.clusterLocks);
        },
      ),
      { numRuns: 200 },
    );
  });
});
