// The swap cache is emptied at flush time (issue: swap state was never checked after a flush).
// Kernel semantics: free_pages_and_swap_cache calls free_swap_cache on each gathered folio
// (v6.5: per page; 7.x: per folio entry); a folio in the swap cache whose last mapping the zap removed
// and whose swap slots no PTE holds any more leaves the cache there (folio_free_swap →
// delete_from_swap_cache), its slots are freed, and the gather's reference is the last one.

import { PG } from "@mmgather/folio";
import { createGatherFixture, gatherOn, mapAnonFolio, zapFolios } from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import { contigRange, defineArch, encodedNrPages, encodedPage } from "../index.js";

const generic = defineArch({ name: "test-generic", fullFlushCeiling: 33 });

describe("free_swap_cache at flush", () => {
  for (const variant of [encodedPage, contigRange, encodedNrPages]) {
    for (const order of [0, 2]) {
      it(`${variant.name}, order ${order}: a swap-cache folio no PTE holds leaves the cache and is freed`, () => {
        const fx = createGatherFixture(generic);
        const f = mapAnonFolio(fx, order);
        fx.swap.folioAllocSwap(f.head); // reclaim added it to the swap cache; no swap PTE yet
        expect(fx.mem.folioTest(f.head, PG.swapcache)).toBe(true);
        expect(fx.swap.slotsInUse()).toBe(f.nr);
        const deletes0 = fx.swap.counters.swapCacheDeletes;
        const g = gatherOn(fx, variant);
        zapFolios(g, [f]);
        // Queued, not yet flushed: still in the swap cache, holding its slots.
        expect(fx.swap.slotsInUse()).toBe(f.nr);
        g.finish();
        expect(fx.swap.counters.swapCacheDeletes - deletes0).toBe(1);
        expect(fx.swap.slotsInUse()).toBe(0);
        expect(fx.mem.isFree(f.head)).toBe(true);
        fx.swap.checkInvariants();
      });
    }
  }

  it("a swap-cache folio whose slot a swap PTE still holds keeps the slot after the flush", () => {
    const fx = createGatherFixture(generic);
    const f = mapAnonFolio(fx, 0);
    const entry = fx.swap.folioAllocSwap(f.head);
    fx.swap.swapDuplicate(entry, 1); // another mm's swap PTE references the slot
    const g = gatherOn(fx, encodedNrPages);
    zapFolios(g, [f]);
    g.finish();
    // free_swap_cache: the folio leaves the cache only if no swap PTE holds it (folio_free_swap);
    // otherwise it stays cached and only the gather's reference is dropped.
    expect(fx.swap.swapCount(entry)).toBe(1);
    expect(fx.swap.slotsInUse()).toBe(1);
    fx.swap.checkInvariants();
  });
});
