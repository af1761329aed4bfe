/**
 * Versionstamps: 10 bytes, shown as 20 lowercase hex characters. Cairn's are an 8-byte big-endian
 * commit counter followed by 0000, strictly increasing per database, one per commit.
 */
const VERSIONSTAMP = /^[0-9a-f]{20}$/;

export function isVersionstamp(v: unknown): v is string {
  return typeof v === "string" && VERSIONSTAMP.test(v);
}

export function versionstampFromCounter(counter: number | bigint): string {
  return `${counter.toString(16).padStart(16, "0")}0000`;
}

/** The commit counter of a versionstamp (the inverse of `versionstampFromCounter`). */
export function counterFromVersionstamp(versionstamp: string): number {
  return Number.parseInt(versionstamp.slice(0, 16), 16);
}

/** The later of two versionstamps. */
export function laterVersionstamp(a: string, b: string): string {
  return a > b ? a : b;
}
