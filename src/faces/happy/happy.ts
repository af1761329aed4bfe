/**
 * Happy Server's kv routes (reference/seed-systems.md §2), so the Happy app's client (its
 * `apiKv.ts`) works against Cairn: the user is the principal behind the bearer token, and sees
 * only their own keys. Errors are Cairn's `{ error, code }`; the original's own answers (404 `{
 * error: "Key not found" }`, 409 `{ success: false, errors }`) are kept. Update events stream as
 * server-sent events at `/v1/kv/updates`.
 */
import { isVersionstamp } from "../../codec/versionstamp.js";
import { KvError } from "../../kv-error.js";
import { formatSse } from "../../protocol/sse.js";
import type { Face, Route, RouteRequest } from "../face.js";
import { fields, integerParam, Reply, StreamReply } from "../http-io.js";
import { attachUpdates } from "./happy-socket.js";
import { followUpdates, HappyKvStore } from "./happy-store.js";

/** Users' mutates waiting for their next commit, across requests (by database and uid). */
const queues = new Map();

const storeOf = (request: RouteRequest) =>
  new HappyKvStore(() => request.database, queues, request.databaseId);
const userOf = (request: RouteRequest) => ({ uid: request.principal.name });

/** `GET /v1/kv/updates`: the user's update events, `event: update` with the commit's versionstamp as `id:`. */
function updates(request: RouteRequest): StreamReply {
  const cursor = request.req.headers["last-event-id"] ?? request.query.get("cursor") ?? null;
  if (cursor !== null && (typeof cursor !== "string" || !isVersionstamp(cursor))) {
    throw new KvError(
      "INVALID_ARGUMENT",
      "Last-Event-ID must be the id of an update event (a versionstamp, 20 hex characters)",
    );
  }
  const { database } = request;
  return new StreamReply("text/event-stream", (stream) => {
    const subscription = followUpdates(database, userOf(request), cursor, {
      update: (update, versionstamp) =>
        stream.write(
          formatSse({ event: "update", id: versionstamp, data: JSON.stringify(update) }),
        ),
      heartbeat: (versionstamp) =>
        stream.write(formatSse({ event: "ping", data: JSON.stringify({ versionstamp }) })),
      lost: (oldest) =>
        stream.write(formatSse({ event: "lost", id: oldest, data: JSON.stringify({ oldest }) })),
      error: (error) => {
        const message = error instanceof Error ? error.message : String(error);
        stream.write(formatSse({ event: "error", data: JSON.stringify({ error: message }) }));
        stream.end();
      },
    });
    return () => subscription.close();
  });
}

const routes: Route[] = [
  {
    method: "GET",
    path: "/",
    operation: "list",
    access: "read",
    handle: (request) =>
      storeOf(request).list(userOf(request), {
        prefix: request.query.get("prefix") ?? undefined,
        limit: integerParam(request.query.get("limit"), "limit", {
          min: 1,
          max: 1000,
          fallback: 100,
        }),
      }),
  },
  {
    method: "GET",
    path: "/updates",
    access: "read",
    operation: "updates",
    handle: async (request) => updates(request),
  },
  {
    method: "GET",
    path: "/:key",
    operation: "get",
    access: "read",
    async handle(request) {
      const item = await storeOf(request).get(userOf(request), request.params.key ?? "");
      if (item === null) throw new KvError("NOT_FOUND", "Key not found");
      return item;
    },
  },
  {
    method: "POST",
    path: "/bulk",
    operation: "bulk_get",
    access: "read",
    async handle(request) {
      const { keys } = fields(await request.json(), ["keys"]);
      return storeOf(request).bulkGet(userOf(request), keys as string[]);
    },
  },
  {
    method: "POST",
    path: "/",
    operation: "mutate",
    access: "write",
    async handle(request) {
      const { mutations } = fields(await request.json(), ["mutations"]);
      const result = await storeOf(request).mutate(userOf(request), mutations as never);
      return result.success ? result : new Reply(409, "application/json", JSON.stringify(result));
    },
  },
];

export const happy: Face = { name: "happy", bases: ["/v1/kv"], routes, attach: attachUpdates };
