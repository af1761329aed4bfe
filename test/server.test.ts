/**
 * Wire details of `cairn serve` that the conformance suite (which also runs over HTTP) does not
 * see: transports on one port, authentication, error shapes and statuses, CORS, bad input. What
 * reads or writes data runs on a SQLite file and on PostgreSQL; the rest on a SQLite file.
 */
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import { type AddressInfo, connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { Kv, KvError, openKv } from "../src/index.js";
import { listen } from "../src/server/listener.js";
import { startServer } from "../src/server/server.js";
import { describeEach, selfSignedCert, serverForTests, storages } from "./targets.js";

const TOKEN = "test-token-0123456789";
const dir = join(tmpdir(), `cairn-server-${randomUUID()}`);

beforeAll(async () => {
  await mkdir(dir, { recursive: true });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${TOKEN}` };

/** One request over cleartext HTTP/2 with prior knowledge, as Deno's KV client connects. */
function h2cGet(url: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const stream = session.request({ ":path": path });
    let body = "";
    let status = 0;
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
    });
    stream.on("data", (chunk) => {
      body += chunk;
    });
    stream.on("end", () => {
      session.close();
      resolve({ status, body });
    });
    stream.end();
  });
}

/**
 * A TCP proxy to the server whose connections each carry one request: the next request's bytes
 * close both sides unanswered, as when a server drops a kept-alive connection under a request.
 */
async function oneRequestPerConnection(target: URL) {
  let broken = 0;
  const proxy = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    let answered = false;
    client.on("data", (chunk) => {
      if (!answered) return upstream.write(chunk);
      broken++;
      client.destroy();
      upstream.destroy();
    });
    upstream.on("data", (chunk) => {
      answered = true;
      client.write(chunk);
    });
    for (const socket of [client, upstream]) {
      socket.on("error", () => {});
      socket.on("close", () => (socket === client ? upstream : client).destroy());
    }
  });
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    broken: () => broken,
    close: () => new Promise((resolve) => proxy.close(resolve)),
  };
}

describeEach(storages, "server", (storage) => {
  const server = serverForTests(TOKEN, storage);
  const post = (path: string, body: string, headers: Record<string, string> = auth) =>
    fetch(`${server().url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
    });

  describe("transports", () => {
    it("serves HTTP/1.1 and cleartext HTTP/2 on the same port", async () => {
      const h1 = await fetch(`${server().url}/health`);
      expect(h1.status).toBe(200);
      expect(await h1.json()).toEqual({ status: "ok", storage: "ok" });
      const h2 = await h2cGet(server().url, "/health");
      expect(h2.status).toBe(200);
      expect(JSON.parse(h2.body)).toEqual({ status: "ok", storage: "ok" });
    });
  });

  describe("authentication", () => {
    it("requires a bearer token on data routes, not on /health", async () => {
      const cases: [Record<string, string>, string][] = [
        [{}, "Missing access token: send the header Authorization: Bearer <token>"],
        [{ authorization: "Bearer wrong-token" }, "Invalid access token."],
        // The same length, one character off; the token with more after it; a prefix of it; the
        // same number of characters in more bytes.
        [{ authorization: `Bearer ${TOKEN.slice(0, -1)}X` }, "Invalid access token."],
        [{ authorization: `Bearer ${TOKEN}0` }, "Invalid access token."],
        [{ authorization: `Bearer ${TOKEN.slice(0, -1)}` }, "Invalid access token."],
        [{ authorization: `Bearer ${TOKEN.slice(0, -1)}é` }, "Invalid access token."],
        [{ authorization: `Basic ${TOKEN}` }, "Invalid access token."],
        [{ authorization: "garbage" }, "Malformed authorization header."],
      ];
      for (const [headers, error] of cases) {
        const response = await post("/api/db/get", '{"keys":[]}', headers);
        expect(response.status).toBe(401);
        expect(response.headers.get("www-authenticate")).toBe("Bearer");
        expect(await response.json()).toEqual({ error, code: "UNAUTHORIZED" });
      }
      expect(
        (await post("/api/db/get", '{"keys":[]}', { authorization: `bearer ${TOKEN}` })).status,
      ).toBe(200);
    });

    it("rebuilds server errors in the remote SDK as the same KvError", async () => {
      const wrong = await openKv(server().url, { accessToken: "nope" });
      const error = await wrong.get(["a"]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KvError);
      expect(error).toMatchObject({
        code: "UNAUTHORIZED",
        message: "Invalid access token.",
        status: 401,
      });
      const unreachable = await openKv("http://127.0.0.1:9/", { accessToken: TOKEN });
      await expect(unreachable.get(["a"])).rejects.toMatchObject({ code: "UNAVAILABLE" });
    });

    it("accepts the seed's base URL and the CAIRN_TOKEN environment variable", async () => {
      process.env.CAIRN_TOKEN = TOKEN;
      try {
        const kv = new Kv(`${server().url}/keyval/api`);
        await kv.set(["seed", 1], { name: "Alice" });
        expect((await kv.get(["seed", 1])).value).toEqual({ name: "Alice" });
        await kv.close();
      } finally {
        delete process.env.CAIRN_TOKEN;
      }
    });
  });

  describe("remote SDK connections", () => {
    it("sends a read again when its kept-alive connection breaks, and never a commit", async () => {
      const proxy = await oneRequestPerConnection(new URL(server().url));
      const kv = await openKv(proxy.url, { accessToken: TOKEN });
      const direct = await openKv(server().url, { accessToken: TOKEN });
      try {
        await direct.set(["broken"], -1);
        for (let i = 0; i < 8; i++) expect((await kv.get(["broken"])).value).toBe(-1);
        expect(proxy.broken()).toBeGreaterThan(0);
        // A commit whose connection breaks fails, as it may or may not have been applied.
        const broken = proxy.broken();
        let failed: { error: unknown; value: number } | undefined;
        for (let value = 0; value < 8 && !failed; value++) {
          await kv.set(["broken"], value).catch((error: unknown) => {
            failed = { error, value };
          });
        }
        expect(failed).toBeDefined();
        const { error, value } = failed!;
        expect(error).toMatchObject({ code: "UNAVAILABLE" });
        expect((error as Error).message).toContain("Cannot reach the Cairn server");
        expect(proxy.broken()).toBe(broken + 1);
        expect((await direct.get(["broken"])).value).toBe(value - 1);
      } finally {
        await kv.close();
        await direct.close();
        await proxy.close();
      }
    });
  });

  describe("shutdown", () => {
    /** A fresh, empty database of the storage for a test's own server, dropped after the test. */
    const fresh = async () => {
      const { data, drop } = await storage.open();
      onTestFinished(drop);
      return data;
    };

    it("finishes in-flight commits on close and loses none it acknowledged", async () => {
      const data = await fresh();
      const own = await startServer({ host: "127.0.0.1", port: 0, data, auth: false });
      const kv = await openKv(own.url);
      const writes = Array.from({ length: 40 }, (_, i) =>
        kv.set(["w", i], i).then((r) => r.versionstamp),
      );
      const settled = Promise.allSettled(writes);
      await Promise.race(writes); // the server is busy with the others
      await own.close();
      const outcomes = await settled;
      expect(outcomes.filter((outcome) => outcome.status === "fulfilled").length).toBeGreaterThan(
        0,
      );
      for (const outcome of outcomes) {
        if (outcome.status === "rejected")
          expect(outcome.reason).toMatchObject({ code: "UNAVAILABLE" });
      }
      const local = await openKv(data);
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.status === "fulfilled")
          expect((await local.get(["w", i])).versionstamp).toBe(outcome.value);
      }
      await local.close();
      await kv.close();
    });

    it("on close ends idle connections at once and busy ones after their response", async () => {
      const data = await fresh();
      const own = await startServer({ host: "127.0.0.1", port: 0, data, auth: false });
      const open = async () => {
        const socket = connect(own.port, "127.0.0.1");
        await once(socket, "connect");
        let received = "";
        socket.on("data", (chunk) => (received += chunk));
        return { socket, received: () => received, closed: once(socket, "close") };
      };
      const idle = await open();
      const busy = await open();
      const body = JSON.stringify({ v: 1 });
      // Headers now, body later: the request is in flight when the server starts closing.
      busy.socket.write(
        `PUT /api/keys/k/1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      const closed = own.close();
      await idle.closed;
      expect(idle.received()).toBe("");
      busy.socket.write(body);
      await busy.closed;
      expect(busy.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(busy.received()).toMatch(/\r\nconnection: close\r\n/i);
      await closed;
      const local = await openKv(data);
      expect((await local.get(["k", 1])).value).toEqual({ v: 1 });
      await local.close();
    });
  });

  describe("errors and bad input", () => {
    it("answers unknown routes with 404 and wrong methods with 405 and Allow", async () => {
      const missing = await fetch(`${server().url}/api/nope`, { headers: auth });
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({
        error: "No route for GET /api/nope",
        code: "NOT_FOUND",
      });
      const wrong = await fetch(`${server().url}/api/db/get`, { headers: auth });
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get("allow")).toBe("POST, OPTIONS");
      expect(await wrong.json()).toMatchObject({ code: "METHOD_NOT_ALLOWED" });
    });

    it("rejects malformed and invalid bodies with a 4xx and a code, changing nothing", async () => {
      const kv = await openKv(server().url, { accessToken: TOKEN });
      await kv.set(["keep"], "me");
      const key = Buffer.from([0x02, 0x6b, 0x00]).toString("base64"); // ["k"]
      const cases: [string, number, string][] = [
        ["{not json", 400, "INVALID_JSON"],
        ["", 400, "INVALID_JSON"],
        ["[]", 400, "INVALID_ARGUMENT"],
        ['{"mutations":"x"}', 400, "INVALID_ARGUMENT"],
        [`{"mutations":[{"type":"explode","key":"${key}"}]}`, 400, "INVALID_ARGUMENT"],
        [`{"mutations":[{"type":"set","key":"${key}"}]}`, 400, "INVALID_ARGUMENT"],
        [
          `{"mutations":[{"type":"set","key":"${key}","value":{"encoding":9,"data":""}}]}`,
          400,
          "INVALID_VALUE",
        ],
        [
          `{"mutations":[{"type":"set","key":"${key}","value":{"encoding":2,"data":"AA=="}}]}`,
          400,
          "INVALID_VALUE",
        ],
        [
          `{"mutations":[{"type":"set","key":"${key}","value":{"encoding":4,"data":"{bad"}}]}`,
          400,
          "INVALID_VALUE",
        ],
        [
          `{"mutations":[{"type":"set","key":"mQ==","value":{"encoding":4,"data":"1"}}]}`,
          400,
          "INVALID_KEY",
        ],
        [
          `{"mutations":[{"type":"set","key":"","value":{"encoding":4,"data":"1"}}]}`,
          400,
          "INVALID_KEY",
        ],
        [
          `{"mutations":[{"type":"set","key":"${Buffer.concat([Buffer.from([1]), Buffer.alloc(2100, 1), Buffer.from([0])]).toString("base64")}","value":{"encoding":4,"data":"1"}}]}`,
          400,
          "KEY_TOO_LARGE",
        ],
        [
          `{"mutations":[{"type":"set","key":"${key}","value":{"encoding":3,"data":"${Buffer.alloc(70_000).toString("base64")}"}}]}`,
          413,
          "VALUE_TOO_LARGE",
        ],
        [`{"checks":[{"key":"${key}","versionstamp":"nope"}]}`, 400, "INVALID_ARGUMENT"],
        [
          `{"mutations":[{"type":"set","key":"${key}","value":{"encoding":4,"data":"1"},"expireIn":-1}]}`,
          400,
          "INVALID_ARGUMENT",
        ],
      ];
      for (const [body, status, code] of cases) {
        const response = await post("/api/db/commit", body);
        expect({ body, status: response.status }).toEqual({ body, status });
        const json = (await response.json()) as { error: string; code: string };
        expect(json.code).toBe(code);
        expect(json.error.length).toBeGreaterThan(10);
      }
      const tooBig = await post("/api/db/commit", `{"pad":"${"x".repeat(5 * 1024 * 1024)}"}`);
      expect(tooBig.status).toBe(413);
      expect(await tooBig.json()).toMatchObject({ code: "PAYLOAD_TOO_LARGE" });
      // The same without a Content-Length: the body is counted as it streams in.
      const streamed = await new Promise<number>((resolve, reject) => {
        const request = http.request(`${server().url}/api/db/commit`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
        });
        request.on("response", (response) => {
          response.resume();
          resolve(response.statusCode!);
        });
        request.on("error", reject);
        for (let i = 0; i < 80; i++) request.write("x".repeat(65_536));
        request.end();
      });
      expect(streamed).toBe(413);
      const scan = await post("/api/db/scan", `{"ranges":[{"start":"","end":"/w==","limit":0}]}`);
      expect(scan.status).toBe(400);
      expect(await kv.get(["k"])).toMatchObject({ value: null });
      expect(await kv.get(["keep"])).toMatchObject({ value: "me" });
      await kv.close();
    });
  });
});

/**
 * What does not touch data, on a SQLite file only: TLS (on its own server over `:memory:`), the
 * listener, CORS and the plain response writers. A server that cannot listen closing its database
 * is seen in SQLite's files (the WAL goes with the last connection).
 */
const sqliteFile = storages.filter((storage) => !storage.postgres);
describeEach(sqliteFile, "server, transport only", (storage) => {
  const server = serverForTests(TOKEN, storage);

  describe("transports", () => {
    it("serves TLS with ALPN h2 and http/1.1", async () => {
      const { key, cert } = selfSignedCert(dir);
      const tls = await startServer({
        host: "127.0.0.1",
        port: 0,
        data: ":memory:",
        auth: false,
        tls: { cert: readFileSync(cert), key: readFileSync(key) },
      });
      try {
        expect(tls.url).toMatch(/^https:/);
        const h2 = await new Promise<string>((resolve, reject) => {
          const session = http2.connect(tls.url, {
            ca: readFileSync(cert),
            servername: "localhost",
          });
          session.on("error", reject);
          session.on("connect", () => resolve(session.alpnProtocol ?? ""));
          setTimeout(() => session.close(), 100);
        });
        expect(h2).toBe("h2");
        const h1 = await new Promise<{ alpn: string; status: number }>((resolve, reject) => {
          const req = https.request(
            `${tls.url}/health`,
            // HTTP/1.1 only, as @deno/kv's fetch would negotiate.
            {
              ca: readFileSync(cert),
              servername: "localhost",
              ALPNProtocols: ["http/1.1"],
              agent: false,
            } as object,
            (res) => {
              res.resume();
              resolve({
                alpn: (res.socket as import("node:tls").TLSSocket).alpnProtocol || "",
                status: res.statusCode!,
              });
            },
          );
          req.on("error", reject);
          req.end();
        });
        expect(h1).toEqual({ alpn: "http/1.1", status: 200 });
      } finally {
        await tls.close();
      }
    });
  });

  describe("shutdown", () => {
    it("closes its database when it cannot listen", async () => {
      const data = join(dir, "unlistened.sqlite");
      const start = startServer({ host: "127.0.0.1", port: server().port, data, auth: false });
      await expect(start).rejects.toThrow(/EADDRINUSE/);
      expect(existsSync(data)).toBe(true);
      expect(existsSync(`${data}-wal`)).toBe(false); // SQLite removes the WAL when the last connection closes
    });
  });

  describe("errors and bad input", () => {
    it("maps every error code to its status and the { error, code } shape", async () => {
      const { createServer } = await import("node:http");
      const { sendError } = await import("../src/faces/http-io.js");
      const { errorStatus } = await import("../src/kv-error.js");
      const plain = createServer((req, res) => {
        const code = req.url!.slice(1) as keyof typeof errorStatus;
        sendError(
          res,
          code === "INTERNAL"
            ? new Error("secret detail")
            : new KvError(code, `message for ${code}`),
        );
      });
      await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", resolve));
      const port = (plain.address() as import("node:net").AddressInfo).port;
      try {
        for (const [code, status] of Object.entries(errorStatus)) {
          const response = await fetch(`http://127.0.0.1:${port}/${code}`);
          expect(response.status).toBe(status);
          expect(response.headers.get("content-type")).toBe("application/json");
          const expected =
            code === "INTERNAL" ? "An internal server error occurred" : `message for ${code}`;
          expect(await response.json()).toEqual({ error: expected, code });
        }
      } finally {
        plain.close();
      }
    });

    it("streams every chunk in order, shared or not, up to an end right after a write", async () => {
      const { createServer } = await import("node:http");
      const { sendStream, SharedChunk, StreamReply } = await import("../src/faces/http-io.js");
      const shared = new SharedChunk("shared é\n");
      const plain = createServer((_req, res) => {
        sendStream(
          res,
          new StreamReply("text/plain", (stream) => {
            stream.write("one\n");
            stream.write(shared);
            setTimeout(() => {
              stream.write(new TextEncoder().encode("bytes\n"));
              stream.write(shared);
              stream.write("last\n");
              stream.end(); // in the same job as the writes before it
            }, 20);
            return () => {};
          }),
        );
      });
      await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", resolve));
      const port = (plain.address() as import("node:net").AddressInfo).port;
      try {
        const response = await fetch(`http://127.0.0.1:${port}/`);
        expect(response.headers.get("transfer-encoding")).toBe("chunked");
        expect(await response.text()).toBe("one\nshared é\nbytes\nshared é\nlast\n");
      } finally {
        plain.close();
      }
    });

    it("answers CORS preflights", async () => {
      const response = await fetch(`${server().url}/keyval/api/db/get`, { method: "OPTIONS" });
      expect(response.status).toBe(204);
      expect(response.headers.get("access-control-allow-origin")).toBe("*");
      expect(response.headers.get("access-control-allow-headers")).toContain("authorization");
    });
  });

  describe("slow clients", () => {
    it("answers 408 and closes a connection whose headers do not arrive in time", async () => {
      const listener = await listen((_req, res) => res.end("ok"), {
        host: "127.0.0.1",
        port: 0,
        headersTimeoutMs: 300,
        requestTimeoutMs: 600,
      });
      try {
        const socket = connect(listener.port!, "127.0.0.1", () =>
          socket.write("GET / HTTP/1.1\r\n"),
        );
        let answer = "";
        socket.on("data", (chunk) => {
          answer += chunk;
        });
        await once(socket, "close");
        expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout");
        expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))).toEqual({
          error: "The request's headers did not arrive in time",
          code: "REQUEST_TIMEOUT",
        });
      } finally {
        await listener.close();
      }
    });

    it("answers a request it cannot read with the status and a code: 431 past 16 KiB of head, 400 for what is not HTTP", async () => {
      const listener = await listen((_req, res) => res.end("ok"), { host: "127.0.0.1", port: 0 });
      const send = async (text: string) => {
        const socket = connect(listener.port!, "127.0.0.1", () => socket.end(text));
        let answer = "";
        socket.on("data", (chunk) => {
          answer += chunk;
        });
        await once(socket, "close");
        const [head, body] = answer.split("\r\n\r\n");
        return { status: head!.split("\r\n")[0], body: JSON.parse(body!) };
      };
      try {
        expect(
          await send(`GET /api/keys/${"a".repeat(20_000)} HTTP/1.1\r\nhost: x\r\n\r\n`),
        ).toEqual({
          status: "HTTP/1.1 431 Request Header Fields Too Large",
          body: { error: expect.stringContaining("larger than"), code: "HEADERS_TOO_LARGE" },
        });
        expect(await send("GET / HTTP/1.1\r\nbad header line\r\n\r\n")).toEqual({
          status: "HTTP/1.1 400 Bad Request",
          body: { error: expect.stringContaining("not valid HTTP/1.1"), code: "INVALID_ARGUMENT" },
        });
      } finally {
        await listener.close();
      }
    });
  });
});
