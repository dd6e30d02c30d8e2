// `@mmgather/folio/internal`: the unchecked ("Trusted") entry points the gather and the zap walk call on
// their hot paths, and the state they take. "Trusted" means the caller guarantees the arguments are
// valid (a head of a live folio, a pfn range inside it, a mapped page); nothing is checked, and a wrong
// argument corrupts the model silently. Every function here has a checked twin on `PhysMem`, and the
// folio tests run each against its twin. Not part of the semver-stable API: it changes with the model.

import { FolioError } from "./errors.js";
import { type FolioState, folioStateOf } from "./mm-types.js";
import type { PhysMem } from "./phys-mem.js";

export {
  flagsOrder0,
  folioFlagsTrusted,
  folioHeadTrusted,
  folioNrPagesTrusted,
  folioTestTrusted,
} from "./folio.js";
export type { FolioState } from "./mm-types.js";
export { folioRemoveRmapPteListTrusted, folioRemoveRmapPtesTrusted } from "./rmap.js";
export { folioRemoveRmapRangeTrusted } from "./rmap-series.js";
export { pageRemoveRmapPtesTrusted, pageRemoveRmapPteTrusted } from "./rmap-v6.5.js";
export { foliosPutRefsDoOneTrusted, foliosPutRefsTrusted, releasePagesTrusted } from "./swap.js";

/** The state behind a PhysMem, for the Trusted entry points (fetch it once, outside the hot loop). */
export function folioState(mem: PhysMem): FolioState {
  const s = typeof mem === "object" && mem !== null ? folioStateOf(mem) : undefined;
  if (s === undefined)
    throw new FolioError("EINVAL", "internal", "folioState", "mem must be a PhysMem from createPhysMem");
  return s;
}
