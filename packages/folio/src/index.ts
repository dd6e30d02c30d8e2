// Public API of @mmgather/folio.

export type { NodeStatItem, PageFlagName } from "./constants.js";
export {
  COMPOUND_MAPPED,
  FOLIO_BATCH_SIZE,
  FOLIO_PAGES_MAPPED,
  MAX_PAGE_ORDER,
  NodeStat,
  NR_STAT_ITEMS,
  PAGEVEC_SIZE,
  PG,
  PG_ALL_MASK,
  PG_MANAGED_MASK,
  SWAP_CLUSTER_MAX,
} from "./constants.js";
export type { FolioCounterName } from "./counters.js";
export { FolioCounters, PCP_BATCH, PCP_HIGH, pcpZoneSizes, resetFolioCounters } from "./counters.js";
export type { FolioErrorCode } from "./errors.js";
export {
  FolioError,
  isFolioError,
  isMmgatherError,
  MmgatherError,
  type MmgatherErrorOptions,
} from "./errors.js";
export type { AddressSpaceOptions } from "./filemap.js";
export type { DeferredSplitObserver, FreeObserver, PcpPolicy, RmapPolicy } from "./mm-types.js";
export type { AllocOptions } from "./page-alloc.js";
export type { PhysMemConfig } from "./phys-mem.js";
export { createPhysMem, PhysMem } from "./phys-mem.js";
