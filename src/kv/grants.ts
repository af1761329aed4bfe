/**
 * Grants: what a principal may do, etcd-style. A grant gives `read`, `write` or `readwrite` on
 * the keys at or under a prefix (part-wise: `["users","a"]` never covers `["users","ab"]`), or
 * the queue; it holds in one named database, or in every database of the server. `Permissions`
 * is a principal's grants compiled for one database, as the permission layer asks about them.
 */
import {
  concatBytes,
  decodeKey,
  encodeKey,
  hasPrefix,
  type KvKey,
  SYSTEM_KEYSPACE,
} from "../codec/key-codec.js";
import { KvError } from "../kv-error.js";
import { keyFromJson, keyToJson } from "../protocol/tagged-json.js";

export type GrantAccess = "read" | "write" | "readwrite";

export type Grant = (
  | { readonly prefix: KvKey; readonly access: GrantAccess }
  /** Enqueue, listen, settle, stats and the dead-letter queue. */
  | { readonly queue: true }
) & {
  /** The one database it holds in; absent: every database of the server. */
  readonly database?: string;
};

const ACCESSES: readonly GrantAccess[] = ["read", "write", "readwrite"];

const invalid = (message: string) => new KvError("INVALID_ARGUMENT", message);

const EXAMPLE = `e.g. { "prefix": ["users"], "access": "read" } or { "queue": true }`;

/** One grant from JSON; see `grantsFromJson`. */
function grantFromJson(json: unknown, what: string): Grant {
  if (json === null || typeof json !== "object" || Array.isArray(json))
    throw invalid(`${what} must be an object, ${EXAMPLE}`);
  const { prefix, access, queue, database, ...rest } = json as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0)
    throw invalid(
      `${what} has unknown field ${JSON.stringify(unknown[0])}; a grant has prefix and access, or queue, and may name a database`,
    );
  if (database !== undefined && (typeof database !== "string" || database === ""))
    throw invalid(`${what}.database must be a database name`);
  const scope = database === undefined ? {} : { database };
  if (queue !== undefined) {
    if (queue !== true) throw invalid(`${what}.queue must be true`);
    if (prefix !== undefined || access !== undefined)
      throw invalid(`${what} is a queue grant: it has no prefix or access`);
    return { queue: true, ...scope };
  }
  if (prefix === undefined) throw invalid(`${what} needs a prefix (or queue: true), ${EXAMPLE}`);
  const key = keyFromJson(prefix, `${what}.prefix`);
  encodeKey(key); // INVALID_KEY on a bad part
  if (!ACCESSES.includes(access as GrantAccess))
    throw invalid(`${what}.access must be "read", "write" or "readwrite"`);
  return { prefix: key, access: access as GrantAccess, ...scope };
}

/**
 * A list of grants from JSON (absent: none); `INVALID_ARGUMENT` saying what to fix
 * (`INVALID_KEY` for a prefix that is not a key).
 */
export function grantsFromJson(json: unknown, what = "grants"): Grant[] {
  if (json === undefined) return [];
  if (!Array.isArray(json)) throw invalid(`${what} must be an array of grants, ${EXAMPLE}`);
  return json.map((grant, i) => grantFromJson(grant, `${what}[${i}]`));
}

/** Grants as JSON (key parts tagged where JSON cannot carry them). */
export const grantsToJson = (grants: readonly Grant[]): unknown[] =>
  grants.map((grant) => ("queue" in grant ? grant : { ...grant, prefix: keyToJson(grant.prefix) }));

/** A key, or a range bound (a key and one 0x00 or 0xFF byte), for messages. */
function shown(bytes: Uint8Array): string {
  const json = (key: Uint8Array) => JSON.stringify(keyToJson(decodeKey(key)));
  try {
    return json(bytes);
  } catch {
    try {
      return `${json(bytes.subarray(0, -1))} + 0x${bytes.at(-1)!.toString(16).padStart(2, "0")}`;
    } catch {
      return `0x${Buffer.from(bytes).toString("hex")}`;
    }
  }
}

/** A range, for messages: a prefix's keys as that prefix. */
function shownRange(start: Uint8Array, end: Uint8Array): string {
  const subtree = (prefix: Uint8Array) =>
    end.length === prefix.length + 1 && end.at(-1) === 0xff && hasPrefix(end, prefix);
  if (subtree(start)) return `the keys at or under ${shown(start)}`;
  if (start.at(-1) === 0x00 && subtree(start.subarray(0, -1)))
    return `the keys under ${shown(start.subarray(0, -1))}`;
  return `the range ${shown(start)} to ${shown(end)}`;
}

const SYSTEM = new Uint8Array([SYSTEM_KEYSPACE]);

const system = () =>
  new KvError(
    "FORBIDDEN",
    "Keys starting with the byte 0xFF are Cairn's own: no token reads or writes them",
  );

/** Whether `[start, end)` lies within the keys at or under `prefix`. */
const rangeUnder = (start: Uint8Array, end: Uint8Array, prefix: Uint8Array) =>
  Buffer.compare(start, prefix) >= 0 && Buffer.compare(end, concatBytes(prefix, [0xff])) <= 0;

/**
 * A principal's grants compiled for one database: encoded prefixes it may read and write, and
 * whether it may use the queue. Checks throw `FORBIDDEN` naming what was refused.
 */
export class Permissions {
  /** Everything: the admin. */
  static readonly all = new Permissions(true, [], [], true);

  private constructor(
    readonly all: boolean,
    private readonly reads: readonly Uint8Array[],
    private readonly writes: readonly Uint8Array[],
    readonly queue: boolean,
  ) {}

  /** `grants` as they hold in the database named `database` (`null`: the default one). */
  static of(grants: readonly Grant[], database: string | null): Permissions {
    const here = grants.filter((g) => g.database === undefined || g.database === database);
    const prefixes = (access: "read" | "write") =>
      here.flatMap((g) =>
        "prefix" in g && (g.access === access || g.access === "readwrite")
          ? [encodeKey(g.prefix)]
          : [],
      );
    return new Permissions(
      false,
      prefixes("read"),
      prefixes("write"),
      here.some((g) => "queue" in g),
    );
  }

  /**
   * These permissions and read and write on the keys at or under `prefixes`: what a face's own
   * access rules add for its requests (Floww's table permissions, which the face enforces).
   */
  widened(prefixes: readonly KvKey[]): Permissions {
    if (this.all) return this;
    const added = prefixes.map((prefix) => encodeKey(prefix));
    return new Permissions(
      false,
      [...this.reads, ...added],
      [...this.writes, ...added],
      this.queue,
    );
  }

  /** Whether it may write anything at all here (so a write may create a named database). */
  get writesAny(): boolean {
    return this.all || this.writes.length > 0 || this.queue;
  }

  /** Refuses (`FORBIDDEN`) a key it may not `access`. */
  key(access: "read" | "write", key: Uint8Array): void {
    if (key[0] === SYSTEM_KEYSPACE) throw system();
    if (this.all) return;
    for (const prefix of access === "read" ? this.reads : this.writes)
      if (hasPrefix(key, prefix)) return;
    throw new KvError(
      "FORBIDDEN",
      `This token may not ${access} the key ${shown(key)}: no grant covers it`,
    );
  }

  /** Whether it may `access` every key of `[start, end)`. */
  allows(access: "read" | "write", start: Uint8Array, end: Uint8Array): boolean {
    if (Buffer.compare(end, SYSTEM) > 0) return false;
    if (this.all) return true;
    for (const prefix of access === "read" ? this.reads : this.writes)
      if (rangeUnder(start, end, prefix)) return true;
    return false;
  }

  /** Refuses (`FORBIDDEN`) a range it may not `access` whole. */
  range(access: "read" | "write", start: Uint8Array, end: Uint8Array): void {
    if (this.allows(access, start, end)) return;
    if (Buffer.compare(end, SYSTEM) > 0) throw system();
    throw new KvError(
      "FORBIDDEN",
      `This token may not ${access} ${shownRange(start, end)}: no grant covers all of it (a range is refused whole, never narrowed)`,
    );
  }

  /** Refuses (`FORBIDDEN`) a prefix whose keys it may not all `access`. */
  prefix(access: "read" | "write", prefix: Uint8Array): void {
    this.range(access, prefix, concatBytes(prefix, [0xff]));
  }

  useQueue(): void {
    if (!this.queue)
      throw new KvError("FORBIDDEN", "This token may not use the queue: it has no queue grant");
  }
}
