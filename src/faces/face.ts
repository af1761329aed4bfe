/**
 * What a face is to the server: routes over the request's principal and database, mounted under
 * the face's base paths, for the default database and for each named one (`/db/<name>…`). A face
 * lives in its own folder, translates its wire protocol to the core API, and never imports another
 * face; what they share (HTTP plumbing) sits beside the folders.
 */
import type { Database } from "../engine/database.js";
import type { Permissions } from "../kv/grants.js";
import type { KvError } from "../kv-error.js";
import type { Reply, Request } from "./http-io.js";

/**
 * What a route does: reads or writes data (which decides whether it may create a named database;
 * the keys themselves are checked by the request's database), or manages the server (the admin only).
 */
export type Access = "read" | "write" | "admin";

/** Whom a request acts for. */
export interface Principal {
  readonly name: string;
  /** What it may do in the database named `database` (`null`: the default one). */
  permissionsIn(database: string | null): Permissions;
  /**
   * A token that stands for this principal until `expiresAt`, or sooner when its own token
   * expires sooner (KV Connect's data path).
   */
  deriveToken(expiresAt: number): { readonly token: string; readonly expiresAt: number };
}

/** The server's tokens, as a face asks about them. */
export interface Authenticator {
  /** The principal behind an `Authorization` header; rejects with `UNAUTHORIZED` otherwise. */
  authenticate(authorization: string | undefined): Principal | Promise<Principal>;
  /**
   * The principal named `name` and the token it signs requests with (AWS Signature V4: the
   * access key id is the name, the secret access key the token); `UNAUTHORIZED` when there is
   * none, its token expired, or its token was not kept sealed (tokens.ts).
   */
  signingKey(name: string): SigningKey | Promise<SigningKey>;
}

export interface SigningKey {
  readonly principal: Principal;
  /** `null` when auth is off: any signature is accepted. */
  readonly secret: string | null;
}

/** What a face's route handler receives. */
export interface RouteRequest {
  readonly req: Request;
  /** What a trailing `*` in the route's path matched, still percent-encoded (so `%2F` stays apart from `/`). */
  readonly wildcard: string;
  /** The values of the path's `:name` parameters, percent-decoded. */
  readonly params: Readonly<Record<string, string | undefined>>;
  readonly query: URLSearchParams;
  /** Aborted when the client goes away before the response is finished. */
  readonly signal: AbortSignal;
  /** Whom the request acts for, as the face authenticated it. */
  readonly principal: Principal;
  /** The name in the path's `/db/<name>` prefix; `null` for the default database. */
  readonly databaseName: string | null;
  /**
   * The database the request reads and writes, as its principal may use it: the default one, or
   * the named one. A named database that does not exist is created by a route that `creates`;
   * otherwise reading this throws `NOT_FOUND` (`INVALID_ARGUMENT` for an invalid name).
   */
  readonly database: Database;
  /** The stable UUID of that database (the same across restarts). */
  readonly databaseId: string;
  /** The body parsed as JSON (`INVALID_JSON`, `PAYLOAD_TOO_LARGE`). */
  json(): Promise<unknown>;
  /** The raw body (`PAYLOAD_TOO_LARGE`). */
  bytes(): Promise<Buffer>;
}

/**
 * A face's route, declared: the server authenticates the caller through the face, authorizes it
 * for `access`, and sends the resolved value as JSON with status 200 (errors through the face's
 * `errorReply`).
 */
export interface Route {
  readonly method: "GET" | "POST" | "PUT" | "DELETE";
  /** Path below the face's base, e.g. `/keys/*` or `/v2/watch`. */
  readonly path: string;
  /**
   * Matched only when this header has this value (DynamoDB's `X-Amz-Target` at `POST /`); a
   * value ending in `*`, when the header starts with what precedes it and no other route matches.
   */
  readonly header?: { readonly name: string; readonly value: string };
  readonly access: Access;
  /**
   * What the route does, for metrics (`cairn_requests_total{face, operation}`): the Buntime
   * seed's operation names where they apply (`get`, `set`, `list`, `atomic_commit`,
   * `queue_enqueue`, …), the wire protocol's own elsewhere (DynamoDB's `GetItem`, KV Connect's
   * `snapshot_read`); lowercase with underscores otherwise.
   */
  readonly operation: string;
  /** Whether a request naming a database that does not exist creates it (default: `access` is write). */
  readonly creates?: boolean;
  /** Resolves to a value sent as JSON, to a `Reply` sent as is, or to a `StreamReply` streamed. */
  handle(request: RouteRequest): Promise<unknown>;
}

export interface Face {
  /** For logs and docs, e.g. `json-api`. */
  readonly name: string;
  /** Paths the routes are mounted under (`""`: the root), each also under `/db/<name>`. */
  readonly bases: readonly string[];
  readonly routes: readonly Route[];
  /** Whom a request is from; default: the `Authorization: Bearer` token, through `tokens`. */
  authenticate?(req: Request, tokens: Authenticator): Principal | Promise<Principal>;
  /** Whether its routes are mounted under `/db/<name>` too (default true). */
  readonly perDatabase?: boolean;
  /** The response for an error; default `{ error, code }` as JSON with the code's status. */
  errorReply?(error: KvError): Reply;
  /**
   * What the face serves beside its routes on the server's HTTP/1.1 server (Socket.IO at a
   * path), set up once as the server starts; returns what stops it as the server closes.
   */
  attach?(server: HttpServer, context: AttachContext): () => Promise<void>;
}

/** The server the listener reads HTTP/1.1 with (over TLS, the one that also speaks HTTP/2). */
export type HttpServer = import("node:http").Server | import("node:http2").Http2SecureServer;

/** What an attached service gets: the server's tokens, and its default database by principal. */
export interface AttachContext {
  readonly tokens: Authenticator;
  /** The default database, as `principal` may use it. */
  database(principal: Principal): Database;
}
