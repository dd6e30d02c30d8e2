import { genericArch } from "@mmgather/arch-generic";
import { s390Arch } from "@mmgather/arch-s390";
import { createMmuGather } from "@mmgather/mmu-gather";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buildScenario,
  createMachine,
  runBuilt,
  type ScenarioSpec,
  type TeardownReport,
  ZapContext,
} from "../index.js";
import { createWalkCounters } from "../zap/context.js";

const LONG = process.env.MMGATHER_LONG === "1";
const VARIANTS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

/** Everything a run reports except its wall time. */
function comparable(r: TeardownReport): unknown {
  const { simWallNs: _t, ...rest } = r;
  return JSON.parse(JSON.stringify(rest));
}

describe("fused zap path (zapPresentTrusted)", () => {
  it("is chosen once per operation: only with no checker, no events and the asm-generic pte_clear", () => {
    for (const variant of VARIANTS) {
      const fusedFor = (arch: typeof genericArch, cpus: number, events: boolean): boolean => {
        const m = createMachine({ memoryBytes: 8 << 20, arch, cpus });
        m.events = events ? () => {} : null;
        const mm = m.createMm();
        const tlb = createMmuGather({
          mem: m.mem,
          mm: mm.tlbMm,
          arch,
          variant,
          events: m.gatherSink() ?? undefined,
        });
        return new ZapContext(mm, tlb, m.checker, createWalkCounters(), 0).fused;
      };
      expect(fusedFor(genericArch, 0, false)).toBe(true);
      expect(fusedFor(genericArch, 0, true)).toBe(false);
      expect(fusedFor(genericArch, 2, false)).toBe(false);
      expect(fusedFor(s390Arch, 0, false)).toBe(false);
    }
  });

  // An events sink (even one that drops everything) switches the fused path off, so the same spec run
  // with and without one compares the fused walk with the step-by-step walk: state digests and every
  // reported counter must be identical, in every variant, through dirty file pages (which take the
  // step-by-step path inside a fused run), swap entries, forks, partial ranges and failing batch
  // allocations (forced flushes).
  it(`same state and counters as the step-by-step path, all variants (${LONG ? 600 : 60} cases)`, () => {
    const vmaArb = fc.record({
      kind: fc.constantFrom("anon", "file-shared", "file-private", "shmem" as const),
      tables: fc.integer({ min: 1, max: 3 }),
      order: fc.constantFrom(0, 2, 4, 9),
      pmd: fc.boolean(),
      dirty: fc.double({ min: 0, max: 1, noNaN: true }),
      swap: fc.double({ min: 0, max: 0.5, noNaN: true }),
    });
    fc.assert(
      fc.property(
        fc.array(vmaArb, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        fc.constantFrom("exit", "munmap", "madvise" as const),
        fc.integer({ min: 1, max: 1e6 }),
        fc.integer({ min: 0, max: 3 }),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        fc.double({ min: 0, max: 1, noNaN: true, minExcluded: true }),
        (vs, fork, op, seed, allocFailEvery, startFrac, lenFrac) => {
          const span = 2 << 20;
          const vma0Pages = (vs[0].tables * span) / 4096;
          const totalPages = vs.reduce((a, v) => a + (v.tables * span) / 4096, 0);
          const offPages = Math.floor(startFrac * vma0Pages);
          const lenPages = Math.max(1, Math.ceil(lenFrac * (totalPages - offPages)));
          for (const variant of VARIANTS) {
            const spec = (events: boolean): ScenarioSpec => ({
              memory: 48 << 20,
              swap: 16 << 20,
              seed,
              arch: genericArch,
              variant,
              fork,
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
                dirtyFraction: v.dirty,
                swapFraction: v.kind === "anon" ? v.swap : 0,
              })),
              alloc: allocFailEvery === 0 ? undefined : (n) => n % (allocFailEvery + 1) !== allocFailEvery,
              events: events ? () => {} : undefined,
              op:
                op === "exit"
                  ? { kind: "exit" }
                  : { kind: op, vma: 0, offset: offPages * 4096, length: lenPages * 4096 },
            });
            const out = [false, true].map((events) => {
              const s = spec(events);
              const b = buildScenario(s);
              const r = runBuilt(b, s);
              expect(r.finalState.problems).toEqual([]);
              return {
                report: comparable(r),
                digest: b.machine.mem.stateDigest() + (b.machine.swap?.stateDigest() ?? ""),
                freed: { ...b.machine.freed },
              };
            });
            expect(out[0].digest).toBe(out[1].digest);
            expect(out[0].report).toEqual(out[1].report);
            expect(out[0].freed).toEqual(out[1].freed);
          }
        },
      ),
      { numRuns: LONG ? 600 : 60, seed: 7 },
    );
  }, 600_000);

  // The 7.x walk hands runs of order-0 PTEs to the gather in one call (zapSinglesRunTrusted). Mostly
  // order-0 folios, so runs are long: they must end exactly at holes (partial population), swap
  // PTEs, large folios, dirty file pages and where the gather fills (small alloc-failure periods).
  it(`order-0 runs: same state and counters as the step-by-step path, all variants (${LONG ? 400 : 40} cases)`, () => {
    const vmaArb = fc.record({
      kind: fc.constantFrom("anon", "file-shared", "file-private", "shmem" as const),
      tables: fc.integer({ min: 1, max: 3 }),
      largeWeight: fc.constantFrom(0, 0, 1),
      order: fc.constantFrom(2, 4),
      populate: fc.constantFrom(1, 1, 0.9, 0.5),
      dirty: fc.double({ min: 0, max: 1, noNaN: true }),
      swap: fc.double({ min: 0, max: 0.3, noNaN: true }),
    });
    fc.assert(
      fc.property(
        fc.array(vmaArb, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        fc.constantFrom("exit", "munmap" as const),
        fc.integer({ min: 1, max: 1e6 }),
        fc.integer({ min: 0, max: 4 }),
        (vs, fork, op, seed, allocFailEvery) => {
          const span = 2 << 20;
          for (const variant of VARIANTS) {
            const spec = (events: boolean): ScenarioSpec => ({
              memory: 48 << 20,
              swap: 16 << 20,
              seed,
              arch: genericArch,
              variant,
              fork,
              vmas: vs.map((v) => ({
                kind: v.kind as "anon",
                size: v.tables * span,
                folio: {
                  mix: [
                    { order: 0, weight: 8 },
                    { order: v.order, weight: v.largeWeight },
                  ],
                },
                populate: v.populate,
                dirtyFraction: v.dirty,
                swapFraction: v.kind === "anon" ? v.swap : 0,
              })),
              alloc: allocFailEvery === 0 ? undefined : (n) => n % (allocFailEvery + 1) !== allocFailEvery,
              events: events ? () => {} : undefined,
              op: op === "exit" ? { kind: "exit" } : { kind: op, vma: 0, offset: 4096, length: span },
            });
            const out = [false, true].map((events) => {
              const s = spec(events);
              const b = buildScenario(s);
              const r = runBuilt(b, s);
              expect(r.finalState.problems).toEqual([]);
              return {
                report: comparable(r),
                digest: b.machine.mem.stateDigest() + (b.machine.swap?.stateDigest() ?? ""),
                freed: { ...b.machine.freed },
              };
            });
            expect(out[0].digest).toBe(out[1].digest);
            expect(out[0].report).toEqual(out[1].report);
            expect(out[0].freed).toEqual(out[1].freed);
          }
        },
      ),
      { numRuns: LONG ? 400 : 40, seed: 11 },
    );
  }, 600_000);
});
