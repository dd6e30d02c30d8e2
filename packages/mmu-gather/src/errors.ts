// Models: VM_BUG_ON() in mm/mmu_gather.c and the #error checks of include/asm-generic/tlb.h as typed errors.
// Omits: warn-and-continue paths; every violated precondition throws before state changes.

import type { ArchConfigErrorCode, GatherErrorCode } from "./types.js";

const GATHER_BRAND = "@mmgather/mmu-gather:GatherError";
const ARCH_BRAND = "@mmgather/mmu-gather:ArchConfigError";

/** The error class of the gather engine (misuse, kernel VM_BUG_ON). */
export class GatherError extends Error {
  readonly code: GatherErrorCode;
  readonly module: string;
  readonly method: string;
  /** Brand checked by {@link isGatherError}; survives two loaded copies of the package. */
  readonly brand: typeof GATHER_BRAND = GATHER_BRAND;

  constructor(code: GatherErrorCode, module: string, method: string, message: string, cause?: unknown) {
    super(`${module}.${method}: ${message} [${code}]`, cause === undefined ? undefined : { cause });
    this.name = "GatherError";
    this.code = code;
    this.module = module;
    this.method = method;
  }
}

/** True for any GatherError, including one from another loaded copy of this package. */
export function isGatherError(u: unknown): u is GatherError {
  return (
    typeof u === "object" &&
    u !== null &&
    (u as { brand?: unknown }).brand === GATHER_BRAND &&
    typeof (u as { code?: unknown }).code === "string"
  );
}

/** Impossible `ArchTlb` combination (the kernel's `#error`). */
export class ArchConfigError extends Error {
  readonly code: ArchConfigErrorCode;
  readonly module = "arch";
  readonly method = "defineArch";
  readonly arch: string;
  readonly brand: typeof ARCH_BRAND = ARCH_BRAND;

  constructor(code: ArchConfigErrorCode, arch: string, message: string) {
    super(`arch.defineArch(${arch}): ${message} [${code}]`);
    this.name = "ArchConfigError";
    this.code = code;
    this.arch = arch;
  }
}

/** True for any ArchConfigError (brand check). */
export function isArchConfigError(u: unknown): u is ArchConfigError {
  return (
    typeof u === "object" &&
    u !== null &&
    (u as { brand?: unknown }).brand === ARCH_BRAND &&
    typeof (u as { code?: unknown }).code === "string"
  );
}
