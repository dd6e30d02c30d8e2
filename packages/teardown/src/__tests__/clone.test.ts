// One build, many runs: a run on a copy of a built scenario (cloneBuilt) reports exactly what a run on
// a fresh build of its spec does, for random workloads with every actor, on every arch; running one
// copy changes neither another copy nor the original; a copy into a used copy is as good as a new one.
// sharesBuild says yes only where the build cannot tell the specs apart.
import { arm64Arch } from "@mmgather/arch-arm64";
import { genericArch } from "@mmgather/arch-generic";
import { s390Arch } from "@mmgather/arch-s390";
import { type ArchTlb, defineArch, encodedNrPagesFor } from "@mmgather/mmu-gather";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type BuiltScenario,
  buildScenario,
  cloneBuilt,
  createMachine,
  isTeardownError,
  runBuilt,
  runScenario,
  type ScenarioSpec,
  sharesBuild,
  type TeardownReport,
} from "../index.js";

const LONG = process.env.MMGATHER_LONG === "1";
const DESIGNS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;
/**
 * Generic's page tables with x86's gather rules (VMAs merged into one flush, broadcast flushes that
 * interrupt no CPU): another arch whose build is generic's, so runs on it may start from generic's.
 */
const x86Like = defineArch({
  name: "generic-merge-vmas",
  mergeVmas: true,
  tlbFlushIpi: false,
  fullFlushCeiling: 33,
  geometry: genericArch.geometry,
});
const ARCHES: readonly ArchTlb[] = [genericArch, x86Like, s390Arch, arm64Arch];

/** The report without the simulator's own wall time (the only field that may differ between runs). */
function comparable(r: TeardownReport): Omit<TeardownReport, "simWallNs"> {
  const { simWallNs: _, ...rest } = r;
  return rest;
}

/** A run's report, or what the model refused (a spec refused at run time is refused on a copy too). */
function outcome(run: () => TeardownReport): Omit<TeardownReport, "simWallNs"> | { refused: string } {
  try {
    return comparable(run());
  } catch (e) {
    if (isTeardownError(e)) return { refused: e.message };
    throw e;
  }
}

/** Everything of a built machine a run could read, as one string: memory, swap, tables, TLBs, ids. */
function digest(b: BuiltScenario): string {
  const m = b.machine;
  const parts: unknown[] = [
    m.mem.stateDigest(),
    m.mem.freeBlockList(),
    { ...m.mem.counters },
    m.swap?.stateDigest() ?? null,
    m.swap === null ? null : { ...m.swap.counters },
    m.stateBytes(),
    m.freed,
    [m.zeroPfn, m.hugeZeroFolio, m.hugeZeroRefcount, m.nextVmaId, m.nextAnonVma],
    [...m.iMmap].map(([k, l]) => [k, l.map((e) => [e.mm.id, e.vma.id, e.vma.start, e.vma.end])]),
    m.checker === null
      ? null
      : [m.checker.violations, m.checker.trail(), m.checker.ptlHeld, [...m.checker.dirtyFile]],
    m.tlbs === null
      ? null
      : [[...m.tlbs.tlbVpn], [...m.tlbs.hazardRefs], [...m.tlbs.walkRefs], [...m.tlbs.cpuMm]],
    b.rng.clone().next(),
  ];
  for (const mm of m.mms)
    parts.push([
      mm.id,
      mm.dead,
      [...mm.rss],
      mm.vmas.map((v) => ({ ...v })),
      mm.pt.entries.map((t) => (t === null ? null : [...t])),
      [...mm.pt.tablePfn],
      [...mm.pt.tableLevel],
      [mm.pt.allocated, ...mm.pt.nrTables],
      mm.deposits.map((d) => (d === null ? null : [...d])),
      mm.ptlAcquisitions,
      { ...mm.tlbMm },
    ]);
  return JSON.stringify(parts);
}

describe("cloneBuilt: a copy runs as a fresh build", () => {
  it(`random workloads, every actor, every arch (${LONG ? 300 : 25} cases)`, () => {
    const vmaArb = fc.record({
      kind: fc.constantFrom("anon", "file-shared", "file-private", "shmem", "pfnmap" as const),
      tables: fc.integer({ min: 1, max: 2 }),
      order: fc.constantFrom(0, 2, 4, 9),
      pmd: fc.boolean(),
      dirty: fc.double({ min: 0, max: 1, noNaN: true }),
      swap: fc.double({ min: 0, max: 0.6, noNaN: true }),
      keep: fc.boolean(),
      mlock: fc.boolean(),
      read: fc.constantFrom(0, 0.3),
      shared: fc.constantFrom(1, 1, 0.5),
    });
    const tally = { cases: 0, cells: 0, crossArch: 0, buildOps: 0 };
    fc.assert(
      fc.property(
        fc.array(vmaArb, { minLength: 1, maxLength: 3 }),
        fc.constantFrom("exit", "munmap", "madvise" as const),
        fc.constantFrom(
          "none",
          "munmap",
          "madvise",
          "writeback",
          "swapoff",
          "numa",
          "revoke",
          "migrate",
          "kvm-fault" as const,
        ),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 1, max: 1e6 }),
        fc.boolean(),
        fc.integer({ min: 0, max: ARCHES.length - 1 }),
        fc.constantFrom("6.18", "6.9" as const),
        fc.constantFrom(0, 0, 1),
        (vs, op, second, cpus, seed, fork, archIndex, kernel, exitedChildren) => {
          const arch = ARCHES[archIndex];
          const span = 2 ** arch.geometry.pageShift * arch.geometry.ptrsPerPte;
          const pmdOrder = arch.geometry.pmdOrder;
          const fileVma = vs.findIndex((v) => v.kind === "file-shared" || v.kind === "file-private");
          const pfnVma = vs.findIndex((v) => v.kind === "pfnmap");
          let kind: string = second;
          if (kind === "writeback" && fileVma < 0) kind = "swapoff";
          if (kind === "revoke" && pfnVma < 0) kind = "swapoff";
          const anonVma = vs.findIndex((v) => v.kind === "anon");
          if (kind === "migrate" && anonVma < 0) kind = "swapoff";
          if (
            op === "exit" &&
            (kind === "munmap" || kind === "madvise" || kind === "numa" || kind === "kvm-fault")
          )
            kind = "swapoff";
          const withCpus = cpus >= 2 ? cpus : 0;
          const second2 = kind === "none" ? 0 : 1;
          const lazy = withCpus > 1 + second2 ? seed % (withCpus - second2) : 0;
          const devices = withCpus > 0 && arch.invalidatesSecondaryTlbs ? (seed >> 3) % 2 : 0;
          const base = (variant: (typeof DESIGNS)[number], a: ArchTlb): ScenarioSpec => ({
            memory: 96 << 20,
            swap: 16 << 20,
            arch: a,
            seed,
            variant: variant === "encoded-nr-pages" ? encodedNrPagesFor(kernel) : variant,
            fork,
            exitedChildren,
            cpus: withCpus,
            lazyCpus: lazy,
            devices,
            // A KVM guest (its sptes are copied too): always for a vCPU fault, else now and then.
            kvm: withCpus > 0 && (kind === "kvm-fault" || (seed >> 6) % 3 === 0),
            gupFast: op !== "exit" && withCpus - lazy - 1 - second2 >= 1 ? (seed >> 5) % 2 : 0,
            vmas: vs.map((v) => {
              const pfn = v.kind === "pfnmap";
              const order = Math.min(v.order, pmdOrder);
              return {
                kind: v.kind as "anon",
                size: v.tables * span,
                folio: pfn
                  ? { order: 0 }
                  : {
                      mix: [
                        { order: 0, weight: 1 },
                        { order: v.kind === "anon" && order === 1 ? 0 : order, weight: 2 },
                      ],
                    },
                pmdMapped: !pfn && v.pmd && !(kind === "writeback" && v.kind !== "anon"),
                dirtyFraction: v.kind === "anon" || pfn ? 0 : v.dirty,
                swapFraction: v.kind === "anon" ? v.swap : 0,
                keepInSwapCache: v.keep,
                mlock: v.mlock,
                readFraction: v.kind === "anon" ? v.read : undefined,
                sharedFraction:
                  fork && (v.kind === "anon" || v.kind === "file-private") ? v.shared : undefined,
              };
            }),
            op: op === "exit" ? { kind: "exit" } : { kind: op, vma: 0, offset: 4096 * (seed % 17) },
            concurrentOp:
              kind === "none"
                ? undefined
                : kind === "writeback"
                  ? { kind, vma: fileVma }
                  : kind === "revoke"
                    ? { kind, vma: pfnVma, length: span }
                    : kind === "swapoff"
                      ? { kind }
                      : kind === "numa" || kind === "kvm-fault"
                        ? { kind, vma: vs.length - 1 }
                        : kind === "migrate"
                          ? { kind, vma: anonVma }
                          : { kind: kind as "munmap", vma: vs.length - 1, length: 4096 * (1 + (seed % 300)) },
          });
          const first = base(DESIGNS[seed % 3], arch);
          let b: BuiltScenario;
          try {
            b = buildScenario(first);
          } catch (e) {
            // A spec the model refuses is refused the same way by every design: nothing to copy.
            if (isTeardownError(e)) return;
            throw e;
          }
          tally.cases++;
          const before = digest(b);
          const cells = ARCHES.flatMap((a) => DESIGNS.map((d) => base(d, a))).filter((s) =>
            sharesBuild(first, s),
          );
          if (first.exitedChildren !== 0 || vs.some((v) => v.shared !== 1)) tally.buildOps++;
          for (const spec of cells) {
            tally.cells++;
            if (spec.arch !== arch) tally.crossArch++;
            const fresh = outcome(() => runScenario(spec));
            const one = cloneBuilt(b, spec);
            const two = cloneBuilt(b, spec);
            // The copy holds the original's state, field for field.
            expect(digest(two)).toBe(before);
            expect(outcome(() => runBuilt(one, spec))).toEqual(fresh);
            // `two` was copied before `one` ran: running `one` did not reach it.
            expect(outcome(() => runBuilt(two, spec))).toEqual(fresh);
            // Copying into a used copy's arrays restores every bit of it.
            const again = cloneBuilt(b, spec, one);
            expect(again.machine).toBe(one.machine);
            expect(outcome(() => runBuilt(again, spec))).toEqual(fresh);
          }
          // No run reached the original either.
          expect(digest(b)).toBe(before);
          expect(outcome(() => runBuilt(b, first))).toEqual(outcome(() => runScenario(first)));
        },
      ),
      { numRuns: LONG ? 300 : 25, seed: 11 },
    );
    // The generators reach copies across arches and builds that run operations of their own.
    expect(tally.cases).toBeGreaterThan(15);
    expect(tally.crossArch).toBeGreaterThan(0);
    expect(tally.buildOps).toBeGreaterThan(0);
    if (LONG) console.log("clone tally", tally);
  }, 600_000);
});

describe("sharesBuild", () => {
  const spec: ScenarioSpec = {
    memory: 64 << 20,
    seed: 3,
    cpus: 2,
    vmas: [{ kind: "anon", size: 4 << 20, folio: { order: 4 } }],
    op: { kind: "munmap", vma: 0 },
  };

  it("every design, and arches whose build is the same", () => {
    for (const v of DESIGNS) expect(sharesBuild(spec, { ...spec, variant: v, walk: undefined })).toBe(true);
    // The same 4-level 4 KiB tables and no PTE-aware set_ptes.
    expect(sharesBuild({ ...spec, arch: genericArch }, { ...spec, arch: x86Like })).toBe(true);
    // A cost profile shapes the report, not the build.
    expect(sharesBuild(spec, { ...spec, costProfile: s390Arch.cost })).toBe(true);
  });

  it("no when anything the build reads differs", () => {
    expect(sharesBuild(spec, { ...spec, seed: 4 })).toBe(false);
    expect(sharesBuild(spec, { ...spec, cpus: 3 })).toBe(false);
    expect(sharesBuild(spec, { ...spec, vmas: [{ ...spec.vmas[0], folio: { order: 2 } }] })).toBe(false);
    // The range of the operation places gup_fast walkers.
    expect(sharesBuild(spec, { ...spec, op: { kind: "munmap", vma: 0, offset: 4096 } })).toBe(false);
    // s390: 1 MiB PMDs, other tables. arm64: contpte folds blocks when faulting.
    expect(sharesBuild(spec, { ...spec, arch: s390Arch })).toBe(false);
    expect(sharesBuild(spec, { ...spec, arch: arm64Arch })).toBe(false);
    // The v6.9 nr-pages design runs the v6.9 rmap (MachineConfig.rmapPolicy).
    expect(sharesBuild(spec, { ...spec, variant: encodedNrPagesFor("6.9") })).toBe(false);
  });

  it("a build that tears down on its own shares only its variant, walk and arch", () => {
    const exiting = { ...spec, exitedChildren: 1, variant: "encoded-page" as const };
    expect(sharesBuild(exiting, { ...exiting })).toBe(true);
    expect(sharesBuild(exiting, { ...exiting, variant: "contig-range" })).toBe(false);
    expect(sharesBuild(exiting, { ...exiting, arch: x86Like })).toBe(false);
  });
});

describe("cloneBuilt refuses", () => {
  it("a spec whose build differs, and a copy on another arch as `into`", () => {
    const spec: ScenarioSpec = {
      memory: 64 << 20,
      vmas: [{ kind: "anon", size: 2 << 20 }],
      op: { kind: "exit" },
    };
    const b = buildScenario(spec);
    expect(() => cloneBuilt(b, { ...spec, seed: 9 })).toThrow(/sharesBuild/);
    const onOther = cloneBuilt(b, { ...spec, arch: x86Like });
    expect(onOther.machine.arch).toBe(x86Like);
    expect(() => cloneBuilt(b, spec, onOther)).toThrow(/another arch/);
    // A machine of another size cannot take the state.
    expect(() => createMachine({ memoryBytes: 32 << 20 }).copyFrom(b.machine)).toThrow(/memory/);
  });
});
