"""The baseline: the smallest ASGI app, answering `0` as text/plain (what `/sms` answers).

Served by the same server stack as smsgate (see http_bench.py), it shows what the server
alone costs per request, so each smsgate row can be read as a ratio to it.
"""

BODY = b"0"
HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"1")]


async def app(scope, receive, send):  # the raw ASGI signature
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
