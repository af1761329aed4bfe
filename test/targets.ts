/**
 * Every target the conformance suite runs against. A target opens a fresh, empty database and
 * disposes of it afterwards. Later targets (PostgreSQL, remote) are added here, and every
 * conformance test runs against them unchanged.
 */
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe } from "vitest";
import { type Kv, openKv } from "../src/index.js";
import { type CairnServer, startServer } from "../src/server/server.js";

export interface Target {
  readonly name: string;
  open(): Promise<{ kv: Kv; dispose(): Promise<void> }>;
}

export const targets: Target[] = [
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
    async open() {
      const dir = join(tmpdir(), `cairn-test-${randomUUID()}`);
      const token = randomUUID();
      const server = await startServer({
        host: "127.0.0.1",
        port: 0,
        data: join(dir, "test.db"),
        auth: true,
        token,
      });
      const kv = await openKv(server.url, { accessToken: token });
      return {
        kv,
        async dispose() {
          await server.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

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
