import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(__dirname, "..");
const src = join(root, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sourceFiles(join(dir, e.name))
      : e.name.endsWith(".ts")
        ? [join(dir, e.name)]
        : [],
  );
}

/** Layers a file may import from, by its top folder under src/ (files directly in src/ are shared leaves). */
const allowed: Record<string, string[]> = {
  codec: ["codec"],
  backends: ["codec", "backends"],
  engine: ["codec", "backends/backend.ts", "engine"],
  protocol: ["codec", "engine", "protocol"],
  sdk: ["codec", "backends", "engine", "protocol", "sdk"],
  faces: ["codec", "engine", "protocol", "sdk", "faces"],
  server: ["engine", "protocol", "faces", "sdk", "server"],
  cli: ["codec", "protocol", "sdk", "server", "cli"],
};

describe("layering", () => {
  it("imports only downwards: cli → server → faces → sdk → engine → backends → codec", () => {
    const violations: string[] = [];
    for (const file of sourceFiles(src)) {
      const layer = relative(src, file).split("/")[0]!;
      const rules = allowed[layer];
      if (!rules) continue; // src/*.ts: errors and limits, imported by all
      for (const [, spec] of readFileSync(file, "utf8").matchAll(/from "(\.[^"]+)"/g)) {
        const target = relative(src, join(file, "..", spec!)).replace(/\.js$/, ".ts");
        if (!target.includes("/")) continue;
        if (!rules.some((rule) => target === rule || target.startsWith(`${rule}/`))) {
          violations.push(`${relative(root, file)} imports ${target}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it("loads a storage driver only when a database of its kind is opened", () => {
    const script = `
      const { createRequire } = await import("node:module");
      const require = createRequire(import.meta.url);
      const loaded = (name) => Object.keys(require.cache).some((p) => p.includes("/node_modules/" + name + "/"));
      const state = () => [loaded("better-sqlite3"), loaded("postgres")];
      const cairn = await import("./dist/index.js");
      const before = state();
      const kv = await cairn.openKv(":memory:");
      await kv.close();
      const afterSqlite = state();
      await cairn.openKv("postgres://127.0.0.1:1/none");
      console.log(JSON.stringify([before, afterSqlite, state()]));
      process.exit(0); // nothing listens at that address: do not wait for the connection attempts`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: root,
      encoding: "utf8",
    });
    expect(JSON.parse(out)).toEqual([
      [false, false],
      [true, false],
      [true, true],
    ]);
  });
});
