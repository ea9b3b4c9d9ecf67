-- /query: the balance, answered `0\n<sent>,<balance>`.
--
--   wrk ... -s query.lua URL -- USER KEY
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

ok_pattern = "^0\n%d+,%d+$"

function init(args)
  wrk.path = "/query?u=" .. args[1] .. "&p=" .. args[2]
end
