/** CreateTable, DescribeTable, ListTables, UpdateTable, DeleteTable, TTL and tags. */
import { concatBytes } from "../../codec/key-codec.js";
import { decodeValue } from "../../codec/value-codec.js";
import { checkCommit } from "../../engine/commit-limits.js";
import {
  commitMutations,
  type Database,
  type Mutation,
  type RawEntry,
} from "../../engine/database.js";
import { limits } from "../../limits.js";
import { dynamoError, validation } from "./errors.js";
import { decodeItem, indexEntry, writeMutations } from "./items.js";
import { indexPrefix, itemsPrefix, tableKey, tablePrefix, tablesStart } from "./keys.js";
import type { Context, Operations } from "./operation.js";
import type { Input } from "./request-input.js";
import {
  checkTableName,
  describe,
  encodeTable,
  forgetTable,
  newTable,
  readTable,
  rememberTable,
  type Table,
  type TableAt,
  tableOf,
  updatedTable,
} from "./tables.js";

const after = (prefix: Uint8Array) => concatBytes(prefix, [0xff]);

const tableName = (input: Input) => checkTableName(input.string("TableName"));

/** Writes `table`'s new description over the one read at `at`; `ResourceInUseException` on a race. */
async function replaceTable(context: Context, at: TableAt, table: Table): Promise<TableAt> {
  const key = tableKey(table.name);
  const result = await context.database.commit(
    checkCommit({
      checks: [{ key, versionstamp: at.versionstamp }],
      mutations: [{ type: "set", key, value: encodeTable(table) }],
    }),
  );
  if (!result.ok) {
    throw dynamoError(
      "ResourceInUseException",
      `Attempt to change a resource which is still in use: Table ${table.name} changed while this request was applied; retry`,
    );
  }
  return rememberTable(context.databaseId, { table, versionstamp: result.versionstamp });
}

async function itemCount(database: Database, table: string): Promise<number> {
  const prefix = itemsPrefix(table);
  return database.count({ start: prefix, end: after(prefix) });
}

/**
 * Applies `change` to every item of table `name`, a page at a time: `change` gives the
 * mutations for a page under the table as it is, each page committed only if neither the table
 * nor its items changed meanwhile (else read again). Resolves the table as last read.
 */
async function forEachItem(
  context: Context,
  name: string,
  change: (table: Table, items: readonly RawEntry[], now: number) => Mutation[],
): Promise<TableAt> {
  const prefix = itemsPrefix(name);
  let start = prefix;
  for (;;) {
    const [tableEntry] = await context.database.get([tableKey(name)]);
    const at = tableOf(tableEntry, name);
    const [page] = await context.database.scan([
      { start, end: after(prefix), limit: 100, reverse: false },
    ]);
    const result = await context.database.commit(
      checkCommit(
        {
          checks: [
            { key: tableKey(name), versionstamp: at.versionstamp },
            ...page!.map((e) => ({ key: e.key, versionstamp: e.versionstamp })),
          ],
          mutations: change(at.table, page!, Date.now()),
        },
        undefined,
        limits.dynamoCommit,
      ),
    );
    if (!result.ok) continue;
    if (page!.length < 100) return at;
    start = concatBytes(page!.at(-1)!.key, [0x00]);
  }
}

/** Re-writes every item, so that each expires as the table's TTL now says. */
const rewriteItems = (context: Context, name: string) =>
  forEachItem(context, name, (table, items, now) =>
    items.flatMap((entry) => {
      const item = decodeItem(entry);
      return writeMutations(table, entry.key, item, item, now);
    }),
  );

/** Adds every item to the new index `indexName`, then makes it ACTIVE. */
async function fillIndex(context: Context, name: string, indexName: string): Promise<TableAt> {
  const at = await forEachItem(context, name, (table, items, now) => {
    const index = table.indexes.find((i) => i.name === indexName);
    if (index === undefined) return [];
    return items.flatMap(
      (entry) => indexEntry(table, index, decodeItem(entry), entry.key, now) ?? [],
    );
  });
  const indexes = at.table.indexes.map((i) =>
    i.name === indexName ? { ...i, status: "ACTIVE" as const } : i,
  );
  return replaceTable(context, at, { ...at.table, indexes });
}

export const tableOperations: Operations = {
  CreateTable: {
    access: "write",
    async run(context, input) {
      const table = newTable(input);
      const key = tableKey(table.name);
      const result = await context.database.commit(
        checkCommit({
          checks: [{ key, versionstamp: null }],
          mutations: [{ type: "set", key, value: encodeTable(table) }],
        }),
      );
      if (!result.ok) {
        throw dynamoError("ResourceInUseException", `Table already exists: ${table.name}`);
      }
      rememberTable(context.databaseId, { table, versionstamp: result.versionstamp });
      return { TableDescription: describe(table, "ACTIVE", 0) };
    },
  },

  DescribeTable: {
    access: "read",
    async run(context, input) {
      const name = tableName(input);
      input.done();
      const { table } = rememberTable(context.databaseId, await readTable(context.database, name));
      return { Table: describe(table, "ACTIVE", await itemCount(context.database, name)) };
    },
  },

  ListTables: {
    access: "read",
    async run(context, input) {
      const exclusiveStart = input.string("ExclusiveStartTableName");
      const limit = input.number("Limit") ?? 100;
      input.done();
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
        throw validation(
          `1 validation error detected: Value '${limit}' at 'limit' failed to satisfy constraint: Member must have value ${limit < 1 ? "greater than or equal to 1" : "less than or equal to 100"}`,
        );
      }
      const names: string[] = [];
      const end = after(tablesStart);
      // Each table's items follow its description: skip over them to the next table.
      let start = exclusiveStart === undefined ? tablesStart : after(tablePrefix(exclusiveStart));
      while (names.length <= limit) {
        const [page] = await context.database.scan([{ start, end, limit: 1, reverse: false }]);
        const entry = page![0];
        if (entry === undefined) break;
        const table = decodeValue(entry) as Table;
        names.push(table.name);
        start = after(tablePrefix(table.name));
      }
      const more = names.length > limit;
      const shown = names.slice(0, limit);
      return { TableNames: shown, ...(more && { LastEvaluatedTableName: shown.at(-1) }) };
    },
  },

  UpdateTable: {
    access: "write",
    async run(context, input) {
      const name = tableName(input);
      const at = await readTable(context.database, name);
      const { table, created, deleted } = updatedTable(at.table, input);
      let now = await replaceTable(context, at, table);
      for (const index of deleted) {
        const prefix = indexPrefix(name, index.name);
        await commitMutations(context.database, [
          { type: "deleteRange", start: prefix, end: after(prefix) },
        ]);
      }
      for (const index of created) now = await fillIndex(context, name, index.name);
      return { TableDescription: describe(now.table, "ACTIVE") };
    },
  },

  DeleteTable: {
    access: "write",
    async run(context, input) {
      const name = tableName(input);
      input.done();
      const at = await readTable(context.database, name);
      if (at.table.deletionProtection) {
        throw validation(
          `Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.`,
        );
      }
      const key = tableKey(name);
      const result = await context.database.commit(
        checkCommit({
          checks: [{ key, versionstamp: at.versionstamp }],
          mutations: [
            { type: "delete", key },
            { type: "deleteRange", start: concatBytes(key, [0x00]), end: after(key) },
          ],
        }),
      );
      forgetTable(context.databaseId, name);
      if (!result.ok) {
        throw dynamoError(
          "ResourceInUseException",
          `Attempt to change a resource which is still in use: Table ${name} changed while it was being deleted; retry`,
        );
      }
      return { TableDescription: describe(at.table, "DELETING") };
    },
  },

  UpdateTimeToLive: {
    access: "write",
    async run(context, input) {
      const name = tableName(input);
      const specification = input.object("TimeToLiveSpecification");
      input.done();
      const enabled = specification?.boolean("Enabled");
      const attribute = specification?.string("AttributeName");
      specification?.done();
      if (enabled === undefined || attribute === undefined || attribute === "") {
        throw validation(
          "1 validation error detected: TimeToLiveSpecification needs Enabled and a non-empty AttributeName",
        );
      }
      const at = await readTable(context.database, name);
      const current = at.table.ttlAttribute;
      if (enabled && current !== undefined) {
        throw validation("TimeToLive is already enabled");
      }
      if (!enabled && current === undefined) {
        throw validation("TimeToLive is already disabled");
      }
      if (!enabled && current !== attribute) {
        throw validation(
          `TimeToLive is active on a different AttributeName: current AttributeName is ${current}`,
        );
      }
      const { ttlAttribute: _, ...rest } = at.table;
      await replaceTable(context, at, enabled ? { ...rest, ttlAttribute: attribute } : rest);
      await rewriteItems(context, name);
      return { TimeToLiveSpecification: { Enabled: enabled, AttributeName: attribute } };
    },
  },

  DescribeTimeToLive: {
    access: "read",
    async run(context, input) {
      const name = tableName(input);
      input.done();
      const { table } = await readTable(context.database, name);
      return {
        TimeToLiveDescription:
          table.ttlAttribute === undefined
            ? { TimeToLiveStatus: "DISABLED" }
            : { TimeToLiveStatus: "ENABLED", AttributeName: table.ttlAttribute },
      };
    },
  },
};
