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

/** A timeout: milliseconds, or a duration such as `10s` or `2m`; more than zero. */
function timeout(value: string): number {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch {
    ms = 0;
  }
  if (!(ms > 0)) throw new InvalidArgumentError('a timeout is milliseconds or e.g. "10s", above 0');
  return ms;
}

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

/**
 * The serve flags with the switches taken from their environment variables where the command line
 * does not set them. (Commander would turn a switch on for any value of its variable, even `0`.)
 */
function withSwitchesFromEnv(flags: ServeFlags, command: Command): ServeFlags {
  const fromCli = (option: string) => command.getOptionValueSource(option) === "cli";
  return {
    ...flags,
    auth: fromCli("auth") ? flags.auth : !(switchFromEnv("CAIRN_NO_AUTH") ?? false),
    sweep: fromCli("sweep") ? flags.sweep : !(switchFromEnv("CAIRN_NO_SWEEP") ?? false),
    writerThread: fromCli("writerThread")
      ? flags.writerThread
      : (switchFromEnv("CAIRN_WRITER_THREAD") ?? false),
  };
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
  changeRetention: string;
  sweep: boolean;
  workers: number;
  writerThread: boolean;
  handshakeTimeout: number;
  idleTimeout: number;
  maxConnections: number;
  flowwJwtSecret?: string;
  dynamodbTable: TableDeclaration[];
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
function resolveToken(flags: ServeFlags): { token?: string; note?: string } {
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

async function serve(flags: ServeFlags): Promise<void> {
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
    dynamodbTables: flags.dynamodbTable,
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

/** Adds `cairn serve` to `cli`. */
export function addServeCommand(cli: Command): void {
  cli
    .command("serve")
    .description("Start the server (HTTP/1.1, HTTP/2 and, with a certificate, TLS on one port).")
    .addOption(
      new Option("--host <host>", "Address to listen on.").env("CAIRN_HOST").default("127.0.0.1"),
    )
    .addOption(
      new Option("--port <port>", "Port to listen on (0: any free port).")
        .env("CAIRN_PORT")
        .default(8000)
        .argParser(port),
    )
    .addOption(
      new Option("--data <path>", "SQLite file to keep the data in, or a postgres:// URL.")
        .env("CAIRN_DATA")
        .default(DEFAULT_PATH),
    )
    .addOption(
      new Option(
        "--token <token>",
        "Access token clients must send as `Authorization: Bearer <token>`.",
      ).env("CAIRN_TOKEN"),
    )
    .addOption(
      new Option("--no-auth", "Serve without any access token (only on a trusted network).").env(
        "CAIRN_NO_AUTH",
      ),
    )
    .addOption(
      new Option("--tls-cert <file>", "PEM certificate: serve HTTPS (HTTP/2 and HTTP/1.1).").env(
        "CAIRN_TLS_CERT",
      ),
    )
    .addOption(
      new Option("--tls-key <file>", "PEM private key for --tls-cert.").env("CAIRN_TLS_KEY"),
    )
    .addOption(
      new Option(
        "--durability <mode>",
        "full: fsync every commit; relaxed: survive process crashes only.",
      )
        .env("CAIRN_DURABILITY")
        .choices(["full", "relaxed"])
        .default("full"),
    )
    .addOption(
      new Option(
        "--change-retention <duration>",
        "How long changes are kept for watches that resume from a cursor.",
      )
        .env("CAIRN_CHANGE_RETENTION")
        .default("1h"),
    )
    .addOption(
      new Option(
        "--no-sweep",
        "Leave expired keys and old changes to another node's sweep (they stay hidden from reads).",
      ).env("CAIRN_NO_SWEEP"),
    )
    .addOption(
      new Option(
        "--workers <n>",
        "Processes serving the port, over the same data (auto: one per CPU core).",
      )
        .env("CAIRN_WORKERS")
        .default(1)
        .argParser(workerCount),
    )
    .addOption(
      new Option(
        "--writer-thread",
        "Commit on a thread of its own (SQLite file): faster concurrent writes, slower watches.",
      )
        .env("CAIRN_WRITER_THREAD")
        .default(false),
    )
    .addOption(
      new Option(
        "--handshake-timeout <duration>",
        "How long a new connection may take to show its protocol (first bytes, TLS, HTTP/2 settings).",
      )
        .env("CAIRN_HANDSHAKE_TIMEOUT")
        .default(limits.handshakeTimeoutMs, `${limits.handshakeTimeoutMs / 1000}s`)
        .argParser(timeout),
    )
    .addOption(
      new Option(
        "--idle-timeout <duration>",
        "How long a connection without a request or stream in progress stays open.",
      )
        .env("CAIRN_IDLE_TIMEOUT")
        .default(limits.idleTimeoutMs, `${limits.idleTimeoutMs / 1000}s`)
        .argParser(timeout),
    )
    .addOption(
      new Option(
        "--max-connections <n>",
        "Connections one process holds open; one more is answered 503 and closed.",
      )
        .env("CAIRN_MAX_CONNECTIONS")
        .default(limits.maxConnections)
        .argParser(connectionCount),
    )
    .addOption(
      new Option(
        "--floww-jwt-secret <secret>",
        "The secret Floww signs its workflow tokens with: Floww's routes then accept them.",
      ).env("CAIRN_FLOWW_JWT_SECRET"),
    )
    .addOption(
      new Option(
        "--dynamodb-table <NAME[:HASH[:RANGE]]>",
        "A DynamoDB table to create at start if missing (repeatable; keys attribute[=S|N|B], default id), e.g. users:email.",
      )
        .argParser(tableDeclarations)
        .default([]),
    )
    .action((flags: ServeFlags, command: Command) => serve(withSwitchesFromEnv(flags, command)));
}
