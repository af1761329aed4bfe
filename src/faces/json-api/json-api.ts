/**
 * The Buntime KeyVal seed's HTTP/JSON API (reference/seed-systems.md §1.4), translated to the
 * core API. Keys travel as paths in URLs (protocol/key-path.ts) and as arrays in bodies; values as
 * tagged JSON (protocol/tagged-json.ts). Where the seed's client and server disagree, both forms
 * are accepted.
 */
import { parseDuration } from "../../codec/duration.js";
import { decodeKey, encodeReadKey, type KvKey } from "../../codec/key-codec.js";
import { decodeValue, ValueEncoding } from "../../codec/value-codec.js";
import type { Database, RawEntry } from "../../engine/database.js";
import { AtomicOperation } from "../../kv/atomic-operation.js";
import { deleteKeys, setKey } from "../../kv/kv.js";
import { countKeys, filterOf, paginate, spanOfPrefix } from "../../kv/kv-list-iterator.js";
import { createIndex, listIndexes, prefixOf, removeIndex, search } from "../../kv/search.js";
import { KvError } from "../../kv-error.js";
import { limits } from "../../limits.js";
import { parseKeyPath } from "../../protocol/key-path.js";
import { searchRequestOf } from "../../protocol/search-query.js";
import { fromTagged, keyFromJson, keyToJson, toTagged } from "../../protocol/tagged-json.js";
import { type KvWhere, show } from "../../protocol/where-filter.js";
import type { Face, Route, RouteRequest } from "../face.js";
import { body, fields, JsonText, parseJson } from "../http-io.js";
import { enqueueArguments, entryToJson, limitOf } from "./arguments.js";
import { realtimeRoutes } from "./realtime-routes.js";

/**
 * An entry as JSON text. Values stored as JSON text (every JSON-shaped value) are spliced in
 * verbatim: reads never parse and re-serialize them.
 */
function entryToJsonText(key: KvKey, raw: RawEntry | null): string {
  const keyJson = JSON.stringify(keyToJson(key));
  if (raw === null) return `{"key":${keyJson},"value":null,"versionstamp":null}`;
  // JSON text with a `__type` field needs the tagged form's escape; everything else is as stored.
  const verbatim = raw.encoding === ValueEncoding.JSON && !raw.data.includes('"__type"');
  const value = verbatim ? raw.data : JSON.stringify(toTagged(decodeValue(raw)));
  return `{"key":${keyJson},"value":${value},"versionstamp":"${raw.versionstamp}"}`;
}

const jsonArray = (items: string[]) => new JsonText(`[${items.join(",")}]`);

function keysFromBody(value: unknown): KvKey[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new KvError(
      "INVALID_ARGUMENT",
      'keys must be a non-empty array of keys, e.g. [["users", 1]]',
    );
  }
  if (value.length > limits.maxBatchKeys)
    throw new KvError("INVALID_ARGUMENT", `Too many keys (max ${limits.maxBatchKeys})`);
  return value.map((k, i) => keyFromJson(k, `keys[${i}]`));
}

/** A where filter from a body field; absent: `undefined`. Validated by the `Kv` call. */
function whereOf(value: unknown): KvWhere | undefined {
  return value === undefined || value === null ? undefined : (value as KvWhere);
}

/** A where filter in a query parameter, as JSON text. */
function whereOfQuery(value: string | null): KvWhere | undefined {
  if (value === null || value === "") return undefined;
  try {
    return JSON.parse(value) as KvWhere;
  } catch (e) {
    throw new KvError(
      "INVALID_JSON",
      `The where parameter is not valid JSON: ${(e as Error).message}`,
    );
  }
}

/** `prefix`, `start`, `end` (keys) and `where` from a JSON body, or from a query string (paths). */
function listArguments(source: Record<string, unknown> | URLSearchParams) {
  const fromQuery = source instanceof URLSearchParams;
  const get = (name: string) => (fromQuery ? (source.get(name) ?? undefined) : source[name]);
  const key = (name: string): KvKey | undefined => {
    const value = get(name);
    if (value === undefined || value === "") return undefined;
    return fromQuery ? parseKeyPath(value as string) : keyFromJson(value, name);
  };
  return {
    prefix: key("prefix") ?? [],
    start: key("start"),
    end: key("end"),
    where: fromQuery ? whereOfQuery(source.get("where")) : whereOf(source.where),
  };
}

function booleanOf(value: unknown, name: string): boolean {
  if (value === undefined || value === null || value === false || value === "false" || value === "")
    return false;
  if (value === true || value === "true") return true;
  throw new KvError("INVALID_ARGUMENT", `${name} must be true or false`);
}

/** One read: the limit is at most the engine's per-read maximum. */
async function list(
  database: Database,
  options: {
    prefix?: KvKey;
    start?: KvKey;
    end?: KvKey;
    limit: number;
    reverse: boolean;
    where?: KvWhere;
  },
) {
  const span = spanOfPrefix(options.prefix ?? [], options);
  const filter = filterOf(options.where);
  if (Buffer.compare(span.start, span.end) >= 0) return jsonArray([]);
  const [entries] = await database.scan([
    { start: span.start, end: span.end, limit: options.limit, reverse: options.reverse, filter },
  ]);
  return jsonArray(entries!.map((raw) => entryToJsonText(decodeKey(raw.key), raw)));
}

function getMany(database: Database, keys: readonly KvKey[]): Promise<(RawEntry | null)[]> {
  return database.get(keys.map(encodeReadKey));
}

/**
 * Optional options on DELETE: an empty body is none; any other body is read as JSON whatever its
 * content type says (curl's `-d` sends form-encoded), since options ignored would widen the delete.
 */
async function deleteOptions(request: RouteRequest): Promise<Record<string, unknown>> {
  const bytes = await request.bytes();
  return bytes.length === 0 ? {} : fields(parseJson(bytes), ["exact", "where"]);
}

/** The prefix of an index or search: a key array in bodies, a key path in query strings. */
function requiredPrefix(value: unknown): KvKey {
  if (value === undefined || value === null || value === "") {
    throw new KvError("INVALID_ARGUMENT", 'prefix is required, e.g. ["posts"] or ?prefix=posts');
  }
  return typeof value === "string" ? parseKeyPath(value) : keyFromJson(value, "prefix");
}

function requiredQuery(value: unknown): string {
  if (value === undefined || value === null || value === "") {
    throw new KvError("INVALID_ARGUMENT", "query is required, e.g. ?query=typescript");
  }
  if (typeof value !== "string") throw new KvError("INVALID_ARGUMENT", "query must be a string");
  return value;
}

/** Runs a search; `limit` is capped at 1000 silently, as for lists (the seed's behaviour). */
async function searchEntries(
  database: Database,
  prefix: KvKey,
  query: string,
  limit: unknown,
  where: KvWhere | undefined,
) {
  const request = searchRequestOf(prefixOf(prefix), query, { limit: limitOf(limit), where });
  const entries = await search(database, prefix, request);
  return jsonArray(entries.map((raw) => entryToJsonText(decodeKey(raw.key), raw)));
}

function applyMutation(op: AtomicOperation, value: unknown, i: number): void {
  const m = fields(value, ["type", "key", "value", "expiresIn", "expireIn"], `mutations[${i}]`);
  const key = keyFromJson(m.key, `mutations[${i}].key`);
  const operand = () => {
    if (!("value" in m))
      throw new KvError("INVALID_ARGUMENT", `mutations[${i}] (${String(m.type)}) needs a value`);
    return fromTagged(m.value);
  };
  switch (m.type) {
    case "set": {
      const ttl = m.expiresIn ?? m.expireIn;
      op.set(
        key,
        operand(),
        ttl === undefined || ttl === null
          ? undefined
          : { expireIn: parseDuration(ttl, "expiresIn") },
      );
      return;
    }
    case "delete":
      op.delete(key);
      return;
    case "sum":
    case "min":
    case "max":
      op[m.type](key, operand() as bigint);
      return;
    case "append":
    case "prepend":
      op[m.type](key, operand() as unknown[]);
      return;
    default:
      throw new KvError(
        "INVALID_ARGUMENT",
        `mutations[${i}].type must be set, delete, sum, min, max, append or prepend; got ${show(m.type)}`,
      );
  }
}

/**
 * Keys, lists, counts, pages, indexes, search and atomic commits. Reads splice stored JSON into
 * the response as it is (`entryToJsonText`); writes go through the core's builders.
 */
const dataRoutes: Route[] = [
  {
    method: "GET",
    path: "/keys/*",
    operation: "get",
    access: "read",
    async handle({ wildcard, database }) {
      const key = parseKeyPath(wildcard);
      const [raw] = await getMany(database, [key]);
      if (!raw) throw new KvError("NOT_FOUND", "Key not found");
      return new JsonText(entryToJsonText(key, raw));
    },
  },
  {
    method: "PUT",
    path: "/keys/*",
    operation: "set",
    access: "write",
    async handle(request) {
      const key = parseKeyPath(request.wildcard);
      const ttl = request.query.get("expiresIn") ?? request.query.get("expireIn");
      const expireIn =
        ttl === null
          ? undefined
          : parseDuration(/^\d+$/.test(ttl) ? Number(ttl) : ttl, "expiresIn");
      return setKey(request.database, key, fromTagged(await request.json()), { expireIn });
    },
  },
  {
    method: "DELETE",
    path: "/keys/*",
    operation: "delete",
    access: "write",
    async handle(request) {
      const options = await deleteOptions(request);
      return deleteKeys(request.database, [parseKeyPath(request.wildcard)], {
        exact: booleanOf(options.exact, "exact"),
        where: whereOf(options.where),
      });
    },
  },
  {
    method: "POST",
    path: "/keys/batch",
    operation: "get",
    access: "read",
    async handle(request) {
      const keys = keysFromBody(body(await request.json()).keys);
      const raws = await getMany(request.database, keys);
      return jsonArray(raws.map((raw, i) => entryToJsonText(keys[i]!, raw)));
    },
  },
  {
    method: "POST",
    path: "/keys/delete-batch",
    operation: "delete",
    access: "write",
    async handle(request) {
      const options = fields(await request.json(), ["keys", "exact", "where"]);
      return deleteKeys(request.database, keysFromBody(options.keys), {
        exact: booleanOf(options.exact, "exact"),
        where: whereOf(options.where),
      });
    },
  },
  {
    method: "GET",
    path: "/keys",
    operation: "list",
    access: "read",
    handle({ query, database }) {
      return list(database, {
        ...listArguments(query),
        limit: limitOf(query.get("limit")),
        reverse: booleanOf(query.get("reverse"), "reverse"),
      });
    },
  },
  {
    method: "POST",
    path: "/keys/list",
    operation: "list",
    access: "read",
    async handle(request) {
      const options = body(await request.json());
      return list(request.database, {
        ...listArguments(options),
        limit: limitOf(options.limit),
        reverse: booleanOf(options.reverse, "reverse"),
      });
    },
  },
  ...(["GET", "POST"] as const).flatMap((method): Route[] => {
    const input = async (request: RouteRequest) =>
      method === "GET" ? request.query : body(await request.json());
    return [
      {
        method,
        path: "/keys/count",
        operation: "count",
        access: "read",
        async handle(request) {
          const { prefix, ...options } = listArguments(await input(request));
          return { count: await countKeys(request.database, prefix, options) };
        },
      },
      {
        method,
        path: "/keys/paginate",
        operation: "paginate",
        access: "read",
        async handle(request) {
          const source = await input(request);
          const get = (name: string) =>
            source instanceof URLSearchParams ? source.get(name) : source[name];
          const cursor = get("cursor");
          if (cursor !== undefined && cursor !== null && typeof cursor !== "string") {
            throw new KvError(
              "INVALID_CURSOR",
              "cursor must be the string a previous page returned",
            );
          }
          const { prefix, ...options } = listArguments(source);
          const page = await paginate(request.database, prefix, {
            ...options,
            cursor,
            limit: limitOf(get("limit")),
            reverse: booleanOf(get("reverse"), "reverse"),
          });
          return { ...page, entries: page.entries.map(entryToJson) };
        },
      },
    ];
  }),
  {
    method: "POST",
    path: "/indexes",
    operation: "create_index",
    access: "write",
    async handle(request) {
      // The seed's server reads { prefix, options: { fields, tokenize } }, its client sends
      // { prefix, fields, tokenize }: both are accepted.
      const b = body(await request.json());
      const options =
        b.options !== undefined && b.options !== null
          ? b.options
          : { fields: b.fields, tokenize: b.tokenize ?? undefined };
      return createIndex(request.database, requiredPrefix(b.prefix), options as never);
    },
  },
  {
    method: "GET",
    path: "/indexes",
    operation: "list_indexes",
    access: "read",
    async handle({ database }) {
      return (await listIndexes(database)).map((index) => ({
        prefix: keyToJson(index.prefix),
        fields: index.fields,
        tokenize: index.tokenize,
      }));
    },
  },
  {
    method: "DELETE",
    path: "/indexes",
    operation: "remove_index",
    access: "write",
    async handle({ query, database }) {
      const removed = await removeIndex(database, requiredPrefix(query.get("prefix")));
      return { ok: true, removed };
    },
  },
  {
    method: "GET",
    path: "/search",
    operation: "search",
    access: "read",
    handle({ query, database }) {
      return searchEntries(
        database,
        requiredPrefix(query.get("prefix")),
        requiredQuery(query.get("query")),
        query.get("limit"),
        whereOfQuery(query.get("where")),
      );
    },
  },
  {
    method: "POST",
    path: "/search",
    operation: "search",
    access: "read",
    async handle(request) {
      // The seed's client sends limit and where at the top level, its server reads them from
      // options: both are accepted, options first.
      const b = body(await request.json());
      const options = b.options === undefined || b.options === null ? {} : body(b.options);
      return searchEntries(
        request.database,
        requiredPrefix(b.prefix),
        requiredQuery(b.query),
        options.limit ?? b.limit,
        whereOf(options.where ?? b.where),
      );
    },
  },
  {
    method: "POST",
    path: "/atomic",
    operation: "atomic_commit",
    access: "write",
    async handle(request) {
      const b = fields(await request.json(), ["checks", "mutations", "enqueues"]);
      const { checks = [], mutations = [], enqueues = [] } = b;
      if (!Array.isArray(checks) || !Array.isArray(mutations) || !Array.isArray(enqueues)) {
        throw new KvError("INVALID_ARGUMENT", "checks, mutations and enqueues must be arrays");
      }
      const database = request.database;
      const op = new AtomicOperation(() => database);
      checks.forEach((c, i) => {
        const check = fields(c, ["key", "versionstamp"], `checks[${i}]`);
        const versionstamp = check.versionstamp ?? null;
        if (versionstamp !== null && typeof versionstamp !== "string") {
          throw new KvError(
            "INVALID_ARGUMENT",
            `checks[${i}].versionstamp must be a string or null`,
          );
        }
        op.check({ key: keyFromJson(check.key, `checks[${i}].key`), versionstamp });
      });
      for (const [i, m] of mutations.entries()) applyMutation(op, m, i);
      for (const [i, e] of enqueues.entries()) op.enqueue(...enqueueArguments(e, `enqueues[${i}]`));
      return op.commit();
    },
  },
];

/**
 * The Buntime KeyVal seed's API, at `/api` and at the seed's own base, `/keyval/api`. Its queue
 * routes lease a message for `queueLeaseMs` when the request does not say (default
 * `limits.defaultLeaseMs`).
 */
export function jsonApiFace(options: { readonly queueLeaseMs?: number } = {}): Face {
  return {
    name: "json-api",
    bases: ["/api", "/keyval/api"],
    routes: [...dataRoutes, ...realtimeRoutes(options.queueLeaseMs ?? limits.defaultLeaseMs)],
  };
}
