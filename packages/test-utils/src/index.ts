// Public API of @mmgather/test-utils (private): fixtures, a model zap walk, order checks, contract suites.
export { describeArchContract, describeGatherContract } from "./contract.js";
export type { GatherFixture, MappedFolio } from "./fixture.js";
export {
  createGatherFixture,
  gatherOn,
  mapAnonFolio,
  mapFileFolio,
  recordEvents,
  zapFolios,
} from "./fixture.js";
export { checkFlushOrder, checkSecondaryTlbOrder } from "./order.js";
