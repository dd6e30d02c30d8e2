// Built-in scenarios. Each takes the CLI's --folio / --pmd / --size / --op overrides,
// which apply to its main VMA (the first one) and its operation.
import type { ScenarioInput } from "./scenario.js";

/** Overrides a preset accepts from the command line. */
export interface PresetOptions {
  readonly folio?: string;
  readonly pmd?: boolean;
  readonly size?: string;
  readonly op?: "exit" | "munmap" | "dontneed";
  readonly cpus?: number;
  /** Devices sharing the page tables (SVA), each with its own TLB. */
  readonly devices?: number;
  readonly seed?: number;
  readonly kernel?: "6.9" | "6.18";
  /** Fraction of the main VMA's pages written (file and shmem VMAs; anon pages are always dirty). */
  readonly dirty?: number;
}

interface Preset {
  readonly summary: string;
  build(o: PresetOptions): ScenarioInput;
}

export const PRESETS: Readonly<Record<string, Preset>> = {
  "munmap-1g": {
    summary:
      "1 GiB of anonymous memory in folios of --folio size, then munmap (the upstream series' benchmark)",
    build: (o) => ({
      name: "munmap-1g",
      description: `munmap() of a ${o.size ?? "1G"} anonymous VMA, every folio ${o.folio ?? "4K"}${o.pmd ? " (PMD-mapped when PMD-sized)" : ""}`,
      seed: o.seed ?? 1,
      cpus: o.cpus ?? 0,
      vmas: [
        { name: "heap", kind: "anon", size: o.size ?? "1G", folio: o.folio ?? "4K", pmd: o.pmd ?? false },
      ],
      op: { kind: o.op ?? "munmap", vma: 0 },
    }),
  },
  "exit-kernel-build": {
    summary:
      "a compiler-like process: order-3 anon heap, private file text, a few swapped-out pages, forked children that exec'd and exited; then it exits",
    build: (o) => ({
      name: "exit-kernel-build",
      description:
        "exit of a process shaped like a compiler job (the 2023 series' kernel-build workload): exec'd by " +
        "make, so its heap is its own (freed at exit) while the page cache keeps the file text; it forked two " +
        "children (fork + exec, like a compiler driver's cc1 and as) that have exited before it does",
      seed: o.seed ?? 1,
      cpus: o.cpus ?? 2,
      exitedChildren: 2,
      vmas: [
        {
          name: "heap",
          kind: "anon",
          size: o.size ?? "192M",
          folio: o.folio ?? "32K",
          pmd: o.pmd ?? false,
          swap: 0.02,
        },
        { name: "text", kind: "file-private", size: "24M", folio: "64K" },
        { name: "libs", kind: "file-private", size: "8M", folio: "16K" },
        { name: "data", kind: "file-private", size: "4M", folio: "4K", dirty: 0.5 },
        { name: "stack", kind: "anon", size: "8M", folio: "4K" },
      ],
      op: { kind: o.op ?? "exit" },
    }),
  },
  "fork-shared": {
    summary: "a forked child shares every anonymous page; munmap in the parent frees nothing",
    build: (o) => ({
      name: "fork-shared",
      description: "fork(), then munmap in the parent: the child still maps every folio",
      seed: o.seed ?? 1,
      cpus: o.cpus ?? 0,
      fork: true,
      vmas: [
        { name: "heap", kind: "anon", size: o.size ?? "64M", folio: o.folio ?? "64K", pmd: o.pmd ?? false },
      ],
      op: { kind: o.op ?? "munmap", vma: 0 },
    }),
  },
  "shmem-file": {
    summary: "a MAP_SHARED tmpfs file, then munmap: the page cache keeps every folio",
    build: (o) => ({
      name: "shmem-file",
      description: "munmap() of a shared tmpfs mapping",
      seed: o.seed ?? 1,
      cpus: o.cpus ?? 0,
      vmas: [
        {
          name: "shm",
          kind: "shmem",
          size: o.size ?? "256M",
          folio: o.folio ?? "64K",
          pmd: o.pmd ?? false,
          dirty: o.dirty ?? 0.25,
        },
      ],
      op: { kind: o.op ?? "munmap", vma: 0 },
    }),
  },
  "file-private": {
    summary:
      "a private file mapping, read (page-cache folios mapped) or written (option dirty 1: every page a private anon copy), then munmap",
    build: (o) => ({
      name: "file-private",
      description: `munmap() of a private file mapping, ${Math.round(100 * (o.dirty ?? 0))} % of its pages written (copied on write)`,
      seed: o.seed ?? 1,
      cpus: o.cpus ?? 0,
      vmas: [
        {
          name: "file",
          kind: "file-private",
          size: o.size ?? "1G",
          folio: o.folio ?? "4K",
          pmd: o.pmd ?? false,
          dirty: o.dirty ?? 0,
        },
      ],
      op: { kind: o.op ?? "munmap", vma: 0 },
    }),
  },
  "dirty-shared-file": {
    summary: "threads on two CPUs write a shared file mapping, then munmap: exercises delayed rmap",
    build: (o) => ({
      name: "dirty-shared-file",
      description: "munmap() of a MAP_SHARED file mapping that two CPUs have written through",
      seed: o.seed ?? 1,
      cpus: o.cpus ?? 2,
      vmas: [
        {
          name: "file",
          kind: "file-shared",
          size: o.size ?? "64M",
          folio: o.folio ?? "16K",
          pmd: o.pmd ?? false,
          dirty: o.dirty ?? 0.5,
        },
      ],
      op: { kind: o.op ?? "munmap", vma: 0 },
    }),
  },
};

export const PRESET_NAMES = Object.keys(PRESETS);

/** Applies the same overrides to a scenario file's raw object: the main VMA is the first one. */
export function applyOverrides(raw: Record<string, unknown>, o: PresetOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  const vmas = raw.vmas;
  if (Array.isArray(vmas) && vmas.length > 0 && typeof vmas[0] === "object" && vmas[0] !== null) {
    const v0: Record<string, unknown> = { ...(vmas[0] as Record<string, unknown>) };
    if (o.folio !== undefined) v0.folio = o.folio;
    if (o.pmd !== undefined) v0.pmd = o.pmd;
    if (o.size !== undefined) v0.size = o.size;
    out.vmas = [v0, ...vmas.slice(1)];
  }
  if (o.op !== undefined) {
    const op = typeof raw.op === "object" && raw.op !== null ? (raw.op as Record<string, unknown>) : {};
    out.op = { ...op, kind: o.op };
  }
  if (o.cpus !== undefined) out.cpus = o.cpus;
  if (o.devices !== undefined) out.devices = o.devices;
  if (o.seed !== undefined) out.seed = o.seed;
  if (o.dirty !== undefined && Array.isArray(out.vmas) && out.vmas.length > 0)
    out.vmas = [{ ...(out.vmas[0] as Record<string, unknown>), dirty: o.dirty }, ...out.vmas.slice(1)];
  if (o.kernel !== undefined) out.kernel = o.kernel;
  return out;
}
