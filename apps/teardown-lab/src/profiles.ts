// The cost profiles a run may pick with --profile. Each is data exported by an arch package; the
// arch adapter carries its own default (generic and x86: x86-64-4210r, s390: s390, arm64: arm64-altra-tlbi). Browser-safe.

import { arm64Cost } from "@mmgather/arch-arm64";
import { arm64AltraCost, arm64AltraPriorCost, x86_64Xeon4210rCost } from "@mmgather/arch-generic";
import { s390Cost } from "@mmgather/arch-s390";
import type { CostProfile } from "@mmgather/mmu-gather";
import { defaultCost } from "@mmgather/mmu-gather";

export const PROFILES: Readonly<Record<string, CostProfile>> = {
  "x86-64-4210r": x86_64Xeon4210rCost,
  "arm64-altra": arm64AltraCost,
  "arm64-altra-tlbi": arm64Cost,
  s390: s390Cost,
  "default-priors": defaultCost,
  "arm64-altra-priors": arm64AltraPriorCost,
};

export const PROFILE_NAMES = Object.keys(PROFILES);
