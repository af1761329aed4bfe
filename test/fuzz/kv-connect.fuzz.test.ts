/**
 * KV Connect fuzzed over real HTTP: the metadata exchange gets hostile JSON, the data path random
 * bytes, near-valid protobuf messages (fields out of range, undecodable keys, random V8 values,
 * unknown mutation kinds and encodings) and valid messages with a byte changed. Every answer is a
 * 2xx or a 4xx with a plain-text message (Deno retries 5xx forever); a refused write changes
 * nothing; the server keeps serving.
 */
import { join } from "node:path";
import v8 from "node:v8";
import fc from "fast-check";
import protobuf from "protobufjs";
import { beforeAll, describe, expect, it } from "vitest";
import { encodeKey, type KvKey } from "../../src/codec/key-codec.js";
import { edgeNumber, fuzz, hostileValue, jsonText, RawNumber, timeoutFor } from "./fuzz.js";
import { fuzzServer, type Sent } from "./fuzz-server.js";

const TOKEN = "kv-connect-fuzz-token";
const api = fuzzServer(TOKEN, (sent) => sent.path.endsWith("/atomic_write"));

const proto = protobuf.loadSync(join(__dirname, "..", "..", "proto", "kv-connect.proto"));
const type = (name: string) => proto.lookupType(`com.deno.kv.datapath.${name}`);
const messages = {
  "/v2/snapshot_read": type("SnapshotRead"),
  "/v2/atomic_write": type("AtomicWrite"),
  "/v2/watch": type("Watch"),
} as const;

let headers: Record<string, string>;
beforeAll(async () => {
  const answer = await api.send({ method: "POST", path: "/", body: '{"supportedVersions":[3]}' });
  headers = {
    "content-type": "application/x-protobuf",
    "x-denokv-version": "3",
    "x-denokv-database-id": (JSON.parse(answer.text) as { databaseId: string }).databaseId,
  };
});

const v8Of = (value: unknown) => {
  const s = new v8.Serializer();
  s.writeHeader();
  s.writeValue(value);
  return new Uint8Array(s.releaseBuffer());
};

const keyBytes = fc.oneof(
  fc.constantFrom(
    ...[["users", 1], ["n"], ["big"], ["posts", "a"], ["new"]].map((k) => encodeKey(k as KvKey)),
  ),
  fc.uint8Array({ maxLength: 12 }),
  fc.constantFrom(new Uint8Array(), new Uint8Array(2050), new Uint8Array([0x02, 0x61])),
);

const v8Bytes = fc.oneof(
  fc.constantFrom(
    v8Of(1),
    v8Of("x"),
    v8Of(2n),
    v8Of({ a: [1] }),
    v8Of(new Map([[1, 2]])),
    v8Of(-0),
  ),
  fc.uint8Array({ maxLength: 30 }),
  fc.uint8Array({ maxLength: 30 }).map((b) => new Uint8Array([0xff, 0x0f, ...b])),
  fc.uint8Array({ maxLength: 30 }).map((b) => new Uint8Array([0xff, 0x10, ...b])),
  fc.constantFrom(new Uint8Array(65_537), v8Of("x".repeat(70_000))),
);

const int64 = fc.oneof(
  fc.constantFrom(0, -1, -2, 1, Date.now() + 1000, 2 ** 53, -(2 ** 53), 2 ** 31),
  fc.integer(),
  fc.constantFrom("9223372036854775807", "-9223372036854775808"),
);

const kvValue = fc.record(
  { data: v8Bytes, encoding: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 99), fc.integer()) },
  { requiredKeys: [] },
);

const atomicWrite = fc.record(
  {
    checks: fc.array(
      fc.record(
        {
          key: keyBytes,
          versionstamp: fc.oneof(fc.uint8Array({ maxLength: 12 }), fc.constant(new Uint8Array(10))),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 3 },
    ),
    mutations: fc.array(
      fc.record(
        {
          key: keyBytes,
          value: kvValue,
          mutationType: fc.oneof(
            fc.constantFrom(0, 1, 2, 3, 4, 5, 9, 7),
            fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          ),
          expireAtMs: int64,
          sumMin: v8Bytes,
          sumMax: v8Bytes,
          sumClamp: fc.boolean(),
        },
        { requiredKeys: ["key"] },
      ),
      { maxLength: 4 },
    ),
    enqueues: fc.array(
      fc.record(
        {
          payload: v8Bytes,
          deadlineMs: int64,
          keysIfUndelivered: fc.array(keyBytes, { maxLength: 3 }),
          backoffSchedule: fc.array(fc.oneof(fc.nat(), fc.constant(2 ** 32 - 1)), {
            maxLength: 12,
          }),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);

const snapshotRead = fc.record({
  ranges: fc.array(
    fc.record(
      {
        start: keyBytes,
        end: fc.oneof(keyBytes, fc.constant(new Uint8Array([0xff]))),
        limit: fc.oneof(fc.constantFrom(-1, 0, 1, 10, 1000, 1001), fc.integer()),
        reverse: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
    { maxLength: 12 },
  ),
});

const watch = fc.record({
  keys: fc.array(fc.record({ key: keyBytes }, { requiredKeys: [] }), { maxLength: 12 }),
});

/** A protobuf body printed as its message, sent as its encoding (a byte changed, maybe). */
class ProtoBody {
  constructor(
    readonly path: keyof typeof messages,
    readonly message: Record<string, unknown>,
    readonly change?: { at: number; byte: number },
  ) {}

  get bytes(): Uint8Array {
    const t = messages[this.path];
    const bytes = new Uint8Array(t.encode(t.fromObject(this.message)).finish());
    if (this.change && bytes.length > 0) bytes[this.change.at % bytes.length] = this.change.byte;
    return bytes;
  }

  [fc.toStringMethod](): string {
    return `${this.path} ${fc.stringify(this.message)}${this.change ? ` with byte ${this.change.at} = ${this.change.byte}` : ""}`;
  }
}

const change = fc.option(fc.record({ at: fc.nat(), byte: fc.nat({ max: 255 }) }), { freq: 4 });

const dataPathBodies: Record<keyof typeof messages, fc.Arbitrary<unknown>> = {
  "/v2/snapshot_read": snapshotRead,
  "/v2/atomic_write": atomicWrite,
  "/v2/watch": watch,
};

const RUNS = 60;

describe("the data path", () => {
  for (const [path, arbitrary] of Object.entries(dataPathBodies) as [
    keyof typeof messages,
    fc.Arbitrary<Record<string, unknown>>,
  ][]) {
    it(
      `POST ${path}: a 2xx or a 4xx with a message; refused, nothing changes`,
      async () => {
        const body = fc.oneof(
          { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }) },
          {
            weight: 4,
            arbitrary: fc
              .tuple(arbitrary, change)
              .map(([m, c]) => new ProtoBody(path, m, c ?? undefined)),
          },
        );
        await fc.assert(
          fc.asyncProperty(body, async (b) => {
            const sent: Sent = {
              method: "POST",
              path,
              headers,
              body: b instanceof ProtoBody ? b.bytes : b,
            };
            await api.check(sent, { errors: "text" });
          }),
          fuzz(RUNS),
        );
        expect((await api.send({ method: "GET", path: "/health" })).status).toBe(200);
      },
      timeoutFor(RUNS, 200),
    );
  }

  it(
    "protocol headers: a 4xx for any version or database id",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...Object.keys(messages)),
          fc.oneof(
            fc.constantFrom("1", "2", "3", "4", "", "3 "),
            fc.stringMatching(/^[ -~]{0,10}$/),
          ),
          fc.oneof(fc.constant(undefined), fc.stringMatching(/^[ -~]{0,40}$/)),
          async (path, version, id) => {
            const sent: Sent = {
              method: "POST",
              path,
              headers: {
                ...headers,
                "x-denokv-version": version,
                ...(id !== undefined && { "x-denokv-database-id": id }),
              },
              body: new Uint8Array(),
            };
            await api.check(sent, { errors: "text" });
          },
        ),
        fuzz(RUNS),
      );
    },
    timeoutFor(RUNS, 200),
  );
});

describe("the metadata exchange", () => {
  it(
    "POST / and /db/<name>: a 2xx or a 4xx with a message, for any body",
    async () => {
      const versions = fc.array(fc.oneof(fc.constantFrom(1, 2, 3, 4, "3", null), edgeNumber), {
        maxLength: 4,
      });
      const body = fc.oneof(
        fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b).toString("latin1")),
        hostileValue.map((v) => jsonText(v)),
        fc
          .oneof(versions, hostileValue)
          .map((v) => jsonText({ supportedVersions: v instanceof RawNumber ? [v] : v })),
      );
      await fc.assert(
        fc.asyncProperty(
          body,
          fc.constantFrom("/", "/db/fuzz", "/db/NOPE", "/db/-x"),
          async (text, path) => {
            await api.check({ method: "POST", path, body: text }, { errors: "text" });
          },
        ),
        fuzz(RUNS),
      );
    },
    timeoutFor(RUNS, 200),
  );
});
