// `teardown-lab capture PID`: a scenario file that reproduces a running process's memory, read from
// /proc/PID/smaps (fs/proc/task_mmu.c show_smap: one header line per VMA, then "Field: N kB" lines
// and VmFlags): each VMA's kind, size, resident, swapped, dirty, PMD-mapped, locked and shared pages.
// As root it also reads pagemap, kpageflags and kpagecount (the readers live in @mmgather/host) for
// the folio-size mix and the pages mapped more than once. Every approximation is written into the file as a note. Node-only.
import { type PageScan, type SmapsVma, scanPages } from "@mmgather/host";
import type { ScenarioInput } from "./scenario.js";
import { MAX_VMAS } from "./scenario.js";
import { formatSize } from "./size.js";

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
  const sharedOf = new Map<Record<string, unknown>, number>();
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
    // A private VMA's pages mapped more than once are another process's too: a fork, with the
    // VMA's shared fraction (the forked child keeps that share of it). Anonymous pages decide
    // whether there is a fork; a private file VMA's page cache is mostly mapped by others anyway.
    if (kind === "anon" || kind === "file-private") {
      const sharedBytes =
        scan !== undefined ? scan.shared * PAGE : kb(v, "Shared_Clean") + kb(v, "Shared_Dirty");
      if (kind === "anon") sharedAnon += sharedBytes;
      sharedOf.set(vma, frac(sharedBytes / Math.max(rss, 1)));
    }
    return vma;
  });
  if (sharedAnon > 0) {
    for (const [vma, f] of sharedOf) vma.shared = f;
    notes.push(
      `${formatSize(Math.ceil(sharedAnon / PAGE) * PAGE)} of anonymous pages are shared with another process: ` +
        "modelled as a fork whose child keeps each private VMA's shared fraction (the tail of the rest dropped)",
    );
  }
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
