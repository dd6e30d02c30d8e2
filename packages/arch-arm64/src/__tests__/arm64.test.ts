// The arm64 adapter under the mmu_gather (v6.18 tlb_flush): what each flush invalidates, how many TLBIs
// it takes, when it becomes flush_tlb_mm, and what the secondary TLBs are told.
import type { GatherEvent } from "@mmgather/mmu-gather";
import {
  createMmuGather,
  encodedNrPages,
  encodedPage,
  isArchConfigError,
  TLB_FLUSH_ALL,
} from "@mmgather/mmu-gather";
import {
  createGatherFixture,
  describeArchContract,
  gatherOn,
  mapAnonFolio,
  recordEvents,
} from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import { arm64Arch, arm64Cost, arm64Geometry, createArm64Arch } from "../index.js";

describeArchContract(arm64Arch);
describeArchContract(createArm64Arch({ pageSize: "16K", tlbRange: true }));
describeArchContract(createArm64Arch({ pageSize: "64K" }));

type Flush = Extract<GatherEvent, { type: "tlbFlushed" }>;
const flushes = (events: readonly GatherEvent[]) => events.filter((e): e is Flush => e.type === "tlbFlushed");
const told = (events: readonly GatherEvent[]) =>
  events
    .filter((e) => e.type === "secondaryTlbsInvalidated")
    .map((e) => (e.type === "secondaryTlbsInvalidated" ? [e.start, e.end] : []));

/** Clears and queues `n` order-0 pages at `addr` (one PTE each), as a zap of one table would. */
function zapPages(
  fx: ReturnType<typeof createGatherFixture>,
  g: ReturnType<typeof gatherOn>,
  addr: number,
  n: number,
) {
  const page = 2 ** fx.arch.geometry.pageShift;
  for (let i = 0; i < n; i++) {
    const f = mapAnonFolio(fx, 0);
    g.ptepGetAndClear(addr + i * page, 1);
    g.tlbRemoveTlbEntry(addr + i * page);
    g.removeRmap(f.head, 1);
    if (g.removePage(f.head, false)) g.flushMmu();
  }
}

describe("arm64Arch: the capabilities arm64 selects", () => {
  it("broadcast TLBI (no IPI), RCU table free, a flush at every VMA end, 4K geometry, the Altra TLBI profile", () => {
    expect(arm64Arch.name).toBe("arm64");
    expect(arm64Arch.tlbFlushIpi).toBe(false);
    expect(arm64Arch.tableFree).toBe("rcu");
    expect(arm64Arch.tableInvalidate).toBe(true);
    expect(arm64Arch.mergeVmas).toBe(false);
    expect(arm64Arch.noGather).toBe(false);
    expect(arm64Arch.delayRmap).toBe(true);
    expect(arm64Arch.invalidatesSecondaryTlbs).toBe(true);
    expect(arm64Arch.geometry).toEqual(arm64Geometry("4K"));
    expect(arm64Arch.cost).toEqual(arm64Cost);
    expect([arm64Cost.tlbFlushRangeEntry, arm64Cost.tlbiVa, arm64Cost.tlbiRange]).toEqual([0, 20, 40]);
  });

  it("names an adapter after its options and refuses bad ones with a typed error", () => {
    expect(createArm64Arch({ pageSize: "64K", tlbRange: true }).name).toBe("arm64-64k+tlbirange");
    expect(createArm64Arch({ pageSize: "16K" }).geometry.ptrsPerPgd).toBe(2);
    for (const bad of [{ pageSize: "8K" }, { tlbRange: "yes" }, { contiguous: true }] as never[]) {
      let err: unknown;
      try {
        createArm64Arch(bad);
      } catch (e) {
        err = e;
      }
      expect(isArchConfigError(err)).toBe(true);
    }
  });
});

describe("tlb_flush: munmap (not fullmm)", () => {
  it("leaf PTEs only: __flush_tlb_range with last_level (VALE1IS, walk caches kept), one TLBI per page", () => {
    const fx = createGatherFixture(arm64Arch);
    fx.mm.hasNotifiers = true;
    const rec = recordEvents();
    const g = gatherOn(fx, encodedPage, { events: rec.sink });
    zapPages(fx, g, 0x10000, 16);
    g.flushMmu();
    const [f] = flushes(rec.events);
    expect(f).toMatchObject({ kind: "range", start: 0x10000, end: 0x20000, stride: 4096, walkCaches: false });
    expect(g.counters.tlbiVaOps).toBe(16);
    expect(g.counters.tlbiRangeOps).toBe(0);
    expect(told(rec.events)).toEqual([[0x10000, 0x20000]]);
    g.finish();
  });

  it("after a page-table free: all levels (VAE1IS: walk caches too), the range the table free recorded included", () => {
    const fx = createGatherFixture(arm64Arch);
    const rec = recordEvents();
    const g = gatherOn(fx, encodedPage, { events: rec.sink });
    zapPages(fx, g, 0x200000, 4);
    g.pteFreeTlb(fx.mem.allocFolio(0), 0x200000);
    g.finish();
    const fl = flushes(rec.events);
    // pte_free_tlb adds PAGE_SIZE at the table's address with cleared_pmds; cleared_ptes is set too and
    // tlb_get_unmap_shift looks at it first, so the stride stays PAGE_SIZE.
    expect(fl).toHaveLength(1);
    expect(fl[0]).toMatchObject({
      kind: "range",
      start: 0x200000,
      end: 0x204000,
      stride: 4096,
      walkCaches: true,
    });
    expect(g.counters.tlbiVaOps).toBe(4);
  });

  it("huge PMDs only: the PMD stride, one TLBI per 2 MiB", () => {
    const fx = createGatherFixture(arm64Arch);
    const rec = recordEvents();
    const g = gatherOn(fx, encodedPage, { events: rec.sink });
    g.tlbRemovePmdTlbEntry(0x40000000);
    g.tlbRemovePmdTlbEntry(0x40200000);
    g.tlbRemovePmdTlbEntry(0x40400000);
    g.finish();
    expect(flushes(rec.events)[0]).toMatchObject({ start: 0x40000000, end: 0x40600000, stride: 0x200000 });
    expect(g.counters.tlbiVaOps).toBe(3);
  });

  it("512 pages without FEAT_TLBIRANGE: __flush_tlb_range_limit_excess → flush_tlb_mm, devices told everything", () => {
    const fx = createGatherFixture(arm64Arch);
    fx.mm.hasNotifiers = true;
    const rec = recordEvents();
    const g = gatherOn(fx, encodedNrPages, { events: rec.sink });
    const f = mapAnonFolio(fx, 9);
    g.ptepGetAndClear(0x40000000, 512);
    g.tlbRemoveTlbEntries(0x40000000, 512);
    g.removeRmap(f.head, 512);
    g.removeFolioPages(f.head, 512, false);
    g.flushMmu();
    expect(flushes(rec.events).map((e) => [e.kind, e.walkCaches])).toEqual([["mm", true]]);
    expect(g.counters.tlbiLimitExcess).toBe(1);
    expect(g.counters.tlbiVaOps).toBe(0);
    expect(told(rec.events)).toEqual([[0, TLB_FLUSH_ALL]]);
    g.finish();
  });

  it("511 pages without FEAT_TLBIRANGE: still 511 TLBIs; with it, 512 pages are one range TLBI", () => {
    const fx = createGatherFixture(arm64Arch);
    const g = gatherOn(fx, encodedPage);
    zapPages(fx, g, 0x40000000, 511);
    g.finish();
    expect([g.counters.tlbFlushRange, g.counters.tlbiVaOps, g.counters.tlbiLimitExcess]).toEqual([1, 511, 0]);
    const ranged = createArm64Arch({ tlbRange: true });
    const fr = createGatherFixture(ranged);
    const h = gatherOn(fr, encodedPage);
    zapPages(fr, h, 0x40000000, 512);
    h.finish();
    expect([h.counters.tlbFlushRange, h.counters.tlbiVaOps, h.counters.tlbiRangeOps]).toEqual([1, 0, 1]);
    // The range flush still counts its stride entries; the arm64 profile prices them at 0 ns.
    expect(h.counters.tlbFlushRangeEntries).toBe(512);
  });
});

describe("tlb_flush: exit (fullmm)", () => {
  it("no page tables freed: no TLB maintenance at all — the ASID is not reused without a full flush", () => {
    const fx = createGatherFixture(arm64Arch);
    fx.mm.hasNotifiers = true;
    const rec = recordEvents();
    const g = createMmuGather({
      mem: fx.mem,
      mm: fx.mm,
      arch: arm64Arch,
      variant: "encoded-page",
      fullmm: true,
      events: rec.sink,
    });
    const f = mapAnonFolio(fx, 0);
    g.ptepGetAndClear(0x1000, 1);
    g.tlbRemoveTlbEntry(0x1000);
    g.removeRmap(f.head, 1);
    g.removePage(f.head, false);
    g.flushMmu();
    expect(g.counters.tlbFlushes).toBe(1);
    expect(flushes(rec.events)).toEqual([]);
    expect(told(rec.events)).toEqual([]);
    expect(fx.mem.isFree(f.head)).toBe(true);
    g.finish();
  });

  it("page tables freed: flush_tlb_mm (TLBI ASIDE1IS, every level)", () => {
    const fx = createGatherFixture(arm64Arch);
    const rec = recordEvents();
    const g = createMmuGather({
      mem: fx.mem,
      mm: fx.mm,
      arch: arm64Arch,
      variant: "encoded-page",
      fullmm: true,
      events: rec.sink,
    });
    g.pteFreeTlb(fx.mem.allocFolio(0), 0x200000);
    g.finish();
    expect(flushes(rec.events).map((e) => [e.kind, e.walkCaches])).toEqual([["mm", true]]);
    expect(g.counters.tlbFlushMm).toBe(1);
  });
});
