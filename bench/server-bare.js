/**
 * The ceiling of the server benchmark: bare node:http answering every request, whatever its
 * route or method, with the same constant JSON body of the benchmark's value size.
 * Run by bench/server-bench.js as `node bench/server-bare.js`.
 */
import { sendJson, serve } from "./node-server.js";
import { VALUE } from "./workloads.js";

const BODY = JSON.stringify(VALUE);

serve((_req, res) => sendJson(res, 200, BODY));
