/**
 * Floww's KV client (its SDK's `ctx.kv`, reference/seed-systems.md §4) against a Cairn server's
 * Floww routes: `new KVStore(provider, { url, token })`, so workflow code written for Floww runs
 * with Cairn as its backend. Failures are `KVError`s with the status and the server's `detail`.
 */
import { checkName } from "../protocol/floww-name.js";

export class KVError extends Error {
  override readonly name = "KVError";

  constructor(
    message: string,
    readonly statusCode: number,
    /** The server's answer, parsed. */
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export interface KVItem<T = unknown> {
  readonly key: string;
  readonly value: T;
  readonly created_at: string;
  readonly updated_at: string;
}

export interface KVPermission {
  readonly workflow_id: string;
  readonly can_read: boolean;
  readonly can_write: boolean;
  readonly created_at: string;
}

export interface KVStoreOptions {
  /** The Cairn server, e.g. `http://127.0.0.1:8000`. */
  readonly url: string;
  /** A Cairn token (its principal is the workflow), or a Floww workflow token. */
  readonly token: string;
}

export class KVStore {
  readonly #base: string;

  constructor(
    readonly provider: string,
    private readonly options: KVStoreOptions,
  ) {
    this.#base = `${options.url.replace(/\/+$/, "")}/api/kv/${encodeURIComponent(provider)}`;
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.#base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.options.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const detail = (json as { detail?: unknown } | undefined)?.detail;
      throw new KVError(
        typeof detail === "string" ? detail : `KV store request failed: ${response.statusText}`,
        response.status,
        json ?? text,
      );
    }
    return json as T;
  }

  /** The path of a table (and a key), checked as the server would: 400 before sending. */
  #at(table: string, key?: string): string {
    const names: [string, "Table" | "Key"][] = [[table, "Table"]];
    if (key !== undefined) names.push([key, "Key"]);
    return names
      .map(([name, what]) => {
        try {
          return `/${checkName(name, what)}`;
        } catch (error) {
          const detail = (error as Error).message;
          throw new KVError(detail, 400, { detail, code: "INVALID_ARGUMENT" });
        }
      })
      .join("");
  }

  /** The value at `key`; `KVError` 404 when there is none. */
  async get<T = unknown>(table: string, key: string): Promise<T> {
    return (await this.#call<KVItem<T>>("GET", this.#at(table, key))).value;
  }

  /** Writes `value` at `key`, creating the table (yours to read and write) if there is none. */
  async set<T = unknown>(table: string, key: string, value: T): Promise<void> {
    await this.#call("PUT", this.#at(table, key), { value });
  }

  async delete(table: string, key: string): Promise<void> {
    await this.#call("DELETE", this.#at(table, key));
  }

  /** The tables this workflow has a permission on, by name. */
  async listTables(): Promise<string[]> {
    return (await this.#call<{ tables: string[] }>("GET", "")).tables;
  }

  async listKeys(table: string): Promise<string[]> {
    return (await this.#call<{ keys: string[] }>("GET", this.#at(table))).keys;
  }

  async listItems<T = unknown>(table: string): Promise<KVItem<T>[]> {
    const path = `${this.#at(table)}?include_values=true`;
    return (await this.#call<{ items: KVItem<T>[] }>("GET", path)).items;
  }

  async listPermissions(table: string): Promise<KVPermission[]> {
    return this.#call("GET", `/permissions${this.#at(table)}`);
  }

  /** Lets `workflowId` read (and with `write`, write) `table`, replacing what it had. */
  async grantPermission(
    table: string,
    workflowId: string,
    { read = true, write = false }: { read?: boolean; write?: boolean } = {},
  ): Promise<KVPermission> {
    return this.#call("POST", `/permissions${this.#at(table)}`, {
      workflow_id: workflowId,
      can_read: read,
      can_write: write,
    });
  }

  async revokePermission(table: string, workflowId: string): Promise<void> {
    await this.#call("DELETE", `/permissions${this.#at(table)}/${encodeURIComponent(workflowId)}`);
  }
}
