/**
 * Every target the conformance suite runs against. A target opens a fresh, empty database and
 * disposes of it afterwards. Later targets (PostgreSQL, remote) are added here, and every
 * conformance test runs against them unchanged.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, afterEach, beforeAll, beforeEach, describe } from "vitest";
import { type Kv, KvError, openKv } from "../src/index.js";
import { type Grant, grantsToJson, Permissions } from "../src/kv/grants.js";
import { Kv as CoreKv } from "../src/kv/kv.js";
import { type SseEvent, SseParser } from "../src/protocol/sse.js";
import { openDatabase, Kv as SdkKv } from "../src/sdk/kv.js";
import { permitted } from "../src/server/permissions.js";
import { type CairnServer, type ServerOptions, startServer } from "../src/server/server.js";

/** Options for a test's database: given to `openKv`, or to the server a remote target starts. */
export interface TargetOptions {
  readonly sweep?: boolean;
}

/** A principal's view of an opened target's database: a `Kv` limited to `grants`. */
export type As = (grants: readonly Grant[]) => Promise<Kv>;

export interface Opened {
  /** The database with every right (the admin's). */
  readonly kv: Kv;
  /** The same database as a new principal with `grants`. */
  readonly as: As;
  /** Closes the principals' Kvs, then `kv`, and removes the data. */
  dispose(): Promise<void>;
}

export interface Target {
  readonly name: string;
  open(options?: TargetOptions): Promise<Opened>;
}

/** The PostgreSQL the postgres targets use: CAIRN_TEST_POSTGRES, else the local one (trust auth). */
export const POSTGRES_URL =
  process.env.CAIRN_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";

/** Whether that PostgreSQL accepts connections; its targets are skipped with a reason otherwise. */
async function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 5432) });
    socket.setTimeout(2000);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}

export const postgresAvailable = await reachable(POSTGRES_URL);

/** Why the tests that need PostgreSQL are skipped; `undefined` when it is reachable. */
export const postgresSkip = postgresAvailable
  ? undefined
  : `PostgreSQL at ${POSTGRES_URL} is unreachable`;
if (postgresSkip) {
  // In CI, or when a PostgreSQL was named, its tests must run: an unreachable one fails the run.
  if (process.env.CI === "true" || process.env.CAIRN_TEST_POSTGRES !== undefined) {
    throw new Error(
      `${postgresSkip}, and the tests need it (CI=true or CAIRN_TEST_POSTGRES is set): start it, or unset both to skip its tests`,
    );
  }
  console.warn(`cairn tests: ${postgresSkip}: its tests are skipped, named as such`);
}

/**
 * Declares `body` once per item as `title [name]`. An item that needs PostgreSQL while it is
 * unreachable is declared skipped, with the reason in its name, so the summary counts it.
 */
export function describeEach<T extends { readonly name: string; readonly postgres?: boolean }>(
  items: readonly T[],
  title: string,
  body: (item: T) => void,
): void {
  for (const item of items) {
    if (item.postgres && postgresSkip) {
      describe.skip(`${title} [${item.name}] (skipped: ${postgresSkip})`, () => body(item));
    } else describe(`${title} [${item.name}]`, () => body(item));
  }
}

/** A fresh schema on the test PostgreSQL, and how to drop it. */
export function postgresSchema(): { url: string; drop(): Promise<void> } {
  const schema = `t_${randomUUID().replaceAll("-", "")}`;
  const url = `${POSTGRES_URL}${POSTGRES_URL.includes("?") ? "&" : "?"}schema=${schema}`;
  return {
    url,
    /** Drops the schema, and those of the named databases a server made beside it (`<schema>_<name>`). */
    async drop() {
      const sql = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
      try {
        const schemas = await sql<{ name: string }[]>`
          SELECT nspname AS name FROM pg_namespace
          WHERE nspname = ${schema} OR starts_with(nspname, ${`${schema}_`})`;
        for (const { name } of schemas) await sql`DROP SCHEMA ${sql(name)} CASCADE`;
      } finally {
        await sql.end();
      }
    },
  };
}

/**
 * A database in this process at `location`, and principals over it wrapped as the server wraps a
 * request's database (`permitted`), so that they meet the same permission layer without HTTP.
 */
function local(location: string, drop: () => Promise<void>, options?: TargetOptions): Opened {
  const database = openDatabase(location, options);
  const kv = new SdkKv(database);
  const restricted: Kv[] = [];
  return {
    kv,
    async as(grants) {
      const principal = {
        name: `principal-${restricted.length}`,
        permissionsIn: (name: string | null) => Permissions.of(grants, name),
        deriveToken: (): never => {
          throw new Error("a test principal derives no tokens");
        },
      };
      const restrictedKv = new CoreKv(permitted(database, principal, null));
      restricted.push(restrictedKv);
      return restrictedKv;
    },
    async dispose() {
      // A request's database cannot be closed (FORBIDDEN); the Kv's watches and consumers stop all the same.
      for (const r of restricted) await r.close().catch(refusedClose);
      await kv.close();
      await drop();
    },
  };
}

const refusedClose = (e: unknown) => {
  if (!(e instanceof KvError && e.code === "FORBIDDEN")) throw e;
};

const targets: (Target & { postgres?: true })[] = [
  {
    name: "sqlite-file",
    async open(options) {
      const dir = join(tmpdir(), `cairn-test-${randomUUID()}`);
      return local(join(dir, "test.db"), () => rm(dir, { recursive: true, force: true }), options);
    },
  },
  {
    name: "sqlite-memory",
    async open(options) {
      return local(":memory:", async () => {}, options);
    },
  },
  {
    name: "remote-sqlite",
    open(options) {
      const dir = join(tmpdir(), `cairn-test-${randomUUID()}`);
      return served(join(dir, "test.db"), () => rm(dir, { recursive: true, force: true }), options);
    },
  },
  {
    name: "remote-sqlite-writer-thread",
    open(options) {
      const dir = join(tmpdir(), `cairn-test-${randomUUID()}`);
      return served(join(dir, "test.db"), () => rm(dir, { recursive: true, force: true }), {
        ...options,
        writerThread: true,
      });
    },
  },
  {
    name: "postgres",
    postgres: true,
    async open(options) {
      const schema = postgresSchema();
      return local(schema.url, () => schema.drop(), options);
    },
  },
  {
    name: "remote-postgres",
    postgres: true,
    open(options) {
      const schema = postgresSchema();
      return served(schema.url, () => schema.drop(), options);
    },
  },
];

/**
 * A remote Kv on a server on port 0 over `data`, and principals with tokens made through the admin
 * API; `drop` removes the data after the server stops.
 */
async function served(
  data: string,
  drop: () => Promise<void>,
  options: Partial<ServerOptions> = {},
): Promise<Opened> {
  const token = randomUUID();
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    data,
    auth: true,
    token,
    ...options,
  });
  const kv = await openKv(server.url, { accessToken: token });
  const restricted: Kv[] = [];
  return {
    kv,
    async as(grants) {
      const response = await fetch(`${server.url}/admin/tokens`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({
          name: `principal-${restricted.length}`,
          grants: grantsToJson(grants),
        }),
      });
      if (response.status !== 201)
        throw new Error(`POST /admin/tokens answered ${response.status}: ${await response.text()}`);
      const { token: accessToken } = (await response.json()) as { token: string };
      const restrictedKv = await openKv(server.url, { accessToken });
      restricted.push(restrictedKv);
      return restrictedKv;
    },
    async dispose() {
      for (const r of restricted) await r.close();
      await kv.close();
      await server.close();
      await drop();
    },
  };
}

/**
 * Declares `body`'s tests once per target. `kv()` is a fresh database for each test, opened with
 * `options`, closed and disposed of after it; `as(grants)` is that database as a new principal
 * with `grants` (over HTTP, a token made through the admin API), closed after the test too.
 */
export function conformance(
  title: string,
  body: (kv: () => Kv, as: As) => void,
  options: TargetOptions = {},
): void {
  describeEach(targets, title, (target) => {
    let current: Opened;
    beforeEach(async () => {
      current = await target.open(options);
    });
    afterEach(async () => {
      await current.dispose();
    });
    body(
      () => current.kv,
      (grants) => current.as(grants),
    );
  });
}

/** Collects an async iterable. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Storage a face's tests run on; `open` makes a fresh, empty one. */
export interface Storage {
  readonly name: string;
  readonly postgres?: boolean;
  open(): Promise<{ data: string; drop(): Promise<void> }>;
}

/** A SQLite file and PostgreSQL: what every face's tests run on (see `describeEach`). */
export const storages: Storage[] = [
  {
    name: "sqlite",
    async open() {
      const dir = join(tmpdir(), `cairn-test-${randomUUID()}`);
      return { data: join(dir, "test.db"), drop: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: "postgres",
    postgres: true,
    async open() {
      const schema = postgresSchema();
      return { data: schema.url, drop: () => schema.drop() };
    },
  },
];

const memory: Storage = {
  name: "memory",
  open: async () => ({ data: ":memory:", drop: async () => {} }),
};

/**
 * A server on port 0 over `storage` (default `:memory:`) for the tests of one file, requiring
 * `token`, with any other `options`.
 */
export function serverForTests(
  token: string,
  storage: Storage = memory,
  options: Partial<ServerOptions> = {},
): () => CairnServer {
  let server: CairnServer;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const opened = await storage.open();
    drop = opened.drop;
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      data: opened.data,
      auth: true,
      token,
      ...options,
    });
  });
  afterAll(async () => {
    await server.close();
    await drop();
  });
  return () => server;
}

/** A body a test sends as is, not as JSON. */
export class RawBody {
  constructor(readonly text: string) {}
}

/**
 * `serverForTests` (over `storage`) with a client for the JSON API: `base()` is the seed's base URL on it
 * (`/keyval/api`), and `call(method, path, body?, root = base())` sends `body` as JSON (a `RawBody`
 * as is) with the token and resolves with the status and the parsed JSON answer.
 */
export function jsonApiForTests(token: string, storage?: Storage) {
  const server = serverForTests(token, storage);
  const base = () => `${server().url}/keyval/api`;
  const call = async (method: string, path: string, body?: unknown, root = base()) => {
    const response = await fetch(`${root}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body:
        body === undefined ? undefined : body instanceof RawBody ? body.text : JSON.stringify(body),
    });
    // biome-ignore lint/suspicious/noExplicitAny: assertions navigate arbitrary response JSON
    return { status: response.status, json: (await response.json()) as any };
  };
  return { server, base, call };
}

/** Writes a self-signed certificate for `localhost` (one day) into `dir`; its PEM file paths. */
export function selfSignedCert(dir: string): { key: string; cert: string } {
  const [key, cert] = [join(dir, "key.pem"), join(dir, "cert.pem")];
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"],
      ...["-keyout", key, "-out", cert],
    ],
    { stdio: "ignore" },
  );
  return { key, cert };
}

/** Resolves once `predicate()` holds, checking every 10 ms; fails after `timeoutMs`. */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** Starts `node args`; resolves once a line of its stdout matches `ready`, with that line. */
export function startNode(
  args: string[],
  ready: RegExp,
): Promise<{ child: ChildProcess; line: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk;
      const line = output.split("\n").find((l) => ready.test(l));
      if (line) resolve({ child, line });
    });
    child.on("error", reject);
    child.on("exit", (code, signal) =>
      reject(new Error(`exited early (${code ?? signal}): ${output}`)),
    );
  });
}

/** Kills `child` with SIGKILL; resolves once it is gone. */
export function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.removeAllListeners("exit");
    child.on("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

/** The child processes of `parent` (a `--workers` primary's workers), with their command lines. */
export const childrenOf = (parent: number): { pid: number; args: string }[] =>
  spawnSync("ps", ["-o", "pid=,args=", "--ppid", String(parent)], { encoding: "utf8" })
    .stdout.split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [, pid, args] = /^\s*(\d+)\s+(.*)$/.exec(line)!;
      return { pid: Number(pid), args: args! };
    });

/** Whether process `pid` runs (a zombie waiting to be reaped does not). */
export const running = (pid: number): boolean => {
  const state = spawnSync("ps", ["-o", "stat=", "-p", String(pid)], { encoding: "utf8" }).stdout;
  return state.trim() !== "" && !state.trim().startsWith("Z");
};

/** The error `call` rejects or throws with; fails when it does neither. */
export async function errorOf(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to fail");
}

/**
 * An SSE stream at `url`, read as it arrives: `events` fills with each event; `close()`
 * disconnects.
 */
export async function sseStream(url: string, headers: Record<string, string>) {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  const events: SseEvent[] = [];
  const parser = new SseParser();
  const decoder = new TextDecoder();
  void (async () => {
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        events.push(...parser.push(decoder.decode(chunk, { stream: true })));
      }
    } catch {
      // closed by the test
    }
  })();
  return {
    status: response.status,
    type: response.headers.get("content-type"),
    events,
    close: () => controller.abort(),
  };
}

/** `text` parsed as JSON; `undefined` when it is empty or not JSON. */
export function jsonOf(text: string): unknown {
  try {
    return text === "" ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}
