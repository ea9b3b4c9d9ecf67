-- /sms with fresh numbers and a distinct content on every request.
--
--   wrk ... -s sms.lua URL -- USER KEY NUMBERS_PER_REQUEST [PAUSE_MS [OFFSET]]
--
-- PAUSE_MS, when given, is how long each connection waits before its next request: a
-- paced load instead of a flood.
--
-- Numbers are 139%08d from a per-thread counter (thread i starts at (i + OFFSET) * 10^7),
-- so no number repeats within a run (give each of several wrk processes its own OFFSET);
-- the content starts with the registered signature 【smsgate】.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

ok_pattern = "^0$"
local SIGNATURE = "%E3%80%90smsgate%E3%80%91" -- 【smsgate】, URL-encoded
local prefix, per_request, counter
local pause = 0

function init(args)
  local user, key = args[1], args[2]
  per_request = tonumber(args[3] or "1")
  pause = tonumber(args[4] or "0")
  counter = (id + tonumber(args[5] or "0")) * 10000000
  prefix = "/sms?u=" .. user .. "&p=" .. key .. "&m="
end

function request()
  local numbers = {}
  for i = 1, per_request do
    numbers[i] = string.format("139%08d", (counter + i) % 100000000)
  end
  counter = counter + per_request
  local path = prefix .. table.concat(numbers, ",")
    .. "&c=" .. SIGNATURE .. "bench%20message%20" .. counter
  return wrk.format("GET", path)
end

function delay()
  return pause
end
