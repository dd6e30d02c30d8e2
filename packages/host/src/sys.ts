// System calls from Node through FFI (koffi, libc): mmap, munmap, madvise, mprotect, mlock,
// memfd_create, ftruncate, memset, memchr, fork, prctl, pause and waitid — the calls a measurement child makes on its own address space. Linux x86-64 /
// arm64 constants (include/uapi/asm-generic/mman-common.h, include/uapi/linux/prctl.h,
// include/uapi/linux/wait.h). Loaded lazily: importing this package never loads a native module.
import { createRequire } from "node:module";

/** Why the host cannot do what was asked (exit 2 in the CLI). */
export class HostError extends Error {
  override readonly name = "HostError";
  constructor(
    readonly code:
      | "HOST_NOT_LINUX"
      | "HOST_NOT_ROOT"
      | "HOST_FFI"
      | "HOST_SYSCALL"
      | "HOST_THP"
      | "HOST_CHILD"
      | "HOST_INPUT",
    message: string,
  ) {
    super(message);
  }
}

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MADV_DONTNEED = 4;
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;
/** Fault every page in as a read / write fault would (v5.14). */
export const MADV_POPULATE_READ = 22;
export const MADV_POPULATE_WRITE = 23;
const PR_SET_PDEATHSIG = 1;
const SIGKILL = 9;
const P_PID = 1;
const WEXITED = 4;
const WNOWAIT = 0x01000000;

/** An address in this process, as a BigInt (what mmap returned). */
export type Addr = bigint;

interface Libc {
  mmap(addr: Addr | null, len: number, prot: number, flags: number, fd: number, off: number): Addr;
  munmap(addr: Addr, len: number): number;
  madvise(addr: Addr, len: number, advice: number): number;
  mprotect(addr: Addr, len: number, prot: number): number;
  fork(): number;
  prctl(option: number, a2: number, a3: number, a4: number, a5: number): number;
  pause(): number;
  mlock(addr: Addr, len: number): number;
  memfdCreate(name: string, flags: number): number;
  memset(addr: Addr, c: number, len: number): void;
  memchr(addr: Addr, c: number, len: number): Addr;
  ftruncate(fd: number, len: number): number;
  waitid(idtype: number, id: number, info: Buffer, options: number): number;
  errno(): number;
}

let libc: Libc | null = null;

/** The libc functions, loaded on first use; HOST_NOT_LINUX / HOST_FFI when they cannot be. */
export function sys(): Libc {
  if (libc !== null) return libc;
  if (process.platform !== "linux")
    throw new HostError("HOST_NOT_LINUX", `host measurements need Linux; this is ${process.platform}`);
  let koffi: typeof import("koffi");
  try {
    koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi");
  } catch (e) {
    throw new HostError("HOST_FFI", `cannot load koffi (FFI to libc): ${(e as Error).message}`);
  }
  const lib = koffi.load("libc.so.6");
  // Addresses cross as uintptr_t (a BigInt above 2^53) so they can be offset in JS.
  const f = {
    mmap: lib.func("uintptr_t mmap(uintptr_t addr, size_t len, int prot, int flags, int fd, int64_t off)"),
    munmap: lib.func("int munmap(uintptr_t addr, size_t len)"),
    madvise: lib.func("int madvise(uintptr_t addr, size_t len, int advice)"),
    mprotect: lib.func("int mprotect(uintptr_t addr, size_t len, int prot)"),
    fork: lib.func("int fork(void)"),
    prctl: lib.func(
      "int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)",
    ),
    pause: lib.func("int pause(void)"),
    mlock: lib.func("int mlock(uintptr_t addr, size_t len)"),
    memfdCreate: lib.func("int memfd_create(const char *name, unsigned int flags)"),
    memset: lib.func("uintptr_t memset(uintptr_t s, int c, size_t n)"),
    memchr: lib.func("uintptr_t memchr(uintptr_t s, int c, size_t n)"),
    ftruncate: lib.func("int ftruncate(int fd, int64_t len)"),
    waitid: lib.func("int waitid(int idtype, uint32_t id, void *info, int options)"),
  };
  libc = {
    mmap: (a, l, p, fl, fd, o) => BigInt(f.mmap(a ?? 0, l, p, fl, fd, o)),
    munmap: (a, l) => f.munmap(a, l),
    madvise: (a, l, adv) => f.madvise(a, l, adv),
    mprotect: (a, l, p) => f.mprotect(a, l, p),
    fork: () => f.fork(),
    prctl: (o, a2, a3, a4, a5) => f.prctl(o, a2, a3, a4, a5),
    pause: () => f.pause(),
    mlock: (a, l) => f.mlock(a, l),
    memfdCreate: (n, fl) => f.memfdCreate(n, fl),
    memset: (a, c, l) => {
      f.memset(a, c, l);
    },
    memchr: (a, c, l) => BigInt(f.memchr(a, c, l)),
    ftruncate: (fd, l) => f.ftruncate(fd, l),
    waitid: (t, id, info, o) => f.waitid(t, id, info, o),
    errno: () => koffi.errno(),
  };
  return libc;
}

/** Throws HOST_SYSCALL naming the call and errno when `rc` is -1 (or MAP_FAILED). */
export function check(rc: number | bigint, what: string): void {
  if (rc === -1 || rc === 0xffffffffffffffffn)
    throw new HostError("HOST_SYSCALL", `${what} failed: errno ${sys().errno()}`);
}

/** An anonymous or file mapping of `len` bytes whose start is aligned to `align` (a power of two). */
export function mmapAligned(len: number, align: number, prot: number, flags: number, fd = -1): Addr {
  const c = sys();
  if (fd >= 0) {
    // A file mapping cannot be trimmed at its head without moving the file offset: reserve an aligned
    // hole with an anonymous mapping, then map the file over it (MAP_FIXED).
    const hole = mmapAligned(len, align, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
    const a = c.mmap(hole, len, prot, flags | 0x10 /* MAP_FIXED */, fd, 0);
    check(a, "mmap(file, MAP_FIXED)");
    return a;
  }
  const raw = c.mmap(null, len + align, prot, flags, -1, 0);
  check(raw, `mmap(${len + align})`);
  const mask = BigInt(align - 1);
  const start = (raw + mask) & ~mask;
  const head = Number(start - raw);
  if (head > 0) check(c.munmap(raw, head), "munmap(head)");
  const tail = align - head;
  if (tail > 0) check(c.munmap(start + BigInt(len), tail), "munmap(tail)");
  return start;
}

/**
 * fork() a child that shares every private page copy-on-write and waits in pause() until killed;
 * it is killed with this process too (PR_SET_PDEATHSIG). Returns its pid.
 */
export function forkSharer(): number {
  const c = sys();
  const pid = c.fork();
  check(pid, "fork");
  if (pid === 0) {
    // The child: one thread, no event loop; only FFI calls until it is killed.
    c.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    for (;;) c.pause();
  }
  return pid;
}

/**
 * Blocks until child `pid` has exited, without reaping it (waitid WEXITED | WNOWAIT), so Node's own
 * child-process handling still sees the exit.
 */
export function waitExited(pid: number): void {
  const info = Buffer.alloc(128); // siginfo_t
  check(sys().waitid(P_PID, pid, info, WEXITED | WNOWAIT), `waitid(${pid})`);
}
