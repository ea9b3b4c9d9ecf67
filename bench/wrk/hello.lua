-- The raw ASGI hello app (bench/hello.py): GET / answers `0`.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

ok_pattern = "^0$"
wrk.path = "/"
