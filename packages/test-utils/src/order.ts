// Models: the ordering invariants of §9 (docs/kernel-reference.md) checked on a gather event stream:
// unhook → TLB invalidate → free; dirty file rmap after the invalidate; tables after a walk-cache flush.
// Omits: address coverage of range flushes (the teardown CPU model checks translations precisely).

import type { GatherEvent } from "@mmgather/mmu-gather";

/**
 * Return every ordering violation in `events` (empty = ordered). `dirtyFilePfns` lists the pages whose
 * rmap must not be removed before their TLB entry is invalidated. The check assumes each page's
 * `pteCleared` event precedes its `pageQueued` event with no other page's clear in between (as the
 * model walk in this package emits them).
 */
export function checkFlushOrder(
  events: readonly GatherEvent[],
  dirtyFilePfns: ReadonlySet<number>,
): string[] {
  const out: string[] = [];
  let lastClear = -1;
  let lastInval = -1;
  let lastWalkInval = -1;
  const clearedAt = new Map<number, number>();
  const tableAt = new Map<number, number>();
  events.forEach((e, seq) => {
    switch (e.type) {
      case "pteCleared":
        lastClear = seq;
        break;
      case "tlbFlushed":
        lastInval = seq;
        if (e.walkCaches || e.kind === "idte") lastWalkInval = seq;
        break;
      case "pageQueued":
        for (let i = 0; i < e.nr; i++) clearedAt.set(e.pfn + i, lastClear);
        break;
      case "rmapRemoved":
        if (e.delayed || dirtyFilePfns.has(e.pfn))
          for (let i = 0; i < e.nr; i++) {
            const pfn = e.pfn + i;
            if (!dirtyFilePfns.has(pfn)) continue;
            const c = clearedAt.get(pfn) ?? lastClear;
            if (!(lastInval > c))
              out.push(`rmap of dirty file page ${pfn} removed before its TLB flush (event ${seq})`);
          }
        break;
      case "pagesFreed":
        e.pfns.forEach((pfn, k) => {
          for (let i = 0; i < e.nrs[k]; i++) {
            const c = clearedAt.get(pfn + i);
            if (c === undefined) continue;
            if (!(lastInval > c)) out.push(`page ${pfn + i} freed before its TLB flush (event ${seq})`);
            clearedAt.delete(pfn + i);
          }
        });
        break;
      case "tableQueued":
        tableAt.set(e.pfn, seq);
        break;
      case "tablesFreed":
        for (const pfn of e.pfns) {
          const q = tableAt.get(pfn) ?? seq;
          if (!(lastWalkInval > q))
            out.push(`page table ${pfn} freed before a walk-cache flush (event ${seq})`);
        }
        break;
      default:
        break;
    }
  });
  return out;
}

/**
 * The secondary-TLB half of the ordering rule (mmu_notifier_arch_invalidate_secondary_tlbs, called
 * from the arch's flush since v6.6): every page queued after its PTEs were cleared is freed only once a
 * `secondaryTlbsInvalidated` event covered the cleared addresses. Returns violations (empty = ok).
 */
export function checkSecondaryTlbOrder(events: readonly GatherEvent[], pageSize: number): string[] {
  const out: string[] = [];
  let cleared: [number, number] = [-1, -1];
  /** pfn → [start, end) bytes of the PTEs it was mapped by, until the devices are told. */
  const pending = new Map<number, [number, number]>();
  events.forEach((e, seq) => {
    switch (e.type) {
      case "pteCleared":
        cleared = [e.addr, e.addr + e.nr * pageSize];
        break;
      case "pageQueued":
        pending.set(e.pfn, cleared);
        break;
      case "secondaryTlbsInvalidated":
        for (const [pfn, [s, t]] of pending) if (e.start <= s && t <= e.end) pending.delete(pfn);
        break;
      case "pagesFreed":
        e.pfns.forEach((first, k) => {
          for (const [pfn, r] of pending) {
            if (pfn < first || pfn >= first + e.nrs[k]) continue;
            out.push(
              `page ${pfn} freed before the secondary TLBs were told about ${r[0]}–${r[1]} (event ${seq})`,
            );
            pending.delete(pfn);
          }
        });
        break;
      default:
        break;
    }
  });
  return out;
}
