import { existsSync } from "node:fs";
import Database from "better-sqlite3";
import { openKv } from "../dist/index.js";

const path = "/tmp/wrk/q.db";
if (!existsSync(path)) {
  const kv = await openKv(path, { durability: "relaxed" });
  for (let from = 0; from < 100000; from += 1000) {
    const op = kv.atomic();
    for (let i = from; i < from + 1000; i++)
      op.set(["q", i], { i, group: i % 100 === 0 ? "hit" : "miss", pad: "x".repeat(60) });
    await op.commit();
  }
  await kv.close();
}
const d = new Database(path);
console.log(d.prepare("select typeof(data), length(data), encoding from kv limit 1").get());
const lo = Buffer.from([0x02, 0x71, 0x00]),
  hi = Buffer.from([0x02, 0x71, 0x01]);
const now = Date.now();
const q = (name, where, ...p) => {
  const st = d
    .prepare(
      `SELECT count(*) FROM kv WHERE key >= ? AND key < ? AND (expires_at IS NULL OR expires_at > ?) AND ${where}`,
    )
    .pluck();
  st.get(lo, hi, now, ...p);
  const t = performance.now();
  let n;
  for (let i = 0; i < 10; i++) n = st.get(lo, hi, now, ...p);
  console.log(name.padEnd(30), ((performance.now() - t) / 10).toFixed(2), "ms", n);
};
q("plain", "1");
q("encoding", "encoding = 4");
q("length(data)", "length(data) > 0");
q("instr", "instr(data, ?) > 0", '"hit"');
q("instr blob", "instr(CAST(data AS BLOB), ?) > 0", Buffer.from('"hit"'));
q("like", "data LIKE ?", '%"hit"%');
q("glob", "data GLOB ?", '*"hit"*');
q("json_extract", "json_extract(data, '$.group') = 'hit'");
q("->>", "data ->> '$.group' = 'hit'");
q(
  "full",
  `(encoding = 4 AND (instr(data, ?) > 0 AND (json_extract((CASE WHEN encoding = 4 THEN data END), ?) = ? AND ifnull(json_type((CASE WHEN encoding = 4 THEN data END), ?), '') = 'text')))`,
  '"hit"',
  '$."group"',
  "hit",
  '$."group"',
);
const full = `(encoding = 4 AND (instr(data, ?) > 0 AND (json_extract((CASE WHEN encoding = 4 THEN data END), ?) = ? AND ifnull(json_type((CASE WHEN encoding = 4 THEN data END), ?), '') = 'text')))`;
const ls = d
  .prepare(
    `SELECT key, data, encoding, versionstamp FROM kv WHERE key >= ? AND key < ? AND (expires_at IS NULL OR expires_at > ?) AND ${full} ORDER BY key LIMIT ?`,
  )
  .raw();
const P = ['"hit"', '$."group"', "hit", '$."group"'];
ls.all(lo, hi, now, ...P, 1000);
let t = performance.now();
for (let i = 0; i < 10; i++) ls.all(lo, hi, now, ...P, 1000);
console.log("list stmt", ((performance.now() - t) / 10).toFixed(2), "ms");
const { openKv: o2 } = await import("../dist/index.js");
const kv = await o2(path);
const run = async () => {
  let n = 0;
  for await (const _ of kv.list(["q"], { where: { group: "hit" }, batchSize: 1000 })) n++;
  return n;
};
await run();
t = performance.now();
for (let i = 0; i < 10; i++) await run();
console.log("kv.list where", ((performance.now() - t) / 10).toFixed(2), "ms");
const run2 = async () => {
  let n = 0;
  for await (const _ of kv.list(["q"], { where: { group: "hit" }, batchSize: 1000, limit: 1000 }))
    n++;
  return n;
};
t = performance.now();
for (let i = 0; i < 10; i++) await run2();
console.log("kv.list where limit", ((performance.now() - t) / 10).toFixed(2), "ms");
await kv.close();
