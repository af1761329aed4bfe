/**
 * Builds `dist/` from the sources before any test runs, so that `npx vitest` alone tests what is
 * in the tree: the writer thread, the CLI and the fixtures run in threads and processes of their
 * own, which load the build (they cannot load TypeScript).
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";

export default function setup(): void {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], {
    cwd: join(import.meta.dirname, ".."),
    stdio: "inherit",
  });
}
