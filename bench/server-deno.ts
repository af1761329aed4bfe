/**
 * The server a Deno user would write: Deno.serve over Deno KV, with the routes of the server
 * benchmark (point GET, point PUT, batch GET of keys `["k", i]`) behind the same bearer token as
 * Cairn. Each PUT is one `kv.set`, at Deno KV's default durability.
 * Run by bench/server-bench.js as
 * `deno run --unstable-kv -A bench/server-deno.ts <database file> <token>`; preloads first.
 */
// @ts-types="./workloads.d.ts"
import { type KvLike, PRELOAD_KEYS, setRows } from "./workloads.js";

interface ServerKv extends KvLike {
  getMany(keys: unknown[][]): Promise<unknown[]>;
  close(): void;
}

// Declared here rather than from Deno's types so that the Node type check (tsconfig.json) passes.
declare const Deno: {
  readonly args: string[];
  openKv(path: string): Promise<ServerKv>;
  serve(
    options: { hostname: string; port: number; onListen(address: { port: number }): void },
    handler: (request: Request) => Promise<Response>,
  ): { shutdown(): Promise<void> };
  addSignalListener(signal: "SIGTERM", listener: () => void): void;
  exit(code: number): never;
};

const [path, token] = Deno.args;
const AUTHORIZATION = `Bearer ${token}`;
const KEY_PATH = /^\/api\/keys\/k\/(\d+)$/;

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

const kv = await Deno.openKv(path!);
await setRows(kv, 0, PRELOAD_KEYS);

async function route(request: Request): Promise<Response> {
  const { pathname } = new URL(request.url);
  const match = KEY_PATH.exec(pathname);
  if (match && request.method === "GET") {
    const entry = await kv.get(["k", Number(match[1])]);
    return entry.versionstamp === null ? json({ error: "Key not found" }, 404) : json(entry);
  }
  if (match && request.method === "PUT") {
    return json(await kv.set(["k", Number(match[1])], await request.json()));
  }
  if (pathname === "/api/keys/batch" && request.method === "POST") {
    const { keys } = (await request.json()) as { keys: unknown[][] };
    return json(await kv.getMany(keys));
  }
  return json({ error: "No such route" }, 404);
}

const server = Deno.serve(
  {
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
  },
  (request) =>
    request.headers.get("authorization") === AUTHORIZATION
      ? route(request)
      : Promise.resolve(json({ error: "Invalid access token" }, 401)),
);

Deno.addSignalListener("SIGTERM", async () => {
  await server.shutdown();
  kv.close();
  Deno.exit(0);
});
