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

/** The commit counter of a Cairn versionstamp, or `undefined` for stamps Cairn never issues. */
export function counterFromVersionstamp(versionstamp: string): bigint | undefined {
  if (!versionstamp.endsWith("0000")) return undefined;
  return BigInt(`0x${versionstamp.slice(0, 16)}`);
}
