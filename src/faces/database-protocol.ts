/**
 * The remote SDK's face: the `Database` interface over HTTP (see protocol/database-wire.ts), so
 * that `openKv("http://…")` runs the very same engine calls as an embedded Kv.
 */
import { assertCommitLimits } from "../engine/commit-limits.js";
import type { Database } from "../engine/database.js";
import {
  commitFromWire,
  entryToWire,
  keysFromWire,
  rangesFromWire,
} from "../protocol/database-wire.js";
import type { Route } from "./route.js";

export function databaseProtocolRoutes(database: Database): Route[] {
  return [
    {
      method: "POST",
      path: "/db/get",
      access: "read",
      async handle(request) {
        const entries = await database.get(keysFromWire(await request.json()));
        return { entries: entries.map((e) => (e ? entryToWire(e) : null)) };
      },
    },
    {
      method: "POST",
      path: "/db/scan",
      access: "read",
      async handle(request) {
        const ranges = await database.scan(rangesFromWire(await request.json()));
        return { ranges: ranges.map((entries) => entries.map(entryToWire)) };
      },
    },
    {
      method: "POST",
      path: "/db/commit",
      access: "write",
      async handle(request) {
        const commit = commitFromWire(await request.json());
        assertCommitLimits(commit);
        return database.commit(commit);
      },
    },
  ];
}
