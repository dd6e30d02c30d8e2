// Models: VM_BUG_ON() in mm/mmu_gather.c and the #error checks of include/asm-generic/tlb.h as typed errors.
// Omits: warn-and-continue paths; every violated precondition throws before state changes.

import { isMmgatherError, MmgatherError, type MmgatherErrorOptions } from "@mmgather/folio";
import type { ArchConfigErrorCode, GatherErrorCode } from "./types.js";

/** The error class of the gather engine (misuse, kernel VM_BUG_ON). */
export class GatherError extends MmgatherError<GatherErrorCode> {
  constructor(
    code: GatherErrorCode,
    module: string,
    method: string,
    message: string,
    options?: MmgatherErrorOptions,
  ) {
    super("GatherError", code, module, method, message, options);
  }
}

/** True for any GatherError, including one from another loaded copy of this package. */
export function isGatherError(u: unknown): u is GatherError {
  return isMmgatherError(u, "GatherError");
}

/** Impossible `ArchTlb` combination (the kernel's `#error`), refused by `defineArch`. */
export class ArchConfigError extends MmgatherError<ArchConfigErrorCode> {
  constructor(
    code: ArchConfigErrorCode,
    module: string,
    method: string,
    message: string,
    options?: MmgatherErrorOptions,
  ) {
    super("ArchConfigError", code, module, method, message, options);
  }
}

/** True for any ArchConfigError, including one from another loaded copy of this package. */
export function isArchConfigError(u: unknown): u is ArchConfigError {
  return isMmgatherError(u, "ArchConfigError");
}
