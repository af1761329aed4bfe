/**
 * The `cairn` CLI (bin/cairn.js, over the build global-setup makes) run as a child process, for
 * tests that drive it against a server running in the test's own process.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BIN = join(import.meta.dirname, "..", "bin", "cairn.js");

/** The environment without CAIRN_* variables: each run says where it works. */
const bare = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !name.startsWith("CAIRN_")),
);

/**
 * Runs `cairn args` with `env` added; its exit code and trimmed output. Asynchronous: the server
 * it talks to answers from this process while it waits.
 */
export async function runCairn(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: tmpdir(),
    env: { ...bare, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk) => {
    out += chunk;
  });
  child.stderr.on("data", (chunk) => {
    err += chunk;
  });
  const [code] = await once(child, "close");
  return { code, out: out.trim(), err: err.trim() };
}
