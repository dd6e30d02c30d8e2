export type { ChildConfig, ChildReport, Layout, MappingSpec } from "./child.js";
export { onExitPath } from "./cleanup.js";
export {
  BASELINE,
  childConfig,
  cpuCount,
  HOST_FOLIOS,
  HOST_OPS,
  type HostFolio,
  type HostInfo,
  type HostOp,
  type HostPoint,
  type HostTable,
  hostInfo,
  judgeLayout,
  METHOD,
  type MeasureOptions,
  makeFile,
  measure,
  SPREAD_LIMIT,
  type Stats,
  sample,
  stats,
} from "./measure.js";
export { type PageScan, parseSmaps, readSmaps, type SmapsVma, scanPages } from "./proc.js";
export { type ReplayOptions, type ReplayResult, replay } from "./replay.js";
export { HostError } from "./sys.js";
export { mthpSizes, readThpSettings, selected, ThpSettings, thpStat } from "./thp.js";
