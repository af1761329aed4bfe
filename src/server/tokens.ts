/**
 * Principals and their tokens, kept in the default database's system keyspace (keys starting
 * with 0xFF, which no user range reaches), so that every server over one PostgreSQL, or over one
 * SQLite file, knows them. A token is `ck.<name>.<secret>`: the name says whose it is, the secret
 * is 256 random bits, shown once and stored only as its SHA-256 (a secret that random needs no
 * slow hash). A server reads a principal again once its copy is `limits.tokenCacheMs` old, so a
 * revocation holds on every server within that time, and at once on the one that revoked.
 *
 * AWS Signature V4 (the DynamoDB face) is a MAC the server must compute itself, so it needs the
 * token, not its hash: a store given the server's `--token` also keeps each new token sealed
 * (AES-256-GCM under a key derived from the server's token, which every node has and a copy of
 * the database alone does not).
 */
import {
  createCipheriv,
  createDecipheriv,
  hash,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { concatBytes, encodeKey, SYSTEM_KEYSPACE } from "../codec/key-codec.js";
import { decodeValue, encodeValue } from "../codec/value-codec.js";
import { checkCommit } from "../engine/commit-limits.js";
import { commitMutations, type Database } from "../engine/database.js";
import { type Grant, grantsFromJson, grantsToJson } from "../kv/grants.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { databaseName } from "./databases.js";

/** A principal as stored: its grants, and the hash of its token's secret. */
export interface StoredPrincipal {
  readonly name: string;
  /** SHA-256 of the token's secret. */
  readonly hash: Buffer;
  readonly grants: readonly Grant[];
  readonly admin: boolean;
  readonly createdAt: number;
  /** Epoch ms after which its token is refused; `null`: never. */
  readonly expiresAt: number | null;
  /** Its token, sealed (`sealed`); `null` when created without the server's token. */
  readonly sealed: Buffer | null;
}

/** A principal as the admin API shows it: never its secret. */
export interface TokenInfo {
  readonly name: string;
  readonly grants: unknown[];
  readonly admin: boolean;
  readonly createdAt: string;
  readonly expiresAt: string | null;
}

export interface NewToken {
  readonly name: string;
  readonly grants?: readonly Grant[];
  readonly admin?: boolean;
  /** Milliseconds until the token expires; absent: never. */
  readonly expiresIn?: number;
}

/** The server's `--token`: the principal named `admin`, which no stored principal may take. */
export const ADMIN = "admin";

const TOKEN_PREFIX = "ck.";

/** The last epoch ms a `Date` holds. */
const MAX_DATE = 8.64e15;

/** Principal names: what an AWS access key id, a Happy user id or a Floww workflow id can be. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@+=-]{0,127}$/;

export function checkName(name: unknown): string {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `A principal's name is 1 to 128 letters, digits and _ . @ + = - (starting with a letter or digit); got ${JSON.stringify(name)}`,
    );
  }
  if (name === ADMIN) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `"${ADMIN}" is the server's own token (--token): choose another name`,
    );
  }
  return name;
}

const PRINCIPALS = concatBytes(new Uint8Array([SYSTEM_KEYSPACE]), encodeKey(["principals"]));
const keyOf = (name: string) => concatBytes(PRINCIPALS, encodeKey([name]));

const secretHash = (secret: string) => hash("sha256", secret, "buffer");

function fromStored(raw: unknown): StoredPrincipal {
  const r = raw as Record<string, unknown>;
  return {
    name: r.name as string,
    hash: Buffer.from(r.hash as string, "hex"),
    grants: grantsFromJson(r.grants),
    admin: r.admin === true,
    createdAt: r.createdAt as number,
    expiresAt: (r.expiresAt as number | null) ?? null,
    sealed: typeof r.sealed === "string" ? Buffer.from(r.sealed, "base64") : null,
  };
}

const toStored = (p: StoredPrincipal) => ({
  name: p.name,
  hash: p.hash.toString("hex"),
  grants: grantsToJson(p.grants),
  admin: p.admin,
  createdAt: p.createdAt,
  expiresAt: p.expiresAt,
  sealed: p.sealed?.toString("base64") ?? null,
});

export const infoOf = (p: StoredPrincipal): TokenInfo => ({
  name: p.name,
  grants: grantsToJson(p.grants),
  admin: p.admin,
  createdAt: new Date(p.createdAt).toISOString(),
  expiresAt: p.expiresAt === null ? null : new Date(p.expiresAt).toISOString(),
});

/** The name and secret of a principal's token; `undefined` for what is not one. */
export function parseToken(token: string): { name: string; secret: string } | undefined {
  if (!token.startsWith(TOKEN_PREFIX)) return undefined;
  const dot = token.lastIndexOf(".");
  if (dot <= TOKEN_PREFIX.length) return undefined;
  return { name: token.slice(TOKEN_PREFIX.length, dot), secret: token.slice(dot + 1) };
}

/** Whether `secret` is the one whose hash `principal` keeps, in constant time. */
export const secretMatches = (principal: StoredPrincipal, secret: string) =>
  timingSafeEqual(secretHash(secret), principal.hash);

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Seals and opens tokens with a key derived from the server's token. */
class Seal {
  readonly #key: Buffer;

  constructor(serverToken: string) {
    this.#key = Buffer.from(hkdfSync("sha256", serverToken, "cairn", "sealed tokens", 32));
  }

  seal(token: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    const sealed = Buffer.concat([cipher.update(token, "utf8"), cipher.final()]);
    return Buffer.concat([iv, sealed, cipher.getAuthTag()]);
  }

  /** The token sealed in `bytes`; `undefined` when sealed under another server token. */
  open(bytes: Buffer): string | undefined {
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#key, bytes.subarray(0, IV_BYTES));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      const body = bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES);
      return Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8");
    } catch {
      return undefined;
    }
  }
}

/** The principals of one database (the server's default one). */
export class TokenStore {
  /**
   * Principals as last read, by name (`null`: none by that name), with when they were read and
   * the versionstamp they were read at (`null`: not read from storage).
   */
  readonly #cache = new Map<
    string,
    { principal: StoredPrincipal | null; readAt: number; versionstamp: string | null }
  >();

  readonly #seal: Seal | null;
  readonly #opened = new WeakMap<StoredPrincipal, string | undefined>();

  /** With `serverToken`, new tokens are kept sealed too, for `tokenOf`. */
  constructor(
    private readonly database: Database,
    serverToken?: string,
  ) {
    this.#seal = serverToken ? new Seal(serverToken) : null;
  }

  /**
   * `principal`'s token, when it was sealed under this store's server token; `undefined` when it
   * was not (created without it, or under another).
   */
  tokenOf(principal: StoredPrincipal): string | undefined {
    if (principal.sealed === null || this.#seal === null) return undefined;
    if (!this.#opened.has(principal))
      this.#opened.set(principal, this.#seal.open(principal.sealed));
    return this.#opened.get(principal);
  }

  /**
   * The principal named `name` as read less than `limits.tokenCacheMs` ago (`null`: there is
   * none); `undefined` when it must be read again (`find`). Lets the hot path skip a promise.
   */
  cached(name: string): StoredPrincipal | null | undefined {
    const cached = this.#cache.get(name);
    return cached !== undefined && Date.now() - cached.readAt < limits.tokenCacheMs
      ? cached.principal
      : undefined;
  }

  /** The principal named `name`, as read at most `limits.tokenCacheMs` ago. */
  async find(name: string): Promise<StoredPrincipal | null> {
    const cached = this.cached(name);
    if (cached !== undefined) return cached;
    const readAt = Date.now();
    const [entry] = await this.database.get([keyOf(name)]);
    const versionstamp = entry?.versionstamp ?? null;
    // The same record keeps the same object, and with it what was derived from it (auth.ts).
    const previous = this.#cache.get(name);
    const principal =
      entry === null || entry === undefined
        ? null
        : previous?.versionstamp === versionstamp && previous.principal !== null
          ? previous.principal
          : fromStored(decodeValue(entry));
    // Names tried by anyone are cached too: bound what they can make the server hold.
    if (this.#cache.size >= limits.maxCachedPrincipals) this.#cache.clear();
    this.#cache.set(name, { principal, readAt, versionstamp });
    return principal;
  }

  /** Creates a principal with a new token; `ALREADY_EXISTS` when the name is taken. */
  async create(request: NewToken): Promise<{ token: string; principal: StoredPrincipal }> {
    const name = checkName(request.name);
    for (const grant of request.grants ?? []) {
      // A grant naming a database no name can be would hold nowhere.
      if (grant.database !== undefined) databaseName(grant.database);
    }
    const secret = randomBytes(32).toString("base64url");
    const createdAt = Date.now();
    if (request.expiresIn !== undefined && !(createdAt + request.expiresIn <= MAX_DATE)) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `expiresIn ${request.expiresIn} ms ends past the last date there is (year 275760)`,
      );
    }
    const token = `${TOKEN_PREFIX}${name}.${secret}`;
    const principal: StoredPrincipal = {
      name,
      hash: secretHash(secret),
      grants: request.grants ?? [],
      admin: request.admin ?? false,
      createdAt,
      expiresAt: request.expiresIn === undefined ? null : createdAt + request.expiresIn,
      sealed: this.#seal?.seal(token) ?? null,
    };
    const key = keyOf(name);
    const result = await this.database.commit(
      checkCommit({
        checks: [{ key, versionstamp: null }],
        mutations: [{ type: "set", key, value: encodeValue(toStored(principal)) }],
      }),
    );
    if (!result.ok) {
      throw new KvError(
        "ALREADY_EXISTS",
        `A principal named ${JSON.stringify(name)} exists: revoke it first, or choose another name`,
      );
    }
    this.#cache.set(name, { principal, readAt: createdAt, versionstamp: result.versionstamp });
    return { token, principal };
  }

  /** Every principal, in name order. */
  async list(): Promise<StoredPrincipal[]> {
    const out: StoredPrincipal[] = [];
    let start = concatBytes(PRINCIPALS, [0x00]);
    const end = concatBytes(PRINCIPALS, [0xff]);
    for (;;) {
      const [page] = await this.database.scan([{ start, end, limit: 1000, reverse: false }]);
      for (const entry of page!) out.push(fromStored(decodeValue(entry)));
      if (page!.length < 1000) return out;
      start = concatBytes(page!.at(-1)!.key, [0x00]);
    }
  }

  /** Removes a principal and its token; resolves whether there was one. */
  async revoke(name: string): Promise<boolean> {
    const { deletedCount } = await commitMutations(this.database, [
      { type: "delete", key: keyOf(name) },
    ]);
    this.#cache.set(name, { principal: null, readAt: Date.now(), versionstamp: null });
    return deletedCount > 0;
  }
}
