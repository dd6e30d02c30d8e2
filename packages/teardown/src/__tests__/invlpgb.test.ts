// The CPU model under an x86 INVLPGB (arch/x86/mm/tlb.c broadcast_tlb_flush, v6.15+): the broadcast
// drops the covered translations on every CPU with the mm loaded — lazy ones included —, drops their
// paging-structure caches when asked, ends no lockless walk (it interrupts no CPU, whatever the arch's
// IPI flushes do) and is not counted as a remote flush (its wait is the gather's TLBSYNC).

import { TLB_FLUSH_ALL } from "@mmgather/mmu-gather";
import { describe, expect, it } from "vitest";
import { CpuTlbs } from "../index.js";

const PAGE = 4096;

/** 4 CPUs with mm 1 loaded, CPU 3 lazy; each caches vpn 16..19 → pfn 100..103 and walk entry 50. */
function machine() {
  const t = new CpuTlbs({ nrCpus: 4, pageShift: 12 }, 256);
  for (let c = 0; c < 4; c++) {
    t.cpuMm[c] = 1;
    for (let i = 0; i < 4; i++) t.fillTlb(c, 1, 16 + i, 100 + i, 1);
    t.fillWalk(c, 1, 50);
  }
  t.enterLazy(3, 1);
  return t;
}

describe("CpuTlbs: kind invlpgb", () => {
  it("a range INVLPGB drops that range on every CPU, the lazy one too, and the walk caches when asked", () => {
    const t = machine();
    t.tlbInvalidate(1, "invlpgb", 16 * PAGE, 18 * PAGE, PAGE, true, null);
    for (const pfn of [100, 101]) expect(t.tlbRefs[pfn]).toBe(0);
    for (const pfn of [102, 103]) expect(t.tlbRefs[pfn]).toBe(4);
    expect(t.walkRefs[50]).toBe(0);
    expect(t.entriesInvalidated).toBe(8);
    expect(t.invalidations).toEqual({ range: 0, mm: 0, ipte: 0, idte: 0, invlpgb: 1 });
    expect(t.remoteCpuFlushes).toBe(0);
  });

  it("end TLB_FLUSH_ALL is the whole PCID; a final-translations-only INVLPGB keeps the walk caches", () => {
    const t = machine();
    t.tlbInvalidate(1, "invlpgb", 0, TLB_FLUSH_ALL, PAGE, false, null);
    for (let pfn = 100; pfn < 104; pfn++) expect(t.tlbRefs[pfn]).toBe(0);
    expect(t.walkRefs[50]).toBe(4);
  });

  it("ends no lockless walk, even on an arch whose other flushes are IPIs", () => {
    const t = machine();
    t.flushIpi = true;
    const ends: string[] = [];
    t.onWalkDone = (cpu, by) => ends.push(`${cpu}:${by}`);
    t.locklessWalkStart(1, [60]);
    t.tlbInvalidate(1, "invlpgb", 0, TLB_FLUSH_ALL, PAGE, true, null);
    expect(ends).toEqual([]);
    expect(t.inLocklessWalk(1)).toBe(true);
    t.tlbInvalidate(1, "range", 0, PAGE, PAGE, true, [1]);
    expect(ends).toEqual(["1:flushIpi"]);
  });
});
