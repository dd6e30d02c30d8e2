// `teardown-lab capture PID`: a scenario file that reproduces a running process's memory, read from
// /proc/PID/smaps (fs/proc/task_mmu.c show_smap: one header line per VMA, then "Field: N kB" lines
// and VmFlags). This is the smaps-only capture: it sees each VMA's kind, size, resident, swapped,
// dirty, PMD-mapped, locked and shared pages, but not the sizes of PTE-mapped large folios (that
// needs /proc/PID/pagemap + /proc/kpageflags) nor which pages are shared with whom; every
// approximation is written into the file as a note. Node-only.
import { readFileSync } from "node:fs";
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

/** The scenario (and its notes) that reproduces the VMAs of an smaps capture. */
export function scenarioFromSmaps(
  vmas: readonly SmapsVma[],
  name: string,
): { scenario: ScenarioInput; notes: string[] } {
  const notes: string[] = [
    "smaps-only capture: folio sizes below a PMD are not visible (PTE-mapped pages are taken as 4K folios; " +
      "a root capture of /proc/PID/pagemap and /proc/kpageflags would give the mix)",
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
    if (pmd > 0) {
      // Weights pick folios, not pages: small folios and THPs in the proportion the capture shows.
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
    if (kind === "anon") sharedAnon += kb(v, "Shared_Clean") + kb(v, "Shared_Dirty");
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

/** Reads /proc/PID/smaps. */
export function readSmaps(pid: number): SmapsVma[] {
  return parseSmaps(readFileSync(`/proc/${pid}/smaps`, "utf8"));
}
