// Bench fixture: physical memory with PTE-mapped anon folios of one order (refcount == mapcount).
import { createPhysMem } from "@mmgather/folio";

export function createGatherFixtureless(totalPages, order, arch) {
  const mem = createPhysMem({ nrPages: totalPages * 2, pmdOrder: arch.geometry.pmdOrder });
  const nr = 1 << order;
  const heads = [];
  for (let p = 0; p < totalPages; p += nr) {
    const head = mem.allocFolio(order);
    mem.folioSetAnon(head, 1, p);
    mem.folioAddRmapPtes(head, head, nr);
    if (nr > 1) mem.folioRefAdd(head, nr - 1);
    heads.push(head);
  }
  return { mem, heads, nr };
}
