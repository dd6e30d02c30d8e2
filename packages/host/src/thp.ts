// Transparent huge page settings: the per-size mTHP knobs of
// /sys/kernel/mm/transparent_hugepage/hugepages-<N>kB/{enabled,shmem_enabled} (v6.8 anon, v6.11 shmem;
// Documentation/admin-guide/mm/transhuge.rst) and their per-size event counters (stats/, v6.9+).
// Every value `ThpSettings.set` changes is restored on every exit path: `restore()`, process exit,
// SIGINT, SIGTERM and SIGHUP (the signal is re-raised after restoring); an uncaught exception ends
// through process exit, so it is covered too.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { onExitPath } from "./cleanup.js";
import { HostError } from "./sys.js";

const ROOT = "/sys/kernel/mm/transparent_hugepage";

/** The selected value of a sysfs choice file ("always [madvise] never" → "madvise"). */
export function selected(text: string): string {
  const m = /\[([^\]]+)\]/.exec(text);
  return m === null ? text.trim() : m[1];
}

/** mTHP sizes the kernel offers, in KiB, ascending (empty without THP). */
export function mthpSizes(root = ROOT): number[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((d) => /^hugepages-(\d+)kB$/.exec(d))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Every THP knob's current value, for the measurement table. */
export function readThpSettings(root = ROOT): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(root)) return out;
  for (const f of ["enabled", "defrag", "shmem_enabled"]) {
    if (existsSync(`${root}/${f}`)) out[f] = selected(readFileSync(`${root}/${f}`, "utf8"));
  }
  for (const kb of mthpSizes(root)) {
    for (const f of ["enabled", "shmem_enabled"]) {
      const p = `${root}/hugepages-${kb}kB/${f}`;
      if (existsSync(p)) out[`hugepages-${kb}kB/${f}`] = selected(readFileSync(p, "utf8"));
    }
  }
  return out;
}

/** A per-size THP event counter (stats/anon_fault_alloc …), or null where the kernel has none. */
export function thpStat(kb: number, name: string, root = ROOT): number | null {
  const p = `${root}/hugepages-${kb}kB/stats/${name}`;
  return existsSync(p) ? Number(readFileSync(p, "utf8").trim()) : null;
}

/** Changes THP knobs and puts every one back, on every way out of the process. */
export class ThpSettings {
  private readonly saved = new Map<string, string>();
  private readonly disarm: () => void;

  constructor(private readonly root = ROOT) {
    if (!existsSync(root))
      throw new HostError("HOST_THP", `${root} does not exist: this kernel has no transparent huge pages`);
    this.disarm = onExitPath(() => this.putBack());
  }

  /** Writes `value` to knob `rel` (e.g. "hugepages-64kB/enabled"), remembering the first old value. */
  set(rel: string, value: string): void {
    const p = `${this.root}/${rel}`;
    if (!existsSync(p)) throw new HostError("HOST_THP", `${p} does not exist on this kernel`);
    const old = selected(readFileSync(p, "utf8"));
    if (!this.saved.has(rel)) this.saved.set(rel, old);
    if (old === value) return;
    try {
      writeFileSync(p, value);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new HostError(
        code === "EACCES" || code === "EPERM" ? "HOST_NOT_ROOT" : "HOST_THP",
        `cannot write "${value}" to ${p} (${code ?? (e as Error).message})`,
      );
    }
  }

  /**
   * Makes anonymous (and shmem) faults allocate folios of exactly `kb` KiB where allowed: that size
   * "always", every other mTHP size "never". `kb` 4 turns every size off.
   */
  only(kb: number, what: "enabled" | "shmem_enabled"): void {
    for (const s of mthpSizes(this.root)) {
      if (!existsSync(`${this.root}/hugepages-${s}kB/${what}`)) continue;
      this.set(`hugepages-${s}kB/${what}`, s === kb ? "always" : "never");
    }
  }

  /**
   * Remembers every per-size knob as it is now, so that `restore` (and every exit path) writes them
   * all back, whoever changes them in between (a measurement child that dies before restoring its own).
   */
  guard(): void {
    for (const [rel, v] of Object.entries(readThpSettings(this.root)))
      if (rel.startsWith("hugepages-") && !this.saved.has(rel)) this.saved.set(rel, v);
  }

  /** The values changed so far, as they were before. */
  changed(): ReadonlyMap<string, string> {
    return this.saved;
  }

  /** Puts back every value changed (idempotent) and removes the exit handlers. */
  restore(): void {
    this.disarm();
  }

  private putBack(): void {
    for (const [rel, v] of this.saved) {
      try {
        writeFileSync(`${this.root}/${rel}`, v);
      } catch {
        // Best effort on the way out: the next knob must still be restored.
      }
    }
    this.saved.clear();
  }
}
