/**
 * The server a user would hand-roll on node:http and better-sqlite3, at Cairn's durability (WAL,
 * synchronous=FULL, in bench/raw-sqlite.js): point GET, point PUT and a batch GET of keys
 * `["k", i]`, behind the same bearer token as Cairn. PUTs are group-committed: the writes that
 * arrive in one event-loop turn are committed in one transaction (one fsync) on `setImmediate`,
 * and each is answered after that commit.
 * Run by bench/server-bench.js as `node bench/server-sqlite.js <database file> <token>`;
 * preloads the database first.
 */
import { sendJson, serve } from "./node-server.js";
import { keyOf, open, preload } from "./raw-sqlite.js";

const [path, token] = process.argv.slice(2);
const AUTHORIZATION = `Bearer ${token}`;
const KEY_PATH = /^\/api\/keys\/k\/(\d+)$/;
const OK = JSON.stringify({ ok: true });

const db = open(path);
preload(db);
const select = db.prepare("SELECT value FROM kv WHERE key = ?").pluck();
const upsert = db.prepare("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)");
const commitWrites = db.transaction((writes) => {
  for (const { i, text } of writes) upsert.run(keyOf(i), text);
});

/** The entry of key `["k", i]`; `value` null if the key is missing. */
function entryOf(i) {
  const text = select.get(keyOf(i));
  return { key: ["k", i], value: text === undefined ? null : JSON.parse(text) };
}

let queued = [];

function commitQueued() {
  const writes = queued;
  queued = [];
  try {
    commitWrites(writes);
  } catch (error) {
    for (const { res } of writes) sendJson(res, 500, JSON.stringify({ error: error.message }));
    return;
  }
  for (const { res } of writes) sendJson(res, 200, OK);
}

function queueWrite(i, value, res) {
  if (queued.length === 0) setImmediate(commitQueued);
  queued.push({ i, text: JSON.stringify(value), res });
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function isKey(key) {
  return Array.isArray(key) && key.length === 2 && key[0] === "k" && Number.isInteger(key[1]);
}

function getOne(i, res) {
  const entry = entryOf(i);
  if (entry.value === null) sendJson(res, 404, JSON.stringify({ error: "Key not found" }));
  else sendJson(res, 200, JSON.stringify(entry));
}

function getBatch({ keys }, res) {
  if (!Array.isArray(keys) || !keys.every(isKey)) {
    sendJson(res, 400, JSON.stringify({ error: 'keys must be keys ["k", <integer>]' }));
    return;
  }
  sendJson(res, 200, JSON.stringify(keys.map(([, i]) => entryOf(i))));
}

async function route(req, res) {
  const match = KEY_PATH.exec(req.url);
  if (match && req.method === "GET") return getOne(Number(match[1]), res);
  if (match && req.method === "PUT") return queueWrite(Number(match[1]), await readJson(req), res);
  if (req.url === "/api/keys/batch" && req.method === "POST")
    return getBatch(await readJson(req), res);
  sendJson(res, 404, JSON.stringify({ error: "No such route" }));
}

serve(
  (req, res) => {
    if (req.headers.authorization !== AUTHORIZATION) {
      sendJson(res, 401, JSON.stringify({ error: "Invalid access token" }));
      return;
    }
    route(req, res).catch((error) => sendJson(res, 400, JSON.stringify({ error: error.message })));
  },
  () => db.close(),
);
