/**
 * Every target the conformance suite runs against. A target opens a fresh, empty database and
 * disposes of it afterwards. Later targets (PostgreSQL, remote) are added here, and every
 * conformance test runs against them unchanged.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe } from "vitest";
import { PostgresBackend } from "../src/backends/postgres/postgres-backend.js";
import { type Kv, openKv } from "../src/index.js";
import { type CairnServer, type ServerOptions, startServer } from "../src/server/server.js";

export interface Target {
  readonly name: string;
  open(): Promise<{ kv: Kv; dispose(): Promise<void> }>;
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
if (!postgresAvailable) {
  console.warn(
    `cairn tests: PostgreSQL at ${POSTGRES_URL} is unreachable: skipping the postgres and remote-postgres targets (set CAIRN_TEST_POSTGRES to run them)`,
  );
}

/** A fresh schema on the test PostgreSQL, and how to drop it. */
export function postgresSchema(): { url: string; drop(): Promise<void> } {
  const schema = `t_${randomUUID().replaceAll("-", "")}`;
  const url = `${POSTGRES_URL}${POSTGRES_URL.includes("?") ? "&" : "?"}schema=${schema}`;
  return {
    url,
    async drop() {
      const backend = new PostgresBackend(url, { maxConnections: 1 });
      try {
        await backend.dropSchema();
      } finally {
        await backend.close();
      }
    },
  };
}

const allTargets: (Target & { postgres?: true })[] = [
  {
    name: "sqlite-file",
    async open() {
      const dir = join(tmpdir(), `cairn-test-${randomUUID()}`);
      const kv = await openKv(join(dir, "test.db"));
      return { kv, dispose: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: "sqlite-memory",
    async open() {
      return { kv: await openKv(":memory:"), dispose: async () => {} };
    },
  },
  {
    name: "remote-sqlite",
    open() {
      const dir = join(tmpdir(), `cairn-test-${randomUUID()}`);
      return served(join(dir, "test.db"), () => rm(dir, { recursive: true, force: true }));
    },
  },
  {
    name: "remote-sqlite-writer-thread",
    open() {
      const dir = join(tmpdir(), `cairn-test-${randomUUID()}`);
      return served(join(dir, "test.db"), () => rm(dir, { recursive: true, force: true }), {
        writerThread: true,
      });
    },
  },
  {
    name: "postgres",
    postgres: true,
    async open() {
      const schema = postgresSchema();
      const kv = await openKv(schema.url);
      return { kv, dispose: () => schema.drop() };
    },
  },
  {
    name: "remote-postgres",
    postgres: true,
    open() {
      const schema = postgresSchema();
      return served(schema.url, () => schema.drop());
    },
  },
];

/** A remote Kv on a server on port 0 over `data`; `drop` removes the data after the server stops. */
async function served(
  data: string,
  drop: () => Promise<void>,
  options: Partial<ServerOptions> = {},
) {
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
  return {
    kv,
    async dispose() {
      await server.close();
      await drop();
    },
  };
}

export const targets: Target[] = allTargets.filter((t) => postgresAvailable || !t.postgres);

/**
 * Declares `body`'s tests once per target. `kv()` is a fresh database for each test, closed and
 * disposed of after it.
 */
export function conformance(title: string, body: (kv: () => Kv) => void): void {
  describe.each(targets)(`${title} [$name]`, (target) => {
    let current: { kv: Kv; dispose(): Promise<void> };
    beforeEach(async () => {
      current = await target.open();
    });
    afterEach(async () => {
      await current.kv.close();
      await current.dispose();
    });
    body(() => current.kv);
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

/** A server on port 0 over `:memory:` for the tests of one file, requiring `token`. */
export function serverForTests(token: string): () => CairnServer {
  let server: CairnServer;
  beforeAll(async () => {
    server = await startServer({ host: "127.0.0.1", port: 0, data: ":memory:", auth: true, token });
  });
  afterAll(() => server.close());
  return () => server;
}

/** A body a test sends as is, not as JSON. */
export class RawBody {
  constructor(readonly text: string) {}
}

/**
 * `serverForTests` with a client for the JSON API: `base()` is the seed's base URL on it
 * (`/keyval/api`), and `call(method, path, body?, root = base())` sends `body` as JSON (a `RawBody`
 * as is) with the token and resolves with the status and the parsed JSON answer.
 */
export function jsonApiForTests(token: string) {
  const server = serverForTests(token);
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
