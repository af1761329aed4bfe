import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openKv } from "../src/index.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Runs the commit loop until `acknowledged` commits are reported, kill -9s it, returns them. */
function commitThenKill(
  path: string,
  durability: string,
  acknowledged: number,
): Promise<string[][]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(__dirname, "fixtures/commit-loop.js"), path, durability],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk;
      if (output.split("\n").length > acknowledged) child.kill("SIGKILL");
    });
    child.on("error", reject);
    child.on("exit", (_code, signal) => {
      if (signal !== "SIGKILL")
        return reject(new Error(`commit loop exited without being killed (${signal})`));
      const lines = output.split("\n");
      lines.pop(); // an incomplete last line is not an acknowledgement
      resolve(lines.map((line) => line.split(" ")));
    });
  });
}

describe("durability", () => {
  for (const durability of ["full", "relaxed"]) {
    it(`keeps every acknowledged commit across kill -9 (durability ${durability})`, async () => {
      const dir = join(tmpdir(), `cairn-durability-${randomUUID()}`);
      dirs.push(dir);
      const path = join(dir, "db.sqlite");
      const acknowledged = await commitThenKill(path, durability, 400);
      expect(acknowledged.length).toBeGreaterThanOrEqual(400);

      const kv = await openKv(path);
      try {
        for (const [w, i, versionstamp] of acknowledged) {
          const entry = await kv.get(["w", Number(w), Number(i)]);
          expect(entry.versionstamp).toBe(versionstamp);
          expect(entry.value).toMatchObject({ w: Number(w), i: Number(i) });
        }
      } finally {
        await kv.close();
      }
    });
  }
});
