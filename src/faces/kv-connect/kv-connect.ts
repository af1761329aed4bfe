/**
 * Deno KV Connect (reference/kv-connect.md §1): the metadata exchange at `POST /` and the data
 * path `POST /v2/snapshot_read`, `/v2/atomic_write` (enqueues included) and `/v2/watch`,
 * protobuf per `proto/kv-connect.proto`; the same for each named database under `/db/<name>`.
 * Errors are plain text with denokv's messages; Deno retries 5xx forever, so every permanent
 * problem is a 4xx.
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { checkKeySize, concatBytes, decodeKey } from "../../codec/key-codec.js";
import { KvV8Value } from "../../codec/kv-v8-value.js";
import {
  decodeValue,
  type EncodedValue,
  encodeValue,
  serializeV8,
  ValueEncoding,
} from "../../codec/value-codec.js";
import { checkCommit } from "../../engine/commit-limits.js";
import type { Check, Database, KeyRange, Mutation, RawEntry } from "../../engine/database.js";
import { assertEnqueueLimits } from "../../engine/enqueue-limits.js";
import { sumBounds } from "../../engine/mutations.js";
import { KvError } from "../../kv-error.js";
import { limits } from "../../limits.js";
import { isDerivedToken } from "../derived-token.js";
import type { Access, Face, Route, RouteRequest } from "../face.js";
import { bearerToken, Reply, StreamReply } from "../http-io.js";

const schema = protobuf.loadSync(
  fileURLToPath(new URL("../../../proto/kv-connect.proto", import.meta.url)),
);
const type = (name: string) => schema.lookupType(`com.deno.kv.datapath.${name}`);
const SnapshotRead = type("SnapshotRead");
const SnapshotReadOutput = type("SnapshotReadOutput");
const AtomicWrite = type("AtomicWrite");
const AtomicWriteOutput = type("AtomicWriteOutput");
const Watch = type("Watch");
const WatchOutput = type("WatchOutput");

/** The protocol's enums (proto/kv-connect.proto), as far as Cairn uses them. */
const SnapshotReadStatus = { success: 1 } as const;
const AtomicWriteStatus = { success: 1, checkFailure: 2 } as const;
const MutationType = {
  set: 1,
  delete: 2,
  sum: 3,
  max: 4,
  min: 5,
  setSuffixVersionstampedKey: 9,
} as const;

/** denokv's server texts for the atomic limits (reference/kv-connect.md §1.8). */
const DENOKV_LIMIT_MESSAGES = {
  checks: "Too many checks included in atomic write.",
  mutations: "Too many mutations / enqueues included in atomic write.",
  totalSize: "The total size of the atomic write is too large.",
  keySize: "The total size of the atomic write is too large.",
};

const bad = (message: string) => new KvError("INVALID_ARGUMENT", message);

function decode(messageType: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
  try {
    return messageType.toObject(messageType.decode(bytes), {
      longs: Number,
      defaults: true,
    }) as Record<string, unknown>;
  } catch (e) {
    throw bad(`Request protobuf is invalid: ${(e as Error).message}.`);
  }
}

function protobufReply(messageType: protobuf.Type, message: Record<string, unknown>): Reply {
  return new Reply(
    200,
    "application/x-protobuf",
    messageType.encode(messageType.fromObject(message)).finish(),
  );
}

const stampBytes = (hex: string) => new Uint8Array(Buffer.from(hex, "hex"));

function key(bytes: Uint8Array, access: "read" | "write"): Uint8Array {
  if (access === "write" && bytes.length === 0) throw bad("Key cannot be empty.");
  try {
    checkKeySize(bytes, access);
  } catch {
    throw bad("A key exceeds the key size limit.");
  }
  // Written keys must be keys every face can decode; read bounds are arbitrary bytes.
  if (access === "write") {
    try {
      decodeKey(bytes);
    } catch (e) {
      throw bad(`Invalid key: ${(e as Error).message}.`);
    }
  }
  return bytes;
}

/** An entry as Deno reads it: JSON text becomes V8, the other encodings pass through. */
function entryToProtobuf(raw: RawEntry) {
  const json = raw.encoding === ValueEncoding.JSON;
  return {
    key: raw.key,
    value: json ? serializeV8(JSON.parse(raw.data)) : raw.data,
    encoding: json ? ValueEncoding.V8 : raw.encoding,
    versionstamp: stampBytes(raw.versionstamp),
  };
}

/**
 * A value Deno sent, stored the way Cairn stores values (JSON-shaped V8 values become JSON). V8
 * bytes that Node cannot decode (Deno's host objects: Blob, DOMException, …) are stored as they
 * came, as denokv does, so that Deno reads back exactly what it wrote.
 */
function valueIn(value: { data?: Uint8Array; encoding?: number } | null | undefined): EncodedValue {
  if (!value) throw bad("Invalid mutation kind or arguments.");
  const data = value.data ?? new Uint8Array();
  if (data.length > limits.maxValueBytes) throw bad("A value exceeds the value size limit.");
  switch (value.encoding) {
    case ValueEncoding.V8: {
      const decoded = decodeValue({ encoding: ValueEncoding.V8, data });
      // Without V8's header byte these are not V8 bytes at all, only something no client can read.
      if (decoded instanceof KvV8Value && data[0] !== 0xff)
        throw new KvError("INVALID_VALUE", "The V8 value could not be decoded.");
      // The limit applies to what Deno sent; the JSON form may be a little larger.
      return encodeValue(decoded);
    }
    case ValueEncoding.LE64:
      if (data.length !== 8)
        throw new KvError("INVALID_VALUE", "A KvU64 value must be exactly 8 bytes.");
      return { encoding: ValueEncoding.LE64, data };
    case ValueEncoding.BYTES:
      return { encoding: ValueEncoding.BYTES, data };
    default:
      throw bad(`The value encoding ${String(value.encoding)} is unknown.`);
  }
}

/** A sum bound as Deno sends it: V8 bytes, empty for none. */
function v8Bound(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return undefined;
  // Anything but a number or bigint (undecodable bytes included): sumBounds rejects it.
  return decodeValue({ encoding: ValueEncoding.V8, data: bytes });
}

function mutationIn(m: Record<string, unknown>, now: number): Mutation {
  const mutationKey = key(m.key as Uint8Array, "write");
  const expiresAt = Number(m.expireAtMs ?? 0);
  if (expiresAt < -1) throw bad("Invalid mutation expire at.");
  const value = m.value as { data?: Uint8Array; encoding?: number } | null;
  switch (m.mutationType) {
    case MutationType.set:
    case MutationType.setSuffixVersionstampedKey:
      return {
        type: "set",
        key: mutationKey,
        value: valueIn(value),
        expireIn: expiresAt > 0 ? Math.max(0, expiresAt - now) : undefined,
        suffixVersionstamp: m.mutationType === MutationType.setSuffixVersionstampedKey,
      };
    case MutationType.delete:
      return { type: "delete", key: mutationKey };
    case MutationType.sum: {
      const operand = valueIn(value);
      const bounds = sumBounds(
        operand,
        v8Bound(m.sumMin as Uint8Array),
        v8Bound(m.sumMax as Uint8Array),
        m.sumClamp === true,
      );
      return { type: "sum", key: mutationKey, value: operand, bounds };
    }
    case MutationType.min:
    case MutationType.max: {
      const kind = m.mutationType === MutationType.min ? "min" : "max";
      if (value?.encoding !== ValueEncoding.LE64) {
        throw new KvError(
          "TYPE_MISMATCH",
          `Failed to perform '${kind}' mutation on a non-U64 operand`,
        );
      }
      return { type: kind, key: mutationKey, value: valueIn(value) };
    }
    default:
      throw bad("Invalid mutation kind or arguments.");
  }
}

/** A message @deno/kv enqueued, as the engine's enqueue mutation; denokv's checks and texts (§1.7). */
function enqueueIn(e: Record<string, unknown>, now: number): Mutation {
  const undelivered = e.keysIfUndelivered as Uint8Array[];
  if (undelivered.length > limits.maxKeysIfUndelivered)
    throw bad("Too many dead letter keys for a single queue message.");
  const keysIfUndelivered = undelivered.map((k) => key(k, "write"));
  const schedule = e.backoffSchedule as number[];
  if (schedule.length > limits.maxBackoffIntervals)
    throw bad("Too many backoff intervals for a single queue message.");
  if (schedule.some((interval) => interval > limits.maxBackoffIntervalMs))
    throw bad("A backoff interval exceeds the maximum allowed backoff interval.");
  const deadline = Number(e.deadlineMs);
  // denokv's 30-day check is inverted (§1.7); Cairn refuses deadlines more than 30 days ahead.
  if (deadline < 0 || deadline - now > limits.maxEnqueueDelayMs)
    throw bad("Invalid mutation enqueue deadline.");
  const mutation = {
    type: "enqueue",
    id: randomUUID(),
    value: valueIn({ data: e.payload as Uint8Array, encoding: ValueEncoding.V8 }),
    delay: Math.max(0, deadline - now),
    // An empty schedule means the default one, as in denokv.
    backoffSchedule: schedule.length > 0 ? schedule : limits.defaultBackoffSchedule,
    keysIfUndelivered,
  } as const;
  assertEnqueueLimits(mutation);
  return mutation;
}

/** One watch frame: a 4-byte little-endian length, then the message (empty: a keep-alive). */
function watchFrame(message?: Record<string, unknown>): Uint8Array {
  const body = message ? WatchOutput.encode(WatchOutput.fromObject(message)).finish() : undefined;
  const frame = Buffer.alloc(4 + (body?.length ?? 0));
  frame.writeUInt32LE(body?.length ?? 0, 0);
  if (body) frame.set(body, 4);
  return frame;
}

/**
 * Streams `keys` of `database` as watch frames, each reporting every key from one snapshot: the
 * first at once, later ones when a versionstamp among them changed (deletion and expiry
 * included). The keys are read again whenever the change feed reports a commit touching them, so
 * one frame may cover several commits.
 */
function framedWatch(database: Database, keys: Uint8Array[]): StreamReply {
  return new StreamReply("application/octet-stream", (stream) => {
    let sent: (string | null)[] | undefined;
    let closed = false;
    let reading = false;
    let again = false;
    // Keep-alives follow the first frame: one due before it is sent right after it.
    let keepAliveDue = false;
    const readOnce = async () => {
      const entries = await database.get(keys);
      if (closed) return;
      const stamps = entries.map((e) => e?.versionstamp ?? null);
      if (sent !== undefined && stamps.every((stamp, i) => stamp === sent![i])) return;
      sent = stamps;
      // Every key marked changed, as denokv does: Deno forgets the entry of a key sent as
      // unchanged, and both clients drop what they already have by its versionstamp.
      stream.write(
        watchFrame({
          status: SnapshotReadStatus.success,
          keys: entries.map((entry) => ({
            changed: true,
            entryIfChanged: entry ? entryToProtobuf(entry) : undefined,
          })),
        }),
      );
      if (keepAliveDue) stream.write(watchFrame());
      keepAliveDue = false;
    };
    /** Reads the keys, once more for every change reported while a read was running. */
    const refresh = async () => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          await readOnce();
        } while (again && !closed);
      } catch {
        stream.end(); // the client reconnects and gets a fresh first frame
      } finally {
        reading = false;
      }
    };
    let joined = false;
    // Subscribed before the first read, so that no commit falls between the two.
    const subscription = database.follow(
      { ranges: keys.map((k) => ({ start: k, end: concatBytes(k, [0]) })), cursor: null },
      {
        commit: () => void refresh(),
        lost: () => void refresh(),
        heartbeat: () => {
          // The first one marks where the feed starts: read once more from there.
          if (!joined) void refresh();
          joined = true;
          if (sent === undefined) keepAliveDue = true;
          else stream.write(watchFrame());
        },
        error: () => stream.end(),
      },
    );
    void refresh();
    return () => {
      closed = true;
      subscription.close();
    };
  });
}

/** Checks the data path's protocol headers (the token was checked by the server). */
function dataPath(request: RouteRequest): Database {
  const version = request.req.headers["x-denokv-version"];
  if (version !== "2" && version !== "3") throw bad("Expected protocol version 2.");
  let id: string | undefined;
  try {
    id = request.databaseId;
  } catch (error) {
    if (!(error instanceof KvError && error.code === "NOT_FOUND")) throw error;
  }
  if (id === undefined || request.req.headers["x-denokv-database-id"] !== id)
    throw bad("Invalid database id.");
  return request.database;
}

/** A data-path route: its protocol headers checked, its body decoded as `type`. */
function dataRoute(
  path: string,
  operation: string,
  access: Access,
  type: protobuf.Type,
  handle: (database: Database, message: Record<string, unknown>) => Promise<Reply | StreamReply>,
): Route {
  return {
    method: "POST",
    path,
    access,
    operation,
    async handle(request) {
      const database = dataPath(request);
      return handle(database, decode(type, await request.bytes()));
    },
  };
}

/**
 * The metadata exchange: which protocol version, the database's id, where its data path is, and
 * a short-lived token for it. Only the access token opens (or creates) a database: a derived
 * token cannot renew itself.
 */
const metadataRoute: Route = {
  method: "POST",
  path: "/",
  access: "read",
  operation: "metadata",
  creates: true,
  async handle(request) {
    const body = await request.bytes();
    let offered: unknown;
    try {
      offered = JSON.parse(body.toString()).supportedVersions;
    } catch {
      offered = undefined;
    }
    if (!Array.isArray(offered)) {
      throw bad("The server requires at least protocol version 2. Use Deno 1.38.0 or newer.");
    }
    const version = offered.includes(3) ? 3 : offered.includes(2) ? 2 : undefined;
    if (version === undefined) {
      throw bad(
        "The server could not negotiate a protocol version. The server requires protocol version 2 or 3.",
      );
    }
    const accessToken = bearerToken(request.req.headers.authorization);
    if (isDerivedToken(accessToken)) throw new KvError("UNAUTHORIZED", "Invalid access token.");
    const name = request.databaseName;
    const { token, expiresAt } = request.principal.deriveToken(
      Date.now() + limits.kvConnectMetadataTtlMs,
    );
    const metadata = {
      version,
      databaseId: request.databaseId,
      endpoints: [{ url: name === null ? "/v2" : `/db/${name}/v2`, consistency: "strong" }],
      token,
      expiresAt: new Date(expiresAt).toISOString(),
    };
    return new Reply(200, "application/json", JSON.stringify(metadata));
  },
};

/** Whether `range` is `@deno/kv`'s read of one key: the first entry from it to the keyspace's end. */
const isKeyReadOfDenoKvNpm = (range: KeyRange) =>
  range.limit === 1 && !range.reverse && range.end.length === 1 && range.end[0] === 0xff;

/**
 * `database.scan(ranges)`. `@deno/kv` (npm) reads a key as the first entry of `[key, 0xFF)` and
 * keeps it only if it is that key; a token whose grants cover the key but not the rest of the
 * keyspace is refused that range whole, so such ranges are then read as the one key they ask
 * for, which answers `@deno/kv` the same (README, KV Connect).
 */
async function scanGranted(database: Database, ranges: KeyRange[]): Promise<RawEntry[][]> {
  try {
    return await database.scan(ranges);
  } catch (error) {
    if (!(error instanceof KvError && error.code === "FORBIDDEN")) throw error;
    if (!ranges.some(isKeyReadOfDenoKvNpm)) throw error;
    return database.scan(
      ranges.map((r) =>
        isKeyReadOfDenoKvNpm(r) ? { ...r, end: concatBytes(r.start, [0x00]) } : r,
      ),
    );
  }
}

/** Deno KV Connect at the server's root: `POST /` and `/v2/…`, and under `/db/<name>`. */
export const kvConnect: Face = {
  name: "kv-connect",
  bases: [""],
  routes: [
    metadataRoute,
    dataRoute(
      "/v2/snapshot_read",
      "snapshot_read",
      "read",
      SnapshotRead,
      async (database, read) => {
        const ranges = read.ranges as Record<string, unknown>[];
        if (ranges.length > limits.maxReadRanges)
          throw bad("Too many read ranges requested in one read request.");
        let total = 0;
        const keyRanges: KeyRange[] = ranges.map((r) => {
          const limit = Number(r.limit);
          if (!(limit > 0))
            throw bad("The read range limit of the snapshot read request is invalid.");
          total += limit;
          return {
            start: key(r.start as Uint8Array, "read"),
            end: key(r.end as Uint8Array, "read"),
            limit,
            reverse: r.reverse === true,
          };
        });
        if (total > limits.maxReadEntries) {
          throw bad(
            "The total number of entries requested across read ranges in the read request is too large.",
          );
        }
        const results = await scanGranted(database, keyRanges);
        return protobufReply(SnapshotReadOutput, {
          ranges: results.map((entries) => ({ values: entries.map(entryToProtobuf) })),
          readIsStronglyConsistent: true,
          status: SnapshotReadStatus.success,
        });
      },
    ),
    dataRoute("/v2/atomic_write", "atomic_write", "write", AtomicWrite, async (database, write) => {
      const checks: Check[] = (write.checks as Record<string, Uint8Array>[]).map((c) => {
        const stamp = c.versionstamp ?? new Uint8Array();
        if (stamp.length !== 0 && stamp.length !== 10) throw bad("Invalid versionstamp.");
        return {
          key: key(c.key ?? new Uint8Array(), "read"),
          versionstamp: stamp.length === 0 ? null : Buffer.from(stamp).toString("hex"),
        };
      });
      const now = Date.now();
      const mutations = [
        ...(write.mutations as Record<string, unknown>[]).map((m) => mutationIn(m, now)),
        ...(write.enqueues as Record<string, unknown>[]).map((e) => enqueueIn(e, now)),
      ];
      const result = await database.commit(
        checkCommit({ checks, mutations }, DENOKV_LIMIT_MESSAGES),
      );
      return protobufReply(
        AtomicWriteOutput,
        result.ok
          ? { status: AtomicWriteStatus.success, versionstamp: stampBytes(result.versionstamp) }
          : { status: AtomicWriteStatus.checkFailure },
      );
    }),
    dataRoute("/v2/watch", "watch", "read", Watch, async (database, watch) => {
      const keys = watch.keys as { key?: Uint8Array }[];
      if (keys.length > limits.maxWatchKeys)
        throw bad("Too many keys watched in a single watch request.");
      return framedWatch(
        database,
        keys.map((k) => {
          const bytes = k.key ?? new Uint8Array();
          if (bytes.length > limits.maxWriteKeyBytes)
            throw bad("A key exceeds the key size limit.");
          return bytes;
        }),
      );
    }),
  ],
  errorReply: (error) => new Reply(error.status, "text/plain", error.message),
};
