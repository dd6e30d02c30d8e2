// Models: the cost of arm64 TLB maintenance per counted primitive (ns), on top of the Ampere Altra
// profile fitted for the 2023 series (`arm64AltraCost`, @mmgather/arch-generic). Omits: measurement —
// the TLBI terms are documented priors, not fitted.

import { arm64AltraCost } from "@mmgather/arch-generic";
import type { CostProfile } from "@mmgather/mmu-gather";

/**
 * Ampere Altra (Neoverse N1, 3.0 GHz, no FEAT_TLBIRANGE) for the arm64 adapter: `arm64AltraCost` — its
 * fitted folio terms and its TLB priors (range flush 400 ns for the DSBs around a TLBI loop, whole-mm
 * flush 800 ns, 50 ns per remote CPU of a broadcast) — with the 20 ns it gives every stride entry of a
 * range flush moved onto the TLBIs the arm64 flush really issues: `tlbiVa` 20 ns per TLBI by address,
 * `tlbiRange` 40 ns per range TLBI (a prior: one DVM message like a TLBI by address, which every
 * receiver turns into a walk of its TLB), and `tlbFlushRangeEntry` 0 so no TLBI is counted twice;
 * `contpteConvertPte` 9 ns per PTE contpte_convert rewrites (a prior: its LSE SWP costed as the profile's
 * 8 ns atomic, its store 1 ns).
 */
export const arm64Cost: CostProfile = {
  ...arm64AltraCost,
  name: "arm64-altra-tlbi",
  source:
    "arm64AltraCost (fitted folio terms, TLB priors) with the per-entry range-flush prior (20 ns) moved onto " +
    "the arm64 adapter's exact TLBI counts: tlbiVa 20 ns, tlbiRange 40 ns (prior); contpteConvertPte 9 ns " +
    "(prior: one atomic swap and one store per PTE); not measured",
  tlbFlushRangeEntry: 0,
  tlbiVa: 20,
  tlbiRange: 40,
  contpteConvertPte: 9,
};
