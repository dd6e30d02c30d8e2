// Models: VM_BUG_ON / bad_page / print_bad_pte conditions of the folio layer, as typed errors.
// Omits: nothing is reported by warning only; every misuse throws.
//
// The error template of every mmgather package lives here, in the bottom layer: each package has one
// error class extending `MmgatherError`, constructed as (code, module, method, message, { cause }),
// with the message "module.method: message [CODE]" ("module.method(args): message [CODE]" when the
// message starts with the call's arguments in parentheses), and recognised by one guard that reads a
// registry-wide symbol, so an error thrown by another loaded copy of a package is still recognised.

/** The brand every mmgather error carries, under a registry-wide symbol (shared by every loaded copy). */
const BRAND: unique symbol = Symbol.for("@mmgather/error") as never;

/** Options of every mmgather error. */
export interface MmgatherErrorOptions {
  /** The error this one wraps (kept as the standard `Error.cause`). */
  readonly cause?: unknown;
}

/**
 * The base of every mmgather error class: a `code` from the package's list, the `module` (model file)
 * and `method` that refused, and a message "module.method: message [CODE]" (or "module.method(args):
 * message [CODE]" when `message` starts with "("). Each package subclasses it
 * once and names its codes; recognise them with {@link isMmgatherError}.
 */
export abstract class MmgatherError<Code extends string = string> extends Error {
  /** What was wrong, from the package's code list. */
  readonly code: Code;
  /** The model file that refused (e.g. "rmap", "swapfile", "gather", "workload"). */
  readonly module: string;
  /** The function that refused. */
  readonly method: string;
  /** The brand: the error class's name. */
  readonly [BRAND]: string;

  protected constructor(
    className: string,
    code: Code,
    module: string,
    method: string,
    message: string,
    options?: MmgatherErrorOptions,
  ) {
    super(
      `${module}.${method}${message.startsWith("(") ? "" : ": "}${message} [${code}]`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = className;
    this.code = code;
    this.module = module;
    this.method = method;
    this[BRAND] = className;
  }
}

/**
 * True for an error of any mmgather package (or, given `className`, of that class only, e.g.
 * "FolioError"), also when it was thrown by another loaded copy of the package.
 */
export function isMmgatherError(u: unknown, className?: string): u is MmgatherError {
  if (typeof u !== "object" || u === null) return false;
  const brand = (u as { [BRAND]?: unknown })[BRAND];
  return (
    typeof brand === "string" &&
    (className === undefined || brand === className) &&
    typeof (u as { code?: unknown }).code === "string"
  );
}

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
  | "REFCOUNT_BELOW_MAPCOUNT"
  | "RANGE_OUTSIDE_FOLIO"
  | "INVARIANT";

/** The one error class of `@mmgather/folio`. */
export class FolioError extends MmgatherError<FolioErrorCode> {
  constructor(
    code: FolioErrorCode,
    module: string,
    method: string,
    message: string,
    options?: MmgatherErrorOptions,
  ) {
    super("FolioError", code, module, method, message, options);
  }
}

/** True for a `FolioError`, also one thrown by another loaded copy of this package. */
export function isFolioError(u: unknown): u is FolioError {
  return isMmgatherError(u, "FolioError");
}

/** Throws the FolioError a model file's checked entry point raises (module = the model file). */
export function fail(code: FolioErrorCode, module: string, method: string, message: string): never {
  throw new FolioError(code, module, method, message);
}
