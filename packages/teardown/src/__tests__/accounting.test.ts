import { genericArch } from "@mmgather/arch-generic";
import { s390Arch } from "@mmgather/arch-s390";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildScenario, runBuilt, runScenario, type ScenarioSpec, type TrailEvent } from "../index.js";

const variants = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

/** Every page-table page of every mm of the machine (live tables and deposited PTE tables). */
function tablePages(b: ReturnType<typeof buildScenario>): Set<number> {
  const pfns = new Set<number>();
  for (const mm of [b.parent, b.child]) {
    if (mm === null) continue;
    const pt = mm.pt;
    for (let id = 0; id < pt.entries.length; id++) if (pt.entries[id] !== null) pfns.add(pt.tablePfn[id]);
    for (const d of mm.deposits) if (d) for (const p of d) if (p >= 0) pfns.add(p);
  }
  return pfns;
}

describe("folios freed, split by kind (report.dataFoliosFreed / pageTablePagesFreed)", () => {
  // Ground truth: the pfns the allocator took back during the operation (pageFreed events),
  // classified by whether they backed a page table (or a deposited one) before it started.
  const arb = fc.record({
    op: fc.constantFrom("exit", "munmap", "madvise"),
    order: fc.constantFrom(0, 2, 4, 9),
    pmd: fc.boolean(),
    fork: fc.boolean(),
    swap: fc.constantFrom(0, 0.3),
    offsetPages: fc.integer({ min: 0, max: 1000 }),
    lengthPages: fc.integer({ min: 1, max: 1024 }),
    variant: fc.constantFrom(...variants),
    s390: fc.boolean(),
    seed: fc.integer({ min: 1, max: 1000 }),
  });
  it("dataFoliosFreed + pageTablePagesFreed = foliosFreed, each equal to what the allocator saw", () => {
    fc.assert(
      fc.property(arb, (a) => {
        const arch = a.s390 ? s390Arch : genericArch;
        const order = a.s390 && a.order === 9 ? 8 : a.order;
        const spec: ScenarioSpec = {
          memory: 64 << 20,
          swap: 16 << 20,
          seed: a.seed,
          arch,
          variant: a.variant,
          fork: a.fork,
          vmas: [
            { kind: "anon", size: 4 << 20, folio: { order }, pmdMapped: a.pmd, swapFraction: a.swap },
            { kind: "file-shared", size: 1 << 20, dirtyFraction: 0.5 },
          ],
          op:
            a.op === "exit"
              ? { kind: "exit" }
              : {
                  kind: a.op,
                  vma: 0,
                  offset: Math.min(a.offsetPages, 1023) * 4096,
                  length: Math.min(a.lengthPages, 1024 - Math.min(a.offsetPages, 1023)) * 4096,
                },
        };
        const b = buildScenario(spec);
        const tables = tablePages(b);
        const freed: number[] = [];
        const r = runBuilt(b, {
          ...spec,
          events: (e: TrailEvent) => {
            if (e.type === "pageFreed") freed.push(e.pfn);
          },
        });
        const tableFrees = freed.filter((p) => tables.has(p)).length;
        expect(r.foliosFreed).toBe(freed.length);
        expect(r.pageTablePagesFreed).toBe(tableFrees);
        expect(r.dataFoliosFreed).toBe(freed.length - tableFrees);
      }),
      { numRuns: 80, seed: 11 },
    );
  });
});

describe("splitting a PMD-mapped anon THP uses its deposited table (__split_huge_pmd_locked)", () => {
  for (const variant of variants)
    for (const kind of ["madvise", "munmap"] as const)
      it(`${kind} of one page inside a PMD-mapped THP / ${variant}: no page-table page allocated or freed`, () => {
        const r = runScenario({
          memory: 64 << 20,
          seed: 1,
          variant,
          vmas: [{ kind: "anon", size: 4 << 20, folio: { order: 9 }, pmdMapped: true }],
          op: { kind, vma: 0, offset: 1 << 20, length: 4096 },
        });
        expect(r.finalState.problems).toEqual([]);
        expect(r.counters.folio.foliosAllocated).toBe(0);
        expect(r.pageTablePagesFreed).toBe(0);
        expect(r.pagesTornDown).toBe(1);
      });
});

describe("anonymous folios of order 1 do not exist (THP_ORDERS_ALL_ANON)", () => {
  it("an anon VMA asking for order 1 is refused; a page-cache VMA may have it", () => {
    const spec = (kind: "anon" | "file-shared"): ScenarioSpec => ({
      memory: 16 << 20,
      vmas: [{ kind, size: 1 << 20, folio: { order: 1 } }],
      op: { kind: "exit" },
    });
    expect(() => runScenario(spec("anon"))).toThrow(/anonymous folios of order 1 do not exist/);
    expect(runScenario(spec("file-shared")).finalState.problems).toEqual([]);
  });

  it("an order-2 anon folio that does not fit falls back to order 0, never 1", () => {
    // 6 pages: one order-2 folio, then two pages that cannot hold an order-2 folio.
    const b = buildScenario({
      memory: 16 << 20,
      vmas: [{ kind: "anon", size: 6 * 4096, folio: { order: 2 } }],
      op: { kind: "exit" },
    });
    const mem = b.machine.mem;
    const orders: number[] = [];
    for (let pfn = 0; pfn < mem.nrPages; pfn++)
      if (!mem.isFree(pfn) && mem.folioHead(pfn) === pfn && mem.folioMapped(pfn))
        orders.push(mem.folioOrder(pfn));
    expect(orders.sort()).toEqual([0, 0, 2]);
  });
});

describe("walk counters of the per-folio and per-VMA work (folio_pte_batch, remove_vma, unlink_*, mmdrop)", () => {
  const spec = (
    op: ScenarioSpec["op"],
    variant = "encoded-nr-pages" as (typeof variants)[number],
  ): ScenarioSpec => ({
    memory: 64 << 20,
    variant,
    vmas: [
      { kind: "anon", size: 1 << 20, folio: { order: 4 } },
      { kind: "file-shared", size: 1 << 20 },
      { kind: "anon", size: 1 << 20 },
    ],
    op,
  });

  it("exit frees every VMA, unlinks anon and file VMAs from their rmap trees, fputs files, frees the mm", () => {
    const w = runScenario(spec({ kind: "exit" })).counters.walk;
    expect(w.vmasFreed).toBe(3);
    expect(w.anonVmaUnlinks).toBe(2);
    expect(w.fileVmaUnlinks).toBe(1);
    expect(w.fputs).toBe(1);
    expect(w.mmsFreed).toBe(1);
    expect(w.pgdsFreed).toBe(1);
    // One folio_pte_batch per 64K folio (16 PTEs each); order-0 PTEs never call it.
    expect(w.folioPteBatchCalls).toBe(16);
    expect(w.folioPteBatchPtes).toBe(256);
  });

  it("munmap counts only the VMAs it detached; MADV_DONTNEED frees none", () => {
    const m = runScenario(spec({ kind: "munmap", vma: 1 })).counters.walk;
    expect([m.vmasFreed, m.anonVmaUnlinks, m.fileVmaUnlinks, m.fputs, m.mmsFreed]).toEqual([1, 0, 1, 1, 0]);
    const d = runScenario(spec({ kind: "madvise", vma: 0 })).counters.walk;
    expect([d.vmasFreed, d.anonVmaUnlinks, d.fileVmaUnlinks, d.fputs, d.mmsFreed]).toEqual([0, 0, 0, 0, 0]);
    expect(d.folioPteBatchCalls).toBe(16);
  });

  it("the per-PTE designs make no folio_pte_batch call", () => {
    for (const v of ["encoded-page", "contig-range"] as const) {
      const w = runScenario(spec({ kind: "exit" }, v)).counters.walk;
      expect(w.folioPteBatchCalls).toBe(0);
      expect(w.vmasFreed).toBe(3);
    }
  });
});

describe("mark_page_accessed / folio_mark_accessed of young file PTEs (walk.markAccessedCalls)", () => {
  const spec = (variant: (typeof variants)[number], fork: boolean): ScenarioSpec => ({
    memory: 64 << 20,
    variant,
    fork,
    vmas: [
      { kind: "file-shared", size: 1 << 20, folio: { order: 4 } },
      { kind: "shmem", size: 1 << 20 },
      { kind: "anon", size: 1 << 20 },
    ],
    op: { kind: "exit" },
  });
  it("per page in the per-PTE designs, per folio run in the nr-pages design, never for anon", () => {
    const forked = spec("encoded-page", true);
    expect(runScenario(spec("encoded-page", false)).counters.walk.markAccessedCalls).toBe(512);
    expect(runScenario(spec("contig-range", false)).counters.walk.markAccessedCalls).toBe(512);
    // 16 runs of 64K file folios + 256 order-0 shmem pages.
    expect(runScenario(spec("encoded-nr-pages", false)).counters.walk.markAccessedCalls).toBe(16 + 256);
    // fork copies present PTEs of private mappings only; shared ones are refaulted, so the parent's
    // young PTEs are all still there.
    expect(runScenario(forked).counters.walk.markAccessedCalls).toBe(512);
  });
});

describe("mapcount drops of pages still mapped elsewhere (folio.mapcountSharedDrops)", () => {
  for (const variant of variants)
    it(`fork-shared pages count once per page in the mm that goes first / ${variant}`, () => {
      const spec: ScenarioSpec = {
        memory: 64 << 20,
        variant,
        fork: true,
        vmas: [
          {
            kind: "anon",
            size: 1 << 20,
            folio: {
              mix: [
                { order: 0, weight: 1 },
                { order: 4, weight: 1 },
              ],
            },
          },
          { kind: "anon", size: 2 << 20, folio: { order: 9 }, pmdMapped: true },
        ],
        op: { kind: "exit" },
      };
      const b = buildScenario(spec);
      const first = runBuilt(b, spec).counters.folio;
      // 256 PTE-mapped pages and one PMD-mapped THP, each still mapped by the other mm.
      expect(first.mapcountSharedDrops).toBe(256 + 1);
      const second = runBuilt({ ...b, target: b.child! }, spec).counters.folio;
      expect(second.mapcountSharedDrops).toBe(0);
    });
});
