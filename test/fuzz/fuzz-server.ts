/**
 * A real server for fuzzing over HTTP: requests sent as raw as Node allows, and the property
 * every answer must keep: a 2xx, or a 4xx carrying a stable error code (JSON `{ error, code }`,
 * or plain text for KV Connect); never a 5xx or a hang; and a refused request leaves the data
 * (entries, indexes, queue) as it was. After an accepted write the fixture is restored.
 */
import { Agent, request as httpRequest } from "node:http";
import { afterAll, beforeAll, expect } from "vitest";
import { type Kv, KvU64, openKv } from "../../src/index.js";
import { errorStatus } from "../../src/kv-error.js";
import { keyToJson } from "../../src/protocol/tagged-json.js";
import { type CairnServer, startServer } from "../../src/server/server.js";

export interface Sent {
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Uint8Array;
}

export interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
  /** A streamed answer (SSE, a KV Connect watch): only its head was read. */
  readonly streamed: boolean;
}

/** How long an answer (its head, for a stream) may take before it counts as a hang. */
const ANSWER_TIMEOUT_MS = 5000;

/**
 * A request target as Node sends it: characters Node refuses in a path (controls, space, beyond
 * Latin-1) percent-encoded as UTF-8, everything else (`%`, `..`, `//`, `?`) as given.
 */
export function rawTarget(text: string): string {
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    out +=
      code > 0x20 && code < 0x7f
        ? ch
        : [...Buffer.from(ch)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
  }
  return out;
}

const STREAMED = /text\/event-stream|application\/octet-stream/;

/** Sends `sent` to the server at `port`; rejects on no answer within 5 s. */
export function send(port: number, agent: Agent, sent: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body =
      sent.body === undefined
        ? undefined
        : typeof sent.body === "string"
          ? Buffer.from(sent.body)
          : Buffer.from(sent.body);
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port,
        agent,
        method: sent.method,
        path: sent.path,
        headers: {
          ...(body && { "content-length": String(body.length) }),
          ...sent.headers,
        },
      },
      (res) => {
        const contentType = String(res.headers["content-type"] ?? "");
        if (res.statusCode === 200 && STREAMED.test(contentType)) {
          clearTimeout(timer);
          res.destroy();
          req.destroy();
          resolve({ status: 200, contentType, text: "", streamed: true });
          return;
        }
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            contentType,
            text: Buffer.concat(chunks).toString("utf8"),
            streamed: false,
          });
        });
        res.on("error", reject);
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`No answer to ${sent.method} ${sent.path.slice(0, 200)} within 5 s`));
    }, ANSWER_TIMEOUT_MS);
    req.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(body);
  });
}

/**
 * Checks an answer: no 5xx; a 4xx carries a code from the table with that code's status (JSON
 * errors) or a non-empty plain-text message (KV Connect). Returns whether the request was refused.
 */
export function expectSafeAnswer(answer: Answer, errors: "json" | "text" = "json"): boolean {
  const shown = `${answer.status} ${answer.text.slice(0, 300)}`;
  expect(answer.status, shown).toBeGreaterThanOrEqual(200);
  expect(answer.status, shown).toBeLessThan(500);
  if (answer.status < 300) return false;
  expect(answer.status, shown).toBeGreaterThanOrEqual(400);
  if (errors === "text") {
    expect(answer.contentType, shown).toMatch(/^text\/plain/);
    expect(answer.text.length, shown).toBeGreaterThan(0);
    return true;
  }
  expect(answer.contentType, shown).toMatch(/^application\/json/);
  const body = JSON.parse(answer.text) as { error?: unknown; code?: unknown };
  expect(typeof body.error, shown).toBe("string");
  expect(Object.keys(errorStatus), shown).toContain(body.code);
  expect(errorStatus[body.code as keyof typeof errorStatus], shown).toBe(answer.status);
  return true;
}

/** What the fixture holds, and what a fuzzed request may reach. */
async function seed(kv: Kv): Promise<void> {
  await kv
    .atomic()
    .set(["users", 1], { name: "Ada", age: 36, tags: ["x", "y"], profile: { verified: true } })
    .set(["users", 2], { name: "Bob", age: 7, tags: [] })
    .set(["posts", "a"], { title: "hello world", body: "react hooks and typescript" })
    .set(["posts", "b"], { title: "node.js streams", body: "typescript" })
    .set(["n"], new KvU64(5n))
    .set(["big"], 42n)
    .set(["bytes"], new Uint8Array([1, 2, 3]))
    .set(["when"], new Date(0))
    .commit();
  await kv.createIndex(["posts"], { fields: ["title", "body"] });
}

export interface FuzzServer {
  readonly server: () => CairnServer;
  readonly kv: () => Kv;
  readonly token: string;
  /** Sends a request with the token (unless `headers` has an authorization). */
  send(sent: Sent): Promise<Answer>;
  /**
   * Sends `sent` and checks the answer and the data: refused or a read, the data is unchanged;
   * an accepted write restores the fixture. Returns the answer.
   */
  check(sent: Sent, options?: { errors?: "json" | "text" }): Promise<Answer>;
  /** The data as text: entries (keys and versionstamps), indexes, queue counts, dead letters. */
  snapshot(): Promise<string>;
}

/**
 * A server on port 0 over `:memory:` holding the fixture, for the tests of one file, with an SDK
 * `Kv` over it for snapshots. `write` requests are those whose acceptance may change the data.
 */
export function fuzzServer(
  token: string,
  isWrite: (sent: Sent) => boolean = (sent) => sent.method !== "GET",
): FuzzServer {
  let server: CairnServer;
  let kv: Kv;
  let baseline: string;
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });

  const snapshot = async () => {
    const entries: string[] = [];
    for await (const e of kv.list({ prefix: [] })) {
      entries.push(`${JSON.stringify(keyToJson(e.key))}@${e.versionstamp}`);
    }
    const indexes = (await kv.listIndexes()).map(
      (i) => JSON.stringify(keyToJson(i.prefix)) + i.fields,
    );
    const stats = await kv.queueStats();
    const dlq = (await kv.dlq.list({ limit: 1000 })).map((d) => d.id);
    return JSON.stringify({
      entries,
      indexes,
      messages: stats.pending + stats.processing + stats.dlq,
      dlq,
    });
  };

  const restore = async () => {
    const keys = [];
    for await (const e of kv.list({ prefix: [] })) keys.push(e.key);
    for (let i = 0; i < keys.length; i += 500) {
      const op = kv.atomic();
      for (const key of keys.slice(i, i + 500)) op.delete(key);
      await op.commit();
    }
    for (const index of await kv.listIndexes()) await kv.removeIndex(index.prefix);
    await seed(kv);
    baseline = await snapshot();
  };

  beforeAll(async () => {
    server = await startServer({ host: "127.0.0.1", port: 0, data: ":memory:", auth: true, token });
    kv = await openKv(server.url, { accessToken: token });
    await seed(kv);
    baseline = await snapshot();
  });
  afterAll(async () => {
    agent.destroy();
    await kv?.close();
    await server?.close();
  });

  const sendWithToken = (sent: Sent) =>
    send(server.port, agent, {
      ...sent,
      headers: { authorization: `Bearer ${token}`, ...sent.headers },
    });

  return {
    server: () => server,
    kv: () => kv,
    token,
    send: sendWithToken,
    snapshot,
    async check(sent, { errors = "json" } = {}) {
      const answer = await sendWithToken(sent);
      expectSafeAnswer(answer, errors);
      const refused = answer.status >= 300;
      if (refused || !isWrite(sent)) {
        expect(await snapshot(), `the data after ${sent.method} ${sent.path.slice(0, 200)}`).toBe(
          baseline,
        );
      } else await restore();
      return answer;
    },
  };
}
