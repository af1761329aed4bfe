-- wrk's script for bench/load.js: the requests of one route, the same ones load-client.cjs makes
-- for autocannon. Settings come from the environment: LOAD_ROUTE (get, put, batch, health,
-- happy-get, happy-put), LOAD_TOKEN, LOAD_KEYS (preloaded keys ["k", i], and Happy's "k<i>"),
-- LOAD_BATCH (keys per batch), LOAD_VALUE (the benchmark's value as JSON text), LOAD_HAPPY_VALUE
-- (the Happy keys' base64 value), LOAD_ID (this load's id). A PUT writes a value never sent
-- before: the value with its last 8 characters of `v` replaced by the thread and a counter, so
-- that no write is a no-op. A Happy mutate creates a key never created before at version -1:
-- named after the load, the thread and a counter.
-- done() prints { requests, seconds, p99Ms, failed, failures } as one JSON line.

local route = os.getenv("LOAD_ROUTE")
local keys = tonumber(os.getenv("LOAD_KEYS"))
local batch = tonumber(os.getenv("LOAD_BATCH"))
local value = os.getenv("LOAD_VALUE")
local token = os.getenv("LOAD_TOKEN")
local happy_value = os.getenv("LOAD_HAPPY_VALUE")
local load_id = os.getenv("LOAD_ID")

wrk.headers["authorization"] = "Bearer " .. token
if route == "put" or route == "batch" or route == "happy-put" then
  wrk.headers["content-type"] = "application/json"
end

local threads = {}
-- A global: setup() sets it in each thread's state (a local here would hide that value).
thread_id = 0
local puts = 0
local creates = 0

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init()
  math.randomseed(os.time() * 1000 + thread_id)
end

local function random_key()
  return math.random(0, keys - 1)
end

-- The value's `v` text is its last string: `{"v":"xxxx…"}`; its last 8 characters are replaced.
local head = value:sub(1, #value - 10)
local tail = value:sub(#value - 1)

local requests = {
  get = function()
    return wrk.format("GET", "/api/keys/k/" .. random_key())
  end,
  health = function()
    return wrk.format("GET", "/health")
  end,
  batch = function()
    local list = {}
    for i = 1, batch do
      list[i] = '["k",' .. random_key() .. "]"
    end
    return wrk.format("POST", "/api/keys/batch", nil, '{"keys":[' .. table.concat(list, ",") .. "]}")
  end,
  put = function()
    puts = puts + 1
    local fresh = head .. string.format("%08d", (thread_id * 10000000 + puts) % 100000000) .. tail
    return wrk.format("PUT", "/api/keys/k/" .. random_key(), nil, fresh)
  end,
  ["happy-get"] = function()
    return wrk.format("GET", "/v1/kv/k" .. random_key())
  end,
  ["happy-put"] = function()
    creates = creates + 1
    local key = "n" .. load_id .. "-" .. thread_id .. "-" .. creates
    local body = '{"mutations":[{"key":"' .. key .. '","value":"' .. happy_value .. '","version":-1}]}'
    return wrk.format("POST", "/v1/kv", nil, body)
  end,
}

request = requests[route]

function done(summary, latency)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.6f,"p99Ms":%.3f,"failed":%d,' ..
      '"failures":"%d connect, %d read, %d write errors, %d non-2xx, %d timeouts"}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout,
    e.connect, e.read, e.write, e.status, e.timeout))
end
