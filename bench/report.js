/** Renders benchmark results as Markdown. */

/** The workloads in table order: what each measures, its unit, and Cairn's target versus raw. */
export const ROWS = [
  { workload: "E1", title: "E1 sequential durable set", unit: "ops/s", target: 0.85 },
  { workload: "E2", title: "E2 random point get, 100k keys", unit: "ops/s", target: 0.5 },
  { workload: "E3", title: "E3 get + checked set", unit: "ops/s", target: 0.8 },
  { workload: "E4", title: "E4 list 100 entries", unit: "lists/s", target: 0.7 },
  { workload: "E5", title: "E5 1000 sets in one commit", unit: "rows/s", target: 0.7 },
];

/** The workloads also run on Cairn with relaxed durability. */
export const RELAXED_WORKLOADS = ["E1", "E3"];

const DASH = "—";

/** 950, 7.6k, 166k, 1.2M: three significant digits at most. */
export function human(n) {
  const short = (x, unit) => `${x.toFixed(x < 9.95 ? 1 : 0)}${unit}`;
  if (n >= 999_500) return short(n / 1e6, "M");
  if (n >= 999.5) return short(n / 1e3, "k");
  return `${Math.round(n)}`;
}

/** Milliseconds for a table cell: "< 1", one decimal below 10, whole above. */
export function milliseconds(ms) {
  return ms < 1 ? "< 1" : ms.toFixed(ms < 9.95 ? 1 : 0);
}

const rate = (n) => (n === undefined ? DASH : `${human(n)}/s`);
const ratio = (a, b) => (a === undefined || b === undefined ? undefined : a / b);
const times = (r) => (r === undefined ? DASH : `${r.toFixed(2)}×`);

function mainRow({ workload, title, unit, target }, medians) {
  const { deno, raw, cairn } = medians[workload] ?? {};
  const vsRaw = ratio(cairn, raw);
  const verdict = vsRaw === undefined ? "" : vsRaw >= target ? " ✓" : " ✗";
  return [
    `${title} (${unit})`,
    rate(deno),
    rate(raw),
    rate(cairn),
    times(vsRaw),
    times(ratio(cairn, deno)),
    `≥ ${target}× raw${verdict}`,
  ];
}

function relaxedRow({ title, unit }, { cairn, "cairn-relaxed": relaxed }) {
  const speedup = ratio(relaxed, cairn);
  return [
    `${title}, **Cairn relaxed** (${unit})`,
    DASH,
    DASH,
    rate(relaxed),
    DASH,
    DASH,
    speedup === undefined ? "info" : `info: ${times(speedup)} Cairn full`,
  ];
}

function postgresRow({ title, unit }, { cairn, "cairn-pg": pg, deno }) {
  const vsSqlite = ratio(pg, cairn);
  return [
    `${title}, **Cairn on PostgreSQL** (${unit})`,
    DASH,
    DASH,
    rate(pg),
    DASH,
    times(ratio(pg, deno)),
    vsSqlite === undefined ? "info" : `info: ${times(vsSqlite)} Cairn on SQLite`,
  ];
}

function table(medians) {
  const head = [
    "workload",
    "Deno KV",
    "raw better-sqlite3",
    "Cairn",
    "Cairn / raw",
    "Cairn / Deno",
    "target",
  ];
  const rows = ROWS.filter((row) => medians[row.workload]).map((row) => mainRow(row, medians));
  for (const row of ROWS) {
    const measured = medians[row.workload];
    if (measured?.["cairn-relaxed"] !== undefined) rows.push(relaxedRow(row, measured));
  }
  for (const row of ROWS) {
    const measured = medians[row.workload];
    if (measured?.["cairn-pg"] !== undefined) rows.push(postgresRow(row, measured));
  }
  const line = (cells) => `| ${cells.join(" | ")} |`;
  return [
    line(head),
    line(["---", "---:", "---:", "---:", "---:", "---:", "---"]),
    ...rows.map(line),
  ];
}

function memoryLine(samples) {
  const points = samples.map(
    (s) => `${human(s.keys)} keys ${Math.round(s.rssMb)} MB (JS heap ${Math.round(s.heapMb)} MB)`,
  );
  const growth = samples.at(-1).rssMb - samples[0].rssMb;
  return (
    `**Memory** (Cairn, RSS and JS heap after a forced GC while writing ${human(samples.at(-1).keys)} keys ` +
    `in commits of 1000, relaxed durability): ${points.join(" · ")}; growth ` +
    `${growth >= 0 ? "+" : ""}${Math.round(growth)} MB RSS (SQLite's page cache may hold up to 64 MB).`
  );
}

function conditions(c) {
  return [
    "**Conditions**",
    "",
    `- date: ${c.date}`,
    `- Node ${c.node}, Deno ${c.deno}, SQLite ${c.sqlite} (better-sqlite3; Deno KV embeds its own)`,
    `- CPU: ${c.cpu}, ${c.cores} cores`,
    `- runs: ${c.runs}, median per cell; BENCH_SCALE=${c.scale}; systems interleaved per workload`,
    ...(c.work ? embeddedConditions(c) : []),
  ];
}

function embeddedConditions(c) {
  return [
    `- value: ${c.valueBytes} bytes as JSON, the same for every system; keys ["k", i] ` +
      "(raw: a 6-byte BLOB); E2–E4 on 100k preloaded keys",
    "- durability: an fsync per commit everywhere (SQLite WAL, synchronous=FULL; Deno KV's " +
      "default); Cairn relaxed: synchronous=NORMAL",
    `- work per cell: ${c.work}`,
  ];
}

/** The whole report: title, results table, memory line and conditions. */
export function renderReport({ medians, memory, conditions: c }) {
  const parts = ["# Cairn benchmark", ""];
  if (Object.keys(medians).length > 0) parts.push(...table(medians), "");
  if (memory) parts.push(memoryLine(memory), "");
  parts.push(...conditions(c));
  return `${parts.join("\n")}\n`;
}
