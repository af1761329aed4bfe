/** Renders the server benchmark's results (bench/server-bench.js) as a Markdown section. */
import { human, milliseconds } from "./report.js";

const DASH = "—";
/** The connection count the targets are checked at. */
const TARGET_CONNECTIONS = 64;

/** The workloads in table order, with Cairn's targets as ratios to other systems. */
const ROWS = [
  { workload: "S1", title: "S1 point GET", targets: { bare: 0.6, deno: 2 } },
  { workload: "S2", title: "S2 durable point PUT", targets: { raw: 0.8, deno: 4 } },
  { workload: "S3", title: "S3 10-key batch GET", targets: { deno: 3 } },
];
/** Cairn's HTTP stack (listener, router, auth) on GET /health against bare node:http on S1. */
const STACK = { title: "Cairn HTTP stack: GET /health (vs bare S1)", targets: { bare: 0.85 } };

const NAMES = { bare: "bare", raw: "hand-rolled", deno: "Deno" };

function cell(measured) {
  if (measured === undefined) return DASH;
  return `${human(measured.rate)}/s · p99 ${milliseconds(measured.p99Ms)} ms`;
}

const times = (r) => (r === undefined ? DASH : `${r.toFixed(2)}×`);

function targetsText(targets, ratios) {
  return Object.entries(targets)
    .map(([system, target]) => {
      const ratio = ratios[system];
      const verdict = ratio === undefined ? "" : ratio >= target ? " ✓" : " ✗";
      return `≥ ${target}× ${NAMES[system]}${verdict}`;
    })
    .join(", ");
}

/**
 * One table row: `cairn` measured against `others` (by system), at `connections`; `ratios` are
 * Cairn's to each other system (medians of per-run ratios).
 */
function row(title, connections, cairn, others, ratios, targets) {
  return [
    title,
    `${connections}`,
    cell(others.bare),
    cell(others.raw),
    cell(others.deno),
    cell(cairn),
    times(ratios.bare),
    times(ratios.raw),
    times(ratios.deno),
    connections === TARGET_CONNECTIONS ? targetsText(targets, ratios) : "info",
  ];
}

function rowsOf(medians, ratios, workers) {
  const connectionsOf = (bySystem) =>
    [...new Set(Object.values(bySystem).flatMap((byConnections) => Object.keys(byConnections)))]
      .map(Number)
      .sort((a, b) => a - b);
  const rows = [];
  for (const { workload, title, targets } of ROWS) {
    const bySystem = medians[workload];
    if (!bySystem) continue;
    for (const connections of connectionsOf(bySystem)) {
      const at = (system) => bySystem[system]?.[connections];
      const ratiosOf = (system) => ratios[workload]?.[connections]?.[system] ?? {};
      const others = { bare: at("bare"), raw: at("raw"), deno: at("deno") };
      rows.push(row(title, connections, at("cairn"), others, ratiosOf("cairn"), targets));
      for (const [system, flag] of [
        ["cairn-workers", `--workers ${workers}`],
        ["cairn-writer", "--writer-thread"],
      ]) {
        const variant = at(system);
        if (variant) {
          const titled = `${title}, Cairn ${flag}`;
          rows.push(row(titled, connections, variant, others, ratiosOf(system), targets));
        }
      }
      const stack = at("cairn-health");
      if (stack) {
        const { bare } = ratiosOf("cairn-health");
        rows.push(
          row(STACK.title, connections, stack, { bare: others.bare }, { bare }, STACK.targets),
        );
      }
    }
  }
  return rows;
}

function table(medians, ratios, workers) {
  const head = [
    "workload",
    "conns",
    "bare node:http",
    "node:http + better-sqlite3",
    "Deno.serve + Deno KV",
    "Cairn",
    "Cairn / bare",
    "Cairn / hand-rolled",
    "Cairn / Deno",
    `target (${TARGET_CONNECTIONS} conns)`,
  ];
  const line = (cells) => `| ${cells.join(" | ")} |`;
  const align = ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---"];
  return [line(head), line(align), ...rowsOf(medians, ratios, workers).map(line)];
}

function conditions(c) {
  return [
    "**Server conditions**",
    "",
    `- load generator: ${c.generator}, in its own process, threads ${c.threads.join(", ")}; ` +
      "it shares the machine's cores with the server under test",
    `- HTTP/1.1 over loopback (127.0.0.1), keep-alive, no pipelining; ${c.connections.join(" and ")} ` +
      `connections; ${c.seconds} s per load after a ${c.warmupSeconds} s warm-up; req/s and p99 ` +
      "latency are medians over runs; each ratio is the median " +
      "over runs of that run's ratio (both systems measured in the same run, at most one round " +
      "of loads apart: a workload's servers are all up together, idle but for the one under " +
      "load, and loaded in turn, in an order rotated by run)",
    "- at 1 connection each request includes a cross-process wake-up over loopback, which " +
      "dominates the GET rows",
    `- every server in its own process (Cairn --workers ${c.workers}: ${c.workers} processes over ` +
      "one SQLite file, a primary that also commits for the others and " +
      `${c.workers - 1} worker${c.workers === 2 ? "" : "s"}), on a fresh database per workload and system; bare ignores ` +
      "the route and answers a constant body; the others check the bearer token; Cairn's GET " +
      "/health also reads SQLite once (its storage check)",
    `- keys ["k", i] of ${human(c.keys)} preloaded, random per request; value ${c.valueBytes} ` +
      "bytes as JSON; PUTs rewrite a random key with a value never sent before",
    `- Happy Server: keys k<i> of ${human(c.keys)} preloaded for the admin's user through ` +
      `happyKv, each holding ${c.happyValueChars} base64 characters; each POST /v1/kv creates a ` +
      "new key at version -1 (a read of the key and the user's seq, then a commit checked on " +
      "the seq writing the key, the seq and the update event; concurrent mutates of the user " +
      "share one), all of one user",
    `- DynamoDB: table \`bench\` (hash key \`id\`, S) of ${human(c.keys)} items ` +
      "`{id: \"k<i>\", v: <the value's v>}` (both S) preloaded through the face's PutItem; " +
      "POST / with X-Amz-Target, each request signed with AWS Signature V4 (host, content-type, " +
      "x-amz-target, x-amz-date; access key id admin, the server's token as secret key); " +
      `loaded by ${c.dynamoGenerator} whatever the generator above (threads ` +
      `${c.dynamoThreads.join(", ")}), on ${c.prebuilt} requests signed before the load, each ` +
      "connection cycling through its share: GetItem of a random item; PutItem of a random item " +
      "with a value of the same size, distinct per request",
    "- durability: an fsync per commit (SQLite WAL, synchronous=FULL; Deno KV's default); " +
      "concurrent PUTs share a commit on the hand-rolled server (one transaction per event-loop " +
      "turn) and on Cairn; Deno KV commits each `kv.set`",
  ];
}

/** Cairn's targets measured against Cairn's own workload route on the same server. */
const AGAINST_CAIRN = [
  {
    workload: "S1",
    system: "cairn-granted",
    title: "S1 with a principal's token (one read grant) vs the admin token",
    target: 0.95,
  },
  {
    workload: "S1",
    system: "happy-get",
    title: "Happy Server GET /v1/kv/:key vs S1 GET",
    target: 0.8,
  },
  {
    workload: "S2",
    system: "happy-put",
    title: "Happy Server POST /v1/kv of one mutation (a new key) vs S2 PUT",
    target: 0.8,
  },
  {
    workload: "S1",
    system: "dynamo-get",
    title: "DynamoDB GetItem vs S1 GET",
    target: 0.7,
  },
  {
    workload: "S2",
    system: "dynamo-put",
    title: "DynamoDB PutItem (a random item, a fresh value) vs S2 PUT",
    target: 0.7,
  },
];

/**
 * What grants cost (S1 with a principal's token over S1 with the admin token), Happy Server's
 * and DynamoDB's routes over Cairn's own GET and PUT: each against Cairn's route on the same
 * server.
 */
function againstCairn(medians, ratios) {
  return AGAINST_CAIRN.flatMap(({ workload, system, title, target }) => {
    const measured = medians[workload]?.[system];
    if (!measured) return [];
    return Object.keys(measured).map((connections) => {
      const ratio = ratios[workload]?.[connections]?.[system]?.cairn;
      const verdict =
        Number(connections) === TARGET_CONNECTIONS
          ? `; target ≥ ${target}×${ratio >= target ? " ✓" : " ✗"}`
          : "";
      return `- ${title}, ${connections} conn: ${cell(measured[connections])}, ${times(ratio)}${verdict}`;
    });
  });
}

/** The server section of the report, to append to `renderReport`'s. */
export function renderServerReport({ medians, ratios, conditions: c }) {
  const rows = table(medians, ratios, c.workers);
  const own = againstCairn(medians, ratios);
  const sections = [
    "## Server",
    "",
    ...rows,
    "",
    ...own,
    ...(own.length ? [""] : []),
    ...conditions(c),
  ];
  return `\n${sections.join("\n")}\n`;
}
