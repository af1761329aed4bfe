/**
 * Floww's KV store (reference/seed-systems.md §4) over a Cairn database, as Floww's Python backend
 * keeps it: tables of JSON items, shared between workflows by per-table permissions. One
 * provider's data, in a namespace (a Floww namespace; `default` for Cairn's own tokens):
 *
 *   ["floww", ns, provider, "tables", table]                 { created_at }
 *   ["floww", ns, provider, "items", table, key]             { value, created_at, updated_at }
 *   ["floww", ns, provider, "permissions", table, workflow]  { can_read, can_write, created_at }
 *
 * The caller is a workflow; a manager (an admin, or a principal with a Cairn grant to write the
 * provider's keys) may do anything to every table, others what their table's permission says.
 */
import { encodeWriteKey, type KvKey } from "../../codec/key-codec.js";
import { decodeValue, encodeValueChecked } from "../../codec/value-codec.js";
import { assertValueDepth } from "../../codec/value-depth.js";
import { checkCommit } from "../../engine/commit-limits.js";
import {
  commitMutations,
  type Database,
  type Mutation,
  type RawEntry,
} from "../../engine/database.js";
import { listIterator } from "../../kv/kv-list-iterator.js";
import { KvError } from "../../kv-error.js";
import { limits } from "../../limits.js";
import { checkName } from "../../protocol/floww-name.js";

/** Who calls: a workflow id, and whether it manages every table of the provider. */
export interface FlowwCaller {
  readonly workflow: string;
  readonly manager: boolean;
}

export interface FlowwItem {
  readonly key: string;
  readonly value: unknown;
  readonly created_at: string;
  readonly updated_at: string;
}

export interface FlowwPermission {
  readonly workflow_id: string;
  readonly can_read: boolean;
  readonly can_write: boolean;
  readonly created_at: string;
}

/** The backend refuses a value whose JSON is longer than this (pydantic, 422). */
const MAX_VALUE_CHARS = 1_000_000;

const now = () => new Date().toISOString();

const tableNotFound = (table: string) => new KvError("NOT_FOUND", `Table '${table}' not found`);

/** The snapshot a permission check reads: the table's record and the caller's permission. */
interface Access {
  readonly table: RawEntry | null;
  readonly permission: FlowwPermission | null;
}

export class FlowwStore {
  readonly #base: KvKey;

  constructor(
    private readonly database: () => Database,
    namespace: string,
    provider: string,
    private readonly caller: FlowwCaller,
  ) {
    this.#base = ["floww", namespace, checkName(provider, "Provider")];
  }

  #key(...parts: string[]): Uint8Array {
    return encodeWriteKey([...this.#base, ...parts]);
  }

  /** The table's record and the caller's permission on it, with `more` keys, in one snapshot. */
  async #read(table: string, ...more: Uint8Array[]) {
    const keys = [
      this.#key("tables", table),
      this.#key("permissions", table, this.caller.workflow),
      ...more,
    ];
    const [tableEntry, permission, ...rest] = await this.database().get(keys);
    const access: Access = {
      table: tableEntry ?? null,
      permission: permission ? (decodeValue(permission) as FlowwPermission) : null,
    };
    return { access, rest };
  }

  /** Refuses a caller that may not `need` the table: 404 for no table, 403 for no permission. */
  #check(table: string, { table: record, permission }: Access, need: "read" | "write"): void {
    if (record === null) throw tableNotFound(table);
    if (this.caller.manager) return;
    if (!(need === "read" ? permission?.can_read : permission?.can_write))
      throw new KvError("FORBIDDEN", `No ${need} permission for table '${table}'`);
  }

  /** The tables the caller has a permission on (a manager: every table), by name. */
  async listTables(): Promise<{ tables: string[] }> {
    const tables: string[] = [];
    for await (const entry of listIterator(this.database, [...this.#base, "tables"]))
      tables.push(entry.key.at(-1) as string);
    if (this.caller.manager) return { tables };
    const permissions = await this.database().get(
      tables.map((table) => this.#key("permissions", table, this.caller.workflow)),
    );
    return { tables: tables.filter((_, i) => permissions[i] !== null) };
  }

  async #items(table: string): Promise<FlowwItem[]> {
    const items: FlowwItem[] = [];
    for await (const entry of listIterator<Omit<FlowwItem, "key">>(this.database, [
      ...this.#base,
      "items",
      table,
    ]))
      items.push({ key: entry.key.at(-1) as string, ...entry.value });
    return items;
  }

  async listKeys(table: string): Promise<{ keys: string[] }> {
    checkName(table, "Table");
    this.#check(table, (await this.#read(table)).access, "read");
    return { keys: (await this.#items(table)).map((item) => item.key) };
  }

  async listItems(table: string): Promise<{ items: FlowwItem[] }> {
    checkName(table, "Table");
    this.#check(table, (await this.#read(table)).access, "read");
    return { items: await this.#items(table) };
  }

  async get(table: string, key: string): Promise<FlowwItem> {
    checkName(table, "Table");
    checkName(key, "Key");
    const { access, rest } = await this.#read(table, this.#key("items", table, key));
    this.#check(table, access, "read");
    if (!rest[0]) throw new KvError("NOT_FOUND", `Key '${key}' not found in table '${table}'`);
    return { key, ...(decodeValue(rest[0]) as Omit<FlowwItem, "key">) };
  }

  /**
   * Writes `value` at `key`, creating the table (with read and write for the caller) if there is
   * none; otherwise the caller needs write permission.
   */
  async set(table: string, key: string, value: unknown): Promise<FlowwItem> {
    checkName(table, "Table");
    checkName(key, "Key");
    if (value === undefined) throw new KvError("UNPROCESSABLE", "The body needs a value");
    // Before JSON.stringify, which a deep enough value overflows; one level goes to the record.
    assertValueDepth(value, limits.maxValueDepth - 1);
    const text = JSON.stringify(value, (_, v) => {
      if (typeof v === "number" && !Number.isFinite(v)) {
        // JSON text can say 1e309, which no double holds: it would read back as null.
        throw new KvError(
          "UNPROCESSABLE",
          "The value holds a number too large for JSON (e.g. 1e309)",
        );
      }
      return v;
    });
    if (text.length > MAX_VALUE_CHARS)
      throw new KvError(
        "UNPROCESSABLE",
        `The value is longer than ${MAX_VALUE_CHARS} characters of JSON`,
      );
    const itemKey = this.#key("items", table, key);
    for (;;) {
      const { access, rest } = await this.#read(table, itemKey);
      const at = now();
      const previous = rest[0] ? (decodeValue(rest[0]) as FlowwItem) : undefined;
      const item = { value, created_at: previous?.created_at ?? at, updated_at: at };
      const write: Mutation = { type: "set", key: itemKey, value: encodeValueChecked(item) };
      if (access.table === null) {
        const created = { created_at: at };
        const permission = { can_read: true, can_write: true, created_at: at };
        const tableKey = this.#key("tables", table);
        const result = await this.database().commit(
          checkCommit({
            // Of workflows creating one table at once, one does; the others then need a grant.
            checks: [{ key: tableKey, versionstamp: null }],
            mutations: [
              { type: "set", key: tableKey, value: encodeValueChecked(created) },
              {
                type: "set",
                key: this.#key("permissions", table, this.caller.workflow),
                value: encodeValueChecked({ workflow_id: this.caller.workflow, ...permission }),
              },
              write,
            ],
          }),
        );
        if (!result.ok) continue;
      } else {
        this.#check(table, access, "write");
        await commitMutations(this.database(), [write]);
      }
      return { key, ...item };
    }
  }

  async delete(
    table: string,
    key: string,
  ): Promise<{ message: string; key: string; table: string }> {
    checkName(table, "Table");
    checkName(key, "Key");
    const itemKey = this.#key("items", table, key);
    const { access, rest } = await this.#read(table, itemKey);
    this.#check(table, access, "write");
    if (!rest[0]) throw new KvError("NOT_FOUND", `Key '${key}' not found in table '${table}'`);
    await commitMutations(this.database(), [{ type: "delete", key: itemKey }]);
    return { message: "Key deleted successfully", key, table };
  }

  async listPermissions(table: string): Promise<FlowwPermission[]> {
    checkName(table, "Table");
    this.#check(table, (await this.#read(table)).access, "read");
    const permissions: FlowwPermission[] = [];
    for await (const entry of listIterator<FlowwPermission>(this.database, [
      ...this.#base,
      "permissions",
      table,
    ]))
      permissions.push(entry.value);
    return permissions;
  }

  /** Gives `workflow` these rights on the table (replacing any it had); it need not exist yet. */
  async grant(
    table: string,
    workflow: string,
    rights: { can_read: boolean; can_write: boolean },
  ): Promise<FlowwPermission> {
    checkName(table, "Table");
    checkName(workflow, "Workflow");
    const permissionKey = this.#key("permissions", table, workflow);
    const { access, rest } = await this.#read(table, permissionKey);
    this.#check(table, access, "write");
    const previous = rest[0] ? (decodeValue(rest[0]) as FlowwPermission) : undefined;
    const permission = {
      workflow_id: workflow,
      ...rights,
      created_at: previous?.created_at ?? now(),
    };
    await commitMutations(this.database(), [
      { type: "set", key: permissionKey, value: encodeValueChecked(permission) },
    ]);
    return permission;
  }

  async revoke(
    table: string,
    workflow: string,
  ): Promise<{ message: string; table: string; workflow_id: string }> {
    checkName(table, "Table");
    checkName(workflow, "Workflow");
    const permissionKey = this.#key("permissions", table, workflow);
    const { access, rest } = await this.#read(table, permissionKey);
    this.#check(table, access, "write");
    if (!rest[0]) {
      throw new KvError(
        "NOT_FOUND",
        `Permission for workflow '${workflow}' on table '${table}' not found`,
      );
    }
    await commitMutations(this.database(), [{ type: "delete", key: permissionKey }]);
    return { message: "Permission revoked successfully", table, workflow_id: workflow };
  }
}
