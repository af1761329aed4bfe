/** Helpers the benchmark scripts share. */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** The absolute path of `path`, relative to bench/. */
export const here = (path) => fileURLToPath(new URL(path, import.meta.url));
export const DENO = here("../node_modules/.bin/deno");

/** Runs `file args` (with `env` added) to completion and parses its standard output as JSON. */
export async function runJson(file, args, env = {}) {
  const { stdout } = await execFileAsync(file, args, {
    env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", ...env },
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout);
}

/**
 * One load of a server from its own process (bench/load.js): `spec` is `{ url, token, route,
 * connections, seconds, warmup, timeout? }`; resolves `{ requests, seconds, p99Ms }`.
 */
export const runLoad = (spec) => runJson(process.execPath, [here("load.js"), JSON.stringify(spec)]);

/** Runs `work(dir)` on a fresh temporary directory, removed afterwards. */
export async function inTempDir(prefix, work) {
  const dir = await mkdtemp(join(tmpdir(), `cairn-bench-${prefix}-`));
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `items` rotated left by `run`, so that across runs no item always goes first. */
export function rotated(items, run) {
  const shift = run % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
