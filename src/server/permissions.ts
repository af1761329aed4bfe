/**
 * The one place a request's principal is held to what it may do: the request's database is the
 * server's, wrapped here, so that every face and every route is checked the same way, whatever it
 * calls. Today a principal may read, or read and write, the whole database; grants per prefix
 * (the identity issue) narrow these checks without changing any route.
 */
import type { Database } from "../engine/database.js";
import { DatabaseWrapper } from "../engine/database-wrapper.js";
import type { Access, Principal } from "../faces/face.js";
import { KvError } from "../kv-error.js";

/** What each call of the contract does with the data: a new method must be placed here. */
const ACCESS: Record<Exclude<keyof Database, "close">, Access> = {
  get: "read",
  scan: "read",
  count: "read",
  follow: "read",
  changes: "read",
  listIndexes: "read",
  search: "read",
  queueStats: "read",
  deadLetters: "read",
  commit: "write",
  claim: "write",
  createIndex: "write",
  removeIndex: "write",
};

/** What a principal is answered when it reaches past what it may do. */
export const forbidden = (access: Access) =>
  new KvError("FORBIDDEN", `This token may not ${access} here`);

class Permitted extends DatabaseWrapper {
  constructor(
    database: Database,
    readonly principal: Principal,
  ) {
    super(database);
  }

  /** The database is the server's: a request cannot close it. */
  override close(): Promise<void> {
    return Promise.reject(new KvError("FORBIDDEN", "A request cannot close the database"));
  }
}

for (const [method, access] of Object.entries(ACCESS)) {
  const passOn = DatabaseWrapper.prototype[method as keyof typeof ACCESS] as (
    ...args: unknown[]
  ) => unknown;
  Object.defineProperty(Permitted.prototype, method, {
    value(this: Permitted, ...args: unknown[]) {
      if (!this.principal.can(access)) throw forbidden(access);
      return passOn.apply(this, args);
    },
  });
}

/** `database` as `principal` may use it, for one request. */
export function permitted(database: Database, principal: Principal): Database {
  return new Permitted(database, principal);
}
