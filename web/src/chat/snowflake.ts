// Snowflake ids are time-ordered 64-bit numbers written as decimal strings
// (shared/src/snowflake.rs): 42 bits of milliseconds since 2026-01-01, 10 of worker, 12 of sequence.

export const NATTER_EPOCH_MS = 1_767_225_600_000;

/** Orders two ids numerically without BigInt: a longer decimal string is a larger number. */
export function compareIds(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** When the id was made, in Unix milliseconds. */
export function idTime(id: string): number {
  try {
    return Number(BigInt(id) >> 22n) + NATTER_EPOCH_MS;
  } catch {
    return Date.now();
  }
}
