/**
 * Connections that stop talking are closed, in every phase, and a process holds a bounded number
 * of them: real sockets on loopback against `startServer` with short timeouts.
 */
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import http2 from "node:http2";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CairnServer, startServer } from "../src/server/server.js";
import { selfSignedCert, sleep, until } from "./targets.js";

const TOKEN = "connection-limits-token";
const auth = { authorization: `Bearer ${TOKEN}` };
/** Short enough for a test to wait out, long enough for a loaded machine to connect in. */
const HANDSHAKE_MS = 300;
const IDLE_MS = 300;
const TIMEOUT = { timeout: 20_000 };

/** A raw connection to `port`, once connected; `received()` is everything it was sent. */
async function rawConnection(port: number): Promise<{ socket: Socket; received: () => string }> {
  const socket = connect(port, "127.0.0.1");
  let text = "";
  socket.on("data", (chunk) => {
    text += chunk;
  });
  socket.on("error", () => {}); // a reset is one way of being closed
  await once(socket, "connect");
  return { socket, received: () => text };
}

/** Makes one request on `session` and resolves with its status once the body has been read. */
async function request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
): Promise<number> {
  const req = session.request(headers);
  req.end();
  const [response] = await once(req, "response");
  req.resume();
  await once(req, "end");
  return response[":status"];
}

describe("timeouts", () => {
  let server: CairnServer;
  beforeAll(async () => {
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      data: ":memory:",
      auth: true,
      token: TOKEN,
      handshakeTimeoutMs: HANDSHAKE_MS,
      idleTimeoutMs: IDLE_MS,
    });
  });
  afterAll(() => server.close());

  it("closes a connection that sends nothing", TIMEOUT, async () => {
    const { socket, received } = await rawConnection(server.port);
    await once(socket, "close");
    expect(received()).toBe("");
  });

  it("closes a connection that sends two bytes and stops", TIMEOUT, async () => {
    const { socket, received } = await rawConnection(server.port);
    socket.write("PR"); // could still become the HTTP/2 preface
    await once(socket, "close");
    expect(received()).toBe("");
  });

  it("closes an HTTP/2 connection that sends the preface and no SETTINGS", TIMEOUT, async () => {
    const { socket } = await rawConnection(server.port);
    socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    await once(socket, "close");
  });

  it("sends GOAWAY to an HTTP/2 session without open streams, and closes it", TIMEOUT, async () => {
    const session = http2.connect(server.url);
    const goaway = once(session, "goaway");
    const closed = once(session, "close");
    expect(await request(session, { ":path": "/health" })).toBe(200);
    const [code] = await goaway;
    expect(code).toBe(http2.constants.NGHTTP2_NO_ERROR);
    await closed;
  });

  it("keeps an HTTP/2 session while a watch stream is open, however quiet", TIMEOUT, async () => {
    const session = http2.connect(server.url);
    session.on("error", () => {});
    const watch = session.request({ ":path": "/api/watch?keys=quiet/1", ...auth });
    let events = "";
    watch.setEncoding("utf8");
    watch.on("data", (chunk: string) => {
      events += chunk;
    });
    const [headers] = await once(watch, "response");
    expect(headers[":status"]).toBe(200);

    // A session started after the watch, idle: once it is closed, the idle timer has run out for
    // the watch's session too. Then a few more timeouts, as the watch is quiet between heartbeats.
    const idle = http2.connect(server.url);
    expect(await request(idle, { ":path": "/health" })).toBe(200);
    await once(idle, "close");
    await sleep(3 * IDLE_MS);
    expect(session.closed || session.destroyed).toBe(false);
    expect(watch.closed).toBe(false);

    // It still delivers.
    const put = await fetch(`${server.url}/api/keys/quiet/1`, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify("still here"),
    });
    expect(put.status).toBe(200);
    await until(() => events.includes("still here"));

    // Without its stream, the session is idle and goes.
    const closed = once(session, "close");
    watch.close();
    await closed;
  });
});

describe("the connection cap", () => {
  let server: CairnServer;
  beforeAll(async () => {
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      data: ":memory:",
      auth: true,
      token: TOKEN,
      // Long: the held connections below say nothing until the test wants them to.
      handshakeTimeoutMs: 60_000,
      maxConnections: 2,
    });
  });
  afterAll(() => server.close());

  it(
    "answers a connection over the cap 503 and closes it; a freed place is taken",
    TIMEOUT,
    async () => {
      const first = await rawConnection(server.port);
      const second = await rawConnection(server.port);

      const third = await rawConnection(server.port);
      third.socket.write("GET /health HTTP/1.1\r\nhost: x\r\n\r\n"); // not read: answered anyway
      await once(third.socket, "close");
      const [head, body] = third.received().split("\r\n\r\n");
      const lines = head!.split("\r\n");
      expect(lines[0]).toBe("HTTP/1.1 503 Service Unavailable");
      expect(lines).toContain("connection: close");
      expect(lines).toContain("content-type: application/json");
      expect(JSON.parse(body!)).toEqual({
        error: "Too many connections (max 2)",
        code: "UNAVAILABLE",
      });

      // The server closes the first connection after its answer: its place is free by the time the
      // client sees it closed.
      first.socket.write("GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
      await once(first.socket, "close");
      expect(first.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);

      const fourth = await rawConnection(server.port);
      fourth.socket.write("GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
      await once(fourth.socket, "close");
      expect(fourth.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(fourth.received()).toContain('"status":"ok"');

      second.socket.destroy();
    },
  );
});

describe("over TLS", () => {
  const dir = join(tmpdir(), `cairn-connection-limits-${randomUUID()}`);
  let server: CairnServer;
  let cert: string;
  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    const files = selfSignedCert(dir);
    cert = readFileSync(files.cert, "utf8");
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      data: ":memory:",
      auth: true,
      token: TOKEN,
      tls: { cert, key: readFileSync(files.key, "utf8") },
      handshakeTimeoutMs: HANDSHAKE_MS,
      idleTimeoutMs: IDLE_MS,
    });
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("closes a connection that never starts its handshake", TIMEOUT, async () => {
    const { socket, received } = await rawConnection(server.port);
    await once(socket, "close");
    expect(received()).toBe("");
  });

  it("closes an idle HTTP/2 session after GOAWAY", TIMEOUT, async () => {
    const session = http2.connect(server.url, { ca: cert, servername: "localhost" });
    const goaway = once(session, "goaway");
    const closed = once(session, "close");
    expect(await request(session, { ":path": "/health" })).toBe(200);
    await goaway;
    await closed;
  });
});
