// Models: per-machine cost profiles for the asm-generic adapter (ns per counted primitive; see
// `CostProfile` in @mmgather/mmu-gather for the counter each field multiplies).
// Omits: frequency scaling, contention (every lock and atomic is costed uncontended).
//
// The fitted profiles are produced by `teardown-lab calibrate <name>` from the measurement tables in
// apps/teardown-lab/calibration/*.json; a test in the app re-runs the fit and checks these numbers.

import type { CostProfile } from "@mmgather/mmu-gather";
import { defaultCost } from "@mmgather/mmu-gather";

/**
 * Intel Xeon Silver 4210R (Cascade Lake, 2.4 GHz base / 3.2 GHz turbo): `defaultCost` priors with
 * `atomic`, `pageMapcount`, `folioFree` and `zoneLock` fitted by non-negative least squares to David
 * Hildenbrand's 2024 munmap table (18 points). `zoneLock` multiplies the page allocator's zone-lock
 * round trips (v6.7+ pcp free side — `pcpPolicy: "v6.7"`, PCPF_FREE_HIGH_BATCH clear —, `free_one_page`
 * of orders 4–8); `splitQueueLock` stays at its prior
 * (left free, NNLS drives it to 0 ns, which no spinlock costs).
 * Command: `teardown-lab calibrate x86-64-4210r` (apps/teardown-lab/calibration/x86-64-4210r.json).
 */
export const x86_64Xeon4210rCost: CostProfile = {
  ...defaultCost,
  name: "x86-64-4210r",
  source:
    "defaultCost priors; atomic, pageMapcount, folioFree, zoneLock fitted (NNLS, relative residuals) " +
    "to the munmap table of 'mm/memory: optimize unmap/zap with PTE-mapped THP' (Xeon Silver 4210R): " +
    "teardown-lab calibrate x86-64-4210r",
  // Largest miss over the table's 9 encoded-page/encoded-nr-pages pairs (16K: model 0.654, published 0.803).
  ratioError: 0.23,
  atomic: 13.51,
  pageMapcount: 30.3,
  folioFree: 124.97,
  zoneLock: 87.48,
};

/**
 * Priors for an Ampere Altra core (Neoverse N1, 3.0 GHz, LSE atomics): the x86-64-4210r profile (same
 * kernel code on a server core of similar speed) with the atomics back at their documented priors
 * (LSE atomics ~5–15 ns) and arm64 TLB maintenance, which arm64 broadcasts in hardware (TLBI …IS + DSB: no IPIs, so a remote CPU
 * adds little; a whole-mm flush is one ASID TLBI).
 */
export const arm64AltraPriorCost: CostProfile = {
  ...x86_64Xeon4210rCost,
  name: "arm64-altra-priors",
  source:
    "documented priors for Neoverse N1 (LSE atomics ~5–15 ns, TLBI IS + DSB ~0.3–1 µs, no IPIs), not fitted",
  ratioError: defaultCost.ratioError,
  atomic: 8,
  pageMapcount: 12,
  tlbFlushRange: 400,
  tlbFlushRangeEntry: 20,
  tlbFlushMm: 800,
  tlbRemoteCpu: 50,
};

/**
 * Ampere Altra: `arm64AltraPriorCost` with `pageMapcount`, `statUpdate` and `rmapCall` fitted (NNLS with
 * ridge λ = 0.05 toward the priors) to the relative changes the 2023 series published for kernel-build exits.
 * Command: `teardown-lab calibrate arm64-altra` (apps/teardown-lab/calibration/arm64-altra.json).
 */
export const arm64AltraCost: CostProfile = {
  ...arm64AltraPriorCost,
  name: "arm64-altra",
  source:
    "arm64AltraPriorCost; pageMapcount, statUpdate, rmapCall fitted (NNLS, ridge toward priors) to the 2023 " +
    "'Optimize mmap_exit for large folios' Ampere Altra results: teardown-lab calibrate arm64-altra",
  // The table's 2 whole-exit changes: exit_group-order-3 model 0.670, published 0.740.
  ratioError: 0.11,
  pageMapcount: 4.85,
  statUpdate: 3.95,
  rmapCall: 3.95,
};
