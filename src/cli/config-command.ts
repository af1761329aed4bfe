/** `cairn config check FILE`: a settings file for `cairn serve --config`, checked and shown. */
import { Command } from "commander";
import { KvError } from "../kv-error.js";
import { settingKey } from "./config-file.js";
import { fileOptions, serveOptions, serveSettings, shownSetting } from "./serve-command.js";

/**
 * The settings `cairn serve --config <file>` would run with in this environment, a line each
 * (key, value, where the value came from); the file's problems, a line each, and exit code 1.
 */
function check(file: string): void {
  const command = new Command("serve").exitOverride();
  const options = serveOptions();
  for (const option of options) command.addOption(option);
  command.parse(["--config", file], { from: "user" });
  let settings: ReturnType<typeof serveSettings>;
  try {
    settings = serveSettings(command);
  } catch (error) {
    if (!(error instanceof KvError)) throw error;
    console.error(error.message);
    process.exitCode = 1;
    return;
  }
  const rows = fileOptions(options).map((o) => {
    const { value, source } = settings.get(o.attributeName())!;
    return [settingKey(o), shownSetting(o.attributeName(), value), source] as const;
  });
  const width = (column: 0 | 1) => Math.max(...rows.map((row) => row[column].length)) + 2;
  console.log(`${file}: valid; cairn serve --config ${file} runs with:`);
  for (const [key, value, source] of rows) {
    console.log(`  ${key.padEnd(width(0))}${value.padEnd(width(1))}${source}`);
  }
}

/** Adds `cairn config` to `cli`. */
export function addConfigCommand(cli: Command): void {
  cli
    .command("config")
    .description("Settings files for `cairn serve --config`.")
    .command("check <file>")
    .description(
      "Check a settings file and print what cairn serve would run with here (secrets masked).",
    )
    .action(check);
}
