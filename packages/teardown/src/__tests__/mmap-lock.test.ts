// Concurrent operations on one mm follow mmap_lock (mm/vma.c vms_complete_munmap_vmas, mm/madvise.c
// madvise_lock): whatever the overlap and the interleaving, the correct designs show no violation,
// no final-state problem, and the same end state as running the two operations one after the other.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildScenario, type OpSpec, runBuilt, type ScenarioSpec } from "../index.js";

const VARIANTS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;
const KB = 1024;

function spec(variant: (typeof VARIANTS)[number], seed: number, a: OpSpec, b: OpSpec): ScenarioSpec {
  return {
    memory: 64 << 20,
    seed,
    variant,
    vmas: [
      {
        kind: "anon",
        size: 4 << 20,
        folio: {
          mix: [
            { order: 0, weight: 1 },
            { order: 4, weight: 1 },
          ],
        },
      },
      { kind: "file-shared", size: 1 << 20, dirtyFraction: 0.5 },
    ],
    cpus: 2,
    op: a,
    concurrentOp: b,
  };
}

/** Present leaf entries left in the target's page tables, by page. */
function mappedPages(s: ScenarioSpec): {
  rss: number;
  vmas: string;
  problems: readonly string[];
  violations: number;
} {
  const built = buildScenario(s);
  const r = runBuilt(built, s);
  return {
    rss: built.target.rssPages(),
    vmas: built.target.vmas.map((v) => `${v.start}-${v.end}`).join(","),
    problems: r.finalState.problems,
    violations: r.violations.length,
  };
}

const op = (kind: "munmap" | "madvise", offset: number, length: number): OpSpec => ({
  kind,
  vma: 0,
  offset: offset * 64 * KB,
  length: length * 64 * KB,
});

describe("mmap_lock: concurrent munmap / MADV_DONTNEED", () => {
  it("overlapping munmap + munmap, munmap + madvise: no violation, no final-state problem", () => {
    const pairs: [OpSpec, OpSpec][] = [
      [op("munmap", 0, 32), op("munmap", 16, 32)],
      [op("munmap", 0, 32), op("munmap", 0, 32)],
      [op("munmap", 8, 16), op("madvise", 0, 48)],
      [op("madvise", 0, 48), op("munmap", 8, 16)],
      [op("munmap", 0, 64), op("madvise", 0, 64)],
    ];
    for (const v of VARIANTS)
      for (const [a, b] of pairs)
        for (let seed = 1; seed <= 12; seed++) {
          const m = mappedPages(spec(v, seed, a, b));
          expect({ v, a, b, seed, p: m.problems, n: m.violations }).toEqual({ v, a, b, seed, p: [], n: 0 });
        }
  });

  it("property: any pair ends as the same two operations run one after the other", () => {
    const arbOp = fc
      .record({
        kind: fc.constantFrom("munmap" as const, "madvise" as const),
        offset: fc.integer({ min: 0, max: 63 }),
        length: fc.integer({ min: 1, max: 64 }),
      })
      .map((o) => op(o.kind, o.offset, Math.min(o.length, 64 - o.offset)));
    fc.assert(
      fc.property(
        arbOp,
        arbOp,
        fc.integer({ min: 1, max: 1000 }),
        fc.constantFrom(...VARIANTS),
        (a, b, seed, v) => {
          const m = mappedPages(spec(v, seed, a, b));
          expect(m.problems).toEqual([]);
          expect(m.violations).toBe(0);
          // Both ranges end unmapped (munmap) or zapped (madvise): rss equals the serial run's.
          const serial = spec(v, seed, a, b);
          const built = buildScenario({ ...serial, concurrentOp: undefined });
          runBuilt(built, { ...serial, concurrentOp: undefined });
          runBuilt(built, { ...serial, op: b, concurrentOp: undefined });
          expect(m.rss).toBe(built.target.rssPages());
          expect(m.vmas).toBe(built.target.vmas.map((x) => `${x.start}-${x.end}`).join(","));
        },
      ),
      { numRuns: 60 },
    );
  });
});
