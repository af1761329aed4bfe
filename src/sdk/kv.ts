/**
 * The SDK's entry: `openKv(location)` and `new Kv(location)` open the core `Kv` over a database in
 * this process or over a Cairn server's, chosen by the location's form; the API is the same.
 */
import type { Database } from "../engine/database.js";
import { Kv as CoreKv } from "../kv/kv.js";
import { DEFAULT_PATH, type LocalOptions, openLocalDatabase } from "../kv/local-database.js";
import { RemoteDatabase } from "./remote-database.js";

export interface KvOptions extends LocalOptions {
  /** For `http(s)://` URLs: the server's access token (default: the `CAIRN_TOKEN` environment variable). */
  accessToken?: string;
}

/** The database behind a `Kv` for `location` (see `new Kv()`). */
export function openDatabase(location: string, options: KvOptions = {}): Database {
  if (/^https?:\/\//i.test(location)) {
    return new RemoteDatabase(location, options.accessToken ?? process.env.CAIRN_TOKEN);
  }
  return openLocalDatabase(location, options);
}

/** A Cairn database, with Deno KV's API and the Buntime KeyVal seed's. */
export class Kv extends CoreKv {
  /**
   * Opens the database at `location`: a SQLite file path (created with its directory if needed),
   * a `file://` URL, `":memory:"`, a `postgres://` URL, or a Cairn server's `http(s)://` URL (e.g.
   * the seed's `http://localhost:8000/keyval/api`); default `./cairn-data/cairn.db`. A `Database`
   * is used as is.
   */
  constructor(location: string | Database = DEFAULT_PATH, options: KvOptions = {}) {
    const database = typeof location === "string" ? openDatabase(location, options) : location;
    super(
      database,
      database instanceof RemoteDatabase ? { metrics: (format) => database.metrics(format) } : {},
    );
  }
}

/** Opens a database; see `new Kv()` for `location`. */
export async function openKv(location?: string, options?: KvOptions): Promise<Kv> {
  return new Kv(location, options);
}
