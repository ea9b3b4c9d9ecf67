"""`smsgate messages`: what was sent, newest first, with its state."""

from __future__ import annotations

from typing import Annotated

import typer

from smsgate.cli.context import DataDir, open_database
from smsgate.cli.output import print_table
from smsgate.cli.values import parse_since
from smsgate.core.messages import MessageFilter
from smsgate.core.states import MessageState


def register(app: typer.Typer) -> None:
    app.command("messages")(messages)


def messages(
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    phone: Annotated[str | None, typer.Option(help="Only this number.")] = None,
    state: Annotated[MessageState | None, typer.Option(help="Only this state.")] = None,
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD[THH:MM] UTC, or e.g. 2h.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 20,
    data_dir: DataDir = None,
) -> None:
    """Messages, newest first, with their state (accepted, submitted, delivered, ...)."""
    with open_database(data_dir) as db:
        account_id = db.admin.show(account).account.id if account else None
        found = db.messages.messages(
            MessageFilter(
                account_id=account_id,
                phone=phone,
                state=state,
                since=parse_since(since),
                limit=limit,
            )
        )
    print_table(
        ("id", "when (UTC)", "account", "phone", "state", "units", "content"),
        (
            (
                str(m.id),
                m.created_at.strftime("%m-%d %H:%M:%S"),
                m.account,
                m.phone,
                m.state.value,
                str(m.units),
                m.content,
            )
            for m in found
        ),
        empty="no messages",
    )
