// `@mmgather/mmu-gather/internal`: the unchecked ("Trusted") entry points of a gather that the zap
// walk calls on its hot path. "Trusted" means the caller guarantees the arguments (pfns read from its
// own present PTEs, each run inside one live folio); nothing is checked. Each entry point is exactly a
// sequence of checked `MmuGather` calls. Not part of the semver-stable API.

import { GatherError } from "./errors.js";
import { isGatherImpl } from "./gather.js";
import type { MmuGather, MmuGatherTrusted } from "./types.js";

export type { MmuGatherTrusted } from "./types.js";

/** The trusted face of a gather made by `createMmuGather` (the same object). */
export function gatherTrusted(tlb: MmuGather): MmuGather & MmuGatherTrusted {
  if (!isGatherImpl(tlb))
    throw new GatherError(
      "INVARIANT",
      "internal",
      "gatherTrusted",
      "tlb must be a gather made by createMmuGather",
    );
  return tlb;
}
