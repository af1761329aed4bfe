/**
 * One listening port for every transport. Without TLS, each connection is sniffed: the HTTP/2
 * preface ("PRI * HTTP/2.0…", what Deno's KV client sends) goes to a cleartext HTTP/2 server,
 * anything else to an HTTP/1.1 server. With a certificate, TLS offers ALPN `h2` and `http/1.1`.
 * Both servers call the same handler through the request/response API they share.
 *
 * A listener can also serve connections another process accepted (a `--workers` worker's, handed
 * over by the primary), and pass on a share of the ones it accepts before reading from them.
 *
 * No connection is held for ever by a client that stops talking: each phase has a timeout. Until
 * it shows its protocol (first bytes, TLS handshake, HTTP/2 SETTINGS): `handshakeTimeoutMs`.
 * HTTP/1.1 headers: `headersTimeoutMs` (then 408). Between requests, HTTP/1.1 and HTTP/2 alike:
 * `idleTimeoutMs`; an HTTP/2 session is idle only while it has no open stream, so a long watch
 * stream, quiet between heartbeats, keeps its session.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Duplex } from "node:stream";
import type { Request, Response } from "../faces/http-io.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";

export interface ListenOptions {
  /** Where to accept connections; without a port, only those given to `serve` are served. */
  readonly host: string;
  readonly port?: number;
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** How long a client may take to send a request's headers, and all of it (default `limits`). */
  readonly headersTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** How long a new connection may take to show which protocol it speaks (default `limits`). */
  readonly handshakeTimeoutMs?: number;
  /**
   * How long a connection with no request in progress stays open: HTTP/1.1 between requests, an
   * HTTP/2 session without open streams (default `limits`).
   */
  readonly idleTimeoutMs?: number;
  /**
   * Connections this listener holds open at most (default `limits`). One more is answered 503
   * `UNAVAILABLE` in plain HTTP/1.1 and closed (over TLS, closed: a plaintext answer would not be
   * readable there, and the cap is there to spare the work of a handshake).
   */
  readonly maxConnections?: number;
  /**
   * Decides where each connection the port accepts is served, before anything is read from it:
   * here (it calls `here(socket)`) or in another process it hands the socket to.
   */
  readonly balance?: (socket: net.Socket, here: (socket: net.Socket) => void) => void;
  /**
   * Called once with the server that reads HTTP/1.1 requests (over TLS, the one that also speaks
   * HTTP/2), before any connection, so that more can be served on it (Socket.IO's upgrades).
   */
  readonly attach?: (server: http.Server | http2.Http2SecureServer) => void;
}

export interface Listener {
  /** The port accepting connections, if any. */
  readonly port: number | undefined;
  /** Connections open now (accepted here or handed over). */
  readonly connections: number;
  /** Serves a connection accepted elsewhere, of which nothing has been read yet. */
  serve(socket: net.Socket): void;
  /**
   * Stops accepting, lets in-flight requests finish, closes idle connections and sessions, and
   * resolves once every connection is closed.
   */
  close(): Promise<void>;
}

const PRI = Buffer.from("PRI");

/**
 * What an HTTP/1.1 connection whose request node:http could not read is answered (node:http's own
 * cases, with Cairn's `{ error, code }` body rather than none), before it is closed.
 */
function clientErrorReply(error: Error & { code?: string }): string {
  const [status, reason, e] =
    error.code === "HPE_HEADER_OVERFLOW"
      ? [
          431,
          "Request Header Fields Too Large",
          new KvError(
            "HEADERS_TOO_LARGE",
            `The request line and headers are larger than ${http.maxHeaderSize} bytes`,
          ),
        ]
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [
            408,
            "Request Timeout",
            new KvError("REQUEST_TIMEOUT", "The request's headers did not arrive in time"),
          ]
        : [
            400,
            "Bad Request",
            new KvError(
              "INVALID_ARGUMENT",
              `The request is not valid HTTP/1.1 (${error.code ?? error.message})`,
            ),
          ];
  const body = JSON.stringify({ error: e.message, code: e.code });
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

/** node:http's `clientError` handling, answering with `clientErrorReply`. */
function onClientError(error: Error, socket: net.Socket): void {
  if (socket.writable && socket.bytesWritten === 0) socket.write(clientErrorReply(error));
  socket.destroy(error);
}

/** The whole answer to a connection over the cap, sent before anything is read from it. */
function tooManyConnections(max: number): Buffer {
  const error = new KvError("UNAVAILABLE", `Too many connections (max ${max})`);
  const body = JSON.stringify({ error: error.message, code: error.code });
  return Buffer.from(
    `HTTP/1.1 ${error.status} ${http.STATUS_CODES[error.status]}\r\n` +
      "content-type: application/json\r\n" +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      "connection: close\r\n\r\n" +
      body,
  );
}

/**
 * A duplex that replays `head` and then relays `socket`. The HTTP/2 server reads a real socket's
 * handle natively, which would skip bytes already read by the sniffer; a plain duplex avoids that.
 */
function replay(socket: net.Socket, head: Buffer): Duplex {
  const duplex = new Duplex({
    read: () => socket.resume(),
    write: (chunk, encoding, callback) => socket.write(chunk, encoding, callback),
    final: (callback) => socket.end(callback),
    destroy: (error, callback) => {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  duplex.push(head);
  socket.on("data", (data) => duplex.push(data) || socket.pause());
  socket.on("end", () => duplex.push(null));
  socket.on("error", (error) => duplex.destroy(error));
  socket.on("close", () => duplex.destroy());
  return duplex;
}

/**
 * The response an HTTP/1.1 connection is sending, if any. node:http keeps it on the socket (its
 * own `closeIdleConnections` reads the same field); asking it there, only at close, spares every
 * request a listener that would count them.
 */
function inFlight(socket: net.Socket): http.ServerResponse | undefined {
  const response = (socket as { _httpMessage?: http.ServerResponse | null })._httpMessage;
  return response && !response.writableFinished ? response : undefined;
}

export async function listen(
  handler: (req: Request, res: Response) => void,
  options: ListenOptions,
): Promise<Listener> {
  let closing = false;
  const serve = (req: Request, res: Response) => {
    if (closing && req.httpVersionMajor === 1) res.setHeader("connection", "close");
    handler(req, res);
  };
  const sessions = new Set<http2.Http2Session>();
  /** Every connection served here, until it closes. */
  const open = new Set<net.Socket>();
  /** The same, as the HTTP servers see them: over TLS, the TLS sockets once negotiated. */
  const sockets = new Set<net.Socket>();
  /** Connections speaking HTTP/2: their sessions close them. */
  const http2Sockets = new WeakSet<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  };
  const handshakeTimeout = options.handshakeTimeoutMs ?? limits.handshakeTimeoutMs;
  const idleTimeout = options.idleTimeoutMs ?? limits.idleTimeoutMs;
  // node:http2's own `timeout` counts any frame as activity and cuts open streams too: a session
  // is timed here instead, by its open streams.
  const trackSession = (session: http2.Http2Session) => {
    sessions.add(session);
    let streams = 0;
    let timer = setTimeout(() => session.destroy(), handshakeTimeout);
    const idle = () => {
      timer = setTimeout(() => session.close(), idleTimeout); // GOAWAY, then close
    };
    session.once("remoteSettings", () => {
      clearTimeout(timer);
      if (streams === 0) idle();
    });
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      streams++;
      clearTimeout(timer);
      stream.once("close", () => {
        if (--streams === 0 && !session.closed) idle();
      });
    });
    session.on("close", () => {
      clearTimeout(timer);
      sessions.delete(session);
    });
  };

  // Node enforces the HTTP/1.1 timeouts only once a server has emitted `listening`; these servers
  // never listen themselves (connections are handed to them), so they are told. Without it a
  // client that sends its headers slowly holds a connection open for ever.
  const headersTimeout = options.headersTimeoutMs ?? limits.headersTimeoutMs;
  const timeouts = {
    keepAliveTimeout: idleTimeout,
    headersTimeout,
    requestTimeout: options.requestTimeoutMs ?? limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(30_000, headersTimeout),
  };
  let accept: (socket: net.Socket) => void;
  if (options.tls) {
    const secure = http2.createSecureServer(
      { ...options.tls, allowHTTP1: true, handshakeTimeout },
      serve,
    );
    Object.assign(secure, timeouts);
    secure.on("clientError", onClientError);
    secure.emit("listening");
    secure.on("session", trackSession);
    secure.on("secureConnection", track);
    options.attach?.(secure);
    accept = (socket) => secure.emit("connection", socket);
  } else {
    const plain = http.createServer(timeouts, serve);
    plain.on("clientError", onClientError);
    plain.emit("listening");
    options.attach?.(plain);
    const h2c = http2.createServer(serve);
    h2c.on("session", trackSession);
    accept = (socket) => {
      track(socket);
      let head = Buffer.alloc(0);
      const unclassified = setTimeout(() => socket.destroy(), handshakeTimeout);
      socket.once("close", () => clearTimeout(unclassified));
      const sniff = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        if (head.length < PRI.length && PRI.subarray(0, head.length).equals(head)) return; // wait for more
        clearTimeout(unclassified);
        socket.off("data", sniff);
        socket.pause();
        if (head.subarray(0, PRI.length).equals(PRI)) {
          http2Sockets.add(socket);
          h2c.emit("connection", replay(socket, head));
        } else {
          socket.unshift(head);
          plain.emit("connection", socket);
          socket.resume();
        }
      };
      socket.on("data", sniff);
      socket.resume(); // paused if the port took it with `pauseOnConnect`
    };
  }

  const maxConnections = options.maxConnections ?? limits.maxConnections;
  const refusal = tooManyConnections(maxConnections);
  /** Connections over the cap, answered and waiting for their client to close. */
  const refused = new Set<net.Socket>();
  const refuse = (socket: net.Socket) => {
    socket.on("error", () => socket.destroy());
    if (options.tls) {
      socket.destroy();
      return;
    }
    refused.add(socket);
    const timer = setTimeout(() => socket.destroy(), handshakeTimeout);
    socket.on("close", () => {
      clearTimeout(timer);
      refused.delete(socket);
    });
    socket.end(refusal);
    // Reading (and dropping) what the client sent: closing with unread bytes would send a reset,
    // which can reach the client before the answer does.
    socket.resume();
  };

  const here = (socket: net.Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    if (open.size >= maxConnections) {
      refuse(socket);
      return;
    }
    // No Nagle: HTTP/2 writes a response's HEADERS and DATA frames apart, and a delayed ACK
    // would then hold the DATA frame back ~40 ms (Deno's KV client waits on exactly that).
    socket.setNoDelay(true);
    socket.on("error", () => socket.destroy());
    open.add(socket);
    socket.on("close", () => open.delete(socket));
    accept(socket);
  };

  let server: net.Server | undefined;
  if (options.port !== undefined) {
    const { balance } = options;
    const port = net.createServer({ pauseOnConnect: true }, (socket) =>
      balance ? balance(socket, here) : here(socket),
    );
    await new Promise<void>((resolve, reject) => {
      port.once("error", reject);
      port.listen(options.port, options.host, () => {
        port.off("error", reject);
        resolve();
      });
    });
    server = port;
  }

  return {
    port: server && (server.address() as net.AddressInfo).port,
    get connections() {
      return open.size;
    },
    serve: here,
    close: async () => {
      closing = true;
      const stopped = server && new Promise((resolve) => server.close(resolve));
      const closed = [...open].map(
        (socket) => new Promise((resolve) => socket.once("close", resolve)),
      );
      const deadline = setTimeout(() => {
        for (const socket of [...open, ...sockets]) socket.destroy();
      }, limits.closeDeadlineMs);
      for (const socket of refused) socket.destroy();
      for (const session of sessions) session.close(); // finishes open streams, then closes
      // HTTP/1.1 connections go once their response is sent; idle ones, including ones that
      // never sent a request, now.
      for (const socket of sockets) {
        const h2 =
          http2Sockets.has(socket) || (socket as { alpnProtocol?: string }).alpnProtocol === "h2";
        if (h2) continue;
        const response = inFlight(socket);
        if (!response) socket.destroy();
        else {
          if (!response.headersSent) response.setHeader("connection", "close");
          response.once("close", () => socket.destroy());
        }
      }
      await Promise.all([stopped, ...closed]);
      clearTimeout(deadline);
    },
  };
}
