// Public API of @mmgather/arch-arm64: the arm64 ArchTlb adapter, its geometry per granule, its TLBI
// arithmetic and its cost profile.

export type { Arm64Options } from "./arm64.js";
export { arm64Arch, createArm64Arch } from "./arm64.js";
export { arm64Cost } from "./cost.js";
export type { Arm64PageSize } from "./geometry.js";
export { arm64Geometry } from "./geometry.js";
export type { TlbiCount } from "./tlbflush.js";
export {
  flushTlbRangeOps,
  MAX_TLBI_RANGE_PAGES,
  maxDvmOps,
  TLBI_TTL_UNKNOWN,
  tlbGetLevel,
  tlbiRangeNum,
  tlbiRangePages,
} from "./tlbflush.js";
