/**
 * Short-lived data-path tokens for KV Connect (reference/kv-connect.md §1.2): the metadata
 * exchange hands out `cairn1.<expiresAtMs>.<HMAC-SHA256 of the expiry, keyed by the access
 * token>`, which the server accepts in place of the access token until it expires, and which
 * cannot be turned back into the access token or renewed through the metadata exchange.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

const PREFIX = "cairn1.";

const mac = (secret: string, expiresAt: number) =>
  createHmac("sha256", secret).update(`kv-connect:${expiresAt}`).digest();

export function deriveToken(secret: string, expiresAt: number): string {
  return `${PREFIX}${expiresAt}.${mac(secret, expiresAt).toString("base64url")}`;
}

export function isDerivedToken(token: string): boolean {
  return token.startsWith(PREFIX);
}

/** Whether `token` was derived from `secret` and has not expired at `now`. */
export function verifyDerivedToken(secret: string, token: string, now: number): boolean {
  const [expiry, signature] = token.slice(PREFIX.length).split(".");
  const expiresAt = Number(expiry);
  if (!Number.isSafeInteger(expiresAt) || expiresAt <= now || signature === undefined) return false;
  const given = Buffer.from(signature, "base64url");
  const expected = mac(secret, expiresAt);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
