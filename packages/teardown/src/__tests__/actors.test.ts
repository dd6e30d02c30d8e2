// Every actor at once, on random workloads: the three real designs stay silent (no violation, no
// final-state problem) while a second thread — munmap / MADV_DONTNEED, writeback, swapoff or the NUMA
// hinting scan — runs next
// to the operation, with lazy-TLB CPUs, devices sharing the page tables and gup_fast walkers.
// File PMDs stay out of writeback runs: v6.18's zap_huge_pmd drops a dirty file PMD's rmap before its
// TLB flush, a window the writeback test reports on purpose (writeback.test.ts).

import { arm64Arch } from "@mmgather/arch-arm64";
import { genericArch } from "@mmgather/arch-generic";
import { defineArch } from "@mmgather/mmu-gather";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runScenario, type ScenarioSpec } from "../index.js";

/**
 * The asm-generic adapter with x86's batched unmap flush (arch_tlbbatch_should_defer: another CPU in
 * mm_cpumask; the batch flush IPIs them): the x86 adapter itself depends on this package, so its own
 * tests run the migration cases on it (packages/arch-x86).
 */
const x86Arch = defineArch({ name: "x86-batching", tlbBatch: { shouldDefer: "remoteCpus", nosync: false } });

const LONG = process.env.MMGATHER_LONG === "1";
const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

describe("all actors: the real designs stay silent", () => {
  it(`random workloads, random second thread (${LONG ? 1000 : 80} cases)`, () => {
    const vmaArb = fc.record({
      kind: fc.constantFrom("anon", "file-shared", "file-private", "shmem" as const),
      tables: fc.integer({ min: 1, max: 2 }),
      order: fc.constantFrom(0, 2, 4, 9),
      pmd: fc.boolean(),
      dirty: fc.double({ min: 0, max: 1, noNaN: true }),
      swap: fc.double({ min: 0, max: 0.6, noNaN: true }),
      keep: fc.boolean(),
    });
    const tally = {
      cases: 0,
      writeback: 0,
      swapoff: 0,
      numa: 0,
      migrate: 0,
      migrateDeferred: 0,
      kvm: 0,
      kvmFault: 0,
      kvmRetries: 0,
      racing: 0,
      devices: 0,
      gupFast: 0,
    };
    fc.assert(
      fc.property(
        fc.array(vmaArb, { minLength: 1, maxLength: 3 }),
        fc.constantFrom("exit", "munmap", "madvise" as const),
        fc.constantFrom("munmap", "madvise", "writeback", "swapoff", "numa", "migrate", "kvm-fault" as const),
        fc.integer({ min: 2, max: 4 }),
        fc.integer({ min: 1, max: 1e6 }),
        fc.boolean(),
        // Archs that flush every PTE clear at once, and the two that defer an rmap walk's flushes.
        fc.constantFrom(genericArch, x86Arch, arm64Arch),
        (vs, op, second, cpus, seed, fork, arch) => {
          const span = 2 << 20;
          const fileVma = vs.findIndex((v) => v.kind === "file-shared" || v.kind === "file-private");
          // Migration moves anon folios: its VMA (the last) is anon.
          const kindOf = (i: number) => (second === "migrate" && i === vs.length - 1 ? "anon" : vs[i].kind);
          const anonVma = vs.length - 1;
          const kind =
            (second === "writeback" && fileVma < 0) ||
            (op === "exit" &&
              (second === "munmap" || second === "madvise" || second === "numa" || second === "kvm-fault"))
              ? "swapoff"
              : second;
          const lazy = cpus > 2 ? seed % (cpus - 1) : 0;
          const spec = (variant: (typeof DESIGNS)[number]): ScenarioSpec => ({
            memory: 64 << 20,
            swap: 16 << 20,
            seed,
            arch,
            variant,
            fork,
            cpus,
            lazyCpus: lazy,
            devices: (seed >> 3) % 2,
            gupFast: op !== "exit" && cpus - lazy - 2 >= 1 ? (seed >> 5) % 2 : 0,
            // A KVM guest on the mm half the time (always for a vCPU fault).
            kvm: kind === "kvm-fault" || (seed >> 7) % 2 === 1,
            vmas: vs.map((v, i) => ({
              kind: kindOf(i) as "anon",
              size: v.tables * span,
              folio: {
                mix: [
                  { order: 0, weight: 1 },
                  { order: v.order, weight: 2 },
                ],
              },
              pmdMapped: v.pmd && !(kind === "writeback" && v.kind !== "anon"),
              dirtyFraction: kindOf(i) === "anon" ? 0 : v.dirty,
              swapFraction: kindOf(i) === "anon" ? v.swap : 0,
              keepInSwapCache: v.keep,
            })),
            op: op === "exit" ? { kind: "exit" } : { kind: op, vma: 0, offset: 4096 * (seed % 17) },
            concurrentOp:
              kind === "writeback"
                ? { kind, vma: fileVma }
                : kind === "migrate"
                  ? { kind, vma: anonVma }
                  : kind === "swapoff"
                    ? { kind }
                    : kind === "numa" || kind === "kvm-fault"
                      ? { kind, vma: vs.length - 1 }
                      : { kind, vma: vs.length - 1, length: 4096 * (1 + (seed % 300)) },
          });
          tally.cases++;
          if (kind === "writeback") tally.writeback++;
          else if (kind === "swapoff") tally.swapoff++;
          else if (kind === "numa") tally.numa++;
          else if (kind === "migrate") tally.migrate++;
          else if (kind === "kvm-fault") tally.kvmFault++;
          else tally.racing++;
          if (spec("encoded-page").kvm === true) tally.kvm++;
          if (spec("encoded-page").devices! > 0) tally.devices++;
          if (spec("encoded-page").gupFast! > 0) tally.gupFast++;
          for (const variant of DESIGNS) {
            const r = runScenario(spec(variant));
            expect(r.violations).toEqual([]);
            expect(r.finalState.problems).toEqual([]);
            if (kind === "swapoff") expect(r.swapoff?.completed).toBe(1);
            if (kind === "migrate" && r.migrate!.flushesDeferred > 0) tally.migrateDeferred++;
            if (r.kvm !== null) tally.kvmRetries += r.kvm.faultRetries;
          }
        },
      ),
      { numRuns: LONG ? 1000 : 80, seed: 7 },
    );
    if (LONG) console.log("actors tally", tally);
    // The generators reach every actor.
    expect(tally.writeback).toBeGreaterThan(tally.cases / 20);
    expect(tally.swapoff).toBeGreaterThan(tally.cases / 10);
    expect(tally.racing).toBeGreaterThan(tally.cases / 10);
    expect(tally.numa).toBeGreaterThan(tally.cases / 20);
    expect(tally.migrate).toBeGreaterThan(tally.cases / 20);
    expect(tally.migrateDeferred).toBeGreaterThan(0);
    expect(tally.kvmFault).toBeGreaterThan(tally.cases / 40);
    expect(tally.kvm).toBeGreaterThan(tally.cases / 5);
    expect(tally.devices).toBeGreaterThan(tally.cases / 5);
    expect(tally.gupFast).toBeGreaterThan(0);
  }, 600_000);
});
