// Models: the memory a zap meets — folios of any order, PTE-mapped once (refcount == mapcount), anon
// or page-cache — plus a small zap_pte_range driver (mm/memory.c, 6.5 / series / 7.x shapes) that
// drives a gather exactly as the teardown layer must. Omits: page tables, swap PTEs, PMD mappings.

import type { PhysMem } from "@mmgather/folio";
import { createPhysMem } from "@mmgather/folio";
import type {
  ArchTlb,
  GatherEvent,
  GatherVariant,
  MmuGather,
  MmuGatherOptions,
  TlbMm,
} from "@mmgather/mmu-gather";
import { createMmuGather, createTlbMm } from "@mmgather/mmu-gather";
import type { SwapSpace } from "@mmgather/swapcache";
import { createSwapSpace } from "@mmgather/swapcache";

/** Physical memory, swap and an mm for gather tests. */
export interface GatherFixture {
  readonly mem: PhysMem;
  readonly swap: SwapSpace;
  readonly mm: TlbMm;
  readonly arch: ArchTlb;
  /** Page-cache mapping for file folios. */
  readonly fileMapping: number;
  /** Next free page-cache index. */
  nextIndex: number;
}

/** Build a fixture with `nrPages` page frames and one swap device. */
export function createGatherFixture(arch: ArchTlb, nrPages = 1 << 16): GatherFixture {
  const mem = createPhysMem({ nrPages, pmdOrder: Math.min(arch.geometry.pmdOrder, 9) });
  const swap = createSwapSpace(mem, { devices: [{ nrSlots: 4096 }] });
  const fileMapping = mem.createAddressSpace({ swapBacked: false });
  // Another CPU runs the mm: the case the ordering rule exists for (s390 then IPTEs at every clear).
  const mm = createTlbMm();
  mm.attachedElsewhere = true;
  return { mem, swap, mm, arch, fileMapping, nextIndex: 0 };
}

/** One mapped folio: its pages are PTE-mapped once and the page tables hold one ref per PTE. */
export interface MappedFolio {
  readonly head: number;
  readonly nr: number;
  readonly file: boolean;
  /** The PTEs were dirty (file folios: forces a delayed rmap / TLB flush). */
  readonly dirty: boolean;
}

/** Allocate an anon folio of `order` and map every page once. */
export function mapAnonFolio(fx: GatherFixture, order: number): MappedFolio {
  const { mem } = fx;
  const head = mem.allocFolio(order);
  const nr = mem.folioNrPages(head);
  const index = Math.ceil(fx.nextIndex / nr) * nr;
  mem.folioSetAnon(head, 1, index);
  fx.nextIndex = index + nr;
  mem.folioAddRmapPtes(head, head, nr);
  // allocFolio's reference becomes the first PTE's; one more per further PTE.
  if (nr > 1) mem.folioRefAdd(head, nr - 1);
  return { head, nr, file: false, dirty: false };
}

/** Allocate a page-cache folio of `order`, add it to the fixture's mapping, map every page once. */
export function mapFileFolio(fx: GatherFixture, order: number, dirty: boolean): MappedFolio {
  const { mem } = fx;
  const head = mem.allocFolio(order);
  const nr = mem.folioNrPages(head);
  const index = Math.ceil(fx.nextIndex / nr) * nr;
  mem.filemapAddFolio(fx.fileMapping, head, index);
  fx.nextIndex = index + nr;
  mem.folioAddRmapPtes(head, head, nr);
  mem.folioRefAdd(head, nr);
  // drop the allocation reference: the page cache and the PTEs now own the folio
  mem.folioPut(head);
  return { head, nr, file: true, dirty };
}

/** Create a gather on the fixture. */
export function gatherOn(
  fx: GatherFixture,
  variant: GatherVariant,
  extra: Partial<Omit<MmuGatherOptions, "mem" | "swap" | "mm" | "arch" | "variant">> = {},
): MmuGather {
  return createMmuGather({ mem: fx.mem, swap: fx.swap, mm: fx.mm, arch: fx.arch, variant, ...extra });
}

/**
 * Zap the folios as `zap_pte_range` does, one PTE table (arch.geometry.ptrsPerPte PTEs) per PTL hold.
 * Virtual addresses are laid out contiguously from `base`. Follows the variant's policies: folio PTE
 * batching, immediate vs delayed vs batched rmap, forced flush on "full" and on dirty file pages.
 */
export function zapFolios(g: MmuGather, folios: readonly MappedFolio[], base = 0x400000): void {
  const arch = g.arch;
  const pageSize = 2 ** arch.geometry.pageShift;
  const ptrs = arch.geometry.ptrsPerPte;
  const batchPtes = g.variant.policy.walkBatchesFolioPtes;
  // flatten to (folio, page offset) in address order
  let fi = 0;
  let off = 0;
  let addr = base;
  while (fi < folios.length) {
    const tableEnd = (Math.floor(addr / (pageSize * ptrs)) + 1) * pageSize * ptrs;
    let force = false;
    let full = false;
    g.enterPtl();
    if (g.tlbBatchRmap()) g.discardRmaps();
    while (fi < folios.length && addr < tableEnd) {
      const f = folios[fi];
      const left = f.nr - off;
      const room = (tableEnd - addr) / pageSize;
      const nr = batchPtes ? Math.min(left, room) : 1;
      const pfn = f.head + off;
      g.ptepGetAndClear(addr, nr);
      g.tlbRemoveTlbEntries(addr, nr);
      let delay = false;
      if (f.file && f.dirty && g.tlbDelayRmap()) {
        delay = !g.tlbBatchRmap();
        force = true;
      }
      if (!delay && !g.tlbBatchRmap()) g.removeRmap(pfn, nr);
      full = nr > 1 ? g.removeFolioPages(pfn, nr, delay) : g.removePage(pfn, delay);
      addr += nr * pageSize;
      off += nr;
      if (off === f.nr) {
        fi++;
        off = 0;
      }
      if (full) {
        force = true;
        break;
      }
    }
    const why = full ? "batchFull" : "dirtyShared";
    if (force) g.flushMmuTlbonly(why);
    g.flushRmaps();
    g.leavePtl();
    if (force) g.flushMmu(why);
  }
}

/** Collect events into an array (tests only). */
export function recordEvents(): { events: GatherEvent[]; sink: (e: GatherEvent) => void } {
  const events: GatherEvent[] = [];
  return { events, sink: (e) => events.push(e) };
}
