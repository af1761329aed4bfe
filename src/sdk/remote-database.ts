/**
 * A `Database` on a Cairn server, over the database protocol (protocol/database-wire.ts). Errors
 * come back as the server's `{ error, code }` and are rebuilt as the same `KvError`.
 */
import type { Commit, CommitResult, Database, KeyRange, RawEntry } from "../engine/database.js";
import { errorStatus, KvError, type KvErrorCode } from "../kv-error.js";
import {
  commitToWire,
  entryFromWire,
  keysToWire,
  rangesToWire,
  type WireEntry,
} from "../protocol/database-wire.js";

/** The API base for a server URL: `/api` unless the URL names a path (e.g. the seed's `/keyval/api`). */
export function apiBase(url: string): string {
  const parsed = new URL(url);
  const path = parsed.pathname.replace(/\/+$/, "");
  return `${parsed.origin}${path === "" ? "/api" : path}`;
}

export class RemoteDatabase implements Database {
  readonly #base: string;
  readonly #headers: Record<string, string>;

  constructor(url: string, accessToken: string | undefined) {
    this.#base = apiBase(url);
    this.#headers = { "content-type": "application/json" };
    if (accessToken) this.#headers.authorization = `Bearer ${accessToken}`;
  }

  async #post<T>(path: string, body: unknown): Promise<T> {
    let response: globalThis.Response;
    try {
      response = await fetch(`${this.#base}${path}`, {
        method: "POST",
        headers: this.#headers,
        body: JSON.stringify(body),
      });
    } catch (e) {
      throw new KvError(
        "UNAVAILABLE",
        `Cannot reach the Cairn server at ${this.#base}: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    const text = await response.text();
    let json: { error?: string; code?: string } | undefined;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON: reported below
    }
    if (response.ok && json !== undefined) return json as T;
    const code = json?.code && json.code in errorStatus ? (json.code as KvErrorCode) : undefined;
    throw new KvError(
      code ?? (response.status >= 500 ? "UNAVAILABLE" : "INTERNAL"),
      json?.error ??
        `The server at ${this.#base} answered ${response.status}: ${text.slice(0, 200)}`,
    );
  }

  async get(keys: readonly Uint8Array[]): Promise<(RawEntry | null)[]> {
    const { entries } = await this.#post<{ entries: (WireEntry | null)[] }>(
      "/db/get",
      keysToWire(keys),
    );
    return entries.map((e) => (e ? entryFromWire(e) : null));
  }

  async scan(ranges: readonly KeyRange[]): Promise<RawEntry[][]> {
    const result = await this.#post<{ ranges: WireEntry[][] }>("/db/scan", rangesToWire(ranges));
    return result.ranges.map((entries) => entries.map(entryFromWire));
  }

  commit(commit: Commit): Promise<CommitResult> {
    return this.#post<CommitResult>("/db/commit", commitToWire(commit));
  }

  async close(): Promise<void> {}
}
