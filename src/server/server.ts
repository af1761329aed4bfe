/**
 * `cairn serve`: one engine, every face, one port. The server owns transport, authentication,
 * CORS and the mapping of errors to responses; faces declare routes and translate to engine calls.
 */
import http, { type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import FindMyWay from "find-my-way";
import type { Database } from "../engine/database.js";
import { declareTables } from "../faces/dynamodb/declared-tables.js";
import type {
  Authenticator,
  Face,
  HttpServer,
  Principal,
  Route,
  RouteRequest,
} from "../faces/face.js";
import {
  Reply,
  type Request,
  type Response,
  readBody,
  readJson,
  StreamReply,
  sendError,
  sendJson,
  sendReply,
  sendStream,
} from "../faces/http-io.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { adminApi } from "./admin-api.js";
import { noAuth, tokenAuthenticator } from "./auth.js";
import { hasOneWriter, type WritesVia } from "./commit-channel.js";
import { Databases, type OpenDatabase } from "./databases.js";
import { type FaceOptions, facesFor } from "./faces.js";
import { type Listener, type ListenOptions, listen } from "./listener.js";
import { metricsFaces, ServerMetrics } from "./metrics.js";
import { checkCreate, checkRoute, permitted } from "./permissions.js";
import { PersistedMetrics } from "./persisted-metrics.js";
import { TokenStore } from "./tokens.js";
import { startWriter } from "./writer.js";

export interface ServerOptions extends FaceOptions {
  readonly host: string;
  readonly port: number;
  /**
   * A SQLite path (or `:memory:`) or a `postgres://` URL; named databases (`/db/<name>`) live
   * beside it (`Databases`).
   */
  readonly data: string;
  /** The faces served (default: every face, `faces.ts`, configured by these options). */
  readonly faces?: readonly Face[];
  /** How long (ms) a named database no request uses stays open (default `limits.namedDatabaseIdleMs`). */
  readonly namedDatabaseIdleMs?: number;
  readonly durability?: "full" | "relaxed";
  /** How long changes are kept for resuming watches (default 1 hour). */
  readonly changeRetention?: number | string;
  /** Whether to remove expired entries and old changes in the background (default true; `LocalOptions.sweep`). */
  readonly sweep?: boolean;
  /** Required unless `auth` is false. */
  readonly token?: string;
  readonly auth: boolean;
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /**
   * How long (ms) a new connection may take to show which protocol it speaks: its first bytes, TLS
   * handshake, HTTP/2 SETTINGS (default `limits.handshakeTimeoutMs`); then it is closed.
   */
  readonly handshakeTimeoutMs?: number;
  /**
   * How long (ms) a connection with no request in progress stays open: HTTP/1.1 between requests,
   * an HTTP/2 session without open streams (default `limits.idleTimeoutMs`). Open watch streams
   * are never cut by it.
   */
  readonly idleTimeoutMs?: number;
  /**
   * Connections this process holds open at most (default `limits.maxConnections`); one more is
   * answered 503 `UNAVAILABLE` and closed. With `--workers`, each process has its own cap.
   */
  readonly maxConnections?: number;
  /**
   * Write on a thread of the server's own (writer.ts; SQLite files only): more durable writes a
   * second under concurrent load, at the cost of slower watch wake-ups and of a thread hop each way
   * per commit. Default false.
   */
  readonly writerThread?: boolean;
  /**
   * Where the writes (commits, queue claims) to the database at a path go instead of to this
   * process's own engine over it: a `--workers` worker's primary (workers.ts). Reads stay here.
   */
  readonly writesVia?: WritesVia;
  /** Where the connections the port accepts are served: here or elsewhere (a `--workers` primary). */
  readonly balance?: ListenOptions["balance"];
  /**
   * Instead of a port: connections accepted by another process (a `--workers` worker's primary),
   * each passed to the function this is called with.
   */
  readonly handedConnections?: (serve: (socket: Socket) => void) => void;
  /** Serve the metrics routes (`/metrics`, `/api/metrics`) without a token (default false: the admin's only). */
  readonly metricsPublic?: boolean;
  /**
   * Keep the request and error counters across restarts, in the default database (the seed's
   * `metrics.persistent`; default false). Histograms start empty at each start.
   */
  readonly metricsPersistent?: boolean;
  /** How often (ms) persistent counters are written (default `limits.metricsFlushIntervalMs`, 30 s). */
  readonly metricsFlushIntervalMs?: number;
}

export interface CairnServer {
  /** The base URL clients connect to, e.g. `http://127.0.0.1:8000`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting requests, lets in-flight ones and pending commits finish, closes storage. */
  close(): Promise<void>;
}

const METHODS = ["GET", "POST", "PUT", "DELETE"] as const;

const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": METHODS.join(", "),
  "access-control-allow-headers": "authorization, content-type",
  "access-control-max-age": "86400",
};

/**
 * A request as a route sees it. The query, the abort signal with the listener behind it, and the
 * permitted database are made on first use: most routes need not all. It is a class because an
 * object literal with getters, made per request, costs a point GET much of its throughput
 * (docs/performance.md, "Per-request costs").
 */
class ServedRequest implements RouteRequest {
  #query: URLSearchParams | undefined;
  #aborted: AbortController | undefined;
  #permitted: OpenDatabase | undefined;

  constructor(
    readonly req: Request,
    private readonly res: Response,
    readonly wildcard: string,
    readonly params: Record<string, string | undefined>,
    private readonly search: string,
    readonly principal: Principal,
    readonly databaseName: string | null,
    /** The default database, a named one, or none: a named database that does not exist (yet). */
    private target: OpenDatabase | undefined,
    private readonly databases: Databases,
    /** Whether the route creates a named database that does not exist. */
    private readonly creates: boolean,
  ) {}

  get query(): URLSearchParams {
    this.#query ??= new URLSearchParams(this.search);
    return this.#query;
  }

  /** Aborts if the connection closes before the response finished: the client went away. */
  get signal(): AbortSignal {
    if (this.#aborted === undefined) {
      const aborted = new AbortController();
      const res = this.res as ServerResponse;
      const abandoned = () => !res.writableFinished && aborted.abort();
      if (isClosed(this.res)) abandoned();
      else res.once("close", abandoned);
      this.#aborted = aborted;
    }
    return this.#aborted.signal;
  }

  get database(): Database {
    return this.#open().database;
  }

  get databaseId(): string {
    return this.#open().id;
  }

  /** The request's database, as its principal may use it. */
  #open(): OpenDatabase {
    if (this.#permitted === undefined) {
      if (this.target === undefined && this.creates && this.databaseName !== null) {
        checkCreate(this.principal, this.databaseName);
        this.target = this.databases.create(this.databaseName);
        releasedWith(this.res, this.databases, this.target);
      }
      if (this.target === undefined) {
        throw new KvError(
          "NOT_FOUND",
          `No database named ${this.databaseName}: a named database is created by its first write`,
        );
      }
      const { database, id } = this.target;
      this.#permitted = { database: permitted(database, this.principal, this.databaseName), id };
    }
    return this.#permitted;
  }

  json(): Promise<unknown> {
    return readJson(this.req, limits.maxRequestBytes);
  }

  bytes(): Promise<Buffer> {
    return readBody(this.req, limits.maxRequestBytes);
  }
}

/** Whether the response's connection (HTTP/1) or stream (HTTP/2) is already closed. */
const isClosed = (res: Response) =>
  "stream" in res ? res.stream.closed : (res as ServerResponse).destroyed;

/** Holds the named database `open` until the response `res` ends (a stream's included). */
function releasedWith(res: Response, databases: Databases, open: OpenDatabase): void {
  const release = () => databases.release(open);
  if (isClosed(res)) release();
  else (res as ServerResponse).once("close", release);
}

type Handler = (req: Request, res: Response, params: Record<string, string | undefined>) => void;

/** Where a route is mounted: the default database's path, or a named database's under `/db/`. */
const DATABASE_PREFIXES = ["", "/db/:database"] as const;

/** The name of the router's constraint on the header `name` (find-my-way compiles it into code). */
const constraintOn = (name: string) => `header_${name.replace(/\W/g, "_")}`;

/** Routes that match on a header, by the header's name (find-my-way's constraint strategies). */
function headerStrategy(name: string): FindMyWay.ConstraintStrategy<FindMyWay.HTTPVersion.V1> {
  return {
    name: constraintOn(name),
    storage() {
      const handlers = new Map<string, unknown>();
      // Values ending in `*`: any value that starts with what precedes it, if no other matches.
      const prefixes: [string, unknown][] = [];
      return {
        get: (value: string) =>
          (handlers.get(value) ??
            prefixes.find(([prefix]) => value?.startsWith(prefix))?.[1] ??
            null) as never,
        set: (value: string, store: unknown) => {
          if (value.endsWith("*")) prefixes.push([value.slice(0, -1), store]);
          else handlers.set(value, store);
        },
      };
    },
    deriveConstraint: (req: Request) => req.headers[name] as string | undefined,
    mustMatchWhenDerived: true,
  } as never;
}

interface Mounting {
  readonly router: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>;
  readonly auth: Authenticator;
  readonly databases: Databases;
  /** Open streams (watches, queue listeners), ended when the server closes. */
  readonly streams: Set<() => void>;
  readonly metrics: ServerMetrics;
}

function mount(
  face: Face,
  route: Route,
  { router, auth, databases, streams, metrics }: Mounting,
): void {
  const prefix = route.path.endsWith("*") ? route.path.length - 1 : undefined;
  const creates = route.creates ?? route.access === "write";
  const errorReply = face.errorReply?.bind(face);
  const recorded = metrics.route(face.name, route.operation);
  const handler =
    (named: boolean, base: string): Handler =>
    async (req, res, params) => {
      const started = performance.now();
      let failure: unknown;
      try {
        const principal = await (face.authenticate
          ? face.authenticate(req, auth)
          : auth.authenticate(req.headers.authorization));
        checkRoute(principal, route);
        const url = req.url ?? "/";
        const q = url.indexOf("?");
        const pathname = q === -1 ? url : url.slice(0, q);
        // The router decodes params; faces that give `/` a meaning need the raw text.
        const start = named ? pathname.indexOf("/", "/db/".length) : 0;
        const name = named ? (params.database ?? "") : null;
        const target = name === null ? databases.default : await databases.acquire(name);
        if (name !== null && target !== undefined) releasedWith(res, databases, target);
        const result = await route.handle(
          new ServedRequest(
            req,
            res,
            prefix === undefined ? "" : pathname.slice(start + base.length + prefix),
            params,
            q === -1 ? "" : url.slice(q + 1),
            principal,
            name,
            target,
            databases,
            creates,
          ),
        );
        if (result instanceof Reply) sendReply(res, result);
        else if (result instanceof StreamReply) {
          const end = sendStream(res, result);
          streams.add(end);
          res.on("close", () => streams.delete(end));
        } else sendJson(res, 200, result);
      } catch (error) {
        if (error instanceof KvError && error.code === "UNAUTHORIZED" && !face.authenticate) {
          res.setHeader("www-authenticate", "Bearer");
        }
        sendError(res, error, errorReply);
        failure = error;
      }
      recorded.record(performance.now() - started, failure);
    };
  const constraints = route.header && { [constraintOn(route.header.name)]: route.header.value };
  for (const named of face.perDatabase === false ? [""] : DATABASE_PREFIXES) {
    for (const base of face.bases) {
      const path = `${named}${base}${route.path}`;
      const handle = handler(named !== "", base) as never;
      if (constraints) router.on(route.method, path, { constraints }, handle);
      else router.on(route.method, path, handle);
    }
  }
}

function decodable(path: string): boolean {
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}

async function health(database: Database, res: Response): Promise<void> {
  try {
    await database.get([new Uint8Array()]);
    sendJson(res, 200, { status: "ok", storage: "ok" });
  } catch (error) {
    sendJson(res, 503, { status: "unavailable", storage: (error as Error).message });
  }
}

export async function startServer(options: ServerOptions): Promise<CairnServer> {
  if (options.auth && !options.token) {
    throw new KvError("INVALID_ARGUMENT", "An access token is required unless auth is turned off");
  }
  const kvOptions = {
    durability: options.durability,
    changeRetention: options.changeRetention,
    sweep: options.sweep,
  };
  if (options.writerThread && !hasOneWriter(options.data)) {
    throw new KvError(
      "INVALID_ARGUMENT",
      "A writer thread needs a SQLite data file: an in-memory database lives on one thread, and PostgreSQL takes concurrent writers as they are",
    );
  }
  let listener: Listener | undefined;
  const streams = new Set<() => void>();
  const metrics = new ServerMetrics({
    connections: () => listener?.connections ?? 0,
    streams: () => streams.size,
  });
  const writer = options.writerThread && !options.writesVia ? startWriter(kvOptions) : undefined;
  const databases = new Databases(
    options.data,
    { ...kvOptions, commitObserver: metrics.commits },
    options.writesVia ?? writer?.writes,
    options.namedDatabaseIdleMs,
  );
  const closeStorage = async () => {
    await databases.close();
    await writer?.close();
  };
  if (options.dynamodbTables?.length) {
    await declareTables(
      databases.default.database,
      databases.default.id,
      options.dynamodbTables,
    ).catch(async (error) => {
      await closeStorage();
      throw error;
    });
  }
  const tokens = new TokenStore(
    databases.default.database,
    options.auth ? options.token : undefined,
  );
  const auth = options.auth ? tokenAuthenticator(options.token!, tokens) : noAuth;
  const persisted = options.metricsPersistent
    ? await PersistedMetrics.start(
        databases.default.database,
        metrics,
        options.metricsFlushIntervalMs ?? limits.metricsFlushIntervalMs,
      ).catch(async (error) => {
        await closeStorage();
        throw error;
      })
    : undefined;
  const faces = [
    ...(options.faces ?? facesFor(options)),
    adminApi(tokens),
    ...metricsFaces(metrics, { public: options.metricsPublic }),
  ];
  const headers = new Set(
    faces.flatMap((face) => face.routes.flatMap((r) => r.header?.name ?? [])),
  );
  const router = FindMyWay({
    ignoreTrailingSlash: true,
    // A path parameter (a Glia namespace or key, a Happy key) is as long as the request's head allows.
    maxParamLength: http.maxHeaderSize,
    constraints: Object.fromEntries(
      [...headers].map((name) => [constraintOn(name), headerStrategy(name)]),
    ),
    defaultRoute: (req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      if (!decodable(path)) {
        // The router matches decoded paths: one that cannot be decoded matches nothing.
        sendError(
          res,
          new KvError(
            "INVALID_KEY",
            `The path ${path} is not valid percent-encoded UTF-8: a key path encodes each part's UTF-8 bytes as %XX`,
          ),
        );
        return;
      }
      const allowed = METHODS.filter((m) => router.find(m, path) !== null);
      if (allowed.length > 0) res.setHeader("allow", [...allowed, "OPTIONS"].join(", "));
      sendError(
        res,
        allowed.length > 0
          ? new KvError(
              "METHOD_NOT_ALLOWED",
              `${req.method} is not allowed here; use ${allowed.join(" or ")}`,
            )
          : new KvError("NOT_FOUND", `No route for ${req.method} ${path}`),
      );
    },
  });
  router.on("GET", "/health", (_req, res) => void health(databases.default.database, res));
  const mounting = { router, auth, databases, streams, metrics };
  for (const face of faces) for (const route of face.routes) mount(face, route, mounting);
  const detaches: (() => Promise<void>)[] = [];
  const attach = (server: HttpServer) => {
    const context = {
      tokens: auth,
      database: (principal: Principal) => permitted(databases.default.database, principal, null),
    };
    for (const face of faces) if (face.attach) detaches.push(face.attach(server, context));
  };

  const listening = listen(
    (req, res) => {
      // CORS headers matter to browsers only, which always send Origin.
      if (req.headers.origin !== undefined || req.method === "OPTIONS") {
        for (const [name, value] of Object.entries(CORS_HEADERS)) res.setHeader(name, value);
      }
      if (req.method === "OPTIONS") {
        res.writeHead(204);
        res.end();
        return;
      }
      router.lookup(req as never, res as never);
    },
    {
      host: options.host,
      port: options.handedConnections ? undefined : options.port,
      tls: options.tls,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      maxConnections: options.maxConnections,
      balance: options.balance,
      attach,
    },
  );
  try {
    listener = await listening;
  } catch (error) {
    await Promise.all(detaches.map((detach) => detach()));
    await persisted?.close();
    await closeStorage(); // e.g. the port is taken: nothing may keep the files open
    throw error;
  }

  options.handedConnections?.(listener.serve);

  const scheme = options.tls ? "https" : "http";
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  const port = listener.port ?? options.port;
  let closing: Promise<void> | undefined;
  return {
    url: `${scheme}://${host}:${port}`,
    port,
    close: () => {
      closing ??= (async () => {
        const stopping = listener.close();
        for (const end of streams) end();
        await Promise.all(detaches.map((detach) => detach()));
        await stopping;
        await persisted?.close();
        await closeStorage();
      })();
      return closing;
    },
  };
}
