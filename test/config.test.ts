import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { parseSettings, readSettings, settingKey } from "../src/cli/config-file.js";
import { fileOptions, serveOptions } from "../src/cli/serve-command.js";
import { KvError } from "../src/kv-error.js";

const BIN = join(__dirname, "..", "bin", "cairn.js");
const OPTIONS = fileOptions(serveOptions());
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** The settings in `text` as `{ name: value }`. */
const parse = (text: string, file = "/etc/cairn/cairn.jsonc") =>
  Object.fromEntries([...parseSettings(text, file, OPTIONS)].map(([name, s]) => [name, s.value]));

/** The problems `parseSettings` finds in `text`, a line each. */
function problems(text: string): string[] {
  try {
    parseSettings(text, "cairn.jsonc", OPTIONS);
  } catch (error) {
    expect(error).toBeInstanceOf(KvError);
    expect((error as KvError).code).toBe("INVALID_ARGUMENT");
    return (error as KvError).message.split("\n");
  }
  throw new Error("no problem found");
}

function tempDir(): string {
  const dir = join(tmpdir(), `cairn-config-${randomUUID()}`);
  mkdirSync(dir, { recursive: true });
  dirs.push(dir);
  return dir;
}

describe("parseSettings", () => {
  it("names every flag's setting by its camelCase name, the queue's and metrics' inside `queue` and `metrics`", () => {
    expect(OPTIONS.map(settingKey)).toEqual([
      "host",
      "port",
      "data",
      "token",
      "auth",
      "tlsCert",
      "tlsKey",
      "durability",
      "changeRetention",
      "sweep",
      "workers",
      "writerThread",
      "handshakeTimeout",
      "idleTimeout",
      "maxConnections",
      "queue.lockDuration",
      "flowwJwtSecret",
      "dynamodbTable",
      "metrics.public",
      "metrics.persistent",
      "metrics.flushInterval",
    ]);
  });

  it("takes every kind of setting as its flag takes it, paths from the file's folder", () => {
    const text = `
      // Every setting
      {
        "host": "0.0.0.0",
        "port": 8001,
        "data": "data/cairn.db", /* relative: beside this file */
        "token": "s3cret",
        "auth": true,
        "tlsCert": "/abs/cert.pem",
        "tlsKey": "key.pem",
        "durability": "relaxed",
        "changeRetention": "2h",
        "sweep": false,
        "workers": "auto",
        "writerThread": true,
        "handshakeTimeout": "5s",
        "idleTimeout": 70000,
        "maxConnections": "20",
        "queue": { "lockDuration": "1m" },
        "flowwJwtSecret": "floww",
        "dynamodbTable": ["users:email", "events:device:at=N"],
      }`;
    expect(parse(text)).toEqual({
      host: "0.0.0.0",
      port: 8001,
      data: "/etc/cairn/data/cairn.db",
      token: "s3cret",
      auth: true,
      tlsCert: "/abs/cert.pem",
      tlsKey: "/etc/cairn/key.pem",
      durability: "relaxed",
      changeRetention: 7_200_000,
      sweep: false,
      workers: expect.any(Number),
      writerThread: true,
      handshakeTimeout: 5000,
      idleTimeout: 70_000,
      maxConnections: 20,
      queueLockDuration: 60_000,
      flowwJwtSecret: "floww",
      dynamodbTable: [
        { name: "users", hash: { name: "email", type: "S" } },
        {
          name: "events",
          hash: { name: "device", type: "S" },
          range: { name: "at", type: "N" },
        },
      ],
    });
    expect(parse('{ "port": "0", "workers": 3, "changeRetention": 0 }')).toEqual({
      port: 0,
      workers: 3,
      changeRetention: 0,
    });
    expect(parse('{ "data": ":memory:" }').data).toBe(":memory:");
    expect(parse('{ "data": "postgres://u:p@db/cairn" }').data).toBe("postgres://u:p@db/cairn");
    expect(parse("{}")).toEqual({});
  });

  it("refuses unknown keys, suggesting the setting meant", () => {
    expect(problems('{\n  "prot": 8000\n}')).toEqual([
      'cairn.jsonc:2:3: "prot" is not a setting (did you mean "port"?)',
    ]);
    expect(
      problems('{ "max-connections": 1, "noAuth": true, "lockDuration": 1, "zzz": 1 }'),
    ).toEqual([
      'cairn.jsonc:1:3: "max-connections" is not a setting (did you mean "maxConnections"?)',
      'cairn.jsonc:1:25: "noAuth" is not a setting (did you mean "auth"?)',
      'cairn.jsonc:1:41: "lockDuration" is not a setting (did you mean "queue.lockDuration"?)',
      'cairn.jsonc:1:60: "zzz" is not a setting',
    ]);
    expect(problems('{ "queue": { "lease": 1 }, "config": "other.jsonc" }')).toEqual([
      'cairn.jsonc:1:14: "queue.lease" is not a setting',
      'cairn.jsonc:1:28: "config" is not a setting',
    ]);
  });

  it("refuses wrong types and values with the flag's own message", () => {
    expect(
      problems(`{
  "workers": "two",
  "port": 70000,
  "host": 1,
  "auth": "no",
  "durability": "fast",
  "handshakeTimeout": "soon",
  "maxConnections": true,
  "dynamodbTable": "users",
  "queue": 5
}`),
    ).toEqual([
      'cairn.jsonc:2:14: "workers": workers is a whole number from 1 to 256, or auto; got "two"',
      'cairn.jsonc:3:11: "port": a port is an integer 0–65535; got "70000"',
      'cairn.jsonc:4:11: "host" must be a string, got 1',
      'cairn.jsonc:5:11: "auth" must be true or false, got "no"',
      'cairn.jsonc:6:17: "durability" must be "full" or "relaxed", got "fast"',
      'cairn.jsonc:7:23: "handshakeTimeout": a timeout is milliseconds or e.g. "10s", above 0; got "soon"',
      'cairn.jsonc:8:21: "maxConnections" must be a number or a string, got true',
      'cairn.jsonc:9:20: "dynamodbTable" must be a list of strings, got "users"',
      'cairn.jsonc:10:12: "queue" must be an object, got 5',
    ]);
    expect(problems('{ "queue": { "lockDuration": "2h" }, "token": null }')).toEqual([
      'cairn.jsonc:1:30: "queue.lockDuration": a lease is milliseconds or e.g. "30s", from 1 ms to 1h; got "2h"',
      'cairn.jsonc:1:47: "token" must be a string, got null',
    ]);
    expect(problems('{ "port": 1, "port": 2 }')).toEqual([
      'cairn.jsonc:1:14: "port" is set twice (first at cairn.jsonc:1:3)',
    ]);
  });

  it("refuses the Buntime seed's keys that Cairn does not take, saying why", () => {
    expect(
      problems(`{
  "database": "sqlite",
  "metrics": { "persistent": true, "flushInterval": 30000 },
  "queue": { "cleanupInterval": 60000, "lockDuration": 30000 }
}`),
    ).toEqual([
      'cairn.jsonc:2:3: "database" is not a setting: Cairn picks the storage from "data": a SQLite file path, or a postgres:// URL for PostgreSQL',
      'cairn.jsonc:4:14: "queue.cleanupInterval" is not a setting: Cairn needs no cleanup pass: a message whose lease has run out is claimed again by the next claim, which takes expired leases as ready',
    ]);
  });

  it("takes the Buntime seed's metrics keys as the metrics flags", () => {
    expect(
      parse('{ "metrics": { "persistent": true, "flushInterval": "10s", "public": true } }'),
    ).toEqual({ metricsPersistent: true, metricsFlushInterval: 10_000, metricsPublic: true });
    expect(problems('{ "metrics": { "persistent": "yes" } }')).toEqual([
      expect.stringMatching(/^cairn\.jsonc:1:30: "metrics\.persistent" must be true or false/),
    ]);
  });

  it("reads comments and trailing commas, and places a syntax error", () => {
    expect(parse('/* a */ { "port": 1, // b\n "host": "h", }')).toEqual({ port: 1, host: "h" });
    expect(problems('{\n  "port": 8000\n  "host": "x"\n}')).toEqual([
      "cairn.jsonc:3:3: comma expected",
    ]);
    expect(problems('{ "port": 8000,\n\n   "host": }')).toEqual([
      "cairn.jsonc:3:12: value expected",
    ]);
    expect(problems("")).toEqual(["cairn.jsonc:1:1: value expected"]);
    expect(() => readSettings("/nonexistent/cairn.jsonc", OPTIONS)).toThrow(
      "/nonexistent/cairn.jsonc: cannot be read: there is no such file",
    );
    expect(problems("[1]")).toEqual([
      'cairn.jsonc: the settings must be a JSON object, e.g. { "port": 8000 }',
    ]);
  });

  it("answers any text and any JSON with settings or INVALID_ARGUMENT, nothing else", () => {
    const keys = [...OPTIONS.map(settingKey), "queue", "metrics", "database", "__proto__"];
    const json = fc.oneof(
      fc.json(),
      fc.dictionary(fc.constantFrom(...keys), fc.jsonValue()).map((d) => JSON.stringify(d)),
    );
    fc.assert(
      fc.property(fc.oneof(fc.string(), json), (text) => {
        try {
          parseSettings(text, "f.jsonc", OPTIONS);
        } catch (error) {
          expect(error).toBeInstanceOf(KvError);
          expect((error as KvError).code).toBe("INVALID_ARGUMENT");
        }
      }),
      { numRuns: 500 },
    );
  });
});

/** `cairn` run to its end with `args`, the environment without CAIRN_ variables plus `env`. */
function run(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("CAIRN_")),
  );
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...clean, ...env },
    encoding: "utf8",
  });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

/** Starts `cairn serve` with `args` alone (no `--port`) and resolves to its URL. */
async function serve(args: string[], env: Record<string, string> = {}): Promise<string> {
  const child = spawn(process.execPath, [BIN, "serve", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  let output = "";
  child.stdout!.on("data", (chunk) => {
    output += chunk;
  });
  while (!/listening on (\S+)/.test(output)) {
    await Promise.race([
      once(child.stdout!, "data"),
      once(child, "exit").then(() => Promise.reject(new Error(output))),
    ]);
  }
  return /listening on (\S+)/.exec(output)![1]!;
}

describe("cairn config check", () => {
  it("prints the settings cairn serve would run with, where each comes from, secrets masked", () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, "cairn.jsonc"),
      `{
  "port": 8001,
  "data": "postgres://cairn:pg-password@db:5432/cairn",
  "token": "file-token", // never printed
  "flowwJwtSecret": "floww-secret",
  "auth": false,
  "queue": { "lockDuration": "10s" },
  "dynamodbTable": ["users:email", "events:device:at=N"],
}`,
    );
    const { code, out } = run(
      ["config", "check", "cairn.jsonc"],
      { CAIRN_NO_AUTH: "0", CAIRN_IDLE_TIMEOUT: "2m" },
      dir,
    );
    expect(code).toBe(0);
    expect(out).not.toContain("file-token");
    expect(out).not.toContain("floww-secret");
    expect(out).not.toContain("pg-password");
    const rows = Object.fromEntries(
      out
        .trim()
        .split("\n")
        .slice(1)
        .map((line) => {
          const [key, value, source] = line.trim().split(/\s{2,}/);
          return [key, { value, source }];
        }),
    );
    expect(out.split("\n")[0]).toBe(
      "cairn.jsonc: valid; cairn serve --config cairn.jsonc runs with:",
    );
    expect(rows).toMatchObject({
      host: { value: '"127.0.0.1"', source: "default" },
      port: { value: "8001", source: "cairn.jsonc:2:11" },
      data: { value: '"postgres://cairn:***@db:5432/cairn"', source: "cairn.jsonc:3:11" },
      token: { value: '"***"', source: "cairn.jsonc:4:12" },
      flowwJwtSecret: { value: '"***"', source: "cairn.jsonc:5:21" },
      auth: { value: "true", source: "env CAIRN_NO_AUTH" },
      idleTimeout: { value: "120000", source: "env CAIRN_IDLE_TIMEOUT" },
      tlsCert: { value: "(none)", source: "default" },
      "queue.lockDuration": { value: "10000", source: "cairn.jsonc:7:30" },
      dynamodbTable: {
        value: '["users:email=S","events:device=S:at=N"]',
        source: "cairn.jsonc:8:20",
      },
      writerThread: { value: "false", source: "default" },
    });
    expect(Object.keys(rows)).toHaveLength(OPTIONS.length);
  });

  it("prints the file's problems and exits with 1", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "bad.jsonc"), '{\n  "prot": 8000,\n  "workers": 0\n}');
    expect(run(["config", "check", "bad.jsonc"], {}, dir)).toEqual({
      code: 1,
      out: "",
      err: 'bad.jsonc:2:3: "prot" is not a setting (did you mean "port"?)\nbad.jsonc:3:14: "workers": workers is a whole number from 1 to 256, or auto; got "0"\n',
    });
  });
});

describe("cairn serve --config", () => {
  it("serves with the file's port, data, token and queue lease; the environment, then flags, win over it", async () => {
    const dir = tempDir();
    const config = join(dir, "cairn.jsonc");
    writeFileSync(
      config,
      JSON.stringify({
        port: 0,
        data: "./data/cairn.db",
        token: "file-token",
        queue: { lockDuration: 300 },
      }),
    );
    const status = async (url: string, token: string) =>
      (await fetch(`${url}/api/keys/k`, { headers: { authorization: `Bearer ${token}` } })).status;

    const url = await serve(["--config", config]);
    expect(existsSync(join(dir, "data", "cairn.db"))).toBe(true);
    expect(await status(url, "file-token")).toBe(404);
    expect(await status(url, "other")).toBe(401);
    // The JSON API's queue routes lease for the file's 300 ms when the request names no lease.
    const call = async (method: string, path: string, body?: unknown) =>
      (
        await fetch(`${url}/api${path}`, {
          method,
          headers: { authorization: "Bearer file-token", "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        })
      ).json();
    await call("POST", "/queue/enqueue", { value: "job" });
    expect(await call("GET", "/queue/poll")).toMatchObject({ message: { attempts: 1 } });
    expect(await call("GET", "/queue/poll")).toEqual({ message: null });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await call("GET", "/queue/poll")).toMatchObject({
      message: { value: "job", attempts: 2 },
    });

    const fromEnv = await serve([], { CAIRN_CONFIG: config, CAIRN_TOKEN: "env-token" });
    expect(await status(fromEnv, "env-token")).toBe(404);
    expect(await status(fromEnv, "file-token")).toBe(401);

    const fromFlag = await serve(["--config", config, "--token", "flag-token"], {
      CAIRN_TOKEN: "env-token",
    });
    expect(await status(fromFlag, "flag-token")).toBe(404);
    expect(await status(fromFlag, "env-token")).toBe(401);
  });

  it("refuses to start on a file with problems", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "cairn.jsonc"), '{ "database": "sqlite" }');
    const { code, err } = run(["serve", "--config", "cairn.jsonc"], {}, dir);
    expect(code).toBe(1);
    expect(err).toContain('cairn.jsonc:1:3: "database" is not a setting');
  });
});
