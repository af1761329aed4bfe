/** Full-text search (the Buntime seed's "Full-Text Search", reference/seed-systems.md §1.13). */
import { describe, expect, it } from "vitest";
import type { Kv, KvTokenizer } from "../../src/index.js";
import { collect, conformance, until } from "../targets.js";

/** The seed's fixture, with the upstream tests' queries in mind. */
const posts = [
  {
    id: 1,
    title: "Learning TypeScript",
    content: "TypeScript adds types to JavaScript",
    status: "published",
  },
  {
    id: 2,
    title: "React hooks",
    content: "Hooks changed how React apps are written",
    status: "draft",
  },
  {
    id: 3,
    title: "Node.js streams",
    content: "Streams in Node are JavaScript running on the server",
    status: "published",
  },
  {
    id: 4,
    title: "Python for data",
    content: "Python is popular for data science",
    status: "published",
  },
];

async function seed(kv: Kv, prefix: (string | number)[] = ["posts"]) {
  const op = kv.atomic();
  for (const post of posts) op.set([...prefix, post.id], post);
  await op.commit();
}

/** The ids of what a search found, sorted (for tests that are not about ranking). */
async function found(kv: Kv, query: string, prefix = ["posts"]): Promise<unknown[]> {
  const entries = await kv.search<{ id: unknown }>(prefix, query);
  return entries.map((e) => e.value.id).sort();
}

const TOKENIZERS: KvTokenizer[] = ["unicode61", "porter", "ascii"];

conformance("full-text search", (kv) => {
  it("indexes what is already stored when the index is created", async () => {
    await seed(kv());
    await kv().set(["posts"], { title: "the prefix itself is not under it: typescript" });
    await kv().set(["postscript", 1], { title: "nor is a sibling: typescript" });
    expect(await kv().createIndex(["posts"], { fields: ["title", "content"] })).toEqual({
      ok: true,
    });
    const entries = await collect(kv().search(["posts"], "typescript"));
    expect(entries).toEqual([
      { key: ["posts", 1], value: posts[0], versionstamp: expect.stringMatching(/^[0-9a-f]{20}$/) },
    ]);
  });

  it("answers the seed's queries: words, AND, OR, NOT, phrases, prefixes, groups", async () => {
    await kv().createIndex(["posts"], { fields: ["title", "content"] });
    await seed(kv());
    expect(await found(kv(), "JavaScript")).toEqual([1, 3]);
    expect(await found(kv(), "javascript")).toEqual([1, 3]);
    expect(await found(kv(), "JavaScript AND Node")).toEqual([3]);
    expect(await found(kv(), "JavaScript Node")).toEqual([3]);
    expect(await found(kv(), "Python OR TypeScript")).toEqual([1, 4]);
    expect(await found(kv(), "JavaScript NOT Node")).toEqual([1]);
    expect(await found(kv(), "JavaScript -Node")).toEqual([1]);
    expect(await found(kv(), '"data science"')).toEqual([4]);
    expect(await found(kv(), '"science data"')).toEqual([]);
    expect(await found(kv(), "Type*")).toEqual([1]);
    expect(await found(kv(), "node.js")).toEqual([3]);
    expect(await found(kv(), "(Python OR React) AND hooks")).toEqual([2]);
    expect(await found(kv(), "golang")).toEqual([]);
  });

  for (const tokenize of TOKENIZERS) {
    it(`keeps a ${tokenize} index exact through every write path`, async () => {
      await kv().createIndex(["posts"], { fields: ["title", "content"], tokenize });
      // set, and set again with other words
      await kv().set(["posts", 1], { id: 1, title: "alpha" });
      expect(await found(kv(), "alpha")).toEqual([1]);
      await kv().set(["posts", 1], { id: 1, title: "bravo" });
      expect(await found(kv(), "alpha")).toEqual([]);
      expect(await found(kv(), "bravo")).toEqual([1]);
      // atomic sets, a transaction, a versionstamped key
      await kv()
        .atomic()
        .set(["posts", 2], { id: 2, title: "charlie" })
        .set(["posts", 3], { id: 3, title: "charlie delta" })
        .commit();
      expect(await found(kv(), "charlie")).toEqual([2, 3]);
      await kv().transaction(async (tx) => {
        await tx.get(["posts", 2]);
        tx.set(["posts", 2], { id: 2, title: "echo" });
      });
      expect(await found(kv(), "charlie")).toEqual([3]);
      expect(await found(kv(), "echo")).toEqual([2]);
      await kv().set(["posts", kv().commitVersionstamp()], { id: "vs", title: "foxtrot" });
      expect(await found(kv(), "foxtrot")).toEqual(["vs"]);
      // exact delete, filtered delete, prefix delete
      await kv().delete(["posts", 3], { exact: true });
      expect(await found(kv(), "charlie")).toEqual([]);
      await kv().set(["posts", 4], { id: 4, title: "golf", status: "draft" });
      await kv().set(["posts", 5], { id: 5, title: "golf", status: "published" });
      const filtered = await kv().delete(["posts"], { where: { status: "draft" } });
      expect(filtered.deletedCount).toBe(1);
      expect(await found(kv(), "golf")).toEqual([5]);
      await kv().delete(["posts"]);
      expect(await found(kv(), "golf OR echo OR bravo OR foxtrot")).toEqual([]);
      // values that are not JSON text, and read-modify-write mutations
      await kv().set(["posts", 6], new Uint8Array([1, 2, 3]));
      await kv().atomic().sum(["posts", 7], 1n).max(["posts", 8], 5n).commit();
      expect(await found(kv(), "golf")).toEqual([]);
      await kv().set(["posts", 7], { id: 7, title: "hotel" });
      expect(await found(kv(), "hotel")).toEqual([7]);
    });
  }

  it("follows append and prepend, whose values are JSON arrays", async () => {
    await kv().createIndex(["tags"], { fields: ["[0]", "[1]"] });
    await kv().atomic().append(["tags", "a"], ["react"]).commit();
    expect((await kv().search(["tags"], "react")).map((e) => e.key)).toEqual([["tags", "a"]]);
    await kv().atomic().prepend(["tags", "a"], ["vue"]).commit();
    expect((await kv().search(["tags"], "vue AND react")).map((e) => e.key)).toEqual([
      ["tags", "a"],
    ]);
  });

  it("follows writes of dead-lettered messages into keysIfUndelivered", async () => {
    await kv().createIndex(["failed"], { fields: ["reason"] });
    const listener = kv().listenQueue(() => {
      throw new Error("boom");
    });
    await kv().enqueue(
      { id: 9, reason: "mailbox unavailable" },
      { backoffSchedule: [], keysIfUndelivered: [["failed", 9]] },
    );
    await until(async () => (await kv().queueStats()).dlq === 1);
    await listener.stop();
    expect(await found(kv(), "mailbox", ["failed"])).toEqual([9]);
  });

  it("never returns expired entries, and indexes a key written again after expiry anew", async () => {
    await kv().createIndex(["posts"], { fields: ["title"] });
    await kv().set(["posts", 1], { id: 1, title: "ephemeral" }, { expireIn: 100 });
    await kv().set(["posts", 2], { id: 2, title: "ephemeral but lasting" });
    expect(await found(kv(), "ephemeral")).toEqual([1, 2]);
    await until(async () => (await kv().get(["posts", 1])).value === null);
    expect(await found(kv(), "ephemeral")).toEqual([2]);
    // Rewriting the key after expiry indexes the new value only.
    await kv().set(["posts", 1], { id: 1, title: "renewed" });
    expect(await found(kv(), "ephemeral")).toEqual([2]);
    expect(await found(kv(), "renewed")).toEqual([1]);
  });

  it("stems English words with porter only", async () => {
    await kv().createIndex(["stemmed"], { fields: ["text"], tokenize: "porter" });
    await kv().createIndex(["plain"], { fields: ["text"], tokenize: "unicode61" });
    await kv().createIndex(["ascii"], { fields: ["text"], tokenize: "ascii" });
    for (const prefix of ["stemmed", "plain", "ascii"]) {
      await kv().set([prefix, 1], { id: 1, text: "She runs every morning" });
      await kv().set([prefix, 2], { id: 2, text: "Running shoes, CONNECTED devices" });
    }
    expect(await found(kv(), "running", ["stemmed"])).toEqual([1, 2]);
    expect(await found(kv(), "run", ["stemmed"])).toEqual([1, 2]);
    expect(await found(kv(), "connection", ["stemmed"])).toEqual([2]);
    expect(await found(kv(), "running", ["plain"])).toEqual([2]);
    expect(await found(kv(), "run", ["plain"])).toEqual([]);
    expect(await found(kv(), "running", ["ascii"])).toEqual([2]);
    expect(await found(kv(), "connected", ["ascii"])).toEqual([2]);
  });

  it("indexes nested fields, numbers and arrays, not booleans", async () => {
    await kv().createIndex(["people"], {
      fields: ["profile.bio", "profile.links[1]", "skills", "year", "active"],
    });
    await kv().set(["people", 1], {
      id: 1,
      profile: {
        bio: "Compiler engineer",
        links: ["https://a.example", "https://writing.example"],
      },
      skills: ["rust", "wasm"],
      year: 2024,
      active: true,
    });
    await kv().set(["people", 2], { id: 2, profile: { bio: "Gardener" }, skills: "botany" });
    expect(await found(kv(), "compiler", ["people"])).toEqual([1]);
    expect(await found(kv(), "writing", ["people"])).toEqual([1]);
    expect(await found(kv(), "a.example", ["people"])).toEqual([]);
    expect(await found(kv(), "wasm", ["people"])).toEqual([1]);
    expect(await found(kv(), "botany", ["people"])).toEqual([2]);
    expect(await found(kv(), "2024", ["people"])).toEqual([1]);
    expect(await found(kv(), "true", ["people"])).toEqual([]);
  });

  it("ranks by relevance, best first, and honours limit", async () => {
    await kv().createIndex(["docs"], { fields: ["text"] });
    await kv().set(["docs", "a"], {
      text: "A long text that mentions typescript only once among many other different words here",
    });
    await kv().set(["docs", "b"], { text: "typescript typescript typescript" });
    await kv().set(["docs", "c"], { text: "typescript and typescript in a text" });
    await kv().set(["docs", "d"], { text: "nothing relevant" });
    const keys = (entries: { key: readonly unknown[] }[]) => entries.map((e) => e.key[1]);
    expect(keys(await kv().search(["docs"], "typescript"))).toEqual(["b", "c", "a"]);
    expect(keys(await kv().search(["docs"], "typescript", { limit: 1 }))).toEqual(["b"]);
    expect(keys(await kv().search(["docs"], "typescript", { limit: 2 }))).toEqual(["b", "c"]);
  });

  it("filters results with where", async () => {
    await kv().createIndex(["posts"], { fields: ["title", "content"] });
    await seed(kv());
    const published = await kv().search<{ id: number }>(["posts"], "javascript OR react", {
      limit: 10,
      where: { status: "published" },
    });
    expect(published.map((e) => e.value.id).sort()).toEqual([1, 3]);
    const none = await kv().search(["posts"], "react", { where: { status: "published" } });
    expect(none).toEqual([]);
    const two = await kv().search(["posts"], "javascript", {
      where: { $or: [{ id: { $gt: 2 } }, { title: { $contains: "Learn" } }] },
    });
    expect(two).toHaveLength(2);
  });

  it("lists, replaces and removes indexes; nested prefixes have their own", async () => {
    await seed(kv());
    await seed(kv(), ["posts", "archive"]);
    await kv().createIndex(["posts"], { fields: ["title"] });
    await kv().createIndex(["posts", "archive"], { fields: ["content"], tokenize: "porter" });
    expect(await kv().listIndexes()).toEqual([
      { prefix: ["posts"], fields: ["title"], tokenize: "unicode61" },
      { prefix: ["posts", "archive"], fields: ["content"], tokenize: "porter" },
    ]);
    // The outer index covers the archive's entries too; the inner one only its own.
    expect(await found(kv(), "python")).toEqual([4, 4]);
    expect(await found(kv(), "science", ["posts", "archive"])).toEqual([4]);
    expect(await found(kv(), "science")).toEqual([]);
    // Replacing an index re-indexes with the new fields.
    await kv().createIndex(["posts"], { fields: ["content"], tokenize: "ascii" });
    expect(await found(kv(), "science")).toEqual([4, 4]);
    expect(await found(kv(), "learning")).toEqual([]);
    expect((await kv().listIndexes())[0]).toEqual({
      prefix: ["posts"],
      fields: ["content"],
      tokenize: "ascii",
    });
    expect(await kv().removeIndex(["posts"])).toBe(true);
    expect(await kv().removeIndex(["posts"])).toBe(false);
    expect(await kv().listIndexes()).toEqual([
      { prefix: ["posts", "archive"], fields: ["content"], tokenize: "porter" },
    ]);
    await expect(kv().search(["posts"], "science")).rejects.toMatchObject({ code: "NOT_FOUND" });
    // Writes go on as before, and the remaining index follows them.
    await kv().set(["posts", "archive", 9], { id: 9, content: "science fiction" });
    expect(await found(kv(), "science", ["posts", "archive"])).toEqual([4, 9]);
  });

  describe("bad input", () => {
    it("rejects malformed index definitions", async () => {
      const bad = (options: unknown, message: RegExp) =>
        expect(kv().createIndex(["posts"], options as never)).rejects.toMatchObject({
          code: "INVALID_ARGUMENT",
          message: expect.stringMatching(message),
        });
      await bad(undefined, /fields/);
      await bad({}, /fields must be a non-empty array/);
      await bad({ fields: [] }, /fields must be a non-empty array/);
      await bad({ fields: [1] }, /fields\[0\] must be a string/);
      await bad({ fields: ["a..b"] }, /malformed field path/);
      await bad({ fields: ["title"], tokenize: "klingon" }, /tokenize must be/);
      await expect(kv().createIndex("posts" as never, { fields: ["t"] })).rejects.toMatchObject({
        code: "INVALID_KEY",
      });
      expect(await kv().listIndexes()).toEqual([]);
    });

    it("rejects searches without an index, malformed queries and limits", async () => {
      await expect(kv().search(["nothing"], "x")).rejects.toMatchObject({
        code: "NOT_FOUND",
        message: expect.stringContaining('["nothing"]'),
      });
      await kv().createIndex(["posts"], { fields: ["title"] });
      const bad = (query: unknown, message: RegExp, options?: object) =>
        expect(kv().search(["posts"], query as string, options)).rejects.toMatchObject({
          code: "INVALID_ARGUMENT",
          message: expect.stringMatching(message),
        });
      await bad("", /no words/);
      await bad("   ", /no words/);
      await bad(42, /query must be a string/);
      await bad('"open phrase', /closing quote/);
      await bad("NOT react", /NOT/);
      await bad("react OR", /operator/);
      await bad("(react", /closing one/);
      await bad("react)", /opening one/);
      await bad("!!!", /no letters or digits/);
      await bad("x".repeat(3000), /at most 2048 characters/);
      await bad("react", /limit/, { limit: 0 });
      await bad("react", /limit/, { limit: 1001 });
      await bad("react", /limit/, { limit: 1.5 });
      await expect(
        kv().search(["posts"], "react", { where: { title: { $regex: "x" } } as never }),
      ).rejects.toMatchObject({ code: "INVALID_FILTER" });
    });
  });
});
