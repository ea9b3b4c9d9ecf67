"""User replies (MO): `smsgate mo list | show | repush` and `smsgate simulate reply`.

They work on the database directly, also while a server runs: a reply written by
`simulate reply` or a re-push is picked up by the running push worker within its poll
interval.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from smsgate import errors
from smsgate.cli import out
from smsgate.core.replies import ReplyFilter, ReplyRecord
from smsgate.core.states import PushState
from smsgate.services.inbound import InboundService
from smsgate.settings import Settings

mo_app = typer.Typer(
    help="User replies (MO): list them, see their pushes, push them again.", no_args_is_help=True
)
simulate_app = typer.Typer(help="Play the phone user against the simulator.", no_args_is_help=True)

ReplyId = Annotated[int, typer.Argument(metavar="ID", help="The reply's id (`smsgate mo list`).")]


def register(app: typer.Typer) -> None:
    app.add_typer(mo_app, name="mo")
    app.add_typer(simulate_app, name="simulate")


@contextmanager
def inbound(account: str | None = None) -> Iterator[tuple[InboundService, int | None]]:
    """The reply service on the configured database, and ``account``'s id if given."""
    from smsgate.gateway import Gateway

    gateway = Gateway.open(Settings())
    try:
        account_id = gateway.admin.show(account).account.id if account else None
        yield gateway.inbound, account_id
    finally:
        gateway.close()


@mo_app.command("list")
def mo_list(
    account: Annotated[str | None, typer.Option(help="Only this account's replies.")] = None,
    state: Annotated[PushState | None, typer.Option(help="Only pushes in this state.")] = None,
    unmatched: Annotated[
        bool, typer.Option("--unmatched", help="Only replies no account could be found for.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 20,
) -> None:
    """Replies, newest first, with where their push is."""
    if unmatched and (account or state):
        raise errors.InvalidInput("--unmatched replies have no account and no push")
    with inbound(account) as (svc, account_id):
        found = svc.replies(
            ReplyFilter(account_id=account_id, unmatched=unmatched, state=state, limit=limit)
        )
        paused = svc.paused_accounts()
    table = Table("id", "received (UTC)", "account", "phone", "push", "tries", "content")
    for r in found:
        table.add_row(
            str(r.id),
            _when(r.received_at),
            r.account or "-",
            r.phone,
            _push(r),
            _tries(r),
            r.content,
        )
    out.print(table if found else "no replies", markup=False)
    for username, until in paused:
        _say(f"pushes to {username} are paused until {_when(until)}")


@mo_app.command("show")
def mo_show(reply_id: ReplyId) -> None:
    """One reply and every attempt to push it."""
    with inbound() as (svc, _):
        r = svc.reply(reply_id)
        attempts = svc.attempts(reply_id)
    for label, value in _describe(r):
        _say(f"{label:<9} {value}")
    table = Table("series", "try", "at (UTC)", "ok", "status", "answer / error")
    for a in attempts:
        table.add_row(
            str(a.series),
            str(a.attempt),
            _when(a.at),
            "yes" if a.ok else "no",
            "-" if a.status is None else str(a.status),
            a.error or a.body or "",
        )
    out.print(table if attempts else "no push attempts yet", markup=False)


@mo_app.command("repush")
def mo_repush(reply_id: ReplyId) -> None:
    """Push a finished reply again: a new series of attempts (1, 3, 10 minutes)."""
    with inbound() as (svc, _):
        r = svc.repush(reply_id)
    _say(f"reply {r.id} will be pushed to {r.account} again")


@simulate_app.command("reply")
def simulate_reply(
    phone: Annotated[str, typer.Argument(help="The number replying, e.g. 13800138000.")],
    text: Annotated[str, typer.Argument(help="What the user typed.")],
    to: Annotated[
        str | None,
        typer.Option("--to", help="Destination address: service number + extended code."),
    ] = None,
) -> None:
    """Store a reply as if a phone user sent it; a running server pushes it."""
    with inbound() as (svc, _):
        r = svc.simulate(phone, text, to)
    if r.account is None:
        _say(f"reply {r.id} from {r.phone} is unmatched: no account found")
        return
    how = "extended code" if r.matched_by == "ext_code" else "last sender within 72 h"
    note = "; the number is now opted out" if r.optout else ""
    _say(f"reply {r.id} from {r.phone} -> {r.account} (by {how}){note}")


def _say(line: str) -> None:
    """One line, whatever the terminal width (scripts read these)."""
    out.print(line, markup=False, soft_wrap=True)


def _describe(r: ReplyRecord) -> list[tuple[str, str]]:
    return [
        ("id", str(r.id)),
        ("received", _when(r.received_at)),
        ("phone", r.phone),
        ("dest", r.dest or "-"),
        ("account", r.account or "unmatched"),
        ("matched", r.matched_by or "-"),
        ("opt-out", "yes" if r.optout else "no"),
        ("push", _push(r)),
        ("error", r.last_error or "-"),
        ("content", r.content),
    ]


def _push(r: ReplyRecord) -> str:
    if r.push_state is None:
        return "-"
    if r.push_state is PushState.PENDING and r.next_at is not None:
        return f"pending (next {_when(r.next_at)})"
    return r.push_state.value


def _tries(r: ReplyRecord) -> str:
    if r.push_state is None:
        return "-"
    return str(r.attempts) if r.series <= 1 else f"{r.attempts} (series {r.series})"


def _when(value: datetime) -> str:
    return value.strftime("%m-%d %H:%M:%S")
