// NUMA balancing's hinting scan next to the teardown (numa.ts): change_huge_pmd must never let a huge
// PMD read as none (pmdp_invalidate_ad, ced108037c2a), or MADV_DONTNEED's lockless look at the PMD skips
// it and returns with the THP still mapped. munmap is safe either way: mmap_lock keeps the scan off the
// detached VMA (v6.18 semantics).
import { describe, expect, it } from "vitest";
import {
  buildScenario,
  defineNumaScan,
  explore,
  LEVEL_PMD,
  numaScan,
  PTE_DIRTY,
  PTE_WRITE,
  PTE_YOUNG,
  runBuilt,
  runScenario,
  type ScenarioSpec,
} from "../index.js";

const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

/** change_huge_pmd before ced108037c2a: get-and-clear, other CPUs run, then set. */
const getAndClear = defineNumaScan(numaScan, {
  name: "get-and-clear",
  steps: {
    *changeHugePmd(ctx, pmd, index, base) {
      const old = pmd[index];
      pmd[index] = 0;
      ctx.flushPmd(base);
      yield;
      pmd[index] = old & ~(PTE_WRITE | PTE_YOUNG);
      ctx.counters.hugePmdsChanged++;
    },
  },
});

function spec(variant: (typeof DESIGNS)[number], op: "madvise" | "munmap", scan = numaScan): ScenarioSpec {
  return {
    memory: 64 << 20,
    cpus: 2,
    variant,
    numaScan: scan,
    vmas: [{ kind: "anon", size: 4 << 20, folio: { order: 9 }, pmdMapped: true }],
    op: { kind: op },
    concurrentOp: { kind: "numa" },
  };
}

describe("the hinting scan alone (next to a teardown of another VMA)", () => {
  it("makes every huge PMD PROT_NONE with one PMD flush each", () => {
    const s: ScenarioSpec = {
      memory: 64 << 20,
      cpus: 2,
      vmas: [
        { kind: "anon", size: 64 << 10 },
        { kind: "anon", size: 4 << 20, folio: { order: 9 }, pmdMapped: true },
      ],
      op: { kind: "munmap", vma: 0 },
      concurrentOp: { kind: "numa", vma: 1 },
    };
    const b = buildScenario(s);
    const r = runBuilt(b, s);
    expect(r.violations).toEqual([]);
    // One PMD flush per THP, each reaching both CPUs that run the mm and dropping its 2M entry there.
    expect(r.numa).toEqual({
      hugePmdsChanged: 2,
      tlbFlushes: 2,
      remoteCpuFlushes: 4,
      entriesInvalidated: 4,
      secondaryTlbInvalidations: 0,
    });
    // Its flushes are its own: the munmap's CPU counters are those of the same run without the scan.
    expect(r.counters.cpu).toEqual(runScenario({ ...s, concurrentOp: undefined }).counters.cpu);
    const pt = b.target.pt;
    const v = b.vmas[1];
    for (let base = v.start; base < v.end; base += pt.span[0]) {
      const e = pt.entries[pt.pmdTable(base, false)]![pt.index(base, LEVEL_PMD)];
      expect(e & (PTE_WRITE | PTE_YOUNG)).toBe(0);
      expect(e & PTE_DIRTY).toBe(PTE_DIRTY); // pmd_modify keeps the dirty bit
    }
  });

  it("runs in a thread of the mm: refused next to exit", () => {
    expect(() => runScenario({ ...spec("encoded-nr-pages", "madvise"), op: { kind: "exit" } })).toThrow(
      expect.objectContaining({ code: "BAD_SPEC" }),
    );
    expect(() => defineNumaScan(numaScan, { steps: { changeHugePmd: 1 as never } })).toThrow(
      expect.objectContaining({ code: "BAD_SPEC" }),
    );
  });
});

describe("MADV_DONTNEED racing the hinting scan (presentAfterReturn)", () => {
  for (const variant of DESIGNS) {
    it(`${variant}: the kernel's change_huge_pmd is safe in every interleaving up to 2 preemptions`, () => {
      for (const op of ["madvise", "munmap"] as const) {
        const x = explore(spec(variant, op), { bound: 2 });
        expect(x.complete).toBe(true);
        expect(x.failing).toBe(0);
      }
    });

    it(`${variant}: get-and-clear leaves a THP mapped after MADV_DONTNEED (found with 2 preemptions); munmap stays safe`, () => {
      const x = explore(spec(variant, "madvise", getAndClear), { bound: 2 });
      expect(x.failing).toBeGreaterThan(0);
      expect(x.shortest?.preemptions).toBe(2);
      expect(x.shortest?.report.violations.map((v) => v.kind)).toEqual(["presentAfterReturn"]);
      expect(explore(spec(variant, "madvise", getAndClear), { bound: 1 }).failing).toBe(0);
      const m = explore(spec(variant, "munmap", getAndClear), { bound: 2 });
      expect(m.complete).toBe(true);
      expect(m.failing).toBe(0);
    });
  }
});
