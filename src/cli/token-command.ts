/**
 * `cairn token create|list|revoke`: principals and their tokens, through a server's admin API
 * (`--url`, with an admin `--token`), or on a database directly with `--data` when no server runs.
 * Either way a command works on, and `--json` prints, the admin API's JSON.
 */
import { existsSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseDuration } from "../codec/duration.js";
import { type Grant, type GrantAccess, grantsFromJson, grantsToJson } from "../kv/grants.js";
import { isPostgresUrl, localDatabaseExists, openLocalDatabase } from "../kv/local-database.js";
import { KvError } from "../kv-error.js";
import { formatKeyPath, parseKeyPath } from "../protocol/key-path.js";
import { errorFromResponse } from "../sdk/remote-database.js";
import { type CreatedToken, tokenAdmin } from "../server/admin-api.js";
import { databaseName } from "../server/databases.js";
import { type TokenInfo, TokenStore } from "../server/tokens.js";
import { type ServerFlags, serverOptions, withServerToken } from "./data-commands.js";
import { tokenFile } from "./serve-command.js";

/** `POST /admin/tokens`'s body. */
interface NewTokenJson {
  name: string;
  grants: unknown[];
  admin?: true;
  expiresIn?: number;
}

/** Where the principals are kept: a server's admin API, or a database opened here. */
interface Principals {
  create(body: NewTokenJson): Promise<CreatedToken>;
  list(): Promise<{ tokens: TokenInfo[] }>;
  /** `NOT_FOUND` for a name no principal has. */
  revoke(name: string): Promise<{ revoked: string }>;
}

interface TokenFlags extends ServerFlags {
  data?: string;
  json?: boolean;
}

interface CreateFlags extends TokenFlags {
  read?: string[];
  write?: string[];
  readwrite?: string[];
  queue?: boolean;
  admin?: boolean;
  database?: string;
  expires?: string;
}

/** The admin API of the server at `url`, called with `token`. */
function adminApiAt(url: string, token: string | undefined): Principals {
  let origin: string;
  try {
    origin = new URL(url).origin; // tokens belong to the server, not to a database's path
  } catch {
    throw new KvError("INVALID_ARGUMENT", `--url ${JSON.stringify(url)} is not a URL`);
  }
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    let response: Response;
    try {
      response = await fetch(`${origin}/admin/tokens${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      const reason = ((e as Error).cause as Error | undefined)?.message ?? (e as Error).message;
      throw new KvError("UNAVAILABLE", `Cannot reach the Cairn server at ${origin}: ${reason}`, {
        cause: e,
      });
    }
    const text = await response.text();
    if (response.ok) return JSON.parse(text) as T;
    const error = errorFromResponse(origin, response.status, text);
    if (error.code === "FORBIDDEN") {
      throw new KvError(
        error.code,
        `${origin} refused the token: only an admin token manages principals (the server's --token, or the token of a principal created with --admin)`,
      );
    }
    throw error;
  }
  return {
    create: (body) => call("POST", "", body),
    list: () => call("GET", ""),
    revoke: (name) => call("DELETE", `/${encodeURIComponent(name)}`),
  };
}

/**
 * The token of the server that serves `data`, which seals new tokens for AWS Signature V4: the
 * given one (`CAIRN_TOKEN`), else the one `cairn serve` saved beside a SQLite file.
 */
function serverTokenOf(data: string, given: string | undefined): string | undefined {
  if (given) return given;
  const file = isPostgresUrl(data) ? undefined : tokenFile(data);
  return file !== undefined && existsSync(file) ? readFileSync(file, "utf8").trim() : undefined;
}

/** Runs `use` on the principals of the database at `data`, which must exist; closes it after. */
async function withDatabase<T>(
  data: string,
  serverToken: string | undefined,
  use: (p: Principals) => Promise<T>,
): Promise<T> {
  if (!(await localDatabaseExists(data))) {
    // A mistyped path would otherwise make a new, empty database no server reads.
    const where = isPostgresUrl(data) ? "in the schema that --data names" : `at ${data}`;
    throw new KvError(
      "NOT_FOUND",
      `No Cairn database ${where}: check --data, or start \`cairn serve\` on it once to create it`,
    );
  }
  const database = openLocalDatabase(data, { sweep: false });
  try {
    return await use(tokenAdmin(new TokenStore(database, serverTokenOf(data, serverToken))));
  } finally {
    await database.close();
  }
}

/**
 * Runs `use` on the principals `--data` names, or else on those of the server at `--url`. Both at
 * once on the command line are refused: they may be two places.
 */
function withPrincipals<T>(
  flags: TokenFlags,
  command: Command,
  use: (p: Principals) => Promise<T>,
): Promise<T> {
  if (flags.data === undefined)
    return withServerToken(flags, (token) => use(adminApiAt(flags.url, token)));
  for (const option of ["url", "token"]) {
    if (command.getOptionValueSource(option) === "cli") {
      throw new KvError(
        "INVALID_ARGUMENT",
        `--data and --${option} do not go together: --data works on the database itself, with no server`,
      );
    }
  }
  return withDatabase(flags.data, flags.token, use);
}

/** A grant's prefix as a key path, `""` for every key. */
const prefixPath = (path: string) => (path === "" ? [] : parseKeyPath(path));

/** The grants and other fields `create`'s flags ask for. */
function newToken(name: string, flags: CreateFlags): NewTokenJson {
  const scope = flags.database === undefined ? {} : { database: databaseName(flags.database) };
  const grants: Grant[] = [
    ...(["read", "write", "readwrite"] as const).flatMap((access: GrantAccess) =>
      (flags[access] ?? []).map((path) => ({ prefix: prefixPath(path), access, ...scope })),
    ),
    ...(flags.queue ? [{ queue: true as const, ...scope }] : []),
  ];
  if (flags.database !== undefined && grants.length === 0) {
    throw new KvError(
      "INVALID_ARGUMENT",
      "--database scopes this command's grants: give --read, --write, --readwrite or --queue too",
    );
  }
  let expiresIn: number | undefined;
  if (flags.expires !== undefined) {
    expiresIn = parseDuration(flags.expires, "--expires");
    if (expiresIn === 0) throw new KvError("INVALID_ARGUMENT", "--expires must be more than 0");
  }
  return {
    name,
    grants: grantsToJson(grants),
    ...(flags.admin ? { admin: true } : {}),
    ...(expiresIn === undefined ? {} : { expiresIn }),
  };
}

/** A grant in short form: `read users/ana`, `write ""` (every key), `queue`, with its database. */
function grantText(grant: Grant): string {
  const scope = grant.database === undefined ? "" : ` (database ${grant.database})`;
  if ("queue" in grant) return `queue${scope}`;
  const path = grant.prefix.length === 0 ? '""' : formatKeyPath(grant.prefix);
  return `${grant.access} ${path}${scope}`;
}

/** One principal on one line: name, what it may do, when it was created, when it expires. */
function principalLine(info: TokenInfo): string {
  const grants = grantsFromJson(info.grants).map(grantText);
  const access = info.admin ? "admin" : grants.length > 0 ? grants.join(", ") : "no grants";
  return `${info.name}\t${access}\tcreated ${info.createdAt}\texpires ${info.expiresAt ?? "never"}`;
}

const print = (json: unknown) => console.log(JSON.stringify(json));

/** A repeatable option's values, in order. */
const collect = (value: string, previous: string[] = []) => [...previous, value];

const tokenOptions = (command: Command) =>
  serverOptions(command)
    .option(
      "--data <location>",
      "Work on this database directly (SQLite file or postgres:// URL), not through a server.",
    )
    .option("--json", "Print what the admin API answers.");

/** Adds `cairn token` (`create`, `list`, `revoke`) to `cli`. */
export function addTokenCommand(cli: Command): void {
  const token = cli
    .command("token")
    .description(
      "Create, list and revoke principals and their tokens (with the server's admin token, or --data).",
    );
  tokenOptions(
    token
      .command("create")
      .argument("<name>", "The principal's name, e.g. ana or billing-service.")
      .option(
        "--read <path>",
        'Let it read the keys at or under this key path ("" for every key); repeatable.',
        collect,
      )
      .option("--write <path>", "Let it write the keys at or under this path; repeatable.", collect)
      .option(
        "--readwrite <path>",
        "Let it read and write the keys at or under this path; repeatable.",
        collect,
      )
      .option("--queue", "Let it use the queue (enqueue, listen, settle, dead letters).")
      .option("--admin", "Let it do everything, the admin API included.")
      .option("--database <name>", "Make this command's grants hold in this named database only.")
      .option("--expires <duration>", 'Let its token expire after this long, e.g. "30d".')
      .description("Create a principal and print its token, which is shown only this once."),
  ).action((name: string, flags: CreateFlags, command: Command) => {
    const body = newToken(name, flags); // flags checked before any database or server is reached
    return withPrincipals(flags, command, async (principals) => {
      const created = await principals.create(body);
      if (flags.json) return print(created);
      console.log(created.token);
      console.log(
        `This token is shown only now: it cannot be shown again (if it is lost, revoke ${created.name} and create another).`,
      );
      console.log(principalLine(created));
    });
  });
  tokenOptions(
    token
      .command("list")
      .description("List the principals, one a line: name, grants, created, expires."),
  ).action((flags: TokenFlags, command: Command) =>
    withPrincipals(flags, command, async (principals) => {
      const listed = await principals.list();
      if (flags.json) return print(listed);
      if (listed.tokens.length === 0) console.log("(none)");
      for (const info of listed.tokens) console.log(principalLine(info));
    }),
  );
  tokenOptions(
    token
      .command("revoke")
      .argument("<name>", "The principal's name.")
      .description("Remove a principal: its token is refused from then on."),
  ).action((name: string, flags: TokenFlags, command: Command) =>
    withPrincipals(flags, command, async (principals) => {
      const revoked = await principals.revoke(name);
      if (flags.json) print(revoked);
      else console.log(`revoked ${revoked.revoked}`);
    }),
  );
}
