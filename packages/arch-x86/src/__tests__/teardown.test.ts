// x86 under the teardown model's CPUs and safety checker (@mmgather/teardown): the lazy-TLB rule of
// native_flush_tlb_multi, the INVLPGB path's reach and its reliance on RCU table freeing, and the
// broken variant — an x86 flush that leaves lazy CPUs out even after freeing page tables — built from
// the public API alone and caught on every gather design.

import { type ArchTlb, defineArch, withTlbOps } from "@mmgather/mmu-gather";
import { runScenario, type ScenarioSpec } from "@mmgather/teardown";
import { describe, expect, it } from "vitest";
import { x86Arch, x86InvlpgbArch } from "../index.js";

const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

/** `base` with its flush_tlb_func IPIs never sent to lazy-TLB CPUs, freed page tables or not. */
function skipsLazyAlways(base: ArchTlb): ArchTlb {
  return defineArch({
    ...base,
    name: `${base.name}, skips lazy CPUs`,
    tlbFlush(tlb, ops) {
      base.tlbFlush(
        tlb,
        withTlbOps(ops, {
          flushTlbFunc: (start, end, stride, walkCaches, cpus) =>
            ops.flushTlbFunc(
              start,
              end,
              stride,
              walkCaches,
              cpus.filter((c) => !tlb.mm.lazyCpus.includes(c)),
            ),
        }),
      );
    },
  });
}

const kinds = (r: ReturnType<typeof runScenario>) => [...new Set(r.violations.map((v) => v.kind))];

describe("lazy-TLB CPUs (the scenario shape of teardown's safety tests)", () => {
  // 4 CPUs run the process; the last 2 switched to kernel threads (lazy TLB) before the operation.
  const spec = (
    arch: ArchTlb,
    variant: ScenarioSpec["variant"],
    op: "munmap" | "madvise" = "munmap",
  ): ScenarioSpec => ({
    memory: 32 << 20,
    cpus: 4,
    lazyCpus: 2,
    arch,
    variant,
    vmas: [{ kind: "anon", size: 4 << 20 }],
    op: { kind: op },
  });

  for (const variant of DESIGNS) {
    it(`${variant}: leaving lazy CPUs out after munmap freed page tables is caught; x86Arch is silent`, () => {
      const ok = runScenario(spec(x86Arch, variant));
      expect(ok.violations).toEqual([]);
      // munmap frees the range's page tables: every flush that follows reaches the lazy CPUs too.
      expect(ok.shootdown.lazyCpusSkipped).toBe(0);
      expect(ok.shootdown.ipis).toBeGreaterThan(0);
      const broken = runScenario(spec(skipsLazyAlways(x86Arch), variant));
      expect(kinds(broken)).toEqual(["tableFreedWhileWalkable"]);
      expect(broken.shootdown.lazyCpusSkipped).toBeGreaterThan(0);
      expect(broken.violations[0].message).toMatch(/freed while a CPU's walk cache can still reach it/);
    });
  }

  it("MADV_DONTNEED frees no page table: the lazy CPUs are left out of every flush, and that is safe", () => {
    const r = runScenario(spec(x86Arch, "encoded-nr-pages", "madvise"));
    expect(r.violations).toEqual([]);
    const flushes = r.counters.gather.tlbFlushRange + r.counters.gather.tlbFlushMm;
    expect(flushes).toBeGreaterThan(0);
    expect(r.shootdown).toEqual({ ipis: flushes, cpusTargeted: 2 * flushes, lazyCpusSkipped: 2 * flushes });
  });

  it("the CPU model sees only the CPUs a flush targets: fewer remote flushes than the generic adapter's", () => {
    const x86 = runScenario(spec(x86Arch, "encoded-nr-pages", "madvise"));
    const generic = runScenario({ ...spec(x86Arch, "encoded-nr-pages", "madvise"), arch: undefined });
    expect(generic.violations).toEqual([]);
    expect(x86.counters.cpu!.remoteCpuFlushes).toBeLessThan(generic.counters.cpu!.remoteCpuFlushes);
  });
});

describe("INVLPGB: a broadcast reaches every CPU, waits for no gup_fast walk, needs RCU table free", () => {
  // 6 CPUs, CPU 5 lazy: 5 active (> 3) gives the mm a global ASID. Threads on CPUs 1 and 2 are inside
  // gup_fast over the range munmap frees the page tables of.
  const spec = (arch: ArchTlb, variant: ScenarioSpec["variant"]): ScenarioSpec => ({
    memory: 32 << 20,
    cpus: 6,
    lazyCpus: 1,
    gupFast: 2,
    arch,
    variant,
    vmas: [{ kind: "anon", size: 4 << 20 }],
    op: { kind: "munmap" },
  });
  const walkEnds = (arch: ArchTlb, variant: ScenarioSpec["variant"]) => {
    const ends: string[] = [];
    const r = runScenario({
      ...spec(arch, variant),
      events: (e) => {
        if (e.type === "locklessWalkDone") ends.push(e.by);
      },
    });
    return { r, ends };
  };

  for (const variant of DESIGNS) {
    it(`${variant}: INVLPGB + TLBSYNC and no IPI; the walks end at the grace period, the lazy CPU is flushed`, () => {
      const { r, ends } = walkEnds(x86InvlpgbArch, variant);
      expect(r.violations).toEqual([]);
      expect(ends).toEqual(["gracePeriod", "gracePeriod"]);
      const g = r.counters.gather;
      expect(g.invlpgb).toBeGreaterThan(0);
      expect(g.tlbsync).toBeGreaterThan(0);
      expect([g.tlbIpis, g.tlbFlushRange, g.tlbFlushMm, g.tlbLazyCpusSkipped]).toEqual([0, 0, 0, 0]);
      expect(g.tlbCpusTargeted).toBe(6 * g.tlbsync);
      expect(r.tlbFlushes).toMatchObject({ invlpgb: g.invlpgb, tlbsync: g.tlbsync });
      // No IPI round trip to price: the broadcast's cost is its instructions.
      expect(r.counters.cpu!.remoteCpuFlushes).toBe(0);
      expect(r.counters.cpu!.invalidations.invlpgb).toBe(g.invlpgb);
      expect(r.estimate.terms.tlbRemoteCpu).toBe(0);
      expect(r.estimate.terms.invlpgb).toBe(g.invlpgb * x86InvlpgbArch.cost.invlpgb);
      expect(r.estimate.terms.tlbsync).toBe(g.tlbsync * x86InvlpgbArch.cost.tlbsync);
    });

    it(`${variant}: the same INVLPGB adapter freeing page tables without RCU frees a table under a walk`, () => {
      const direct = defineArch({
        ...x86InvlpgbArch,
        name: "x86-invlpgb, tables freed directly",
        tableFree: "direct",
      });
      expect(kinds(walkEnds(direct, variant).r)).toEqual(["tableFreedUnderGupFast"]);
    });
  }

  it("without INVLPGB the same munmap IPIs every CPU, and each IPI waits out a walk", () => {
    const { r, ends } = walkEnds(x86Arch, "encoded-nr-pages");
    expect(r.violations).toEqual([]);
    expect(ends).toEqual(["flushIpi", "flushIpi"]);
    expect(r.counters.gather.invlpgb).toBe(0);
    expect(r.counters.gather.tlbIpis).toBeGreaterThan(0);
    expect(r.estimate.terms.invlpgb + r.estimate.terms.tlbsync).toBe(0);
  });

  it("an INVLPGB that keeps the paging-structure caches (FINAL_ONLY) after tables were freed is caught", () => {
    // v6.18 sets no INVLPGB_FLAG_FINAL_ONLY; a version that always did would leave every CPU's walk
    // cache pointing at the freed tables (the unmerged v11 12/12 of the series set it only without
    // freed_tables).
    const finalOnly = defineArch({
      ...x86InvlpgbArch,
      name: "x86-invlpgb, final translations only",
      tlbFlush(tlb, ops) {
        x86InvlpgbArch.tlbFlush(
          tlb,
          withTlbOps(ops, { invlpgb: (start, end, stride) => ops.invlpgb(start, end, stride, false) }),
        );
      },
    });
    for (const variant of DESIGNS) {
      const r = runScenario({ ...spec(finalOnly, variant), gupFast: 0 });
      expect(kinds(r)).toEqual(["tableFreedWhileWalkable"]);
      expect(r.counters.gather.invlpgb).toBeGreaterThan(0);
      expect(runScenario({ ...spec(x86InvlpgbArch, variant), gupFast: 0 }).violations).toEqual([]);
    }
  });
});

describe("devices sharing the page tables (mmu_notifier_arch_invalidate_secondary_tlbs)", () => {
  for (const arch of [x86Arch, x86InvlpgbArch])
    it(`${arch.name}: every flush path tells the devices; munmap and exit leave no device translation to freed memory`, () => {
      for (const op of ["munmap", "exit"] as const) {
        const r = runScenario({
          memory: 32 << 20,
          cpus: 5,
          devices: 1,
          arch,
          variant: "encoded-nr-pages",
          vmas: [{ kind: "anon", size: 1 << 20 }],
          op: { kind: op },
        });
        expect(r.violations).toEqual([]);
        if (op === "munmap") expect(r.counters.cpu!.secondaryTlbInvalidations).toBeGreaterThan(0);
      }
    });
});
