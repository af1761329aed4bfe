/**
 * The `cairn` command. Every flag has an environment variable and one sentence of help; options
 * are parsed once into a frozen object.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { KvError } from "../kv-error.js";
import { DEFAULT_PATH } from "../sdk/kv.js";
import { type ServerOptions, startServer } from "../server/server.js";

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  return pkg.version as string;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new InvalidArgumentError("a port is an integer 0–65535");
  return n;
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
}

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
  const file = join(dirname(flags.data), "token");
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
  const { token, note } = resolveToken(flags);
  const options: ServerOptions = Object.freeze({
    host: flags.host,
    port: flags.port,
    data: flags.data,
    durability: flags.durability,
    auth: flags.auth,
    token,
    tls: flags.tlsCert
      ? { cert: readFileSync(flags.tlsCert), key: readFileSync(flags.tlsKey!) }
      : undefined,
  });
  const server = await startServer(options);
  console.log(
    `Cairn ${version()} listening on ${server.url} (data: ${flags.data}, durability: ${flags.durability})`,
  );
  if (note) console.log(note);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      console.log(`${signal}: finishing in-flight requests and commits…`);
      server.close().then(resolve);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  console.log("Cairn stopped.");
}

function program(): Command {
  const cli = new Command("cairn")
    .description("Cairn, a key-value database: embedded on SQLite, or served over HTTP.")
    .version(version(), "-v, --version", "Print Cairn's version.")
    .helpOption("-h, --help", "Show help.")
    .showHelpAfterError();
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
      new Option("--data <path>", "SQLite file to keep the data in.")
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
    .action((flags: ServeFlags) => serve(flags));
  return cli;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const cli = program().exitOverride();
  try {
    await cli.parseAsync(argv, { from: "user" });
    return 0;
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode;
    if (typeof code === "number") return code; // commander already printed help or the error
    console.error(`cairn: ${(error as Error).message}`);
    return 1;
  }
}
