/**
 * Bearer tokens. A token maps to a principal, which the request's database (permissions.ts) asks
 * what it may read and write, so that tokens with identities and per-prefix permissions slot in
 * here without touching routes. Tokens are compared in constant time.
 */
import { timingSafeEqual } from "node:crypto";
import { isDerivedToken, verifyDerivedToken } from "../faces/derived-token.js";
import type { Authenticator, Principal } from "../faces/face.js";
import { bearerToken } from "../faces/http-io.js";
import { KvError } from "../kv-error.js";

const admin: Principal = { name: "admin", can: () => true };

/** Everyone is the admin: only when the operator explicitly turns auth off. */
export const noAuth: Authenticator = { authenticate: () => admin };

/**
 * Whether a presented token is `token`, in time that does not depend on where they differ. Only
 * the length can show: tokens are random and of one length (`cairn serve` makes 32 characters),
 * so it is no secret. Hashing both sides would hide it too, at a cost a point GET shows
 * (docs/performance.md, "Per-request costs").
 */
function tokenEquals(token: string): (presented: string) => boolean {
  const expected = Buffer.from(token);
  const scratch = Buffer.alloc(expected.length);
  return (presented) => {
    if (Buffer.byteLength(presented) !== expected.length) return false;
    scratch.write(presented);
    return timingSafeEqual(scratch, expected);
  };
}

/** Accepts `token`, or a live data-path token derived from it, as the admin principal. */
export function tokenAuthenticator(token: string): Authenticator {
  const equalsToken = tokenEquals(token);
  return {
    authenticate(authorization) {
      const presented = bearerToken(authorization);
      const valid = isDerivedToken(presented)
        ? verifyDerivedToken(token, presented, Date.now())
        : equalsToken(presented);
      if (!valid) throw new KvError("UNAUTHORIZED", "Invalid access token.");
      return admin;
    },
  };
}
