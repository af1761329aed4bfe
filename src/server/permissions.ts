/**
 * The one place a request's principal is held to its grants: the request's database is the
 * server's, wrapped here, so that every face and every route is checked the same way, whatever it
 * calls. Every key, range and prefix a call names is checked before the call runs, and a call
 * reaching past the grants is refused whole (`FORBIDDEN`), never narrowed to what is granted.
 * `Permitted` implements the contract method by method, so a new method cannot pass unchecked.
 */

import { SYSTEM_KEYSPACE } from "../codec/key-codec.js";
import type {
  ChangesRequest,
  CheckedCommit,
  ClaimRequest,
  CountRange,
  Database,
  FeedListener,
  FeedRanges,
  KeyRange,
  Mutation,
  SearchIndex,
  SearchRequest,
} from "../engine/database.js";
import type { Principal, Route } from "../faces/face.js";
import type { Permissions } from "../kv/grants.js";
import { KvError } from "../kv-error.js";

function checkMutation(can: Permissions, m: Mutation): void {
  switch (m.type) {
    case "deleteRange":
      can.range("write", m.start, m.end);
      break;
    case "enqueue":
      can.useQueue();
      for (const key of m.keysIfUndelivered) can.key("write", key);
      break;
    case "settle":
    case "release":
    case "renewLease":
    case "requeue":
    case "deleteDeadLetter":
      can.useQueue();
      break;
    default:
      can.key("write", m.key);
  }
}

/** Where the system keyspace starts: the end of every user key. */
const SYSTEM_START = new Uint8Array([SYSTEM_KEYSPACE]);

const checkRanges = (can: Permissions, { ranges }: FeedRanges) => {
  for (const r of ranges) can.range("read", r.start, r.end);
};

class Permitted implements Database {
  constructor(
    private readonly database: Database,
    private readonly can: Permissions,
  ) {}

  async get(keys: readonly Uint8Array[]) {
    for (const key of keys) this.can.key("read", key);
    return this.database.get(keys);
  }

  async scan(ranges: readonly KeyRange[]) {
    for (const r of ranges) this.can.range("read", r.start, r.end);
    return this.database.scan(ranges);
  }

  async count(range: CountRange) {
    this.can.range("read", range.start, range.end);
    return this.database.count(range);
  }

  async commit(commit: CheckedCommit) {
    for (const check of commit.checks) this.can.key("read", check.key);
    for (const m of commit.mutations) checkMutation(this.can, m);
    return this.database.commit(commit);
  }

  follow(request: FeedRanges & { readonly cursor: string | null }, listener: FeedListener) {
    checkRanges(this.can, request);
    return this.database.follow(request, listener);
  }

  async changes(request: ChangesRequest) {
    checkRanges(this.can, request);
    return this.database.changes(request);
  }

  async claim(request: ClaimRequest, signal?: AbortSignal) {
    this.can.useQueue();
    return this.database.claim(request, signal);
  }

  async createIndex(index: SearchIndex) {
    this.can.prefix("write", index.prefix);
    return this.database.createIndex(index);
  }

  async removeIndex(prefix: Uint8Array) {
    this.can.prefix("write", prefix);
    return this.database.removeIndex(prefix);
  }

  /** The indexes over keys it may read: an index is a description of its prefix's keys. */
  async listIndexes() {
    const indexes = await this.database.listIndexes();
    return this.can.all
      ? indexes
      : indexes.filter((i) => this.can.allows("read", i.prefix, i.prefix));
  }

  async search(request: SearchRequest) {
    this.can.prefix("read", request.prefix);
    return this.database.search(request);
  }

  async queueStats() {
    this.can.useQueue();
    return this.database.queueStats();
  }

  /** Sizes the whole user keyspace: for principals that may read all of it. */
  async storageStats() {
    this.can.range("read", new Uint8Array(), SYSTEM_START);
    return this.database.storageStats();
  }

  async deadLetters(query: Parameters<Database["deadLetters"]>[0]) {
    this.can.useQueue();
    return this.database.deadLetters(query);
  }

  /** The database is the server's: a request cannot close it. */
  close(): Promise<void> {
    return Promise.reject(new KvError("FORBIDDEN", "A request cannot close the database"));
  }
}

/** `database` (named `name`; `null`: the default one) as `principal` may use it, for one request. */
export function permitted(database: Database, principal: Principal, name: string | null): Database {
  return new Permitted(database, principal.permissionsIn(name));
}

/** Refuses (`FORBIDDEN`) a route the principal may not call at all: the admin's, to others. */
export function checkRoute(principal: Principal, route: Route): void {
  if (route.access === "admin" && !principal.permissionsIn(null).all) {
    throw new KvError("FORBIDDEN", "Only an admin token may do this");
  }
}

/** Refuses (`FORBIDDEN`) creating the database `name` to a principal that may write nothing in it. */
export function checkCreate(principal: Principal, name: string): void {
  if (!principal.permissionsIn(name).writesAny) {
    throw new KvError(
      "FORBIDDEN",
      `This token may not write in the database ${name}, so its first write cannot create it`,
    );
  }
}
