/**
 * The `cairn` command: `serve` (serve-command.ts), `config` (config-command.ts), the data commands
 * (data-commands.ts), `token` (token-command.ts) and `dynamodb` (dynamodb-command.ts). Every flag
 * has an environment variable and one sentence of help; options are parsed once.
 */
import { Command } from "commander";
import { KvError } from "../kv-error.js";
import { addConfigCommand } from "./config-command.js";
import { addDataCommands } from "./data-commands.js";
import { addDynamodbCommand } from "./dynamodb-command.js";
import { addServeCommand, version } from "./serve-command.js";
import { addTokenCommand } from "./token-command.js";

function program(): Command {
  const cli = new Command("cairn")
    .description("Cairn, a key-value database: embedded on SQLite, or served over HTTP.")
    .version(version(), "-v, --version", "Print Cairn's version.")
    .helpOption("-h, --help", "Show help.")
    .showHelpAfterError();
  addServeCommand(cli);
  addConfigCommand(cli);
  addDataCommands(cli);
  addTokenCommand(cli);
  addDynamodbCommand(cli);
  return cli;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const cli = program().exitOverride();
  try {
    await cli.parseAsync(argv, { from: "user" });
    return Number(process.exitCode ?? 0); // `get` of an absent key sets 1
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode;
    if (typeof code === "number") return code; // commander already printed help or the error
    const e = error as Error & { code?: string };
    console.error(`cairn: ${e.message}${e instanceof KvError ? ` (${e.code})` : ""}`);
    return 1;
  }
}
