import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openKv } from "../src/index.js";

const BIN = join(__dirname, "..", "bin", "cairn.js");
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Starts `cairn serve` and waits for its first two lines (address, token note). */
async function serve(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; lines: string[] }> {
  const child = spawn(process.execPath, [BIN, "serve", "--port", "0", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout!.on("data", (chunk) => {
    output += chunk;
  });
  while (output.split("\n").length < 3) {
    await Promise.race([
      once(child.stdout!, "data"),
      once(child, "exit").then(() => Promise.reject(new Error(output))),
    ]);
  }
  return { child, lines: output.split("\n") };
}

describe("cairn serve", () => {
  it("generates and keeps a token, serves data, and stops gracefully on SIGTERM", async () => {
    const dir = join(tmpdir(), `cairn-cli-${randomUUID()}`);
    dirs.push(dir);
    const data = join(dir, "cairn.db");
    const { child, lines } = await serve(["--data", data]);
    const url = /listening on (\S+)/.exec(lines[0]!)![1]!;
    const token = readFileSync(join(dir, "token"), "utf8").trim();
    expect(lines[1]).toContain(token);

    expect((await fetch(`${url}/health`)).status).toBe(200);
    const kv = await openKv(url, { accessToken: token });
    await kv.set(["from", "cli"], 42);
    expect((await kv.get(["from", "cli"])).value).toBe(42);
    await kv.close();

    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    expect(code).toBe(0);

    const again = await serve(["--data", data]);
    expect(again.lines[1]).toContain(`read from ${join(dir, "token")}`);
    again.child.kill("SIGINT");
    await once(again.child, "exit");
    const local = await openKv(data);
    expect((await local.get(["from", "cli"])).value).toBe(42);
    await local.close();
  });

  it("serves without auth only when told to, through an environment variable too", async () => {
    const { child, lines } = await serve(["--data", ":memory:"], { CAIRN_NO_AUTH: "1" });
    expect(lines[1]).toContain("auth is OFF");
    const url = /listening on (\S+)/.exec(lines[0]!)![1]!;
    const kv = await openKv(url);
    expect((await kv.set(["open"], 1)).ok).toBe(true);
    await kv.close();
    child.kill("SIGTERM");
    await once(child, "exit");
  });

  it("rejects bad flags with a message and exit code 1", async () => {
    const child = spawn(process.execPath, [BIN, "serve", "--port", "99999"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (chunk) => {
      stderr += chunk;
    });
    const [code] = await once(child, "exit");
    expect(code).toBe(1);
    expect(stderr).toContain("a port is an integer 0–65535");
  });
});
