"""User replies (MO): `smsgate mo list | show | repush` and `smsgate simulate reply`.

They work on the database directly, also while a server runs: a reply written by
`simulate reply` or a re-push is picked up by the running push worker within its poll
interval.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from smsgate import errors
from smsgate.cli.context import DataDir, open_database
from smsgate.cli.output import print_table, say
from smsgate.core.replies import ReplyFilter, ReplyRecord
from smsgate.core.states import PushState

ANSWER_SHOWN = 80  # characters of a receiver's answer shown to the operator

mo_group = typer.Typer(
    help="User replies (MO): list them, see their pushes, push them again.", no_args_is_help=True
)
simulate_group = typer.Typer(
    help="Play the phone user against the simulator.", no_args_is_help=True
)

ReplyId = Annotated[int, typer.Argument(metavar="ID", help="The reply's id (`smsgate mo list`).")]


def register(app: typer.Typer) -> None:
    app.add_typer(mo_group, name="mo")
    app.add_typer(simulate_group, name="simulate")


@mo_group.command("list")
def mo_list(
    account: Annotated[str | None, typer.Option(help="Only this account's replies.")] = None,
    state: Annotated[PushState | None, typer.Option(help="Only pushes in this state.")] = None,
    unmatched: Annotated[
        bool, typer.Option("--unmatched", help="Only replies no account could be found for.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 20,
    data_dir: DataDir = None,
) -> None:
    """Replies, newest first, with where their push is."""
    if unmatched and (account or state):
        raise errors.InvalidInput("--unmatched replies have no account and no push")
    with open_database(data_dir) as db:
        account_id = db.admin.show(account).account.id if account else None
        found = db.inbound.replies(
            ReplyFilter(account_id=account_id, unmatched=unmatched, state=state, limit=limit)
        )
        paused = db.inbound.paused_accounts()
    print_table(
        ("id", "received (UTC)", "account", "phone", "push", "tries", "content"),
        (_row(r) for r in found),
        empty="no replies",
        markup=False,
    )
    for username, until in paused:
        say(f"pushes to {username} are paused until {_when(until)}")


@mo_group.command("show")
def mo_show(reply_id: ReplyId, data_dir: DataDir = None) -> None:
    """One reply and every attempt to push it."""
    with open_database(data_dir) as db:
        r = db.inbound.reply(reply_id)
        attempts = db.inbound.attempts(reply_id)
    for label, value in _describe(r):
        say(f"{label:<9} {value}")
    print_table(
        ("series", "try", "at (UTC)", "ok", "status", "answer / error"),
        (
            (
                str(a.series),
                str(a.attempt),
                _when(a.at),
                "yes" if a.ok else "no",
                "-" if a.status is None else str(a.status),
                _answer(a.error, a.body),
            )
            for a in attempts
        ),
        empty="no push attempts yet",
        markup=False,
    )


def _answer(error: str | None, body: str | None) -> str:
    """The operator's view of an attempt: why it failed, and the answer's start."""
    shown = repr(body[:ANSWER_SHOWN]) if body else ""
    return " ".join(part for part in (error, shown) if part)


@mo_group.command("repush")
def mo_repush(reply_id: ReplyId, data_dir: DataDir = None) -> None:
    """Push a finished reply again: a new series of attempts (1, 3, 10 minutes)."""
    with open_database(data_dir) as db:
        r = db.inbound.repush(reply_id)
    say(f"reply {r.id} will be pushed to {r.account} again")


@mo_group.command("assign")
def mo_assign(
    reply_id: ReplyId,
    account: Annotated[str, typer.Argument(metavar="ACCOUNT", help="The reply's owner.")],
    data_dir: DataDir = None,
) -> None:
    """Give an unmatched reply an owner: it is pushed to that account's URL, once."""
    with open_database(data_dir) as db:
        account_id = db.admin.show(account).account.id
        r = db.inbound.assign(reply_id, account_id)
    say(f"reply {r.id} now belongs to {r.account}; its push is queued")


@simulate_group.command("reply")
def simulate_reply(
    phone: Annotated[str, typer.Argument(help="The number replying, e.g. 13800138000.")],
    text: Annotated[str, typer.Argument(help="What the user typed.")],
    to: Annotated[
        str | None,
        typer.Option("--to", help="Destination address: service number + extended code."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Store a reply as if a phone user sent it; a running server pushes it."""
    with open_database(data_dir) as db:
        r = db.inbound.simulate(phone, text, to)
    if r.account is None:
        say(f"reply {r.id} from {r.phone} is unmatched: no account found")
        return
    how = "extended code" if r.matched_by == "ext_code" else "last sender within 72 h"
    note = "; the number is now opted out" if r.optout else ""
    say(f"reply {r.id} from {r.phone} -> {r.account} (by {how}){note}")


def _row(r: ReplyRecord) -> tuple[str, ...]:
    return (
        str(r.id),
        _when(r.received_at),
        r.account or "-",
        r.phone,
        _push(r),
        _tries(r),
        r.content,
    )


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
