// Models: the RCU grace period page-table freeing waits on (mm/mmu_gather.c of v6.18:
// tlb_remove_table_free → call_rcu → tlb_remove_table_rcu; tlb_remove_table_one →
// tlb_remove_table_sync_one) as seen by the only readers the model has, lockless walks (gup_fast with
// interrupts off, a read-side critical section since RCU flavours were consolidated in v5.0).
// A callback runs once every walk that was running when it was queued has ended: at once when none is
// running (no reader to wait for: the free order of the model stays that of the gather), else at the
// operation's end, when the grace period completes and the walks have finished.
// Omits: callback batching and softirq timing, rcu_barrier, expedited grace periods, PT_RECLAIM's
// call_rcu for a single table (v6.18 with CONFIG_PT_RECLAIM; the model takes the IPI path).
import type { TableFreeSync } from "@mmgather/mmu-gather";
import type { CpuTlbs } from "./cpu-tlb.js";
import { TeardownError } from "./errors.js";

/** The machine's RCU, as `TableFreeSync` for every gather. */
export class TableFreeRcu implements TableFreeSync {
  private readonly tlbs: CpuTlbs | null;
  private pending: (() => void)[] = [];
  /** Callbacks that had to wait for a grace period (a lockless walk was running when queued). */
  deferredCallbacks = 0;

  constructor(tlbs: CpuTlbs | null) {
    this.tlbs = tlbs;
  }

  /**
   * Takes `src`'s count of deferred callbacks. Only between operations: a waiting callback frees pages
   * of `src`'s machine, so `src` must have none (EINVAL otherwise).
   */
  copyFrom(src: TableFreeRcu): void {
    if (src.pending.length !== 0)
      throw new TeardownError("EINVAL", "rcu", "copyFrom", "callbacks are waiting for a grace period");
    this.pending.length = 0;
    this.deferredCallbacks = src.deferredCallbacks;
  }

  callRcu(free: () => void): void {
    if (this.tlbs === null || this.tlbs.locklessWalkers === 0) {
      free();
      return;
    }
    this.deferredCallbacks++;
    this.pending.push(free);
  }

  syncOne(): void {
    this.tlbs?.endLocklessWalks("syncOne");
  }

  /** Callbacks waiting for the grace period. */
  get waiting(): number {
    return this.pending.length;
  }

  /**
   * The grace period ends: every lockless walk has finished (each CPU passed a quiescent state), then
   * the waiting callbacks run in order. Returns how many ran.
   */
  gracePeriod(): number {
    this.tlbs?.endLocklessWalks("gracePeriod");
    if (this.pending.length === 0) return 0;
    const run = this.pending;
    this.pending = [];
    for (const f of run) f();
    return run.length;
  }
}
