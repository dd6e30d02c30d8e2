// Byte sizes as users write them: "4K", "64KiB", "2M", "1G", or a plain number of bytes.

const UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
const SIZE_RE = /^(\d+)\s*([KMGT]?)(?:i?B)?$/i;

/** Parses "64K" / "2MiB" / "1G" / "4096" into bytes; returns null when it is not a size. */
export function parseSize(text: string): number | null {
  const m = SIZE_RE.exec(text.trim());
  if (m === null) return null;
  const bytes = Number(m[1]) * UNITS[m[2].toUpperCase()];
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** Formats bytes in the largest binary unit that divides them: 65536 → "64K". */
export function formatSize(bytes: number): string {
  for (const unit of ["T", "G", "M", "K"]) {
    const scale = UNITS[unit];
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return `${bytes}`;
}

/** Folio sizes the CLI accepts: 4K, 8K … 2M. */
export const FOLIO_SIZES = Array.from({ length: 10 }, (_, order) => formatSize(4096 << order));

/** log2(bytes / 4096) for a power-of-two folio size, or null. */
export function folioOrder(bytes: number): number | null {
  const pages = bytes / 4096;
  if (!Number.isInteger(pages) || pages < 1 || (pages & (pages - 1)) !== 0) return null;
  return Math.log2(pages);
}
