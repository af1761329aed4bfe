/**
 * A server of the server benchmark in its own process: started, awaited until it prints
 * `listening on http://127.0.0.1:<port>`, and stopped with SIGTERM (SIGKILL if it lingers).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";

const LISTENING = /listening on (http:\/\/127\.0\.0\.1:\d+)/;
/** Generous: servers preload their database before they listen. */
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 15_000;

/** Resolves with the URL the child prints; rejects if it exits or stays silent too long. */
function listeningUrl(child, name) {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(
      () => reject(new Error(`${name} did not listen within ${START_TIMEOUT_MS / 1000} s`)),
      START_TIMEOUT_MS,
    );
    const onData = (chunk) => {
      output += chunk;
      const match = LISTENING.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.stdout.off("data", onData).resume();
      child.off("exit", onExit).off("error", onExit);
      resolve(match[1]);
    };
    const onExit = (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${signal ?? code}) before listening`));
    };
    child.stdout.on("data", onData);
    child.once("exit", onExit);
    child.once("error", onExit);
  });
}

async function stop(child) {
  const running = child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  if (!running) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Starts `[file, args]`; resolves with `{ url, pid, stop }` once it listens. Its stderr is ours. */
export async function startServer([file, args], name) {
  const child = spawn(file, args, {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
  });
  try {
    return { url: await listeningUrl(child, name), pid: child.pid, stop: () => stop(child) };
  } catch (error) {
    await stop(child);
    throw error;
  }
}
