import { s390Arch } from "@mmgather/arch-s390";
import { describe, expect, it } from "vitest";
import { runScenario, type ScenarioSpec, type TrailEvent } from "../index.js";

const variants = ["encoded-page", "contig-range", "encoded-nr-pages"] as const;

/** One dirty page of a shared file mapping, munmapped on a machine with one CPU that caches it. */
function dirtyShared(variant: (typeof variants)[number], cpus: number): ScenarioSpec {
  return {
    memory: 8 << 20,
    vmas: [{ kind: "file-shared", size: 4096, dirtyFraction: 1 }],
    cpus,
    variant,
    op: { kind: "munmap" },
  };
}

function record(spec: ScenarioSpec): TrailEvent[] {
  const out: TrailEvent[] = [];
  const r = runScenario({ ...spec, events: (e) => out.push(e) });
  expect(r.violations).toEqual([]);
  return out;
}

function at(events: TrailEvent[], pred: (e: TrailEvent) => boolean, what: string): number {
  const i = events.findIndex(pred);
  if (i < 0) throw new Error(`no ${what} event in ${events.map((e) => e.type).join(", ")}`);
  return i;
}

describe("ScenarioSpec.events", () => {
  it.each(variants)(
    "%s: dirty shared file page — PTE clear → TLB flush → delayed rmap → PTL unlock → free",
    (variant) => {
      const ev = record(dirtyShared(variant, 1));
      expect(ev[0].type).toBe("opStarted");
      expect(ev[ev.length - 1].type).toBe("opReturned");
      const lock = at(ev, (e) => e.type === "ptlLocked", "ptlLocked");
      const clear = at(ev, (e) => e.type === "pteCleared", "pteCleared");
      const range = at(ev, (e) => e.type === "rangeRecorded" && e.level === "pte", "rangeRecorded");
      const queued = at(ev, (e) => e.type === "pageQueued" && e.nr === 1, "pageQueued");
      const forced = at(
        ev,
        (e) => e.type === "walkForcedFlush" && e.reason === "dirtyShared",
        "walkForcedFlush(dirtyShared)",
      );
      const flush = at(ev, (e) => e.type === "tlbFlushed", "tlbFlushed");
      const inval = at(ev, (e) => e.type === "tlbInvalidated", "tlbInvalidated");
      const rmap = at(ev, (e) => e.type === "rmapRemoved" && e.delayed, "delayed rmapRemoved");
      const rmapsFlushed = at(ev, (e) => e.type === "rmapsFlushed", "rmapsFlushed");
      const unlock = at(ev, (e) => e.type === "ptlUnlocked", "ptlUnlocked");
      const e = ev[rmap];
      if (e.type !== "rmapRemoved") throw new Error("unreachable");
      const pfn = e.pfn;
      const freed = at(ev, (x) => x.type === "pagesFreed" && x.pfns.includes(pfn), "pagesFreed of the page");
      // The kernel's order (mm/memory.c zap_pte_range + tlb_flush_rmaps, commit 5df397dec7c4).
      expect(lock).toBeLessThan(clear);
      expect(clear).toBeLessThan(flush);
      expect(range).toBeLessThan(flush);
      expect(queued).toBeLessThan(flush);
      expect(forced).toBeLessThan(flush);
      expect(flush).toBeLessThan(inval);
      expect(inval).toBeLessThan(rmap);
      expect(rmap).toBeLessThan(rmapsFlushed);
      expect(rmapsFlushed).toBeLessThan(unlock);
      expect(unlock).toBeLessThan(freed);
      // No immediate rmap for the dirty page: its only rmap removal is the delayed one.
      expect(ev.filter((x) => x.type === "rmapRemoved" && x.pfn === pfn)).toHaveLength(1);
      // The page table itself is freed through the table batch after the walk.
      expect(at(ev, (x) => x.type === "tablesFreed", "tablesFreed")).toBeGreaterThan(freed);
    },
  );

  it("delivers the same gather and walk events with the checker off (no CPUs)", () => {
    const withCpu = record(dirtyShared("encoded-nr-pages", 1)).filter((e) => e.type !== "tlbInvalidated");
    const noCpu = record(dirtyShared("encoded-nr-pages", 0));
    expect(noCpu.map((e) => e.type)).toEqual(withCpu.map((e) => e.type));
  });

  it("clean anon pages: immediate rmap under the PTL, page returned to the allocator after the flush", () => {
    const ev = record({ memory: 8 << 20, vmas: [{ kind: "anon", size: 8192 }], op: { kind: "munmap" } });
    const imm = ev.filter((e) => e.type === "rmapRemoved" && !e.delayed);
    expect(imm.length).toBeGreaterThan(0);
    const unlock = at(ev, (e) => e.type === "ptlUnlocked", "ptlUnlocked");
    expect(ev.indexOf(imm[imm.length - 1])).toBeLessThan(unlock);
    const flush = at(ev, (e) => e.type === "tlbFlushed", "tlbFlushed");
    const firstFree = at(ev, (e) => e.type === "pageFreed", "pageFreed");
    expect(flush).toBeLessThan(firstFree);
  });

  it("s390 with another CPU attached: the PTE clear invalidates at once (IPTE), the page is freed on queue", () => {
    const ev = record({ ...dirtyShared("encoded-nr-pages", 2), arch: s390Arch });
    const clear = at(ev, (e) => e.type === "pteCleared", "pteCleared");
    const ipte = at(ev, (e) => e.type === "tlbFlushed" && e.kind === "ipte", "ipte");
    const freed = at(ev, (e) => e.type === "pagesFreed", "pagesFreed");
    expect(clear).toBeLessThan(ipte);
    expect(ipte).toBeLessThan(freed);
    expect(ev.some((e) => e.type === "rmapRemoved" && e.delayed)).toBe(false);
  });

  it("s390 with only the zapping CPU attached: lazy invalidation, one IDTE before munmap returns", () => {
    const ev = record({ ...dirtyShared("encoded-nr-pages", 1), arch: s390Arch });
    expect(ev.some((e) => e.type === "tlbFlushed" && e.kind === "ipte")).toBe(false);
    const freed = at(ev, (e) => e.type === "pagesFreed", "pagesFreed");
    const idte = at(ev, (e) => e.type === "tlbFlushed" && e.kind === "idte", "idte");
    const ret = at(ev, (e) => e.type === "opReturned", "opReturned");
    // ptep_flush_lazy: freed on queue while only this CPU may cache it; __tlb_flush_mm_lazy at finish.
    expect(freed).toBeLessThan(idte);
    expect(idte).toBeLessThan(ret);
  });

  it("huge PMD zapped and the build phase emits nothing", () => {
    const ev = record({
      memory: 16 << 20,
      vmas: [{ kind: "anon", size: 2 << 20, folio: { order: 9 }, pmdMapped: true }],
      op: { kind: "exit" },
    });
    expect(ev[0].type).toBe("opStarted");
    expect(ev.filter((e) => e.type === "hugePmdZapped")).toHaveLength(1);
    expect(ev.filter((e) => e.type === "pageFreed").length).toBeGreaterThan(0);
  });
});
