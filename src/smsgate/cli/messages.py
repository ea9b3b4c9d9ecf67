"""`smsgate messages`: what was sent, newest first, with its state; and `messages settle`,
the operator's answer for messages whose outcome nobody reported (`unknown`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from smsgate import errors
from smsgate.cli.context import DataDir, open_database
from smsgate.cli.output import say
from smsgate.cli.values import parse_since, parse_when
from smsgate.core.messages import Message, MessageFilter
from smsgate.core.states import MessageState

messages_group = typer.Typer(
    help="Messages, newest first, with their state; `messages settle` for unknown outcomes.",
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(messages_group, name="messages")


@messages_group.callback()
def messages(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    phone: Annotated[str | None, typer.Option(help="Only this number.")] = None,
    state: Annotated[MessageState | None, typer.Option(help="Only this state.")] = None,
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD[THH:MM] UTC, or e.g. 2h.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 20,
    data_dir: DataDir = None,
) -> None:
    """Messages, newest first, with their state (accepted, submitted, delivered, ...).

    The content is shown whole (wrapped); `unknown` messages show why in "note".
    """
    if ctx.invoked_subcommand is not None:
        return
    with open_database(data_dir, read_only=True) as db:
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
    _print(found)


def _print(found: list[Message]) -> None:
    """One block per message: a line of facts, then the whole text (and why, if unknown).

    A table would cut the text to a few characters at 80 columns; this keeps every
    character at any width, and a script can still grep the first line.
    """
    if not found:
        say("no messages")
        return
    for m in found:
        units = f"{m.units} unit" + ("s" if m.units != 1 else "")
        say(
            f"#{m.id}  {m.created_at:%Y-%m-%d %H:%M:%S}  {m.account}  {m.phone}  "
            f"{m.state.value}  {units}"
        )
        for line in m.content.splitlines() or [""]:
            say(f"    {line}")
        if m.error:
            say(f"    note: {m.error}")


@messages_group.command("settle")
def settle(
    ids: Annotated[
        list[int] | None, typer.Argument(metavar="ID...", help="Message ids.", show_default=False)
    ] = None,
    delivered: Annotated[bool, typer.Option("--delivered", help="Settle as delivered.")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="Settle as failed.")] = False,
    refund: Annotated[
        bool, typer.Option("--refund", help="With --failed: give the cost back (once).")
    ] = False,
    carrier: Annotated[str | None, typer.Option(help="Filter: this carrier's messages.")] = None,
    state: Annotated[
        MessageState | None, typer.Option(help="Filter: messages in this state (unknown).")
    ] = None,
    before: Annotated[
        str | None, typer.Option(help="Filter: accepted before YYYY-MM-DD[THH:MM] UTC.")
    ] = None,
    account: Annotated[str | None, typer.Option(help="Filter: this account's.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Settle messages nobody reported on: by id, or every one a filter finds.

    Only unknown (or submitted) messages move, each move audited.

    A refund is a ledger row, at most one per message, however often it is asked for.
    """
    to = _target(delivered, failed, refund)
    by_filter = any(v is not None for v in (carrier, state, before, account))
    if bool(ids) == by_filter:
        raise errors.InvalidInput(
            "give either message ids or a filter (--carrier, --state, --before, --account)"
        )
    _settle(ids or [], to, refund, (carrier, state, before, account), data_dir)


def _target(delivered: bool, failed: bool, refund: bool) -> MessageState:
    if delivered == failed:
        raise errors.InvalidInput("give one of --delivered or --failed")
    if refund and delivered:
        raise errors.InvalidInput("--refund goes with --failed: a delivered message is paid for")
    return MessageState.DELIVERED if delivered else MessageState.FAILED


def _settle(
    ids: list[int],
    to: MessageState,
    refund: bool,
    where: tuple[str | None, MessageState | None, str | None, str | None],
    data_dir: Path | None,
) -> None:
    from smsgate.store.outcomes import SETTLE_FROM, SettleFilter

    carrier, state, before, account = where
    with open_database(data_dir, read_only=True) as db:
        if not ids:
            if state is not None and state not in SETTLE_FROM:
                raise errors.InvalidInput("only unknown or submitted messages can be settled")
            account_id = db.admin.show(account).account.id if account else None
            ids = db.outcomes.matching(
                SettleFilter(
                    carrier=carrier,
                    state=state or MessageState.UNKNOWN,
                    before=parse_when(before) if before else None,
                    account_id=account_id,
                )
            )
        done = db.outcomes.settle(ids, to, refund=refund, now=datetime.now(UTC))
    say(f"settled {len(done.moved)} message(s) as {to.value}")
    if done.refunded:
        say(f"refunded {len(done.refunded)} message(s), {done.refund_units} unit(s)")
    for message_id, why in sorted(done.skipped.items()):
        say(f"skipped {message_id}: {why}")
