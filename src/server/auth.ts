/**
 * Bearer tokens. A token maps to a principal; routes ask the principal whether it may read or
 * write, so that tokens with identities and per-prefix permissions slot in here without touching
 * routes. Tokens are compared by SHA-256 digest in constant time.
 */
import { hash, timingSafeEqual } from "node:crypto";
import { isDerivedToken, verifyDerivedToken } from "../faces/derived-token.js";
import { bearerToken } from "../faces/http-io.js";
import type { Access } from "../faces/route.js";
import { KvError } from "../kv-error.js";

export interface Principal {
  readonly name: string;
  /** Whether this principal may `access` keys (today: the whole database). */
  can(access: Access): boolean;
}

export interface Authenticator {
  /** The principal behind an `Authorization` header; throws `UNAUTHORIZED` otherwise. */
  authenticate(authorization: string | undefined): Principal;
}

const admin: Principal = { name: "admin", can: () => true };

/** Everyone is the admin: only when the operator explicitly turns auth off. */
export const noAuth: Authenticator = { authenticate: () => admin };

// One-shot `hash` (Node ≥ 20.12): the per-request check, without a Hash object per call.
const digest = (token: string) => hash("sha256", token, "buffer");

/** Accepts `token`, or a live data-path token derived from it, as the admin principal. */
export function tokenAuthenticator(token: string): Authenticator {
  const expected = digest(token);
  return {
    authenticate(authorization) {
      const presented = bearerToken(authorization);
      const valid = isDerivedToken(presented)
        ? verifyDerivedToken(token, presented, Date.now())
        : timingSafeEqual(digest(presented), expected);
      if (!valid) throw new KvError("UNAUTHORIZED", "Invalid access token.");
      return admin;
    },
  };
}
