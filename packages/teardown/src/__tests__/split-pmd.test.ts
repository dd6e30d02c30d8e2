// A VMA boundary inside a PMD-mapped THP splits the PMD first (__split_vma → vma_adjust_trans_huge →
// split_huge_pmd_if_needed, mm/huge_memory.c v6.18): anon from the deposited table, file / shmem by
// dropping the PMD mapping. The workload's split is the build's cost; a partial munmap's is the
// munmap's (walk.hugePmdsSplit).
import { describe, expect, it } from "vitest";
import { buildScenario, LEVEL_PMD, PTE_PRESENT, runBuilt, runScenario, type ScenarioSpec } from "../index.js";

const variants = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;
const MB = 1 << 20;

function hugePmdAt(b: ReturnType<typeof buildScenario>, vpn: number): boolean {
  const pt = b.parent.pt;
  const id = pt.pmdTable(vpn, false);
  if (id < 0) return false;
  const e = pt.entries[id]![pt.index(vpn, LEVEL_PMD)];
  return e !== 0 && (e & PTE_PRESENT) !== 0;
}

describe("a VMA split inside a PMD-mapped THP splits the PMD (vma_adjust_trans_huge)", () => {
  for (const variant of variants) {
    for (const target of ["parent", "child"] as const) {
      it(`splitAt through a THP, fork, exit the ${target} / ${variant}: nothing leaks`, () => {
        const spec: ScenarioSpec = {
          memory: 64 << 20,
          variant,
          vmas: [{ kind: "anon", size: 4 * MB, folio: { order: 9 }, pmdMapped: true, splitAt: MB }],
          fork: true,
          target,
          cpus: 2,
          op: { kind: "exit" },
        };
        const b = buildScenario(spec);
        expect(hugePmdAt(b, b.vmas[0].start)).toBe(false); // split at build
        expect(hugePmdAt(b, b.vmas[0].start + 512)).toBe(true); // the next THP is whole
        const r = runBuilt(b, spec);
        expect(r.finalState.problems).toEqual([]);
        expect(r.violations).toEqual([]);
        // Built, not measured: the exit splits nothing.
        expect(r.counters.walk.hugePmdsSplit).toBe(0);
        // The other mm is intact; exit it too and nothing is left.
        const other = target === "parent" ? b.child! : b.parent;
        expect(runBuilt({ ...b, target: other }, spec).finalState.problems).toEqual([]);
        expect(b.machine.mem.nrPages - b.machine.mem.nrFreePages()).toBe(0);
      });
    }

    it(`munmap [1 MiB, 3 MiB) of PMD-mapped anon THPs / ${variant}: two splits, deposits reused`, () => {
      const spec: ScenarioSpec = {
        memory: 64 << 20,
        variant,
        vmas: [{ kind: "anon", size: 4 * MB, folio: { order: 9 }, pmdMapped: true }],
        cpus: 2,
        op: { kind: "munmap", vma: 0, offset: MB, length: 2 * MB },
      };
      const b = buildScenario(spec);
      const r = runBuilt(b, spec);
      expect(r.finalState.problems).toEqual([]);
      expect(r.violations).toEqual([]);
      expect(r.counters.walk.hugePmdsSplit).toBe(2);
      expect(r.counters.folio.foliosAllocated).toBe(0);
      expect(r.pageTablePagesFreed).toBe(0);
      expect(r.pagesTornDown).toBe(512);
      expect(b.parent.rssPages()).toBe(512);
      expect(b.parent.vmas.map((v) => [v.start - b.vmas[0].start, v.end - b.vmas[0].start])).toEqual([
        [0, 256],
        [768, 1024],
      ]);
    });

    it(`munmap through PMD-mapped shmem THPs / ${variant}: the split drops the file PMD mappings`, () => {
      const spec: ScenarioSpec = {
        memory: 64 << 20,
        variant,
        vmas: [{ kind: "shmem", size: 4 * MB, folio: { order: 9 }, pmdMapped: true, dirtyFraction: 1 }],
        cpus: 2,
        op: { kind: "munmap", vma: 0, offset: MB, length: 2 * MB },
      };
      const b = buildScenario(spec);
      const r = runBuilt(b, spec);
      expect(r.finalState.problems).toEqual([]);
      expect(r.violations).toEqual([]);
      expect(r.counters.walk.hugePmdsSplit).toBe(2);
      // __split_huge_pmd_locked unmaps a file THP whole: nothing of either THP stays mapped, nothing
      // is freed (the page cache keeps the folios), and no PTE table appears.
      expect(b.parent.rssPages()).toBe(0);
      expect(r.foliosFreed).toBe(0);
      expect(r.counters.folio.foliosAllocated).toBe(0);
    });
  }

  it("a split made by MADV_DONTNEED of part of a THP is counted once, flushed before PTEs appear", () => {
    const r = runScenario({
      memory: 64 << 20,
      vmas: [{ kind: "anon", size: 2 * MB, folio: { order: 9 }, pmdMapped: true }],
      cpus: 2,
      op: { kind: "madvise", vma: 0, offset: 4096, length: 8192 },
    });
    expect(r.counters.walk.hugePmdsSplit).toBe(1);
    expect(r.violations).toEqual([]);
    expect(r.finalState.problems).toEqual([]);
    expect(r.pagesTornDown).toBe(2);
  });
});
