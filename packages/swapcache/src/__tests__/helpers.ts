import { createPhysMem, type PhysMem } from "@mmgather/folio";
import { createSwapSpace, type SwapSpace } from "../index.js";

export interface World {
  mem: PhysMem;
  swap: SwapSpace;
}

/** A fresh machine: `nrPages` page frames and one swap device per entry of `slots`. */
export function world(slots: number[] = [2048], nrPages = 4096): World {
  const mem = createPhysMem({ nrPages });
  const swap = createSwapSpace(mem, { devices: slots.map((nrSlots) => ({ nrSlots })) });
  return { mem, swap };
}

/** Maps every page of an anon folio by PTE (as a fault would), so folio_mapped() is true. */
export function mapFolio(mem: PhysMem, head: number): void {
  mem.folioSetAnon(head, 1, head);
  mem.folioAddRmapPtes(head, head, mem.folioNrPages(head));
}

/** Removes the PTE mappings added by mapFolio. */
export function unmapFolio(mem: PhysMem, head: number): void {
  mem.folioRemoveRmapPtes(head, head, mem.folioNrPages(head));
}

/**
 * Reclaim of a swapped-out folio as shrink_folio_list does it after try_to_unmap: one swap PTE per page
 * (swap_duplicate), then the folio leaves the swap cache and is freed. Returns the first entry.
 */
export function swapOutAndReclaim(w: World, order: number): number {
  const head = w.mem.allocFolio(order);
  const entry = w.swap.folioAllocSwap(head);
  w.swap.swapDuplicate(entry, w.mem.folioNrPages(head));
  w.swap.deleteFromSwapCache(head);
  w.mem.folioPut(head);
  return entry;
}
