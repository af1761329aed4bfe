/**
 * The data commands (`get`, `set`, `delete`, `list`, `count`): a server's data from the shell,
 * through the remote SDK. How a command finds its server and token (`serverOptions`,
 * `withServerToken`) is shared with `cairn token`.
 */
import { existsSync, readFileSync } from "node:fs";
import { type Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_PATH } from "../kv/local-database.js";
import type { KvEntryMaybe } from "../kv/types.js";
import { KvError } from "../kv-error.js";
import { formatKeyPath, parseKeyPath } from "../protocol/key-path.js";
import { fromTagged, keyToJson, toTagged } from "../protocol/tagged-json.js";
import type { KvWhere } from "../protocol/where-filter.js";
import { type Kv, openKv } from "../sdk/kv.js";
import { tokenFile } from "./serve-command.js";

/** How a command reaches a server: `serverOptions`' flags. */
export interface ServerFlags {
  url: string;
  token?: string;
}

interface ClientFlags extends ServerFlags {
  json?: boolean;
}

/** Where `cairn serve` listens, and the data commands connect, unless told otherwise. */
const DEFAULT_URL = "http://127.0.0.1:8000";
/** The token file of `cairn serve` with the default `--data`. */
const DEFAULT_TOKEN_FILE = tokenFile(DEFAULT_PATH);

/** Adds `--url` and `--token` (`CAIRN_URL`, `CAIRN_TOKEN`): the server a command talks to. */
export const serverOptions = (command: Command) =>
  command
    .addOption(
      new Option("--url <url>", "Server to talk to.").env("CAIRN_URL").default(DEFAULT_URL),
    )
    .addOption(
      new Option(
        "--token <token>",
        `Access token of the server (for ${DEFAULT_URL}, default: the one \`cairn serve\` saved in ./${DEFAULT_TOKEN_FILE}).`,
      ).env("CAIRN_TOKEN"),
    );

const clientOptions = (command: Command) =>
  serverOptions(command).option(
    "--json",
    "Print what the JSON API answers (list: a JSON array of entries).",
  );

/**
 * The token to send: the given one; for the default URL without one, the token a `cairn serve`
 * with the default data directory saved (a newcomer's `npx cairn serve` next door); else none.
 */
function clientToken(flags: ServerFlags): { token?: string; fromFile?: true } {
  if (flags.token) return { token: flags.token };
  if (flags.url.replace(/\/+$/, "") !== DEFAULT_URL || !existsSync(DEFAULT_TOKEN_FILE)) return {};
  return { token: readFileSync(DEFAULT_TOKEN_FILE, "utf8").trim(), fromFile: true };
}

/**
 * Runs `use` with the token to send to `flags.url` (`clientToken`); an `UNAUTHORIZED` from the
 * server, when no token was given or it came from the file, becomes a message saying how to pass one.
 */
export async function withServerToken<T>(
  flags: ServerFlags,
  use: (token: string | undefined) => Promise<T>,
): Promise<T> {
  const { token, fromFile } = clientToken(flags);
  try {
    return await use(token);
  } catch (e) {
    // The server's message speaks of HTTP headers, and cannot know where a token came from.
    if (e instanceof KvError && e.code === "UNAUTHORIZED" && (token === undefined || fromFile)) {
      const what = fromFile
        ? `does not take the token in ./${DEFAULT_TOKEN_FILE}`
        : "needs an access token";
      throw new KvError(
        "UNAUTHORIZED",
        `${flags.url} ${what}: pass --token or set CAIRN_TOKEN (\`cairn serve\` prints the token and saves it beside its data)`,
      );
    }
    throw e;
  }
}

const withKv = <T>(flags: ClientFlags, use: (kv: Kv) => Promise<T>): Promise<T> =>
  withServerToken(flags, async (token) => {
    const kv = await openKv(flags.url, { accessToken: token });
    try {
      return await use(kv);
    } finally {
      await kv.close();
    }
  });

const print = (json: unknown) => console.log(JSON.stringify(json));
const pretty = (value: unknown) => JSON.stringify(toTagged(value));
/** An entry as the JSON API shows it: key and value tagged where JSON cannot carry them. */
const entryToJsonLine = (e: KvEntryMaybe) =>
  JSON.stringify({ key: keyToJson(e.key), value: toTagged(e.value), versionstamp: e.versionstamp });

/** A CLI value: JSON (with __type tags) when it parses, otherwise the text itself. */
function parseValue(text: string, asString: boolean | undefined): unknown {
  if (asString) return text;
  try {
    return fromTagged(JSON.parse(text));
  } catch (e) {
    if (e instanceof KvError) throw e;
    return text;
  }
}

/** A `--where` filter: JSON text, validated by the `Kv` call. */
function whereOption(text: string): KvWhere {
  try {
    return JSON.parse(text) as KvWhere;
  } catch {
    throw new InvalidArgumentError('a filter is JSON, e.g. \'{"status":"active"}\'');
  }
}

const WHERE_HELP =
  'Only entries whose value matches this filter (JSON), e.g. \'{"age":{"$gte":18}}\'.';

export function addDataCommands(cli: Command): void {
  clientOptions(
    cli
      .command("get")
      .argument("<key>", "Key path, e.g. users/123.")
      .description("Print the value at a key (exit code 1 when absent)."),
  ).action((key: string, flags: ClientFlags) =>
    withKv(flags, async (kv) => {
      const entry = await kv.get(parseKeyPath(key));
      if (flags.json) console.log(entryToJsonLine(entry));
      else if (entry.versionstamp !== null) console.log(pretty(entry.value));
      else console.error(`${key}: not found`);
      if (entry.versionstamp === null) process.exitCode = 1;
    }),
  );
  clientOptions(
    cli
      .command("set")
      .argument("<key>", "Key path, e.g. users/123.")
      .argument("<value>", "JSON (tagged values allowed), or any other text as a string.")
      .option("--string", "Store <value> as a string even if it parses as JSON.")
      .option("--expire-in <duration>", 'Time to live: milliseconds or e.g. "30s", "1h".')
      .description("Write a value at a key."),
  ).action(
    (key: string, value: string, flags: ClientFlags & { string?: boolean; expireIn?: string }) =>
      withKv(flags, async (kv) => {
        const result = await kv.set(parseKeyPath(key), parseValue(value, flags.string), {
          expireIn: flags.expireIn,
        });
        if (flags.json) print(result);
        else console.log(`ok ${result.versionstamp}`);
      }),
  );
  clientOptions(
    cli
      .command("delete")
      .argument("<key>", "Key path, e.g. users/123.")
      .option("--exact", "Delete only this key, not the keys under it.")
      .option("--where <filter>", WHERE_HELP, whereOption)
      .description("Delete a key and every key under it."),
  ).action((key: string, flags: ClientFlags & { exact?: boolean; where?: KvWhere }) =>
    withKv(flags, async (kv) => {
      const result = await kv.delete(parseKeyPath(key), { exact: flags.exact, where: flags.where });
      if (flags.json) print(result);
      else console.log(`deleted ${result.deletedCount}`);
    }),
  );
  clientOptions(
    cli
      .command("list")
      .argument("[prefix]", "Key path prefix (default: everything).")
      .option("--start <key>", "First key (inclusive).")
      .option("--end <key>", "Last key (exclusive).")
      .option("--limit <n>", "At most this many entries.", (v) => Number(v))
      .option("--reverse", "Descending key order.")
      .option("--where <filter>", WHERE_HELP, whereOption)
      .description("List entries in key order, one per line (--json: one JSON array)."),
  ).action(
    (
      prefix: string | undefined,
      flags: ClientFlags & {
        start?: string;
        end?: string;
        limit?: number;
        reverse?: boolean;
        where?: KvWhere;
      },
    ) =>
      withKv(flags, async (kv) => {
        const entries = kv.list(prefix ? parseKeyPath(prefix) : [], {
          start: flags.start ? parseKeyPath(flags.start) : undefined,
          end: flags.end ? parseKeyPath(flags.end) : undefined,
          limit: flags.limit,
          reverse: flags.reverse,
          where: flags.where,
        });
        if (!flags.json) {
          for await (const e of entries) console.log(`${formatKeyPath(e.key)}\t${pretty(e.value)}`);
          return;
        }
        // The API's array, one entry a line, written as it is read: a long listing is not held.
        let previous: string | undefined;
        console.log("[");
        for await (const e of entries) {
          if (previous !== undefined) console.log(`${previous},`);
          previous = entryToJsonLine(e);
        }
        if (previous !== undefined) console.log(previous);
        console.log("]");
      }),
  );
  clientOptions(
    cli
      .command("count")
      .argument("[prefix]", "Key path prefix (default: everything).")
      .option("--where <filter>", WHERE_HELP, whereOption)
      .description("Print how many keys are under a prefix."),
  ).action((prefix: string | undefined, flags: ClientFlags & { where?: KvWhere }) =>
    withKv(flags, async (kv) => {
      const count = await kv.count(prefix ? parseKeyPath(prefix) : [], { where: flags.where });
      if (flags.json) print({ count });
      else console.log(count);
    }),
  );
}
