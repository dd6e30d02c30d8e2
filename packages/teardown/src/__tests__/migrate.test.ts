import { arm64Arch } from "@mmgather/arch-arm64";
import { genericArch } from "@mmgather/arch-generic";
import { s390Arch } from "@mmgather/arch-s390";
import { defineArch } from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import {
  defineMigration,
  defineZapWalk,
  explore,
  folioBatchWalk,
  isMigrationPte,
  isWritableMigrationPte,
  migration,
  migrationPtePfn,
  mkMigrationPte,
  perPteWalk,
  runScenario,
  type ScenarioSpec,
} from "../index.js";

/**
 * The asm-generic adapter with x86's batched unmap flush (arch_tlbbatch_should_defer: another CPU in
 * mm_cpumask; the batch flush IPIs them): the x86 adapter itself depends on this package, so its own
 * tests run the migration cases on it (packages/arch-x86).
 */
const x86Arch = defineArch({ name: "x86-batching", tlbBatch: { shouldDefer: "remoteCpus", nosync: false } });

const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

function spec(over: Partial<ScenarioSpec> = {}): ScenarioSpec {
  return {
    memory: 32 << 20,
    cpus: 2,
    vmas: [{ kind: "anon", size: 64 << 10 }],
    op: { kind: "munmap" },
    concurrentOp: { kind: "migrate" },
    ...over,
  };
}

describe("migration entries", () => {
  it("encode a pfn and the write bit as a non-present entry", () => {
    for (const pfn of [0, 1, 12345, (1 << 26) - 1]) {
      for (const w of [false, true]) {
        const e = mkMigrationPte(pfn, w);
        expect(e).toBeLessThan(0);
        expect(isMigrationPte(e)).toBe(true);
        expect(migrationPtePfn(e)).toBe(pfn);
        expect(isWritableMigrationPte(e)).toBe(w);
      }
    }
    expect(isMigrationPte(-1)).toBe(false);
    expect(isMigrationPte(33)).toBe(false);
  });
});

describe("concurrent migration", () => {
  it("migrates the range when the teardown leaves it alone", () => {
    const r = runScenario(
      spec({
        vmas: [
          { kind: "anon", size: 64 << 10 },
          { kind: "anon", size: 64 << 10 },
        ],
        op: { kind: "munmap", vma: 0 },
        concurrentOp: { kind: "migrate", vma: 1 },
      }),
    );
    expect(r.violations).toEqual([]);
    expect(r.finalState.problems).toEqual([]);
    expect(r.migrate!.foliosIsolated).toBe(16);
    expect(r.migrate!.foliosMigrated).toBe(16);
    expect(r.migrate!.ptesUnmapped).toBe(16);
    expect(r.migrate!.ptesRemapped).toBe(16);
  });

  for (const arch of [genericArch, s390Arch, x86Arch, arm64Arch]) {
    it(`${arch.name}: the real designs stay silent over many interleavings`, () => {
      let cleared = 0;
      for (const variant of DESIGNS) {
        for (let seed = 1; seed <= 30; seed++) {
          const r = runScenario(
            spec({
              arch,
              variant,
              seed,
              vmas: [
                {
                  kind: "anon",
                  size: (arch === s390Arch ? 1 : 2) << 20,
                  folio: {
                    mix: [
                      { order: 0, weight: 1 },
                      { order: 4, weight: 1 },
                    ],
                  },
                },
              ],
            }),
          );
          expect(r.violations).toEqual([]);
          expect(r.finalState.problems).toEqual([]);
          cleared += r.counters.walk.migrationPtesCleared;
        }
      }
      expect(cleared).toBeGreaterThan(0);
    });
  }

  // MADV_DONTNEED: no page table is freed, so the zap's own flush covers only the PTEs it cleared.
  it("a zap without flush_tlb_batched_pending returns with the old translation cached (x86, arm64)", () => {
    for (const arch of [x86Arch, arm64Arch]) {
      for (const variant of DESIGNS) {
        const base = variant === "encoded-nr-pages" ? folioBatchWalk : perPteWalk;
        const walk = defineZapWalk(base, {
          name: "no-batched-pending",
          steps: { flushTlbBatchedPending() {} },
        });
        const s = spec({ arch, variant, walk, op: { kind: "madvise" } });
        const res = explore(s, { bound: 2, maxInterleavings: 5000 });
        expect(res.failing, `${arch.name} ${variant}`).toBeGreaterThan(0);
        expect(res.shortest!.report.violations.map((v) => v.kind)).toContain("staleTlbAfterReturn");
        expect(res.shortest!.preemptions).toBeLessThanOrEqual(2);
        const ok = explore(spec({ arch, variant, op: { kind: "madvise" } }), {
          bound: 2,
          maxInterleavings: 5000,
        });
        expect(ok.failing, `${arch.name} ${variant} correct`).toBe(0);
      }
    }
  });

  it("without a batched unmap flush (asm-generic, s390) the same walk is harmless: nothing is deferred", () => {
    for (const arch of [genericArch, s390Arch]) {
      const walk = defineZapWalk(perPteWalk, {
        name: "no-batched-pending",
        steps: { flushTlbBatchedPending() {} },
      });
      const res = explore(spec({ arch, walk, variant: "encoded-page", op: { kind: "madvise" } }), {
        bound: 2,
        maxInterleavings: 5000,
      });
      expect(res.failing).toBe(0);
      expect(res.complete).toBe(true);
    }
  });

  it("flush_tlb_batched_pending flushes once per outstanding deferral, counted by the zap", () => {
    let flushed = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const r = runScenario(spec({ arch: x86Arch, seed, op: { kind: "madvise" } }));
      expect(r.violations).toEqual([]);
      const w = r.counters.walk;
      if (w.migrationPtesCleared > 0) expect(w.batchedPendingFlushes).toBeGreaterThan(0);
      flushed += w.batchedPendingFlushes;
      expect(w.batchedPendingFlushes).toBeLessThanOrEqual(r.migrate!.flushesDeferred);
    }
    expect(flushed).toBeGreaterThan(0);
  });

  it("a migration that copies before try_to_unmap_flush loses a store (x86, arm64)", () => {
    const broken = defineMigration(migration, { name: "copy-before-flush", steps: { tryToUnmapFlush() {} } });
    for (const arch of [x86Arch, arm64Arch]) {
      for (const variant of DESIGNS) {
        const s = spec({ arch, variant, migration: broken, op: { kind: "madvise", length: 4096 } });
        const res = explore(s, { bound: 2, maxInterleavings: 5000 });
        expect(res.failing, `${arch.name} ${variant}`).toBeGreaterThan(0);
        const kinds = res.shortest!.report.violations.map((v) => v.kind);
        expect(kinds.some((k) => k === "migratedWhileWritable" || k === "useAfterFree")).toBe(true);
      }
    }
  });
});
