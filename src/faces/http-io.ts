/**
 * Request and response plumbing shared by every HTTP face. Handlers take the request/response
 * pair that both `node:http` and the `node:http2` compatibility API provide.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";

export type Request = IncomingMessage | Http2ServerRequest;
export type Response = ServerResponse | Http2ServerResponse;

const bodies = new WeakMap<Request, Promise<Buffer>>();

/**
 * Reads the body; `PAYLOAD_TOO_LARGE` past `maxBytes`. Read once per request: a later call (a
 * face's handler after its authentication read the body to check a signature) gets the same.
 */
export function readBody(req: Request, maxBytes: number): Promise<Buffer> {
  let body = bodies.get(req);
  if (body === undefined) {
    body = readBodyOnce(req, maxBytes);
    bodies.set(req, body);
  }
  return body;
}

async function readBodyOnce(req: Request, maxBytes: number): Promise<Buffer> {
  const length = req.headers["content-length"];
  if (length !== undefined) {
    if (Number(length) > maxBytes) throw tooLarge(maxBytes);
    return readDeclaredBody(req);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/**
 * A body of a declared length, which the HTTP parser holds to: events rather than an async
 * iterator, which costs more for the usual single chunk.
 */
function readDeclaredBody(req: Request): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer) => chunks.push(chunk);
    const onEnd = () => {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (error: unknown) => {
      stop();
      reject(error);
    };
    const onClose = () =>
      onError(new KvError("INVALID_ARGUMENT", "The request ended before its body"));
    const stop = () =>
      req.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
    req.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}

/** Reads the body as JSON; `PAYLOAD_TOO_LARGE` past `maxBytes`, `INVALID_JSON` when malformed. */
export async function readJson(req: Request, maxBytes: number): Promise<unknown> {
  return parseJson(await readBody(req, maxBytes));
}

/** A request body as JSON, whatever its content type says; `INVALID_JSON` when empty or malformed. */
export function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw new KvError("INVALID_JSON", "The request needs a JSON body");
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (e) {
    throw new KvError(
      "INVALID_JSON",
      `The request body is not valid JSON: ${(e as Error).message}`,
    );
  }
}

function tooLarge(maxBytes: number): KvError {
  return new KvError("PAYLOAD_TOO_LARGE", `The request body is larger than ${maxBytes} bytes`);
}

/** A response sent exactly as given. */
export class Reply {
  constructor(
    readonly status: number,
    readonly contentType: string,
    readonly body: Uint8Array | string,
    /** More response headers, by lowercase name. */
    readonly headers?: Readonly<Record<string, string>>,
  ) {}
}

export function sendReply(res: Response, reply: Reply): void {
  (res as ServerResponse).writeHead(reply.status, {
    ...reply.headers,
    "content-type": reply.contentType,
    "content-length": Buffer.byteLength(reply.body),
  });
  res.end(reply.body);
}

/** A body that is already JSON text, sent as is. */
export class JsonText {
  constructor(readonly text: string) {}
}

export function sendJson(res: Response, status: number, body: unknown): void {
  const text = body instanceof JsonText ? body.text : JSON.stringify(body);
  (res as ServerResponse).writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** `error` as a `KvError`; anything else is an internal fault, logged here. */
function asKvError(error: unknown): KvError {
  if (error instanceof KvError) {
    if (error.code === "INTERNAL") console.error("cairn: internal error:", error.cause ?? error);
    return error;
  }
  console.error("cairn: internal error:", error);
  return new KvError("INTERNAL", "An internal server error occurred", { cause: error });
}

/** The JSON body of an error: `{ error, code }`. */
export function errorBody(error: unknown): { error: string; code: string } {
  const e = asKvError(error);
  return { error: e.message, code: e.code };
}

/**
 * The one place errors become responses: `reply(error)` if given (a face's own error format), else
 * `{ error, code }` with the status of the code.
 */
export function sendError(res: Response, error: unknown, reply?: (error: KvError) => Reply): void {
  const e = asKvError(error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (reply) sendReply(res, reply(e));
  else sendJson(res, e.status, { error: e.message, code: e.code });
}

/** Parses `Bearer <token>` (scheme case-insensitive); `UNAUTHORIZED` with what to fix. */
export function bearerToken(authorization: string | undefined): string {
  if (!authorization) {
    throw new KvError(
      "UNAUTHORIZED",
      "Missing access token: send the header Authorization: Bearer <token>",
    );
  }
  const space = authorization.indexOf(" ");
  if (space === -1) throw new KvError("UNAUTHORIZED", "Malformed authorization header.");
  if (authorization.slice(0, space).toLowerCase() !== "bearer") {
    throw new KvError("UNAUTHORIZED", "Invalid access token.");
  }
  return authorization.slice(space + 1).trim();
}

/**
 * A chunk that many streams send (one commit's event, to every watcher of it): encoded, and framed
 * as an HTTP/1.1 chunk, once for all of them.
 */
export class SharedChunk {
  readonly bytes: Buffer;
  #framed: Buffer | undefined;

  constructor(text: string) {
    this.bytes = Buffer.from(text);
  }

  get framed(): Buffer {
    this.#framed ??= chunkFrame(this.bytes);
    return this.#framed;
  }
}

const CRLF = Buffer.from("\r\n");

/** `bytes` as one chunk of a chunked HTTP/1.1 body: its size in hex, CRLF, the bytes, CRLF. */
function chunkFrame(bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, CRLF]);
}

/** Writes to a streamed response. */
export interface ReplyStream {
  write(chunk: string | Uint8Array | SharedChunk): void;
  /** Ends the response; the stream's cleanup runs. */
  end(): void;
}

/**
 * A response streamed until either side ends it (SSE, KV Connect watch). `start` begins writing
 * and returns the cleanup to run when the stream ends, whoever ends it.
 */
export class StreamReply {
  constructor(
    readonly contentType: string,
    readonly start: (stream: ReplyStream) => () => void,
  ) {}
}

/**
 * Sends `reply`; returns a function that ends the stream (for server shutdown). The head goes out
 * once `start` has returned, so that a stream refused as it starts (a watch outside the token's
 * grants) throws to the caller, which answers with the error's status instead of a 200.
 */
export function sendStream(res: Response, reply: StreamReply): () => void {
  let body: ReturnType<typeof bodyWriter> | undefined;
  const early: (string | Uint8Array | SharedChunk)[] = [];
  let cleanup: (() => void) | undefined;
  let ended = false;
  const finish = () => {
    if (ended) return false;
    ended = true;
    cleanup?.();
    return true;
  };
  const end = () => {
    if (!finish() || body === undefined) return;
    body.flush();
    res.end();
  };
  res.on("close", finish);
  cleanup = reply.start({
    write: (chunk) => {
      if (ended) return;
      if (body === undefined) early.push(chunk);
      else body.write(chunk);
    },
    end,
  });
  (res as ServerResponse).writeHead(200, {
    "content-type": reply.contentType,
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
  });
  (res as ServerResponse).flushHeaders?.();
  body = bodyWriter(res);
  for (const chunk of early) body.write(chunk);
  if (ended) {
    cleanup(); // ended while starting
    body.flush();
    res.end();
  }
  return end;
}

/**
 * Writes a streamed body. A chunked HTTP/1.1 body goes to its connection directly, framed here:
 * node:http's own write corks the socket and schedules an uncork for every call, which is most of
 * the cost of fanning one event out to a thousand watchers. Chunks written in one go (the commits
 * a watcher has fallen behind by) leave in one socket write, at the end of the current job.
 * A client that lets more than `maxStreamBacklogBytes` wait is disconnected.
 */
function bodyWriter(res: Response): {
  write(chunk: string | Uint8Array | SharedChunk): void;
  flush(): void;
} {
  const http1 = "stream" in res ? undefined : (res as ServerResponse);
  const socket = http1?.chunkedEncoding ? http1.socket : null;
  if (!socket) {
    const writable = "stream" in res ? res.stream : (res as ServerResponse);
    return {
      write: (chunk) => {
        (res as ServerResponse).write(chunk instanceof SharedChunk ? chunk.bytes : chunk);
        if (writable.writableLength > limits.maxStreamBacklogBytes) writable.destroy();
      },
      flush: () => {},
    };
  }
  let pending: Buffer[] = [];
  const flush = () => {
    const chunks = pending;
    if (chunks.length === 0 || socket.destroyed) return;
    pending = [];
    socket.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    if (socket.writableLength > limits.maxStreamBacklogBytes) socket.destroy();
  };
  return {
    write: (chunk) => {
      if (pending.length === 0) queueMicrotask(flush);
      pending.push(
        chunk instanceof SharedChunk
          ? chunk.framed
          : chunkFrame(typeof chunk === "string" ? Buffer.from(chunk) : chunk),
      );
    },
    flush,
  };
}

/** The body as a JSON object; `INVALID_ARGUMENT` otherwise. */
export function body(value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new KvError("INVALID_ARGUMENT", "The request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/**
 * `value` as a JSON object of only the `known` fields: a field Cairn would not read is refused
 * rather than ignored (a misspelt `exact` would otherwise widen a delete).
 */
export function fields(
  value: unknown,
  known: readonly string[],
  what = "The body",
): Record<string, unknown> {
  const b = body(value);
  for (const name of Object.keys(b)) {
    if (!known.includes(name)) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `${what} has an unknown field ${JSON.stringify(name)}; its fields are ${known.join(", ")}`,
      );
    }
  }
  return b;
}

/**
 * A query parameter that must be an integer from `min` to `max` (absent: `fallback`);
 * `INVALID_ARGUMENT` otherwise.
 */
export function integerParam(
  text: string | null,
  name: string,
  { min, max, fallback }: { min: number; max: number; fallback: number },
): number {
  if (text === null) return fallback;
  const n = Number(text);
  if (!/^-?\d+$/.test(text) || n < min || n > max) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `${name} must be an integer from ${min} to ${max} (default ${fallback})`,
    );
  }
  return n;
}
