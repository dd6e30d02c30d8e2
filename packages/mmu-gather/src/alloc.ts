// Models: the GFP_NOWAIT outcome of __get_free_page() in tlb_next_batch() and tlb_remove_table().
// Omits: real memory pressure; outcomes are a deterministic function of the allocation ordinal.

import { GatherError } from "./errors.js";
import type { BatchAllocPolicy } from "./types.js";

/** Every batch-page allocation succeeds (the default). */
export const alwaysSucceed: BatchAllocPolicy = () => true;

/** Allocations whose ordinal (0-based, per gather) is listed fail; the rest succeed. */
export function failAllocAt(ordinals: readonly number[]): BatchAllocPolicy {
  const set = new Set(ordinals);
  return (ordinal) => !set.has(ordinal);
}

/**
 * Each allocation fails with `probability`, decided by a seeded hash of (seed, ordinal): the same
 * seed gives the same outcomes in every run and every variant.
 */
export function seededAllocFailure(seed: number, probability: number): BatchAllocPolicy {
  if (!(probability >= 0 && probability <= 1))
    throw new GatherError("BAD_ARGUMENT", "alloc", "seededAllocFailure", "probability must be in [0, 1]");
  return (ordinal) => {
    // mulberry32 step keyed by seed and ordinal
    let t = (seed ^ Math.imul(ordinal + 1, 0x9e3779b9)) >>> 0;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return u >= probability;
  };
}
