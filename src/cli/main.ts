import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const HELP = `Usage: cairn [--help] [--version]

Cairn is a key-value database. This version is embedded only: use it from
TypeScript with \`import { openKv } from "cairn"\`. The server (\`cairn serve\`)
and the data commands (get, set, delete, list) come with the HTTP server.

Options:
  -h, --help     Show this help.
  -v, --version  Print Cairn's version.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  return pkg.version as string;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let values: { help?: boolean; version?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { help: { type: "boolean", short: "h" }, version: { type: "boolean", short: "v" } },
    }));
  } catch (e) {
    console.error(`cairn: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.version) {
    console.log(version());
    return 0;
  }
  if (positionals.length > 0) {
    console.error(`cairn: unknown command "${positionals[0]}"\n\n${HELP}`);
    return 2;
  }
  console.log(HELP);
  return 0;
}
