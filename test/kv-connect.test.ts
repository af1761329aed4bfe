/**
 * Deno KV Connect against a real server: Deno itself (HTTP/2 cleartext), `@deno/kv` in Node
 * (HTTP/1.1), values across clients, and the wire's error statuses and texts; on a SQLite file and
 * on PostgreSQL.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { request } from "node:http";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import v8 from "node:v8";
import { KvU64 as DenoKvU64, openKv as openDenoKv } from "@deno/kv";
import postgres from "postgres";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvError, KvU64, KvV8Value, openKv } from "../src/index.js";
import { type CairnServer, startServer } from "../src/server/server.js";
import { decodeV8, encodeV8 } from "./deno-kv-codec.js";
import { describeEach, POSTGRES_URL, serverForTests, storages } from "./targets.js";

const TOKEN = "kv-connect-token-123";
const DENO = join(__dirname, "..", "node_modules", ".bin", "deno");

/** Runs `fixture` with Deno against `url` (and `args`) and parses the JSON line it prints. */
async function runDeno(fixture: string, url: string, ...args: string[]): Promise<unknown> {
  const { stdout } = await promisify(execFile)(
    DENO,
    ["run", "--unstable-kv", "-A", join(__dirname, "fixtures", fixture), url, ...args],
    {
      env: { ...process.env, DENO_KV_ACCESS_TOKEN: TOKEN, DENO_NO_UPDATE_CHECK: "1" },
      timeout: 60_000,
    },
  );
  return JSON.parse(stdout);
}

const proto = protobuf.loadSync(join(__dirname, "..", "proto", "kv-connect.proto"));
const AtomicWrite = proto.lookupType("com.deno.kv.datapath.AtomicWrite");
const atomicWrite = (message: Record<string, unknown>) =>
  Buffer.from(AtomicWrite.encode(AtomicWrite.fromObject(message)).finish());
const Watch = proto.lookupType("com.deno.kv.datapath.Watch");
const WatchOutput = proto.lookupType("com.deno.kv.datapath.WatchOutput");
const watchRequest = (keys: number[][]) =>
  Buffer.from(Watch.encode(Watch.fromObject({ keys: keys.map((key) => ({ key })) })).finish());

describeEach(storages, "KV Connect", (storage) => {
  const server = serverForTests(TOKEN, storage);
  const denoKv = () => openDenoKv(server().url, { accessToken: TOKEN, encodeV8, decodeV8 });

  describe("Deno (HTTP/2 cleartext)", () => {
    it("reads, writes, lists, checks, sums and expires through Deno.openKv", async () => {
      expect(await runDeno("deno-kv-connect.ts", server().url)).toEqual({
        set: true,
        get: { name: "Alice", at: true, versionstamp: true },
        getMany: ["2", "null"],
        list: [3, 2],
        checkFails: false,
        sum: "1",
        sumError: true,
        v8Sums: [3.5, "15"],
        v8SumErrors: [
          expect.stringContaining("(status=400 Bad Request): Cannot sum BigInt with Number"),
          expect.stringContaining("(status=400 Bad Request): unsupported value type"),
        ],
        versionstampedKey: [true],
        expired: null,
        deleted: null,
      });
      // What Deno wrote, Cairn's SDK reads with the same types.
      const kv = await openKv(server().url, { accessToken: TOKEN });
      expect((await kv.get(["users", 1])).value).toEqual({ name: "Alice", at: new Date(0) });
      expect((await kv.get(["users", 2])).value).toBe(2n);
      expect((await kv.get(["n"])).value).toEqual(new KvU64(1n));
      await kv.close();
    });
  });

  describe("V8 values Node cannot decode (Deno's host objects)", () => {
    const jsonApi = (path: string, init: RequestInit = {}) =>
      fetch(`${server().url}/api/keys/${path}`, {
        ...init,
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      });

    it("stores Deno's Blob, File, DOMException and CryptoKey as they came, and gives them back to Deno", async () => {
      expect(await runDeno("deno-kv-host-objects.ts", server().url, "write")).toEqual({
        blob: [true, "hi", "text/plain"],
        file: [true, "a.txt", "file body"],
        error: { name: "NotFoundError", message: "gone" },
        key: [true, "HMAC", true],
        nested: ["x", 1],
        listed: ["blob", "error", "file", "key", "nested"],
      });

      // Cairn's SDK gets the bytes, wrapped; a list does not fail on them.
      const kv = await openKv(server().url, { accessToken: TOKEN });
      const listed: unknown[] = [];
      for await (const e of kv.list({ prefix: ["host"] })) listed.push(e.value);
      expect(listed.every((v) => v instanceof KvV8Value)).toBe(true);
      const error = (await kv.get<KvV8Value>(["host", "error"])).value!;
      expect(error).toBeInstanceOf(KvV8Value);
      expect([...error.bytes.subarray(0, 3)]).toEqual([0xff, 0x10, 0x5c]); // format 16, host object
      // Written back, it is the same bytes: Deno reads the DOMException it wrote.
      await kv.set(["host", "sdk-copy"], error);
      expect((await kv.get(["host", "sdk-copy"])).value).toEqual(error);

      // The JSON API shows the bytes tagged, and takes them back.
      const got = await jsonApi("host/error");
      expect(got.status).toBe(200);
      const { value } = (await got.json()) as { value: unknown };
      expect(value).toEqual({ __type: "v8", value: Buffer.from(error.bytes).toString("base64") });
      const put = await jsonApi("host/json-copy", { method: "PUT", body: JSON.stringify(value) });
      expect(put.status).toBe(200);
      expect(await runDeno("deno-kv-host-objects.ts", server().url, "read")).toEqual({
        "sdk-copy": { name: "NotFoundError", message: "gone" },
        "json-copy": { name: "NotFoundError", message: "gone" },
      });

      // Not JSON: where filters do not match it, and mutations that combine values refuse it.
      expect(await kv.count(["host"], { where: { n: 1 } })).toBe(0);
      const sum = kv.atomic().sum(["host", "error"], 1).commit();
      await expect(sum).rejects.toBeInstanceOf(KvError);
      await expect(sum).rejects.toMatchObject({ code: "TYPE_MISMATCH" });
      await kv.close();
    });

    it("stores the Node host objects of @deno/kv's default codec, which it reads back", async () => {
      // Node's DefaultSerializer writes a nested typed array as a host object (reference §0).
      const deno = await openDenoKv(server().url, { accessToken: TOKEN });
      const value = { samples: new Int16Array([1, -2]) };
      await deno.set(["node-host"], value);
      expect((await deno.get(["node-host"])).value).toStrictEqual(value);
      deno.close();
      const kv = await openKv(server().url, { accessToken: TOKEN });
      expect((await kv.get(["node-host"])).value).toEqual(
        new KvV8Value(new Uint8Array(v8.serialize(value))),
      );
      await kv.close();
      const json = (await (await jsonApi("node-host")).json()) as { value: unknown };
      expect(json.value).toEqual({ __type: "v8", value: v8.serialize(value).toString("base64") });
    });
  });

  describe("watch and queues", () => {
    it("streams Deno's watch: every key first, then writes, deletion and expiry", async () => {
      expect(await runDeno("deno-kv-watch.ts", server().url)).toEqual([
        [
          [null, false],
          [null, false],
        ],
        [
          [1, true],
          [null, false],
        ],
        [
          [1, true],
          ["soon gone", true],
        ],
        [
          [1, true],
          [null, false],
        ],
        [
          [null, false],
          [null, false],
        ],
      ]);
    });

    it("streams @deno/kv's watch, and reconnecting clients get a full first frame again", async () => {
      const kv = await denoKv();
      await kv.set(["nw", "x"], "first");
      for (let connection = 0; connection < 2; connection++) {
        const reader = kv
          .watch([
            ["nw", "x"],
            ["nw", "missing"],
          ])
          .getReader();
        const first = (await reader.read()).value!;
        expect(first.map((e) => e.value)).toEqual([connection === 0 ? "first" : "second", null]);
        if (connection === 0) {
          await kv.set(["nw", "x"], "second");
          expect((await reader.read()).value!.map((e) => e.value)).toEqual(["second", null]);
        }
        await reader.cancel();
      }
      kv.close();
    });

    it("delivers what @deno/kv enqueues to Cairn's listenQueue, and drops it with a failed check", async () => {
      const deno = await denoKv();
      const cairn = await openKv(server().url, { accessToken: TOKEN });
      const before = await cairn.queueStats();
      const stale = await deno.get(["queue-check"]);
      await deno.set(["queue-check"], 1);
      expect((await deno.atomic().check(stale).enqueue("dropped").commit()).ok).toBe(false);
      expect(await cairn.queueStats()).toEqual(before);
      await deno.enqueue({ job: 7, at: new Date(3) }, { keysIfUndelivered: [["undelivered"]] });
      const received = await new Promise<unknown>((resolve) => {
        const listener = cairn.listenQueue((message) => {
          resolve(message.value);
          void listener.stop();
        });
      });
      expect(received).toEqual({ job: 7, at: new Date(3) });
      deno.close();
      await cairn.close();
    });
  });

  describe("@deno/kv (HTTP/1.1)", () => {
    it("round-trips values with Cairn's SDK in both directions", async () => {
      const deno = await denoKv();
      const cairn = await openKv(server().url, { accessToken: TOKEN });
      const values: unknown[] = [
        { a: [1, "x"] },
        "text",
        1.5,
        -0,
        10n,
        new Date(5),
        new Map([[1, 2]]),
        new Set([3]),
        null,
      ];
      for (const [i, value] of values.entries()) {
        await deno.set(["from-deno", i], value);
        await cairn.set(["from-cairn", i], value);
      }
      await deno.set(["from-deno", "bytes"], new Uint8Array([1, 2]));
      await deno.set(["from-deno", "u64"], new DenoKvU64(7n));
      for (const [i, value] of values.entries()) {
        expect((await cairn.get(["from-deno", i])).value).toStrictEqual(value);
        expect((await deno.get(["from-cairn", i])).value).toStrictEqual(value);
      }
      expect((await cairn.get(["from-deno", "bytes"])).value).toEqual(new Uint8Array([1, 2]));
      // …and the JSON API serves what @deno/kv wrote, tagged.
      const json = await fetch(`${server().url}/api/keys/from-deno/4`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(((await json.json()) as { value: unknown }).value).toEqual({
        __type: "bigint",
        value: "10",
      });
      expect((await cairn.get(["from-deno", "u64"])).value).toEqual(new KvU64(7n));
      deno.close();
      await cairn.close();
    });

    it("lists with cursors, checks versionstamps and reports type errors with Deno's text", async () => {
      const kv = await denoKv();
      for (let i = 0; i < 5; i++) await kv.set(["page", i], i);
      const first = kv.list<number>({ prefix: ["page"] }, { limit: 2 });
      const firstPage: number[] = [];
      for await (const e of first) firstPage.push(e.value);
      const rest: number[] = [];
      for await (const e of kv.list<number>({ prefix: ["page"] }, { cursor: first.cursor }))
        rest.push(e.value);
      expect([firstPage, rest]).toEqual([
        [0, 1],
        [2, 3, 4],
      ]);
      const entry = await kv.get(["page", 0]);
      expect((await kv.atomic().check(entry).set(["page", 0], "new").commit()).ok).toBe(true);
      expect((await kv.atomic().check(entry).set(["page", 0], "stale").commit()).ok).toBe(false);
      await expect(kv.atomic().max(["page", 1], 5n).commit()).rejects.toThrow(
        "Failed to perform 'max' mutation on a non-U64 value in the database",
      );
      // V8 sums: @deno/kv sends a number or bigint operand as V8 (and never sends bounds).
      const v8Sum = (key: unknown[], value: number | bigint) =>
        kv
          .atomic()
          .mutate({ type: "sum", key, value } as never)
          .commit();
      await v8Sum(["node-sum"], 1.5);
      await v8Sum(["node-sum"], 2);
      expect((await kv.get(["node-sum"])).value).toBe(3.5);
      await expect(v8Sum(["node-sum"], 1n)).rejects.toThrow("400 Cannot sum Number with BigInt");
      expect((await kv.get(["node-sum"])).value).toBe(3.5);
      kv.close();
    });
  });

  describe("KV Connect wire", () => {
    const post = (
      path: string,
      body: string | Buffer | undefined,
      headers: Record<string, string> = {},
    ) =>
      fetch(`${server().url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, ...headers },
        body,
      });
    const metadata = async () =>
      (await (await post("/", '{"supportedVersions":[1,2,3]}')).json()) as { databaseId: string };
    const dataHeaders = async (overrides: Record<string, string> = {}) => ({
      "content-type": "application/x-protobuf",
      "x-denokv-version": "3",
      "x-denokv-database-id": (await metadata()).databaseId,
      ...overrides,
    });

    it("answers the metadata exchange with exactly the five fields, as application/json", async () => {
      const response = await post("/", '{"supportedVersions":[1,2,3]}', {
        "content-type": "application/json",
      });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("application/json");
      const body = (await response.json()) as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual([
        "databaseId",
        "endpoints",
        "expiresAt",
        "token",
        "version",
      ]);
      expect(body).toMatchObject({
        version: 3,
        endpoints: [{ url: "/v2", consistency: "strong" }],
      });
      expect(body.databaseId).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      );
      expect(body.expiresAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
      expect((await (await post("/", '{"supportedVersions":[2]}')).json()) as object).toMatchObject(
        {
          version: 2,
        },
      );
    });

    it("hands out short-lived data-path tokens that cannot open or renew a database", async () => {
      const { token, expiresAt } = (await (
        await post("/", '{"supportedVersions":[3]}')
      ).json()) as {
        token: string;
        expiresAt: string;
      };
      expect(token).not.toBe(TOKEN);
      expect(token).toMatch(/^cairn1\./);
      expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(3_600_000);
      const read = (t: string) =>
        post("/v2/snapshot_read", "", { ...headers, authorization: `Bearer ${t}` });
      const headers = await dataHeaders();
      expect((await read(token)).status).toBe(200);
      const [, expiry, signature] = token.split(".");
      expect((await read(`cairn1.${Number(expiry) + 1}.${signature}`)).status).toBe(401); // forged expiry
      expect((await read(`cairn1.${Date.now() - 1}.${signature}`)).status).toBe(401); // expired
      const renew = await post("/", '{"supportedVersions":[3]}', {
        authorization: `Bearer ${token}`,
      });
      expect(renew.status).toBe(401);
    });

    it("replays Deno's captured set and get (reference §1.11)", async () => {
      const key = "0275736572730021c05ec00000000000"; // ["users", 123]
      const set = await post(
        "/v2/atomic_write",
        Buffer.from(`121f0a10${key}12090a05ff10220178100118 01`.replaceAll(" ", ""), "hex"),
        await dataHeaders(),
      );
      expect(set.status).toBe(200);
      expect(set.headers.get("content-type")).toBe("application/x-protobuf");
      const setBytes = Buffer.from(await set.arrayBuffer());
      expect(setBytes.subarray(0, 4).toString("hex")).toBe("0801120a");
      const stamp = setBytes.subarray(4, 14).toString("hex");
      const get = await post(
        "/v2/snapshot_read",
        Buffer.from(`0a270a10${key}1211${key}001801`, "hex"),
        await dataHeaders(),
      );
      const getHex = Buffer.from(await get.arrayBuffer()).toString("hex");
      // One range, one entry (key, V8 "x" in format 15, V8 encoding, the stamp), strong, SR_SUCCESS.
      expect(getHex).toBe(`0a290a270a10${key}1205ff0f2201781801220a${stamp}20014001`);
    });

    it("applies sum bounds (V8 sum_min, sum_max, sum_clamp) as denokv does", async () => {
      const headers = await dataHeaders();
      const big = [2, 0x62, 0x69, 0x67, 0]; // ["big"]
      const num = [2, 0x6e, 0x75, 0x6d, 0]; // ["num"]
      const marker = [2, 0x6d, 0]; // ["m"], written beside every failing sum
      const v8 = (value: unknown) => Buffer.from(encodeV8(value));
      const sum = (key: number[], value: unknown, bounds: object, also: object[] = []) =>
        post(
          "/v2/atomic_write",
          atomicWrite({
            mutations: [
              ...also,
              { key, value: { data: v8(value), encoding: 1 }, mutationType: 3, ...bounds },
            ],
          }),
          headers,
        );
      const kv = await openKv(server().url, { accessToken: TOKEN });
      const read = async () => (await kv.getMany([["big"], ["num"], ["m"]])).map((e) => e.value);
      await kv.set(["big"], 42n);
      await kv.set(["num"], 1.5);
      expect((await sum(big, 2n, { sumMax: v8(44n) })).status).toBe(200);
      expect((await sum(big, 10n, { sumMax: v8(50n), sumClamp: true })).status).toBe(200);
      expect((await sum(num, -4, { sumMin: v8(0), sumClamp: true })).status).toBe(200);
      expect(await read()).toEqual([50n, 0, null]);

      const setMarker = { key: marker, value: { data: v8(1), encoding: 1 }, mutationType: 1 };
      const cases: [number[], unknown, object, string][] = [
        [
          big,
          1n,
          { sumMax: v8(50n) },
          "The result of a Sum operation would exceed its range limit",
        ],
        [num, -1, { sumMin: v8(0) }, "The result of a Sum operation would exceed its range limit"],
        [big, 1n, { sumMin: v8(0) }, "Min/max parameters have different types than the operand"],
        [
          big,
          1n,
          { sumMax: Buffer.from([0xff, 0x0f, 0x99]) },
          "Some of the parameters are not valid V8 values",
        ],
        [big, "1", {}, "Some of the parameters are not valid V8 values"],
      ];
      for (const [key, value, bounds, text] of cases) {
        const response = await sum(key, value, bounds, [setMarker]);
        expect({ status: response.status, text: await response.text() }).toEqual({
          status: 400,
          text,
        });
      }
      const u64 = await post(
        "/v2/atomic_write",
        atomicWrite({
          mutations: [
            setMarker,
            {
              key: big,
              value: { data: Buffer.alloc(8, 1), encoding: 2 },
              mutationType: 3,
              sumMax: v8(5n),
            },
          ],
        }),
        headers,
      );
      expect([u64.status, await u64.text()]).toEqual([
        400,
        "Cannot use min/max parameters with KvU64 operands",
      ]);
      expect(await read()).toEqual([50n, 0, null]);
      await kv.close();
    });

    it("frames watch output: length-prefixed, every key in the first frame, then keep-alives", async () => {
      const kv = await openKv(server().url, { accessToken: TOKEN });
      await kv.set(["wire-watch"], "here");
      const response = await post(
        "/v2/watch",
        watchRequest([
          [2, ...Buffer.from("wire-watch"), 0],
          [2, 0x6e, 0x6f, 0],
        ]),
        await dataHeaders(),
      );
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("application/octet-stream");
      const reader = response.body!.getReader();
      let buffered = Buffer.alloc(0);
      const frame = async (): Promise<Buffer> => {
        while (buffered.length < 4 || buffered.length < 4 + buffered.readUInt32LE(0)) {
          const { value } = await reader.read();
          buffered = Buffer.concat([buffered, value!]);
        }
        const length = buffered.readUInt32LE(0);
        const body = buffered.subarray(4, 4 + length);
        buffered = buffered.subarray(4 + length);
        return body;
      };
      const first = WatchOutput.toObject(WatchOutput.decode(await frame()), { defaults: true });
      expect(first.status).toBe(1);
      expect(first.keys.map((k: { changed: boolean }) => k.changed)).toEqual([true, true]);
      expect(first.keys[0].entryIfChanged.value).toEqual(Buffer.from(encodeV8("here")));
      expect(first.keys[1].entryIfChanged).toBeNull();
      expect((await frame()).length).toBe(0); // a keep-alive: on joining the feed, then every 5 s
      await reader.cancel();
      await kv.close();
    });

    it("keeps an enqueued message's backoff schedule and undelivered keys", async () => {
      const kv = await openKv(server().url, { accessToken: TOKEN });
      const written = await post(
        "/v2/atomic_write",
        atomicWrite({
          enqueues: [
            {
              payload: encodeV8({ doomed: true }),
              deadlineMs: Date.now(),
              backoffSchedule: [1, 1],
              keysIfUndelivered: [
                [2, ...Buffer.from("undelivered"), 0, 0x21, 0xbf, 0xf0, 0, 0, 0, 0, 0, 0],
              ],
            },
          ],
        }),
        await dataHeaders(),
      );
      expect(written.status).toBe(200);
      const attempts: number[] = [];
      const listener = kv.listenQueue((message) => {
        attempts.push(message.attempts);
        throw new Error("refused");
      });
      // The value lands in the undelivered key after the last of the 1 + 2 attempts.
      const reader = kv.watch([["undelivered", 1]]).getReader();
      while ((await reader.read()).value![0]!.value === null);
      await reader.cancel();
      await listener.stop();
      expect(attempts).toEqual([1, 2, 3]);
      expect((await kv.get(["undelivered", 1])).value).toEqual({ doomed: true });
      await kv.close();
    });

    it("validates watches and enqueues with denokv's texts, applying nothing", async () => {
      const headers = await dataHeaders();
      const key = [2, 0x71, 0]; // ["q"]
      const enqueue = (fields: object) =>
        atomicWrite({
          mutations: [
            { key: [2, 0x71, 0x6d, 0], value: { data: encodeV8(1), encoding: 1 }, mutationType: 1 },
          ],
          enqueues: [{ payload: encodeV8("job"), deadlineMs: Date.now(), ...fields }],
        });
      const cases: [string, Buffer, string][] = [
        [
          "/v2/watch",
          watchRequest(Array.from({ length: 11 }, () => key)),
          "Too many keys watched in a single watch request.",
        ],
        [
          "/v2/watch",
          watchRequest([[1, ...Buffer.alloc(2047, 1), 0]]),
          "A key exceeds the key size limit.",
        ],
        [
          "/v2/atomic_write",
          enqueue({ payload: encodeV8("x".repeat(70_000)) }),
          "A value exceeds the value size limit.",
        ],
        [
          "/v2/atomic_write",
          enqueue({ keysIfUndelivered: Array.from({ length: 11 }, () => key) }),
          "Too many dead letter keys for a single queue message.",
        ],
        [
          "/v2/atomic_write",
          enqueue({ keysIfUndelivered: [[1, ...Buffer.alloc(2047, 1), 0]] }),
          "A key exceeds the key size limit.",
        ],
        [
          "/v2/atomic_write",
          enqueue({ backoffSchedule: Array.from({ length: 11 }, () => 1) }),
          "Too many backoff intervals for a single queue message.",
        ],
        [
          "/v2/atomic_write",
          enqueue({ backoffSchedule: [3_600_001] }),
          "A backoff interval exceeds the maximum allowed backoff interval.",
        ],
        ["/v2/atomic_write", enqueue({ deadlineMs: -1 }), "Invalid mutation enqueue deadline."],
        [
          "/v2/atomic_write",
          enqueue({ deadlineMs: Date.now() + 31 * 86_400_000 }),
          "Invalid mutation enqueue deadline.",
        ],
      ];
      const kv = await openKv(server().url, { accessToken: TOKEN });
      const before = await kv.queueStats();
      for (const [path, body, text] of cases) {
        const response = await post(path, body, headers);
        expect({ path, status: response.status, text: await response.text() }).toEqual({
          path,
          status: 400,
          text,
        });
      }
      expect(await kv.queueStats()).toEqual(before);
      expect((await kv.get(["qm"])).versionstamp).toBeNull();
      await kv.close();
    });

    it("answers permanent problems with 4xx and denokv's texts", async () => {
      const cases: [string, string | Buffer | undefined, Record<string, string>, number, string][] =
        [
          [
            "/",
            undefined,
            {},
            400,
            "The server requires at least protocol version 2. Use Deno 1.38.0 or newer.",
          ],
          [
            "/",
            '{"supportedVersions":[1]}',
            {},
            400,
            "The server could not negotiate a protocol version. The server requires protocol version 2 or 3.",
          ],
          ["/", "{}", { authorization: "Bearer nope" }, 401, "Invalid access token."],
          ["/", "{}", { authorization: "nospace" }, 401, "Malformed authorization header."],
          [
            "/v2/snapshot_read",
            "",
            await dataHeaders({ "x-denokv-version": "1" }),
            400,
            "Expected protocol version 2.",
          ],
          [
            "/v2/snapshot_read",
            "",
            await dataHeaders({ "x-denokv-database-id": "00000000-0000-0000-0000-000000000000" }),
            400,
            "Invalid database id.",
          ],
          [
            "/v2/atomic_write",
            Buffer.from([0x0a, 0xff, 0x01]),
            await dataHeaders(),
            400,
            "Request protobuf is invalid",
          ],
          [
            "/v2/snapshot_read",
            Buffer.from("0a0418001800", "hex"),
            await dataHeaders(),
            400,
            "The read range limit of the snapshot read request is invalid.",
          ],
          ["/v2/nope", "", await dataHeaders(), 404, "No route for POST /v2/nope"],
          [
            "/v2/atomic_write",
            atomicWrite({
              mutations: [
                {
                  key: [2, 0x61, 0],
                  value: { data: Buffer.alloc(65_537), encoding: 3 },
                  mutationType: 1,
                },
              ],
            }),
            await dataHeaders(),
            400,
            "A value exceeds the value size limit.",
          ],
          [
            "/v2/atomic_write",
            atomicWrite({
              mutations: [
                {
                  key: [2, 0x61, 0],
                  value: { data: Buffer.from([1, 2]), encoding: 1 },
                  mutationType: 1,
                },
              ],
            }),
            await dataHeaders(),
            400,
            "The V8 value could not be decoded.",
          ],
          [
            "/v2/atomic_write",
            atomicWrite({
              mutations: [
                {
                  key: [2, 0x61, 0],
                  value: {
                    data: v8.serialize(JSON.parse(`${"[".repeat(101)}${"]".repeat(101)}`)),
                    encoding: 1,
                  },
                  mutationType: 1,
                },
              ],
            }),
            await dataHeaders(),
            400,
            "more than 100 levels deep",
          ],
          [
            "/v2/atomic_write",
            atomicWrite({ checks: Array.from({ length: 101 }, () => ({ key: [2, 0x61, 0] })) }),
            await dataHeaders(),
            400,
            "Too many checks included in atomic write.",
          ],
          [
            "/v2/atomic_write",
            atomicWrite({
              mutations: Array.from({ length: 1001 }, () => ({
                key: [2, 0x61, 0],
                mutationType: 2,
              })),
            }),
            await dataHeaders(),
            400,
            "Too many mutations / enqueues included in atomic write.",
          ],
          [
            "/v2/atomic_write",
            atomicWrite({
              mutations: [
                { key: [0x99], value: { data: Buffer.alloc(1), encoding: 3 }, mutationType: 1 },
              ],
            }),
            await dataHeaders(),
            400,
            "Invalid key",
          ],
          [
            "/v2/atomic_write",
            atomicWrite({
              mutations: [
                {
                  key: [2, 0x61, 0],
                  value: { data: Buffer.alloc(8), encoding: 2 },
                  mutationType: 7,
                },
              ],
            }),
            await dataHeaders(),
            400,
            "Invalid mutation kind or arguments.",
          ],
        ];
      for (const [path, body, headers, status, text] of cases) {
        const response = await post(path, body, headers);
        expect({ path, status: response.status }).toEqual({ path, status });
        expect(await response.text()).toContain(text);
      }
    });
  });

  describe("named databases", () => {
    let data: string;
    let drop: () => Promise<void>;
    const start = () => startServer({ host: "127.0.0.1", port: 0, data, auth: true, token: TOKEN });
    let named: CairnServer;
    beforeAll(async () => {
      ({ data, drop } = await storage.open());
      named = await start();
    });
    afterAll(async () => {
      await named.close();
      await drop();
    });
    /** The directory of the default SQLite file, whose `databases/` holds the named ones. */
    const dir = () => dirname(data);
    /**
     * The named databases that exist: the files in `databases/` beside a SQLite file, or the
     * schemas `<schema>_<name>` beside PostgreSQL's.
     */
    const namedDatabases = async (): Promise<string[]> => {
      if (!storage.postgres) {
        return readdirSync(join(dir(), "databases"))
          .filter((f) => f.endsWith(".db"))
          .map((f) => f.slice(0, -".db".length))
          .sort();
      }
      const schema = new URL(data).searchParams.get("schema")!;
      const sql = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
      try {
        const rows = await sql<{ name: string }[]>`
          SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, ${`${schema}_`})`;
        return rows.map((row) => row.name.slice(schema.length + 1)).sort();
      } finally {
        await sql.end();
      }
    };
    const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
      fetch(`${named.url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, ...headers },
        body,
      });
    /** A POST with `path` sent exactly as given (fetch would resolve `..` before sending). */
    const rawPost = (path: string, body: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(
          `${named.url}${path}`,
          { method: "POST", path, headers: { authorization: `Bearer ${TOKEN}` } },
          (res) => {
            let text = "";
            res.on("data", (chunk) => (text += chunk));
            res.on("end", () => resolve({ status: res.statusCode!, text }));
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    const metadata = async (path: string) =>
      (await (await post(path, '{"supportedVersions":[2,3]}')).json()) as {
        databaseId: string;
        endpoints: { url: string }[];
        token: string;
      };

    it("keeps the default and two named databases apart, for Deno and @deno/kv", async () => {
      const fromDeno = { default: [["default", { from: "default" }]] } as Record<string, unknown>;
      for (const name of ["alpha", "beta"]) fromDeno[name] = [[name, { from: name }]];
      expect(await runDeno("deno-kv-databases.ts", named.url)).toEqual(fromDeno);

      const urls = {
        default: named.url,
        alpha: `${named.url}/db/alpha`,
        beta: `${named.url}/db/beta`,
      };
      const clients = Object.fromEntries(
        await Promise.all(
          Object.entries(urls).map(async ([name, url]) => [
            name,
            await openDenoKv(url, { accessToken: TOKEN, encodeV8, decodeV8 }),
          ]),
        ),
      ) as Record<string, Awaited<ReturnType<typeof openDenoKv>>>;
      for (const [name, kv] of Object.entries(clients)) await kv.set(["node", name], name);
      for (const [name, kv] of Object.entries(clients)) {
        const keys: unknown[] = [];
        for await (const e of kv.list({ prefix: [] })) keys.push(e.key);
        expect({ name, keys }).toEqual({
          name,
          keys: [
            ["deno", name],
            ["node", name],
          ],
        });
        kv.close();
      }
    });

    it("gives each database its own endpoint and stable id, and checks the id against the path", async () => {
      const [root, alpha, beta] = await Promise.all(["/", "/db/alpha", "/db/beta"].map(metadata));
      expect(root!.endpoints).toEqual([{ url: "/v2", consistency: "strong" }]);
      expect(alpha!.endpoints).toEqual([{ url: "/db/alpha/v2", consistency: "strong" }]);
      expect(new Set([root!.databaseId, alpha!.databaseId, beta!.databaseId]).size).toBe(3);
      const read = (path: string, id: string) =>
        post(path, "", {
          authorization: `Bearer ${alpha!.token}`,
          "x-denokv-version": "3",
          "x-denokv-database-id": id,
        });
      expect((await read("/db/alpha/v2/snapshot_read", alpha!.databaseId)).status).toBe(200);
      for (const [path, id] of [
        ["/db/beta/v2/snapshot_read", alpha!.databaseId],
        ["/v2/snapshot_read", alpha!.databaseId],
        ["/db/alpha/v2/atomic_write", root!.databaseId],
        ["/db/never-created/v2/snapshot_read", alpha!.databaseId],
      ] as const) {
        const response = await read(path, id);
        expect({ path, status: response.status, text: await response.text() }).toEqual({
          path,
          status: 400,
          text: "Invalid database id.",
        });
      }
      expect(await namedDatabases()).not.toContain("never-created");
    });

    it("creates a database only through the metadata exchange with the access token, and only with a valid name", async () => {
      const { token } = await metadata("/db/alpha");
      const renew = await post("/db/gamma", '{"supportedVersions":[3]}', {
        authorization: `Bearer ${token}`,
      });
      expect([renew.status, await renew.text()]).toEqual([401, "Invalid access token."]);
      const stranger = await post("/db/gamma", '{"supportedVersions":[3]}', {
        authorization: "Bearer wrong-token",
      });
      expect(stranger.status).toBe(401);
      for (const name of [
        "..",
        "%2E%2E",
        "a%2F..%2Fb",
        "Alpha",
        "x.db",
        "-a",
        "a".repeat(65),
        "%00",
      ]) {
        const response = await rawPost(`/db/${name}`, '{"supportedVersions":[3]}');
        expect({ name, ...response }).toEqual({
          name,
          status: 400,
          text: expect.stringContaining("Invalid database name"),
        });
      }
      expect(await namedDatabases()).toEqual(["alpha", "beta"]);
    });

    it("keeps named databases in files beside the default one, closed with the server and reopened after a restart", async () => {
      const before = await metadata("/db/beta");
      await named.close();
      expect(await namedDatabases()).toContain("beta");
      if (!storage.postgres) {
        const file = join(dir(), "databases", "beta.db");
        expect(existsSync(file)).toBe(true);
        expect(existsSync(`${file}-wal`)).toBe(false); // SQLite removes the WAL when the last connection closes
      }
      named = await start();
      // A client that kept its data-path token goes on without a new metadata exchange.
      const response = await post(
        "/db/beta/v2/snapshot_read",
        Buffer.from("0a0c0a0302646e1201ff18012000", "hex"), // every key from ["dn…"] on, limit 1
        {
          authorization: `Bearer ${before.token}`,
          "x-denokv-version": "3",
          "x-denokv-database-id": before.databaseId,
        },
      );
      expect(response.status).toBe(200);
      expect((await metadata("/db/beta")).databaseId).toBe(before.databaseId);
      const kv = await openDenoKv(`${named.url}/db/beta`, {
        accessToken: TOKEN,
        encodeV8,
        decodeV8,
        maxRetries: 0,
      });
      expect((await kv.get(["deno", "beta"])).value).toEqual({ from: "beta" });
      expect((await kv.get(["deno", "alpha"])).value).toBeNull();
      // A message queued in a named database is for that database's consumers (Cairn's SDK at /db/<name>).
      await kv.enqueue({ for: "beta" });
      kv.close();
      const beta = await openKv(`${named.url}/db/beta`, { accessToken: TOKEN });
      const message = await new Promise((resolve) => {
        const listener = beta.listenQueue((message) => {
          resolve(message.value);
          void listener.stop();
        });
      });
      expect(message).toEqual({ for: "beta" });
      await beta.close();
      const main = await openKv(named.url, { accessToken: TOKEN });
      expect((await main.queueStats()).total).toBe(0); // the default database's queue is another
      await main.close();
    });
  });
});
