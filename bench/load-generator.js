/**
 * The server benchmark's load generator: wrk when it is installed (C, epoll: it leaves the servers
 * most of the CPU; `apt-get install wrk`), else autocannon (an npm dependency, always there).
 * The DynamoDB routes are always loaded by autocannon: their requests are signed with AWS
 * Signature V4, prebuilt in JavaScript (bench/load.js), which wrk's Lua has no HMAC to do.
 */
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";

/** Distinct prebuilt requests per autocannon load, shared out among its connections. */
export const PREBUILT = 4096;

/** wrk's version line, or undefined if it is not installed. */
function wrkVersion() {
  const probe = spawnSync("wrk", ["-v"], { encoding: "utf8" });
  if (probe.error) return undefined;
  return /^wrk (\S+)/.exec(probe.stdout)?.[1] ?? "unknown version";
}

/** autocannon's `{ name, version, threads(connections) }`. */
export function autocannonGenerator() {
  const { version } = createRequire(import.meta.url)("autocannon/package.json");
  // One autocannon thread saturates before the servers do from 8 connections on.
  return { name: "autocannon", version, threads: (connections) => (connections >= 8 ? 2 : 1) };
}

/** `{ name, version, threads(connections) }` of the generator this machine has. */
export function generator() {
  const wrk = wrkVersion();
  if (wrk !== undefined) return { name: "wrk", version: wrk, threads: () => 1 };
  return autocannonGenerator();
}
