// The arm64 adapter (@mmgather/arch-arm64) under the whole model: every granule end to end, the
// v6.18 tlb_flush rules seen from a teardown (nothing at exit but the final walk-cache flush, last-level
// TLBIs for munmap until tables are freed), RCU table free against a concurrent gup_fast, and a broken
// last-level-only flush that the checker catches on every gather design.
import { arm64Arch, createArm64Arch } from "@mmgather/arch-arm64";
import { type ArchTlb, defineArch, withTlbOps } from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import { runScenario, type ScenarioSpec } from "../index.js";

const variants = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

describe("arm64 on every granule: no violation, consistent final state", () => {
  for (const pageSize of ["4K", "16K", "64K"] as const) {
    const arch = createArm64Arch({ pageSize });
    const page = 2 ** arch.geometry.pageShift;
    const pmd = page * arch.geometry.ptrsPerPte;
    for (const variant of variants)
      for (const op of ["exit", "munmap", "madvise"] as const)
        it(`${pageSize} / ${variant} / ${op}`, () => {
          const r = runScenario({
            memory: 8 * pmd,
            swap: pmd,
            arch,
            variant,
            cpus: 2,
            vmas: [
              {
                kind: "anon",
                size: 2 * pmd,
                folio: {
                  mix: [
                    { order: 0, weight: 2 },
                    { order: 4, weight: 1 },
                  ],
                },
              },
              { kind: "anon", size: pmd, folio: { order: arch.geometry.pmdOrder }, pmdMapped: true },
              { kind: "file-shared", size: pmd / 2, folio: { order: 2 }, dirtyFraction: 0.5 },
            ],
            op: op === "exit" ? { kind: "exit" } : { kind: op, vma: 0, offset: page * 3, length: pmd },
          });
          expect(r.violations).toEqual([]);
          expect(r.finalState.problems).toEqual([]);
          expect(r.arch).toBe(arch.name);
        });
  }
});

describe("v6.18 tlb_flush seen from a teardown", () => {
  it("exit: no TLBI while zapping (fullmm, no table freed), one flush_tlb_mm for the freed tables", () => {
    const r = runScenario({
      memory: 96 << 20,
      arch: arm64Arch,
      variant: "encoded-page",
      cpus: 2,
      // 16384 order-0 pages: the gather fills once (9698 entries) and flushes nothing then.
      vmas: [{ kind: "anon", size: 64 << 20 }],
      op: { kind: "exit" },
    });
    expect(r.violations).toEqual([]);
    expect(r.forcedFlushes.batchFull).toBe(1);
    expect(r.tlbFlushes.range).toBe(0);
    expect(r.tlbFlushes.mm).toBe(1);
    expect(r.counters.gather.tlbiVaOps).toBe(0);
  });

  it("munmap of 256 pages: 256 last-level TLBIs at the VMA end; the table free's flush is a 1-page all-level TLBI", () => {
    const r = runScenario({
      memory: 16 << 20,
      arch: arm64Arch,
      variant: "encoded-nr-pages",
      cpus: 2,
      vmas: [{ kind: "anon", size: 1 << 20 }],
      op: { kind: "munmap" },
    });
    expect(r.violations).toEqual([]);
    // tlb_end_vma: 256 last-level TLBIs. free_pgtables then frees the PTE table (a page of range at the
    // VMA's 4 MiB, cleared_pmds), the PMD and PUD tables (a page at 0 each): with cleared_ptes clear the
    // stride is PMD_SIZE, so [0, 4 MiB + 4 KiB) rounds to 3 all-level TLBIs.
    expect(r.tlbFlushes).toMatchObject({ range: 2, mm: 0 });
    expect(r.counters.gather.tlbiVaOps).toBe(256 + 3);
    expect(r.counters.walk.tablesFreed).toEqual([1, 1, 1]);
  });

  it("munmap of 512 pages without FEAT_TLBIRANGE flushes the whole ASID; with it, one range TLBI", () => {
    const spec: ScenarioSpec = {
      memory: 16 << 20,
      arch: arm64Arch,
      variant: "encoded-nr-pages",
      vmas: [{ kind: "anon", size: 2 << 20, folio: { order: 4 } }],
      op: { kind: "munmap" },
    };
    const n1 = runScenario(spec);
    expect(n1.tlbFlushes).toMatchObject({ range: 1, mm: 1 });
    expect(n1.counters.gather.tlbiLimitExcess).toBe(1);
    const range = runScenario({ ...spec, arch: createArm64Arch({ tlbRange: true }) });
    expect(range.tlbFlushes).toMatchObject({ range: 2, mm: 0 });
    // 512 pages: scale 1, num 7. The table free's flush, [0, 6 MiB) at the PMD stride: 1536 pages, one
    // range TLBI too (scale 1, num 23) — a range TLBI ignores the stride.
    expect(range.counters.gather.tlbiRangeOps).toBe(2);
    expect(range.counters.gather.tlbiVaOps).toBe(0);
  });

  it("a gup_fast walk is not waited for by the broadcast TLBI; RCU table free keeps its tables alive", () => {
    const r = runScenario({
      memory: 32 << 20,
      arch: arm64Arch,
      cpus: 3,
      gupFast: 1,
      vmas: [{ kind: "anon", size: 4 << 20 }],
      op: { kind: "munmap" },
    });
    expect(r.violations).toEqual([]);
    expect(r.counters.gather.rcuCalls).toBe(1);
  });
});

/**
 * arm64's flush with `last_level` forced on (TLBI VALE1IS) even after page tables were freed: the walk
 * caches are never invalidated by a munmap small enough to stay below the flush_tlb_mm fallback.
 */
function lastLevelAlwaysArm64(base: ArchTlb): ArchTlb {
  return defineArch({
    ...base,
    name: `${base.name}, last-level always`,
    tlbFlush: (tlb, ops) =>
      base.tlbFlush(
        tlb,
        withTlbOps(ops, {
          flushRange: (start, end, stride, _walkCaches, cpus) =>
            ops.flushRange(start, end, stride, false, cpus),
        }),
      ),
  });
}

describe("broken: last-level-only invalidation after freeing tables", () => {
  // No thread touches the memory: only the speculative walks of the two CPUs that have the mm loaded.
  const spec: ScenarioSpec = {
    memory: 16 << 20,
    cpus: 2,
    touch: 0,
    vmas: [{ kind: "anon", size: 1 << 20 }],
    op: { kind: "munmap" },
  };
  for (const variant of variants)
    it(`${variant}: caught as tableFreedWhileWalkable; the real arm64 flush is silent`, () => {
      const broken = runScenario({ ...spec, variant, arch: lastLevelAlwaysArm64(arm64Arch) });
      expect(broken.violations.map((v) => v.kind)).toContain("tableFreedWhileWalkable");
      expect(new Set(broken.violations.map((v) => v.kind))).toEqual(new Set(["tableFreedWhileWalkable"]));
      const real = runScenario({ ...spec, variant, arch: arm64Arch });
      expect(real.violations).toEqual([]);
      expect(real.finalState.problems).toEqual([]);
    });
});
