// One queue-throughput cell: `consumers` listeners (one message at a time each) drain `count`
// messages that 8 concurrent producers enqueue meanwhile, end to end (enqueue → handler → ack).
// `location` is a SQLite path or a server URL. Prints { count, seconds }.
import { openKv } from "../dist/index.js";

const [location, token, consumers, count] = process.argv.slice(2);
const total = Number(count);
const PRODUCERS = 8;
const kv = await openKv(location, { accessToken: token, durability: "full" });

let handled = 0;
let resolveDone;
const done = new Promise((resolve) => {
  resolveDone = resolve;
});
const started = performance.now();
const listeners = Array.from({ length: Number(consumers) }, () =>
  kv.listenQueue(() => {
    if (++handled === total) resolveDone(performance.now());
  }),
);
let next = 0;
await Promise.all(
  Array.from({ length: PRODUCERS }, async () => {
    while (next < total) {
      next++;
      await kv.enqueue({ n: next, pad: "x".repeat(64) });
    }
  }),
);
const finished = await done;
await Promise.all(listeners.map((l) => l.stop()));
const stats = await kv.queueStats();
await kv.close();
if (stats.total !== 0) throw new Error(`queue not drained: ${JSON.stringify(stats)}`);
process.stdout.write(JSON.stringify({ count: total, seconds: (finished - started) / 1000 }));
