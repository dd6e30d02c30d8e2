// arm64 contpte (arch/arm64/mm/contpte.c, v6.18) through the adapter's PTE-aware hooks, on a table of
// plain numbers: when set_ptes folds, when a clear unfolds, what contpte_convert rewrites and flushes.
import type { ArchTlb, GatherView, PteTableView, TlbOps } from "@mmgather/mmu-gather";
import { defineArch, isArchConfigError, withTlbOps } from "@mmgather/mmu-gather";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { arm64Arch, createArm64Arch } from "../index.js";

// A PTE here: pfn * 64 + bits (1 valid, 2 write, 4 dirty, 8 young, 16 cont); a folio is 64 aligned pages
// unless `folioPages` says otherwise; pfn 999 is special.
const VALID = 1;
const WRITE = 2;
const DIRTY = 4;
const YOUNG = 8;
const CONT = 16;
const pte = (pfn: number, bits = VALID | WRITE) => pfn * 64 + bits;
const pfnOf = (p: number) => Math.floor(p / 64);

class Table implements PteTableView {
  readonly t: number[];
  constructor(
    readonly length: number,
    readonly base: number,
    readonly folioPages = 64,
  ) {
    this.t = new Array(length).fill(0);
  }
  get(i: number) {
    return this.t[i];
  }
  set(i: number, p: number) {
    this.t[i] = p;
  }
  valid(p: number) {
    return (p & VALID) !== 0;
  }
  special(p: number) {
    return pfnOf(p) === 999;
  }
  pfn(p: number) {
    return pfnOf(p);
  }
  cont(p: number) {
    return (p & CONT) !== 0;
  }
  mkcont(p: number) {
    return p | CONT;
  }
  mknoncont(p: number) {
    return p & ~CONT;
  }
  dirty(p: number) {
    return (p & DIRTY) !== 0;
  }
  mkdirty(p: number) {
    return p | DIRTY;
  }
  mkclean(p: number) {
    return p & ~DIRTY;
  }
  young(p: number) {
    return (p & YOUNG) !== 0;
  }
  mkyoung(p: number) {
    return p | YOUNG;
  }
  mkold(p: number) {
    return p & ~YOUNG;
  }
  advancePfn(p: number, n: number) {
    return p + n * 64;
  }
  folioStart(pfn: number) {
    return pfn - (pfn % this.folioPages);
  }
  folioNrPages() {
    return this.folioPages;
  }
  /** set_ptes: writes nr entries of consecutive pfns, then the arch hook. */
  setPtes(arch: ArchTlb, i: number, first: number, nr: number, bits = VALID | WRITE, ops = recorder().ops) {
    for (let k = 0; k < nr; k++) this.t[i + k] = pte(first + k, bits);
    arch.setPtes?.(this, i, nr, ops);
  }
  conts() {
    return this.t.map((p) => (p & CONT ? 1 : 0)).join("");
  }
}

/** TlbOps recording what a hook asked for. */
function recorder() {
  const log: string[] = [];
  const c = { va: 0, range: 0, folds: 0, unfolds: 0, converted: 0, clears: 0, blocks: 0 };
  const ops: TlbOps = {
    flushRange: (s, e, stride, walk) =>
      log.push(`range ${s.toString(16)}-${e.toString(16)}/${stride} walk=${walk}`),
    flushMm: (walk) => log.push(`mm walk=${walk}`),
    ipte: () => {},
    invalidateLazy: () => {},
    idte: () => {},
    setFlushMm: () => {},
    // x86 operations: an arm64 hook never calls them.
    flushTlbFunc: () => log.push("x86 flushTlbFunc"),
    invlpgb: () => log.push("x86 invlpgb"),
    tlbsync: () => log.push("x86 tlbsync"),
    tlbiIssued: (va, range) => {
      c.va += va;
      c.range += range;
    },
    tlbiLimitExcess: () => {},
    contpteFold: (blocks) => {
      c.folds += blocks;
    },
    contpteConvert: (fold, ptes, va, range) => {
      if (fold) c.folds++;
      else c.unfolds++;
      c.converted += ptes;
      c.va += va;
      c.range += range;
    },
    contpteClear: (blocks) => {
      c.clears++;
      c.blocks += blocks;
    },
    invalidateSecondaryTlbs: (s, e) => log.push(`devices ${s.toString(16)}-${e.toString(16)}`),
  };
  return { ops, log, c };
}

const view = {} as GatherView;
const clear = (arch: ArchTlb, t: Table, i: number, nr: number, ops: TlbOps) =>
  arch.clearPtes?.(view, t, i, nr, ops);

describe("the adapter's contpte capability", () => {
  it("CONT_PTES 16 / 128 / 32 for 4K / 16K / 64K; off with contpte: false (no hook: the fused zap stays)", () => {
    expect(arm64Arch.contPte).toEqual({ contPtes: 16, bbml2NoAbort: false });
    expect(createArm64Arch({ pageSize: "16K" }).contPte?.contPtes).toBe(128);
    expect(createArm64Arch({ pageSize: "64K" }).contPte?.contPtes).toBe(32);
    const off = createArm64Arch({ contpte: false });
    expect([off.name, off.contPte, off.setPtes, off.clearPtes]).toEqual([
      "arm64-nocontpte",
      null,
      null,
      null,
    ]);
    expect(createArm64Arch({ bbml2NoAbort: true }).name).toBe("arm64+bbml2");
  });

  it("refuses BBML2 without contpte, and a contpte arch without its hooks (defineArch's #error)", () => {
    let err: unknown;
    try {
      createArm64Arch({ contpte: false, bbml2NoAbort: true });
    } catch (e) {
      err = e;
    }
    expect(isArchConfigError(err) && err.code).toBe("BAD_OPTION");
    err = undefined;
    try {
      defineArch({ ...arm64Arch, name: "no-hooks", clearPtes: null });
    } catch (e) {
      err = e;
    }
    expect(isArchConfigError(err) && err.code).toBe("BAD_HOOK");
  });
});

describe("set_ptes: contpte_set_ptes (nr > 1)", () => {
  it("folds every aligned, fully covered block with an aligned pfn, with no TLB maintenance", () => {
    const t = new Table(64, 0x1000);
    const r = recorder();
    t.setPtes(arm64Arch, 0, 128, 48, VALID | WRITE, r.ops);
    expect(t.conts()).toBe(`${"1".repeat(48)}${"0".repeat(16)}`);
    expect(r.c.folds).toBe(3);
    expect(r.log).toEqual([]);
  });

  it("leaves a block covered in part, or whose pfns are not block-aligned", () => {
    const t = new Table(64, 0x1000);
    t.setPtes(arm64Arch, 8, 136, 32); // [8, 40): only [16, 32) is a whole block
    expect(t.conts()).toBe(`${"0".repeat(16)}${"1".repeat(16)}${"0".repeat(32)}`);
    const u = new Table(64, 0x1000);
    u.setPtes(arm64Arch, 0, 130, 32); // virtual blocks aligned, pfns 2 off
    expect(u.conts()).toBe("0".repeat(64));
  });
});

describe("set_ptes of one PTE: contpte_try_fold", () => {
  it("the last entry of a block completes it: contpte_convert folds it, flushing the block in between", () => {
    const t = new Table(64, 0x1000);
    const r = recorder();
    for (let i = 0; i < 16; i++)
      t.setPtes(arm64Arch, 16 + i, 144 + i, 1, i === 3 ? VALID | WRITE | DIRTY : VALID | WRITE, r.ops);
    expect(t.conts()).toBe(`${"0".repeat(16)}${"1".repeat(16)}${"0".repeat(32)}`);
    // The merged dirty bit lands in every entry of the block.
    expect(t.t.slice(16, 32).every((p) => (p & DIRTY) !== 0)).toBe(true);
    expect(r.c).toMatchObject({ folds: 1, unfolds: 0, converted: 16, va: 16 });
    const page = 4096;
    expect(r.log).toEqual([
      `range ${((0x1000 + 16) * page).toString(16)}-${((0x1000 + 32) * page).toString(16)}/4096 walk=false`,
      `devices ${((0x1000 + 16) * page).toString(16)}-${((0x1000 + 32) * page).toString(16)}`,
    ]);
  });

  it("does not fold across two folios, different permissions, a special page or a non-final entry", () => {
    const twoFolios = new Table(64, 0x1000, 8);
    for (let i = 0; i < 16; i++) twoFolios.setPtes(arm64Arch, i, 128 + i, 1);
    expect(twoFolios.conts()).toBe("0".repeat(64));
    const perms = new Table(64, 0x1000);
    for (let i = 0; i < 16; i++) perms.setPtes(arm64Arch, i, 128 + i, 1, i === 5 ? VALID : VALID | WRITE);
    expect(perms.conts()).toBe("0".repeat(64));
    const special = new Table(64, 0x1000);
    special.setPtes(arm64Arch, 15, 999, 1);
    expect(special.conts()).toBe("0".repeat(64));
  });
});

describe("clear_full_ptes: contpte_try_unfold_partial and the batched clear", () => {
  const folded = () => {
    const t = new Table(64, 0x1000);
    t.setPtes(arm64Arch, 0, 128, 64, VALID | WRITE | YOUNG);
    t.t[20] |= DIRTY;
    return t;
  };

  it("a batch covering whole blocks clears them as they are: no unfold, no TLBI", () => {
    const t = folded();
    const r = recorder();
    clear(arm64Arch, t, 16, 32, r.ops);
    expect(r.c).toMatchObject({ clears: 1, blocks: 2, unfolds: 0, va: 0 });
    expect(t.conts()).toBe("1".repeat(64));
    expect(r.log).toEqual([]);
  });

  it("a batch starting and ending inside blocks unfolds those two and clears the one in between whole", () => {
    const t = folded();
    t.t[3] |= DIRTY;
    const r = recorder();
    clear(arm64Arch, t, 8, 32, r.ops);
    expect(r.c).toMatchObject({ clears: 1, blocks: 1, unfolds: 2, converted: 32, va: 32 });
    expect(t.conts()).toBe(`${"0".repeat(16)}${"1".repeat(16)}${"0".repeat(16)}${"1".repeat(16)}`);
    // contpte_convert merges the block's dirty bit into every entry it rewrites, pfns unchanged; the
    // block cleared whole keeps its entries as they were.
    expect(t.t.slice(0, 16).every((p) => (p & DIRTY) !== 0)).toBe(true);
    expect(t.t.slice(32, 48).some((p) => (p & DIRTY) !== 0)).toBe(false);
    expect(t.t.slice(16, 32).filter((p) => (p & DIRTY) !== 0)).toHaveLength(1);
    expect(t.t.slice(0, 16).map(pfnOf)).toEqual(Array.from({ length: 16 }, (_, i) => 128 + i));
  });

  it("one PTE (ptep_get_and_clear): contpte_try_unfold of its block, dirty and young merged", () => {
    const t = folded();
    const r = recorder();
    clear(arm64Arch, t, 21, 1, r.ops);
    expect(t.conts()).toBe(`${"1".repeat(16)}${"0".repeat(16)}${"1".repeat(32)}`);
    expect(t.t.slice(16, 32).every((p) => (p & (DIRTY | YOUNG)) === (DIRTY | YOUNG))).toBe(true);
    expect(r.c).toMatchObject({ clears: 0, unfolds: 1, va: 16 });
  });

  it("with FEAT_TLBIRANGE the unfold's flush is one range TLBI; with BBML2_NOABORT there is none", () => {
    const ranged = createArm64Arch({ tlbRange: true });
    const t = new Table(64, 0x1000);
    t.setPtes(ranged, 0, 128, 64);
    const r = recorder();
    clear(ranged, t, 4, 4, r.ops);
    expect(r.c).toMatchObject({ unfolds: 1, va: 0, range: 1 });
    const bbml2 = createArm64Arch({ bbml2NoAbort: true });
    const u = new Table(64, 0x1000);
    u.setPtes(bbml2, 0, 128, 64);
    const s = recorder();
    clear(bbml2, u, 4, 4, s.ops);
    expect(s.c).toMatchObject({ unfolds: 1, converted: 16, va: 0, range: 0 });
    expect(s.log).toEqual([]);
    expect(u.conts()).toBe(`${"0".repeat(16)}${"1".repeat(48)}`);
  });

  it("property: after any clear, every block still holding the contiguous bit lies wholly outside the batch or wholly inside it", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 1, max: 64 }), (i, len) => {
        const nr = Math.min(len, 64 - i);
        const t = folded();
        clear(arm64Arch, t, i, nr, recorder().ops);
        for (let b = 0; b < 64; b += 16) {
          const inside = Math.max(0, Math.min(b + 16, i + nr) - Math.max(b, i));
          const cont = t.t.slice(b, b + 16).map((p) => (p & CONT ? 1 : 0));
          // A block is all-or-nothing, and it keeps the bit only when the batch misses it or covers it.
          expect(new Set(cont).size).toBe(1);
          if (cont[0] === 1) expect(inside === 0 || inside === 16).toBe(true);
        }
      }),
    );
  });
});

describe("the hooks compose with withTlbOps (how a broken adapter is built)", () => {
  it("an unfold whose flush is dropped still rewrites the block and counts the convert", () => {
    const t = new Table(64, 0x1000);
    t.setPtes(arm64Arch, 0, 128, 64);
    const r = recorder();
    clear(arm64Arch, t, 4, 4, withTlbOps(r.ops, { flushRange: () => {} }));
    expect(r.c.unfolds).toBe(1);
    expect(r.log).toEqual([`devices ${(0x1000 * 4096).toString(16)}-${((0x1000 + 16) * 4096).toString(16)}`]);
  });
});
