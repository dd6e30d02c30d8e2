// The differential check's library side (differential.ts): randomScenario draws one valid spec per
// (seed, index) covering every actor, arch, operation and knob; runDifferential runs it on the three
// designs, compares, and says so when a design is broken.
import { arm64Arch } from "@mmgather/arch-arm64";
import { genericArch } from "@mmgather/arch-generic";
import { s390Arch } from "@mmgather/arch-s390";
import { defineArch, TLB_FLUSH_ALL } from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import {
  buildScenario,
  CASE_KNOBS,
  CONCURRENT_ACTORS,
  caseFeatures,
  DIFFERENTIAL_DESIGNS,
  defineZapWalk,
  folioBatchWalk,
  randomScenario,
  runDifferential,
  type ScenarioSpec,
} from "../index.js";

/** x86's flush (IPIs, lazy CPUs left out unless tables were freed) as the safety tests build it. */
const x86Like = defineArch({
  name: "x86-like",
  fullFlushCeiling: 33,
  tlbFlush(tlb, ops) {
    const cpus = tlb.freedTables
      ? tlb.mm.cpumask
      : tlb.mm.cpumask.filter((c) => !tlb.mm.lazyCpus.includes(c));
    if (tlb.fullmm || tlb.needFlushAll) {
      ops.flushMm(tlb.freedTables, cpus);
      ops.invalidateSecondaryTlbs(0, TLB_FLUSH_ALL);
    } else if (tlb.end > 0) {
      if (tlb.end - tlb.start > 33 * 4096) ops.flushMm(tlb.freedTables, cpus);
      else ops.flushRange(tlb.start, tlb.end, 4096, tlb.freedTables, cpus);
      ops.invalidateSecondaryTlbs(tlb.start, tlb.end);
    }
  },
});
const ARCHES = [genericArch, s390Arch, x86Like, arm64Arch];

/** A spec as JSON, its arch by name (adapters hold functions). */
const text = (s: ScenarioSpec) => JSON.stringify({ ...s, arch: s.arch?.name });

describe("randomScenario", () => {
  it("is a function of (seed, index): the same spec whatever was drawn before, another for another seed", () => {
    const forward = Array.from({ length: 40 }, (_, i) => text(randomScenario(9, i, { arches: ARCHES })));
    for (let i = 39; i >= 0; i--) expect(text(randomScenario(9, i, { arches: ARCHES }))).toBe(forward[i]);
    expect(new Set(forward).size).toBe(40);
    const other = Array.from({ length: 40 }, (_, i) => text(randomScenario(10, i, { arches: ARCHES })));
    expect(other.filter((t, i) => t === forward[i])).toEqual([]);
    // One arch: every case on it.
    for (let i = 0; i < 20; i++) expect(randomScenario(9, i, { arches: [s390Arch] }).arch).toBe(s390Arch);
  });

  it("refuses a seed or index out of range with a typed error", () => {
    for (const [seed, index] of [
      [-1, 0],
      [2 ** 32, 0],
      [1.5, 0],
      [0, -1],
      [0, 2 ** 31],
    ])
      expect(() => randomScenario(seed, index)).toThrow(expect.objectContaining({ code: "BAD_SPEC" }));
    expect(() => randomScenario(1, 0, { arches: [] })).toThrow(/arches is empty/);
  });

  it("300 cases: every one valid and silent on every design; every actor, arch, op and knob reached", () => {
    const tally = new Map<string, number>();
    const add = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
    let placementFree = 0;
    for (let i = 0; i < 300; i++) {
      const spec = randomScenario(1, i, { arches: ARCHES });
      const r = runDifferential(spec);
      expect(r.refused, `case ${i}: ${text(spec)}`).toBe(false);
      expect(r.passed && r.silent, `case ${i}: ${text(spec)}`).toBe(true);
      if (r.agreementRequired) expect(r.agree, `case ${i}: ${text(spec)}`).toBe(true);
      expect(r.features).toEqual(caseFeatures(spec));
      add(`arch:${r.features.arch}`);
      add(`op:${r.features.op}`);
      add(`actor:${r.features.actor}`);
      for (const k of r.features.knobs) add(k);
      if (r.outcomes[0].comparison === "placement-free") placementFree++;
      expect(r.outcomes.every((o) => o.checked)).toBe((spec.cpus ?? 0) > 0);
    }
    for (const a of ARCHES) expect(tally.get(`arch:${a.name}`), a.name).toBeGreaterThan(40);
    for (const op of ["exit", "munmap", "madvise"]) expect(tally.get(`op:${op}`), op).toBeGreaterThan(30);
    for (const a of ["none", ...CONCURRENT_ACTORS.map((x) => x.kind)])
      expect(tally.get(`actor:${a}`), a).toBeGreaterThan(20);
    for (const k of CASE_KNOBS) expect(tally.get(k), k).toBeGreaterThan(5);
    // Placement-free exactly next to the actors that allocate (swapoff's read-ins, migration's new folios).
    const allocating = CONCURRENT_ACTORS.filter((x) => x.allocates).map(
      (x) => tally.get(`actor:${x.kind}`) ?? 0,
    );
    expect(placementFree).toBe(allocating.reduce((a, b) => a + b, 0));
  }, 120_000);
});

describe("runDifferential", () => {
  const spec: ScenarioSpec = {
    memory: 32 << 20,
    cpus: 2,
    vmas: [{ kind: "anon", size: 2 << 20, folio: { order: 4 } }],
    op: { kind: "madvise", vma: 0, offset: 64 << 10, length: 512 << 10 },
  };

  it("the three designs agree on a clean run; each outcome says what was compared", () => {
    const r = runDifferential(spec);
    expect(r.outcomes.map((o) => o.design)).toEqual(DIFFERENTIAL_DESIGNS.map((d) => d.name));
    expect(r.groups).toEqual([DIFFERENTIAL_DESIGNS.map((d) => d.name)]);
    expect({ agree: r.agree, silent: r.silent, refused: r.refused, differsIn: r.differsIn }).toEqual({
      agree: true,
      silent: true,
      refused: false,
      differsIn: [],
    });
    for (const o of r.outcomes) expect(o).toMatchObject({ comparison: "exact", refused: null, error: null });
  });

  it("a broken design is found: it leaves a PTE of each range behind", () => {
    const leaveLast = defineZapWalk(folioBatchWalk, {
      name: "leaves-last-pte",
      steps: {
        zapPtes(ctx, t, base, from, to) {
          const end = to - from > 1 ? to - 1 : to;
          const reached = folioBatchWalk.steps.zapPtes(ctx, t, base, from, end);
          return reached < end ? reached : to;
        },
      },
    });
    const r = runDifferential(spec, {
      designs: [
        ...DIFFERENTIAL_DESIGNS.slice(0, 2),
        { name: "leaves-last-pte", override: { variant: "encoded-nr-pages", walk: leaveLast } },
      ],
    });
    expect(r.silent).toBe(false);
    expect(r.agree).toBe(false);
    expect(r.groups).toEqual([["encoded-page", "contig-range"], ["leaves-last-pte"]]);
    expect(r.differsIn).toEqual(["folio"]);
    expect(r.outcomes[2].violations.map((v) => v.kind)).toContain("presentAfterReturn");
  });

  it("MADV_DONTNEED of a VM_LOCKED VMA is refused alike by every design: the case is skipped", () => {
    const r = runDifferential({ ...spec, vmas: [{ ...spec.vmas[0], mlock: true }] });
    expect(r.refused).toBe(true);
    expect(r.agree).toBe(true);
    for (const o of r.outcomes) expect(o.refused).toMatch(/VM_LOCKED/);
  });

  it("next to swapoff (which allocates while the teardown frees) the comparison is placement-free", () => {
    const r = runDifferential({
      ...spec,
      swap: 8 << 20,
      vmas: [{ ...spec.vmas[0], swapFraction: 0.5 }],
      concurrentOp: { kind: "swapoff" },
    });
    expect(r.outcomes.map((o) => o.comparison)).toEqual([
      "placement-free",
      "placement-free",
      "placement-free",
    ]);
    expect(r.agree && r.silent).toBe(true);
  });

  it("a spec that cannot be built throws, as runScenario does; fewer than two designs is refused", () => {
    expect(() => runDifferential({ ...spec, vmas: [] })).toThrow(/non-empty/);
    expect(() => runDifferential(spec, { designs: DIFFERENTIAL_DESIGNS.slice(0, 1) })).toThrow(/two designs/);
    expect(() => buildScenario(randomScenario(3, 3))).not.toThrow();
  });
});

describe("an actor whose outcome races the teardown (migration)", () => {
  it("must be silent; the designs' states may differ (a folio moved in one, put back in another)", () => {
    // A 1M folio of s390 straddling a VMA split: munmap takes one side while migration moves the folio;
    // whether it moves or is put back (-EAGAIN: the gather still holds pages) depends on the interleaving.
    const spec: ScenarioSpec = {
      memory: 38 << 20,
      swap: 4 << 20,
      arch: s390Arch,
      seed: 4260803945,
      cpus: 4,
      gupFast: 1,
      fork: true,
      vmas: [
        {
          kind: "anon",
          size: 3 << 20,
          folio: {
            mix: [
              { order: 0, weight: 1 },
              { order: 8, weight: 2 },
            ],
          },
          splitAt: 2312 << 10,
          sharedFraction: 0.71,
        },
      ],
      op: { kind: "munmap", vma: 0 },
      concurrentOp: { kind: "migrate", vma: 0, offset: 2104 << 10, length: 480 << 10 },
    };
    const r = runDifferential(spec);
    expect(r.agreementRequired).toBe(false);
    expect(r.silent).toBe(true);
    expect(r.passed).toBe(true);
  });
});
