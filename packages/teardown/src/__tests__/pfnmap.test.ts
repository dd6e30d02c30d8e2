// VM_PFNMAP VMAs (a driver's remap_pfn_range of device memory) and a driver revoking them
// (unmap_mapping_range), Linux v6.18: zap_present_ptes clears each special PTE with a TLB entry and
// nothing else (no rss, no rmap, nothing queued); fork copies the PTEs alone; free_pgtables runs
// tlb_flush_mmu_pfnmap; the revoke zaps the device range in every VMA of every mm mapping the file,
// each with its own gather, and the checker looks at every device pfn once the driver frees it.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buildScenario,
  createMachine,
  createRevokeResult,
  createRng,
  defineZapWalk,
  exitMmap,
  explore,
  faultIn,
  folioBatchWalk,
  forEachPresent,
  forkMm,
  isTeardownError,
  type Mm,
  madviseDontneed,
  mmapVma,
  munmap,
  PFNMAP_PTE_BITS,
  PTE_DIRTY,
  PTE_YOUNG,
  perPteWalk,
  ptePfn,
  revokeSteps,
  runBuilt,
  runScenario,
  type ScenarioSpec,
  type ZapWalk,
} from "../index.js";

const variants = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;
const KB = 1024;
const MB = 1 << 20;

/** Present PTEs of every VMA of `mm` and the pfns they map. */
function present(mm: Mm): number[] {
  const out: number[] = [];
  for (const v of mm.vmas) forEachPresent(mm, v.start, v.end, (pfn) => out.push(pfn));
  return out;
}

function pfnmapMm(bytes: number, deviceBytes = bytes, cpus = 0) {
  const machine = createMachine({ memoryBytes: 16 * MB, deviceBytes, cpus });
  const mm = machine.createMm();
  const v = mmapVma(mm, "pfnmap", bytes);
  faultIn(mm, v, { policy: { order: 0 } }, createRng(1));
  return { machine, mm, v };
}

describe("a pfnmap VMA is device memory behind special PTEs", () => {
  it("remap_pfn_range maps every page to the device file's pfns above RAM, with no rss and no folio", () => {
    const { machine, mm, v } = pfnmapMm(64 * KB);
    const pages = machine.nrPages;
    expect(machine.nrDevicePages).toBe(16);
    expect(present(mm)).toEqual(Array.from({ length: 16 }, (_, i) => pages + i));
    expect(Array.from(mm.rss)).toEqual([0, 0, 0, 0]);
    expect(v.shared).toBe(true);
    expect(machine.iMmap.get(v.mapping)?.map((e) => e.vma)).toEqual([v]);
    expect(machine.deviceFiles.get(v.mapping)).toEqual({ pfn: pages, nrPages: 16 });
  });
});

/** A scenario with one 64K pfnmap VMA (16 device pages, one PTE table) and two CPUs that cached it. */
function spec(over: Partial<ScenarioSpec> = {}): ScenarioSpec {
  return {
    memory: 16 * MB,
    cpus: 2,
    vmas: [{ kind: "pfnmap", size: 64 * KB }],
    op: { kind: "munmap" },
    ...over,
  };
}

describe("munmap / exit / MADV_DONTNEED of a pfnmap VMA: special PTEs cleared, nothing else", () => {
  for (const variant of variants) {
    it(`${variant}: every PTE cleared with a TLB entry, no rss, no rmap, no page queued or freed`, () => {
      for (const op of ["munmap", "exit", "madvise"] as const) {
        const r = runScenario(spec({ op: { kind: op }, variant }));
        expect(r.violations).toEqual([]);
        expect(r.finalState.problems).toEqual([]);
        const w = r.counters.walk;
        expect(w.ptesCleared).toBe(16);
        // zap_present_ptes: no folio_pte_batch without a page, one call per PTE.
        expect(w.presentBatches).toBe(16);
        expect(w.folioPteBatchCalls).toBe(0);
        expect(w.markAccessedCalls).toBe(0);
        expect(r.counters.gather.pagesQueued).toBe(0);
        expect(r.counters.gather.rmapCallsImmediate + r.counters.gather.rmapCallsDelayed).toBe(0);
        expect(r.dataFoliosFreed).toBe(0);
        // freed pages are page tables only: PTE, PMD and PUD tables (and the PGD at exit); none on madvise.
        expect(r.pageTablePagesFreed).toBe(op === "exit" ? 4 : op === "munmap" ? 3 : 0);
        expect(w.tablesFreed).toEqual(op === "madvise" ? [0, 0, 0] : [1, 1, 1]);
        expect(w.fileVmaUnlinks).toBe(op === "madvise" ? 0 : 1);
        // The TLB range covered them: both CPUs' 16 cached translations are gone.
        expect(r.counters.cpu?.entriesInvalidated).toBe(32);
        // munmap: tlb_end_vma's flush of the 16 PTEs, then the table flush before the frees.
        if (op === "munmap") expect(r.counters.gather.tlbFlushRange).toBe(2);
        if (op === "madvise") expect(r.counters.gather.tlbFlushRange).toBe(1);
        if (op === "exit") expect(r.counters.gather.tlbFlushMm).toBe(1);
      }
    });
  }

  it("the mm's rss stays zero and the PTEs are gone (direct API, per-PTE and folio-batch walks)", () => {
    for (const walk of [perPteWalk, folioBatchWalk]) {
      const { machine, mm, v } = pfnmapMm(64 * KB);
      const freed0 = machine.freed.pages;
      const r = madviseDontneed(mm, v.start * machine.pageSize, 64 * KB, { walk });
      expect(r.walkCounters.ptesCleared).toBe(16);
      expect(present(mm)).toEqual([]);
      expect(Array.from(mm.rss)).toEqual([0, 0, 0, 0]);
      expect(machine.freed.pages).toBe(freed0);
      munmap(mm, v.start * machine.pageSize, 64 * KB, { walk });
      expect(machine.iMmap.has(v.mapping)).toBe(false);
    }
  });

  it("mlock leaves a pfnmap VMA alone (mlock_fixup skips VM_SPECIAL)", () => {
    const r = runScenario(spec({ vmas: [{ kind: "pfnmap", size: 64 * KB, mlock: true }] }));
    expect(r.violations).toEqual([]);
    expect(r.counters.walk.ptesCleared).toBe(16);
  });

  it("options that do not apply to device memory are refused with BAD_SPEC naming the field", () => {
    for (const [extra, field] of [
      [{ pmdMapped: true }, /pmdMapped/],
      [{ populate: 0.5 }, /populate/],
      [{ dirtyFraction: 0.5 }, /dirtyFraction/],
      [{ folio: { order: 2 } }, /folio/],
    ] as const) {
      let err: unknown;
      try {
        buildScenario(spec({ vmas: [{ kind: "pfnmap", size: 64 * KB, ...extra }] }));
      } catch (e) {
        err = e;
      }
      expect(isTeardownError(err) && err.code === "BAD_SPEC").toBe(true);
      expect((err as Error).message).toMatch(field);
    }
  });
});

describe("fork copies a pfnmap VMA's PTEs (vma_needs_copy: VM_PFNMAP), with no reference", () => {
  it("the child maps the same device pfns, clean and old, in the same i_mmap; no rss", () => {
    const { machine, mm, v } = pfnmapMm(64 * KB);
    const child = forkMm(mm);
    expect(present(child)).toEqual(present(mm));
    expect(present(child)).toHaveLength(16);
    const cv = child.vmas[0];
    forEachPresent(child, cv.start, cv.end, (pfn, vpn) => {
      const t = child.pt.entries[child.pt.pteTable(vpn, false)]!;
      const pte = t[vpn % child.pt.geo.ptrsPerPte];
      expect(ptePfn(pte)).toBe(pfn);
      expect(pte & (PTE_DIRTY | PTE_YOUNG)).toBe(0);
    });
    // The parent's PTEs are untouched (a shared mapping: no COW write-protect).
    const t = mm.pt.entries[mm.pt.pteTable(v.start, false)]!;
    expect(t[v.start % mm.pt.geo.ptrsPerPte] & PFNMAP_PTE_BITS).toBe(PFNMAP_PTE_BITS);
    expect(Array.from(child.rss)).toEqual([0, 0, 0, 0]);
    expect(machine.iMmap.get(v.mapping)?.map((e) => e.mm)).toEqual([mm, child]);
    const r = exitMmap(child);
    expect(r.walkCounters.ptesCleared).toBe(16);
    expect(present(mm)).toHaveLength(16);
  });
});

describe("revoke: unmap_mapping_range over the device file, a kernel thread", () => {
  it("zaps the range in every VMA of every mm (parent and forked child), one gather each", () => {
    const s = spec({
      fork: true,
      vmas: [
        { kind: "pfnmap", size: 64 * KB },
        { kind: "anon", size: 64 * KB },
      ],
      op: { kind: "munmap", vma: 1 },
      concurrentOp: { kind: "revoke", vma: 0, offset: 16 * KB, length: 32 * KB },
    });
    const b = buildScenario(s);
    const r = runScenario(s);
    expect(r.violations).toEqual([]);
    expect(r.finalState.problems).toEqual([]);
    // munmap's one gather plus one per VMA the revoke zapped (parent's and child's).
    expect(r.gathers).toBe(3);
    // 16 anon PTEs of the munmap, 8 device PTEs in each of the two mms.
    expect(r.counters.walk.ptesCleared).toBe(16 + 8 + 8);
    expect(b.machine.iMmap.get(b.vmas[0].mapping)).toHaveLength(2);
  });

  it("direct API: counts, and exactly the revoked file pages are gone in both mms", () => {
    const { machine, mm, v } = pfnmapMm(64 * KB, 64 * KB, 2);
    const child = forkMm(mm);
    const r = createRevokeResult({});
    const g = revokeSteps(machine, v.mapping, 4, 12, {}, r);
    for (let s = g.next(); s.done !== true; s = g.next()) {
      /* run */
    }
    expect(r.vmasZapped).toBe(2);
    expect(r.mmsZapped).toBe(2);
    expect(r.gathers).toBe(2);
    expect(r.devicePagesFreed).toBe(8);
    expect(r.walkCounters.ptesCleared).toBe(16);
    const base = machine.nrPages;
    const left = [
      ...Array.from({ length: 4 }, (_, i) => base + i),
      ...Array.from({ length: 4 }, (_, i) => base + 12 + i),
    ];
    expect(present(mm)).toEqual(left);
    expect(present(child)).toEqual(left);
    expect(machine.iMmapReaders.size).toBe(0);
  });

  it("refuses a VMA that is not pfnmap with BAD_SPEC naming concurrentOp.vma", () => {
    let err: unknown;
    try {
      runScenario(
        spec({
          vmas: [
            { kind: "pfnmap", size: 64 * KB },
            { kind: "file-shared", size: 64 * KB },
          ],
          concurrentOp: { kind: "revoke", vma: 1 },
        }),
      );
    } catch (e) {
      err = e;
    }
    expect(isTeardownError(err) && err.code === "BAD_SPEC").toBe(true);
    expect((err as Error).message).toMatch(/concurrentOp\.vma \(1\).*pfnmap/);
  });

  for (const variant of variants) {
    it(`${variant}: racing munmap, MADV_DONTNEED or exit of the same VMA, every interleaving is silent`, () => {
      for (const op of ["munmap", "madvise", "exit"] as const) {
        const e = explore(
          spec({
            vmas: [{ kind: "pfnmap", size: 128 * KB }],
            op: { kind: op },
            concurrentOp: { kind: "revoke", vma: 0 },
            variant,
          }),
          { bound: 2 },
        );
        expect(e.complete).toBe(true);
        expect(e.explored).toBeGreaterThan(5);
        expect(e.failing).toBe(0);
      }
    });
  }

  it("munmap's split of a VMA of the device file waits for the revoke's i_mmap walk (vma_prepare)", () => {
    // Found by the long random differential run: the split made one VMA two halfway through the walk,
    // whose copy of i_mmap then missed the new half, left mapped when the device memory was freed.
    for (const variant of variants) {
      const e = explore(
        spec({
          vmas: [{ kind: "pfnmap", size: 1024 * KB, splitAt: 128 * KB }],
          op: { kind: "munmap", vma: 0, offset: 512 * KB, length: 64 * KB },
          concurrentOp: { kind: "revoke", vma: 0 },
          variant,
        }),
        { bound: 2 },
      );
      expect(e.complete).toBe(true);
      expect(e.failing).toBe(0);
    }
  });

  it("property: any page range revoked clears exactly those PTEs and leaves no violation", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 31 }), fc.integer({ min: 1, max: 32 }), (first, n) => {
        const s = spec({
          vmas: [
            { kind: "pfnmap", size: 128 * KB },
            { kind: "anon", size: 16 * KB },
          ],
          op: { kind: "munmap", vma: 1 },
          concurrentOp: { kind: "revoke", vma: 0, offset: first * 4 * KB, length: n * 4 * KB },
        });
        const b = buildScenario(s);
        const r = runBuilt(b, s);
        expect(r.violations).toEqual([]);
        const hi = Math.min(32, first + n);
        expect(r.counters.walk.ptesCleared).toBe(4 + hi - first);
        expect(present(b.parent)).toHaveLength(32 - (hi - first));
      }),
      { numRuns: 40 },
    );
  });
});

/** A walk that clears a pfnmap VMA's PTEs without tlb_remove_tlb_entry: the flush range never covers them. */
function noTlbEntry(base: ZapWalk): ZapWalk {
  return defineZapWalk(base, {
    name: `${base.name}-pfnmap-no-tlb-entry`,
    steps: {
      zapPtes(ctx, t, b, from, to) {
        if (!ctx.noNormalPages) return base.steps.zapPtes(ctx, t, b, from, to);
        for (let i = from; i < to; i++) {
          if (t[i] <= 0) continue;
          t[i] = 0;
          ctx.tlb.ptepGetAndClear((b + i) * ctx.pageSize, 1);
          ctx.counters.ptesCleared++;
          ctx.counters.presentBatches++;
        }
        return to;
      },
    },
  });
}

describe("a walk that forgets tlb_remove_tlb_entry for special PTEs", () => {
  for (const variant of variants) {
    it(`${variant}: caught as staleTlbAfterReturn, and as deviceMemoryUseAfterRevoke against a revoke`, () => {
      const walk = noTlbEntry(variant === "encoded-nr-pages" ? folioBatchWalk : perPteWalk);
      const broken = runScenario(spec({ variant, walk }));
      expect(broken.violations.map((v) => v.kind)).toEqual(["staleTlbAfterReturn"]);
      expect(runScenario(spec({ variant })).violations).toEqual([]);
      const e = explore(spec({ variant, walk, concurrentOp: { kind: "revoke", vma: 0 } }), { bound: 1 });
      expect(e.failing).toBeGreaterThan(0);
      const kinds = e.shortest!.report.violations.map((v) => v.kind);
      expect(kinds).toContain("deviceMemoryUseAfterRevoke");
      const d = e.shortest!.report.violations.find((v) => v.kind === "deviceMemoryUseAfterRevoke")!;
      expect(d.pfn).toBeGreaterThanOrEqual((16 * MB) / 4096);
    });
  }
});
