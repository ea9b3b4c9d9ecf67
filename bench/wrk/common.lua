-- Shared by the scenario scripts (loaded with dofile at the top of each).
--
-- Each thread counts the answers that are not the scenario's success text (`ok_pattern`,
-- a Lua pattern the scenario script sets) and keeps the first one as a sample. done() runs
-- in wrk's main state: it collects the threads' counts and prints two lines that
-- bench/http_bench.py parses:
--
--   WRK_RESULT requests=N duration_us=N p50_us=N p99_us=N socket_errors=N wrong=N
--   WRK_SAMPLE "<status> <first wrong answer, truncated>"
--
-- `requests` counts every answer; `wrong` those (any status) that are not a success;
-- `socket_errors` connect, read, write errors and timeouts (no answer at all).

ok_pattern = "^0$"
wrong = 0
sample = ""

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body or "", ok_pattern) then
    wrong = wrong + 1
    if sample == "" then
      sample = status .. " " .. string.sub(body or "", 1, 80)
    end
  end
end

function done(summary, latency, requests)
  local total_wrong, first = 0, ""
  for _, thread in ipairs(threads) do
    total_wrong = total_wrong + thread:get("wrong")
    local s = thread:get("sample")
    if first == "" and s ~= "" then
      first = s
    end
  end
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d p50_us=%.0f p99_us=%.0f socket_errors=%d wrong=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, total_wrong))
  first = (first:gsub("\r", "\\r"):gsub("\n", "\\n"))
  io.write("WRK_SAMPLE " .. string.format("%q", first) .. "\n")
end

