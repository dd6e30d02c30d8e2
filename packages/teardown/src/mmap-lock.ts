// Models: mm->mmap_lock, the rw_semaphore that orders operations on an address space
// (include/linux/mmap_lock.h: mmap_read_lock, mmap_write_lock, mmap_write_downgrade, *_unlock), as
// the teardown paths of Linux v6.18 (torvalds/linux, Nov 2025) take it:
//   munmap       __vm_munmap → mmap_write_lock; do_vmi_align_munmap → vms_gather_munmap_vmas (split
//                at the edges, detach) → vms_complete_munmap_vmas: mmap_write_downgrade, then
//                vms_clear_ptes (unmap_vmas, free_pgtables, tlb_finish_mmu) under the read lock,
//                mmap_read_unlock (mm/vma.c).
//   MADV_DONTNEED  madvise_lock: read side (mm/madvise.c). v6.16+ first tries the per-VMA lock
//                (MADVISE_VMA_READ_LOCK); munmap's vma_start_write waits for that reader and marks the
//                VMA detached, after which the per-VMA path falls back to mmap_read_lock — for these
//                two operations the order of events is the read side of mmap_lock, modelled as such.
//   exit_mmap    read side around unmap_vmas, write side around free_pgtables (mm/mmap.c).
// Waiting is a `yield`: the concurrency driver runs the other thread until the lock is free.
// Omits: writer-preferring queueing (two threads cannot tell), killable / interruptible waits,
// lock contention cost.
import { TeardownError } from "./errors.js";
import type { Mm } from "./mm.js";

/**
 * What one step of an operation yields: nothing after a lock section (one PTE table, one huge PMD, a
 * gather's setup or finish), "wait" when the thread could not take mmap_lock and waits for another
 * thread to release it — a scheduler switching away from a waiting thread does not preempt it.
 */
export type OpStep = "wait" | undefined;

/** An operation (or part of one) as a generator of steps. */
export type OpSteps = Generator<OpStep, void, unknown>;

/** A thread that yields this many times in a row for the lock is never going to get it. */
const MAX_WAIT_STEPS = 1 << 26;

function deadlock(mm: Mm, method: string): never {
  throw new TeardownError(
    "DEADLOCK",
    "mmap-lock",
    method,
    `mmap_lock of mm ${mm.id} is held (${mm.mmapLock < 0 ? "write" : `${mm.mmapLock} readers`}) and no other thread runs to release it`,
  );
}

/** mmap_write_lock: waits while anyone holds the lock. */
export function* mmapWriteLock(mm: Mm): OpSteps {
  for (let n = 0; mm.mmapLock !== 0; n++) {
    if (n === MAX_WAIT_STEPS) deadlock(mm, "mmapWriteLock");
    yield "wait";
  }
  mm.mmapLock = -1;
}

/** mmap_read_lock: waits while a writer holds the lock. */
export function* mmapReadLock(mm: Mm): OpSteps {
  for (let n = 0; mm.mmapLock < 0; n++) {
    if (n === MAX_WAIT_STEPS) deadlock(mm, "mmapReadLock");
    yield "wait";
  }
  mm.mmapLock++;
}

/** mmap_write_downgrade: the writer becomes a reader without letting another writer in. */
export function mmapWriteDowngrade(mm: Mm): void {
  mm.mmapLock = 1;
}

/** mmap_write_unlock. */
export function mmapWriteUnlock(mm: Mm): void {
  mm.mmapLock = 0;
}

/** mmap_read_unlock. */
export function mmapReadUnlock(mm: Mm): void {
  mm.mmapLock--;
}
