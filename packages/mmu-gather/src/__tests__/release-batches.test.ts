// How many release calls a gather flush makes: asserted from the kernel's semantics, not the code.
// tlb_batch_pages_flush hands each batch (the on-stack bundle of MMU_GATHER_BUNDLE entries, then the
// batch pages) to free_pages_and_swap_cache in chunks of ≤ MAX_NR_FOLIOS_PER_FREE entries.
// - v6.5 release_pages (encoded-page, and the 2023 series built on it): one list per call, freed with
//   one free_unref_page_list.
// - v6.18 free_pages_and_swap_cache: a folio_batch of 31 (PAGEVEC_SIZE) filled and released with
//   folios_put_refs each time it is full → one free_unref_folios per 31 folios of a chunk.
import { createGatherFixture, gatherOn, mapAnonFolio, zapFolios } from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import {
  contigRange,
  defineArch,
  encodedNrPages,
  encodedPage,
  type GatherVariant,
  MMU_GATHER_BUNDLE,
} from "../index.js";

const generic = defineArch({ name: "test-generic", fullFlushCeiling: 33 });
const FOLIO_BATCH_SIZE = 31;

/** Zaps `n` order-0 anon folios through one gather; the free-list calls and free chunks it made. */
function release(variant: GatherVariant, n: number): { calls: number; chunks: number; flushes: number } {
  const fx = createGatherFixture(generic);
  const folios = Array.from({ length: n }, () => mapAnonFolio(fx, 0));
  const g = gatherOn(fx, variant);
  const before = fx.mem.counters.freeListCalls;
  zapFolios(g, folios);
  g.finish();
  expect(folios.every((f) => fx.mem.isFree(f.head))).toBe(true);
  return {
    calls: fx.mem.counters.freeListCalls - before,
    chunks: g.counters.chunksFreed,
    flushes: g.counters.flushMmuCalls,
  };
}

/**
 * Entries per batch for `n` single-page entries gathered without a forced flush: the on-stack bundle,
 * then one batch page. v6.5 fills the bundle; 7.x moves on once nr ≥ max − 1 (room must remain for a
 * page + nr_pages pair, __tlb_remove_folio_pages_size), so its bundle takes one entry fewer.
 */
const batches65 = (n: number) => (n <= MMU_GATHER_BUNDLE ? [n] : [MMU_GATHER_BUNDLE, n - MMU_GATHER_BUNDLE]);
const batches7x = (n: number) =>
  n < MMU_GATHER_BUNDLE ? [n] : [MMU_GATHER_BUNDLE - 1, n - (MMU_GATHER_BUNDLE - 1)];

describe("release calls per flush", () => {
  for (const n of [1, 7, 8, 9, 38, 39, 100, 400]) {
    it(`${n} order-0 folios: encoded-nr-pages releases each batch in folio batches of 31`, () => {
      const r = release(encodedNrPages, n);
      expect(r.flushes).toBe(1);
      expect(r.chunks).toBe(batches7x(n).length);
      expect(r.calls).toBe(batches7x(n).reduce((a, b) => a + Math.ceil(b / FOLIO_BATCH_SIZE), 0));
    });
    it(`${n} order-0 folios: encoded-page releases each batch as one list`, () => {
      const r = release(encodedPage, n);
      expect(r.flushes).toBe(1);
      expect(r.chunks).toBe(batches65(n).length);
      expect(r.calls).toBe(r.chunks);
    });
    it(`${n} order-0 folios: contig-range releases each chunk as one list`, () => {
      const r = release(contigRange, n);
      expect(r.flushes).toBe(1);
      expect(r.calls).toBe(r.chunks);
    });
  }
});
