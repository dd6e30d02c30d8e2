// Messages between the page and the model worker.

import type { RunResult } from "../src/format.js";
import type { ArchName } from "../src/spec.js";

export interface RunRequest {
  readonly id: number;
  readonly kind: "run";
  /** A preset name, or null for `scenarioText`. */
  readonly preset: string | null;
  readonly scenarioText: string;
  readonly folio: string;
  readonly size: string;
  readonly pmd: boolean;
  readonly arch: ArchName;
}

export interface BrokenRequest {
  readonly id: number;
  readonly kind: "broken";
  readonly name: string;
  readonly arch: ArchName;
}

export type Request = RunRequest | BrokenRequest;

/** A variant's gather timeline, bucketed to at most a few thousand points. */
export interface Timeline {
  /** Event index at the end of each bucket. */
  readonly x: number[];
  /** Pages held by the gather's batches (queued, not yet freed). */
  readonly fill: number[];
  /** Fill level where a bucket holds a TLB flush (null otherwise). */
  readonly tlb: (number | null)[];
  readonly forced: (number | null)[];
  readonly free: (number | null)[];
  readonly events: number;
  readonly counts: { tlb: number; forced: number; free: number; queued: number };
}

export interface Sweep {
  readonly folios: string[];
  /** variant → estimated kernel time (ns) per folio size (null where the size can't run). */
  readonly estimatedNs: Record<string, (number | null)[]>;
  /** Cost profile of the estimates. */
  readonly profile: string;
}

export type Reply =
  | {
      readonly id: number;
      readonly ok: true;
      readonly title: string;
      readonly results: RunResult[];
      readonly sweep: Sweep | null;
      readonly timelines: Record<string, Timeline>;
      readonly notes: string[];
      readonly explanation: string | null;
    }
  | { readonly id: number; readonly ok: false; readonly error: string };
