import { once } from "node:events";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openKv } from "../src/index.js";
import { startServer } from "../src/server/server.js";
import { runCairn as cairn } from "./cairn-cli.js";
import { describeEach, serverForTests, storages, until } from "./targets.js";

const TOKEN = /^ck\.[^.]+\.[A-Za-z0-9_-]{43}$/;
const ISO = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/;
const SHOWN_ONCE = (name: string) =>
  `This token is shown only now: it cannot be shown again (if it is lost, revoke ${name} and create another).`;
const DAY = 86_400_000;

/** A status of `GET /api/keys/<path>` on `url` with `token`. */
const statusOf = async (url: string, token: string, path: string) =>
  (await fetch(`${url}/api/keys/${path}`, { headers: { authorization: `Bearer ${token}` } }))
    .status;

describeEach(storages, "cairn token --data", (storage) => {
  it("creates principals on a database a server then started on it accepts: reads inside the grant, 403 outside; revoke holds on that server", async () => {
    const { data, drop } = await storage.open();
    try {
      const seed = await openKv(data);
      await seed.set(["users", "ana", "profile"], "Ana");
      await seed.set(["users", "bob", "profile"], "Bob");
      await seed.close();

      const created = await cairn([
        "token",
        "create",
        "ana",
        "--data",
        data,
        "--read",
        "users/ana",
        "--json",
      ]);
      expect(created).toMatchObject({ code: 0, err: "" });
      const ana = JSON.parse(created.out);
      expect(ana).toEqual({
        name: "ana",
        token: expect.stringMatching(TOKEN),
        grants: [{ prefix: ["users", "ana"], access: "read" }],
        admin: false,
        createdAt: expect.stringMatching(ISO),
        expiresAt: null,
      });
      const text = await cairn([
        ...["token", "create", "logger", "--data", data, "--readwrite", "logs", "--queue"],
        ...["--expires", "30d"],
      ]);
      expect(text.code).toBe(0);
      const [token, warning, line, ...rest] = text.out.split("\n");
      expect(token).toMatch(TOKEN);
      expect(warning).toBe(SHOWN_ONCE("logger"));
      const [, created2, expires] =
        /^logger\treadwrite logs, queue\tcreated (\S+)\texpires (\S+)$/.exec(line!)!;
      expect(Date.parse(expires!) - Date.parse(created2!)).toBe(30 * DAY);
      expect(rest).toEqual([]);

      const listed = await cairn(["token", "list", "--data", data]);
      expect(listed.code).toBe(0);
      expect(listed.out.split("\n")).toEqual([
        `ana\tread users/ana\tcreated ${ana.createdAt}\texpires never`,
        line,
      ]);

      const server = await startServer({
        host: "127.0.0.1",
        port: 0,
        data,
        auth: true,
        token: "admin-token-1234",
      });
      try {
        const kv = await openKv(server.url, { accessToken: ana.token });
        expect((await kv.get(["users", "ana", "profile"])).value).toBe("Ana");
        await expect(kv.get(["users", "bob", "profile"])).rejects.toMatchObject({
          code: "FORBIDDEN",
        });
        await expect(kv.set(["users", "ana", "profile"], "changed")).rejects.toMatchObject({
          code: "FORBIDDEN",
        });
        await kv.close();
        expect(await statusOf(server.url, ana.token, "users/bob/profile")).toBe(403);
        const admin = await openKv(server.url, { accessToken: "admin-token-1234" });
        expect((await admin.get(["users", "ana", "profile"])).value).toBe("Ana");
        await admin.close();
        const logger = await openKv(server.url, { accessToken: token! });
        expect((await logger.set(["logs", 1], "started")).ok).toBe(true);
        expect((await logger.get(["logs", 1])).value).toBe("started");
        await logger.close();

        // Revoked on the database itself while the server runs: the server refuses the token
        // once its copy of the principal is older than limits.tokenCacheMs.
        expect(await cairn(["token", "revoke", "ana", "--data", data])).toEqual({
          code: 0,
          out: "revoked ana",
          err: "",
        });
        await until(
          async () => (await statusOf(server.url, ana.token, "users/ana/profile")) === 401,
        );
        expect((await cairn(["token", "list", "--data", data])).out).toBe(line);
      } finally {
        await server.close();
      }
    } finally {
      await drop();
    }
  });
});

describe("cairn token --data (SQLite file)", () => {
  it("refuses a location that holds no database, without making one", async () => {
    const data = join(tmpdir(), `cairn-none-${process.pid}-${Date.now()}.db`);
    for (const args of [["list"], ["create", "ana", "--read", "users"], ["revoke", "ana"]]) {
      expect(await cairn(["token", ...args, "--data", data])).toEqual({
        code: 1,
        out: "",
        err: `cairn: No Cairn database at ${data}: check --data, or start \`cairn serve\` on it once to create it (NOT_FOUND)`,
      });
    }
    expect(existsSync(data)).toBe(false);
  });

  it("refuses bad flags, a taken name and an unknown one with a message, exit code 1, and no change", async () => {
    const { data, drop } = await storages[0]!.open();
    try {
      const seed = await openKv(data);
      await seed.close();
      expect((await cairn(["token", "create", "ana", "--data", data, "--write", ""])).code).toBe(0);
      const before = (await cairn(["token", "list", "--data", data, "--json"])).out;
      expect(JSON.parse(before).tokens).toHaveLength(1);
      const refusals: [string[], unknown][] = [
        [
          ["create", "ana"],
          'A principal named "ana" exists: revoke it first, or choose another name (ALREADY_EXISTS)',
        ],
        [
          ["create", "bo", "--read", "bigint:x"],
          'Key part 0 ("bigint:x") is not a valid bigint (INVALID_KEY)',
        ],
        [
          ["create", "bo", "--expires", "3parsecs"],
          'Invalid duration format for --expires: "3parsecs"; use milliseconds (e.g. 1000) or a string like "500ms", "30s", "5m", "1h", "7d" (INVALID_ARGUMENT)',
        ],
        [["create", "bo", "--expires", "0"], "--expires must be more than 0 (INVALID_ARGUMENT)"],
        [
          ["create", "bo", "--queue", "--database", "Shop"],
          "Invalid database name: use 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit. (INVALID_ARGUMENT)",
        ],
        [
          ["create", "bo", "--database", "shop"],
          "--database scopes this command's grants: give --read, --write, --readwrite or --queue too (INVALID_ARGUMENT)",
        ],
        [
          ["create", "admin", "--admin"],
          '"admin" is the server\'s own token (--token): choose another name (INVALID_ARGUMENT)',
        ],
        [["create", "bad/name"], expect.stringContaining("A principal's name is 1 to 128 letters")],
        [
          ["list", "--url", "http://127.0.0.1:8000"],
          "--data and --url do not go together: --data works on the database itself, with no server (INVALID_ARGUMENT)",
        ],
        [
          ["revoke", "ana", "--token", "x"],
          "--data and --token do not go together: --data works on the database itself, with no server (INVALID_ARGUMENT)",
        ],
        [["revoke", "nobody"], 'No principal named "nobody" (NOT_FOUND)'],
      ];
      // Run side by side, as several processes over one file may.
      const results = await Promise.all(
        refusals.map(([args]) => cairn(["token", ...args, "--data", data])),
      );
      refusals.forEach(([args, message], i) => {
        expect({ args, ...results[i] }).toEqual({
          args,
          code: 1,
          out: "",
          err: typeof message === "string" ? `cairn: ${message}` : message,
        });
      });
      expect((await cairn(["token", "list", "--data", data, "--json"])).out).toBe(before);
    } finally {
      await drop();
    }
  });
});

describe("cairn token --url", () => {
  const ADMIN = "admin-token-for-cli-tests";
  const server = serverForTests(ADMIN);
  const env = () => ({ CAIRN_URL: server().url, CAIRN_TOKEN: ADMIN });
  /** The admin API's own answer to `GET /admin/tokens`. */
  const apiList = async () =>
    (
      await fetch(`${server().url}/admin/tokens`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).json();

  it("creates, lists and revokes through the admin API, --json printing its answers; a revoked token is refused", async () => {
    expect(await cairn(["token", "list"], env())).toEqual({ code: 0, out: "(none)", err: "" });
    const empty = await cairn(["token", "list", "--json"], env());
    expect(JSON.parse(empty.out)).toEqual({ tokens: [] });

    const created = await cairn(
      [
        ...["token", "create", "ana", "--readwrite", "users/ana", "--read", ""],
        ...["--queue", "--database", "shop", "--expires", "1h", "--json"],
      ],
      env(),
    );
    expect(created).toMatchObject({ code: 0, err: "" });
    const ana = JSON.parse(created.out);
    expect(ana).toEqual({
      name: "ana",
      token: expect.stringMatching(TOKEN),
      grants: [
        { prefix: [], access: "read", database: "shop" },
        { prefix: ["users", "ana"], access: "readwrite", database: "shop" },
        { queue: true, database: "shop" },
      ],
      admin: false,
      createdAt: expect.stringMatching(ISO),
      expiresAt: new Date(Date.parse(ana.createdAt) + 3_600_000).toISOString(),
    });
    const { token: _, ...anaInfo } = ana;
    expect(await apiList()).toEqual({ tokens: [anaInfo] });

    const boss = await cairn(["token", "create", "boss", "--admin"], env());
    expect(boss.code).toBe(0);
    const [bossToken, warning, bossLine] = boss.out.split("\n");
    expect(bossToken).toMatch(TOKEN);
    expect(warning).toBe(SHOWN_ONCE("boss"));
    expect(bossLine).toMatch(new RegExp(`^boss\tadmin\tcreated ${ISO.source}\texpires never$`));

    const listed = await cairn(["token", "list"], env());
    expect(listed.out.split("\n")).toEqual([
      `ana\tread "" (database shop), readwrite users/ana (database shop), queue (database shop)\tcreated ${ana.createdAt}\texpires ${ana.expiresAt}`,
      bossLine,
    ]);
    expect(JSON.parse((await cairn(["token", "list", "--json"], env())).out)).toEqual(
      await apiList(),
    );

    // The grants hold in the database shop only; --admin gives everything, the admin API too.
    const shop = await openKv(`${server().url}/db/shop`, { accessToken: ana.token });
    expect((await shop.set(["users", "ana", "cart"], 1)).ok).toBe(true);
    await expect(shop.set(["users", "bob", "cart"], 1)).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await shop.close();
    const main = await openKv(server().url, { accessToken: ana.token });
    await expect(main.get(["users", "ana", "cart"])).rejects.toMatchObject({ code: "FORBIDDEN" });
    await main.close();
    expect(await statusOf(server().url, bossToken!, "users/x")).toBe(404);
    const viaBoss = await cairn(["token", "list", "--json", "--token", bossToken!], env());
    expect(JSON.parse(viaBoss.out)).toEqual(await apiList());

    expect(await statusOf(`${server().url}/db/shop`, ana.token, "users/ana/cart")).toBe(200);
    expect(await cairn(["token", "revoke", "ana"], env())).toEqual({
      code: 0,
      out: "revoked ana",
      err: "",
    });
    // The server that revoked it refuses it at once.
    expect(await statusOf(`${server().url}/db/shop`, ana.token, "users/ana/cart")).toBe(401);
    expect(await cairn(["token", "revoke", "ana"], env())).toEqual({
      code: 1,
      out: "",
      err: 'cairn: No principal named "ana" (NOT_FOUND)',
    });
    const revoked = await cairn(["token", "revoke", "boss", "--json"], env());
    expect(JSON.parse(revoked.out)).toEqual({ revoked: "boss" });
    expect(await statusOf(server().url, bossToken!, "users/x")).toBe(401);
    expect(await cairn(["token", "list"], env())).toMatchObject({ code: 0, out: "(none)" });
  });

  it("refuses a taken name, a non-admin token, a wrong or missing token and bad flags with a message and exit code 1, changing nothing", async () => {
    const reader = JSON.parse(
      (await cairn(["token", "create", "reader", "--read", "users", "--json"], env())).out,
    );
    const before = await apiList();
    const refusals: [string[], Record<string, string>, string][] = [
      [
        ["create", "reader", "--write", "users"],
        env(),
        'A principal named "reader" exists: revoke it first, or choose another name (ALREADY_EXISTS)',
      ],
      [
        ["create", "sneaky", "--admin"],
        { ...env(), CAIRN_TOKEN: reader.token },
        `${server().url} refused the token: only an admin token manages principals (the server's --token, or the token of a principal created with --admin) (FORBIDDEN)`,
      ],
      [
        ["revoke", "reader"],
        { ...env(), CAIRN_TOKEN: reader.token },
        `${server().url} refused the token: only an admin token manages principals (the server's --token, or the token of a principal created with --admin) (FORBIDDEN)`,
      ],
      [["list"], { ...env(), CAIRN_TOKEN: "wrong" }, "Invalid access token. (UNAUTHORIZED)"],
      [
        ["list"],
        { CAIRN_URL: server().url },
        `${server().url} needs an access token: pass --token or set CAIRN_TOKEN (\`cairn serve\` prints the token and saves it beside its data) (UNAUTHORIZED)`,
      ],
      [
        ["create", "x", "--readwrite", "bool:maybe"],
        env(),
        'Key part 0 ("bool:maybe") is not a valid bool (INVALID_KEY)',
      ],
      [
        ["create", "x", "--expires", "soon"],
        env(),
        'Invalid duration format for --expires: "soon"; use milliseconds (e.g. 1000) or a string like "500ms", "30s", "5m", "1h", "7d" (INVALID_ARGUMENT)',
      ],
    ];
    const results = await Promise.all(
      refusals.map(([args, withEnv]) => cairn(["token", ...args], withEnv)),
    );
    refusals.forEach(([args, , message], i) => {
      expect({ args, ...results[i] }).toEqual({ args, code: 1, out: "", err: `cairn: ${message}` });
    });
    expect(await apiList()).toEqual(before);
    expect(await statusOf(server().url, reader.token, "users/1")).toBe(404);
    expect((await cairn(["token", "revoke", "reader"], env())).code).toBe(0);
  });

  it("says when the server cannot be reached", async () => {
    const closed = createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const { port } = closed.address() as { port: number };
    closed.close();
    await once(closed, "close");
    const url = `http://127.0.0.1:${port}`;
    expect(await cairn(["token", "list", "--url", url, "--token", ADMIN])).toEqual({
      code: 1,
      out: "",
      err: `cairn: Cannot reach the Cairn server at ${url}: connect ECONNREFUSED 127.0.0.1:${port} (UNAVAILABLE)`,
    });
  });
});
