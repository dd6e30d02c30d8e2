// The measurement child: a short-lived process that builds mappings in its own address space, checks
// each came out as asked, and times one teardown operation on them (munmap, MADV_DONTNEED), or reports
// ready and waits to be killed so that its parent can time its exit. Run as
// `node child.js '<ChildConfig JSON>'`; prints one JSON line (`ChildReport`).
import { closeSync, openSync, readFileSync } from "node:fs";
import { parseSmaps, scanPages } from "./proc.js";
import {
  type Addr,
  check,
  forkSharer,
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  mmapAligned,
  PROT_READ,
  PROT_WRITE,
  sys,
} from "./sys.js";
import { ThpSettings, thpStat } from "./thp.js";

/** One mapping a child builds. */
export interface MappingSpec {
  readonly kind: "anon" | "shmem" | "file-private" | "file-shared";
  readonly bytes: number;
  /** Folio size asked for, KiB (4 = order 0); file mappings take what the page cache has. */
  readonly folioKb: number;
  /** 2M folios mapped by PMD (true) or split to PTEs with each folio kept whole (false). */
  readonly pmd: boolean;
  /** Fraction of the mapping faulted in (a prefix, in whole folios). */
  readonly populate: number;
  /** Fraction of the faulted-in part written (file and shmem; anonymous memory is always written). */
  readonly dirty: number;
  readonly mlock: boolean;
  /** The file of a file mapping. */
  readonly file?: string;
}

export interface ChildConfig {
  readonly mappings: readonly MappingSpec[];
  /** What is timed: munmap or MADV_DONTNEED of [offset, offset + length) of mapping `index`, or exit. */
  readonly op: {
    readonly kind: "munmap" | "dontneed" | "exit";
    readonly index: number;
    readonly offset: number;
    readonly length: number;
  };
  /** fork() once everything is built: the child shares every private page until it is killed. */
  readonly fork: boolean;
  /** Set the mTHP knobs for each mapping while faulting it in (root), restored before anything is timed. */
  readonly configureThp: boolean;
  /** Also scan every page's folio through pagemap + kpageflags (root; about a second per GiB). */
  readonly scan: boolean;
}

/** What a mapping's layout came out as. */
export interface Layout {
  /** Pages present after populating (-1: not scanned). */
  readonly present: number;
  /** [folio size in pages, folios] from pagemap + kpageflags; empty when not scanned or not root. */
  readonly folios: readonly (readonly [number, number])[];
  /** Bytes mapped by PMDs (smaps AnonHugePages / ShmemPmdMapped / FilePmdMapped). */
  readonly pmdMapped: number;
  /** Folios of the asked size allocated at fault, from the per-size THP counters (null: no counter). */
  readonly thpAllocated: number | null;
}

export interface ChildReport {
  readonly layouts: readonly Layout[];
  /** The timed operation, ns (absent for exit: the parent times it). */
  readonly ns?: number;
  readonly ready?: true;
  /** exit: descriptors of memfds the parent reopens (/proc/PID/fd/N) so they outlive the child. */
  readonly keepFds?: readonly number[];
}

const PMD = 2 << 20;
const PAGE = 4096;

function pmdMappedBytes(start: bigint): number {
  const v = parseSmaps(readFileSync("/proc/self/smaps", "utf8")).find((x) => BigInt(x.start) === start);
  if (v === undefined) return 0;
  return (v.kb.AnonHugePages ?? 0) + (v.kb.ShmemPmdMapped ?? 0) + (v.kb.FilePmdMapped ?? 0);
}

const fileKind = (k: MappingSpec["kind"]) => k === "file-private" || k === "file-shared";

/** The memfds this process made (kept open until it ends). */
const memfds: number[] = [];

/** Builds one mapping (mmap, fault in, arrange); returns its address and the THP allocations seen. */
function buildMapping(m: MappingSpec, thp: ThpSettings | null): { addr: Addr; thpAllocated: number | null } {
  const s = sys();
  const shared = m.kind === "shmem" || m.kind === "file-shared";
  const flags = shared ? MAP_SHARED : MAP_PRIVATE;
  let addr: Addr;
  if (fileKind(m.kind)) {
    if (m.file === undefined) throw new Error("a file mapping without a file");
    const fd = openSync(m.file, m.dirty > 0 && shared ? "r+" : "r");
    addr = mmapAligned(m.bytes, PMD, PROT_READ | PROT_WRITE, flags, fd);
    closeSync(fd);
  } else if (m.kind === "shmem") {
    // A tmpfs file that outlives the mapping, as the model's shmem VMA is: a memfd (internal shmem
    // mount, so the per-size shmem_enabled knobs apply), kept open until the process ends, and at
    // exit reopened by the parent first. A shared anonymous mapping would not do: its munmap drops
    // the file's last reference, and __fput's shmem_evict_inode then truncates and frees every folio
    // inside the timed munmap.
    const fd = s.memfdCreate("mmgather-shmem", 0);
    check(fd, "memfd_create");
    memfds.push(fd);
    check(s.ftruncate(fd, m.bytes), "ftruncate(memfd)");
    addr = mmapAligned(m.bytes, PMD, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
    check(s.madvise(addr, m.bytes, m.folioKb > 4 ? MADV_HUGEPAGE : MADV_NOHUGEPAGE), "madvise(HUGEPAGE)");
  } else {
    addr = mmapAligned(m.bytes, PMD, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS);
    check(s.madvise(addr, m.bytes, m.folioKb > 4 ? MADV_HUGEPAGE : MADV_NOHUGEPAGE), "madvise(HUGEPAGE)");
  }
  const knob = m.kind === "shmem" ? "shmem_enabled" : "enabled";
  if (thp !== null && !fileKind(m.kind)) thp.only(m.folioKb, knob);
  const counter = m.kind === "shmem" ? "shmem_alloc" : "anon_fault_alloc";
  const before = m.folioKb > 4 && !fileKind(m.kind) ? thpStat(m.folioKb, counter) : null;
  // Fault in a prefix of whole folios as a program does, by plain stores (anonymous memory, and the
  // dirty share of file and shmem memory: memset) and loads (the rest: memchr for a byte the memory
  // does not hold, so every byte is read). Not MADV_POPULATE_*: its GUP walk passes FOLL_TOUCH,
  // which sets PG_referenced on every folio (follow_page_pte → mark_page_accessed), and the zap's
  // folio_mark_accessed would then activate each file / shmem folio on the LRU — a cost a program's
  // own faults never set up.
  const unit = Math.max(m.folioKb * 1024, PAGE);
  const present = Math.floor((m.bytes * m.populate) / unit) * unit;
  const written = m.kind === "anon" ? present : Math.floor((present * m.dirty) / PAGE) * PAGE;
  if (written > 0) s.memset(addr, 0x5a, written);
  if (present > written) {
    const absent = fileKind(m.kind) ? 0 : 1; // file data is 0x5a everywhere, new shmem is zero
    if (s.memchr(addr + BigInt(written), absent, present - written) !== 0n)
      throw new Error("the read pass found the byte it looked for: the file is not the one made for it");
  }
  if (m.folioKb === 2048 && !m.pmd && m.kind === "anon") {
    // Split every PMD mapping but keep the folios whole: mprotect of one page of each 2M changes the
    // VMA around it, and __split_vma splits a huge PMD that straddles the new boundary
    // (vma_adjust_trans_huge); mprotect back merges the VMAs again, the PTE tables stay.
    for (let off = 0; off + PMD <= present; off += PMD)
      check(s.mprotect(addr + BigInt(off + PAGE), PAGE, PROT_READ), "mprotect(split)");
    check(s.mprotect(addr, m.bytes, PROT_READ | PROT_WRITE), "mprotect(merge)");
  }
  // khugepaged would collapse PTE-mapped ranges into new PMD-mapped THPs (it scans MADV_HUGEPAGE
  // VMAs every few seconds): VM_NOHUGEPAGE stops it and changes nothing already mapped.
  if (!m.pmd && !fileKind(m.kind))
    check(s.madvise(addr, m.bytes, MADV_NOHUGEPAGE), "madvise(MADV_NOHUGEPAGE)");
  if (m.mlock) check(s.mlock(addr, m.bytes), "mlock");
  const after = before === null ? null : thpStat(m.folioKb, counter);
  return { addr, thpAllocated: before === null || after === null ? null : after - before };
}

function layoutOf(m: MappingSpec, addr: Addr, thpAllocated: number | null, scan: boolean): Layout {
  const start = Number(addr);
  const pages = scan ? scanPages(process.pid, { start, end: start + m.bytes }) : null;
  return {
    present: pages?.present ?? -1,
    folios: pages === null ? [] : [...pages.folios].sort((a, b) => a[0] - b[0]),
    pmdMapped: pmdMappedBytes(addr),
    thpAllocated,
  };
}

export function runChild(c: ChildConfig): void {
  const s = sys();
  const thp = c.configureThp ? new ThpSettings() : null;
  const built = c.mappings.map((m) => buildMapping(m, thp));
  thp?.restore();
  const layouts = c.mappings.map((m, i) => layoutOf(m, built[i].addr, built[i].thpAllocated, c.scan));
  const say = (r: ChildReport) => process.stdout.write(`${JSON.stringify(r)}\n`);
  const sharer = c.fork ? forkSharer() : 0;
  if (c.op.kind === "exit") {
    say({ layouts, ready: true, ...(memfds.length > 0 ? { keepFds: memfds } : {}) });
    for (;;) s.pause(); // killed by the parent, which times the exit
  }
  const at = built[c.op.index].addr + BigInt(c.op.offset);
  const t0 = process.hrtime.bigint();
  if (c.op.kind === "dontneed") check(s.madvise(at, c.op.length, MADV_DONTNEED), "madvise(MADV_DONTNEED)");
  else check(s.munmap(at, c.op.length), "munmap");
  const t1 = process.hrtime.bigint();
  if (sharer > 0) process.kill(sharer, "SIGKILL");
  say({ layouts, ns: Number(t1 - t0) });
}

// Entry point when run as a script.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  runChild(JSON.parse(process.argv[2] ?? "{}") as ChildConfig);
}
