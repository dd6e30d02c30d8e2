// khugepaged's collapse_pte_mapped_thp next to a teardown, from mm/khugepaged.c (v6.18): the PTEs of a
// PTE-mapped file THP are cleared without a flush, the PMD is cleared and the range flushed
// (pmdp_collapse_flush → flush_tlb_range, which reaches lazy-TLB CPUs too), and the PTE table is freed
// by pte_free_defer's RCU callback; an exiting mm is left alone; a PTE that maps another page aborts
// (flush_tlb_mm when PTEs were already cleared). And the two bugs this path has shipped, each found by
// the explorer within two preemptions on the archs where it applies.
import { arm64Arch } from "@mmgather/arch-arm64";
import { genericArch } from "@mmgather/arch-generic";
import { s390Arch } from "@mmgather/arch-s390";
import { type ArchTlb, defineArch } from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import {
  buildScenario,
  collapse,
  createCollapseCounters,
  defineCollapse,
  explore,
  MM_SHMEMPAGES,
  mkPte,
  runBuilt,
  runScenario,
  type ScenarioSpec,
} from "../index.js";
import { khugepagedScanSteps } from "../khugepaged.js";
import { LEVEL_PMD } from "../page-tables.js";

/** x86's flush rule for lazy-TLB CPUs on the asm-generic adapter (arch-x86 depends on this package). */
const x86Lazy = defineArch({
  name: "x86-lazy",
  flushSkipsLazyCpus: true,
  fullFlushCeiling: 33,
  geometry: genericArch.geometry,
});

const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;
const MiB = 1 << 20;

/** One PMD's worth of bytes on `arch` (2 MiB; 1 MiB on s390) and its folio order. */
function pmdOf(arch: ArchTlb = genericArch): { bytes: number; order: number } {
  const g = arch.geometry;
  return { bytes: 2 ** (g.pageShift + g.pmdOrder), order: g.pmdOrder };
}

/** A small anon VMA (the munmap's) and two PMDs of shmem in PMD-sized folios mapped by PTEs. */
function spec(over: Partial<ScenarioSpec> = {}): ScenarioSpec {
  const pmd = pmdOf(over.arch);
  return {
    memory: 64 * MiB,
    cpus: 2,
    vmas: [
      { kind: "anon", size: 64 << 10 },
      { kind: "shmem", size: 2 * pmd.bytes, folio: { order: pmd.order } },
    ],
    op: { kind: "munmap", vma: 0 },
    concurrentOp: { kind: "khugepaged", vma: 1 },
    ...over,
  };
}

const skipsLazy = defineCollapse(collapse, {
  name: "flush_tlb_range without freed_tables",
  steps: {
    pmdpCollapseFlush(ctx, clearPmd, base) {
      clearPmd();
      ctx.flushTlbRange(base, false);
    },
  },
});

const freedAtOnce = defineCollapse(collapse, {
  name: "pte_free",
  steps: {
    pteFreeDefer(ctx, tablePfn) {
      ctx.freeTable(tablePfn);
    },
  },
});

describe("khugepaged collapse_pte_mapped_thp", () => {
  it("retracts each PTE-mapped THP's table: PTEs, rmap, references and rss go, the PMD is cleared", () => {
    const s = spec();
    const b = buildScenario(s);
    const mm = b.target;
    const v = b.vmas[1];
    const span = mm.pt.span[0];
    const heads = [0, 1].map((k) => b.machine.mem.filemapGetFolio(v.mapping, v.pgoff + k * span));
    const refs = heads.map((h) => b.machine.mem.folioRef(h));
    const shmem0 = mm.rss[MM_SHMEMPAGES];
    const r = runBuilt(b, s);
    expect(r.violations).toEqual([]);
    expect(r.finalState.problems).toEqual([]);
    expect(r.khugepaged).toEqual({
      ...createCollapseCounters(),
      rangesScanned: 2,
      tablesRetracted: 2,
      ptesCleared: 2 * span,
      ptlSections: 6,
      tlbFlushes: 2,
      tablesFreed: 2,
      // Each flush reaches CPU 0 (the munmap's) and drops what the touch left cached there.
      remoteCpuFlushes: r.khugepaged!.remoteCpuFlushes,
      entriesInvalidated: r.khugepaged!.entriesInvalidated,
    });
    expect(r.khugepaged!.remoteCpuFlushes).toBeGreaterThan(0);
    expect(mm.rss[MM_SHMEMPAGES]).toBe(shmem0 - 2 * span);
    for (let k = 0; k < 2; k++) {
      expect(b.machine.mem.folioMapcount(heads[k])).toBe(0);
      // One reference per PTE gone; the lookup's reference was dropped again.
      expect(b.machine.mem.folioRef(heads[k])).toBe(refs[k] - span);
      const base = v.start + k * span;
      const pmd = mm.pt.entries[mm.pt.pmdTable(base, false)]!;
      expect(pmd[mm.pt.index(base, LEVEL_PMD)]).toBe(0);
    }
    // The retract's flushes are its own: the munmap's CPU counters do not include them.
    const alone = runScenario({ ...s, concurrentOp: undefined });
    expect(r.counters.cpu).toEqual(alone.counters.cpu);
  });

  it("leaves PMD-mapped, smaller and unmapped folios alone, and an exiting mm", () => {
    for (const vma of [
      { kind: "shmem" as const, size: 4 * MiB, folio: { order: 9 }, pmdMapped: true },
      { kind: "file-shared" as const, size: 4 * MiB, folio: { order: 4 } },
      { kind: "file-private" as const, size: 4 * MiB, folio: { order: 9 }, populate: 0 },
    ]) {
      const r = runScenario(spec({ vmas: [{ kind: "anon", size: 64 << 10 }, vma] }));
      expect(r.khugepaged!.tablesRetracted, vma.kind).toBe(0);
      expect(r.violations).toEqual([]);
    }
    const b = buildScenario(spec());
    b.target.exiting = true; // mm_users is 0: hpage_collapse_test_exit
    const c = createCollapseCounters();
    for (const _ of khugepagedScanSteps(b.target, 0, Number.MAX_SAFE_INTEGER, collapse, c)) {
      /* run */
    }
    expect(c).toEqual(createCollapseCounters());
  });

  it("aborts at a PTE that maps another page: in step 1 before any clear, in step 2 with flush_tlb_mm", () => {
    for (const at of ["step1", "step2"] as const) {
      const b = buildScenario(spec({ cpus: 1, concurrentOp: undefined }));
      const mm = b.target;
      const v = b.vmas[1];
      const head = b.machine.mem.filemapGetFolio(v.mapping, v.pgoff);
      const ref0 = b.machine.mem.folioRef(head);
      const t = mm.pt.entries[mm.pt.pteTable(v.start, false)]!;
      const other = b.machine.mem.allocFolio(0);
      const c = createCollapseCounters();
      const steps = khugepagedScanSteps(mm, v.start, v.start + mm.pt.span[0], collapse, c);
      if (at === "step1") t[10] = mkPte(other, 0);
      steps.next(); // mmap_read_lock, the lookup and step 1
      if (at === "step2") t[10] = mkPte(other, 0);
      for (let s = steps.next(); s.done !== true; s = steps.next()) {
        /* run */
      }
      expect(c.aborts, at).toBe(1);
      expect(c.tablesRetracted).toBe(0);
      const cleared = at === "step1" ? 0 : 10;
      expect(c.ptesCleared).toBe(cleared);
      expect(c.mmFlushes).toBe(at === "step1" ? 0 : 1);
      expect(b.machine.mem.folioRef(head)).toBe(ref0 - cleared);
      expect(t[9] === 0).toBe(at === "step2");
      expect(t[11]).not.toBe(0);
      expect(mm.mmapLock).toBe(0);
    }
  });

  it("refuses a file VMA that was written to, and a non-file VMA", () => {
    expect(() =>
      runScenario(
        spec({
          vmas: [
            { kind: "anon", size: 64 << 10 },
            { kind: "file-shared", size: 4 * MiB, dirtyFraction: 0.5 },
          ],
        }),
      ),
    ).toThrow(/only files nobody has open for writing/);
    expect(() => runScenario(spec({ concurrentOp: { kind: "khugepaged", vma: 0 } }))).toThrow(
      expect.objectContaining({
        code: "BAD_SPEC",
        message: expect.stringMatching(/needs a file or shmem VMA/),
      }),
    );
    expect(() => defineCollapse(collapse, { steps: { pteFreeDefer: 1 as never } })).toThrow(
      expect.objectContaining({ code: "BAD_SPEC" }),
    );
  });

  it("stays silent at every interleaving next to munmap, MADV_DONTNEED and exit, on every arch and design", () => {
    const cases: Partial<ScenarioSpec>[] = [
      { cpus: 3, lazyCpus: 1 },
      { cpus: 3, gupFast: 1, op: { kind: "madvise", vma: 1, length: 64 << 10 } },
      { cpus: 3, lazyCpus: 1, kvm: true, op: { kind: "madvise", vma: 1, offset: 64 << 10, length: 1 << 19 } },
      { cpus: 3, lazyCpus: 1, op: { kind: "exit" } },
      { cpus: 2, op: { kind: "munmap", vma: 1, offset: 1 << 19 } },
    ];
    for (const arch of [genericArch, x86Lazy, arm64Arch, s390Arch])
      for (const variant of DESIGNS)
        for (const over of cases) {
          const res = explore(spec({ arch, variant, ...over }), { bound: 2, maxInterleavings: 5000 });
          expect(res.complete).toBe(true);
          expect(res.failing, `${arch.name} ${variant} ${JSON.stringify(over.op)}`).toBe(0);
        }
  });
});

describe("the bugs this path has shipped", () => {
  it("a collapse flush that skips lazy-TLB CPUs frees a table a lazy CPU may still walk (x86 before 2025)", () => {
    for (const variant of DESIGNS) {
      const s = spec({ arch: x86Lazy, variant, cpus: 3, lazyCpus: 1, collapse: skipsLazy });
      const res = explore(s, { bound: 2, maxInterleavings: 5000 });
      expect(res.failing, variant).toBeGreaterThan(0);
      expect(res.shortest!.preemptions).toBeLessThanOrEqual(2);
      expect(res.shortest!.report.violations.map((v) => v.kind)).toContain("tableFreedWhileWalkable");
      expect(explore({ ...s, collapse: undefined }, { bound: 2 }).failing).toBe(0);
    }
    // Broadcast invalidation (arm64, s390) and the asm-generic flush reach lazy CPUs anyway.
    for (const arch of [genericArch, arm64Arch, s390Arch]) {
      const s = spec({ arch, cpus: 3, lazyCpus: 1, collapse: skipsLazy });
      expect(explore(s, { bound: 2 }).failing, arch.name).toBe(0);
    }
  });

  it("a retracted table freed without RCU is freed under a gup_fast walk where flushes are broadcast", () => {
    const over = (arch: ArchTlb): Partial<ScenarioSpec> => ({
      arch,
      cpus: 3,
      gupFast: 1,
      vmas: [{ kind: "shmem", size: pmdOf(arch).bytes, folio: { order: pmdOf(arch).order } }],
      op: { kind: "madvise", vma: 0, length: 64 << 10 },
      concurrentOp: { kind: "khugepaged", vma: 0 },
    });
    for (const arch of [arm64Arch, s390Arch])
      for (const variant of DESIGNS) {
        const s = spec({ variant, ...over(arch), collapse: freedAtOnce });
        const res = explore(s, { bound: 2, maxInterleavings: 5000 });
        expect(res.failing, `${arch.name} ${variant}`).toBeGreaterThan(0);
        expect(res.shortest!.preemptions).toBeLessThanOrEqual(2);
        expect(res.shortest!.report.violations.map((v) => v.kind)).toContain("tableFreedUnderGupFast");
        expect(explore({ ...s, collapse: undefined }, { bound: 2 }).failing).toBe(0);
      }
    // A flush by IPI waits for the interrupts-off walk first: the same free is harmless there.
    for (const arch of [genericArch, x86Lazy])
      expect(explore(spec({ ...over(arch), collapse: freedAtOnce }), { bound: 2 }).failing, arch.name).toBe(
        0,
      );
  });
});
