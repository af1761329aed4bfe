/**
 * The Glia Functions KV Store template's REST API (reference/seed-systems.md §3), one namespace
 * per path: `/glia/<namespace>/…`. Routes, bodies, statuses and texts as the template's
 * `processRequest` answers them, with its routing bug resolved (`GET /?key=` is a get) and
 * malformed input refused with 400 rather than read as empty. Errors are `{ success: false,
 * error, code }`.
 */
import { KvError } from "../../kv-error.js";
import { limits } from "../../limits.js";
import type { Face, Route, RouteRequest } from "../face.js";
import { fields, integerParam, Reply } from "../http-io.js";
import { checkKey, GliaKvStore, ttlMs } from "./glia-store.js";

const ALLOW = "GET, POST, DELETE, OPTIONS";

const storeOf = (request: RouteRequest) =>
  new GliaKvStore(() => request.database, request.params.namespace ?? "");

const missing = (what: string) => new KvError("INVALID_ARGUMENT", `Missing ${what} parameter`);

/**
 * The request's JSON object: the template also takes a Glia invoker's envelope,
 * `{ "payload": <object or its JSON text> }`.
 */
async function bodyOf(request: RouteRequest): Promise<Record<string, unknown>> {
  let body = await request.json();
  const envelope = body as { payload?: unknown } | null;
  if (
    envelope !== null &&
    typeof envelope === "object" &&
    Object.keys(envelope).join() === "payload"
  ) {
    body = envelope.payload;
    if (typeof body === "string") {
      try {
        body = JSON.parse(body);
      } catch {
        throw new KvError("INVALID_JSON", "payload is not valid JSON text");
      }
    }
  }
  if (body === null || typeof body !== "object" || Array.isArray(body))
    throw new KvError("INVALID_ARGUMENT", "The request body must be a JSON object");
  return body as Record<string, unknown>;
}

/** A key the request names: `?key=`, else (`fromPath`) the path's last segment. */
function keyOf(request: RouteRequest, fromPath: boolean): string {
  const key = request.query.get("key") || (fromPath ? request.params.key : undefined);
  if (!key) throw missing("key");
  return checkKey(key);
}

async function get(request: RouteRequest, fromPath: boolean) {
  const item = await storeOf(request).get(keyOf(request, fromPath));
  if (item === null || item.value === null) throw new KvError("NOT_FOUND", "Key not found");
  return { success: true, key: item.key, value: item.value, expires: item.expires };
}

async function list(request: RouteRequest) {
  const prefix = request.query.get("prefix") ?? "";
  const limit = integerParam(request.query.get("limit"), "limit", {
    min: 1,
    max: limits.maxListLimit,
    fallback: 100,
  });
  const items = [];
  for await (const item of storeOf(request).itemsAsyncIterator({ prefix })) {
    items.push({ key: item.key, value: item.value, expires: item.expires });
    if (items.length === limit) break;
  }
  return { success: true, count: items.length, items };
}

async function set(request: RouteRequest) {
  const body = fields(await bodyOf(request), ["key", "value", "ttl"]);
  if (!body.key) throw missing("key");
  if (body.value === undefined) throw missing("value");
  ttlMs(body.ttl, "ttl");
  const result = await storeOf(request).set({
    key: checkKey(body.key),
    value: body.value,
    expirationTtl: body.ttl as number | undefined,
  });
  return { success: true, ...result };
}

async function testAndSet(request: RouteRequest) {
  const body = fields(await bodyOf(request), ["key", "oldValue", "newValue", "ttl"]);
  if (!body.key) throw missing("key");
  if (body.oldValue === undefined) throw missing("oldValue");
  if (body.newValue === undefined) throw missing("newValue");
  ttlMs(body.ttl, "ttl");
  const result = await storeOf(request).testAndSet({
    key: checkKey(body.key),
    oldValue: body.oldValue,
    newValue: body.newValue,
    expirationTtl: body.ttl as number | undefined,
  });
  if (!result.conditionMet) {
    return {
      success: false,
      conditionMet: false,
      message: "Condition not met, value was not updated",
    };
  }
  return {
    success: true,
    conditionMet: true,
    key: result.key,
    value: result.value,
    expires: result.expires,
  };
}

async function batch(request: RouteRequest) {
  const { operations } = fields(await bodyOf(request), ["operations"]);
  if (!Array.isArray(operations))
    throw new KvError("INVALID_ARGUMENT", "Missing or invalid operations array");
  if (operations.length > 10) {
    throw new KvError(
      "INVALID_ARGUMENT",
      "Too many operations. Maximum of 10 operations per request.",
    );
  }
  return { success: true, results: await storeOf(request).processBatchOperations(operations) };
}

async function remove(request: RouteRequest, fromPath: boolean) {
  const key = keyOf(request, fromPath);
  await storeOf(request).delete(key);
  return { success: true, key, deleted: true };
}

/** The template's `onHealthCheck`: a set, a get and a delete of a key of its own. */
async function health(request: RouteRequest) {
  const store = storeOf(request);
  try {
    const key = `_healthcheck_${Date.now()}`;
    await store.set({ key, value: "ok" });
    const item = await store.get(key);
    await store.delete(key);
    return { status: "healthy", kvStoreCheck: item?.value === "ok" ? "ok" : "failed" };
  } catch (error) {
    if (error instanceof KvError && error.status < 500) throw error; // the caller's to fix
    const message = error instanceof Error ? error.message : String(error);
    return new Reply(
      503,
      "application/json",
      JSON.stringify({ status: "unhealthy", error: message }),
    );
  }
}

const methodNotAllowed = async () =>
  new Reply(405, "application/json", JSON.stringify({ error: "Method not allowed" }), {
    allow: ALLOW,
  });

const route = (
  method: Route["method"],
  path: string,
  operation: string,
  handle: (request: RouteRequest) => Promise<unknown>,
): Route => ({ method, path, access: method === "GET" ? "read" : "write", operation, handle });

export const glia: Face = {
  name: "glia",
  bases: ["/glia/:namespace"],
  routes: [
    // GET / lists, as the template does; with ?key= it gets (the template's README).
    route("GET", "/", "get_or_list", (r) => (r.query.has("key") ? get(r, false) : list(r))),
    route("GET", "/list", "list", list),
    route("GET", "/get", "get", (r) => get(r, false)),
    route("GET", "/health", "health", health),
    route("GET", "/:key", "get", (r) => get(r, true)),
    route("POST", "/batch", "batch", batch),
    route("POST", "/test-and-set", "test_and_set", testAndSet),
    // Any other POST is a set, as in the template.
    route("POST", "/", "set", set),
    route("POST", "/:key", "set", set),
    route("DELETE", "/", "delete", (r) => remove(r, false)),
    route("DELETE", "/delete", "delete", (r) => remove(r, false)),
    route("DELETE", "/:key", "delete", (r) => remove(r, true)),
    route("PUT", "/", "method_not_allowed", methodNotAllowed),
    route("PUT", "/*", "method_not_allowed", methodNotAllowed),
  ],
  errorReply: (error) =>
    new Reply(
      error.status,
      "application/json",
      JSON.stringify({ success: false, error: error.message, code: error.code }),
    ),
};
