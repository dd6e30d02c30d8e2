// Models: VM_BUG_ON / bad_page / print_bad_pte conditions of the folio layer, as typed errors.
// Omits: nothing is reported by warning only; every misuse throws.

/** Every error code a `FolioError` may carry. */
export type FolioErrorCode =
  | "ENOMEM"
  | "EINVAL"
  | "BAD_PFN"
  | "BAD_ORDER"
  | "BAD_FLAG"
  | "BAD_STATE"
  | "NOT_HEAD"
  | "USE_AFTER_FREE"
  | "DOUBLE_FREE"
  | "FREE_WITH_REFS"
  | "FREE_MAPPED"
  | "FREE_BAD_FLAGS"
  | "MAPCOUNT_UNDERFLOW"
  | "REFCOUNT_UNDERFLOW"
  | "RANGE_OUTSIDE_FOLIO"
  | "INVARIANT";

const BRAND = Symbol.for("@mmgather/folio/FolioError");

/** The one error class of `@mmgather/folio`. */
export class FolioError extends Error {
  readonly code: FolioErrorCode;
  readonly module: "folio";
  readonly method: string;
  readonly [BRAND] = true;
  constructor(code: FolioErrorCode, method: string, message: string, options?: { cause?: unknown }) {
    super(`${method}${message.startsWith("(") ? "" : ": "}${message}`, options);
    this.name = "FolioError";
    this.code = code;
    this.module = "folio";
    this.method = method;
  }
}

/** True for a `FolioError`, also one thrown by another loaded copy of this package. */
export function isFolioError(u: unknown): u is FolioError {
  if (u instanceof FolioError) return true;
  if (typeof u !== "object" || u === null) return false;
  const rec = u as Record<string | symbol, unknown>;
  return (
    rec[BRAND] === true ||
    (rec.name === "FolioError" && rec.module === "folio" && typeof rec.code === "string")
  );
}
