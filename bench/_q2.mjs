import Database from "better-sqlite3";

const d = new Database("/tmp/wrk/q.db");
const lo = Buffer.from([0x02, 0x71, 0x00]),
  hi = Buffer.from([0x02, 0x71, 0x01]);
const now = Date.now();
const q = (name, sql, ...p) => {
  const st = d.prepare(sql).pluck();
  st.get(...p);
  const t = performance.now();
  let n;
  for (let i = 0; i < 20; i++) n = st.get(...p);
  console.log(name.padEnd(30), ((performance.now() - t) / 20).toFixed(2), "ms", n);
};
const R = "SELECT count(*) FROM kv WHERE key >= ? AND key < ?";
q("range only", R, lo, hi);
q("range+live", R + " AND (expires_at IS NULL OR expires_at > ?)", lo, hi, now);
q("range+instr", R + " AND instr(data, ?) > 0", lo, hi, '"hit"');
q("range+glob", R + " AND data GLOB ?", lo, hi, '*"hit"*');
q(
  "range+live+glob",
  R + " AND (expires_at IS NULL OR expires_at > ?) AND data GLOB ?",
  lo,
  hi,
  now,
  '*"hit"*',
);
q(
  "full now",
  R +
    ` AND (expires_at IS NULL OR expires_at > ?) AND (encoding = 4 AND (instr(data, ?) > 0 AND (json_extract((CASE WHEN encoding = 4 THEN data END), ?) = ? AND ifnull(json_type((CASE WHEN encoding = 4 THEN data END), ?), '') = 'text')))`,
  lo,
  hi,
  now,
  '"hit"',
  '$."group"',
  "hit",
  '$."group"',
);
q(
  "glob + ->",
  R +
    ` AND (expires_at IS NULL OR expires_at > ?) AND (encoding = 4 AND data GLOB ? AND (CASE WHEN encoding = 4 THEN data END) -> ? = ?)`,
  lo,
  hi,
  now,
  '*"hit"*',
  '$."group"',
  '"hit"',
);
q(
  "instr + ->",
  R +
    ` AND (expires_at IS NULL OR expires_at > ?) AND (encoding = 4 AND instr(data, ?) > 0 AND (CASE WHEN encoding = 4 THEN data END) -> ? = ?)`,
  lo,
  hi,
  now,
  '"hit"',
  '$."group"',
  '"hit"',
);
q(
  "glob then live",
  R + " AND data GLOB ? AND (expires_at IS NULL OR expires_at > ?)",
  lo,
  hi,
  '*"hit"*',
  now,
);
q(
  "full, filter first",
  R +
    ` AND (encoding = 4 AND (instr(data, ?) > 0 AND (json_extract((CASE WHEN encoding = 4 THEN data END), ?) = ? AND ifnull(json_type((CASE WHEN encoding = 4 THEN data END), ?), '') = 'text'))) AND (expires_at IS NULL OR expires_at > ?)`,
  lo,
  hi,
  '"hit"',
  '$."group"',
  "hit",
  '$."group"',
  now,
);
q(
  "glob filter first",
  R +
    ` AND (encoding = 4 AND (data GLOB ? AND (json_extract((CASE WHEN encoding = 4 THEN data END), ?) = ? AND ifnull(json_type((CASE WHEN encoding = 4 THEN data END), ?), '') = 'text'))) AND (expires_at IS NULL OR expires_at > ?)`,
  lo,
  hi,
  '*"hit"*',
  '$."group"',
  "hit",
  '$."group"',
  now,
);
console.log(d.prepare("select sql from sqlite_master where name = 'kv'").pluck().get());
