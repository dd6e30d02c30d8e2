// KVM's secondary MMU behind the mmu notifiers: invalidate_range_start zaps the guest's sptes before a
// page can be freed, and a vCPU fault that raced an invalidation retries (mmu_invalidate_retry_gfn).
import { s390Arch } from "@mmgather/arch-s390";
import { describe, expect, it } from "vitest";
import {
  defineKvmFault,
  defineZapWalk,
  explore,
  folioBatchWalk,
  kvmFault,
  perPteWalk,
  runScenario,
  type ScenarioSpec,
} from "../index.js";

const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;
const walkOf = (d: (typeof DESIGNS)[number]) => (d === "encoded-nr-pages" ? folioBatchWalk : perPteWalk);

function spec(over: Partial<ScenarioSpec> = {}): ScenarioSpec {
  return {
    memory: 32 << 20,
    cpus: 2,
    kvm: true,
    vmas: [{ kind: "anon", size: 64 << 10 }],
    op: { kind: "munmap" },
    ...over,
  };
}

describe("KVM guest behind the mmu notifiers", () => {
  for (const op of ["munmap", "madvise", "exit"] as const) {
    it(`${op}: every spte of the range goes at range_start (or release), nothing is freed under the guest`, () => {
      for (const variant of DESIGNS) {
        const r = runScenario(spec({ variant, op: { kind: op } }));
        expect(r.violations).toEqual([]);
        expect(r.finalState.problems).toEqual([]);
        // touch 1: the guest mapped all 16 pages.
        expect(r.kvm!.sptesZapped).toBe(16);
        expect(r.kvm!.rangeStarts).toBe(op === "exit" ? 0 : 1);
        expect(r.kvm!.rangeEnds).toBe(r.kvm!.rangeStarts);
      }
    });
  }

  it("a partial munmap zaps only the sptes of its range", () => {
    const r = runScenario(spec({ op: { kind: "munmap", offset: 16 << 10, length: 16 << 10 } }));
    expect(r.violations).toEqual([]);
    expect(r.kvm!.sptesZapped).toBe(4);
  });

  it("a zap without mmu_notifier_invalidate_range_start frees pages the guest still maps", () => {
    for (const variant of DESIGNS) {
      const walk = defineZapWalk(walkOf(variant), {
        name: "no-range-start",
        steps: { mmuNotifierInvalidateRangeStart() {}, mmuNotifierInvalidateRangeEnd() {} },
      });
      for (const arch of [undefined, s390Arch]) {
        const r = runScenario(spec({ variant, walk, arch }));
        expect(r.violations.map((v) => v.kind)).toContain("kvmSpteUseAfterFree");
      }
    }
  });

  it("migration tells the guest too: try_to_migrate_one's range_start zaps the sptes of each folio it moves", () => {
    for (const variant of DESIGNS) {
      const r = runScenario(
        spec({
          variant,
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
      expect(r.migrate!.foliosMigrated).toBe(16);
      // 16 sptes of the munmapped VMA, 16 of the migrated one.
      expect(r.kvm!.sptesZapped).toBe(32);
    }
  });

  it("kvm: true needs the CPU model; kvm-fault needs the guest", () => {
    expect(() => runScenario(spec({ cpus: 0 }))).toThrow(/kvm needs cpus/);
    expect(() =>
      runScenario(spec({ kvm: false, op: { kind: "madvise" }, concurrentOp: { kind: "kvm-fault" } })),
    ).toThrow(/kvm: true/);
  });
});

describe("a vCPU faulting while the range is torn down", () => {
  const noRetry = defineKvmFault(kvmFault, {
    name: "no-mmu_invalidate_retry",
    steps: { mmuInvalidateRetry: () => false },
  });
  for (const op of ["munmap", "madvise"] as const) {
    for (const variant of DESIGNS) {
      it(`${op} / ${variant}: the real fault path is silent in every interleaving up to 2 preemptions; without the retry check it maps a page being freed`, () => {
        const base = spec({
          variant,
          touch: 0,
          op: { kind: op },
          concurrentOp: { kind: "kvm-fault", length: 8 << 10 },
        });
        const ok = explore(base, { bound: 2, maxInterleavings: 20000 });
        expect(ok.complete).toBe(true);
        expect(ok.failing).toBe(0);
        const bad = explore({ ...base, kvmFault: noRetry }, { bound: 2, maxInterleavings: 20000 });
        expect(bad.failing).toBeGreaterThan(0);
        expect(bad.shortest!.preemptions).toBeLessThanOrEqual(2);
        expect(bad.shortest!.report.violations.map((v) => v.kind)).toContain("kvmSpteUseAfterFree");
      });
    }
  }

  it("retries are counted, and a retried fault finds the page gone", () => {
    let retries = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const r = runScenario(
        spec({ seed, touch: 0, op: { kind: "madvise" }, concurrentOp: { kind: "kvm-fault" } }),
      );
      expect(r.violations).toEqual([]);
      expect(r.finalState.problems).toEqual([]);
      const k = r.kvm!;
      retries += k.faultRetries;
      expect(k.sptesMapped + k.faultsNoPage).toBe(16);
    }
    expect(retries).toBeGreaterThan(0);
  });
});
