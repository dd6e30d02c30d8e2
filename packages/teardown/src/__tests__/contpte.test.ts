// arm64 contpte (v6.18) under the whole model: where the contiguous bit is set (set_ptes at fault,
// fork and THP split), a contiguous block cached as one TLB entry, the zap's batched clears and
// unfolds with their TLBIs, what it costs, and the two broken adapters the checker must catch.
import { arm64Arch, arm64Cost, createArm64Arch } from "@mmgather/arch-arm64";
import { createMmuGather, defineArch } from "@mmgather/mmu-gather";
import { gatherTrusted } from "@mmgather/mmu-gather/internal";
import { describe, expect, it } from "vitest";
import {
  buildScenario,
  type Mm,
  PTE_CONT,
  ptePfn,
  runBuilt,
  runScenario,
  type ScenarioSpec,
} from "../index.js";

const variants = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;
const noContpte = createArm64Arch({ contpte: false });

/** The PTEs of pages [vpn, vpn + n) of `mm` as "1" (contiguous bit) / "0" / "." (none). */
function contBits(mm: Mm, vpn: number, n: number): string {
  let s = "";
  for (let v = vpn; v < vpn + n; v++) {
    const tid = mm.pt.pteTable(v, false);
    const p = tid < 0 ? 0 : mm.pt.entries[tid]![v % mm.pt.geo.ptrsPerPte];
    s += p <= 0 ? "." : (p & PTE_CONT) !== 0 ? "1" : "0";
  }
  return s;
}

describe("where the contiguous bit is set", () => {
  const build = (spec: Partial<ScenarioSpec>) =>
    buildScenario({
      memory: 32 << 20,
      arch: arm64Arch,
      op: { kind: "exit" },
      vmas: [],
      ...spec,
    } as ScenarioSpec);

  it("do_anonymous_page's set_ptes of a 64K folio folds its one block; 128K folios fold two, 32K ones none", () => {
    for (const [order, bits] of [
      [4, "1".repeat(32)],
      [5, "1".repeat(32)],
      [3, "0".repeat(32)],
      [0, "0".repeat(32)],
    ] as const) {
      const b = build({ vmas: [{ kind: "anon", size: 128 << 10, folio: { order } }] });
      expect(contBits(b.target, b.vmas[0].start, 32), `order ${order}`).toBe(bits);
    }
  });

  it("file folios mapped by filemap faults fold too; a private file's COW copies (order 0) and zero pages never do", () => {
    const b = build({
      vmas: [
        { kind: "file-shared", size: 64 << 10, folio: { order: 4 } },
        { kind: "file-private", size: 64 << 10, folio: { order: 4 }, dirtyFraction: 1 },
        { kind: "anon", size: 64 << 10, folio: { order: 4 }, readFraction: 1 },
      ],
    });
    expect(contBits(b.target, b.vmas[0].start, 16)).toBe("1".repeat(16));
    expect(contBits(b.target, b.vmas[1].start, 16)).toBe("0".repeat(16));
    expect(contBits(b.target, b.vmas[2].start, 16)).toBe("0".repeat(16));
  });

  it("fork: the child's set_ptes folds the same blocks; the parent's whole-run write-protect keeps its own", () => {
    const b = build({ vmas: [{ kind: "anon", size: 128 << 10, folio: { order: 4 } }], fork: true });
    expect(contBits(b.parent, b.vmas[0].start, 32)).toBe("1".repeat(32));
    expect(contBits(b.child!, b.vmas[0].start, 32)).toBe("1".repeat(32));
  });

  it("without contpte no PTE carries the bit, and the gather keeps its fused zap path", () => {
    const b = build({ arch: noContpte, vmas: [{ kind: "anon", size: 128 << 10, folio: { order: 4 } }] });
    expect(contBits(b.target, b.vmas[0].start, 32)).toBe("0".repeat(32));
    const gather = (arch: typeof arm64Arch) =>
      gatherTrusted(
        createMmuGather({ mem: b.machine.mem, mm: b.target.tlbMm, arch, variant: "encoded-nr-pages" }),
      );
    expect(gather(noContpte).zapFastPath()).toBe(true);
    expect(gather(arm64Arch).zapFastPath()).toBe(false);
  });

  it("16K pages fold 2 MiB blocks of 128 entries, 64K pages 2 MiB blocks of 32", () => {
    for (const [pageSize, order, cont] of [
      ["16K", 7, 128],
      ["64K", 5, 32],
    ] as const) {
      const arch = createArm64Arch({ pageSize });
      const b = build({ arch, memory: 256 << 20, vmas: [{ kind: "anon", size: 4 << 20, folio: { order } }] });
      expect(arch.contPte?.contPtes).toBe(cont);
      expect(contBits(b.target, b.vmas[0].start, 2 * cont)).toBe("1".repeat(2 * cont));
    }
  });
});

describe("a contiguous block is one TLB entry", () => {
  it("two CPUs touching 1 MiB of 64K folios cache 16 entries each (256 without contpte); munmap drops them all", () => {
    const spec: ScenarioSpec = {
      memory: 32 << 20,
      cpus: 2,
      vmas: [{ kind: "anon", size: 1 << 20, folio: { order: 4 } }],
      op: { kind: "munmap" },
    };
    const b = buildScenario({ ...spec, arch: arm64Arch });
    const tlbs = b.machine.tlbs!;
    let blocks = 0;
    for (let s = 0; s < tlbs.tlbVpn.length; s++) if (tlbs.tlbVpn[s] >= 0 && tlbs.tlbNr[s] === 16) blocks++;
    expect(blocks).toBe(32);
    expect(runScenario({ ...spec, arch: arm64Arch }).counters.cpu?.entriesInvalidated).toBe(32);
    expect(runScenario({ ...spec, arch: noContpte }).counters.cpu?.entriesInvalidated).toBe(512);
  });
});

describe("a 64K-folio munmap on arm64 (4K pages): contpte batching in the counters and the estimate", () => {
  const spec: ScenarioSpec = {
    memory: 32 << 20,
    cpus: 2,
    variant: "encoded-nr-pages",
    vmas: [{ kind: "anon", size: 1 << 20, folio: { order: 4 } }],
    op: { kind: "munmap" },
  };
  const on = runScenario({ ...spec, arch: arm64Arch });
  const off = runScenario({ ...spec, arch: noContpte });

  it("16 folios, 16 blocks: one batched clear each, every block cleared whole, nothing unfolded", () => {
    expect(on.violations).toEqual([]);
    expect(on.finalState.problems).toEqual([]);
    expect(on.contpte).toEqual({
      contPtes: 16,
      batchedClears: 16,
      blocksCleared: 16,
      unfolds: 0,
      folds: 0,
      convertTlbis: 0,
    });
    expect(off.contpte).toBeNull();
    // folio_pte_batch: pte_batch_hint takes each block in one read (16), not one per PTE (256).
    expect(on.counters.walk.folioPteBatchPtes).toBe(16);
    expect(off.counters.walk.folioPteBatchPtes).toBe(256);
    // Same zap otherwise: 256 PTEs in 16 runs, the same flushes (256 last-level TLBIs at the VMA end,
    // 3 for the freed tables at the PMD stride).
    for (const r of [on, off]) {
      expect(r.counters.walk.ptesCleared).toBe(256);
      expect(r.counters.walk.presentBatches).toBe(16);
      expect([r.counters.gather.tlbFlushRange, r.counters.gather.tlbiVaOps]).toEqual([2, 259]);
    }
  });

  it("the estimates differ by exactly the PTE reads contpte saves (Σ counter × arm64Cost)", () => {
    expect(on.estimate.profile).toBe(arm64Cost.name);
    const saved =
      (off.counters.walk.folioPteBatchPtes - on.counters.walk.folioPteBatchPtes) * arm64Cost.folioPteBatchPte;
    expect(saved).toBe(240);
    expect(off.estimate.totalNs - on.estimate.totalNs).toBeCloseTo(saved, 6);
    const offTerms: Readonly<Record<string, number>> = off.estimate.terms;
    for (const [name, ns] of Object.entries(on.estimate.terms))
      if (name !== "folioPteBatchPte") expect(ns, name).toBeCloseTo(offTerms[name], 6);
  });

  it("the v6.5-shaped per-PTE zap on a contpte kernel unfolds every block: 16 contpte_converts, 256 more TLBIs", () => {
    const perPte = runScenario({ ...spec, variant: "encoded-page", arch: arm64Arch });
    expect(perPte.violations).toEqual([]);
    expect(perPte.contpte).toMatchObject({ batchedClears: 0, unfolds: 16, convertTlbis: 256 });
    expect(perPte.counters.gather.contpteConvertedPtes).toBe(256);
    expect([perPte.counters.gather.tlbFlushRange, perPte.counters.gather.tlbiVaOps]).toEqual([18, 515]);
    expect(perPte.estimate.terms.contpteConvertPte).toBe(256 * arm64Cost.contpteConvertPte);
  });
});

describe("a munmap covering blocks in part unfolds them", () => {
  const spec: ScenarioSpec = {
    memory: 32 << 20,
    cpus: 2,
    vmas: [{ kind: "anon", size: 1 << 20, folio: { order: 4 } }],
    op: { kind: "munmap", offset: 32 << 10, length: 64 << 10 },
  };
  for (const variant of variants)
    it(`${variant}: the two end blocks unfold (a 16-TLBI flush each), what is left keeps no stale bit`, () => {
      const full = { ...spec, arch: arm64Arch, variant };
      const b = buildScenario(full);
      const start = b.vmas[0].start;
      expect(contBits(b.target, start, 48)).toBe("1".repeat(48));
      const r = runBuilt(b, full);
      expect(r.violations).toEqual([]);
      expect(r.contpte).toMatchObject({ unfolds: 2, convertTlbis: 32 });
      expect(r.counters.walk.ptesCleared).toBe(16);
      // munmap split the VMA at 32K and 96K: the halves left of blocks 0 and 1 are plain PTEs now.
      expect(contBits(b.target, start, 48)).toBe(
        `${"0".repeat(8)}${".".repeat(16)}${"0".repeat(8)}${"1".repeat(16)}`,
      );
    });

  it("a THP split by the munmap folds its PTEs at set_ptes (counted in the zap's gather), then the edges unfold", () => {
    const r = runScenario({
      memory: 32 << 20,
      cpus: 2,
      arch: arm64Arch,
      variant: "encoded-nr-pages",
      vmas: [{ kind: "anon", size: 2 << 20, folio: { order: 9 }, pmdMapped: true }],
      op: { kind: "madvise", offset: 40 << 10, length: 1 << 20 },
    });
    expect(r.violations).toEqual([]);
    expect(r.counters.walk.hugePmdsSplit).toBe(1);
    // __split_huge_pmd_locked's set_ptes(HPAGE_PMD_NR): 32 blocks; the range starts and ends inside one.
    expect(r.contpte).toMatchObject({ folds: 32, unfolds: 2 });
  });
});

describe("exit (fullmm): batched clears, no TLBI but the final walk-cache flush", () => {
  it("clears 4 MiB of 64K folios in 64 batched clears of whole blocks", () => {
    const r = runScenario({
      memory: 32 << 20,
      cpus: 2,
      arch: arm64Arch,
      vmas: [{ kind: "anon", size: 4 << 20, folio: { order: 4 } }],
      op: { kind: "exit" },
    });
    expect(r.violations).toEqual([]);
    expect(r.contpte).toMatchObject({ batchedClears: 64, blocksCleared: 64, unfolds: 0 });
    expect(r.tlbFlushes).toMatchObject({ range: 0, mm: 1 });
  });
});

// The broken adapters, built from arm64Arch through the public API alone.
/** contpte_[get_and_]clear_full_ptes without contpte_try_unfold_partial: a clear never unfolds. */
const noUnfold = defineArch({ ...arm64Arch, name: "arm64, clears without unfolding", clearPtes: () => {} });
/** contpte_convert's TLBI skipped (the BBML2_NOABORT elision) on CPUs without BBML2_NOABORT. */
const unfoldWithoutTlbi = defineArch({
  ...createArm64Arch({ bbml2NoAbort: true }),
  name: "arm64, unfolds without TLBI",
  contPte: { contPtes: 16, bbml2NoAbort: false },
});

describe("broken contpte adapters, caught on every gather design", () => {
  // Two CPUs run the process (each caches 16 block entries); MADV_DONTNEED of [32K, 96K) covers the
  // second half of block 0 and the first half of block 1.
  const spec: ScenarioSpec = {
    memory: 32 << 20,
    cpus: 2,
    vmas: [{ kind: "anon", size: 1 << 20, folio: { order: 4 } }],
    op: { kind: "madvise", offset: 32 << 10, length: 64 << 10 },
  };
  for (const variant of variants) {
    it(`${variant}: a clear of part of a block without unfolding it is contPteMisprogrammed`, () => {
      const r = runScenario({ ...spec, variant, arch: noUnfold });
      expect(new Set(r.violations.map((v) => v.kind))).toEqual(new Set(["contPteMisprogrammed"]));
      // Reported at the first contiguous PTE of the first broken block: block 0's start.
      expect(r.violations[0].address % (64 << 10)).toBe(0);
    });

    it(`${variant}: an unfold without its TLBI on CPUs without BBML2 is contPteTlbConflict, once per end block`, () => {
      const r = runScenario({ ...spec, variant, arch: unfoldWithoutTlbi });
      expect(r.violations.map((v) => v.kind)).toEqual(["contPteTlbConflict", "contPteTlbConflict"]);
    });

    it(`${variant}: the real adapter is silent, and so is the BBML2 elision on BBML2_NOABORT CPUs`, () => {
      for (const arch of [arm64Arch, createArm64Arch({ bbml2NoAbort: true })]) {
        const r = runScenario({ ...spec, variant, arch });
        expect(r.violations, arch.name).toEqual([]);
        expect(r.finalState.problems).toEqual([]);
        expect(r.contpte?.unfolds).toBe(2);
      }
      const bbml2 = runScenario({ ...spec, variant, arch: createArm64Arch({ bbml2NoAbort: true }) });
      expect(bbml2.contpte?.convertTlbis).toBe(0);
    });
  }
});

describe("the stale contiguous PTEs span pages the process no longer maps", () => {
  it("after the broken clear, block 0 keeps the bit on its first half over the unmapped second half", () => {
    const spec: ScenarioSpec = {
      memory: 32 << 20,
      cpus: 2,
      variant: "encoded-nr-pages",
      arch: noUnfold,
      vmas: [{ kind: "anon", size: 1 << 20, folio: { order: 4 } }],
      op: { kind: "madvise", offset: 32 << 10, length: 64 << 10 },
    };
    const b = buildScenario(spec);
    const start = b.vmas[0].start;
    const t = b.target.pt.entries[b.target.pt.pteTable(start, false)]!;
    const i0 = start % 512;
    const head = ptePfn(t[i0]);
    const v = runBuilt(b, spec).violations[0];
    expect(contBits(b.target, start, 32)).toBe(`${"1".repeat(8)}${".".repeat(16)}${"1".repeat(8)}`);
    // A TLB fill through any of the 8 stale PTEs may cache the whole block: pfns head .. head + 15, the 8
    // pages MADV_DONTNEED gave back included.
    expect(v.pfn).toBe(head);
    expect(v.address).toBe(start * 4096);
  });
});
