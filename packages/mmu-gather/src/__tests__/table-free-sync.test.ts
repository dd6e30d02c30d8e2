// What page-table freeing waits for (mm/mmu_gather.c, v6.18): an RCU table batch goes to call_rcu
// (tlb_remove_table_free) and its tables reach the allocator only when the callback runs; a table freed
// alone because no batch page could be allocated waits for tlb_remove_table_sync_one's IPI first.

import { createGatherFixture, gatherOn } from "@mmgather/test-utils";
import { describe, expect, it } from "vitest";
import {
  defineArch,
  encodedNrPages,
  type GatherEvent,
  IMMEDIATE_TABLE_FREE_SYNC,
  isGatherError,
  type TableFreeSync,
} from "../index.js";

/** A TableFreeSync that keeps the callbacks until `end()` and logs what it was asked. */
function deferred() {
  const log: string[] = [];
  const pending: (() => void)[] = [];
  const sync: TableFreeSync = {
    callRcu(free) {
      log.push("call_rcu");
      pending.push(free);
    },
    syncOne() {
      log.push("sync_one");
    },
  };
  return {
    sync,
    log,
    end() {
      for (const f of pending.splice(0)) f();
    },
  };
}

describe("TableFreeSync", () => {
  it("an RCU table batch is counted at call_rcu and freed only when the grace period ends", () => {
    const fx = createGatherFixture(defineArch({ name: "rcu", tableFree: "rcu" }));
    const d = deferred();
    const events: GatherEvent[] = [];
    const g = gatherOn(fx, encodedNrPages, { tableSync: d.sync, events: (e) => events.push(e) });
    const tables = [fx.mem.allocFolio(0), fx.mem.allocFolio(0)];
    g.pteFreeTlb(tables[0], 0x400000);
    g.pmdFreeTlb(tables[1], 0x400000);
    g.finish();
    expect(d.log).toEqual(["call_rcu"]);
    expect(g.counters.rcuCalls).toBe(1);
    expect(g.counters.tablesFreed).toBe(2);
    // The grace period has not ended: the tables are still allocated, no tablesFreed event yet.
    for (const t of tables) expect(fx.mem.isFree(t)).toBe(false);
    expect(events.some((e) => e.type === "tablesFreed")).toBe(false);
    d.end();
    for (const t of tables) expect(fx.mem.isFree(t)).toBe(true);
    expect(events.filter((e) => e.type === "tablesFreed")).toEqual([
      { type: "tablesFreed", pfns: tables, viaRcu: true },
    ]);
  });

  it("a direct-free arch never calls call_rcu; the tables go after the flush", () => {
    const fx = createGatherFixture(defineArch({ name: "direct", tableFree: "direct" }));
    const d = deferred();
    const g = gatherOn(fx, encodedNrPages, { tableSync: d.sync });
    const t = fx.mem.allocFolio(0);
    g.pteFreeTlb(t, 0x400000);
    g.finish();
    expect(d.log).toEqual([]);
    expect(fx.mem.isFree(t)).toBe(true);
  });

  it("a table freed alone (no batch page) waits for tlb_remove_table_sync_one, then goes at once", () => {
    const fx = createGatherFixture(defineArch({ name: "rcu", tableFree: "rcu" }));
    const d = deferred();
    const g = gatherOn(fx, encodedNrPages, { tableSync: d.sync, alloc: () => false });
    const t = fx.mem.allocFolio(0);
    g.pteFreeTlb(t, 0x400000);
    expect(d.log).toEqual(["sync_one"]);
    expect(fx.mem.isFree(t)).toBe(true);
    expect(g.counters.tableSyncOne).toBe(1);
    g.finish();
  });

  it("the default frees at once: a gather used alone has no lockless walker to wait for", () => {
    let ran = false;
    IMMEDIATE_TABLE_FREE_SYNC.callRcu(() => {
      ran = true;
    });
    expect(ran).toBe(true);
    expect(() => IMMEDIATE_TABLE_FREE_SYNC.syncOne()).not.toThrow();
    expect(Object.isFrozen(IMMEDIATE_TABLE_FREE_SYNC)).toBe(true);
  });

  it("refuses a synchronisation, listener or allocator that is not one, with a typed error", () => {
    const fx = createGatherFixture(defineArch({ name: "rcu" }));
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ tableSync: {} }, /tableSync must have callRcu/],
      [{ tableSync: { callRcu: () => {} } }, /tableSync must have callRcu/],
      [{ tlbListener: {} }, /tlbListener.tlbInvalidate must be a function/],
      [{ alloc: true }, /alloc must be a function/],
    ];
    for (const [extra, msg] of bad) {
      try {
        gatherOn(fx, encodedNrPages, extra as never);
        expect.unreachable();
      } catch (e) {
        expect(isGatherError(e) && e.code).toBe("BAD_ARGUMENT");
        expect(String(e)).toMatch(msg);
      }
    }
  });
});
