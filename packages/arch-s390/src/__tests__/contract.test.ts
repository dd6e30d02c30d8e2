import { createMmuGather, createTlbMm } from "@mmgather/mmu-gather";
import {
  createGatherFixture,
  describeArchContract,
  gatherOn,
  mapAnonFolio,
  recordEvents,
} from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import { s390Arch } from "../index.js";

describeArchContract(s390Arch);

describe("s390Arch", () => {
  it("has s390 geometry and capabilities", () => {
    expect(s390Arch.noGather).toBe(true);
    expect(s390Arch.mergeVmas).toBe(true);
    expect(s390Arch.delayRmap).toBe(false);
    expect(s390Arch.geometry.ptrsPerPte).toBe(256);
    expect(s390Arch.geometry.pmdOrder).toBe(8);
  });

  it("with another CPU attached: invalidates at PTE clear (IPTE), frees nr pages of one folio at once", () => {
    const fx = createGatherFixture(s390Arch);
    const f = mapAnonFolio(fx, 4);
    const rec = recordEvents();
    const g = gatherOn(fx, "encoded-nr-pages" as never, { events: rec.sink });
    g.ptepGetAndClear(0x10000, f.nr);
    g.tlbRemoveTlbEntries(0x10000, f.nr);
    g.removeRmap(f.head, f.nr);
    expect(g.removeFolioPages(f.head, f.nr, false)).toBe(false);
    expect(fx.mem.isFree(f.head)).toBe(true);
    expect(g.counters.ipte).toBe(16);
    expect(g.queuedEntries).toBe(0);
    const kinds = rec.events.map((e) => e.type);
    expect(kinds.indexOf("tlbFlushed")).toBeLessThan(kinds.indexOf("pagesFreed"));
    g.finish();
    expect(g.counters.idte).toBe(0);
  });

  it("with only this CPU attached: lazy invalidation (no IPTE), flush_mm set, one IDTE at finish", () => {
    const fx = createGatherFixture(s390Arch);
    const mm = createTlbMm();
    const f = mapAnonFolio(fx, 4);
    const g = createMmuGather({
      mem: fx.mem,
      swap: fx.swap,
      mm,
      arch: s390Arch,
      variant: "encoded-nr-pages",
    });
    g.ptepGetAndClear(0x10000, f.nr);
    g.tlbRemoveTlbEntries(0x10000, f.nr);
    g.removeRmap(f.head, f.nr);
    expect(g.removeFolioPages(f.head, f.nr, false)).toBe(false);
    expect(g.counters.ipte).toBe(0);
    expect(g.counters.lazyInvalidations).toBe(16);
    expect(mm.flushMm).toBe(true);
    g.finish();
    expect(g.counters.idte).toBe(1);
    expect(mm.flushMm).toBe(false);
  });

  it("exit (fullmm): ptep_get_and_clear_full issues nothing", () => {
    const fx = createGatherFixture(s390Arch);
    const f = mapAnonFolio(fx, 4);
    const g = createMmuGather({
      mem: fx.mem,
      swap: fx.swap,
      mm: fx.mm,
      arch: s390Arch,
      variant: "encoded-nr-pages",
      fullmm: true,
    });
    g.ptepGetAndClear(0x10000, f.nr);
    g.tlbRemoveTlbEntries(0x10000, f.nr);
    g.removeRmap(f.head, f.nr);
    g.removeFolioPages(f.head, f.nr, false);
    expect(g.counters.ipte).toBe(0);
    expect(g.counters.lazyInvalidations).toBe(0);
    expect(fx.mm.flushMm).toBe(false);
    g.finish();
  });

  it("IDTEs at flush only when a table free left flush_mm set", () => {
    const fx = createGatherFixture(s390Arch);
    const mm = createTlbMm();
    const g = createMmuGather({ mem: fx.mem, swap: fx.swap, mm, arch: s390Arch, variant: "encoded-page" });
    const table = fx.mem.allocFolio(0);
    g.pteFreeTlb(table, 0x100000);
    expect(mm.flushMm).toBe(true);
    g.finish();
    expect(g.counters.idte).toBe(1);
    expect(mm.flushMm).toBe(false);
    expect(fx.mem.isFree(table)).toBe(true);
  });
});
