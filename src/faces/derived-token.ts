/**
 * Short-lived data-path tokens for KV Connect (reference/kv-connect.md §1.2): the metadata
 * exchange hands out `cairn1.<expiresAtMs>.<HMAC-SHA256>[.<principal>]`, which the server accepts
 * for that principal (none named: the admin) until it expires, and which cannot be turned back
 * into the token it was derived from or renewed through the metadata exchange. The HMAC's key is
 * the principal's own (the server's token for the admin; the stored hash of a principal's
 * secret), so a revoked principal's derived tokens die with it.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

const PREFIX = "cairn1.";

const mac = (key: string | Buffer, expiresAt: number, principal: string) =>
  createHmac("sha256", key).update(`kv-connect:${expiresAt}:${principal}`).digest();

/** A token for `principal` (`null`: the admin) until `expiresAt`, signed with `key`. */
export function deriveToken(key: string | Buffer, expiresAt: number, principal: string | null) {
  const signature = mac(key, expiresAt, principal ?? "").toString("base64url");
  return `${PREFIX}${expiresAt}.${signature}${principal === null ? "" : `.${principal}`}`;
}

export function isDerivedToken(token: string): boolean {
  return token.startsWith(PREFIX);
}

/** The principal a derived token names (`null`: the admin). */
export function derivedPrincipal(token: string): string | null {
  const parts = token.slice(PREFIX.length).split(".");
  return parts.length > 2 ? parts.slice(2).join(".") : null;
}

/** Whether derived `token` was signed with `key` and has not expired at `now`. */
export function verifyDerivedToken(key: string | Buffer, token: string, now: number): boolean {
  const [expiry, signature] = token.slice(PREFIX.length).split(".");
  const expiresAt = Number(expiry);
  if (!Number.isSafeInteger(expiresAt) || expiresAt <= now || signature === undefined) return false;
  const given = Buffer.from(signature, "base64url");
  const expected = mac(key, expiresAt, derivedPrincipal(token) ?? "");
  return given.length === expected.length && timingSafeEqual(given, expected);
}
