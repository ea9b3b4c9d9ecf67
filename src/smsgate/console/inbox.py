"""The developer inbox: the account's messages as they are accepted and change state,
pushed to the browser as server-sent events, with the simulator's reply button.

The stream polls the message store (every ``POLL_SECONDS``) rather than listening inside
this process: the message may be accepted by another node or worker, and the store is
where every node's changes meet. Each event is one message as JSON; a message is sent
again only when its state changed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from smsgate import errors
from smsgate.console.customer import account
from smsgate.console.web import Ctx
from smsgate.core.messages import Message, MessageFilter

POLL_SECONDS = 0.5
WINDOW = 50  # the newest messages watched
# A stream ends after a few seconds and EventSource reconnects by itself: a stopping server
# waits for open requests, so a long stream would hold up a graceful stop (and each
# reconnect checks the session again). A new stream sends the watched messages again;
# the page replaces each row in place.
STREAM_SECONDS = 8.0
RECONNECT_MS = 500


async def inbox(ctx: Ctx) -> Response:
    return ctx.render("customer/inbox.html")


async def events(ctx: Ctx) -> Response:
    account_id = account(ctx).id

    async def stream() -> AsyncIterator[str]:
        seen: dict[int, str] = {}
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_SECONDS
        yield f"retry: {RECONNECT_MS}\n\n"
        while loop.time() < ends:
            found = await run_in_threadpool(
                ctx.deps.messages.messages, MessageFilter(account_id=account_id, limit=WINDOW)
            )
            for m in reversed(found):  # oldest first, so the page keeps its order
                if seen.get(m.id) != m.state.value:
                    seen[m.id] = m.state.value
                    yield f"event: message\ndata: {json.dumps(_shown(m, ctx))}\n\n"
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _shown(m: Message, ctx: Ctx) -> dict[str, object]:
    return {
        "id": m.id,
        "phone": m.phone,
        "content": m.content,
        "units": m.units,
        "state": m.state.value,
        "state_text": ctx.t(m.state.value),
        "at": m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
    }


async def simulate_reply(ctx: Ctx) -> Response:
    if not ctx.deps.simulator_on():
        raise errors.InvalidInput(ctx.t("The simulator is off: no product routes to it."))
    mine = account(ctx)
    dest = ctx.deps.inbound.dest_for(mine.ext_code)
    phone, content = ctx.field("phone"), ctx.field("content")
    found = await run_in_threadpool(
        lambda: ctx.deps.inbound.simulate(phone, content, dest, for_account=mine.id)
    )
    ctx.deps.wake_pushes()
    return ctx.redirect("/console/inbox", ok=f"{ctx.t('Reply received')}: #{found.id} ({phone})")


ROUTES = [
    ("/console/inbox", "GET", inbox),
    ("/console/inbox/events", "GET", events),
    ("/console/inbox/reply", "POST", simulate_reply),
]
