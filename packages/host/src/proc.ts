// /proc readers: /proc/PID/smaps (fs/proc/task_mmu.c show_smap: one header line per VMA, then
// "Field: N kB" lines and VmFlags), /proc/PID/pagemap (pagemap_read: bit 63 present, bits 0–54 the PFN,
// zeroed without CAP_SYS_ADMIN) and /proc/kpageflags + /proc/kpagecount (fs/proc/page.c:
// KPF_COMPOUND_HEAD 15, KPF_COMPOUND_TAIL 16; the page's mapcount). Kernel: v6.18 (fs/proc of that tree).
import { closeSync, openSync, readFileSync, readSync } from "node:fs";

/** One VMA of an smaps file: its header, its "Field: N kB" values (in bytes) and VmFlags. */
export interface SmapsVma {
  readonly start: number;
  readonly end: number;
  readonly perms: string;
  readonly path: string;
  readonly kb: Readonly<Record<string, number>>;
  readonly flags: readonly string[];
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S{4})\s+\S+\s+\S+\s+\S+\s*(.*)$/;
const FIELD = /^(\w+):\s+(\d+) kB$/;

/** Parses the text of /proc/PID/smaps; throws on a line it does not understand. */
export function parseSmaps(text: string): SmapsVma[] {
  const out: SmapsVma[] = [];
  let cur: {
    start: number;
    end: number;
    perms: string;
    path: string;
    kb: Record<string, number>;
    flags: string[];
  } | null = null;
  for (const [n, line] of text.split("\n").entries()) {
    if (line === "") continue;
    const h = HEADER.exec(line);
    if (h !== null) {
      cur = {
        start: Number.parseInt(h[1], 16),
        end: Number.parseInt(h[2], 16),
        perms: h[3],
        path: h[4].trim(),
        kb: {},
        flags: [],
      };
      out.push(cur);
      continue;
    }
    if (cur === null) throw new Error(`smaps line ${n + 1}: a field before any VMA header`);
    const f = FIELD.exec(line);
    if (f !== null) {
      cur.kb[f[1]] = Number(f[2]) * 1024;
      continue;
    }
    if (line.startsWith("VmFlags:")) {
      cur.flags = line.slice(8).trim().split(/\s+/);
      continue;
    }
    if (/^\w+:\s+\d+$/.test(line)) continue; // THPeligible and other unitless fields
    throw new Error(`smaps line ${n + 1}: cannot read "${line}"`);
  }
  return out;
}

const PAGE = 4096;

/** What pagemap + kpageflags + kpagecount show of one VMA's present pages. */
export interface PageScan {
  /** Present pages. */
  readonly present: number;
  /** Present pages mapped more than once (kpagecount > 1). */
  readonly shared: number;
  /** Folios by size in pages (a folio partly inside the VMA counts once). */
  readonly folios: ReadonlyMap<number, number>;
}

const KPF_COMPOUND_HEAD = 15;
const KPF_COMPOUND_TAIL = 16;
const MAX_FOLIO_PAGES = 512;

/**
 * Reads 64-bit entries of a /proc/kpage* file by PFN through a cached, aligned block of 64 entries:
 * a large folio's PFNs are contiguous, so it costs a few reads instead of one per page, while the
 * kernel computes only 64 entries per read for scattered order-0 pages.
 * Returns the low 32 bits (the flags of interest, or a mapcount).
 */
class KpageReader {
  private readonly buf = Buffer.alloc(8 * 64);
  private base = -1;
  private valid = 0;
  constructor(private readonly fd: number) {}
  get(pfn: number): number {
    if (pfn < this.base || pfn >= this.base + this.valid) {
      this.base = pfn - (pfn % 64);
      this.valid = Math.floor(readSync(this.fd, this.buf, 0, this.buf.length, this.base * 8) / 8);
      if (pfn >= this.base + this.valid) throw new Error(`no kpage entry for pfn ${pfn}`);
    }
    return this.buf.readUInt32LE((pfn - this.base) * 8);
  }
}

/**
 * Scans the present pages of `v` in process `pid` (root). Returns null when the kernel hides PFNs
 * (not root) or the files cannot be read.
 */
export function scanPages(pid: number, v: Pick<SmapsVma, "start" | "end">): PageScan | null {
  let pm = -1;
  let kf = -1;
  let kc = -1;
  try {
    pm = openSync(`/proc/${pid}/pagemap`, "r");
    kf = openSync("/proc/kpageflags", "r");
    kc = openSync("/proc/kpagecount", "r");
  } catch {
    for (const fd of [pm, kf, kc]) if (fd >= 0) closeSync(fd);
    return null;
  }
  try {
    const flags = new KpageReader(kf);
    const counts = new KpageReader(kc);
    const first = v.start / PAGE;
    const n = (v.end - v.start) / PAGE;
    const chunk = Buffer.alloc(8 * Math.min(n, 1 << 16));
    const folios = new Map<number, number>();
    const seen = new Set<number>(); // heads of large folios already counted
    let present = 0;
    let shared = 0;
    let pfnSeen = false;
    // The folio the previous page belonged to: [curHead, curEnd) in PFNs.
    let curHead = -1;
    let curEnd = -1;
    for (let i0 = 0; i0 < n; i0 += chunk.length / 8) {
      const k = Math.min(chunk.length / 8, n - i0);
      readSync(pm, chunk, 0, k * 8, (first + i0) * 8);
      for (let i = 0; i < k; i++) {
        const hi = chunk.readUInt32LE(i * 8 + 4);
        if (hi >>> 31 === 0) continue; // bit 63: present
        present++;
        const pfn = (hi & 0x7fffff) * 2 ** 32 + chunk.readUInt32LE(i * 8); // bits 0–54
        if (pfn === 0) continue;
        pfnSeen = true;
        if (counts.get(pfn) > 1) shared++;
        if (pfn >= curHead && pfn < curEnd) continue; // the same folio as the page before
        const f = flags.get(pfn);
        let head = pfn;
        if ((f >>> KPF_COMPOUND_TAIL) & 1) {
          for (let back = 0; back < MAX_FOLIO_PAGES && !((flags.get(head) >>> KPF_COMPOUND_HEAD) & 1); back++)
            head--;
        } else if (!((f >>> KPF_COMPOUND_HEAD) & 1)) {
          folios.set(1, (folios.get(1) ?? 0) + 1);
          curHead = pfn;
          curEnd = pfn + 1;
          continue;
        }
        let size = 1;
        while (size < MAX_FOLIO_PAGES && (flags.get(head + size) >>> KPF_COMPOUND_TAIL) & 1) size++;
        // A folio partly inside the range, or met again later in it, counts once.
        if (!seen.has(head)) {
          seen.add(head);
          folios.set(size, (folios.get(size) ?? 0) + 1);
        }
        curHead = head;
        curEnd = head + size;
      }
    }
    return present > 0 && !pfnSeen ? null : { present, shared, folios };
  } catch {
    return null;
  } finally {
    closeSync(pm);
    closeSync(kf);
    closeSync(kc);
  }
}

/** Reads /proc/PID/smaps. */
export function readSmaps(pid: number): SmapsVma[] {
  return parseSmaps(readFileSync(`/proc/${pid}/smaps`, "utf8"));
}
