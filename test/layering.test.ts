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

/**
 * Layers a file may import from, by its top folder under src/ (files directly in src/ are shared
 * leaves). The core API (kv/) is what faces and the client build on; the client (sdk/) is for
 * programs, never for faces or the server.
 */
const allowed: Record<string, string[]> = {
  codec: ["codec"],
  backends: ["codec", "backends"],
  engine: ["codec", "backends/backend.ts", "engine"],
  protocol: ["codec", "engine", "protocol"],
  kv: ["codec", "backends", "engine", "protocol", "kv"],
  sdk: ["codec", "engine", "protocol", "kv", "sdk"],
  faces: ["codec", "engine", "protocol", "kv"],
  server: ["codec", "engine", "protocol", "kv", "faces", "server"],
  cli: ["codec", "protocol", "kv", "sdk", "server", "cli"],
};

/**
 * Within faces/: a face's folder may use its own files and the shared ones beside the folders
 * (faces/*.ts), which use only each other: no face imports another.
 */
function facesAllow(file: string, target: string): boolean {
  if (!target.startsWith("faces/")) return false;
  const own = file.split("/");
  const other = target.split("/");
  return other.length === 2 || (own.length === 3 && other[1] === own[1]);
}

describe("layering", () => {
  it("imports only downwards: cli → server → faces → kv (the core) → engine → backends → codec; sdk (the client) → kv", () => {
    const violations: string[] = [];
    for (const file of sourceFiles(src)) {
      const path = relative(src, file);
      const layer = path.split("/")[0]!;
      const rules = allowed[layer];
      if (!rules) continue; // src/*.ts: errors and limits, imported by all
      for (const [, spec] of readFileSync(file, "utf8").matchAll(/from "(\.[^"]+)"/g)) {
        const target = relative(src, join(file, "..", spec!)).replace(/\.js$/, ".ts");
        if (!target.includes("/")) continue;
        if (layer === "faces" && facesAllow(path, target)) continue;
        if (!rules.some((rule) => target === rule || target.startsWith(`${rule}/`))) {
          violations.push(`${relative(root, file)} imports ${target}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it("loads a storage driver only when a database of its kind is opened, prom-client only for Prometheus text", () => {
    const script = `
      const { createRequire } = await import("node:module");
      const require = createRequire(import.meta.url);
      const loaded = (name) => Object.keys(require.cache).some((p) => p.includes("/node_modules/" + name + "/"));
      const state = () => [loaded("better-sqlite3"), loaded("postgres"), loaded("prom-client")];
      const cairn = await import("./dist/index.js");
      const before = state();
      const kv = await cairn.openKv(":memory:");
      await kv.metrics();
      const afterJson = state();
      await kv.metrics("prometheus");
      await kv.close();
      const afterSqlite = state();
      await cairn.openKv("postgres://127.0.0.1:1/none");
      console.log(JSON.stringify([before, afterJson, afterSqlite, state()]));
      process.exit(0); // nothing listens at that address: do not wait for the connection attempts`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: root,
      encoding: "utf8",
    });
    expect(JSON.parse(out)).toEqual([
      [false, false, false],
      [true, false, false],
      [true, false, true],
      [true, true, true],
    ]);
  });
});
