// Read faults on anon memory map the shared zero page and, for a PMD-mapped range, the huge zero folio
// (do_anonymous_page / do_huge_pmd_anonymous_page, Linux v6.18). Teardown clears them without rss,
// rmap or frees (zap_present_ptes: vm_normal_page is NULL; zap_huge_pmd: is_huge_zero_pmd frees only
// the deposit), a partial zap splits a huge zero PMD into zero PTEs (__split_huge_zero_page_pmd), fork
// copies them (copy_present_ptes / copy_huge_pmd) and each mm drops its huge-zero reference once in
// __mmput (mm_put_huge_zero_folio).
import { PG } from "@mmgather/folio";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buildScenario,
  createMachine,
  createRng,
  exitMmap,
  faultIn,
  forEachPresent,
  forkMm,
  isTeardownError,
  LEVEL_PMD,
  MM_ANONPAGES,
  type Mm,
  mmapVma,
  munmap,
  PTE_PRESENT,
  PTE_WRITE,
  ptePfn,
  runBuilt,
  runScenario,
  type ScenarioSpec,
  type TeardownReport,
} from "../index.js";

const variants = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;
const MB = 1 << 20;

/** Present PTEs / huge PMDs of [vs, ve) in `mm`: [zero-page PTEs, huge zero PMDs, others]. */
function census(mm: Mm, vs: number, ve: number): [number, number, number] {
  const out: [number, number, number] = [0, 0, 0];
  const m = mm.machine;
  forEachPresent(mm, vs, ve, (pfn, _vpn, huge) => {
    if (huge) out[pfn === m.hugeZeroFolio ? 1 : 2]++;
    else out[pfn === m.zeroPfn ? 0 : 2]++;
  });
  return out;
}

/** census over every VMA of `mm`. */
function censusAll(mm: Mm): [number, number, number] {
  const out: [number, number, number] = [0, 0, 0];
  for (const v of mm.vmas) {
    const c = census(mm, v.start, v.end);
    for (let k = 0; k < 3; k++) out[k] += c[k];
  }
  return out;
}

function rmapCalls(r: TeardownReport): number {
  return r.counters.gather.rmapCallsImmediate + r.counters.gather.rmapCallsDelayed;
}

describe("zero page (do_anonymous_page read fault)", () => {
  it("a read fault maps the zero page: special PTEs, no rss, no rmap, no anon_vma, no folio per page", () => {
    const m = createMachine({ memoryBytes: 16 * MB });
    const mm = m.createMm();
    const v = mmapVma(mm, "anon", 256 * 1024);
    expect(m.zeroPfn).toBe(-1); // reserved lazily
    faultIn(mm, v, { policy: { order: 0 }, readFraction: 1 }, createRng(1));
    const zero = m.zeroPfn;
    expect(zero).toBeGreaterThanOrEqual(0);
    expect(census(mm, v.start, v.end)).toEqual([64, 0, 0]);
    expect(Array.from(mm.rss)).toEqual([0, 0, 0, 0]);
    expect(v.anonVma).toBe(-1); // vmf_anon_prepare comes after the zero-page branch
    expect(m.mem.folioRef(zero)).toBe(1);
    expect(m.mem.folioMapcount(zero)).toBe(0);
    // Read-only PTEs.
    const t = mm.pt.entries[mm.pt.pteTable(v.start, false)]!;
    expect(t[v.start % 512] & PTE_WRITE).toBe(0);
    // The zero page, one PTE table and the page-table levels above it: nothing per page.
    expect(m.mem.nrPages - m.mem.nrFreePages()).toBe(1 + 4);
  });

  for (const variant of variants) {
    it(`munmap of zero PTEs / ${variant}: cleared and flushed, no rmap, no queued page, nothing freed but tables`, () => {
      const spec: ScenarioSpec = {
        memory: 16 * MB,
        variant,
        cpus: 2,
        vmas: [{ kind: "anon", size: 256 * 1024, readFraction: 1 }],
        op: { kind: "munmap", vma: 0 },
      };
      const b = buildScenario(spec);
      const zero = b.machine.zeroPfn;
      const r = runBuilt(b, spec);
      expect(r.violations).toEqual([]);
      expect(r.finalState.problems).toEqual([]);
      expect(r.counters.walk.ptesCleared).toBe(64);
      expect(r.counters.walk.presentBatches).toBe(64); // zap_present_ptes: one PTE per call
      expect(rmapCalls(r)).toBe(0);
      expect(r.counters.gather.pagesQueued).toBe(0);
      expect(r.counters.gather.tlbFlushes).toBeGreaterThan(0);
      expect(r.dataFoliosFreed).toBe(0);
      expect(r.foliosFreed).toBe(r.pageTablePagesFreed);
      expect(Array.from(b.parent.rss)).toEqual([0, 0, 0, 0]);
      expect(b.machine.mem.isFree(zero)).toBe(false);
      expect(b.machine.mem.folioRef(zero)).toBe(1);
      expect(census(b.parent, b.vmas[0].start, b.vmas[0].end)).toEqual([0, 0, 0]);
    });

    it(`mixed read / write faults, exit / ${variant}: rss and freed pages count only the written pages`, () => {
      const spec: ScenarioSpec = {
        memory: 32 * MB,
        variant,
        cpus: 2,
        seed: 5,
        vmas: [
          { kind: "anon", size: 2 * MB, readFraction: 0.5 },
          { kind: "anon", size: 2 * MB, folio: { order: 4 }, readFraction: 0.25 },
        ],
        op: { kind: "exit" },
      };
      const b = buildScenario(spec);
      const [z0, , w0] = census(b.parent, b.vmas[0].start, b.vmas[0].end);
      const [z1, , w1] = census(b.parent, b.vmas[1].start, b.vmas[1].end);
      expect(z0 + w0).toBe(512);
      expect(z1 + w1).toBe(512);
      expect(z0).toBeGreaterThan(0);
      expect(w0).toBeGreaterThan(0);
      expect(z1 % 16).toBe(0); // a read fault covers the order-4 range it would have allocated
      expect(b.parent.rss[MM_ANONPAGES]).toBe(w0 + w1);
      const r = runBuilt(b, spec);
      expect(r.violations).toEqual([]);
      expect(r.finalState.problems).toEqual([]);
      expect(r.counters.walk.ptesCleared).toBe(1024);
      // Mappings removed: zero PTEs included (pagesTornDown counts cleared PTEs), rss only the written.
      expect(r.pagesTornDown).toBe(1024);
      expect(Array.from(b.parent.rss)).toEqual([0, 0, 0, 0]);
      // Every written page goes back; the zero page stays.
      expect(r.dataFoliosFreed).toBe(w0 + w1 / 16);
      expect(r.counters.gather.pagesQueued).toBe(w0 + w1);
      expect(b.machine.mem.nrPages - b.machine.mem.nrFreePages()).toBe(1);
    });
  }
});

describe("huge zero folio (do_huge_pmd_anonymous_page read fault)", () => {
  it("fault, fork, exit both mms: huge_zero_refcount 2 → 3 → 2 → 1, deposits freed, no rss", () => {
    const m = createMachine({ memoryBytes: 32 * MB });
    const parent = m.createMm();
    const v = mmapVma(parent, "anon", 4 * MB);
    faultIn(parent, v, { policy: { order: 9 }, pmdMapped: true, readFraction: 1 }, createRng(1));
    const hz = m.hugeZeroFolio;
    expect(hz).toBeGreaterThanOrEqual(0);
    expect(m.mem.folioNrPages(hz)).toBe(512);
    expect(m.zeroPfn).toBeGreaterThanOrEqual(0); // the split's PTEs need it
    expect(census(parent, v.start, v.end)).toEqual([0, 2, 0]);
    expect(m.hugeZeroRefcount).toBe(2); // the shrinker's + the mm's (taken once)
    expect(parent.hugeZeroFolio).toBe(true);
    expect(Array.from(parent.rss)).toEqual([0, 0, 0, 0]);
    expect(v.anonVma).toBeGreaterThanOrEqual(0); // vmf_anon_prepare runs before the zero branch
    expect(m.mem.folioRef(hz)).toBe(1);
    expect(m.mem.folioMapcount(hz)).toBe(0);
    const deposits = (mm: Mm) => mm.deposits.reduce((a, d) => a + (d?.filter((p) => p >= 0).length ?? 0), 0);
    expect(deposits(parent)).toBe(2);

    const child = forkMm(parent);
    expect(m.hugeZeroRefcount).toBe(3);
    expect(child.hugeZeroFolio).toBe(true);
    expect(census(child, v.start, v.end)).toEqual([0, 2, 0]);
    expect(deposits(child)).toBe(2);
    expect(Array.from(child.rss)).toEqual([0, 0, 0, 0]);

    const freed0 = m.freed.pages;
    const rp = exitMmap(parent, { variant: "encoded-nr-pages" });
    expect(rp.walkCounters.hugePmdsZapped).toBe(2);
    expect(rp.walkCounters.depositsFreed).toBe(2);
    expect(rp.gather.rmapCallsImmediate + rp.gather.rmapCallsDelayed).toBe(0);
    expect(rp.gather.pagesQueued).toBe(0); // no tlb_remove_page_size
    expect(m.hugeZeroRefcount).toBe(2);
    expect(parent.hugeZeroFolio).toBe(false);
    // Two deposits, the PMD, PUD and PGD tables: no data page.
    expect(m.freed.pages - freed0).toBe(2 + 3);
    exitMmap(child, { variant: "encoded-page" });
    expect(m.hugeZeroRefcount).toBe(1); // only the shrinker's is left
    expect(m.mem.isFree(hz)).toBe(false);
    expect(m.mem.folioRef(hz)).toBe(1);
    // The zero page and the huge zero folio are all that stays allocated.
    expect(m.mem.nrPages - m.mem.nrFreePages()).toBe(1 + 512);
  });

  it("a second read fault of the same mm takes no second reference; a write-faulted mm takes none", () => {
    const m = createMachine({ memoryBytes: 32 * MB });
    const a = m.createMm();
    faultIn(
      a,
      mmapVma(a, "anon", 2 * MB),
      { policy: { order: 9 }, pmdMapped: true, readFraction: 1 },
      createRng(1),
    );
    faultIn(
      a,
      mmapVma(a, "anon", 2 * MB),
      { policy: { order: 9 }, pmdMapped: true, readFraction: 1 },
      createRng(1),
    );
    expect(m.hugeZeroRefcount).toBe(2);
    const w = m.createMm();
    faultIn(w, mmapVma(w, "anon", 2 * MB), { policy: { order: 9 }, pmdMapped: true }, createRng(1));
    expect(w.hugeZeroFolio).toBe(false);
    expect(m.hugeZeroRefcount).toBe(2);
    exitMmap(w);
    expect(m.hugeZeroRefcount).toBe(2);
    exitMmap(a);
    expect(m.hugeZeroRefcount).toBe(1);
  });

  for (const variant of variants) {
    it(`munmap [1 MiB, 3 MiB) through two huge zero PMDs / ${variant}: split into zero PTEs, deposits reused`, () => {
      const spec: ScenarioSpec = {
        memory: 32 * MB,
        variant,
        cpus: 2,
        vmas: [{ kind: "anon", size: 4 * MB, folio: { order: 9 }, pmdMapped: true, readFraction: 1 }],
        op: { kind: "munmap", vma: 0, offset: MB, length: 2 * MB },
      };
      const b = buildScenario(spec);
      const start = b.vmas[0].start;
      const r = runBuilt(b, spec);
      expect(r.violations).toEqual([]);
      expect(r.finalState.problems).toEqual([]);
      expect(r.counters.walk.hugePmdsSplit).toBe(2);
      expect(r.counters.walk.hugePmdsZapped).toBe(0);
      expect(r.counters.folio.foliosAllocated).toBe(0); // __split_huge_zero_page_pmd withdraws the deposits
      expect(r.counters.walk.ptesCleared).toBe(512); // the zapped middle: zero PTEs
      expect(rmapCalls(r)).toBe(0);
      expect(r.counters.gather.pagesQueued).toBe(0);
      expect(r.dataFoliosFreed).toBe(0);
      expect(b.machine.hugeZeroRefcount).toBe(2); // the mm keeps its reference until exit
      // What is left: 256 zero PTEs on each side, no huge PMD.
      expect(census(b.parent, start, start + 1024)).toEqual([512, 0, 0]);
      expect(Array.from(b.parent.rss)).toEqual([0, 0, 0, 0]);
      const t = b.parent.pt.entries[b.parent.pt.pteTable(start, false)]!;
      expect(ptePfn(t[0])).toBe(b.machine.zeroPfn);
      expect(t[0] & PTE_WRITE).toBe(0);
      const e = runScenario({ ...spec, op: { kind: "exit" } });
      expect(e.counters.walk.hugePmdsZapped).toBe(2);
      expect(e.counters.walk.depositsFreed).toBe(2);
      // Exit of the split image: the remaining zero PTEs are cleared, the mm's reference dropped.
      const ex = exitMmap(b.parent, { variant });
      expect(ex.walkCounters.ptesCleared).toBe(512);
      expect(ex.walkCounters.depositsFreed).toBe(0);
      expect(b.machine.hugeZeroRefcount).toBe(1);
    });

    it(`a zero-PTE VMA is refaulted by the child, not copied; zero PTEs next to anon pages are copied / ${variant}`, () => {
      const spec: ScenarioSpec = {
        memory: 32 * MB,
        variant,
        cpus: 2,
        fork: true,
        target: "child",
        seed: 3,
        vmas: [
          { kind: "anon", size: MB, readFraction: 1 },
          { kind: "anon", size: MB, readFraction: 0.5 },
        ],
        op: { kind: "exit" },
      };
      const b = buildScenario(spec);
      const c = b.child!;
      expect(census(c, b.vmas[0].start, b.vmas[0].end)).toEqual([0, 0, 0]); // vma_needs_copy: no anon_vma
      const p1 = census(b.parent, b.vmas[1].start, b.vmas[1].end);
      expect(census(c, b.vmas[1].start, b.vmas[1].end)).toEqual(p1);
      expect(c.rss[MM_ANONPAGES]).toBe(p1[2]);
      const r = runBuilt(b, spec);
      expect(r.violations).toEqual([]);
      expect(r.finalState.problems).toEqual([]);
      expect(r.counters.walk.ptesCleared).toBe(256);
      expect(rmapCalls(r)).toBe(p1[2]);
      expect(r.dataFoliosFreed).toBe(0); // the parent still maps every written page
    });
  }

  it("mixed read / write workload: the three designs end in the same state", () => {
    const spec = (variant: (typeof variants)[number], op: ScenarioSpec["op"]): ScenarioSpec => ({
      memory: 64 * MB,
      swap: 8 * MB,
      variant,
      cpus: 2,
      seed: 9,
      fork: true,
      vmas: [
        {
          kind: "anon",
          size: 8 * MB,
          folio: {
            mix: [
              { order: 9, weight: 2 },
              { order: 0, weight: 1 },
            ],
          },
          pmdMapped: true,
          readFraction: 0.5,
        },
        { kind: "anon", size: 2 * MB, folio: { order: 4 }, readFraction: 0.3, swapFraction: 0.3 },
        { kind: "file-shared", size: MB, dirtyFraction: 0.5 },
      ],
      op,
    });
    for (const op of [
      { kind: "exit" },
      { kind: "munmap", vma: 0, offset: MB, length: 6 * MB },
      { kind: "madvise", vma: 1 },
    ] as ScenarioSpec["op"][]) {
      const out = variants.map((variant) => {
        const s = spec(variant, op);
        const b = buildScenario(s);
        const r = runBuilt(b, s);
        expect(r.violations).toEqual([]);
        expect(r.finalState.problems).toEqual([]);
        return {
          rss: [Array.from(b.parent.rss), Array.from(b.child!.rss)],
          freed: { ...b.machine.freed },
          free: b.machine.mem.nrFreePages(),
          hugeZeroRefcount: b.machine.hugeZeroRefcount,
          present: [censusAll(b.parent), censusAll(b.child!)],
          ptesCleared: r.counters.walk.ptesCleared,
          hugePmdsZapped: r.counters.walk.hugePmdsZapped,
          depositsFreed: r.counters.walk.depositsFreed,
          pagesTornDown: r.pagesTornDown,
          dataFoliosFreed: r.dataFoliosFreed,
        };
      });
      expect(out[0].ptesCleared).toBeGreaterThan(0);
      expect(out[1]).toEqual(out[0]);
      expect(out[2]).toEqual(out[0]);
    }
  });

  it("property: with read faults, fused and step-by-step walks agree, and the zero folios stay exact", () => {
    const arb = fc.record({
      order: fc.constantFrom(0, 2, 4, 9),
      pmd: fc.boolean(),
      read: fc.constantFrom(0.25, 0.5, 1),
      fork: fc.boolean(),
      op: fc.constantFrom("exit", "munmap", "madvise" as const),
      offsetPages: fc.integer({ min: 0, max: 1023 }),
      lengthPages: fc.integer({ min: 1, max: 1024 }),
      variant: fc.constantFrom(...variants),
      seed: fc.integer({ min: 1, max: 1000 }),
    });
    fc.assert(
      fc.property(arb, (a) => {
        const len = Math.min(a.lengthPages, 1024 - a.offsetPages);
        const spec = (events: boolean): ScenarioSpec => ({
          memory: 48 * MB,
          seed: a.seed,
          variant: a.variant,
          fork: a.fork,
          vmas: [
            { kind: "anon", size: 4 * MB, folio: { order: a.order }, pmdMapped: a.pmd, readFraction: a.read },
            { kind: "file-shared", size: MB, dirtyFraction: 0.5 },
          ],
          events: events ? () => {} : undefined,
          op:
            a.op === "exit"
              ? { kind: "exit" }
              : { kind: a.op, vma: 0, offset: a.offsetPages * 4096, length: len * 4096 },
        });
        const out = [false, true].map((events) => {
          const s = spec(events);
          const b = buildScenario(s);
          const m = b.machine;
          const r = runBuilt(b, s);
          expect(r.finalState.problems).toEqual([]);
          // The zero page is never freed nor counted; each mm holding the huge zero folio counts once.
          if (m.zeroPfn >= 0) {
            expect(m.mem.isFree(m.zeroPfn)).toBe(false);
            expect(m.mem.folioRef(m.zeroPfn)).toBe(1);
            expect(m.mem.folioMapcount(m.zeroPfn)).toBe(0);
          }
          const holders = m.mms.filter((x) => x.hugeZeroFolio).length;
          expect(m.hugeZeroRefcount).toBe(m.hugeZeroFolio < 0 ? 0 : 1 + holders);
          const { simWallNs: _t, ...rest } = r;
          return {
            report: JSON.parse(JSON.stringify(rest)),
            digest: m.mem.stateDigest(),
            freed: { ...m.freed },
          };
        });
        expect(out[0].digest).toBe(out[1].digest);
        expect(out[0].report).toEqual(out[1].report);
        expect(out[0].freed).toEqual(out[1].freed);
      }),
      { numRuns: 40, seed: 17 },
    );
  });
});

describe("readFraction validation", () => {
  const base: ScenarioSpec = { memory: 8 * MB, vmas: [{ kind: "anon", size: MB }], op: { kind: "exit" } };
  it.each([
    [
      { kind: "anon" as const, size: MB, readFraction: 1.5 },
      "vmas[0].readFraction must be in [0, 1], got 1.5",
    ],
    [
      { kind: "anon" as const, size: MB, readFraction: Number.NaN },
      "vmas[0].readFraction must be in [0, 1], got NaN",
    ],
    [
      { kind: "file-shared" as const, size: MB, readFraction: 0.5 },
      "vmas[0].readFraction applies to anon VMAs only",
    ],
  ])("%j → BAD_SPEC naming the field", (vma, message) => {
    let err: unknown;
    try {
      runScenario({ ...base, vmas: [vma] });
    } catch (e) {
      err = e;
    }
    expect(isTeardownError(err)).toBe(true);
    expect((err as { code: string }).code).toBe("BAD_SPEC");
    expect((err as Error).message).toContain(message);
  });

  it("faultIn rejects it too (BAD_SPEC from workload)", () => {
    const m = createMachine({ memoryBytes: 8 * MB });
    const mm = m.createMm();
    expect(() =>
      faultIn(mm, mmapVma(mm, "anon", MB), { policy: { order: 0 }, readFraction: -0.1 }, createRng(1)),
    ).toThrow(/readFraction must be in \[0, 1\], got -0.1/);
  });

  it("readFraction 0 builds exactly the image of a spec without it", () => {
    const spec: ScenarioSpec = {
      memory: 16 * MB,
      seed: 4,
      vmas: [
        {
          kind: "anon",
          size: 2 * MB,
          folio: {
            mix: [
              { order: 0, weight: 1 },
              { order: 4, weight: 1 },
            ],
          },
          populate: 0.5,
        },
      ],
      op: { kind: "exit" },
    };
    const a = buildScenario(spec).machine.mem.stateDigest();
    const b = buildScenario({
      ...spec,
      vmas: [{ ...spec.vmas[0], readFraction: 0 }],
    }).machine.mem.stateDigest();
    expect(b).toBe(a);
  });
});

describe("zero pages and reclaim / mlock", () => {
  it("swap-out skips zero PTEs; mlock skips the zero page and the huge zero folio", () => {
    const spec: ScenarioSpec = {
      memory: 32 * MB,
      swap: 8 * MB,
      seed: 2,
      vmas: [
        { kind: "anon", size: MB, readFraction: 0.5, swapFraction: 1 },
        { kind: "anon", size: 2 * MB, folio: { order: 9 }, pmdMapped: true, readFraction: 1, mlock: true },
      ],
      op: { kind: "exit" },
    };
    const b = buildScenario(spec);
    const [z, , w] = census(b.parent, b.vmas[0].start, b.vmas[0].end);
    expect(z).toBeGreaterThan(0);
    expect(w).toBe(0); // every written page went to swap, the zero PTEs stayed
    expect(b.parent.rss[2]).toBe(256 - z); // MM_SWAPENTS
    expect(b.machine.mem.folioTest(b.machine.hugeZeroFolio, PG.mlocked)).toBe(false);
    expect(b.machine.mem.folioTest(b.machine.zeroPfn, PG.mlocked)).toBe(false);
    const r = runBuilt(b, spec);
    expect(r.finalState.problems).toEqual([]);
    expect(r.counters.folio.munlockCalls).toBe(0);
    expect(r.swapEntriesZapped).toBe(256 - z);
  });
});

// The PMD-table check used above looks only at present entries: a huge zero PMD is one.
describe("forEachPresent", () => {
  it("reports zero PTEs and huge zero PMDs as present (the checker's presentAfterReturn sees them)", () => {
    const m = createMachine({ memoryBytes: 32 * MB });
    const mm = m.createMm();
    const v = mmapVma(mm, "anon", 2 * MB);
    faultIn(mm, v, { policy: { order: 9 }, pmdMapped: true, readFraction: 1 }, createRng(1));
    const pmdId = mm.pt.pmdTable(v.start, false);
    expect(mm.pt.entries[pmdId]![mm.pt.index(v.start, LEVEL_PMD)] & PTE_PRESENT).toBe(PTE_PRESENT);
    const seen: number[] = [];
    forEachPresent(mm, v.start, v.end, (pfn) => seen.push(pfn));
    expect(seen).toEqual([m.hugeZeroFolio]);
    const start = v.start;
    munmap(mm, start * m.pageSize, MB);
    expect(census(mm, start, start + 256)).toEqual([0, 0, 0]);
    expect(census(mm, start + 256, start + 512)).toEqual([256, 0, 0]);
  });
});
