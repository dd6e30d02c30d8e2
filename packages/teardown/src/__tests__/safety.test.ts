import { genericArch } from "@mmgather/arch-generic";
import { s390Arch } from "@mmgather/arch-s390";
import {
  type ArchTlb,
  contigRange,
  defineArch,
  defineVariant,
  encodedNrPages,
  encodedPage,
  TLB_FLUSH_ALL,
  withTlbOps,
} from "@mmgather/mmu-gather";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buildScenario,
  defineZapWalk,
  FREES_WITHOUT_RESCHED_BOUND,
  folioBatchWalk,
  PTE_PRESENT,
  perPteWalk,
  ptePfn,
  pteSwapEntry,
  resolveVariant,
  runBuilt,
  runDifferential,
  runScenario,
  type ScenarioSpec,
  type ViolationKind,
  walkForVariant,
  type ZapWalk,
} from "../index.js";

const shared: ScenarioSpec = {
  memory: 32 << 20,
  vmas: [
    { kind: "anon", size: 2 << 20 },
    { kind: "file-shared", size: 2 << 20, dirtyFraction: 1 },
  ],
  cpus: 2,
  op: { kind: "munmap", vma: 0, length: 6 << 20 },
};

function kinds(spec: ScenarioSpec): ViolationKind[] {
  return [...new Set(runScenario(spec).violations.map((v) => v.kind))];
}

/**
 * x86's should_flush_tlb: lazy-TLB CPUs are left out of a flush unless page tables were freed;
 * `skipLazyAlways` leaves them out every time (the bug).
 */
function x86LikeArch(skipLazyAlways: boolean): ArchTlb {
  return defineArch({
    name: skipLazyAlways ? "skips-lazy-always" : "x86-like",
    fullFlushCeiling: 33,
    tlbFlush(tlb, ops) {
      const skip = skipLazyAlways || !tlb.freedTables;
      const cpus = skip ? tlb.mm.cpumask.filter((c) => !tlb.mm.lazyCpus.includes(c)) : tlb.mm.cpumask;
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
}

/** A walk whose PTE loop stops one entry short of the end of each range it is given (an off-by-one). */
function leaveLastPte(base: ZapWalk): ZapWalk {
  return defineZapWalk(base, {
    name: `${base.name}-leaves-last-pte`,
    steps: {
      zapPtes(ctx, t, vbase, from, to) {
        const end = to - from > 1 ? to - 1 : to;
        const reached = base.steps.zapPtes(ctx, t, vbase, from, end);
        return reached < end ? reached : to;
      },
    },
  });
}

describe("no present entry after munmap / MADV_DONTNEED returns (presentAfterReturn)", () => {
  for (const variant of ["encoded-page", "contig-range", "encoded-nr-pages"] as const) {
    for (const arch of [genericArch, s390Arch]) {
      for (const op of ["munmap", "madvise"] as const) {
        it(`${variant} on ${arch.name}, ${op}: a walk that leaves the last PTE is caught; the real one is not`, () => {
          const spec: ScenarioSpec = {
            memory: 32 << 20,
            arch,
            variant,
            cpus: 1,
            vmas: [{ kind: "anon", size: 256 << 10, folio: { order: 2 } }],
            op: { kind: op },
          };
          expect(kinds(spec)).toEqual([]);
          const walk = leaveLastPte(walkForVariant(resolveVariant(variant)));
          const r = runScenario({ ...spec, walk });
          expect(r.violations.map((v) => v.kind)).toContain("presentAfterReturn");
          const v = r.violations.find((x) => x.kind === "presentAfterReturn")!;
          expect(v.message).toMatch(/returned with a present page-table entry at 0x/);
        });
      }
    }
  }
});

/** endPteTable that drops the page-table lock before the forced TLB flush (rmaps still under the lock). */
function flushAfterUnlock(base: ZapWalk): ZapWalk {
  return defineZapWalk(base, {
    name: `${base.name}-flush-after-unlock`,
    steps: {
      endPteTable(ctx) {
        const force = ctx.forceFlush;
        const table = ctx.lockedTable;
        ctx.unlock();
        if (force) ctx.tlb.flushMmuTlbonly();
        ctx.lock(table);
        if (force || ctx.deferAllRmaps) ctx.tlb.flushRmaps();
        ctx.unlock();
        if (force) {
          ctx.forceFlush = false;
          ctx.forceFromFull = false;
          ctx.tlb.flushMmu();
        }
      },
    },
  });
}

describe("a dirty shared PTE's TLB flush comes before its page-table lock is dropped (dirtyFlushAfterUnlock)", () => {
  for (const variant of ["encoded-page", "contig-range", "encoded-nr-pages"] as const) {
    it(`${variant}: flushing after the unlock is caught; the real walk is not`, () => {
      const spec: ScenarioSpec = {
        memory: 32 << 20,
        variant,
        cpus: 2,
        vmas: [{ kind: "file-shared", size: 64 << 10, dirtyFraction: 1 }],
        op: { kind: "munmap" },
      };
      expect(kinds(spec)).toEqual([]);
      const walk = flushAfterUnlock(walkForVariant(resolveVariant(variant)));
      const found = kinds({ ...spec, walk });
      expect(found).toContain("dirtyFlushAfterUnlock");
      // The rmaps stay under the lock and after the flush: only the new rule sees this bug.
      expect(found).not.toContain("rmapOutsidePtl");
      expect(found).not.toContain("dirtyRmapBeforeFlush");
    });
  }
  it("s390 invalidates each PTE as it clears it (IPTE): the same walk is harmless there", () => {
    const spec: ScenarioSpec = {
      memory: 32 << 20,
      arch: s390Arch,
      cpus: 2,
      vmas: [{ kind: "file-shared", size: 64 << 10, dirtyFraction: 1 }],
      op: { kind: "munmap" },
    };
    expect(kinds({ ...spec, walk: flushAfterUnlock(folioBatchWalk) })).not.toContain("dirtyFlushAfterUnlock");
  });
});

/** A walk that drops the first swap entry of each PTE range once more before the real zap drops it. */
function doubleSwapFree(base: ZapWalk): ZapWalk {
  return defineZapWalk(base, {
    name: `${base.name}-double-swap-free`,
    steps: {
      zapPtes(ctx, t, vbase, from, to) {
        for (let i = from; i < to; i++) {
          if (t[i] < 0) {
            ctx.swap!.freeSwapAndCache(pteSwapEntry(t[i]));
            break;
          }
        }
        return base.steps.zapPtes(ctx, t, vbase, from, to);
      },
    },
  });
}

describe("a guard failure deep in the model is a violation in checking mode (modelGuard)", () => {
  const spec = (
    variant: "encoded-page" | "contig-range" | "encoded-nr-pages",
    cpus: number,
  ): ScenarioSpec => ({
    memory: 32 << 20,
    swap: 8 << 20,
    cpus,
    variant,
    vmas: [{ kind: "anon", size: 256 << 10, swapFraction: 0.5 }],
    op: { kind: "munmap" },
  });
  for (const variant of ["encoded-page", "contig-range", "encoded-nr-pages"] as const) {
    it(`${variant}: a double swap free becomes a violation with its trail; the real walk is clean`, () => {
      expect(kinds(spec(variant, 1))).toEqual([]);
      const walk = doubleSwapFree(walkForVariant(resolveVariant(variant)));
      const r = runScenario({ ...spec(variant, 1), walk });
      expect(r.violations).toHaveLength(1);
      expect(r.violations[0].kind).toBe("modelGuard");
      expect(r.violations[0].message).toMatch(/already free.*\[DOUBLE_FREE\]/);
      expect(r.violations[0].trail.length).toBeGreaterThan(0);
      // The operation stopped half-way: the final state says so too.
      expect(r.finalState.problems.length).toBeGreaterThan(0);
      // Without the checker the guard's own error reaches the caller, as before.
      expect(() => runScenario({ ...spec(variant, 0), walk })).toThrow(/DOUBLE_FREE/);
    });
  }
});

describe("each zapped swap PTE releases exactly one swap count (final state, per entry)", () => {
  for (const variant of ["encoded-page", "contig-range", "encoded-nr-pages"] as const) {
    it(`${variant}: a count dropped twice for an entry a forked child still holds is found`, () => {
      // With a fork each swap entry has count 2: the extra drop takes it to 1 and the real one to 0
      // without any guard firing — only the per-entry recount sees the child's PTE holding a freed slot.
      const spec: ScenarioSpec = {
        memory: 32 << 20,
        swap: 8 << 20,
        fork: true,
        variant,
        vmas: [{ kind: "anon", size: 256 << 10, swapFraction: 0.5 }],
        op: { kind: "munmap" },
      };
      expect(runScenario(spec).finalState.problems).toEqual([]);
      const walk = doubleSwapFree(walkForVariant(resolveVariant(variant)));
      const problems = runScenario({ ...spec, walk }).finalState.problems;
      expect(problems.some((p) => /swap entry \d+: count 0, but 1 swap PTE\(s\) hold it/.test(p))).toBe(true);
    });
  }
});

describe("bounded work between reschedule points (freesWithoutResched)", () => {
  // 64 MiB of order-0 anon folios: 16384 frees, more than one capped gather holds.
  const big = (variant: ScenarioSpec["variant"], op: "exit" | "munmap" | "madvise"): ScenarioSpec => ({
    memory: 96 << 20,
    cpus: 1,
    variant,
    vmas: [{ kind: "anon", size: 64 << 20 }],
    op: { kind: op },
  });
  const knobs = (base: typeof encodedPage, capBatchCount: boolean, condReschedPerChunk: boolean) =>
    defineVariant(base, {
      name: `${base.name}-cap-${capBatchCount}-resched-${condReschedPerChunk}`,
      policy: { capBatchCount, condReschedPerChunk },
    });
  for (const base of [encodedPage, contigRange, encodedNrPages]) {
    it(`${base.name}: no cap and no cond_resched per chunk is caught; either one alone keeps the bound`, () => {
      for (const op of ["exit", "munmap", "madvise"] as const) {
        expect(kinds(big(base, op))).toEqual([]);
        const unbounded = runScenario(big(knobs(base, false, false), op));
        expect(unbounded.violations.map((v) => v.kind)).toEqual(["freesWithoutResched"]);
        expect(unbounded.violations[0].message).toContain(`more than ${FREES_WITHOUT_RESCHED_BOUND} folios`);
        // The cap alone (the kernel before 2022): one flush frees at most the ~10000 entries of a
        // full gather, the bound include/asm-generic/tlb.h states.
        const capOnly = runScenario(big(knobs(base, true, false), op));
        expect(capOnly.violations).toEqual([]);
        expect(capOnly.counters.gather.condResched).toBe(0);
        expect(capOnly.counters.gather.forcedFlushes.batchLimit).toBeGreaterThan(0);
        // cond_resched per chunk alone: one flush at the end, but ≤ 512 entries between reschedules.
        const reschedOnly = runScenario(big(knobs(base, false, true), op));
        expect(reschedOnly.violations).toEqual([]);
        expect(reschedOnly.counters.gather.forcedFlushes.batchLimit).toBe(0);
        expect(reschedOnly.counters.gather.condResched).toBeGreaterThanOrEqual(Math.ceil(16384 / 513));
      }
    });
  }

  it("s390 frees each page as it is zapped: zap_pmd_range's cond_resched bounds the work, the knobs do not matter", () => {
    const spec = { ...big(knobs(encodedNrPages, false, false), "exit"), arch: s390Arch };
    expect(runScenario(spec).violations).toEqual([]);
  });
});

describe("a put that leaves a live folio with fewer references than mappings (mapcountExceedsRefcount)", () => {
  /** A walk that drops one reference it does not own on the first large folio of each table. */
  function extraPut(base: ZapWalk): ZapWalk {
    return defineZapWalk(base, {
      name: `${base.name}-extra-put`,
      steps: {
        zapPtes(ctx, t, vbase, from, to) {
          for (let i = from; i < to; i++) {
            if ((t[i] & PTE_PRESENT) === 0) continue;
            const head = ctx.mem.folioHead(ptePfn(t[i]));
            if (ctx.mem.folioNrPages(head) > 1) {
              ctx.mem.folioPut(head);
              break;
            }
          }
          return base.steps.zapPtes(ctx, t, vbase, from, to);
        },
      },
    });
  }
  for (const variant of ["encoded-page", "contig-range", "encoded-nr-pages"] as const) {
    it(`${variant}: caught at the put, with its trail; the real walk is silent`, () => {
      const spec: ScenarioSpec = {
        memory: 32 << 20,
        cpus: 1,
        variant,
        vmas: [{ kind: "anon", size: 1 << 20, folio: { order: 4 } }],
        op: { kind: "munmap" },
      };
      expect(runScenario(spec).violations).toEqual([]);
      const r = runScenario({ ...spec, walk: extraPut(walkForVariant(resolveVariant(variant))) });
      expect(r.violations.map((v) => v.kind)).toEqual(["mapcountExceedsRefcount"]);
      expect(r.violations[0].message).toMatch(/a put left refcount 15 below mapcount 16/);
      expect(r.violations[0].trail.length).toBeGreaterThan(0);
    });
  }
});

describe("lazy-TLB CPUs and per-CPU flush targets", () => {
  // 4 CPUs run the process; the last 2 switched to kernel threads (lazy TLB) before the munmap, which
  // frees the 4 MiB range's page tables.
  const spec = (arch: ScenarioSpec["arch"], variant: ScenarioSpec["variant"]): ScenarioSpec => ({
    memory: 32 << 20,
    cpus: 4,
    lazyCpus: 2,
    arch,
    variant,
    vmas: [{ kind: "anon", size: 4 << 20 }],
    op: { kind: "munmap" },
  });
  for (const variant of ["encoded-page", "contig-range", "encoded-nr-pages"] as const) {
    it(`${variant}: skipping lazy CPUs on leaf-only flushes is safe; skipping them after freeing tables is caught`, () => {
      const ok = runScenario(spec(x86LikeArch(false), variant));
      expect(ok.violations).toEqual([]);
      const generic = runScenario(spec(undefined, variant));
      expect(generic.violations).toEqual([]);
      // Fewer CPUs reached than the flush-everyone generic adapter.
      expect(ok.counters.cpu!.remoteCpuFlushes).toBeLessThan(generic.counters.cpu!.remoteCpuFlushes);
      const broken = runScenario(spec(x86LikeArch(true), variant));
      expect([...new Set(broken.violations.map((v) => v.kind))]).toEqual(["tableFreedWhileWalkable"]);
    });
  }

  it("a lazy CPU's stale leaf entries are no hazard: it flushes before running the mm's user code again", () => {
    const arch = defineArch({
      name: "leaf-flush-skips-lazy",
      tlbFlush(tlb, ops) {
        const cpus = tlb.mm.cpumask.filter((c) => !tlb.mm.lazyCpus.includes(c));
        if (tlb.end > 0) ops.flushRange(tlb.start, tlb.end, 4096, tlb.freedTables, cpus);
      },
    });
    // MADV_DONTNEED frees no page table: no walk cache matters, and the lazy CPUs' entries stay stale.
    const r = runScenario({ ...spec(arch, "encoded-nr-pages"), op: { kind: "madvise" } });
    expect(r.violations).toEqual([]);
  });

  it("skipping a CPU that runs the mm's threads is caught", () => {
    const arch = defineArch({
      name: "skips-cpu-1",
      tlbFlush(tlb, ops) {
        const cpus = tlb.mm.cpumask.filter((c) => c !== 1);
        if (tlb.end > 0) ops.flushRange(tlb.start, tlb.end, 4096, tlb.freedTables, cpus);
      },
    });
    const kinds = new Set(
      runScenario({ ...spec(arch, "encoded-nr-pages"), op: { kind: "madvise" } }).violations.map(
        (v) => v.kind,
      ),
    );
    expect(kinds.has("useAfterFree")).toBe(true);
  });

  it("lazyCpus is validated: CPU 0 runs the operation", () => {
    expect(() => runScenario({ ...spec(undefined, "encoded-nr-pages"), lazyCpus: 4 })).toThrow(
      /lazyCpus must be an integer in \[0, 3\]/,
    );
    expect(() => runScenario({ ...spec(undefined, "encoded-nr-pages"), lazyCpus: 1.5 })).toThrow(/lazyCpus/);
  });
});

describe("secondary TLBs: devices sharing the page tables (mmu notifiers)", () => {
  /**
   * The generic (x86 v6.18) flush on the CPUs; the devices get `secondary`: "same" the CPU flush's
   * range, "none" nothing, "first-page" only its first page, "overflow" an empty range whenever the
   * call means everything (end TLB_FLUSH_ALL rounded up to a page wraps to 0).
   */
  const archWith = (secondary: "same" | "none" | "first-page" | "overflow"): ArchTlb =>
    defineArch({
      name: `devices-${secondary}`,
      fullFlushCeiling: 33,
      tlbFlush(tlb, ops) {
        // v6.6-style: a flush promoted to the whole mm tells the devices [0, TLB_FLUSH_ALL) too.
        let all = false;
        genericArch.tlbFlush(
          tlb,
          withTlbOps(ops, {
            flushMm(walkCaches, cpus) {
              all = true;
              ops.flushMm(walkCaches, cpus);
            },
            invalidateSecondaryTlbs(s, e) {
              const [start, end] = all ? [0, TLB_FLUSH_ALL] : [s, e];
              if (secondary === "same") ops.invalidateSecondaryTlbs(start, end);
              else if (secondary === "first-page") ops.invalidateSecondaryTlbs(start, start + 4096);
              else if (secondary === "overflow")
                ops.invalidateSecondaryTlbs(start, end === TLB_FLUSH_ALL ? 0 : end);
            },
          }),
        );
      },
    });
  const spec = (
    arch: ArchTlb | undefined,
    variant: ScenarioSpec["variant"],
    op: "exit" | "munmap" | "madvise",
    size = 256 << 10,
  ): ScenarioSpec => ({
    memory: 32 << 20,
    cpus: 2,
    devices: 1,
    arch,
    variant,
    vmas: [
      {
        kind: "anon",
        size,
        folio: {
          mix: [
            { order: 0, weight: 1 },
            { order: 4, weight: 1 },
          ],
        },
      },
      { kind: "file-shared", size: 64 << 10, dirtyFraction: 1 },
    ],
    op: op === "exit" ? { kind: "exit" } : { kind: op, vma: 0 },
  });
  const variants = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

  for (const variant of variants) {
    for (const op of ["exit", "munmap", "madvise"] as const) {
      it(`${variant}, ${op}: the generic flush tells the devices every range; nothing stale, nothing left`, () => {
        const b = buildScenario(spec(undefined, variant, op));
        const dev = b.machine.tlbs!.secondary!;
        expect(dev.boundTo(b.target.id)).toBe(1);
        const cached = dev.tlbRefs.reduce((a, n) => a + n, 0);
        expect(cached).toBeGreaterThan(0);
        const events: string[] = [];
        const r = runBuilt(b, { ...spec(undefined, variant, op), events: (e) => events.push(e.type) });
        expect(r.violations).toEqual([]);
        if (op === "exit") {
          // mmu_notifier_release detached the device before the zap: no invalidation reaches it.
          expect(events.indexOf("mmuNotifierRelease")).toBeLessThan(events.indexOf("pteCleared"));
          expect(events).not.toContain("secondaryTlbsInvalidated");
          expect(r.counters.cpu!.secondaryTlbInvalidations).toBe(0);
          expect(dev.boundTo(b.target.id)).toBe(0);
        } else {
          // One device command per CPU flush that reached the notifiers.
          const flushes = events.filter((t) => t === "tlbFlushed").length;
          expect(r.counters.cpu!.secondaryTlbInvalidations).toBe(flushes);
          expect(events.filter((t) => t === "secondaryTlbsInvalidated").length).toBe(flushes);
          expect(dev.findCached(b.target.id, b.vmas[0].start, b.vmas[0].end)).toBe(-1);
        }
        // The anon VMA's pages are gone from the device (the file VMA's stay mapped and cached).
        expect(dev.tlbRefs.every((n, pfn) => n === 0 || !b.machine.mem.isFree(pfn))).toBe(true);
      });
    }

    it(`${variant}: a flush without the device call is caught on munmap and MADV_DONTNEED, not at exit`, () => {
      for (const op of ["munmap", "madvise"] as const) {
        const k = kinds(spec(archWith("none"), variant, op));
        expect(k).toContain("secondaryTlbUseAfterFree");
        const deviceKinds = [
          "secondaryTlbUseAfterFree",
          "tableFreedWhileWalkable",
          "staleSecondaryTlbAfterReturn",
        ];
        expect(k.filter((x) => !deviceKinds.includes(x))).toEqual([]);
      }
      expect(kinds(spec(archWith("none"), variant, "exit"))).toEqual([]);
      for (const op of ["exit", "munmap", "madvise"] as const)
        expect(kinds(spec(archWith("same"), variant, op))).toEqual([]);
    });

    it(`${variant}: telling the devices only the first page of the range is caught`, () => {
      // 16 pages: flushed by range, the devices hear of one page.
      const k = kinds(spec(archWith("first-page"), variant, "madvise", 64 << 10));
      expect(k).toEqual(["secondaryTlbUseAfterFree", "staleSecondaryTlbAfterReturn"]);
    });

    it(`${variant}: a flush-all that reaches the devices as an empty range is caught above the ceiling only`, () => {
      expect(kinds(spec(archWith("overflow"), variant, "madvise", 256 << 10))).toContain(
        "secondaryTlbUseAfterFree",
      );
      // 16 pages stay below the 33-entry ceiling: flushed by address, the devices get the real range.
      expect(kinds(spec(archWith("overflow"), variant, "madvise", 64 << 10))).toEqual([]);
    });
  }

  it("a device entry left after return is reported (staleSecondaryTlbAfterReturn) even when no page is freed", () => {
    // A forked child keeps every page mapped: the parent's MADV_DONTNEED frees none, so only the
    // return check can see that the device still translates the range.
    const r = runScenario({ ...spec(archWith("none"), "encoded-nr-pages", "madvise"), fork: true });
    expect([...new Set(r.violations.map((v) => v.kind))]).toEqual(["staleSecondaryTlbAfterReturn"]);
    expect(r.violations[0].message).toMatch(/device's TLB still translates 0x/);
    expect(runScenario({ ...spec(undefined, "encoded-nr-pages", "madvise"), fork: true }).violations).toEqual(
      [],
    );
  });

  it("devices are refused where they cannot exist", () => {
    const base = spec(undefined, "encoded-nr-pages", "munmap");
    expect(() => runScenario({ ...base, arch: s390Arch })).toThrow(/s390.*never invalidates secondary TLBs/);
    expect(() => runScenario({ ...base, cpus: 0 })).toThrow(/devices need the CPU model/);
    expect(() => runScenario({ ...base, devices: 65 })).toThrow(/devices must be an integer in \[0, 64\]/);
    try {
      runScenario({ ...base, devices: 1.5 });
      expect.unreachable();
    } catch (e) {
      expect((e as { code?: string }).code).toBe("BAD_DEVICE");
    }
  });
});

describe("speculative walks: a reachable table may be cached by any CPU with the mm loaded", () => {
  // Last-level-only invalidation (arm64 TLBI VALE1IS) even after page tables were freed, and never a
  // whole-mm flush (no ceiling): the paging-structure caches are never invalidated on munmap.
  const leafOnly = defineArch({
    name: "leaf-only",
    tlbFlush(tlb, ops) {
      if (tlb.fullmm || tlb.needFlushAll) ops.flushMm(tlb.freedTables);
      else if (tlb.end > 0) ops.flushRange(tlb.start, tlb.end, 4096, false);
    },
  });
  const spec = (
    arch: ArchTlb | undefined,
    variant: ScenarioSpec["variant"],
    touch: number,
  ): ScenarioSpec => ({
    memory: 32 << 20,
    cpus: 3,
    lazyCpus: 1,
    touch,
    arch,
    variant,
    vmas: [{ kind: "anon", size: 4 << 20 }],
    op: { kind: "munmap" },
  });
  for (const variant of ["encoded-page", "contig-range", "encoded-nr-pages"] as const) {
    it(`${variant}: caught even when no thread touched the memory; the real flush is silent`, () => {
      for (const touch of [1, 0]) {
        const r = runScenario(spec(leafOnly, variant, touch));
        expect([...new Set(r.violations.map((v) => v.kind))]).toEqual(["tableFreedWhileWalkable"]);
        if (touch === 0) expect(r.violations[0].message).toMatch(/speculative walk may have cached it/);
        expect(runScenario(spec(undefined, variant, touch)).violations).toEqual([]);
      }
    });
  }

  it("a lazy-TLB CPU left out of the walk-cache flush is caught without any access phase", () => {
    const skipLazy = defineArch({
      name: "skips-lazy",
      tlbFlush(tlb, ops) {
        const cpus = tlb.mm.cpumask.filter((c) => !tlb.mm.lazyCpus.includes(c));
        if (tlb.fullmm || tlb.needFlushAll) ops.flushMm(tlb.freedTables, cpus);
        else if (tlb.end > 0) ops.flushRange(tlb.start, tlb.end, 4096, tlb.freedTables, cpus);
      },
    });
    const r = runScenario(spec(skipLazy, "encoded-nr-pages", 0));
    expect(r.violations[0].message).toMatch(/CPU 2, which has the mm loaded/);
  });
});

describe("lockless walkers (gup_fast) and the RCU grace period of page-table freeing", () => {
  // Two threads of the process are inside gup_fast over the range munmap frees the tables of.
  const arch = (ipi: boolean, tableFree: "direct" | "rcu"): ArchTlb =>
    defineArch({ name: `ipi-${ipi}-${tableFree}`, tlbFlushIpi: ipi, tableFree, fullFlushCeiling: 33 });
  const spec = (a: ArchTlb | undefined, variant: ScenarioSpec["variant"]): ScenarioSpec => ({
    memory: 32 << 20,
    cpus: 3,
    gupFast: 2,
    arch: a,
    variant,
    vmas: [{ kind: "anon", size: 4 << 20 }],
    op: { kind: "munmap" },
  });
  for (const variant of ["encoded-page", "contig-range", "encoded-nr-pages"] as const) {
    it(`${variant}: a broadcast flush with direct table free frees a table under a walk; RCU or an IPI flush does not`, () => {
      const walkEnds = (a: ArchTlb) => {
        const ends: string[] = [];
        const r = runScenario({
          ...spec(a, variant),
          events: (e) => {
            if (e.type === "locklessWalkDone") ends.push(e.by);
            if (e.type === "rcuGracePeriod") ends.push(`gp:${e.callbacks}`);
          },
        });
        return { kinds: [...new Set(r.violations.map((v) => v.kind))], ends, r };
      };
      const broken = walkEnds(arch(false, "direct"));
      expect(broken.kinds).toEqual(["tableFreedUnderGupFast"]);
      expect(broken.r.violations[0].message).toMatch(/lockless walk \(gup_fast, interrupts off\)/);
      // RCU: the table batch waits for the grace period, which ends the walks first.
      const rcu = walkEnds(arch(false, "rcu"));
      expect(rcu.kinds).toEqual([]);
      expect(rcu.ends).toEqual(["gracePeriod", "gracePeriod", "gp:1"]);
      // The same tables freed, only later.
      expect(rcu.r.counters.gather.tablesFreed).toBe(broken.r.counters.gather.tablesFreed);
      // An IPI flush waits out each walk before the tables can go, RCU or not.
      for (const tf of ["direct", "rcu"] as const) {
        const ipi = walkEnds(arch(true, tf));
        expect(ipi.kinds).toEqual([]);
        expect(ipi.ends).toEqual(["flushIpi", "flushIpi"]);
      }
    });
  }

  it("s390 (IPTE / IDTE, no IPI) is safe through RCU table free", () => {
    expect(runScenario({ ...spec(s390Arch, "encoded-nr-pages") }).violations).toEqual([]);
  });

  it("a table freed alone when no table batch can be allocated waits for tlb_remove_table_sync_one", () => {
    const ends: string[] = [];
    const r = runScenario({
      ...spec(arch(false, "rcu"), "encoded-nr-pages"),
      alloc: () => false,
      events: (e) => {
        if (e.type === "locklessWalkDone") ends.push(e.by);
      },
    });
    expect(r.violations).toEqual([]);
    expect(r.counters.gather.tableSyncOne).toBeGreaterThan(0);
    expect(ends).toEqual(["syncOne", "syncOne"]);
  });

  it("gupFast is validated", () => {
    const base = spec(undefined, "encoded-nr-pages");
    expect(() => runScenario({ ...base, gupFast: 3 })).toThrow(/gupFast must be an integer in \[0, 2\]/);
    expect(() => runScenario({ ...base, lazyCpus: 1 })).toThrow(/gupFast must be an integer in \[0, 1\]/);
    expect(() => runScenario({ ...base, op: { kind: "exit" } })).toThrow(/no thread of an exiting mm runs/);
  });
});

describe("deliberately broken variants are caught", () => {
  it("free before flush → useAfterFree", () => {
    const v = defineVariant(encodedPage, {
      name: "free-first",
      steps: {
        flushMmu(ops) {
          ops.tlbBatchPagesFlush();
          ops.tlbFlushMmuTlbonly();
          ops.tlbTableFlush();
        },
      },
    });
    // The order matters where pages are still queued, unflushed, at tlb_finish_mmu while another CPU
    // runs the mm: a munmap on an arch that merges VMAs (no TLB flush at tlb_end_vma). At exit it
    // would be harmless: no user code of a dying mm runs anywhere, only its page tables matter.
    const mergeVmas = defineArch({ name: "merge-vmas", mergeVmas: true });
    const spec: ScenarioSpec = {
      ...shared,
      arch: mergeVmas,
      vmas: [{ kind: "anon", size: 2 << 20 }],
      op: { kind: "munmap" },
    };
    expect(runScenario(spec).violations).toEqual([]);
    const r = runScenario({ ...spec, variant: v });
    expect(r.violations.map((x) => x.kind)).toContain("useAfterFree");
    expect(r.violations[0].trail.length).toBeGreaterThan(0);
  });

  it("delayed rmap ignored → dirtyRmapBeforeFlush", () => {
    const v = defineVariant(encodedNrPages, { name: "no-delay", steps: { tlbDelayRmap: () => false } });
    // Only the file VMA: an earlier VMA's end-of-VMA flush would be a whole-mm flush (> 33 pages).
    expect(kinds({ ...shared, variant: v, op: { kind: "munmap", vma: 1 } })).toContain(
      "dirtyRmapBeforeFlush",
    );
  });

  it("rmap flushed after the page-table lock is dropped → rmapOutsidePtl", () => {
    const w = defineZapWalk(perPteWalk, {
      name: "rmap-after-unlock",
      steps: {
        endPteTable(ctx) {
          const force = ctx.forceFlush;
          if (force) ctx.tlb.flushMmuTlbonly();
          ctx.unlock();
          ctx.tlb.enterPtl();
          ctx.tlb.flushRmaps();
          ctx.tlb.leavePtl();
          if (force) {
            ctx.forceFlush = false;
            ctx.tlb.flushMmu();
          }
        },
      },
    });
    expect(kinds({ ...shared, variant: "encoded-page", walk: w })).toContain("rmapOutsidePtl");
  });

  it("page table freed before the invalidation → tableFreedWhileWalkable", () => {
    const w = defineZapWalk(folioBatchWalk, {
      name: "table-free-now",
      steps: { freeTable: (ctx, _level, pfn) => ctx.mem.folioPut(pfn) },
    });
    // A 16-page VMA: its range flush (≤ 33 pages) keeps the walk caches, so only the table-free
    // invalidation may drop them — and this walk frees the table before it.
    const spec: ScenarioSpec = {
      memory: 32 << 20,
      vmas: [{ kind: "anon", size: 64 << 10 }],
      cpus: 2,
      op: { kind: "munmap" },
    };
    expect(kinds({ ...spec, walk: w })).toContain("tableFreedWhileWalkable");
    expect(kinds(spec)).toEqual([]);
  });

  it("nested-flush rule ignored → staleTlbAfterReturn under concurrent MADV_DONTNEED", () => {
    const v = defineVariant(encodedNrPages, {
      name: "no-nested-rule",
      steps: {
        finishMmu(ops, flushMmu) {
          flushMmu();
          ops.tlbBatchListFree();
          ops.decTlbFlushPending();
        },
      },
    });
    const spec = (variant: typeof v | "encoded-nr-pages", seed: number): ScenarioSpec => ({
      memory: 32 << 20,
      seed,
      variant,
      vmas: [{ kind: "anon", size: 64 << 10 }],
      cpus: 2,
      op: { kind: "madvise" },
      concurrentOp: { kind: "madvise" },
    });
    let caught = 0;
    for (let seed = 1; seed <= 20; seed++) {
      if (kinds(spec(v, seed)).includes("staleTlbAfterReturn")) caught++;
      expect(runScenario(spec("encoded-nr-pages", seed)).violations).toEqual([]);
    }
    expect(caught).toBeGreaterThan(0);
  });
});

const LONG = process.env.MMGATHER_LONG === "1";

// The digest comparison, what it leaves out and why (PG_partially_mapped, PG_mlocked after lru_add_drain,
// placement next to an allocating actor), and the refusal of MADV_DONTNEED on VM_LOCKED live in
// runDifferential (differential.ts, DIGEST_IGNORED_FLAGS).

describe("differential: all variants reach the same final state with no violation", () => {
  it(`random workloads, partial ranges included (${LONG ? 2000 : 200} cases)`, () => {
    const vmaArb = fc.record({
      kind: fc.constantFrom("anon", "file-shared", "file-private", "shmem" as const),
      tables: fc.integer({ min: 1, max: 3 }),
      order: fc.constantFrom(0, 2, 4, 9),
      pmd: fc.boolean(),
      dirty: fc.double({ min: 0, max: 1, noNaN: true }),
      swap: fc.double({ min: 0, max: 0.5, noNaN: true }),
      keep: fc.boolean(),
    });
    const tally = {
      cases: 0,
      withCpus: 0,
      lazy: 0,
      devices: 0,
      gupFast: 0,
      partial: 0,
      partiallyMappedSet: 0,
    };
    const x86Like = x86LikeArch(false);
    fc.assert(
      fc.property(
        fc.array(vmaArb, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom("exit", "munmap", "madvise" as const),
        fc.integer({ min: 1, max: 1e6 }),
        fc.constantFrom(genericArch, s390Arch, x86Like),
        // Range inside / across the VMAs, in pages: start as a fraction of VMA 0, length as a
        // fraction of everything mapped from there (so ranges cut through large folios and PMDs).
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        fc.double({ min: 0, max: 1, noNaN: true, minExcluded: true }),
        (vs, fork, cpus, op, seed, arch, startFrac, lenFrac) => {
          const span = arch === s390Arch ? 1 << 20 : 2 << 20;
          const vma0Pages = (vs[0].tables * span) / 4096;
          const totalPages = vs.reduce((a, v) => a + (v.tables * span) / 4096, 0);
          const offPages = Math.floor(startFrac * vma0Pages);
          const lenPages = Math.max(1, Math.ceil(lenFrac * (totalPages - offPages)));
          const spec = (variant: "encoded-page" | "contig-range" | "encoded-nr-pages"): ScenarioSpec => ({
            memory: 48 << 20,
            swap: 16 << 20,
            seed,
            arch,
            variant,
            fork,
            cpus,
            // Some of the CPUs went lazy-TLB before the operation (never CPU 0, which runs it).
            lazyCpus: cpus > 1 ? seed % cpus : 0,
            // Devices sharing the page tables, where the arch has them (not s390).
            devices: arch === s390Arch || cpus === 0 ? 0 : (seed >> 2) % 3,
            // A thread inside gup_fast over the range, on a CPU that neither runs the op nor is lazy.
            gupFast: op !== "exit" && cpus - (cpus > 1 ? seed % cpus : 0) - 1 >= 1 ? (seed >> 4) % 2 : 0,
            vmas: vs.map((v) => ({
              kind: v.kind as "anon",
              size: v.tables * span,
              folio: {
                mix: [
                  { order: 0, weight: 1 },
                  { order: Math.min(v.order, arch === s390Arch ? 8 : 9), weight: 2 },
                ],
              },
              pmdMapped: v.pmd,
              dirtyFraction: v.dirty,
              swapFraction: v.kind === "anon" ? v.swap : 0,
              keepInSwapCache: v.keep,
            })),
            op:
              op === "exit"
                ? { kind: "exit" }
                : { kind: op, vma: 0, offset: offPages * 4096, length: lenPages * 4096 },
          });
          tally.cases++;
          if (cpus > 0) tally.withCpus++;
          if (cpus > 1 && seed % cpus > 0) tally.lazy++;
          if (spec("encoded-page").devices! > 0) tally.devices++;
          if (spec("encoded-page").gupFast! > 0) tally.gupFast++;
          if (op !== "exit" && (offPages % (span / 4096) !== 0 || lenPages % (span / 4096) !== 0))
            tally.partial++;
          const r = runDifferential(spec("encoded-nr-pages"));
          for (const o of r.outcomes) {
            expect(o.violations).toEqual([]);
            expect(o.problems).toEqual([]);
            expect(o.error).toBeNull();
            // The checker runs exactly when CPUs are modelled (ScenarioSpec.checker default).
            expect(o.checked).toBe(cpus > 0);
          }
          if (r.outcomes[2].ignoredFlagsSet) tally.partiallyMappedSet++;
          expect(r.groups).toEqual([["encoded-page", "contig-range", "encoded-nr-pages"]]);
        },
      ),
      { numRuns: LONG ? 2000 : 200, seed: 42 },
    );
    // The generators must actually reach what this test is for.
    expect(tally.withCpus).toBeGreaterThan(tally.cases / 2);
    expect(tally.partial).toBeGreaterThan(tally.cases / 4);
    expect(tally.partiallyMappedSet).toBeGreaterThan(0);
    expect(tally.devices).toBeGreaterThan(tally.cases / 5);
    expect(tally.gupFast).toBeGreaterThan(tally.cases / 20);
    if (LONG) console.log("differential tally", tally);
  }, 600_000);
});

describe("differential: VMA splits through THPs, mlock and concurrent operations", () => {
  it(`random workloads with a second thread (${LONG ? 2000 : 150} cases)`, () => {
    const VARIANTS = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;
    const vmaArb = fc.record({
      kind: fc.constantFrom("anon", "file-shared", "file-private", "shmem" as const),
      tables: fc.integer({ min: 1, max: 3 }),
      order: fc.constantFrom(0, 2, 4, 9),
      pmd: fc.boolean(),
      dirty: fc.double({ min: 0, max: 1, noNaN: true }),
      swap: fc.double({ min: 0, max: 0.5, noNaN: true }),
      mlock: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
      // A VMA boundary anywhere inside (often through a large folio or a huge PMD), or none.
      split: fc.option(fc.double({ min: 0, max: 1, noNaN: true, minExcluded: true, maxExcluded: true })),
    });
    const opArb = fc.record({
      kind: fc.constantFrom("munmap" as const, "madvise" as const),
      start: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
      len: fc.double({ min: 0, max: 1, noNaN: true, minExcluded: true }),
    });
    const tally = { cases: 0, concurrent: 0, splitThroughPmd: 0, mlocked: 0, refused: 0 };
    fc.assert(
      fc.property(
        fc.array(vmaArb, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 3 }),
        opArb,
        fc.option(opArb, { freq: 4 }),
        fc.integer({ min: 1, max: 1e6 }),
        fc.constantFrom(genericArch, s390Arch),
        (vs, fork, cpus, a, b, seed, arch) => {
          const span = arch === s390Arch ? 1 << 20 : 2 << 20;
          const vma0Pages = (vs[0].tables * span) / 4096;
          const range = (o: typeof a) => {
            const off = Math.floor(o.start * vma0Pages);
            const len = Math.max(1, Math.ceil(o.len * (vma0Pages - off)));
            return { kind: o.kind, vma: 0, offset: off * 4096, length: len * 4096 };
          };
          const spec = (variant: (typeof VARIANTS)[number]): ScenarioSpec => ({
            memory: 48 << 20,
            swap: 16 << 20,
            seed,
            arch,
            variant,
            fork,
            cpus,
            devices: arch === s390Arch ? 0 : (seed >> 2) % 3,
            gupFast: Math.max(0, Math.min(cpus - (b === null ? 1 : 2), (seed >> 4) % 2)),
            vmas: vs.map((v) => {
              const pages = (v.tables * span) / 4096;
              const at = v.split === null ? undefined : Math.max(1, Math.floor(v.split * pages)) * 4096;
              return {
                kind: v.kind as "anon",
                size: v.tables * span,
                folio: {
                  mix: [
                    { order: 0, weight: 1 },
                    { order: Math.min(v.order, arch === s390Arch ? 8 : 9), weight: 2 },
                  ],
                },
                pmdMapped: v.pmd,
                dirtyFraction: v.kind === "anon" ? 0 : v.dirty,
                swapFraction: v.kind === "anon" ? v.swap : 0,
                mlock: v.mlock,
                splitAt: at,
              };
            }),
            op: range(a),
            concurrentOp: b === null ? undefined : range(b),
          });
          tally.cases++;
          if (b !== null) tally.concurrent++;
          if (vs.some((v) => v.mlock)) tally.mlocked++;
          if (vs.some((v) => v.split !== null && v.pmd && v.order === 9)) tally.splitThroughPmd++;
          const r = runDifferential(spec("encoded-nr-pages"));
          if (r.refused) {
            // MADV_DONTNEED of a VM_LOCKED VMA is -EINVAL on the kernel too (under every design alike).
            for (const o of r.outcomes) expect(o.refused).toMatch(/VM_LOCKED/);
            tally.refused++;
            return;
          }
          for (const o of r.outcomes) {
            expect(o.violations).toEqual([]);
            expect(o.problems).toEqual([]);
            expect(o.error).toBeNull();
          }
          expect(r.groups).toEqual([[...VARIANTS]]);
        },
      ),
      { numRuns: LONG ? 2000 : 150, seed: 7 },
    );
    expect(tally.concurrent).toBeGreaterThan(tally.cases / 2);
    expect(tally.splitThroughPmd).toBeGreaterThan(0);
    expect(tally.mlocked).toBeGreaterThan(0);
    if (LONG) console.log("differential tally (splits, mlock, concurrency)", tally);
  }, 600_000);
});
