/**
 * The remote SDK's face: the `Database` interface over HTTP (see protocol/database-wire.ts), so
 * that `openKv("http://…")` runs the very same engine calls as an embedded Kv.
 */
import { checkCommit } from "../../engine/commit-limits.js";
import {
  commitFromWire,
  countFromWire,
  entryToWire,
  keysFromWire,
  rangesFromWire,
} from "../../protocol/database-wire.js";
import {
  changesRequestFromWire,
  commitChangesToWire,
  cursorFromWire,
  feedRangesFromWire,
} from "../../protocol/feed-wire.js";
import {
  claimRequestFromWire,
  deadLetterQueryFromWire,
  deadLetterToWire,
  leasedToWire,
} from "../../protocol/queue-wire.js";
import {
  indexFromWire,
  indexPrefixFromWire,
  indexToWire,
  searchFromWire,
} from "../../protocol/search-wire.js";
import { formatSse } from "../../protocol/sse.js";
import type { Face, Route } from "../face.js";
import { errorBody, StreamReply } from "../http-io.js";

/**
 * `POST /db/follow` streams the change feed as server-sent events, each with the versionstamp it
 * reaches as its `id`: `commit` (a wire commit), `heartbeat` and `lost` (`{ versionstamp }`),
 * and `error` (`{ error, code }`, then the stream ends). The cursor comes from the body or, on
 * reconnection, from `Last-Event-ID`.
 */
const followRoute: Route = {
  method: "POST",
  path: "/db/follow",
  operation: "watch",
  access: "read",
  async handle(request) {
    const body = (await request.json()) as Record<string, unknown>;
    const ranges = feedRangesFromWire(body);
    const resumeFrom = request.req.headers["last-event-id"];
    const cursor = cursorFromWire(resumeFrom ?? body.cursor, "cursor");
    return new StreamReply("text/event-stream", (stream) => {
      const send = (event: string, id: string, data: unknown) =>
        stream.write(formatSse({ event, id, data: JSON.stringify(data) }));
      const subscription = request.database.follow(
        { ...ranges, cursor },
        {
          commit: (c) => send("commit", c.versionstamp, commitChangesToWire(c)),
          heartbeat: (versionstamp) => send("heartbeat", versionstamp, { versionstamp }),
          lost: (versionstamp) => send("lost", versionstamp, { versionstamp }),
          error: (error) => {
            stream.write(formatSse({ event: "error", data: JSON.stringify(errorBody(error)) }));
            stream.end();
          },
        },
      );
      return () => subscription.close();
    });
  },
};

/** The `Database` contract over HTTP, served where the JSON API is. */
export const databaseProtocol: Face = {
  name: "database-protocol",
  bases: ["/api", "/keyval/api"],
  routes: [
    {
      method: "POST",
      path: "/db/get",
      operation: "get",
      access: "read",
      async handle(request) {
        const entries = await request.database.get(keysFromWire(await request.json()));
        return { entries: entries.map((e) => (e ? entryToWire(e) : null)) };
      },
    },
    {
      method: "POST",
      path: "/db/scan",
      operation: "list",
      access: "read",
      async handle(request) {
        const ranges = await request.database.scan(rangesFromWire(await request.json()));
        return { ranges: ranges.map((entries) => entries.map(entryToWire)) };
      },
    },
    {
      method: "POST",
      path: "/db/count",
      operation: "count",
      access: "read",
      async handle(request) {
        return { count: await request.database.count(countFromWire(await request.json())) };
      },
    },
    {
      method: "POST",
      path: "/db/commit",
      operation: "atomic_commit",
      access: "write",
      async handle(request) {
        return request.database.commit(checkCommit(commitFromWire(await request.json())));
      },
    },
    followRoute,
    {
      method: "POST",
      path: "/db/changes",
      operation: "watch_poll",
      access: "read",
      async handle(request) {
        const page = await request.database.changes(changesRequestFromWire(await request.json()));
        return { ...page, commits: page.commits.map(commitChangesToWire) };
      },
    },
    {
      method: "POST",
      path: "/db/claim",
      operation: "queue_dequeue",
      access: "write",
      async handle(request) {
        const claim = claimRequestFromWire(await request.json());
        const messages = await request.database.claim(claim, request.signal);
        return { messages: messages.map(leasedToWire) };
      },
    },
    {
      method: "POST",
      path: "/db/create-index",
      operation: "create_index",
      access: "write",
      async handle(request) {
        await request.database.createIndex(indexFromWire(await request.json()));
        return {};
      },
    },
    {
      method: "POST",
      path: "/db/remove-index",
      operation: "remove_index",
      access: "write",
      async handle(request) {
        return {
          removed: await request.database.removeIndex(indexPrefixFromWire(await request.json())),
        };
      },
    },
    {
      method: "POST",
      path: "/db/list-indexes",
      operation: "list_indexes",
      access: "read",
      async handle({ database }) {
        return { indexes: (await database.listIndexes()).map(indexToWire) };
      },
    },
    {
      method: "POST",
      path: "/db/search",
      operation: "search",
      access: "read",
      async handle(request) {
        const entries = await request.database.search(searchFromWire(await request.json()));
        return { entries: entries.map(entryToWire) };
      },
    },
    {
      method: "POST",
      path: "/db/queue-stats",
      operation: "queue_stats",
      access: "read",
      handle: ({ database }) => database.queueStats(),
    },
    {
      method: "POST",
      path: "/db/storage-stats",
      operation: "storage_stats",
      access: "read",
      handle: ({ database }) => database.storageStats(),
    },
    {
      method: "POST",
      path: "/db/dead-letters",
      operation: "dlq_list",
      access: "read",
      async handle(request) {
        const found = await request.database.deadLetters(
          deadLetterQueryFromWire(await request.json()),
        );
        return { deadLetters: found.map(deadLetterToWire) };
      },
    },
  ],
};
