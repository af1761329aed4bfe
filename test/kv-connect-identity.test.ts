/**
 * Deno KV Connect with a restricted principal's token (`ck.…`, readwrite on ["users","ana"]):
 * Deno itself (`Deno.openKv` with DENO_KV_ACCESS_TOKEN) and `@deno/kv` read, write, list and
 * commit inside the grant and are refused outside it, applying nothing; the metadata exchange's
 * derived token (`cairn1.…`) carries the principal, and dies with it. On a SQLite file and on
 * PostgreSQL.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { openKv as openDenoKv } from "@deno/kv";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeKey, type KvKey } from "../src/codec/key-codec.js";
import { type Kv, openKv } from "../src/index.js";
import { decodeV8, encodeV8 } from "./deno-kv-codec.js";
import { collect, describeEach, serverForTests, storages } from "./targets.js";

const TOKEN = "kv-connect-identity-admin-token";
const DENO = join(__dirname, "..", "node_modules", ".bin", "deno");
const ANA = [{ prefix: ["users", "ana"], access: "readwrite" }];

/**
 * Run by Deno with a restricted token: works inside ["users","ana","deno"], then tries three
 * things outside the grant; prints one JSON line, each refusal as Deno's error message.
 */
const DENO_SCRIPT = `
const kv = await Deno.openKv(Deno.args[0]);
const refusal = async (f) => {
  try {
    await f();
    return "not refused";
  } catch (e) {
    return e.message;
  }
};
const out = {};
out.set = (await kv.set(["users", "ana", "deno", 1], { from: "deno" })).ok;
const entry = await kv.get(["users", "ana", "deno", 1]);
out.get = entry.value;
out.atomic = (await kv.atomic().check(entry).set(["users", "ana", "deno", 2], 2n).commit()).ok;
out.list = [];
for await (const e of kv.list({ prefix: ["users", "ana", "deno"] })) out.list.push([e.key, String(e.value?.from ?? e.value)]);
out.outsideGet = await refusal(() => kv.get(["users", "bob"]));
out.outsideList = await refusal(async () => {
  for await (const _ of kv.list({ prefix: ["users"] }));
});
out.outsideAtomic = await refusal(() =>
  kv.atomic().set(["users", "ana", "deno", 3], 3).set(["users", "bob"], "mallory").commit(),
);
console.log(JSON.stringify(out));
kv.close();
`;

const proto = protobuf.loadSync(join(__dirname, "..", "proto", "kv-connect.proto"));
const type = (name: string) => proto.lookupType(`com.deno.kv.datapath.${name}`);
const SnapshotRead = type("SnapshotRead");
const SnapshotReadOutput = type("SnapshotReadOutput");
const AtomicWrite = type("AtomicWrite");
const Watch = type("Watch");
const WatchOutput = type("WatchOutput");
const encode = (messageType: protobuf.Type, message: Record<string, unknown>) =>
  Buffer.from(messageType.encode(messageType.fromObject(message)).finish());

/** A snapshot read of the one key `key`. */
const readOf = (key: KvKey) => {
  const start = encodeKey(key);
  return encode(SnapshotRead, {
    ranges: [{ start, end: Buffer.concat([start, Buffer.from([0])]), limit: 1 }],
  });
};
/** A snapshot read of the raw bounds `[start, end)`. */
const rawReadOf = (start: number[], end: number[]) =>
  encode(SnapshotRead, {
    ranges: [{ start: Buffer.from(start), end: Buffer.from(end), limit: 10 }],
  });

/** The refused read of ["users","bob"], as KV Connect answers it: its status and plain text. */
const REFUSED_BOB = {
  status: 403,
  contentType: "text/plain",
  text: 'This token may not read the range ["users","bob"] to ["users","bob"] + 0x00: no grant covers all of it (a range is refused whole, never narrowed)',
};

describeEach(storages, "KV Connect with a restricted token", (storage) => {
  const server = serverForTests(TOKEN, storage);
  let admin: Kv;
  let dir: string;

  /** POSTs to the admin API; the answer's JSON, after checking its status. */
  const adminApi = async (method: string, path: string, status: number, body?: unknown) => {
    const response = await fetch(`${server().url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    expect(response.status, text).toBe(status);
    return JSON.parse(text);
  };
  const principal = async (name: string): Promise<string> =>
    (await adminApi("POST", "/admin/tokens", 201, { name, grants: ANA })).token;

  /** POSTs `body` to `path` with `token`; the status, content type and text of the answer. */
  const post = async (
    path: string,
    token: string,
    body: string | Buffer,
    headers: Record<string, string> = {},
  ) => {
    const response = await fetch(`${server().url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, ...headers },
      body,
    });
    return {
      status: response.status,
      contentType: response.headers.get("content-type"),
      text: response.status === 200 ? "" : await response.text(),
      bytes: response.status === 200 ? Buffer.from(await response.arrayBuffer()) : Buffer.alloc(0),
    };
  };
  /** The metadata exchange with `token` at `/` (or `/db/<name>`). */
  const metadata = async (token: string, path = "/") => {
    const answer = await post(path, token, '{"supportedVersions":[3]}');
    expect(answer.status, answer.text).toBe(200);
    return JSON.parse(answer.bytes.toString()) as { token: string; databaseId: string };
  };
  const dataPath = (path: string, derived: string, databaseId: string, body: Buffer) =>
    post(path, derived, body, {
      "content-type": "application/x-protobuf",
      "x-denokv-version": "3",
      "x-denokv-database-id": databaseId,
    });
  /** The users' entries as the admin sees them. */
  const users = async () =>
    (await collect(admin.list({ prefix: ["users"] }))).map((e) => [e.key, e.value]);

  beforeAll(async () => {
    admin = await openKv(server().url, { accessToken: TOKEN });
    await admin.set(["users", "bob"], "Bob");
    dir = await mkdtemp(join(tmpdir(), "cairn-kv-connect-identity-"));
  });
  afterAll(async () => {
    await admin.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("lets Deno.openKv read, write, list and commit inside the grant, and refuses it outside", async () => {
    const token = await principal("deno-ana");
    const script = join(dir, "restricted.ts");
    await writeFile(script, DENO_SCRIPT);
    const { stdout } = await promisify(execFile)(
      DENO,
      ["run", "--unstable-kv", "-A", script, server().url],
      {
        env: { ...process.env, DENO_KV_ACCESS_TOKEN: token, DENO_NO_UPDATE_CHECK: "1" },
        timeout: 60_000,
      },
    );
    const refusedBy = (text: string) => expect.stringContaining(`(status=403 Forbidden): ${text}`);
    expect(JSON.parse(stdout)).toEqual({
      set: true,
      get: { from: "deno" },
      atomic: true,
      list: [
        [["users", "ana", "deno", 1], "deno"],
        [["users", "ana", "deno", 2], "2"],
      ],
      outsideGet: refusedBy(REFUSED_BOB.text),
      outsideList: refusedBy(
        'This token may not read the keys under ["users"]: no grant covers all of it (a range is refused whole, never narrowed)',
      ),
      outsideAtomic: refusedBy(
        'This token may not write the key ["users","bob"]: no grant covers it',
      ),
    });
    // What the refused atomic held was applied in no part.
    expect((await admin.get(["users", "ana", "deno", 3])).versionstamp).toBeNull();
    expect((await admin.get(["users", "bob"])).value).toBe("Bob");
    expect((await admin.get(["users", "ana", "deno", 2])).value).toBe(2n);
  });

  it("lets @deno/kv write, list and commit inside the grant, and refuses it outside", async () => {
    const token = await principal("node-ana");
    const kv = await openDenoKv(server().url, { accessToken: token, encodeV8, decodeV8 });
    try {
      const set = await kv.set(["users", "ana", "node", 1], "one");
      expect(set.ok).toBe(true);
      const committed = await kv
        .atomic()
        .check({ key: ["users", "ana", "node", 1], versionstamp: set.versionstamp })
        .set(["users", "ana", "node", 2], "two")
        .delete(["users", "ana", "node", 1])
        .commit();
      expect(committed.ok).toBe(true);
      const listed: unknown[] = [];
      for await (const e of kv.list({ prefix: ["users", "ana", "node"] }))
        listed.push([e.key, e.value]);
      expect(listed).toEqual([[["users", "ana", "node", 2], "two"]]);

      const before = await users();
      await expect(kv.get(["users", "bob"])).rejects.toThrow(
        "Unexpected response status: 403 This token may not read",
      );
      await expect(
        (async () => {
          for await (const _ of kv.list({ prefix: ["users"] }));
        })(),
      ).rejects.toThrow(
        // @deno/kv lists a prefix from the prefix itself, so the key ["users"] is asked for too.
        'Unexpected response status: 403 This token may not read the keys at or under ["users"]: no grant covers all of it (a range is refused whole, never narrowed)',
      );
      await expect(
        kv.atomic().set(["users", "ana", "node", 3], 3).set(["users", "bob"], "mallory").commit(),
      ).rejects.toThrow(
        'Unexpected response status: 403 This token may not write the key ["users","bob"]: no grant covers it',
      );
      // A check outside the grant is a read outside it: refused, nothing applied.
      await expect(
        kv
          .atomic()
          .check({ key: ["users", "bob"], versionstamp: null })
          .set(["users", "ana", "node", 4], 4)
          .commit(),
      ).rejects.toThrow(
        'Unexpected response status: 403 This token may not read the key ["users","bob"]: no grant covers it',
      );
      await expect(kv.enqueue("job")).rejects.toThrow(
        "Unexpected response status: 403 This token may not use the queue: it has no queue grant",
      );
      expect(await users()).toEqual(before);
    } finally {
      kv.close();
    }
  });

  // @deno/kv reads one key as the range [key, 0xFF) with limit 1 (its computeReadRangeForKey),
  // which reaches past every prefix grant: KV Connect reads such a range as that key.
  it("lets @deno/kv get and getMany keys inside the grant", async () => {
    const token = await principal("node-get-ana");
    const kv = await openDenoKv(server().url, { accessToken: token, encodeV8, decodeV8 });
    try {
      await kv.set(["users", "ana", "get"], "got");
      expect((await kv.get(["users", "ana", "get"])).value).toBe("got");
      const many = await kv.getMany([
        ["users", "ana", "get"],
        ["users", "ana", "missing"],
      ]);
      expect(many.map((e) => e.value)).toEqual(["got", null]);
    } finally {
      kv.close();
    }
  });

  it("carries the principal in the metadata exchange's derived token", async () => {
    const token = await principal("derived-ana");
    const { token: derived, databaseId } = await metadata(token);
    expect(derived).toMatch(/^cairn1\.\d+\.[A-Za-z0-9_-]+\.derived-ana$/);
    await admin.set(["users", "ana"], "Ana");

    const inside = await dataPath(
      "/v2/snapshot_read",
      derived,
      databaseId,
      readOf(["users", "ana"]),
    );
    expect(inside.status).toBe(200);
    const output = SnapshotReadOutput.toObject(SnapshotReadOutput.decode(inside.bytes), {
      defaults: true,
    });
    expect(output.ranges[0].values.map((v: { key: Buffer }) => [...v.key])).toEqual([
      ...[[...encodeKey(["users", "ana"])]],
    ]);

    const outside = await dataPath(
      "/v2/snapshot_read",
      derived,
      databaseId,
      readOf(["users", "bob"]),
    );
    expect({
      status: outside.status,
      contentType: outside.contentType,
      text: outside.text,
    }).toEqual(REFUSED_BOB);
    const before = await users();
    const write = await dataPath(
      "/v2/atomic_write",
      derived,
      databaseId,
      encode(AtomicWrite, {
        mutations: [
          {
            key: encodeKey(["users", "ana", "raw"]),
            value: { data: encodeV8(1), encoding: 1 },
            mutationType: 1,
          },
          {
            key: encodeKey(["users", "bob"]),
            value: { data: encodeV8("mallory"), encoding: 1 },
            mutationType: 1,
          },
        ],
      }),
    );
    expect({ status: write.status, contentType: write.contentType, text: write.text }).toEqual({
      status: 403,
      contentType: "text/plain",
      text: 'This token may not write the key ["users","bob"]: no grant covers it',
    });
    expect(await users()).toEqual(before);
    // A forged name on a signature made for another principal is no token at all.
    const forged = derived.replace(/\.derived-ana$/, ".node-ana");
    const answer = await dataPath(
      "/v2/snapshot_read",
      forged,
      databaseId,
      readOf(["users", "ana"]),
    );
    expect({ status: answer.status, text: answer.text }).toEqual({
      status: 401,
      text: "Invalid access token.",
    });
    // The admin's own derived token names no principal, and is not the restricted one's.
    expect((await metadata(TOKEN)).token).toMatch(/^cairn1\.\d+\.[A-Za-z0-9_-]+$/);
  });

  /** A `/v2/watch` of `keys` with `derived`: its status, and what arrived before it ended or 1 s passed. */
  const watch = async (derived: string, databaseId: string, keys: KvKey[]) => {
    const controller = new AbortController();
    const response = await fetch(`${server().url}/v2/watch`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${derived}`,
        "x-denokv-version": "3",
        "x-denokv-database-id": databaseId,
      },
      body: encode(Watch, { keys: keys.map((key) => ({ key: encodeKey(key) })) }),
      signal: controller.signal,
    });
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => controller.abort(), 1000);
    try {
      const reader = response.body!.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        received = Buffer.concat([received, value]);
      }
    } catch {
      // aborted by the timer, or the server broke the connection off
    } finally {
      clearTimeout(timer);
    }
    return { status: response.status, contentType: response.headers.get("content-type"), received };
  };

  it("streams a watch inside the grant, and never a frame of a watch reaching outside it", async () => {
    const token = await principal("watch-ana");
    const { token: derived, databaseId } = await metadata(token);
    await admin.set(["users", "ana"], "Ana");
    const inside = await watch(derived, databaseId, [["users", "ana"]]);
    expect(inside.status).toBe(200);
    const length = inside.received.readUInt32LE(0);
    const first = WatchOutput.toObject(
      WatchOutput.decode(inside.received.subarray(4, 4 + length)),
      { defaults: true },
    );
    expect(first.keys[0].entryIfChanged.value).toEqual(Buffer.from(encodeV8("Ana")));
    for (const keys of [
      [["users", "bob"]],
      [
        ["users", "ana"],
        ["users", "bob"],
      ],
    ] as KvKey[][]) {
      const outside = await watch(derived, databaseId, keys);
      expect({ keys, status: outside.status, text: outside.received.toString() }).toEqual({
        keys,
        status: 403,
        text: expect.stringMatching(/^This token may not read the range \["users","bob"\]/),
      });
    }
  });

  it("refuses a watch reaching outside the grant with 403 before any frame", async () => {
    const token = await principal("watch-ana-2");
    const { token: derived, databaseId } = await metadata(token);
    const outside = await watch(derived, databaseId, [["users", "bob"]]);
    expect({ status: outside.status, contentType: outside.contentType }).toEqual({
      status: 403,
      contentType: "text/plain",
    });
  });

  it("refuses a revoked principal's derived token, and its token at the metadata exchange", async () => {
    const token = await principal("revoked-ana");
    const { token: derived, databaseId } = await metadata(token);
    const read = () => dataPath("/v2/snapshot_read", derived, databaseId, readOf(["users", "ana"]));
    expect((await read()).status).toBe(200);
    await adminApi("DELETE", "/admin/tokens/revoked-ana", 200);
    const refused = { status: 401, contentType: "text/plain", text: "Invalid access token." };
    const after = await read();
    expect({ status: after.status, contentType: after.contentType, text: after.text }).toEqual(
      refused,
    );
    const again = await post("/", token, '{"supportedVersions":[3]}');
    expect({ status: again.status, contentType: again.contentType, text: again.text }).toEqual(
      refused,
    );
    // A new principal of the same name has a new secret: the old derived token stays refused.
    await principal("revoked-ana");
    expect((await read()).status).toBe(401);
  });

  it("refuses the metadata exchange of a database the principal may not write in, creating nothing", async () => {
    // It may read everywhere, and write nowhere.
    const token = (
      await adminApi("POST", "/admin/tokens", 201, {
        name: "no-db-ana",
        grants: [{ prefix: ["users", "ana"], access: "read" }],
      })
    ).token;
    const answer = await post("/db/nowhere", token, '{"supportedVersions":[3]}');
    expect({ status: answer.status, contentType: answer.contentType, text: answer.text }).toEqual({
      status: 403,
      contentType: "text/plain",
      text: "This token may not write in the database nowhere, so its first write cannot create it",
    });
    const list = await fetch(`${server().url}/db/nowhere/api/keys`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(list.status).toBe(404);
  });

  describe("the system keyspace", () => {
    it("refuses the admin's own snapshot reads that reach the principals' keys", async () => {
      await principal("system-ana");
      const { token: derived, databaseId } = await metadata(TOKEN);
      for (const [start, end] of [
        [[0xff], [0xff, 0xff]],
        [[0x00], [0xff, 0x00]],
      ]) {
        const answer = await dataPath(
          "/v2/snapshot_read",
          derived,
          databaseId,
          rawReadOf(start!, end!),
        );
        expect({ start, status: answer.status, text: answer.text }).toEqual({
          start,
          status: 403,
          text: "Keys starting with the byte 0xFF are Cairn's own: no token reads or writes them",
        });
      }
      // The whole user keyspace reads, and holds no principal.
      const whole = await dataPath(
        "/v2/snapshot_read",
        derived,
        databaseId,
        rawReadOf([0x00], [0xff]),
      );
      expect(whole.status).toBe(200);
      expect(whole.bytes.includes("system-ana")).toBe(false);
    });
  });
});
