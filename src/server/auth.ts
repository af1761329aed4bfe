/**
 * Bearer tokens to principals: the server's `--token` is the admin; a principal's token
 * (`ck.<name>.<secret>`, tokens.ts) is that principal with its grants; a derived token (KV
 * Connect's data path) is the principal it names. What a principal may then do is asked of it by
 * the request's database (permissions.ts). Secrets are compared in constant time.
 */
import { timingSafeEqual } from "node:crypto";
import {
  derivedPrincipal,
  deriveToken,
  isDerivedToken,
  verifyDerivedToken,
} from "../faces/derived-token.js";
import type { Authenticator, Principal } from "../faces/face.js";
import { bearerToken } from "../faces/http-io.js";
import { Permissions } from "../kv/grants.js";
import { KvError } from "../kv-error.js";
import {
  ADMIN,
  parseToken,
  type StoredPrincipal,
  secretMatches,
  type TokenStore,
} from "./tokens.js";

/** The admin, whose derived tokens are signed with `key`. */
const adminOf = (key: string): Principal => ({
  name: ADMIN,
  permissionsIn: () => Permissions.all,
  deriveToken: (expiresAt) => ({ token: deriveToken(key, expiresAt, null), expiresAt }),
});

/** Everyone is the admin: only when the operator explicitly turns auth off. */
export const noAuth: Authenticator = {
  authenticate: () => adminOf(""),
  signingKey: () => ({ principal: adminOf(""), secret: null }),
};

/** A stored principal as requests act for it; its grants compiled once per database. */
class Granted implements Principal {
  readonly #permissions = new Map<string | null, Permissions>();

  constructor(private readonly stored: StoredPrincipal) {}

  get name(): string {
    return this.stored.name;
  }

  permissionsIn(database: string | null): Permissions {
    if (this.stored.admin) return Permissions.all;
    let permissions = this.#permissions.get(database);
    if (permissions === undefined) {
      permissions = Permissions.of(this.stored.grants, database);
      this.#permissions.set(database, permissions);
    }
    return permissions;
  }

  deriveToken(expiresAt: number) {
    const until = Math.min(expiresAt, this.stored.expiresAt ?? expiresAt);
    return { token: deriveToken(this.stored.hash, until, this.stored.name), expiresAt: until };
  }
}

/**
 * Whether a presented token is `token`, in time that does not depend on where they differ. Only
 * the length can show: tokens are random and of one length (`cairn serve` makes 32 characters, a
 * principal's secret 43), so it is no secret. Hashing both sides would hide it too, at a cost a
 * point GET shows (docs/performance.md, "Per-request costs").
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

const invalid = () => new KvError("UNAUTHORIZED", "Invalid access token.");

/**
 * Accepts `token` (and its derived tokens) as the admin, and the tokens of the principals in
 * `store` (and theirs) as those principals, while they live.
 */
export function tokenAuthenticator(token: string, store: TokenStore): Authenticator {
  const equalsToken = tokenEquals(token);
  const admin = adminOf(token);
  const principals = new WeakMap<StoredPrincipal, Principal>();
  const principalOf = (stored: StoredPrincipal) => {
    let principal = principals.get(stored);
    if (principal === undefined) {
      principal = new Granted(stored);
      principals.set(stored, principal);
    }
    return principal;
  };

  /** `found` if `valid` holds of it and its token has not expired. */
  function accepted(found: StoredPrincipal | null, valid: (p: StoredPrincipal) => boolean) {
    if (found === null || !valid(found)) throw invalid();
    if (found.expiresAt !== null && found.expiresAt <= Date.now()) {
      throw new KvError(
        "UNAUTHORIZED",
        `This token expired at ${new Date(found.expiresAt).toISOString()}.`,
      );
    }
    return found;
  }

  /**
   * `then` of the principal named `name`, if `valid` holds of it; without a promise while its
   * copy is fresh.
   */
  function stored<T>(
    name: string,
    valid: (p: StoredPrincipal) => boolean,
    then: (p: StoredPrincipal) => T,
  ): T | Promise<T> {
    const cached = store.cached(name);
    if (cached !== undefined) return then(accepted(cached, valid));
    return store.find(name).then((found) => then(accepted(found, valid)));
  }

  /**
   * Whether `secret` is `stored`'s. The secret that once matched its hash is then compared as is
   * (in constant time, in memory only, as the server's own token is): hashing it on every
   * request would cost a point GET several percent (docs/performance.md, "Per-request costs").
   */
  const known = new WeakMap<StoredPrincipal, (presented: string) => boolean>();
  function isSecretOf(stored: StoredPrincipal, secret: string): boolean {
    if (known.get(stored)?.(secret)) return true;
    if (!secretMatches(stored, secret)) return false;
    known.set(stored, tokenEquals(secret));
    return true;
  }

  return {
    authenticate(authorization) {
      const presented = bearerToken(authorization);
      if (isDerivedToken(presented)) {
        const name = derivedPrincipal(presented);
        const now = Date.now();
        if (name !== null) {
          return stored(name, (p) => verifyDerivedToken(p.hash, presented, now), principalOf);
        }
        if (verifyDerivedToken(token, presented, now)) return admin;
        throw invalid();
      }
      if (equalsToken(presented)) return admin;
      const parsed = parseToken(presented);
      if (parsed === undefined) throw invalid();
      return stored(parsed.name, (p) => isSecretOf(p, parsed.secret), principalOf);
    },
    signingKey(name) {
      if (name === ADMIN) return { principal: admin, secret: token };
      return stored(
        name,
        (p) => store.tokenOf(p) !== undefined,
        (p) => ({ principal: principalOf(p), secret: store.tokenOf(p)! }),
      );
    },
  };
}
