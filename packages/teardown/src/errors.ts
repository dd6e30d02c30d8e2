// Models: the kernel's VM_BUG_ON / -EINVAL / -ENOMEM paths of mmap, munmap and madvise
// (mm/mmap.c, mm/madvise.c) as one typed error. Omits: errno numbers.

import { isMmgatherError, MmgatherError, type MmgatherErrorOptions } from "@mmgather/folio";

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
  | "BAD_DEVICE"
  | "DEADLOCK"
  | "INVARIANT";

/** The one error class of @mmgather/teardown: a `code`, where it came from, and a clear message. */
export class TeardownError extends MmgatherError<TeardownErrorCode> {
  constructor(
    code: TeardownErrorCode,
    module: string,
    method: string,
    message: string,
    options?: MmgatherErrorOptions,
  ) {
    super("TeardownError", code, module, method, message, options);
  }
}

/** True for any TeardownError, including one thrown by another loaded copy of this package. */
export function isTeardownError(u: unknown): u is TeardownError {
  return isMmgatherError(u, "TeardownError");
}
