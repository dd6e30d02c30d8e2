// Writeback racing a teardown (writeback.ts): folio_clear_dirty_for_io → folio_mkclean over the file's
// i_mmap, and the checker's cleanedWhileWritable rule — from the kernel's stated semantics (v6.18
// mm/page-writeback.c, mm/rmap.c; 5df397dec7c4 for why the zap's rmap must wait for its flush).
import { PG } from "@mmgather/folio";
import { contigRange, defineVariant, encodedNrPages, encodedPage } from "@mmgather/mmu-gather";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buildScenario,
  explore,
  PTE_DIRTY,
  PTE_WRITE,
  runBuilt,
  runScenario,
  runSchedule,
  type ScenarioSpec,
} from "../index.js";

const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

/** A dirty shared file mapping that munmap tears down while a flusher writes the file back. */
function racing(variant: ScenarioSpec["variant"], size = 64 << 10): ScenarioSpec {
  return {
    memory: 32 << 20,
    cpus: 3,
    variant,
    vmas: [{ kind: "file-shared", size, dirtyFraction: 1 }],
    op: { kind: "munmap" },
    concurrentOp: { kind: "writeback" },
  };
}

/** Each design with its dirty shared pages' rmaps removed at once, before the TLB flush. */
const rmapBeforeFlush = [encodedPage, contigRange, encodedNrPages].map((base) =>
  defineVariant(base, { name: `${base.name}-rmap-before-flush`, steps: { tlbDelayRmap: () => false } }),
);

describe("writeback of a file the teardown does not touch", () => {
  const spec: ScenarioSpec = {
    memory: 32 << 20,
    cpus: 2,
    vmas: [
      { kind: "anon", size: 64 << 10 },
      { kind: "file-shared", size: 64 << 10, dirtyFraction: 1 },
    ],
    op: { kind: "munmap", vma: 0 },
    concurrentOp: { kind: "writeback", vma: 1 },
  };

  it("cleans every dirty folio once: one mkclean (clear, flush, write-protect) per PTE, then the write", () => {
    const b = buildScenario(spec);
    const file = b.vmas[1];
    const mem = b.machine.mem;
    const heads: number[] = [];
    for (let i = 0; i < 16; i++) heads.push(mem.filemapGetFolio(file.mapping, i));
    // fault_dirty_shared_page: the write faults dirtied the folios.
    expect(heads.every((h) => mem.folioTest(h, PG.dirty))).toBe(true);
    const r = runBuilt(b, spec);
    expect(r.violations).toEqual([]);
    expect(r.writeback).toEqual({
      foliosWritten: 16,
      pagesWritten: 16,
      mkcleanUnmapped: 0,
      rmapVmasVisited: 16,
      ptlSections: 16,
      ptesCleaned: 16,
      tlbFlushes: 16,
      // Each one-page flush reaches both CPUs with the mm loaded and drops the page's entry on each.
      remoteCpuFlushes: 32,
      entriesInvalidated: 32,
      secondaryTlbInvalidations: 0,
    });
    expect(heads.some((h) => mem.folioTest(h, PG.dirty))).toBe(false);
    // page_vma_mkclean_one left each PTE present, write-protected and clean.
    const pt = b.target.pt;
    const t = pt.entries[pt.pteTable(file.start, false)]!;
    for (let i = 0; i < 16; i++) {
      const pte = t[(file.start + i) % pt.geo.ptrsPerPte];
      expect(pte).toBeGreaterThan(0);
      expect(pte & (PTE_WRITE | PTE_DIRTY)).toBe(0);
    }
  });

  it("its flushes are its own: the teardown's CPU counters are those of the same run without it", () => {
    const alone = runScenario({ ...spec, concurrentOp: undefined });
    const withWb = runScenario(spec);
    expect(withWb.counters.cpu).toEqual(alone.counters.cpu);
    expect(withWb.estimate.totalNs).toBe(alone.estimate.totalNs);
    expect(alone.writeback).toBeNull();
  });

  it("clean folios are not written", () => {
    const r = runScenario({
      ...spec,
      vmas: [spec.vmas[0], { ...spec.vmas[1], dirtyFraction: 0 }],
    });
    expect(r.writeback?.foliosWritten).toBe(0);
    expect(r.writeback?.ptesCleaned).toBe(0);
  });
});

describe("writeback racing munmap of the same dirty shared file (cleanedWhileWritable)", () => {
  for (const variant of DESIGNS) {
    it(`${variant}: silent in every interleaving with at most 2 preemptions`, () => {
      const x = explore(racing(variant), { bound: 2 });
      expect(x.complete).toBe(true);
      expect(x.explored).toBeGreaterThan(10);
      expect(x.failing).toBe(0);
    });
  }

  rmapBeforeFlush.forEach((broken, i) => {
    it(`${DESIGNS[i]} with the rmap removed before the flush: the write is lost when writeback runs in between`, () => {
      // The zap clears the table (rmaps gone, TLB not flushed), then the flusher gets the CPU.
      const r = runSchedule(racing(broken), [0, 1]).report;
      const lost = r.violations.find((v) => v.kind === "cleanedWhileWritable");
      expect(lost?.message).toMatch(
        /writeback cleaned dirty file pfn \d+ while a CPU still caches a writable/,
      );
      expect(lost?.trail.some((e) => e.type === "folioWrittenBack" && e.cleanedPtes === 0)).toBe(true);
      expect(r.writeback?.mkcleanUnmapped).toBeGreaterThan(0);
      // The same schedule with the real design: mkclean is never skipped for a folio still cached.
      expect(runSchedule(racing(DESIGNS[i]), [0, 1]).report.violations).toEqual([]);
    });
  });

  it("a VMA munmap detached stays in i_mmap until free_pgtables: writeback still cleans what it maps", () => {
    // 4 MiB: two PTE tables. After the first table's zap, writeback runs to its end: the second table's
    // 512 PTEs are still mapped by the detached VMA, and folio_mkclean must find them there.
    const spec = racing("encoded-nr-pages", 4 << 20);
    const r = runSchedule(spec, [0, 1]).report;
    expect(r.violations).toEqual([]);
    expect(r.writeback?.ptesCleaned).toBe(512);
    expect(r.writeback?.mkcleanUnmapped).toBe(512);
    expect(r.writeback?.foliosWritten).toBe(1024);
  });

  it("PMD-mapped dirty file folios: zap_huge_pmd drops the rmap before the flush, on every design", () => {
    // v6.18 zap_huge_pmd: folio_remove_rmap_pmd under the PMD lock, tlb_remove_page_size after it, no
    // delayed rmap at PMD level — writeback between the two cleans a folio another CPU can still write.
    for (const variant of DESIGNS) {
      const spec: ScenarioSpec = {
        ...racing(variant, 4 << 20),
        vmas: [
          { kind: "file-shared", size: 4 << 20, dirtyFraction: 1, folio: { order: 9 }, pmdMapped: true },
        ],
      };
      const r = runSchedule(spec, [0, 1]).report;
      expect(r.violations.map((v) => v.kind)).toContain("cleanedWhileWritable");
    }
  });
});

describe("writeback next to every operation, random workloads (PTE-mapped files)", () => {
  it("all three designs stay silent", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.constantFrom("munmap", "madvise", "exit") as fc.Arbitrary<"munmap" | "madvise" | "exit">,
        fc.constantFrom(0, 2, 4),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 7 }),
        fc.boolean(),
        (seed, kind, order, dirty, startPage, fork) => {
          for (const variant of DESIGNS) {
            const r = runScenario({
              memory: 64 << 20,
              cpus: 3,
              seed,
              variant,
              fork,
              vmas: [
                { kind: "file-shared", size: 256 << 10, dirtyFraction: dirty, folio: { order } },
                { kind: "file-private", size: 64 << 10, dirtyFraction: dirty },
              ],
              op: kind === "exit" ? { kind } : { kind, offset: startPage * 4096 },
              concurrentOp: { kind: "writeback" },
            });
            expect(r.violations).toEqual([]);
            expect(r.finalState.problems).toEqual([]);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe("writeback: found by the long random differential run", () => {
  it("finds the PTEs of every PTE table, also those whose PMD slot has the PMD_HUGE bit", () => {
    // VMA 1 starts at 12 MiB: its second PTE table is table 7, whose PMD slot (7 + 1) << 1 = 16 has the
    // PMD_HUGE bit set. The mkclean walk took that slot for a huge PMD and cleaned nothing there.
    const spec: ScenarioSpec = {
      memory: 48 << 20,
      cpus: 1,
      vmas: [
        { kind: "anon", size: (4 << 20) + 4096 },
        { kind: "file-shared", size: 4 << 20, dirtyFraction: 1 },
      ],
      op: { kind: "munmap", vma: 0 },
      concurrentOp: { kind: "writeback", vma: 1 },
    };
    for (const variant of DESIGNS) {
      const r = runScenario({ ...spec, variant });
      expect(r.violations).toEqual([]);
      expect(r.writeback?.foliosWritten).toBe(1024);
      expect(r.writeback?.ptesCleaned).toBe(1024);
    }
  });

  it("holds i_mmap_rwsem for read over a folio's rmap walk: exit of a forked child waits for it", () => {
    // The walk yields between page tables; without the read side the child's exit freed its PGD
    // under the walk (a TypeError in the model).
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const r = runScenario({
        memory: 48 << 20,
        cpus: 2,
        seed,
        fork: true,
        target: "child",
        vmas: [{ kind: "file-shared", size: 4 << 20, dirtyFraction: 1 }],
        op: { kind: "exit" },
        concurrentOp: { kind: "writeback", vma: 0 },
      });
      expect(r.violations).toEqual([]);
      expect(r.finalState.problems).toEqual([]);
      expect(r.writeback?.foliosWritten).toBe(1024);
    }
  });
});

describe("writeback is refused where the kernel has none", () => {
  it("shmem and anonymous VMAs", () => {
    for (const kind of ["shmem", "anon"] as const) {
      expect(() =>
        runScenario({
          memory: 16 << 20,
          cpus: 2,
          vmas: [{ kind, size: 64 << 10 }],
          op: { kind: "munmap" },
          concurrentOp: { kind: "writeback" },
        }),
      ).toThrow(
        expect.objectContaining({
          code: "BAD_SPEC",
          message: expect.stringMatching(/writeback needs a file VMA/),
        }),
      );
    }
  });
});
