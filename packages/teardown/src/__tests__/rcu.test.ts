// The RCU grace period of page-table freeing, as lockless walks (gup_fast) see it: a callback waits for
// the walks running when it was queued; an IPI (a flush on an IPI arch, tlb_remove_table_sync_one) waits
// out the walks of the CPUs it reaches.

import { describe, expect, it } from "vitest";
import { CpuTlbs, TableFreeRcu } from "../index.js";

function cpus(flushIpi: boolean) {
  const t = new CpuTlbs({ nrCpus: 4, pageShift: 12 }, 256);
  t.flushIpi = flushIpi;
  for (let c = 0; c < 4; c++) t.cpuMm[c] = 1;
  const ends: string[] = [];
  t.onWalkDone = (cpu, by) => ends.push(`${cpu}:${by}`);
  return { t, ends };
}

describe("TableFreeRcu and lockless walks", () => {
  it("with no walk running a callback runs at once; with one it waits for the grace period", () => {
    const { t, ends } = cpus(true);
    const rcu = new TableFreeRcu(t);
    let ran = 0;
    rcu.callRcu(() => ran++);
    expect(ran).toBe(1);
    t.locklessWalkStart(2, [10, 11, 12]);
    expect(t.locklessRefs[11]).toBe(1);
    rcu.callRcu(() => ran++);
    expect(ran).toBe(1);
    expect(rcu.waiting).toBe(1);
    expect(rcu.gracePeriod()).toBe(1);
    expect(ran).toBe(2);
    expect(ends).toEqual(["2:gracePeriod"]);
    expect(t.locklessRefs[11]).toBe(0);
    expect(t.locklessWalkers).toBe(0);
    expect(rcu.deferredCallbacks).toBe(1);
    expect(rcu.gracePeriod()).toBe(0);
  });

  it("an IPI flush ends the walks on the CPUs it targets only; a broadcast flush ends none", () => {
    const { t, ends } = cpus(true);
    t.locklessWalkStart(1, [20]);
    t.locklessWalkStart(2, [21]);
    t.tlbInvalidate(1, "range", 0, 4096, 4096, false, [0, 1]);
    expect(ends).toEqual(["1:flushIpi"]);
    expect(t.inLocklessWalk(2)).toBe(true);
    t.tlbInvalidate(1, "mm", 0, 0, 0, true, null);
    expect(ends).toEqual(["1:flushIpi", "2:flushIpi"]);

    const b = cpus(false);
    b.t.locklessWalkStart(1, [20]);
    b.t.tlbInvalidate(1, "mm", 0, 0, 0, true, null);
    b.t.tlbInvalidate(1, "idte", 0, 0, 0, true, null);
    expect(b.ends).toEqual([]);
    expect(b.t.locklessRefs[20]).toBe(1);
    // tlb_remove_table_sync_one interrupts every CPU.
    new TableFreeRcu(b.t).syncOne();
    expect(b.ends).toEqual(["1:syncOne"]);
  });

  it("a new walk on a CPU replaces the one it had; an empty path holds nothing", () => {
    const { t } = cpus(true);
    t.locklessWalkStart(1, [5, 6]);
    t.locklessWalkStart(1, [7]);
    expect([t.locklessRefs[5], t.locklessRefs[6], t.locklessRefs[7]]).toEqual([0, 0, 1]);
    expect(t.locklessWalkers).toBe(1);
    t.locklessWalkStart(3, []);
    expect(t.locklessWalkers).toBe(1);
    expect(t.inLocklessWalk(3)).toBe(false);
  });
});
