// Every refusal is a typed error that names the model file and the kernel entry point that refused,
// and says why with the offending value (the VM_BUG_ON / #error conditions of mm/mmu_gather.c and
// include/asm-generic/tlb.h). Also the s390 TLB operations an arch hook drives (IPTE at clear time,
// lazy flush_mm, IDTE), with their exact events and counters.

import { gatherTrusted } from "@mmgather/mmu-gather/internal";
import { createGatherFixture, gatherOn, mapAnonFolio, recordEvents } from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import {
  contigRange,
  createGatherCounters,
  createMmuGather,
  defineArch,
  defineVariant,
  encodedNrPages,
  encodedNrPagesFor,
  encodedPage,
  type GatherStageOps,
  type GatherVariant,
  getVariant,
  isGatherError,
  type MmuGather,
  type TlbFlushReason,
} from "../index.js";

const arch = defineArch({ name: "test-merge", mergeVmas: true });

interface Where {
  code: string;
  module: string;
  method: string;
  message: string;
}

/** The error `fn` throws, reduced to where and why. */
function where(fn: () => unknown): Where {
  try {
    fn();
  } catch (e) {
    if (isGatherError(e)) return { code: e.code, module: e.module, method: e.method, message: e.message };
    throw e;
  }
  throw new Error("did not throw");
}

function expectRefusal(fn: () => unknown, code: string, method: string, message: RegExp, module = "gather") {
  const w = where(fn);
  expect({ code: w.code, module: w.module, method: w.method }).toEqual({ code, module, method });
  expect(w.message.startsWith(`${module}.${method}: `)).toBe(true);
  expect(w.message.endsWith(` [${code}]`)).toBe(true);
  expect(w.message).toMatch(message);
}

describe("refusals name the refusing function and the offending value", () => {
  it("createMmuGather", () => {
    const fx = createGatherFixture(arch);
    const base = { mem: fx.mem, mm: fx.mm, arch, variant: encodedPage };
    expectRefusal(
      () => createMmuGather({ ...base, mm: undefined as never }),
      "BAD_ARGUMENT",
      "createMmuGather",
      /mem, mm and arch are required/,
    );
    const odd = { ...encodedPage, storage: "linked-list" } as unknown as GatherVariant;
    expectRefusal(
      () => createMmuGather({ ...base, variant: odd }),
      "BAD_VARIANT",
      "createMmuGather",
      /unknown storage "linked-list"/,
    );
  });

  it("pfn, nr and folio bounds", () => {
    const fx = createGatherFixture(arch, 1 << 12);
    const f = mapAnonFolio(fx, 2);
    const g = gatherOn(fx, encodedNrPages);
    g.tlbRemoveTlbEntries(0, 8);
    expectRefusal(
      () => g.removePage(-1, false),
      "BAD_PFN",
      "removePage",
      /pfn -1 is not a page frame number/,
    );
    expectRefusal(
      () => g.removePageSize(2 ** 29, false, 4096),
      "BAD_PFN",
      "removePageSize",
      /pfn 536870912 is not a page frame number/,
    );
    expectRefusal(
      () => g.removeFolioPages(f.head, 0, false),
      "BAD_NR",
      "removeFolioPages",
      /nr 0 must be >= 1/,
    );
    expectRefusal(() => g.removeRmap(f.head, -2), "BAD_NR", "removeRmap", /nr -2 must be >= 1/);
    // a negative pfn is not a pfn at all, before any look-up in memory
    expectRefusal(() => g.removeRmap(-1, 1), "BAD_PFN", "removeRmap", /pfn -1 is not a page frame number/);
    expectRefusal(
      () => g.removeFolioPages(1.5, 1, false),
      "BAD_PFN",
      "removeFolioPages",
      /pfn 1\.5 is not a page/,
    );
    expectRefusal(
      () => g.removeRmap(5000, 1),
      "BAD_PFN",
      "removeRmap",
      /pfn 5000 is outside physical memory/,
    );
    let cause: unknown;
    try {
      g.removeFolioPages(5000, 1, false);
    } catch (e) {
      cause = (e as Error).cause;
    }
    expect(cause).toBeInstanceOf(Error);
    expectRefusal(
      () => g.removeFolioPages(f.head + 1, 4, false),
      "NR_OUTSIDE_FOLIO",
      "removeFolioPages",
      new RegExp(`\\[${f.head + 1}, ${f.head + 5}\\) leaves the folio at ${f.head} \\(4 pages\\)`),
    );
    expectRefusal(
      () => g.removePageSize(f.head, false, 12288),
      "BAD_ARGUMENT",
      "removePageSize",
      /page size 12288 is not a power-of-two page size/,
    );
    g.finish();
  });

  it("queueing: no range, delay without tlb_delay_rmap, a folio run on a per-page storage, a full batch", () => {
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 2);
    const g = gatherOn(fx, encodedPage, { alloc: () => false });
    expectRefusal(() => g.removePage(f.head, false), "NO_RANGE", "removePage", /VM_BUG_ON\(!tlb->end\)/);
    expectRefusal(
      () => g.removeFolioPages(f.head, 1, false),
      "NO_RANGE",
      "removeFolioPages",
      /no TLB range recorded before queueing/,
    );
    g.tlbRemoveTlbEntries(0, 4);
    expectRefusal(
      () => g.removePage(f.head, true),
      "BAD_ARGUMENT",
      "removePage",
      /delay_rmap without tlbDelayRmap\(\) having set delayed_rmap/,
    );
    expectRefusal(
      () => g.removeFolioPages(f.head, 4, false),
      "UNSUPPORTED",
      "removeFolioPages",
      /^gather\.removeFolioPages: encoded-page queues one page per call \(policy\.walkBatchesFolioPtes is false\)/,
    );
    const t = gatherTrusted(g);
    expectRefusal(
      () => t.removeFolioPagesTrusted(f.head, 4, false),
      "UNSUPPORTED",
      "removeFolioPages",
      /encoded-page queues one page per call \(policy\.walkBatchesFolioPtes is false\)/,
    );
    expectRefusal(
      () => t.zapPresentTrusted(f.head, f.head, 4, 0, false),
      "UNSUPPORTED",
      "removeFolioPages",
      /encoded-page queues one page per call \(policy\.walkBatchesFolioPtes is false\)/,
    );
    const singles = Array.from({ length: 8 }, () => mapAnonFolio(fx, 0).head);
    g.tlbRemoveTlbEntries(0x400000, 9);
    for (const h of singles) {
      g.removeRmap(h, 1);
      g.removePage(h, false);
    }
    expectRefusal(
      () => g.removePage(f.head, false),
      "BATCH_OVERFLOW",
      "add",
      /queued into a full batch: the previous call reported full and the caller did not flush/,
      "storage",
    );
    g.flushMmu();
    g.finish();
  });

  it("PTL, flush reasons, NO_GATHER delay, finished gathers", () => {
    const fx = createGatherFixture(arch);
    const g = gatherOn(fx, contigRange);
    expectRefusal(
      () => g.flushRmaps(),
      "NOT_UNDER_PTL",
      "flushRmaps",
      /tlb_flush_rmaps must run before the PTL is dropped/,
    );
    for (const [fn, method] of [
      [() => g.flushMmu("soon" as TlbFlushReason), "flushMmu"],
      [() => g.flushMmuTlbonly("soon" as TlbFlushReason), "flushMmuTlbonly"],
    ] as const)
      expectRefusal(
        fn,
        "BAD_ARGUMENT",
        method,
        /unknown flush reason "soon"; expected one of endVma, batchFull, dirtyShared, tableFree, nested, finish, pteClear, pfnmap, caller/,
      );
    // every documented reason is accepted
    for (const why of [
      "endVma",
      "batchFull",
      "dirtyShared",
      "tableFree",
      "nested",
      "finish",
      "pteClear",
      "pfnmap",
      "caller",
    ])
      g.flushMmuTlbonly(why as TlbFlushReason);
    expect(g.counters.tlbFlushSkipped).toBe(9);
    g.finish();
    expectRefusal(
      () => g.removeRmap(0, 1),
      "FINISHED",
      "removeRmap",
      /the gather was used after tlb_finish_mmu/,
    );

    const ng = defineArch({ name: "ng", noGather: true, delayRmap: false, batchRmap: false });
    const fx2 = createGatherFixture(ng);
    const f = mapAnonFolio(fx2, 0);
    const g2 = gatherOn(fx2, encodedNrPages);
    g2.tlbRemoveTlbEntry(0);
    expectRefusal(
      () => g2.removePage(f.head, true),
      "INVARIANT",
      "removePage",
      /a NO_GATHER arch cannot delay rmap removal \(s390 WARN_ON\)/,
    );
    expect(fx2.mem.isFree(f.head)).toBe(false);
    g2.finish();
  });

  it("the finished gather names each entry point", () => {
    const fx = createGatherFixture(arch);
    const f = mapAnonFolio(fx, 0);
    const g = gatherOn(fx, encodedNrPages);
    g.finish();
    const t = gatherTrusted(g);
    const vma = { exec: false, huge: false, pfnmap: false };
    const calls: Array<[() => unknown, string]> = [
      [() => g.tlbStartVma(vma), "tlbStartVma"],
      [() => g.tlbEndVma(vma), "tlbEndVma"],
      [() => g.ptepGetAndClear(0, 1), "ptepGetAndClear"],
      [() => g.tlbRemoveTlbEntry(0), "tlbRemoveTlbEntry"],
      [() => g.tlbRemoveTlbEntries(0, 1), "tlbRemoveTlbEntries"],
      [() => g.tlbRemovePmdTlbEntry(0), "tlbRemovePmdTlbEntry"],
      [() => g.tlbRemovePudTlbEntry(0), "tlbRemovePudTlbEntry"],
      [() => g.tlbDelayRmap(), "tlbDelayRmap"],
      [() => g.removeRmap(f.head, 1), "removeRmap"],
      [() => g.removePage(f.head, false), "removePage"],
      [() => g.removePageSize(f.head, false, 4096), "removePageSize"],
      [() => g.removeFolioPages(f.head, 1, false), "removeFolioPages"],
      [() => g.enterPtl(), "enterPtl"],
      [() => g.leavePtl(), "leavePtl"],
      [() => g.discardRmaps(), "discardRmaps"],
      [() => g.flushRmaps(), "flushRmaps"],
      [() => g.flushMmuTlbonly(), "flushMmuTlbonly"],
      [() => g.flushMmu(), "flushMmu"],
      [() => g.finish(), "finish"],
      [() => g.pteFreeTlb(f.head, 0), "pteFreeTlb"],
      [() => g.pmdFreeTlb(f.head, 0), "pmdFreeTlb"],
      [() => g.pudFreeTlb(f.head, 0), "pudFreeTlb"],
      [() => g.p4dFreeTlb(f.head, 0), "p4dFreeTlb"],
      [() => t.removeRmapTrusted(f.head, f.head, 1), "removeRmap"],
      [() => t.removePageTrusted(f.head, false), "removePage"],
      [() => t.removeFolioPagesTrusted(f.head, 1, false), "removeFolioPages"],
      [() => t.zapPresentTrusted(f.head, f.head, 1, 0, true), "ptepGetAndClear"],
      [() => t.zapSinglesRunTrusted(Int32Array.of(f.head), 1, 0), "ptepGetAndClear"],
      [() => t.zapPresentRunPerPageTrusted(f.head, f.head, 1, 0, true), "ptepGetAndClear"],
    ];
    for (const [fn, method] of calls) expectRefusal(fn, "FINISHED", method, /used after tlb_finish_mmu/);
  });

  it("the stage operations and the arch's CPU lists", () => {
    const fx = createGatherFixture(arch);
    const attempt = (step: (ops: GatherStageOps) => void) => {
      const g = gatherOn(fx, defineVariant(encodedNrPages, { name: "step", steps: { flushMmu: step } }));
      return () => g.flushMmu();
    };
    expectRefusal(
      attempt((ops) => ops.tlbAdjustRange(4096, 0)),
      "BAD_ARGUMENT",
      "tlbAdjustRange",
      /\[4096, 4096 \+ 0\) is not a non-empty range of user addresses/,
    );
    expectRefusal(
      attempt((ops) => ops.tlbFlushLevelRange("pte", 2 ** 47, 4096)),
      "BAD_ARGUMENT",
      "tlbFlushLevelRange",
      /is not a non-empty range of user addresses/,
    );
    expectRefusal(
      attempt((ops) => ops.tlbFlushLevelRange("pgd" as "pte", 0, 4096)),
      "BAD_ARGUMENT",
      "tlbFlushLevelRange",
      /unknown level "pgd"/,
    );
    // each level sets its own bit only
    for (const level of ["pte", "pmd", "pud", "p4d"] as const) {
      let bits: boolean[] = [];
      attempt((ops) => {
        ops.tlbFlushLevelRange(level, 0x200000, 4096);
        const v = ops.view;
        bits = [v.clearedPtes, v.clearedPmds, v.clearedPuds, v.clearedP4ds];
      })();
      expect(bits).toEqual(["pte", "pmd", "pud", "p4d"].map((l) => l === level));
    }
    const cpuArch = (cpus: unknown) =>
      defineArch({
        name: "cpus",
        mergeVmas: true,
        tlbFlush: (tlb, ops) => ops.flushRange(tlb.start, tlb.end, 4096, false, cpus as number[]),
      });
    const fx2 = createGatherFixture(cpuArch([0, 5]));
    fx2.mm.cpumask = [0, 1];
    const g = gatherOn(fx2, encodedNrPages);
    g.tlbRemoveTlbEntry(0);
    expectRefusal(
      () => g.flushMmuTlbonly(),
      "BAD_ARGUMENT",
      "flushRange",
      /cpus \[0,5\] must be CPUs of the mm's cpumask \[0, 1\]/,
    );
    const fx3 = createGatherFixture(cpuArch("0"));
    const g3 = gatherOn(fx3, encodedNrPages);
    g3.tlbRemoveTlbEntry(0);
    expectRefusal(
      () => g3.flushMmuTlbonly(),
      "BAD_ARGUMENT",
      "flushRange",
      /must be CPUs of the mm's cpumask/,
    );
    const mmArch = defineArch({
      name: "mm-cpus",
      mergeVmas: true,
      tlbFlush: (_t, ops) => ops.flushMm(false, [7]),
    });
    const fx4 = createGatherFixture(mmArch);
    const g4 = gatherOn(fx4, encodedNrPages);
    g4.tlbRemoveTlbEntry(0);
    expectRefusal(() => g4.flushMmuTlbonly(), "BAD_ARGUMENT", "flushMm", /cpus \[7\] must be CPUs/);
  });

  it("gatherTrusted refuses what createMmuGather did not make", () => {
    const fx = createGatherFixture(arch);
    const g = gatherOn(fx, encodedPage);
    expectRefusal(
      () => gatherTrusted({ ...g } as MmuGather),
      "INVARIANT",
      "gatherTrusted",
      /tlb must be a gather made by createMmuGather/,
      "internal",
    );
    expect(gatherTrusted(g)).toBe(g);
    g.finish();
  });

  it("the variant look-ups", () => {
    expectRefusal(
      () => getVariant("x" as "encoded-page"),
      "BAD_VARIANT",
      "getVariant",
      /unknown variant "x"/,
      "variants",
    );
    expectRefusal(
      () => encodedNrPagesFor("5.0" as "6.9"),
      "BAD_VARIANT",
      "encodedNrPagesFor",
      /unknown kernel "5\.0"; expected one of 6\.9, 6\.18/,
      "variants",
    );
    expectRefusal(
      () => defineVariant(encodedPage, { steps: { removeTable: null as never } }),
      "BAD_VARIANT",
      "defineVariant",
      /step removeTable must be a function/,
      "variants",
    );
  });
});

describe("s390's TLB operations: IPTE at clear, lazy flush_mm, IDTE at flush", () => {
  // A NO_GATHER arch in the manner of arch/s390/include/asm/tlb.h and pgtable.h: ptep_get_and_clear
  // invalidates each PTE at once with IPTE when another CPU has the mm attached, else only marks the
  // mm for a lazy flush; tlb_flush issues IDTE only when a flush_mm is owed.
  const s390 = defineArch({
    name: "s390-like",
    noGather: true,
    delayRmap: false,
    batchRmap: false,
    pteClear(tlb, addr, nr, ops) {
      if (tlb.mm.attachedElsewhere) ops.ipte(addr, nr);
      else ops.invalidateLazy(nr);
    },
    tlbFlush(tlb, ops) {
      if (tlb.mm.flushMm) ops.idte();
    },
  });

  it("IPTE: one invalidation per PTE, events and listener see the exact range", () => {
    const fx = createGatherFixture(s390);
    const f = mapAnonFolio(fx, 2);
    const { events, sink } = recordEvents();
    const seen: unknown[][] = [];
    const g = gatherOn(fx, encodedNrPages, {
      events: sink,
      tlbListener: { tlbInvalidate: (...a: unknown[]) => seen.push(a) },
    });
    g.ptepGetAndClear(0x400000, 4);
    g.tlbRemoveTlbEntries(0x400000, 4);
    g.removeRmap(f.head, 4);
    g.removeFolioPages(f.head, 4, false);
    expect(fx.mem.isFree(f.head)).toBe(true);
    g.finish();
    expect(events.filter((e) => e.type === "tlbFlushed")).toEqual([
      {
        type: "tlbFlushed",
        kind: "ipte",
        reason: "pteClear",
        cpus: null,
        start: 0x400000,
        end: 0x404000,
        stride: 4096,
        walkCaches: false,
      },
    ]);
    expect(seen).toEqual([[fx.mm.id, "ipte", 0x400000, 0x404000, 4096, false, null]]);
    expect(g.counters).toMatchObject({ ipte: 4, lazyInvalidations: 0, idte: 0, tlbFlushes: 1 });
  });

  it("lazy: the clear marks flush_mm; the flush issues one IDTE (walk caches too) and clears it", () => {
    const fx = createGatherFixture(s390);
    fx.mm.attachedElsewhere = false;
    const f = mapAnonFolio(fx, 1);
    const { events, sink } = recordEvents();
    const seen: unknown[][] = [];
    const g = gatherOn(fx, encodedNrPages, {
      events: sink,
      tlbListener: { tlbInvalidate: (...a: unknown[]) => seen.push(a) },
    });
    g.ptepGetAndClear(0x400000, 2);
    expect(fx.mm.flushMm).toBe(true);
    g.tlbRemoveTlbEntries(0x400000, 2);
    g.removeRmap(f.head, 2);
    g.removeFolioPages(f.head, 2, false);
    g.flushMmu("caller");
    expect(fx.mm.flushMm).toBe(false);
    g.finish();
    expect(events.filter((e) => e.type === "tlbFlushed")).toEqual([
      {
        type: "tlbFlushed",
        kind: "idte",
        reason: "caller",
        cpus: null,
        start: 0,
        end: 0,
        stride: 0,
        walkCaches: true,
      },
    ]);
    expect(seen).toEqual([[fx.mm.id, "idte", 0, 0, 0, true, null]]);
    expect(g.counters).toEqual({
      ...createGatherCounters(),
      pagesQueued: 2,
      lazyInvalidations: 2,
      idte: 1,
      tlbFlushes: 1,
      tlbFlushSkipped: 1,
      rmapCallsImmediate: 1,
      rmapPages: 2,
      flushMmuCalls: 2,
      freeSwapCacheCalls: 1,
      releaseCalls: 1,
      pagesReleased: 2,
      pagesFreedOnQueue: 2,
    });
  });

  it("setFlushMm sets and clears the mm's lazy-flush flag", () => {
    const flags: boolean[] = [];
    const a = defineArch({
      name: "flag",
      mergeVmas: true,
      tlbFlush(tlb, ops) {
        ops.setFlushMm(true);
        flags.push(tlb.mm.flushMm);
        ops.setFlushMm(false);
        flags.push(tlb.mm.flushMm);
      },
    });
    const fx = createGatherFixture(a);
    const g = gatherOn(fx, encodedNrPages);
    g.tlbRemoveTlbEntry(0);
    g.finish();
    expect(flags).toEqual([true, false]);
  });
});
