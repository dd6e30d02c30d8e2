import { genericArch } from "@mmgather/arch-generic";
import { s390Arch } from "@mmgather/arch-s390";
import { defineArch, maxQueuedEntries } from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import { buildScenario, runBuilt, runScenario, type ScenarioSpec } from "../index.js";

const variants = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;
const arches = [genericArch, s390Arch];
const ops = ["exit", "munmap", "madvise"] as const;

function base(op: (typeof ops)[number]): ScenarioSpec {
  return {
    memory: 64 << 20,
    swap: 8 << 20,
    seed: 7,
    vmas: [
      {
        kind: "anon",
        size: 4 << 20,
        folio: {
          mix: [
            { order: 0, weight: 2 },
            { order: 4, weight: 1 },
          ],
        },
        swapFraction: 0.2,
      },
      { kind: "file-shared", size: 2 << 20, folio: { order: 2 }, dirtyFraction: 0.5 },
      { kind: "file-private", size: 1 << 20, dirtyFraction: 0.3 },
      { kind: "shmem", size: 1 << 20, dirtyFraction: 0.5 },
    ],
    cpus: 2,
    op: op === "exit" ? { kind: "exit" } : { kind: op, vma: 0, offset: 1 << 20, length: 2 << 20 },
  };
}

describe("every operation × variant × arch", () => {
  for (const arch of arches)
    for (const variant of variants)
      for (const op of ops)
        it(`${op} / ${variant} / ${arch.name}: no violation, final state consistent`, () => {
          const r = runScenario({ ...base(op), arch, variant });
          expect(r.violations).toEqual([]);
          expect(r.finalState.problems).toEqual([]);
          expect(r.finalState.rssZeroAfterExit).toBe(true);
          expect(r.pagesTornDown).toBeGreaterThan(0);
          expect(JSON.parse(JSON.stringify(r)).variant).toBe(variant);
        });
});

describe("exact counters fixed by the algorithm", () => {
  // munmap of 1 GiB of order-0 anon pages on x86-64: every page takes one slot in 6.5's encoded-page
  // batches (and one range in contig-range, since ranges never span folios), so the gather fills
  // after maxQueuedEntries pages: 9698 (6.5) / 9953 (series). 7.x: one slot per small folio, 9678.
  it.each(variants)(
    "%s: forced flushes for 1 GiB of 4 KiB pages = ceil(262144 / capacity) - 1",
    (variant) => {
      const pages = 262144;
      const cap = maxQueuedEntries(variant, 12);
      const r = runScenario({
        memory: (1 << 30) + (64 << 20),
        vmas: [{ kind: "anon", size: 1 << 30 }],
        variant,
        op: { kind: "munmap" },
      });
      // The walk breaks when the batch reports full; the page that filled it is queued, so each flush
      // frees exactly `cap` pages and the remainder is freed by tlb_finish_mmu.
      expect(r.forcedFlushes.batchFull).toBe(Math.ceil(pages / cap) - 1);
      expect(r.forcedFlushes.dirtyShared).toBe(0);
      expect(r.pagesTornDown).toBe(pages);
      // one PTL section per PTE table, plus one re-visit per forced flush that stopped mid-table
      expect(r.ptlAcquisitions).toBeGreaterThanOrEqual(512);
      expect(r.batchPagesAllocated).toBe(variant === "contig-range" ? 39 : 19);
    },
  );

  it("s390 never fills a batch; PTE clears follow ptep_get_and_clear_full / ptep_flush_lazy", () => {
    const spec = (op: "munmap" | "exit", cpus: number) =>
      runScenario({
        memory: 128 << 20,
        arch: s390Arch,
        vmas: [{ kind: "anon", size: 32 << 20 }],
        variant: "encoded-page",
        cpus,
        op: { kind: op },
      });
    // Another CPU runs the mm: one IPTE per PTE.
    const shared = spec("munmap", 2);
    expect(shared.forcedFlushes.batchFull).toBe(0);
    expect(shared.tlbFlushes.ipte).toBe(8192);
    expect(shared.counters.gather.lazyInvalidations).toBe(0);
    expect(shared.batchPagesAllocated).toBe(0);
    expect(shared.violations).toEqual([]);
    // Only the zapping CPU (or no CPU model: a single-threaded process): lazy, one IDTE at the end.
    for (const cpus of [0, 1]) {
      const local = spec("munmap", cpus);
      expect(local.tlbFlushes.ipte).toBe(0);
      expect(local.counters.gather.lazyInvalidations).toBe(8192);
      expect(local.tlbFlushes.idte).toBe(1);
      expect(local.violations).toEqual([]);
    }
    // Exit (fullmm): no IPTE and no lazy invalidation at all, whoever ran the mm.
    for (const cpus of [0, 2]) {
      const exit = spec("exit", cpus);
      expect(exit.tlbFlushes.ipte).toBe(0);
      expect(exit.counters.gather.lazyInvalidations).toBe(0);
      expect(exit.violations).toEqual([]);
    }
  });

  it("dirty shared file pages force one flush per PTE table that holds one (generic)", () => {
    for (const variant of variants) {
      const r = runScenario({
        memory: 64 << 20,
        vmas: [{ kind: "file-shared", size: 8 << 20, dirtyFraction: 1 }],
        variant,
        op: { kind: "munmap" },
      });
      expect(r.forcedFlushes.dirtyShared).toBe(4); // 8 MiB = 4 PTE tables of 2 MiB
    }
  });
});

describe("ground truth the real kernel shows", () => {
  it("after fork every shared anon page has mapcount 2; after the child unmaps its copy, 1", async () => {
    const { buildScenario, munmap } = await import("../index.js");
    const b = buildScenario({
      memory: 32 << 20,
      vmas: [{ kind: "anon", size: 1 << 20 }],
      fork: true,
      op: { kind: "exit" },
    });
    const mem = b.machine.mem;
    const v = b.vmas[0];
    const pfns: number[] = [];
    const { forEachPresent } = await import("../index.js");
    forEachPresent(b.parent, v.start, v.end, (pfn) => pfns.push(pfn));
    expect(pfns.length).toBe(256);
    for (const p of pfns) expect(mem.pageMapcount(p)).toBe(2);
    munmap(b.child!, v.start * 4096, 1 << 20);
    for (const p of pfns) expect(mem.pageMapcount(p)).toBe(1);
    for (const p of pfns) expect(mem.folioRef(mem.folioHead(p))).toBe(1);
  });

  it("munmap of half a region lowers anon rss by exactly that half", () => {
    for (const variant of variants) {
      const r = runScenario({
        memory: 64 << 20,
        vmas: [{ kind: "anon", size: 8 << 20, folio: { order: 4 } }],
        variant,
        op: { kind: "munmap", offset: 4 << 20, length: 4 << 20 },
      });
      expect(r.pagesTornDown).toBe(1024);
      expect(r.finalState.rssMatchesPageTables).toBe(true);
    }
  });

  it("munmap of a region still mapped by a forked child frees no data page", () => {
    for (const variant of variants) {
      const r = runScenario({
        memory: 64 << 20,
        vmas: [{ kind: "anon", size: 4 << 20, folio: { order: 3 } }],
        fork: true,
        variant,
        op: { kind: "munmap" },
      });
      expect(r.pagesTornDown).toBe(1024);
      // Only page-table pages go back to the allocator: every data folio is still mapped by the child.
      expect(r.pagesFreed).toBe(r.counters.walk.tablesFreed.reduce((a, b) => a + b, 0));
      expect(r.finalState.problems).toEqual([]);
    }
  });
});

describe("a forked child that shares only part of a VMA (sharedFraction)", () => {
  it("munmap in the parent frees exactly the folios the child no longer maps", () => {
    for (const variant of variants) {
      for (const [f, pmdMapped, order] of [
        [0.25, false, 3],
        [0.5, true, 9],
        [0, false, 0],
      ] as const) {
        const spec: ScenarioSpec = {
          memory: 64 << 20,
          vmas: [{ kind: "anon", size: 8 << 20, folio: { order }, pmdMapped, sharedFraction: f }],
          fork: true,
          variant,
          op: { kind: "munmap" },
        };
        const b = buildScenario(spec);
        // The child maps the first f of the VMA and nothing after it.
        expect(b.child!.rssPages()).toBe(2048 * f);
        const r = runBuilt(b, spec);
        expect(r.pagesTornDown).toBe(2048);
        // Data folios whose last mapping was the parent's go back to the allocator, no other.
        expect(r.dataFoliosFreed, `${variant} f=${f} order ${order}`).toBe((2048 * (1 - f)) >> order);
        expect(r.finalState.problems).toEqual([]);
      }
    }
  });

  it("sharedFraction without fork, or outside [0, 1], is refused", () => {
    const vmas = [{ kind: "anon" as const, size: 1 << 20, sharedFraction: 0.5 }];
    expect(() => buildScenario({ memory: 16 << 20, vmas, op: { kind: "exit" } })).toThrow(/needs fork/);
    expect(() =>
      buildScenario({
        memory: 16 << 20,
        vmas: [{ ...vmas[0], sharedFraction: 2 }],
        fork: true,
        op: { kind: "exit" },
      }),
    ).toThrow(/must be in \[0, 1\]/);
  });
});

describe("children forked and exited before the operation (fork + exec)", () => {
  for (const variant of variants)
    it(`${variant}: leave the parent's memory as it was, and its exit does the same gather work`, () => {
      const spec: ScenarioSpec = { ...base("exit"), variant };
      const alone = buildScenario(spec);
      const forked = buildScenario({ ...spec, exitedChildren: 2 });
      expect(forked.machine.mms.filter((mm) => !mm.dead)).toHaveLength(1);
      const a = runBuilt(alone, spec);
      const f = runBuilt(forked, { ...spec, exitedChildren: 2 });
      expect(f.violations).toEqual([]);
      expect(f.finalState.problems).toEqual([]);
      // The children's mappings, swap references and page tables left nothing behind. (Before the
      // parent's exit the states differ only in the per-CPU LRU-add batch, which each child's
      // exit_mmap drained with lru_add_drain, as the kernel's does.)
      expect(forked.machine.mem.stateDigest()).toBe(alone.machine.mem.stateDigest());
      expect(forked.machine.swap!.stateDigest()).toBe(alone.machine.swap!.stateDigest());
      expect(f.counters.gather).toEqual(a.counters.gather);
      expect(f.pagesTornDown).toBe(a.pagesTornDown);
      expect(f.foliosFreed).toBe(a.foliosFreed);
    });

  it("rejects a negative or fractional count", () => {
    expect(() => buildScenario({ ...base("exit"), exitedChildren: -1 })).toThrow(/exitedChildren/);
    expect(() => buildScenario({ ...base("exit"), exitedChildren: 1.5 })).toThrow(/exitedChildren/);
  });
});

describe("the page size comes from the arch's geometry", () => {
  // The same process on an arch whose base page is 16 KiB (pageShift 14, same table shapes): every
  // byte size × 4, so every page count, folio, PTE and table is the same, and so must be every count
  // of the folio, swap and walk layers and the final state; any hidden 4 KiB assumption shows up as a
  // difference. The gather's batch pages are PAGE_SIZE bytes (MAX_GATHER_BATCH), so its capacity, and
  // with it the number of flushes, legitimately differ; so do the pcp lists' batch and high, which the
  // kernel sizes from the zone in pages (16 GiB is a quarter as many 16 KiB pages: batch 15, high 103
  // instead of 63 and 414), and with them the pcp drains and the zone-lock round trips they take.
  const arch16k = defineArch({
    ...genericArch,
    name: "generic-16k",
    geometry: { ...genericArch.geometry, pageShift: 14 },
  });
  const scale = (s: ScenarioSpec, k: number): ScenarioSpec => ({
    ...s,
    memory: s.memory * k,
    swap: (s.swap ?? 0) * k,
    vmas: s.vmas.map((v) => ({ ...v, size: v.size * k })),
    op:
      s.op.kind === "exit"
        ? s.op
        : {
            ...s.op,
            offset: (s.op.offset ?? 0) * k,
            length: s.op.length === undefined ? undefined : s.op.length * k,
          },
  });
  for (const variant of variants)
    for (const op of ops)
      it(`${op} / ${variant}: 16 KiB pages tear down the same pages, folios and tables`, () => {
        const small = runScenario({ ...base(op), arch: genericArch, variant });
        const big = runScenario({ ...scale(base(op), 4), arch: arch16k, variant });
        expect(big.violations).toEqual([]);
        expect(big.finalState).toEqual(small.finalState);
        expect(big.pagesTornDown).toBe(small.pagesTornDown);
        const {
          pcpBulkDrains: _d,
          pcpPagesDrained: _p,
          zoneLockAcquisitions: _z,
          ...f
        } = small.counters.folio;
        const {
          pcpBulkDrains: _d2,
          pcpPagesDrained: _p2,
          zoneLockAcquisitions: _z2,
          ...g
        } = big.counters.folio;
        // A smaller high drains at least as often.
        expect(big.counters.folio.pcpBulkDrains).toBeGreaterThanOrEqual(small.counters.folio.pcpBulkDrains);
        const batching = (r: typeof small) =>
          JSON.stringify([r.counters.gather.forcedFlushes, r.counters.gather.batchPagesAllocated]);
        if (batching(big) === batching(small)) expect(g).toEqual(f);
        else {
          // Per-batch counts (lock takes, pcp drains, free_pages_and_swap_cache calls, a range split at a batch
          // boundary's extra refcount drop) follow the batch pages
          // and the flushes; the per-page and per-folio work does not.
          expect([g.pagesFreed, g.foliosFreed, g.mapcountAtomics, g.lruDels]).toEqual([
            f.pagesFreed,
            f.foliosFreed,
            f.mapcountAtomics,
            f.lruDels,
          ]);
        }
        if (batching(big) === batching(small)) expect(big.counters.swap).toEqual(small.counters.swap);
        // free_swap_cache runs once per gathered entry: a range split at a batch boundary adds one.
        else
          expect([big.counters.swap?.slotsFreed, big.counters.swap?.swapCacheDeletes]).toEqual([
            small.counters.swap?.slotsFreed,
            small.counters.swap?.swapCacheDeletes,
          ]);
        expect(big.counters.walk.ptesCleared).toBe(small.counters.walk.ptesCleared);
        expect(big.counters.walk.swapPtesCleared).toBe(small.counters.walk.swapPtesCleared);
        expect(big.counters.walk.tablesFreed).toEqual(small.counters.walk.tablesFreed);
        expect(big.counters.gather.pagesQueued).toBe(small.counters.gather.pagesQueued);
        expect(maxQueuedEntries(variant, 14)).not.toBe(maxQueuedEntries(variant, 12));
      });
});
