import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import http2 from "node:http2";
import https from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { openKv } from "../src/index.js";
import {
  childrenOf,
  postgresAvailable,
  postgresSchema,
  running,
  selfSignedCert,
  until,
} from "./targets.js";

const BIN = join(__dirname, "..", "bin", "cairn.js");
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill("SIGKILL"); // servers a failed test left running
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** The process ids of `parent`'s child processes (a `--workers` primary's workers). */
const childPids = (parent: ChildProcess): number[] => childrenOf(parent.pid!).map((c) => c.pid);

/** Starts `cairn serve` and waits for its first `count` lines (address, then the token note). */
async function serve(
  args: string[],
  env: Record<string, string> = {},
  count = 2,
): Promise<{ child: ChildProcess; lines: string[] }> {
  const child = spawn(process.execPath, [BIN, "serve", "--port", "0", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  let output = "";
  child.stdout!.on("data", (chunk) => {
    output += chunk;
  });
  while (output.split("\n").length < count + 1) {
    await Promise.race([
      once(child.stdout!, "data"),
      once(child, "exit").then(() => Promise.reject(new Error(output))),
    ]);
  }
  return { child, lines: output.split("\n") };
}

describe("cairn serve", () => {
  it("takes the metrics flags and their variables: public, persistent across a restart, the flush interval", async () => {
    const dir = join(tmpdir(), `cairn-cli-${randomUUID()}`);
    dirs.push(dir);
    const args = ["--data", join(dir, "cairn.db"), "--token", "t0ken", "--metrics-persistent"];
    const env = { CAIRN_METRICS_PUBLIC: "1", CAIRN_METRICS_FLUSH_INTERVAL: "1s" };
    const requestsOf = async (url: string) => {
      const response = await fetch(`${url}/metrics`); // no token: --metrics-public
      expect(response.status).toBe(200);
      const text = await response.text();
      return Number(
        /cairn_requests_total\{face="json-api",operation="get"\} (\d+)/.exec(text)?.[1] ?? 0,
      );
    };
    for (const expected of [1, 2]) {
      const { child, lines } = await serve(args, env, 1);
      const url = /listening on (\S+)/.exec(lines[0]!)![1]!;
      const missing = await fetch(`${url}/api/keys/nothing`, {
        headers: { authorization: "Bearer t0ken" },
      });
      expect(missing.status).toBe(404);
      expect(await requestsOf(url)).toBe(expected); // the first run's count survived the restart
      child.kill("SIGTERM");
      await once(child, "exit");
    }
    const refused = spawnSync(process.execPath, [BIN, "serve", "--metrics-flush-interval", "0"], {
      encoding: "utf8",
    });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain("--metrics-flush-interval");
  });

  it("generates and keeps a token, serves data, and stops gracefully on SIGTERM", async () => {
    const dir = join(tmpdir(), `cairn-cli-${randomUUID()}`);
    dirs.push(dir);
    const data = join(dir, "cairn.db");
    const { child, lines } = await serve(["--data", data]);
    const url = /listening on (\S+)/.exec(lines[0]!)![1]!;
    const token = readFileSync(join(dir, "token"), "utf8").trim();
    expect(lines[1]).toContain(token);

    expect((await fetch(`${url}/health`)).status).toBe(200);
    const kv = await openKv(url, { accessToken: token });
    await kv.set(["from", "cli"], 42);
    expect((await kv.get(["from", "cli"])).value).toBe(42);
    await kv.close();

    // `node bin/cairn.js serve` is the server itself, no launcher in between: a supervisor's
    // SIGTERM reaches it (npx's shell does not pass it on; see README, Running the server).
    expect(childPids(child)).toEqual([]);
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    expect(code).toBe(0);

    const again = await serve(["--data", data]);
    expect(again.lines[1]).toContain(`read from ${join(dir, "token")}`);
    again.child.kill("SIGINT");
    await once(again.child, "exit");
    const local = await openKv(data);
    expect((await local.get(["from", "cli"])).value).toBe(42);
    await local.close();
  });

  it("accepts Floww's workflow tokens with --floww-jwt-secret or CAIRN_FLOWW_JWT_SECRET, and only then", async () => {
    const secret = "floww-signing-secret";
    const jwt = await new SignJWT({ workflow_id: "wf-1", namespace_id: "ns-1" })
      .setProtectedHeader({ alg: "HS256" })
      .setAudience("floww-workflow")
      .setIssuer("floww-backend")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(secret));
    const tables = async (url: string) => {
      const response = await fetch(`${url}/api/kv/main`, {
        headers: { authorization: `Bearer ${jwt}` },
      });
      return { status: response.status, json: await response.json() };
    };
    for (const [args, env] of [
      [["--floww-jwt-secret", secret], {}],
      [[], { CAIRN_FLOWW_JWT_SECRET: secret }],
    ] as const) {
      const { child, lines } = await serve(["--data", ":memory:", ...args], env);
      expect(await tables(/listening on (\S+)/.exec(lines[0]!)![1]!)).toEqual({
        status: 200,
        json: { tables: [] },
      });
      child.kill("SIGTERM");
      await once(child, "exit");
    }
    const { child, lines } = await serve(["--data", ":memory:"]);
    expect((await tables(/listening on (\S+)/.exec(lines[0]!)![1]!)).status).toBe(401);
    child.kill("SIGTERM");
    await once(child, "exit");
  });

  it("serves without auth only when told to, through an environment variable too", async () => {
    const { child, lines } = await serve(["--data", ":memory:"], { CAIRN_NO_AUTH: "1" });
    expect(lines[1]).toContain("auth is OFF");
    const url = /listening on (\S+)/.exec(lines[0]!)![1]!;
    const kv = await openKv(url);
    expect((await kv.set(["open"], 1)).ok).toBe(true);
    await kv.close();
    child.kill("SIGTERM");
    await once(child, "exit");
  });

  it("reads switches from the environment strictly: CAIRN_NO_AUTH=false keeps auth on", async () => {
    for (const off of ["0", "false", "no", "off", ""]) {
      const { child, lines } = await serve(["--data", ":memory:"], { CAIRN_NO_AUTH: off });
      expect(lines[1]).toContain("access token (for this run)");
      const url = /listening on (\S+)/.exec(lines[0]!)![1]!;
      const kv = await openKv(url);
      await expect(kv.get(["closed"])).rejects.toMatchObject({ code: "UNAUTHORIZED" });
      await kv.close();
      child.kill("SIGTERM");
      await once(child, "exit");
    }
    const { child, lines } = await serve(["--data", ":memory:", "--no-auth"], {
      CAIRN_NO_AUTH: "0",
    });
    expect(lines[1]).toContain("auth is OFF"); // the command line wins
    child.kill("SIGTERM");
    await once(child, "exit");
    for (const [name, value] of [
      ["CAIRN_NO_AUTH", "maybe"],
      ["CAIRN_WRITER_THREAD", "2"],
    ]) {
      const refused = spawnSync(process.execPath, [BIN, "serve", "--port", "0"], {
        encoding: "utf8",
        env: { ...process.env, [name!]: value },
      });
      expect(refused.status).toBe(1);
      expect(refused.stderr).toContain(`${name} is 1, true, yes or on, or 0, false, no or off`);
    }
  });

  it("gets, sets, lists and deletes through the data commands, with --json for scripts", async () => {
    const { child, lines } = await serve(
      ["--data", ":memory:", "--token", "cli-token-123456"],
      {},
      1,
    );
    const url = /listening on (\S+)/.exec(lines[0]!)![1]!;
    const env = { ...process.env, CAIRN_URL: url, CAIRN_TOKEN: "cli-token-123456" };
    const run = (...args: string[]) => {
      const result = spawnSync(process.execPath, [BIN, ...args], { env, encoding: "utf8" });
      return { code: result.status, out: result.stdout.trim(), err: result.stderr.trim() };
    };
    expect(run("set", "users/1", '{"name":"Alice"}').out).toMatch(/^ok [0-9a-f]{20}$/);
    expect(run("set", "users/2", "plain text", "--expire-in", "1h").code).toBe(0);
    expect(run("set", "users/3", '{"__type":"bigint","value":"5"}', "--json").out).toMatch(
      /"ok":true/,
    );
    expect(run("get", "users/1").out).toBe('{"name":"Alice"}');
    expect(JSON.parse(run("get", "users/3", "--json").out)).toMatchObject({
      key: ["users", 3],
      value: { __type: "bigint", value: "5" },
    });
    expect(run("get", "users/404")).toMatchObject({ code: 1, err: "users/404: not found" });
    expect(run("list", "users").out.split("\n")).toEqual([
      'users/1\t{"name":"Alice"}',
      'users/2\t"plain text"',
      'users/3\t{"__type":"bigint","value":"5"}',
    ]);
    // --json prints what the JSON API answers: for list, one array (one entry a line).
    const api = async (path: string) =>
      (
        await fetch(`${url}/api${path}`, { headers: { authorization: "Bearer cli-token-123456" } })
      ).json();
    expect(JSON.parse(run("list", "users", "--json").out)).toEqual(await api("/keys?prefix=users"));
    expect(JSON.parse(run("get", "users/3", "--json").out)).toEqual(await api("/keys/users/3"));
    expect(JSON.parse(run("count", "users", "--json").out)).toEqual(
      await api("/keys/count?prefix=users"),
    );
    const last = run("list", "users", "--json", "--reverse", "--limit", "1").out;
    expect(JSON.parse(last)).toEqual([expect.objectContaining({ key: ["users", 3] })]);
    expect(last.split("\n")).toHaveLength(3);
    expect(JSON.parse(run("list", "nobody", "--json").out)).toEqual([]);
    expect(run("list", "users", "--where", '{"name":"Alice"}').out).toBe(
      'users/1\t{"name":"Alice"}',
    );
    expect(run("count", "users").out).toBe("3");
    expect(run("count", "users", "--where", '{"name":{"$null":false}}', "--json").out).toBe(
      '{"count":1}',
    );
    expect(run("count", "users", "--where", '{"name":{"$nope":1}}')).toMatchObject({
      code: 1,
      err: expect.stringContaining("INVALID_FILTER"),
    });
    expect(run("list", "users", "--where", "{oops").code).toBe(1);
    expect(run("delete", "users", "--where", '{"name":"Bob"}').out).toBe("deleted 0");
    expect(JSON.parse(run("delete", "users", "--json").out)).toEqual({
      success: true,
      deletedCount: 3,
    });
    expect(run("get", "users/1", "--token", "wrong")).toMatchObject({
      code: 1,
      err: "cairn: Invalid access token. (UNAUTHORIZED)",
    });
    expect(run("get", "bigint:x")).toMatchObject({
      code: 1,
      err: expect.stringContaining("INVALID_KEY"),
    });
    child.kill("SIGTERM");
    await once(child, "exit");
  });

  it("finds the token `cairn serve` saved in ./cairn-data/token for the default URL", async (context) => {
    const dir = join(tmpdir(), `cairn-cli-${randomUUID()}`);
    const elsewhere = join(dir, "elsewhere");
    dirs.push(dir);
    mkdirSync(elsewhere, { recursive: true });
    // The newcomer's setup: no flags, no CAIRN_* variables, server and CLI in one directory.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith("CAIRN_")),
    );
    const server = spawn(process.execPath, [BIN, "serve"], {
      cwd: dir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(server);
    let output = "";
    server.stdout!.on("data", (chunk) => {
      output += chunk;
    });
    server.stderr!.on("data", (chunk) => {
      output += chunk;
    });
    // Started (the token note follows the address), or refused the port.
    await until(() => output.includes("access token") || server.exitCode !== null, 10_000);
    if (server.exitCode !== null && output.includes("EADDRINUSE")) {
      return context.skip("port 8000, the default, is taken on this machine");
    }
    expect(output).toContain("listening on http://127.0.0.1:8000");
    const token = readFileSync(join(dir, "cairn-data", "token"), "utf8").trim();
    const run = (cwd: string, ...args: string[]) => {
      const result = spawnSync(process.execPath, [BIN, ...args], { cwd, env, encoding: "utf8" });
      return { code: result.status, out: result.stdout.trim(), err: result.stderr.trim() };
    };
    expect(run(dir, "set", "found", "1")).toMatchObject({
      code: 0,
      out: expect.stringMatching(/^ok/),
    });
    expect(run(dir, "get", "found", "--url", "http://127.0.0.1:8000/").out).toBe("1");

    // Elsewhere there is no file: the error says how to pass the token, and passing it works.
    expect(run(elsewhere, "get", "found")).toMatchObject({
      code: 1,
      err: "cairn: http://127.0.0.1:8000 needs an access token: pass --token or set CAIRN_TOKEN (`cairn serve` prints the token and saves it beside its data) (UNAUTHORIZED)",
    });
    expect(run(elsewhere, "get", "found", "--token", token).out).toBe("1");
    // A file from another server is named as the token that failed.
    mkdirSync(join(elsewhere, "cairn-data"));
    writeFileSync(join(elsewhere, "cairn-data", "token"), "not-this-servers-token\n");
    expect(run(elsewhere, "get", "found").err).toContain(
      "does not take the token in ./cairn-data/token: pass --token or set CAIRN_TOKEN",
    );
    server.kill("SIGTERM");
    expect((await once(server, "exit"))[0]).toBe(0);
  });

  it("reads no token file for another URL", async () => {
    const dir = join(tmpdir(), `cairn-cli-${randomUUID()}`);
    dirs.push(dir);
    mkdirSync(join(dir, "cairn-data"), { recursive: true });
    writeFileSync(join(dir, "cairn-data", "token"), "file-token-123456\n");
    const { child, lines } = await serve(
      ["--data", ":memory:", "--token", "file-token-123456"],
      {},
      1,
    );
    const url = /listening on (\S+)/.exec(lines[0]!)![1]!;
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith("CAIRN_")),
    );
    const result = spawnSync(process.execPath, [BIN, "get", "k", "--url", url], {
      cwd: dir,
      env,
      encoding: "utf8",
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      `${url} needs an access token: pass --token or set CAIRN_TOKEN`,
    );
    child.kill("SIGTERM");
    await once(child, "exit");
  });

  it("serves one port from several processes over one file, replaces a dead worker, stops them all", async () => {
    const dir = join(tmpdir(), `cairn-cli-${randomUUID()}`);
    dirs.push(dir);
    const { child, lines } = await serve(["--data", join(dir, "cairn.db"), "--workers", "3"]);
    expect(lines[0]).toContain("workers: 3");
    const url = /listening on (\S+)/.exec(lines[0]!)![1]!;
    const token = readFileSync(join(dir, "token"), "utf8").trim();
    const workers = () => childPids(child);
    const first = workers();
    expect(first).toHaveLength(2);

    // The primary serves too: three processes, two of them workers it started. Each client has
    // connections of its own, which the primary deals out to itself and the workers in turn: the
    // watch sees the writes made through every one of them.
    const clients = await Promise.all(
      Array.from({ length: 4 }, () => openKv(url, { accessToken: token })),
    );
    const seen: unknown[] = [];
    const watch = clients[0]!.watch(
      ["count"],
      (entries) => void seen.push(...entries.map((e) => e.value)),
      { emitInitial: false },
    );
    await watch.ready;
    for (let i = 1; i <= 8; i++) await clients[i % 4]!.set(["count", "n"], i);
    await until(() => seen.at(-1) === 8);
    watch.stop();
    // A commit the primary rejects comes back with its code and message, and changes nothing.
    await clients[3]!.set(["count", "text"], "text");
    for (const kv of clients) {
      await expect(
        kv
          .atomic()
          .mutate({ type: "sum", key: ["count", "text"], value: 1 })
          .commit(),
      ).rejects.toMatchObject({ code: "TYPE_MISMATCH", message: "unsupported value type" });
    }
    expect((await clients[0]!.get(["count", "text"])).value).toBe("text");

    // HTTP/2 with prior knowledge (Deno's KV client) too, on a connection each: every process sniffs.
    for (let i = 0; i < 3; i++) {
      const session = http2.connect(url);
      const status = await new Promise((resolve, reject) => {
        const req = session.request({ ":path": "/health" });
        req.on("response", (headers) => resolve(headers[":status"]));
        req.on("error", reject);
        req.end();
      });
      session.close();
      expect(status).toBe(200);
    }

    process.kill(first[0]!, "SIGKILL");
    await until(() => workers().length === 2 && !workers().includes(first[0]!));
    // The clients' kept-alive connections to the killed worker broke with it; reads go on.
    for (const kv of clients) expect((await kv.get(["count", "n"])).value).toBe(8);
    await Promise.all(clients.map((kv) => kv.close()));

    const serving = workers();
    child.kill("SIGINT");
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
    for (const pid of serving) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });

  it("serves TLS from every process with --workers", async () => {
    const dir = join(tmpdir(), `cairn-cli-${randomUUID()}`);
    dirs.push(dir);
    mkdirSync(dir, { recursive: true });
    const { key, cert } = selfSignedCert(dir);
    const { child, lines } = await serve(
      ["--data", join(dir, "cairn.db"), "--workers", "2", "--tls-cert", cert, "--tls-key", key],
      {},
      1,
    );
    const url = /listening on (\S+)/.exec(lines[0]!)![1]!;
    // A connection each, dealt out in turn: half of them go to the worker.
    for (let i = 0; i < 4; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        https
          .get(
            `${url}/health`,
            { ca: readFileSync(cert), servername: "localhost", agent: false },
            (res) => {
              res.resume();
              resolve(res.statusCode!);
            },
          )
          .on("error", reject);
      });
      expect(status).toBe(200);
    }
    child.kill("SIGTERM");
    expect((await once(child, "exit"))[0]).toBe(0);
  });

  it("stops a worker whose primary is gone", async () => {
    const dir = join(tmpdir(), `cairn-cli-${randomUUID()}`);
    dirs.push(dir);
    const { child } = await serve(["--data", join(dir, "cairn.db"), "--workers", "2"]);
    const [worker] = childPids(child);
    expect(worker).toBeGreaterThan(0);
    expect(running(worker!)).toBe(true);
    child.kill("SIGKILL");
    // Gone, or a zombie waiting for whoever inherited it to reap it.
    await until(() => !running(worker!));
  });

  it("gives every process of --workers the connection limits (--max-connections, timeouts)", async () => {
    const dir = join(tmpdir(), `cairn-cli-${randomUUID()}`);
    dirs.push(dir);
    const { child, lines } = await serve(
      [
        ...["--data", join(dir, "cairn.db"), "--workers", "2", "--no-auth"],
        ...["--max-connections", "1", "--handshake-timeout", "60s"],
      ],
      {},
      1,
    );
    const port = Number(/:(\d+) /.exec(lines[0]!)![1]);
    // Dealt out in turn to two processes: the third connection goes where the first is, over its
    // process's cap of one, whichever process that is.
    const sockets = [];
    for (let i = 0; i < 3; i++) {
      const socket = connect(port, "127.0.0.1");
      await once(socket, "connect");
      sockets.push(socket);
    }
    let answer = "";
    sockets[2]!.on("data", (chunk) => {
      answer += chunk;
    });
    await once(sockets[2]!, "close");
    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(answer).toContain('{"error":"Too many connections (max 1)","code":"UNAVAILABLE"}');
    for (const socket of sockets) socket.destroy();
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
  });

  it("needs a data file or a postgres:// URL for several workers", () => {
    const result = spawnSync(
      process.execPath,
      [BIN, "serve", "--port", "0", "--data", ":memory:", "--workers", "2", "--no-auth"],
      { encoding: "utf8" },
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("--workers needs a data file or a postgres:// URL");
    const zero = spawnSync(process.execPath, [BIN, "serve", "--workers", "0"], {
      encoding: "utf8",
    });
    expect(zero.status).toBe(1);
    expect(zero.stderr).toContain("workers is a whole number from 1 to 256, or auto");
  });

  it("commits on a writer thread with --writer-thread (CAIRN_WRITER_THREAD), on a data file only", async () => {
    const dir = join(tmpdir(), `cairn-cli-${randomUUID()}`);
    dirs.push(dir);
    const data = join(dir, "db.sqlite");
    const { child, lines } = await serve(
      ["--data", data, "--token", "writer-token-1234"],
      { CAIRN_WRITER_THREAD: "1" },
      1,
    );
    expect(lines[0]).toContain("writer thread");
    const kv = await openKv(/listening on (\S+)/.exec(lines[0]!)![1]!, {
      accessToken: "writer-token-1234",
    });
    await Promise.all(Array.from({ length: 50 }, (_, i) => kv.set(["w", i], i)));
    await expect(kv.atomic().sum(["w", 1], 1n).commit()).rejects.toMatchObject({
      code: "TYPE_MISMATCH",
    });
    await kv.close();
    child.kill("SIGINT");
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
    const local = await openKv(data);
    expect(await local.count(["w"])).toBe(50);
    expect((await local.get(["w", 1])).value).toBe(1);
    await local.close();

    const off = await serve(["--data", data, "--no-auth"], { CAIRN_WRITER_THREAD: "false" }, 1);
    expect(off.lines[0]).not.toContain("writer thread");
    off.child.kill("SIGINT");
    await once(off.child, "exit");

    for (const args of [
      ["--data", ":memory:", "--no-auth", "--writer-thread"],
      ["--data", join(dir, "w2.db"), "--no-auth", "--writer-thread", "--workers", "2"],
    ]) {
      const refused = spawnSync(process.execPath, [BIN, "serve", "--port", "0", ...args], {
        encoding: "utf8",
      });
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/writer thread needs a SQLite data file|do not go together/);
    }
  });

  it("rejects bad flags with a message and exit code 1", async () => {
    const child = spawn(process.execPath, [BIN, "serve", "--port", "99999"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (chunk) => {
      stderr += chunk;
    });
    const [code] = await once(child, "exit");
    expect(code).toBe(1);
    expect(stderr).toContain("a port is an integer 0–65535");
    // An empty variable is not port 0 (any free port)
    const empty = spawnSync(process.execPath, [BIN, "serve", "--no-auth"], {
      encoding: "utf8",
      env: { ...process.env, CAIRN_PORT: "" },
      timeout: 10_000,
    });
    expect(empty.status).toBe(1);
    expect(empty.stderr).toContain("a port is an integer 0–65535");
  });

  it("needs an explicit token with a postgres:// data URL", () => {
    const result = spawnSync(
      process.execPath,
      [BIN, "serve", "--port", "0", "--data", "postgres://cairn:secret@127.0.0.1:1/none"],
      { encoding: "utf8", env: { ...process.env, CAIRN_TOKEN: "" } },
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("With a postgres:// data URL, pass --token");
  });

  it.skipIf(!postgresAvailable)(
    "serves PostgreSQL without printing the URL's password",
    async () => {
      const schema = postgresSchema();
      const url = new URL(schema.url);
      url.password = "not-printed";
      try {
        const { child, lines } = await serve(["--data", url.toString(), "--token", "t0ken"], {}, 1);
        expect(lines[0]).toContain("data: postgres://postgres:***@");
        expect(lines.join("\n")).not.toContain("not-printed");
        const kv = await openKv(/listening on (\S+)/.exec(lines[0]!)![1]!, {
          accessToken: "t0ken",
        });
        await kv.set(["pg"], 1);
        expect((await kv.get(["pg"])).value).toBe(1);
        await kv.close();
        child.kill("SIGTERM");
        await once(child, "exit");
      } finally {
        await schema.drop();
      }
    },
  );
});
