// runScenario end to end on base pages other than 4 KiB: the geometry of arm64's 16 KiB granule
// (48-bit VA: four levels, a two-entry PGD, 32 MiB PMDs) and 64 KiB granule (48-bit VA without LVA:
// three levels — the PUD folded into the PGD —, 512 MiB PMDs), taken from the arch adapter alone.
// The flush here is the asm-generic one; the arm64 adapter's own tests cover its TLBI rules.
import { defineArch, maxQueuedEntries } from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import { createMachine, runScenario } from "../index.js";

const GEOMETRY = {
  "16K": { pageShift: 14, ptrsPerPte: 2048, pmdOrder: 11, ptrsPerPmd: 2048, ptrsPerPud: 2048, ptrsPerPgd: 2 },
  "64K": { pageShift: 16, ptrsPerPte: 8192, pmdOrder: 13, ptrsPerPmd: 8192, ptrsPerPud: 1, ptrsPerPgd: 64 },
} as const;
const variants = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

for (const [name, g] of Object.entries(GEOMETRY)) {
  const arch = defineArch({ name: `generic-${name}`, geometry: { ...g, taskSize: 2 ** 48 } });
  const pageSize = 2 ** g.pageShift;
  const pmdSize = pageSize * g.ptrsPerPte;
  const pudFolded = g.ptrsPerPud === 1;

  describe(`${name} pages (${pageSize} bytes, PMD ${pmdSize / 2 ** 20} MiB)`, () => {
    it("the machine takes page size, PMD order and MAX_PAGE_ORDER from the geometry", () => {
      const m = createMachine({ memoryBytes: 4 * pmdSize, arch });
      expect(m.pageSize).toBe(pageSize);
      expect(m.mem.pageShift).toBe(g.pageShift);
      expect(m.mem.pmdOrder).toBe(g.pmdOrder);
      expect(m.mem.maxPageOrder).toBe(g.pmdOrder);
      const mm = m.createMm();
      expect(mm.pt.pudFolded).toBe(pudFolded);
      // The PGD is the only table so far: a folded PUD level allocates no page.
      expect(mm.pt.allocated).toBe(1);
    });

    for (const variant of variants)
      for (const op of ["munmap", "exit"] as const)
        for (const pmdMapped of [false, true])
          it(`${op} of two PMDs of ${pmdMapped ? "PMD-mapped THPs" : "order-0 pages"} / ${variant}: exact pages and tables, no violation`, () => {
            const r = runScenario({
              memory: 4 * pmdSize,
              arch,
              variant,
              cpus: 2,
              vmas: [
                { kind: "anon", size: 2 * pmdSize, folio: { order: pmdMapped ? g.pmdOrder : 0 }, pmdMapped },
              ],
              op: { kind: op },
            });
            expect(r.violations).toEqual([]);
            expect(r.finalState.problems).toEqual([]);
            expect(r.pagesTornDown).toBe(2 * g.ptrsPerPte);
            expect(r.dataFoliosFreed).toBe(pmdMapped ? 2 : 2 * g.ptrsPerPte);
            // free_pgtables: the PTE tables (THPs: their two deposits instead), the PMD table, and a PUD
            // table only where the level is not folded (pud_free_tlb is a no-op under pgtable-nopud.h).
            expect(r.counters.walk.tablesFreed).toEqual([pmdMapped ? 0 : 2, 1, pudFolded ? 0 : 1]);
            expect(r.counters.walk.depositsFreed).toBe(pmdMapped ? 2 : 0);
            expect(r.pageTablePagesFreed).toBe((pudFolded ? 3 : 4) + (op === "exit" ? 1 : 0));
            // Each CPU cached one entry per page, or one per huge PMD, up to its 2048 TLB slots.
            expect(r.counters.cpu?.entriesInvalidated).toBe(
              2 * Math.min(2048, pmdMapped ? 2 : 2 * g.ptrsPerPte),
            );
          });

    it("a gather holds the page-size-dependent number of entries before it forces a flush", () => {
      // MAX_GATHER_BATCH = (PAGE_SIZE - 16) / 8 entries per batch page, 10000 / that many batch pages.
      const cap = maxQueuedEntries("encoded-page", g.pageShift);
      const pages = 2 * g.ptrsPerPte;
      const r = runScenario({
        memory: 4 * pmdSize,
        arch,
        variant: "encoded-page",
        vmas: [{ kind: "anon", size: pages * pageSize }],
        op: { kind: "munmap" },
      });
      expect(r.forcedFlushes.batchFull).toBe(Math.ceil(pages / cap) - 1);
    });
  });
}
