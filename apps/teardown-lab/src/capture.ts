// `teardown-lab capture PID`: a scenario file that reproduces a running process's memory, read from
// /proc/PID/smaps (fs/proc/task_mmu.c show_smap: one header line per VMA, then "Field: N kB" lines
// and VmFlags): each VMA's kind, size, resident, swapped, dirty, PMD-mapped, locked and shared pages.
// As root it also reads /proc/PID/pagemap (pagemap_read: bit 63 present, bits 0–54 the PFN, zeroed
// without CAP_SYS_ADMIN) and /proc/kpageflags + /proc/kpagecount (fs/proc/page.c: KPF_COMPOUND_HEAD
// 15, KPF_COMPOUND_TAIL 16; the page's mapcount) for the folio-size mix and the pages mapped more than
// once. Every approximation is written into the file as a note. Node-only.
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import type { ScenarioInput } from "./scenario.js";
import { MAX_VMAS } from "./scenario.js";
import { formatSize } from "./size.js";

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

const SPECIAL = new Set(["[vsyscall]", "[vvar]", "[vdso]", "[vvar_vclock]", "[uprobes]"]);
const PAGE = 4096;

type Kind = "anon" | "file-shared" | "file-private" | "shmem";

function kindOf(v: SmapsVma): Kind {
  const shared = v.flags.includes("sh") || v.perms[3] === "s";
  const file = v.path.startsWith("/") && !v.path.startsWith("/dev/zero") && !v.path.startsWith("/SYSV");
  if (shared)
    return file && !v.path.startsWith("/memfd:") && !v.path.startsWith("/dev/shm/") ? "file-shared" : "shmem";
  return file ? "file-private" : "anon";
}

/** A unique name of at most 64 characters: the file's base name (or "anon") at the VMA's address. */
function vmaName(v: SmapsVma): string {
  const at = `@${v.start.toString(16)}`;
  const base = v.path === "" ? "anon" : (v.path.split("/").pop() ?? v.path);
  return base.slice(0, 64 - at.length) + at;
}

const frac = (x: number) => Math.round(Math.min(1, Math.max(0, x)) * 1000) / 1000;

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

function read64(fd: number, index: number, buf: Buffer): bigint {
  if (readSync(fd, buf, 0, 8, index * 8) !== 8) throw new Error(`short read at entry ${index}`);
  return buf.readBigUInt64LE(0);
}

/**
 * Scans the present pages of `v` in process `pid` (root). Returns null when the kernel hides PFNs
 * (not root) or the files cannot be read.
 */
export function scanPages(pid: number, v: SmapsVma): PageScan | null {
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
    const b = Buffer.alloc(8);
    const flagsOf = (pfn: number) => Number(read64(kf, pfn, b) & 0xffffffffn);
    const first = v.start / PAGE;
    const n = (v.end - v.start) / PAGE;
    const chunk = Buffer.alloc(8 * Math.min(n, 1 << 16));
    const seen = new Set<number>();
    const folios = new Map<number, number>();
    let present = 0;
    let shared = 0;
    let pfnSeen = false;
    for (let i0 = 0; i0 < n; i0 += chunk.length / 8) {
      const k = Math.min(chunk.length / 8, n - i0);
      readSync(pm, chunk, 0, k * 8, (first + i0) * 8);
      for (let i = 0; i < k; i++) {
        const e = chunk.readBigUInt64LE(i * 8);
        if (e >> 63n === 0n) continue;
        present++;
        const pfn = Number(e & ((1n << 55n) - 1n));
        if (pfn === 0) continue;
        pfnSeen = true;
        if (read64(kc, pfn, b) > 1n) shared++;
        const f = flagsOf(pfn);
        let head = pfn;
        if ((f >>> KPF_COMPOUND_TAIL) & 1) {
          for (let back = 0; back < MAX_FOLIO_PAGES && !((flagsOf(head) >>> KPF_COMPOUND_HEAD) & 1); back++)
            head--;
        } else if (!((f >>> KPF_COMPOUND_HEAD) & 1)) {
          folios.set(1, (folios.get(1) ?? 0) + 1);
          continue;
        }
        if (seen.has(head)) continue;
        seen.add(head);
        let size = 1;
        while (size < MAX_FOLIO_PAGES && (flagsOf(head + size) >>> KPF_COMPOUND_TAIL) & 1) size++;
        folios.set(size, (folios.get(size) ?? 0) + 1);
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

/** The scenario (and its notes) that reproduces the VMAs of a capture (`scans`: by VMA start, root only). */
export function scenarioFromSmaps(
  vmas: readonly SmapsVma[],
  name: string,
  scans: ReadonlyMap<number, PageScan> = new Map(),
): { scenario: ScenarioInput; notes: string[] } {
  const notes: string[] =
    scans.size > 0
      ? ["folio sizes and sharing from /proc/PID/pagemap, /proc/kpageflags and /proc/kpagecount"]
      : [
          "smaps-only capture (not root): folio sizes below a PMD are not visible, PTE-mapped pages are " +
            "taken as 4K folios",
        ];
  const kb = (v: SmapsVma, f: string) => v.kb[f] ?? 0;
  let kept = vmas.filter((v) => !SPECIAL.has(v.path) && kb(v, "Rss") + kb(v, "Swap") > 0);
  const empty = vmas.length - kept.length;
  if (empty > 0) notes.push(`${empty} VMAs with no resident or swapped page (or kernel-provided) left out`);
  if (kept.length > MAX_VMAS) {
    const byPages = [...kept].sort((a, b) => kb(b, "Rss") + kb(b, "Swap") - (kb(a, "Rss") + kb(a, "Swap")));
    const keep = new Set(byPages.slice(0, MAX_VMAS));
    notes.push(`${kept.length - MAX_VMAS} smallest VMAs left out (a scenario holds at most ${MAX_VMAS})`);
    kept = kept.filter((v) => keep.has(v));
  }
  let sharedAnon = 0;
  const out = kept.map((v) => {
    const kind = kindOf(v);
    const size = v.end - v.start;
    const rss = kb(v, "Rss");
    const swap = kind === "anon" ? kb(v, "Swap") : 0;
    const pmd = kb(v, "AnonHugePages") + kb(v, "ShmemPmdMapped") + kb(v, "FilePmdMapped");
    const present = rss + swap;
    const vma: Record<string, unknown> = {
      name: vmaName(v),
      kind,
      size: formatSize(size),
      populate: frac(present / size),
    };
    const scan = scans.get(v.start);
    if (scan !== undefined && scan.folios.size > 0) {
      // Weights pick folios, not pages: the folio sizes in the proportion the capture counted them.
      const mix: Record<string, number> = {};
      for (const [pages, count] of scan.folios) {
        // No anonymous folio of order 1 exists in the model (or the kernel); a partly seen one is rare.
        const p = kind === "anon" && pages === 2 ? 1 : pages;
        const key = formatSize(p * PAGE);
        mix[key] = (mix[key] ?? 0) + (p === pages ? count : 2 * count);
      }
      const keys = Object.keys(mix);
      vma.folio = keys.length === 1 ? keys[0] : mix;
      if (pmd > 0) vma.pmd = true;
      if (pmd > 0 && (scan.folios.get(512) ?? 0) * 512 * PAGE > pmd)
        notes.push(`${vma.name}: 2M folios both PMD- and PTE-mapped; all are PMD-mapped in the scenario`);
    } else if (pmd > 0) {
      // Weights pick folios, not pages: small folios and THPs in the proportion smaps shows.
      const small = Math.max(0, present - pmd) / PAGE;
      vma.folio = small > 0 ? { "4K": small, "2M": pmd / (512 * PAGE) } : "2M";
      vma.pmd = true;
    }
    if (swap > 0) vma.swap = frac(swap / present);
    if (kind === "file-shared" || kind === "shmem")
      vma.dirty = frac((kb(v, "Shared_Dirty") + kb(v, "Private_Dirty")) / Math.max(rss, 1));
    if (kind === "file-private") vma.dirty = frac(kb(v, "Anonymous") / Math.max(rss, 1));
    if (kb(v, "Locked") > 0 || v.flags.includes("lo")) vma.mlock = true;
    // An anon VMA's shared pages are another process's too: a fork. (A private file VMA's shared
    // pages are mostly page cache mapped elsewhere, which the model's page cache already is.)
    if (kind === "anon")
      sharedAnon += scan !== undefined ? scan.shared * PAGE : kb(v, "Shared_Clean") + kb(v, "Shared_Dirty");
    return vma;
  });
  if (sharedAnon > 0)
    notes.push(
      `${formatSize(Math.ceil(sharedAnon / PAGE) * PAGE)} of anonymous pages are shared with another process: ` +
        "modelled as a fork (every private page shared); per-VMA shared fractions are not expressible yet",
    );
  if (out.some((v) => v.folio !== undefined))
    notes.push(
      "PMD-mapped THPs (AnonHugePages / ShmemPmdMapped / FilePmdMapped) become 2M PMD-mapped folios",
    );
  const scenario = {
    name,
    description: `captured from /proc smaps: ${kept.length} VMAs`,
    ...(sharedAnon > 0 ? { fork: true } : {}),
    vmas: out,
    op: { kind: "exit" },
  } as unknown as ScenarioInput;
  return { scenario, notes };
}

/** Page scans of every VMA of `pid` with present pages (root; empty when the kernel hides PFNs). */
export function scanProcess(pid: number, vmas: readonly SmapsVma[]): Map<number, PageScan> {
  const out = new Map<number, PageScan>();
  for (const v of vmas) {
    if ((v.kb.Rss ?? 0) === 0 || SPECIAL.has(v.path)) continue;
    const s = scanPages(pid, v);
    if (s === null) return new Map();
    out.set(v.start, s);
  }
  return out;
}

/** Reads /proc/PID/smaps. */
export function readSmaps(pid: number): SmapsVma[] {
  return parseSmaps(readFileSync(`/proc/${pid}/smaps`, "utf8"));
}
