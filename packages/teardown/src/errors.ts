// Models: the kernel's VM_BUG_ON / -EINVAL / -ENOMEM paths of mmap, munmap and madvise
// (mm/mmap.c, mm/madvise.c) as one typed error. Omits: errno numbers.

/** Every way a caller can misuse the teardown model. */
export type TeardownErrorCode =
  | "EINVAL"
  | "ENOMEM"
  | "MISALIGNED"
  | "VMA_OVERLAP"
  | "NO_VMA"
  | "UNKNOWN_VARIANT"
  | "UNKNOWN_WALK"
  | "BAD_SPEC"
  | "BAD_ARCH"
  | "DEAD_MM"
  | "BAD_CPU"
  | "INVARIANT";

const BRAND = "__mmgatherTeardownError";

/** The one error class of @mmgather/teardown: a `code`, where it came from, and a clear message. */
export class TeardownError extends Error {
  readonly code: TeardownErrorCode;
  readonly module: string;
  readonly method: string;
  readonly [BRAND] = true;
  constructor(code: TeardownErrorCode, module: string, method: string, message: string, cause?: unknown) {
    super(`${module}.${method}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = "TeardownError";
    this.code = code;
    this.module = module;
    this.method = method;
  }
}

/** Brand check that still works when two copies of the package are loaded. */
export function isTeardownError(u: unknown): u is TeardownError {
  return typeof u === "object" && u !== null && (u as Record<string, unknown>)[BRAND] === true;
}
