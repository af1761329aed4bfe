import type { Request } from "./http-io.js";

/** What a route does with the data, for authorization. */
export type Access = "read" | "write";

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
  /** The body parsed as JSON (`INVALID_JSON`, `PAYLOAD_TOO_LARGE`). */
  json(): Promise<unknown>;
  /** The raw body (`PAYLOAD_TOO_LARGE`). */
  bytes(): Promise<Buffer>;
}

/**
 * A face's route, declared: the server mounts it under each base path, authenticates and
 * authorizes the caller for `access`, and sends the resolved value as JSON with status 200
 * (errors through the server's one error path).
 */
export interface Route {
  readonly method: "GET" | "POST" | "PUT" | "DELETE";
  /** Path below the base, e.g. `/db/get`, `/keys/*` or `/db/:name/v2/watch`. */
  readonly path: string;
  readonly access: Access;
  /** Base paths to mount under; default `/api` and `/keyval/api`. */
  readonly bases?: readonly string[];
  /** Errors as `{ error, code }` JSON (default) or as plain text, for protocols that want that. */
  readonly errors?: "json" | "text";
  /** Resolves to a value sent as JSON, to a `Reply` sent as is, or to a `StreamReply` streamed. */
  handle(request: RouteRequest): Promise<unknown>;
}
