-- wrk script for W1: distinct event ids per request, a bearer token, optional pacing, a JSON summary.
-- wrk -s wrk.lua URL -- <run-prefix> <token> [requests-per-second over all connections] [connections]
local threads = {}
local counter = 0
local prefix = ""
local pause_ms = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  prefix = args[1] .. "-" .. tostring(tid)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  if args[3] and tonumber(args[3]) > 0 then
    -- each connection waits this long between its requests, so all of them together send about that rate
    pause_ms = tonumber(args[4]) * 1000 / tonumber(args[3])
  end
end

function delay()
  return pause_ms
end

function request()
  counter = counter + 1
  local body = '{"id":"' .. prefix .. '-' .. counter .. '","type":"bench.event","amount":"12.50"}'
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
