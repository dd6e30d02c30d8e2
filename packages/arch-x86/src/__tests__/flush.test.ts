// x86's tlb_flush through one gather, written from arch/x86/include/asm/tlb.h and arch/x86/mm/tlb.c
// (v6.18): which CPUs a flush reaches and how (IPI, locally, INVLPGB), how many INVLPGs or INVLPGBs it
// takes, when it becomes a full flush, and what the devices sharing the page tables are told.

import {
  encodedNrPages,
  type GatherEvent,
  type MmuGather,
  TLB_FLUSH_ALL,
  type TlbMm,
} from "@mmgather/mmu-gather";
import { createGatherFixture, gatherOn, recordEvents } from "@mmgather/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { x86Arch, x86InvlpgbArch } from "../index.js";

const PAGE = 4096;
const PMD = 2 << 20;
const BASE = 0x40000000; // 1 GiB: PUD aligned

type Flushed = Extract<GatherEvent, { type: "tlbFlushed" }>;

interface Run {
  readonly g: MmuGather;
  /** A fresh page-table page to free. */
  readonly table: () => number;
  readonly mm: TlbMm;
  readonly events: GatherEvent[];
  readonly flushed: () => Flushed[];
  readonly devices: () => [number, number][];
}

/** A gather on `arch` run by `cpu`, with `cpumask` / `lazy` as the CPU model would set them. */
function run(
  arch: typeof x86Arch,
  cpumask: number[],
  lazy: number[],
  cpu: number,
  opts: { fullmm?: boolean } = {},
): Run {
  const fx = createGatherFixture(arch);
  fx.mm.cpumask = cpumask;
  fx.mm.lazyCpus = lazy;
  fx.mm.hasNotifiers = true;
  const rec = recordEvents();
  const g = gatherOn(fx, encodedNrPages, { cpu, events: rec.sink, fullmm: opts.fullmm });
  return {
    g,
    table: () => fx.mem.allocFolio(0),
    mm: fx.mm,
    events: rec.events,
    flushed: () => rec.events.filter((e): e is Flushed => e.type === "tlbFlushed"),
    devices: () =>
      rec.events.flatMap((e) =>
        e.type === "secondaryTlbsInvalidated" ? [[e.start, e.end] as [number, number]] : [],
      ),
  };
}

describe("get_flush_tlb_info: tlb_single_page_flush_ceiling = 33", () => {
  it("33 PTEs are 33 INVLPGs; 34 are one full flush — and the devices get the 34 pages asked for", () => {
    for (const [pages, kind, invlpgs] of [
      [33, "range", 33],
      [34, "mm", 0],
    ] as const) {
      const r = run(x86Arch, [0], [], 0);
      r.g.tlbRemoveTlbEntries(BASE, pages);
      r.g.flushMmuTlbonly();
      expect(r.g.counters).toMatchObject({
        tlbFlushRange: kind === "range" ? 1 : 0,
        tlbFlushRangeEntries: invlpgs,
        tlbFlushMm: kind === "mm" ? 1 : 0,
        tlbIpis: 0,
        tlbCpusTargeted: 1,
      });
      const [f] = r.flushed();
      expect([f.kind, f.cpus, f.walkCaches]).toEqual([kind, [0], true]);
      if (kind === "range") expect([f.start, f.end, f.stride]).toEqual([BASE, BASE + 33 * PAGE, PAGE]);
      expect(r.devices()).toEqual([[BASE, BASE + pages * PAGE]]);
      r.g.finish();
    }
  });

  it("the ceiling counts (end - start) >> stride_shift, rounded down; the INVLPG loop runs to end", () => {
    // PTE tables freed under 34 consecutive PMDs: pte_free_tlb records PAGE_SIZE at each, cleared_pmds,
    // so the stride is a PMD and the range is 33 PMDs and a page long — 33 entries by the shift, 34 INVLPGs.
    const r = run(x86Arch, [0], [], 0);
    for (let i = 0; i < 34; i++) r.g.pteFreeTlb(r.table(), BASE + i * PMD);
    r.g.flushMmuTlbonly();
    expect(r.g.counters).toMatchObject({ tlbFlushRange: 1, tlbFlushRangeEntries: 34, tlbFlushMm: 0 });
    expect(r.flushed().map((f) => [f.kind, f.start, f.end, f.stride])).toEqual([
      ["range", BASE, BASE + 33 * PMD + PAGE, PMD],
    ]);
    r.g.finish();
  });
});

describe("native_flush_tlb_multi / should_flush_tlb: lazy-TLB CPUs", () => {
  it("a leaf-only flush leaves the lazy CPUs out; one after freeing page tables reaches them", () => {
    const leaf = run(x86Arch, [0, 1, 2, 3], [2, 3], 0);
    leaf.g.tlbRemoveTlbEntries(BASE, 4);
    leaf.g.flushMmuTlbonly();
    expect(leaf.flushed().map((f) => f.cpus)).toEqual([[0, 1]]);
    expect(leaf.g.counters).toMatchObject({ tlbIpis: 1, tlbCpusTargeted: 2, tlbLazyCpusSkipped: 2 });

    const freed = run(x86Arch, [0, 1, 2, 3], [2, 3], 0);
    freed.g.tlbRemoveTlbEntries(BASE, 4);
    freed.g.pteFreeTlb(freed.table(), BASE);
    freed.g.flushMmuTlbonly();
    expect(freed.flushed().map((f) => f.cpus)).toEqual([[0, 1, 2, 3]]);
    expect(freed.g.counters).toMatchObject({ tlbIpis: 3, tlbCpusTargeted: 4, tlbLazyCpusSkipped: 0 });
    leaf.g.finish();
    freed.g.finish();
    // The rule the actors that flush outside a gather follow (khugepaged's pmdp_collapse_flush).
    expect(x86Arch.flushSkipsLazyCpus).toBe(true);
  });

  it("exit (fullmm) flushes the whole mm on every CPU of the mask once tables are freed", () => {
    const r = run(x86Arch, [0, 1, 2], [2], 0, { fullmm: true });
    r.g.tlbRemoveTlbEntries(BASE, 4);
    r.g.pteFreeTlb(r.table(), BASE);
    r.g.finish();
    expect(r.flushed().map((f) => [f.kind, f.cpus, f.walkCaches])).toEqual([["mm", [0, 1, 2], true]]);
    expect(r.devices()).toEqual([[0, TLB_FLUSH_ALL]]);
    expect(r.g.counters).toMatchObject({ tlbFlushMm: 1, tlbIpis: 2, tlbLazyCpusSkipped: 0 });
  });

  it("IPIs go to the remote CPUs only: alone on its CPU the flush is local, without a CPU model it is the asm-generic one", () => {
    const alone = run(x86Arch, [0], [], 0);
    alone.g.tlbRemoveTlbEntries(BASE, 2);
    alone.g.flushMmuTlbonly();
    expect(alone.flushed().map((f) => f.cpus)).toEqual([[0]]);
    expect(alone.g.counters).toMatchObject({ tlbIpis: 0, tlbCpusTargeted: 1 });

    const other = run(x86Arch, [1, 2], [], 0); // the initiating CPU does not have the mm loaded
    other.g.tlbRemoveTlbEntries(BASE, 2);
    other.g.flushMmuTlbonly();
    expect(other.flushed().map((f) => f.cpus)).toEqual([[1, 2]]);
    expect(other.g.counters).toMatchObject({ tlbIpis: 2, tlbCpusTargeted: 2 });

    const none = run(x86Arch, [], [], -1);
    none.g.tlbRemoveTlbEntries(BASE, 2);
    none.g.flushMmuTlbonly();
    expect(none.flushed().map((f) => [f.kind, f.cpus])).toEqual([["range", null]]);
    expect(none.g.counters).toMatchObject({ tlbFlushRange: 1, tlbIpis: 0, tlbCpusTargeted: 0 });
    expect(none.devices()).toEqual([[BASE, BASE + 2 * PAGE]]);
    for (const r of [alone, other, none]) r.g.finish();
  });
});

describe("INVLPGB: broadcast_tlb_flush for an mm with a global ASID", () => {
  it("more than 3 non-lazy CPUs: INVLPGBs of up to 8 pages and one TLBSYNC, no IPI, every CPU reached", () => {
    const r = run(x86InvlpgbArch, [0, 1, 2, 3, 4], [4], 0);
    r.g.tlbRemoveTlbEntries(BASE, 33);
    r.g.flushMmuTlbonly();
    expect(r.flushed().map((f) => [f.kind, f.cpus, (f.end - f.start) / PAGE, f.walkCaches])).toEqual([
      ["invlpgb", null, 8, true],
      ["invlpgb", null, 8, true],
      ["invlpgb", null, 8, true],
      ["invlpgb", null, 8, true],
      ["invlpgb", null, 1, true],
    ]);
    expect(r.g.counters).toMatchObject({
      invlpgb: 5,
      tlbsync: 1,
      tlbIpis: 0,
      tlbCpusTargeted: 5,
      tlbLazyCpusSkipped: 0,
      tlbFlushRange: 0,
      tlbFlushMm: 0,
    });
    expect(r.devices()).toEqual([[BASE, BASE + 33 * PAGE]]);
    r.g.finish();
  });

  it("above the ceiling: one INVLPGB of the whole PCID", () => {
    const r = run(x86InvlpgbArch, [0, 1, 2, 3], [], 0);
    r.g.tlbRemoveTlbEntries(BASE, 34);
    r.g.flushMmuTlbonly();
    expect(r.flushed().map((f) => [f.kind, f.start, f.end])).toEqual([["invlpgb", 0, TLB_FLUSH_ALL]]);
    expect(r.g.counters).toMatchObject({ invlpgb: 1, tlbsync: 1, tlbIpis: 0 });
    expect(r.devices()).toEqual([[BASE, BASE + 34 * PAGE]]);
    r.g.finish();
  });

  it("huge PMDs go at PMD stride, 8 per INVLPGB; above a PMD (PUD stride) one entry per INVLPGB", () => {
    const pmd = run(x86InvlpgbArch, [0, 1, 2, 3], [], 0);
    for (let i = 0; i < 10; i++) pmd.g.tlbRemovePmdTlbEntry(BASE + i * PMD);
    pmd.g.flushMmuTlbonly();
    expect(pmd.flushed().map((f) => [f.start, f.end, f.stride])).toEqual([
      [BASE, BASE + 8 * PMD, PMD],
      [BASE + 8 * PMD, BASE + 10 * PMD, PMD],
    ]);
    const pud = run(x86InvlpgbArch, [0, 1, 2, 3], [], 0);
    pud.g.tlbRemovePudTlbEntry(BASE);
    pud.g.tlbRemovePudTlbEntry(BASE + 2 ** 30);
    pud.g.flushMmuTlbonly();
    expect(pud.flushed().map((f) => [f.start, f.end, f.stride])).toEqual([
      [BASE, BASE + 2 ** 30, 2 ** 30],
      [BASE + 2 ** 30, BASE + 2 ** 31, 2 ** 30],
    ]);
    expect(pud.g.counters).toMatchObject({ invlpgb: 2, tlbsync: 1 });
    pmd.g.finish();
    pud.g.finish();
  });

  it("3 non-lazy CPUs (lazy ones do not count): no global ASID, IPIs as on x86Arch", () => {
    const r = run(x86InvlpgbArch, [0, 1, 2, 3, 4], [3, 4], 0);
    r.g.tlbRemoveTlbEntries(BASE, 4);
    r.g.flushMmuTlbonly();
    expect(r.flushed().map((f) => [f.kind, f.cpus])).toEqual([["range", [0, 1, 2]]]);
    expect(r.g.counters).toMatchObject({ invlpgb: 0, tlbsync: 0, tlbIpis: 2, tlbLazyCpusSkipped: 2 });
    r.g.finish();
  });
});

describe("property: every flush, on random CPU sets, follows flush_tlb_mm_range", () => {
  it("IPI path: the non-lazy CPUs always, lazy ones iff tables were freed; INVLPGB path: no IPI, ⌈n/8⌉ INVLPGBs", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 1, max: 80 }),
        fc.boolean(),
        fc.boolean(),
        (nCpus, lazyBits, pages, freeTable, invlpgb) => {
          const mask = Array.from({ length: nCpus }, (_, c) => c);
          // CPU 0 runs the gather and is never lazy.
          const lazy = mask.filter((c) => c > 0 && (lazyBits >> c) & 1);
          const cpu = nCpus > 0 ? 0 : -1;
          const r = run(invlpgb ? x86InvlpgbArch : x86Arch, mask, lazy, cpu);
          r.g.tlbRemoveTlbEntries(BASE, pages);
          if (freeTable) r.g.pteFreeTlb(r.table(), BASE);
          r.g.flushMmuTlbonly();
          r.g.finish();
          const c = r.g.counters;
          const full = pages > 33;
          const broadcast = invlpgb && nCpus - lazy.length > 3;
          const f = r.flushed();
          if (broadcast) {
            expect(f.every((e) => e.kind === "invlpgb" && e.cpus === null && e.walkCaches)).toBe(true);
            expect(c.invlpgb).toBe(full ? 1 : Math.ceil(pages / 8));
            expect([c.tlbsync, c.tlbIpis, c.tlbCpusTargeted]).toEqual([1, 0, nCpus]);
          } else {
            expect(f).toHaveLength(1);
            expect(f[0].kind).toBe(full ? "mm" : "range");
            const reached = f[0].cpus ?? [];
            const want = mask.filter((x) => freeTable || !lazy.includes(x));
            expect(reached).toEqual(nCpus > 0 ? want : []);
            expect(c.tlbIpis).toBe(want.filter((x) => x !== cpu).length);
            expect(c.tlbLazyCpusSkipped).toBe(freeTable ? 0 : lazy.length);
            expect(c.invlpgb + c.tlbsync).toBe(0);
            if (!full) expect(c.tlbFlushRangeEntries).toBe(pages);
          }
          expect(r.devices()).toEqual([[BASE, BASE + pages * PAGE]]);
        },
      ),
      { numRuns: 300 },
    );
  });
});
