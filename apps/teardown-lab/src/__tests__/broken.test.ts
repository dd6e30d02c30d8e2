// The deliberately broken cases that do not depend on one gather design must be caught on every
// design, and the correct code on the same machine must stay silent.

import { encodedNrPagesV69 } from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import {
  BATCHED_PENDING_SKIPPED,
  BROKEN,
  MMU_NOTIFIER_SKIPPED,
  migrationCopyBeforeFlush,
  realOverrideOf,
} from "../broken.js";
import { runOne } from "../run.js";
import { validateScenario } from "../scenario.js";

const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

describe("huge-zero-as-thp (zap_huge_pmd without is_huge_zero_pmd)", () => {
  const c = BROKEN["huge-zero-as-thp"];
  for (const design of DESIGNS) {
    it(`is caught as ${c.expect} on ${design}; the real walk is silent`, () => {
      const s = c.scenario(c.seeds[0]);
      const broken = runOne(s, design, "generic", { override: c.override }).report;
      expect(broken.violations.map((v) => v.kind)).toEqual([c.expect]);
      expect(broken.violations[0].message).toMatch(/MAPCOUNT_UNDERFLOW/);
      const real = runOne(s, design, "generic", { override: realOverrideOf(c) }).report;
      expect(real.violations).toEqual([]);
      expect(real.finalState.problems).toEqual([]);
      // The real zap_huge_pmd frees the deposit and nothing else.
      expect(real.counters.walk.hugePmdsZapped).toBe(1);
      expect(real.counters.walk.depositsFreed).toBe(1);
      expect(real.dataFoliosFreed).toBe(0);
      expect(real.counters.gather.pagesQueued).toBe(0);
    });
  }

  it("its scenario maps the huge zero folio (read faults of a PMD-mapped 2M anon VMA)", () => {
    const s = c.scenario(c.seeds[0]);
    expect(s.vmas[0]).toMatchObject({ kind: "anon", pmd: true, readFraction: 1 });
  });
});

describe("pfnmap-no-tlb-entry (special PTEs of a VM_PFNMAP VMA left out of the flush range)", () => {
  const c = BROKEN["pfnmap-no-tlb-entry"];
  for (const design of DESIGNS) {
    it(`is caught as ${c.expect} on ${design}; the real walk is silent`, () => {
      const s = c.scenario(c.seeds[0]);
      const broken = runOne(s, design, "generic", { override: c.override }).report;
      expect(broken.violations.map((v) => v.kind)).toEqual([c.expect]);
      // The broken walk still clears all 16 PTEs; only the TLB range is missing.
      expect(broken.counters.walk.ptesCleared).toBe(16);
      const real = runOne(s, design, "generic", { override: realOverrideOf(c) }).report;
      expect(real.violations).toEqual([]);
      expect(real.finalState.problems).toEqual([]);
      expect(real.counters.walk.ptesCleared).toBe(16);
      // Device memory: no page queued, none freed; both CPUs' 16 translations invalidated.
      expect(real.counters.gather.pagesQueued).toBe(0);
      expect(real.dataFoliosFreed).toBe(0);
      expect(real.counters.cpu?.entriesInvalidated).toBe(32);
      // Broken: only the first page of the VMA is flushed, by the range pte_free_tlb adds (PAGE_SIZE at
      // the freed PTE table's address) — on both CPUs; the 15 other translations stay cached.
      expect(broken.counters.cpu?.entriesInvalidated).toBe(2);
    });
  }

  it("its scenario maps one 64K pfnmap VMA cached by two CPUs", () => {
    const s = c.scenario(c.seeds[0]);
    expect(s.vmas[0]).toMatchObject({ kind: "pfnmap", size: 64 * 1024 });
    expect(s.cpus).toBe(2);
  });
});

describe("arm64-last-level-after-free (arm64 tlb_flush with last_level forced after a table free)", () => {
  const c = BROKEN["arm64-last-level-after-free"];
  for (const design of DESIGNS) {
    it(`is caught as ${c.expect} on ${design}; the real arm64 flush is silent`, () => {
      const s = c.scenario(c.seeds[0]);
      const broken = runOne(s, design, "generic", { override: c.override }).report;
      expect(new Set(broken.violations.map((v) => v.kind))).toEqual(new Set([c.expect]));
      expect(broken.arch).toBe("arm64, last-level always");
      const real = runOne(s, design, "generic", { override: realOverrideOf(c) }).report;
      expect(real.violations).toEqual([]);
      expect(real.finalState.problems).toEqual([]);
      // 256 last-level TLBIs at the VMA end, then 3 for the tables: VAE1IS in the real flush.
      expect(real.counters.gather.tlbiVaOps).toBe(259);
    });
  }
});

describe("arm64 contpte: a block cleared in part without unfolding, or unfolded without its TLBI", () => {
  for (const name of ["arm64-contpte-no-unfold", "arm64-contpte-unfold-without-tlbi"] as const) {
    const c = BROKEN[name];
    for (const design of DESIGNS) {
      it(`${name} is caught as ${c.expect} on ${design}; the real arm64 adapter is silent`, () => {
        const s = c.scenario(c.seeds[0]);
        const broken = runOne(s, design, "generic", { override: c.override }).report;
        expect(new Set(broken.violations.map((v) => v.kind))).toEqual(new Set([c.expect]));
        const real = runOne(s, design, "generic", { override: realOverrideOf(c) }).report;
        expect(real.violations).toEqual([]);
        expect(real.finalState.problems).toEqual([]);
        // Both ends of [32K, 96K) fall inside a 16-PTE block: the real zap unfolds two blocks.
        expect(real.contpte?.unfolds).toBe(2);
      });
    }
  }
});

describe("batched-pending-skipped (zap_pte_range without flush_tlb_batched_pending, a migration racing)", () => {
  const c = BROKEN["batched-pending-skipped"];
  for (const arch of ["x86", "arm64"] as const) {
    for (const design of DESIGNS) {
      it(`is caught as ${c.expect} on ${arch} ${design}; the real walk is silent`, () => {
        const walk = BATCHED_PENDING_SKIPPED[design];
        let caught = 0;
        for (const seed of c.seeds) {
          const s = c.scenario(seed);
          const broken = runOne(s, design, arch, { override: { walk } }).report;
          if (broken.violations.some((v) => v.kind === c.expect)) caught++;
          expect(broken.counters.walk.batchedPendingFlushes).toBe(0);
          const real = runOne(s, design, arch).report;
          expect(real.violations).toEqual([]);
          expect(real.finalState.problems).toEqual([]);
          // The real walk met the migration entries and flushed the deferred flush first.
          expect(real.counters.walk.migrationPtesCleared).toBeGreaterThan(0);
          expect(real.counters.walk.batchedPendingFlushes).toBeGreaterThan(0);
        }
        expect(caught).toBe(c.seeds.length);
      });
    }
  }

  it("cannot happen where every PTE clear is flushed at once (generic, s390): no deferred flush", () => {
    for (const arch of ["generic", "s390"] as const) {
      const s = c.scenario(c.seeds[0]);
      const r = runOne(s, "encoded-nr-pages", arch, {
        override: { walk: BATCHED_PENDING_SKIPPED["encoded-nr-pages"] },
      }).report;
      expect(r.violations).toEqual([]);
      expect(r.migrate?.flushesDeferred).toBe(0);
    }
  });
});

describe("migration-copy-before-flush (migrate_pages_batch without try_to_unmap_flush)", () => {
  const c = BROKEN["migration-copy-before-flush"];
  for (const arch of ["x86", "arm64"] as const) {
    for (const design of DESIGNS) {
      it(`is caught as ${c.expect} on ${arch} ${design}; the real migration is silent`, () => {
        const s = c.scenario(c.seeds[0]);
        const broken = runOne(s, design, arch, { override: { migration: migrationCopyBeforeFlush } }).report;
        expect(broken.violations.map((v) => v.kind)).toContain(c.expect);
        const real = runOne(s, design, arch).report;
        expect(real.violations).toEqual([]);
        expect(real.finalState.problems).toEqual([]);
        expect(real.migrate?.batchFlushes).toBeGreaterThan(0);
      });
    }
  }
});

describe("mmu-notifier-skipped (unmap_vmas without mmu_notifier_invalidate_range_start/end)", () => {
  const c = BROKEN["mmu-notifier-skipped"];
  for (const arch of ["generic", "s390", "x86", "arm64"] as const) {
    for (const design of DESIGNS) {
      it(`is caught as ${c.expect} on ${arch} ${design}; the real walk is silent`, () => {
        const s = c.scenario(c.seeds[0]);
        const broken = runOne(s, design, arch, { override: { walk: MMU_NOTIFIER_SKIPPED[design] } }).report;
        expect(broken.violations.map((v) => v.kind)).toContain(c.expect);
        const real = runOne(s, design, arch).report;
        expect(real.violations).toEqual([]);
        expect(real.finalState.problems).toEqual([]);
        expect(real.kvm?.sptesZapped).toBe(16);
      });
    }
  }
});

describe("kvm-fault-no-retry (KVM maps a page without mmu_invalidate_retry_gfn)", () => {
  const c = BROKEN["kvm-fault-no-retry"];
  for (const design of DESIGNS) {
    it(`is caught as ${c.expect} on ${design} on every listed seed; the real fault path is silent`, () => {
      for (const seed of c.seeds) {
        const s = c.scenario(seed);
        const broken = runOne(s, design, "generic", { override: c.override }).report;
        expect(broken.violations.map((v) => v.kind)).toContain(c.expect);
        const real = runOne(s, design, "generic").report;
        expect(real.violations).toEqual([]);
        expect(real.finalState.problems).toEqual([]);
      }
    });
  }
});

describe("deferred-split-fully-unmapped (the 6.18 design on v6.9's rmap, without the partially-mapped gate)", () => {
  const c = BROKEN["deferred-split-fully-unmapped"];
  const s = c.scenario(c.seeds[0]);

  it(`is caught as ${c.expect} once per whole mTHP the munmap zaps; the real rmap is silent and queues none`, () => {
    const broken = runOne(s, "encoded-nr-pages", "generic", { override: c.override }).report;
    // 1 MiB of 64K folios: 16 folios, each unmapped in one folio_remove_rmap_ptes call and queued.
    expect(broken.violations.map((v) => v.kind)).toEqual(new Array(16).fill(c.expect));
    expect(broken.counters.folio.deferredSplitQueued).toBe(16);
    expect(broken.finalState.problems).toEqual([]);
    const real = runOne(s, "encoded-nr-pages", "generic", { override: realOverrideOf(c) }).report;
    expect(real.violations).toEqual([]);
    expect(real.counters.folio.deferredSplitQueued).toBe(0);
    // Same teardown otherwise: every folio freed, the same rmap and flush work.
    expect(real.dataFoliosFreed).toBe(broken.dataFoliosFreed);
    expect(real.counters.folio.largeMapcountAtomics).toBe(broken.counters.folio.largeMapcountAtomics);
  });

  it("a partial munmap under v6.18 queues the folios it leaves mapped in part, silently", () => {
    // [32K, 96K) of a 1M VMA of 64K folios: the second half of folio 0 and the first half of folio 1.
    const part = validateScenario(
      {
        name: "partial",
        cpus: 1,
        vmas: [{ name: "heap", kind: "anon", size: "1M", folio: "64K" }],
        op: { kind: "munmap", vma: 0, offset: "32K", length: "64K" },
      },
      "test",
    );
    const r = runOne(part, "encoded-nr-pages", "generic").report;
    expect(r.violations).toEqual([]);
    expect(r.counters.folio.deferredSplitQueued).toBe(2);
  });

  it("is not held against the trees that predate the gate: v6.9 itself and mm-unstable of August 2023", () => {
    const v69 = runOne(s, "encoded-nr-pages", "generic", { override: { variant: encodedNrPagesV69 } }).report;
    expect(v69.violations).toEqual([]);
    expect(v69.counters.folio.deferredSplitQueued).toBe(16);
    for (const design of ["encoded-page", "contig-range"] as const) {
      const r = runOne(s, design, "generic", { override: c.override }).report;
      expect(r.violations).toEqual([]);
    }
  });

  it("a rmapPolicy that names no rule is a BAD_SPEC naming the field", () => {
    expect(() =>
      runOne(s, "encoded-nr-pages", "generic", { override: { rmapPolicy: "v6.1" as never } }),
    ).toThrow(/rmapPolicy must be "v6.9" or "v6.18"/);
  });
});

describe("khugepaged's retract: collapse-flush-skips-lazy (x86 4.19–2025) and collapse-table-freed-at-once (before 6.1)", () => {
  for (const name of ["collapse-flush-skips-lazy", "collapse-table-freed-at-once"] as const) {
    const c = BROKEN[name];
    for (const design of DESIGNS) {
      it(`${name} is caught as ${c.expect} on ${design}; the real collapse is silent`, () => {
        const s = c.scenario(c.seeds[0]);
        const broken = runOne(s, design, "generic", { override: c.override }).report;
        expect(broken.violations.map((v) => v.kind)).toContain(c.expect);
        expect(broken.khugepaged!.tablesRetracted).toBeGreaterThan(0);
        const real = runOne(s, design, "generic", { override: realOverrideOf(c) }).report;
        expect(real.violations).toEqual([]);
        expect(real.finalState.problems).toEqual([]);
        expect(real.khugepaged!.tablesRetracted).toBe(broken.khugepaged!.tablesRetracted);
      });
    }
  }

  // (s390, whose PMD maps 1M, is checked in the teardown package's own test.)
  it("the lazy-skipping flush is harmless where invalidations reach every CPU (arm64)", () => {
    const c = BROKEN["collapse-flush-skips-lazy"];
    const s = c.scenario(c.seeds[0]);
    for (const arch of ["arm64"] as const) {
      const { arch: _x86, ...broken } = c.override;
      const r = runOne(s, "encoded-nr-pages", arch, { override: broken }).report;
      expect(r.violations, arch).toEqual([]);
      expect(r.khugepaged!.tablesRetracted).toBe(1);
    }
  });

  it("the table freed without RCU is harmless where the flush is an IPI that waits for gup_fast (x86)", () => {
    const c = BROKEN["collapse-table-freed-at-once"];
    for (const seed of c.seeds) {
      const s = c.scenario(seed);
      const { arch: _arm64, ...broken } = c.override;
      expect(runOne(s, "encoded-nr-pages", "x86", { override: broken }).report.violations).toEqual([]);
    }
  });
});
