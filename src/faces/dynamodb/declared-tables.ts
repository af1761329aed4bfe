/**
 * Tables declared on the command line (`cairn serve --dynamodb-table users:email`), for programs
 * that expect their tables to exist, as Nimbus's `KV_<NAME>` convention does: created at start
 * when missing, checked against their declaration when present.
 */
import type { Database } from "../../engine/database.js";
import { KvError } from "../../kv-error.js";
import { Input } from "./request-input.js";
import { tableOperations } from "./table-operations.js";
import { type KeyAttribute, readTable } from "./tables.js";

export interface TableDeclaration {
  readonly name: string;
  readonly hash: KeyAttribute;
  readonly range?: KeyAttribute;
}

const ATTRIBUTE = /^([^:=]+)(?:=(S|N|B))?$/;

/**
 * `NAME[:HASH[:RANGE]]`, each key `attribute[=S|N|B]` (default: `id`, type S), e.g. `users:email`
 * or `events:device:at=N`.
 */
export function parseTableDeclaration(text: string): TableDeclaration {
  const [name, hash = "id", range, ...rest] = text.split(":");
  const attribute = (part: string): KeyAttribute => {
    const m = ATTRIBUTE.exec(part);
    if (!m) throw invalid(text);
    return { name: m[1]!, type: (m[2] ?? "S") as KeyAttribute["type"] };
  };
  if (!name || rest.length > 0) throw invalid(text);
  return range === undefined
    ? { name, hash: attribute(hash) }
    : { name, hash: attribute(hash), range: attribute(range) };
}

const invalid = (text: string) =>
  new KvError(
    "INVALID_ARGUMENT",
    `--dynamodb-table ${JSON.stringify(text)} is not NAME[:HASH[:RANGE]] with keys as attribute[=S|N|B], e.g. users:email or events:device:at=N`,
  );

export const createTableRequest = (table: TableDeclaration) => ({
  TableName: table.name,
  BillingMode: "PAY_PER_REQUEST",
  KeySchema: [
    { AttributeName: table.hash.name, KeyType: "HASH" },
    ...(table.range ? [{ AttributeName: table.range.name, KeyType: "RANGE" }] : []),
  ],
  AttributeDefinitions: [table.hash, ...(table.range ? [table.range] : [])].map((a) => ({
    AttributeName: a.name,
    AttributeType: a.type,
  })),
});

const keyText = (a: KeyAttribute | undefined) => (a ? `${a.name}=${a.type}` : "none");

/** Creates each declared table that does not exist; `INVALID_ARGUMENT` for one that differs. */
export async function declareTables(
  database: Database,
  databaseId: string,
  tables: readonly TableDeclaration[],
): Promise<void> {
  for (const declared of tables) {
    try {
      await tableOperations.CreateTable!.run(
        { database, databaseId },
        new Input(createTableRequest(declared)),
      );
    } catch (error) {
      if (!(error instanceof KvError && error.code === "ALREADY_EXISTS")) throw error;
      const { table } = await readTable(database, declared.name);
      if (
        keyText(table.hash) !== keyText(declared.hash) ||
        keyText(table.range) !== keyText(declared.range)
      ) {
        throw new KvError(
          "INVALID_ARGUMENT",
          `Table ${declared.name} exists with hash key ${keyText(table.hash)} and range key ${keyText(table.range)}, not as --dynamodb-table declares it (${keyText(declared.hash)}, ${keyText(declared.range)})`,
        );
      }
    }
  }
}
