/** Renders the KV Connect benchmark's results (bench/kv-connect-bench.js) as a Markdown section. */
import { human } from "./report.js";

const DASH = "—";

const ROWS = [
  { workload: "K1", title: "K1 point get" },
  { workload: "K2", title: "K2 durable point set" },
  { workload: "K3", title: "K3 10-key getMany" },
];

function cell(measured) {
  if (measured === undefined) return DASH;
  const p99 = measured.p99Ms < 10 ? measured.p99Ms.toFixed(1) : Math.round(measured.p99Ms);
  return `${human(measured.rate)}/s · p99 ${p99} ms`;
}

const ratio = (a, b) =>
  a === undefined || b === undefined ? DASH : `${(a.rate / b.rate).toFixed(2)}×`;

function table(medians) {
  const head = [
    "workload",
    "callers",
    "Deno KV embedded",
    "Cairn SDK → cairn serve (JSON)",
    "Deno → cairn serve (KV Connect)",
    "KV Connect / Cairn SDK",
    "KV Connect / embedded",
  ];
  const line = (cells) => `| ${cells.join(" | ")} |`;
  const rows = [];
  for (const { workload, title } of ROWS) {
    const bySystem = medians[workload];
    if (!bySystem) continue;
    const callers = [
      ...new Set(Object.values(bySystem).flatMap((byCallers) => Object.keys(byCallers))),
    ].sort((a, b) => a - b);
    for (const n of callers) {
      const [deno, cairn, connect] = ["deno", "cairn", "deno-connect"].map((s) => bySystem[s]?.[n]);
      rows.push([
        title,
        n,
        cell(deno),
        cell(cairn),
        cell(connect),
        ratio(connect, cairn),
        ratio(connect, deno),
      ]);
    }
  }
  return [
    line(head),
    line(["---", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ...rows.map(line),
  ];
}

function conditions(c) {
  return [
    "**KV Connect conditions**",
    "",
    `- ${c.callers.join(" and ")} concurrent callers on one database handle in one client ` +
      "process, each awaiting one operation at a time; ops/s and p99 latency (timed per " +
      `operation in the client) over ${c.seconds} s after a ${c.warmupSeconds} s warm-up at the ` +
      "same concurrency, medians over runs",
    "- Deno KV embedded runs in the Deno process; the two remote clients talk to `cairn serve` in " +
      "its own process over loopback: Deno over KV Connect (protobuf, cleartext HTTP/2, one " +
      "connection, data-path token), Cairn's SDK over Cairn's JSON database protocol (HTTP/1.1 " +
      "keep-alive, undici's connection pool); client and server share the machine's cores",
    `- keys ["k", i] of ${human(c.keys)} preloaded, random per operation; value ${c.valueBytes} ` +
      "bytes as JSON (V8 on Deno's side); sets rewrite a random key with a value never sent before",
    "- durability: an fsync per commit (SQLite WAL, synchronous=FULL) everywhere; `cairn serve` " +
      "groups concurrent commits into one transaction, Deno KV embedded commits each `set`",
  ];
}

/** The KV Connect section of the report. */
export function renderKvConnectReport({ medians, conditions: c }) {
  return `\n${["## KV Connect", "", ...table(medians), "", ...conditions(c)].join("\n")}\n`;
}
