// arm64 with contpte on random workloads: the three real designs stay silent with a second thread
// (munmap / MADV_DONTNEED, writeback, swapoff), fork, THP splits, lazy CPUs and devices; and alone, the
// same operation tears down exactly what it tears down without contpte — contiguous blocks change how the
// PTEs are cleared and flushed, never which pages, folios and tables go.
import { arm64Arch, createArm64Arch } from "@mmgather/arch-arm64";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runScenario, type ScenarioSpec } from "../index.js";

const LONG = process.env.MMGATHER_LONG === "1";
const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;
const noContpte = createArm64Arch({ contpte: false });

const vmaArb = fc.record({
  kind: fc.constantFrom("anon", "file-shared", "file-private" as const),
  tables: fc.integer({ min: 1, max: 2 }),
  order: fc.constantFrom(0, 3, 4, 5, 9),
  pmd: fc.boolean(),
  dirty: fc.double({ min: 0, max: 1, noNaN: true }),
  swap: fc.double({ min: 0, max: 0.5, noNaN: true }),
  keep: fc.boolean(),
});

type VmaShape = typeof vmaArb extends fc.Arbitrary<infer T> ? T : never;

function spec(
  vs: readonly VmaShape[],
  op: "exit" | "munmap" | "madvise",
  seed: number,
  fork: boolean,
): ScenarioSpec {
  const span = 2 << 20;
  return {
    memory: 64 << 20,
    swap: 16 << 20,
    seed,
    fork,
    cpus: 3,
    lazyCpus: seed % 2,
    devices: (seed >> 3) % 2,
    vmas: vs.map((v) => ({
      kind: v.kind as "anon",
      size: v.tables * span,
      folio: {
        mix: [
          { order: 0, weight: 1 },
          { order: v.order, weight: 2 },
        ],
      },
      pmdMapped: v.pmd,
      dirtyFraction: v.kind === "anon" ? 0 : v.dirty,
      swapFraction: v.kind === "anon" ? v.swap : 0,
      keepInSwapCache: v.keep,
    })),
    // Offsets and lengths in pages that start and end inside 64K blocks and 2M THPs.
    op:
      op === "exit"
        ? { kind: "exit" }
        : { kind: op, vma: 0, offset: 4096 * (seed % 37), length: 4096 * (1 + ((seed >> 4) % 400)) },
  };
}

describe("arm64 contpte on random workloads", () => {
  it(`alone: the same pages, folios and tables as without contpte, no violation (${LONG ? 300 : 25} cases)`, () => {
    const tally = { batchedClears: 0, unfolds: 0, folds: 0 };
    fc.assert(
      fc.property(
        fc.array(vmaArb, { minLength: 1, maxLength: 3 }),
        fc.constantFrom("exit", "munmap", "madvise" as const),
        fc.integer({ min: 1, max: 1e6 }),
        fc.boolean(),
        (vs, op, seed, fork) => {
          for (const variant of DESIGNS) {
            const s = { ...spec(vs, op, seed, fork), variant };
            const on = runScenario({ ...s, arch: arm64Arch });
            const off = runScenario({ ...s, arch: noContpte });
            expect(on.violations).toEqual([]);
            expect(on.finalState.problems).toEqual([]);
            expect(off.violations).toEqual([]);
            for (const k of [
              "pagesTornDown",
              "dataFoliosFreed",
              "pageTablePagesFreed",
              "swapEntriesZapped",
            ] as const)
              expect(on[k], k).toBe(off[k]);
            expect(on.counters.walk.ptesCleared).toBe(off.counters.walk.ptesCleared);
            expect(on.finalState).toEqual(off.finalState);
            tally.batchedClears += on.contpte?.batchedClears ?? 0;
            tally.unfolds += on.contpte?.unfolds ?? 0;
            tally.folds += on.contpte?.folds ?? 0;
          }
        },
      ),
      { numRuns: LONG ? 300 : 25, seed: 11 },
    );
    // The generators reach batched clears, unfolds at range ends and folds by THP splits.
    expect(tally.batchedClears).toBeGreaterThan(0);
    expect(tally.unfolds).toBeGreaterThan(0);
    expect(tally.folds).toBeGreaterThan(0);
  });

  it(`with a second thread (munmap, MADV_DONTNEED, writeback, swapoff): no violation (${LONG ? 300 : 25} cases)`, () => {
    fc.assert(
      fc.property(
        fc.array(vmaArb, { minLength: 1, maxLength: 3 }),
        fc.constantFrom("munmap", "madvise" as const),
        fc.constantFrom("munmap", "madvise", "writeback", "swapoff" as const),
        fc.integer({ min: 1, max: 1e6 }),
        (vs, op, second, seed) => {
          const fileVma = vs.findIndex((v) => v.kind !== "anon");
          const kind = second === "writeback" && fileVma < 0 ? "swapoff" : second;
          const base = spec(
            vs.map((v) => ({ ...v, pmd: v.pmd && !(kind === "writeback" && v.kind !== "anon") })),
            op,
            seed,
            false,
          );
          const s: ScenarioSpec = {
            ...base,
            arch: arm64Arch,
            concurrentOp:
              kind === "writeback"
                ? { kind, vma: fileVma }
                : kind === "swapoff"
                  ? { kind }
                  : {
                      kind,
                      vma: vs.length - 1,
                      offset: 4096 * (seed % 23),
                      length: 4096 * (1 + (seed % 300)),
                    },
          };
          for (const variant of DESIGNS) {
            const r = runScenario({ ...s, variant });
            expect(r.violations).toEqual([]);
            expect(r.finalState.problems).toEqual([]);
          }
        },
      ),
      { numRuns: LONG ? 300 : 25, seed: 13 },
    );
  });
});
