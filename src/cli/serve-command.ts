/**
 * `cairn serve`: its flags (each with an environment variable and one sentence of help), the
 * access token it makes or reads, and the server it starts.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { parseDuration } from "../codec/duration.js";
import { DEFAULT_PATH } from "../kv/local-database.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { parseTableDeclaration, type TableDeclaration } from "../server/faces.js";
import { type ServerOptions, startServer } from "../server/server.js";
import { isWorker, startWorkerServer, startWorkers } from "../server/workers.js";
import { type FileSetting, isSwitch, readSettings } from "./config-file.js";

function port(value: string): number {
  const n = Number(value);
  // Number("") is 0: an empty CAIRN_PORT would otherwise listen on any free port.
  if (!/^\d+$/.test(value) || n > 65_535)
    throw new InvalidArgumentError("a port is an integer 0–65535");
  return n;
}

/** A worker count: a whole number from 1, or `auto` for one per CPU core. */
function workerCount(value: string): number {
  if (value === "auto") return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new InvalidArgumentError("workers is a whole number from 1 to 256, or auto");
  return n;
}

/**
 * A parser of durations (milliseconds, or e.g. `10s`, `2m`) from `min` to `max` ms, refusing
 * anything else with `message`.
 */
const durationWithin =
  (min: number, max: number, message: string) =>
  (value: string): number => {
    let ms: number;
    try {
      ms = parseDuration(value);
    } catch {
      ms = Number.NaN;
    }
    if (!(ms >= min && ms <= max)) throw new InvalidArgumentError(message);
    return ms;
  };

const timeout = durationWithin(1, Infinity, 'a timeout is milliseconds or e.g. "10s", above 0');
const duration = durationWithin(0, Infinity, 'a duration is milliseconds or e.g. "1h"');
/** A queue lease, as the claim wire takes it (protocol/database-wire.ts `leaseFromWire`). */
const lease = durationWithin(
  1,
  3_600_000,
  'a lease is milliseconds or e.g. "30s", from 1 ms to 1h',
);

/** A connection cap: a whole number from 1. */
function connectionCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1)
    throw new InvalidArgumentError("max connections is a whole number from 1");
  return n;
}

/**
 * The switch in environment variable `name`: 1, true, yes or on; 0, false, no or off; empty or
 * unset: `undefined`. Anything else is refused, so that `CAIRN_NO_AUTH=false` cannot turn auth off.
 */
function switchFromEnv(name: string): boolean | undefined {
  const value = process.env[name]?.trim().toLowerCase();
  if (value === undefined || value === "") return undefined;
  if (["1", "true", "yes", "on"].includes(value)) return true;
  if (["0", "false", "no", "off"].includes(value)) return false;
  throw new KvError(
    "INVALID_ARGUMENT",
    `${name} is 1, true, yes or on, or 0, false, no or off; got ${JSON.stringify(process.env[name])}`,
  );
}

/** The options a settings file may set: all but `--config`. */
export const fileOptions = (options: readonly Option[]): Option[] =>
  options.filter((o) => o.attributeName() !== "config");

/** A `cairn serve` setting as resolved: its value, and where the value came from. */
export interface Setting {
  readonly value: unknown;
  /** `command line`, `env CAIRN_…`, the settings file's `path:line:column`, or `default`. */
  readonly source: string;
}

/**
 * The settings of the `cairn serve` options `command` has parsed, by the options' attribute names:
 * each from the command line, else its environment variable, else the `--config` file, else its
 * default. `INVALID_ARGUMENT` for a switch's variable that is not a yes or a no, and for a settings
 * file with problems (config-file.ts).
 */
export function serveSettings(command: Command): ReadonlyMap<string, Setting> {
  const config = command.getOptionValue("config") as string | undefined;
  const file = config
    ? readSettings(config, fileOptions(command.options))
    : new Map<string, FileSetting>();
  return new Map(
    command.options.map((o) => [
      o.attributeName(),
      settingOf(command, o, file.get(o.attributeName())),
    ]),
  );
}

function settingOf(command: Command, option: Option, inFile: FileSetting | undefined): Setting {
  const name = option.attributeName();
  const source = command.getOptionValueSource(name);
  if (source === "cli") return { value: command.getOptionValue(name), source: "command line" };
  if (isSwitch(option) && option.envVar) {
    // Commander would turn a switch on for any value of its variable, even `0`.
    const on = switchFromEnv(option.envVar);
    if (on !== undefined)
      return { value: option.negate ? !on : on, source: `env ${option.envVar}` };
  } else if (source === "env") {
    return { value: command.getOptionValue(name), source: `env ${option.envVar}` };
  }
  if (inFile) return { value: inFile.value, source: inFile.at };
  const value = isSwitch(option)
    ? option.negate || option.defaultValue === true
    : command.getOptionValue(name);
  return { value, source: "default" };
}

interface ServeFlags {
  host: string;
  port: number;
  data: string;
  token?: string;
  auth: boolean;
  tlsCert?: string;
  tlsKey?: string;
  durability: "full" | "relaxed";
  changeRetention: number;
  sweep: boolean;
  workers: number;
  writerThread: boolean;
  handshakeTimeout: number;
  idleTimeout: number;
  maxConnections: number;
  queueLockDuration: number;
  flowwJwtSecret?: string;
  dynamodbTable: TableDeclaration[];
  metricsPublic: boolean;
  metricsPersistent: boolean;
  metricsFlushInterval: number;
}

/** The settings' values, frozen: what `serve` runs with. */
const flagsOf = (settings: ReadonlyMap<string, Setting>) =>
  Object.freeze(
    Object.fromEntries([...settings].map(([name, setting]) => [name, setting.value])),
  ) as unknown as Readonly<ServeFlags>;

/** Settings whose values are never printed. */
const SECRETS = new Set(["token", "flowwJwtSecret"]);

/** A table declaration as `--dynamodb-table` takes it, its key types spelled out. */
const declarationText = ({ name, hash, range }: TableDeclaration) =>
  `${name}:${hash.name}=${hash.type}${range ? `:${range.name}=${range.type}` : ""}`;

/**
 * Setting `name`'s `value` for printing, as JSON a settings file takes: secrets as `***`, a data
 * URL's password too.
 */
export function shownSetting(name: string, value: unknown): string {
  if (value === undefined) return "(none)";
  if (SECRETS.has(name)) return '"***"';
  if (name === "data") return JSON.stringify(withoutPassword(value as string));
  if (name === "dynamodbTable")
    return JSON.stringify((value as TableDeclaration[]).map(declarationText));
  return JSON.stringify(value);
}

const isUrl = (data: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(data);

/** `data` for printing: a URL's password replaced by `***`. */
function withoutPassword(data: string): string {
  if (!isUrl(data)) return data;
  const url = new URL(data);
  if (url.password) url.password = "***";
  return url.toString();
}

/** `--dynamodb-table`, repeated: each declaration parsed, commander's way. */
function tableDeclarations(text: string, previous: TableDeclaration[]): TableDeclaration[] {
  try {
    return [...previous, parseTableDeclaration(text)];
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** Where `cairn serve` keeps the token it generated for the SQLite file `data`. */
export const tokenFile = (data: string) => join(dirname(data), "token");

/**
 * The token to require: the configured one, else one generated on first start and kept beside the
 * data (`<data dir>/token`, readable only by its owner) so that restarts keep it.
 */
function resolveToken(flags: Readonly<ServeFlags>): { token?: string; note?: string } {
  if (!flags.auth)
    return { note: "auth is OFF: anyone who can reach this port can read and write" };
  if (flags.token) return { token: flags.token };
  if (flags.data === ":memory:") {
    const token = randomBytes(24).toString("base64url");
    return { token, note: `access token (for this run): ${token}` };
  }
  if (isUrl(flags.data)) {
    throw new KvError(
      "INVALID_ARGUMENT",
      "With a postgres:// data URL, pass --token (or CAIRN_TOKEN): every node needs the same token, and there is no data directory to keep a generated one in",
    );
  }
  const file = tokenFile(flags.data);
  if (existsSync(file))
    return { token: readFileSync(file, "utf8").trim(), note: `access token: read from ${file}` };
  const token = randomBytes(24).toString("base64url");
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, note: `access token: ${token} (generated, saved in ${file})` };
}

async function serve(flags: Readonly<ServeFlags>): Promise<void> {
  if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey)) {
    throw new KvError("INVALID_ARGUMENT", "TLS needs both --tls-cert and --tls-key");
  }
  if (flags.writerThread && flags.workers > 1) {
    throw new KvError(
      "INVALID_ARGUMENT",
      "--writer-thread and --workers do not go together: with --workers the primary already commits for the workers",
    );
  }
  const { token, note } = resolveToken(flags);
  const options: ServerOptions = Object.freeze({
    host: flags.host,
    port: flags.port,
    data: flags.data,
    durability: flags.durability,
    changeRetention: flags.changeRetention,
    sweep: flags.sweep,
    writerThread: flags.writerThread,
    handshakeTimeoutMs: flags.handshakeTimeout,
    idleTimeoutMs: flags.idleTimeout,
    maxConnections: flags.maxConnections,
    flowwJwtSecret: flags.flowwJwtSecret,
    metricsPublic: flags.metricsPublic,
    metricsPersistent: flags.metricsPersistent,
    metricsFlushIntervalMs: flags.metricsFlushInterval,
    dynamodbTables: flags.dynamodbTable,
    queueLeaseMs: flags.queueLockDuration,
    auth: flags.auth,
    token,
    tls: flags.tlsCert
      ? { cert: readFileSync(flags.tlsCert), key: readFileSync(flags.tlsKey!) }
      : undefined,
  });
  if (isWorker()) {
    const server = await startWorkerServer(options);
    await Promise.race([once(process, "SIGTERM"), once(process, "disconnect")]);
    await server.close();
    return;
  }
  // Workers run this same command; a generated token reaches them through the environment.
  const server =
    flags.workers > 1
      ? await startWorkers(flags.workers, options, token ? { CAIRN_TOKEN: token } : {})
      : await startServer(options);
  const workers =
    flags.workers > 1 ? `, workers: ${flags.workers}` : flags.writerThread ? ", writer thread" : "";
  console.log(
    `Cairn ${version()} listening on ${server.url} (data: ${withoutPassword(flags.data)}, durability: ${flags.durability}${workers})`,
  );
  if (note) console.log(note);
  const signal = await Promise.race([
    once(process, "SIGINT").then(() => "SIGINT"),
    once(process, "SIGTERM").then(() => "SIGTERM"),
  ]);
  console.log(`${signal}: finishing in-flight requests and commits…`);
  await server.close();
  console.log("Cairn stopped.");
}

/** Cairn's version, from its package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  return pkg.version as string;
}

/** The options of `cairn serve`: each flag with its environment variable and one sentence of help. */
export function serveOptions(): Option[] {
  return [
    new Option(
      "--config <file>",
      "A JSONC file of these settings by camelCase name (flags and environment variables win).",
    ).env("CAIRN_CONFIG"),
    new Option("--host <host>", "Address to listen on.").env("CAIRN_HOST").default("127.0.0.1"),
    new Option("--port <port>", "Port to listen on (0: any free port).")
      .env("CAIRN_PORT")
      .default(8000)
      .argParser(port),
    new Option("--data <path>", "SQLite file to keep the data in, or a postgres:// URL.")
      .env("CAIRN_DATA")
      .default(DEFAULT_PATH),
    new Option(
      "--token <token>",
      "Access token clients must send as `Authorization: Bearer <token>`.",
    ).env("CAIRN_TOKEN"),
    new Option("--no-auth", "Serve without any access token (only on a trusted network).").env(
      "CAIRN_NO_AUTH",
    ),
    new Option("--tls-cert <file>", "PEM certificate: serve HTTPS (HTTP/2 and HTTP/1.1).").env(
      "CAIRN_TLS_CERT",
    ),
    new Option("--tls-key <file>", "PEM private key for --tls-cert.").env("CAIRN_TLS_KEY"),
    new Option(
      "--durability <mode>",
      "full: fsync every commit; relaxed: survive process crashes only.",
    )
      .env("CAIRN_DURABILITY")
      .choices(["full", "relaxed"])
      .default("full"),
    new Option(
      "--change-retention <duration>",
      "How long changes are kept for watches that resume from a cursor.",
    )
      .env("CAIRN_CHANGE_RETENTION")
      .default(limits.changeRetentionMs, `${limits.changeRetentionMs / 3_600_000}h`)
      .argParser(duration),
    new Option(
      "--no-sweep",
      "Leave expired keys and old changes to another node's sweep (they stay hidden from reads).",
    ).env("CAIRN_NO_SWEEP"),
    new Option(
      "--workers <n>",
      "Processes serving the port, over the same data (auto: one per CPU core).",
    )
      .env("CAIRN_WORKERS")
      .default(1)
      .argParser(workerCount),
    new Option(
      "--writer-thread",
      "Commit on a thread of its own (SQLite file): faster concurrent writes, slower watches.",
    )
      .env("CAIRN_WRITER_THREAD")
      .default(false),
    new Option(
      "--handshake-timeout <duration>",
      "How long a new connection may take to show its protocol (first bytes, TLS, HTTP/2 settings).",
    )
      .env("CAIRN_HANDSHAKE_TIMEOUT")
      .default(limits.handshakeTimeoutMs, `${limits.handshakeTimeoutMs / 1000}s`)
      .argParser(timeout),
    new Option(
      "--idle-timeout <duration>",
      "How long a connection without a request or stream in progress stays open.",
    )
      .env("CAIRN_IDLE_TIMEOUT")
      .default(limits.idleTimeoutMs, `${limits.idleTimeoutMs / 1000}s`)
      .argParser(timeout),
    new Option(
      "--max-connections <n>",
      "Connections one process holds open; one more is answered 503 and closed.",
    )
      .env("CAIRN_MAX_CONNECTIONS")
      .default(limits.maxConnections)
      .argParser(connectionCount),
    new Option(
      "--queue-lock-duration <duration>",
      "How long the JSON API's queue routes lease a message when the request names no lease.",
    )
      .env("CAIRN_QUEUE_LOCK_DURATION")
      .default(limits.defaultLeaseMs, `${limits.defaultLeaseMs / 1000}s`)
      .argParser(lease),
    new Option(
      "--floww-jwt-secret <secret>",
      "The secret Floww signs its workflow tokens with: Floww's routes then accept them.",
    ).env("CAIRN_FLOWW_JWT_SECRET"),
    new Option(
      "--dynamodb-table <NAME[:HASH[:RANGE]]>",
      "A DynamoDB table to create at start if missing (repeatable; keys attribute[=S|N|B], default id), e.g. users:email.",
    )
      .argParser(tableDeclarations)
      .default([]),
    new Option(
      "--metrics-public",
      "Serve /metrics and /api/metrics without a token (default: the admin token only).",
    )
      .env("CAIRN_METRICS_PUBLIC")
      .default(false),
    new Option(
      "--metrics-persistent",
      "Keep the request and error counters across restarts, in the database.",
    )
      .env("CAIRN_METRICS_PERSISTENT")
      .default(false),
    new Option(
      "--metrics-flush-interval <duration>",
      "How often persistent counters are written to the database.",
    )
      .env("CAIRN_METRICS_FLUSH_INTERVAL")
      .default(limits.metricsFlushIntervalMs, `${limits.metricsFlushIntervalMs / 1000}s`)
      .argParser(timeout),
  ];
}

/** Adds `cairn serve` to `cli`. */
export function addServeCommand(cli: Command): void {
  const command = cli
    .command("serve")
    .description("Start the server (HTTP/1.1, HTTP/2 and, with a certificate, TLS on one port).");
  for (const option of serveOptions()) command.addOption(option);
  command.action((_: unknown, command: Command) => serve(flagsOf(serveSettings(command))));
}
