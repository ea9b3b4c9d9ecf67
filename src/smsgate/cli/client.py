"""``smsgate send`` and ``smsgate balance``: the SDK from the command line.

The main ``smsgate`` app calls :func:`register`. Every failure prints one line (the code,
the English and the Chinese message) and exits 1; an interrupt exits 130.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from smsgate.cli.lite import describe
from smsgate.client import DEFAULT_BASE_URL, Client
from smsgate.client.bulk import Batch, BatchResult, only_this_batch, plan_batches, unique
from smsgate.client.exceptions import ApiError, ClientError
from smsgate.client.journal import CAPPED, Journal, journal_path, message_key, outcome
from smsgate.client.phonefile import read_phones

Server = Annotated[
    str, typer.Option("--server", envvar="SMSGATE_SERVER", help="smsgate or SMSBao base URL.")
]
User = Annotated[str, typer.Option("--user", "-u", envvar="SMSGATE_USER", help="Account name.")]
Password = Annotated[
    str | None,
    typer.Option("--password", "-p", envvar="SMSGATE_PASSWORD", help="Login password."),
]
ApiKey = Annotated[
    str | None, typer.Option("--api-key", "-k", envvar="SMSGATE_API_KEY", help="ApiKey.")
]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait for an answer.")]

_UNKNOWN_HINT = (
    "{n} number(s) have an unknown outcome (a timeout or an interrupted request: they may "
    "have been sent). They are not sent again; check the message log, then re-run with "
    "--retry-unknown to send them anyway."
)


def register(app: typer.Typer) -> None:
    """Add ``send`` and ``balance`` to the ``smsgate`` app."""
    app.command("send")(send)
    app.command("balance")(balance)


def send(
    target: Annotated[
        str,
        typer.Argument(
            metavar="PHONE[,PHONE]", help="Numbers, comma-separated; with --file, the TEXT."
        ),
    ],
    user: User,
    text: Annotated[
        str | None, typer.Argument(metavar="TEXT", help="The message.", show_default=False)
    ] = None,
    server: Server = DEFAULT_BASE_URL,
    password: Password = None,
    api_key: ApiKey = None,
    product: Annotated[
        str | None, typer.Option("--product", "-g", help="Product id (g); default product.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="CSV of numbers: send in batches of 99, resumable."),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="With --file: ignore the journal, send to all.")
    ] = False,
    retry_unknown: Annotated[
        bool,
        typer.Option(
            "--retry-unknown",
            help="With --file: re-send where the outcome is unknown. Numbers the server then "
            "refuses with 53 (same text to the same number within the window: the first "
            "attempt went out) are recorded as refused by the cap, not failed, and are not "
            "tried again.",
        ),
    ] = False,
    timeout: Timeout = 15.0,
) -> None:
    """Send TEXT to PHONE[,PHONE] (at most 99), or to every number of a CSV file (--file)."""
    phones, content = _positional(target, text, file)
    with _errors(), _client(server, user, password, api_key, timeout) as client:
        if file is None:
            client.send(phones, content, product)
            typer.echo(f"Accepted: {len(unique(phones))} number(s)")
            return
        code = _send_file(client, file, content, product, restart, retry_unknown)
    raise typer.Exit(code)


def balance(
    user: User,
    server: Server = DEFAULT_BASE_URL,
    password: Password = None,
    api_key: ApiKey = None,
    timeout: Timeout = 15.0,
) -> None:
    """Units sent so far and units remaining (at most one query a minute)."""
    with _errors(), _client(server, user, password, api_key, timeout) as client:
        result = client.balance()
    typer.echo(f"sent {result.sent}, remaining {result.remaining}")


def _positional(target: str, text: str | None, file: Path | None) -> tuple[str, str]:
    """(phones, content) from the positional arguments."""
    if file is not None:
        if text is not None:
            raise typer.BadParameter("with --file give only TEXT", param_hint="TEXT")
        return "", target
    if text is None:
        raise typer.BadParameter("missing TEXT (or use --file numbers.csv TEXT)")
    return target, text


def _client(
    server: str, user: str, password: str | None, api_key: str | None, timeout: float
) -> Client:
    if (password is None) == (api_key is None):
        raise typer.BadParameter(
            "give one of -p/--password or -k/--api-key (or SMSGATE_PASSWORD / SMSGATE_API_KEY),"
            " not both"
        )
    return Client(user, password=password, api_key=api_key, base_url=server, timeout=timeout)


@contextmanager
def _errors() -> Iterator[None]:
    """One clear line and exit 1 for what can go wrong; 130 for Ctrl-C."""
    try:
        yield
    except ClientError as exc:
        _fail(describe(exc))
    except (ValueError, OSError) as exc:
        _fail(f"Error: {exc}")
    except KeyboardInterrupt:
        _fail("Interrupted: a request in flight may have been accepted.", 130)


def _fail(line: str, code: int = 1) -> None:
    typer.echo(line, err=True)
    raise typer.Exit(code)


# ---- smsgate send --file -----------------------------------------------------------------


def _send_file(
    client: Client,
    path: Path,
    content: str,
    product: str | None,
    restart: bool,
    retry_unknown: bool,
) -> int:
    """Send to every number of ``path`` not yet reached; the exit code."""
    journal = Journal(journal_path(path), message_key(content, product))
    if restart:
        journal.restart()
    plan = journal.load().resume(read_phones(path), retry_unknown=retry_unknown)
    capped = f", {len(plan.capped)} refused by the cap earlier" if plan.capped else ""
    typer.echo(
        f"{len(plan.accepted + plan.unknown + plan.pending + plan.capped)} number(s) in "
        f"{path.name}: {len(plan.accepted)} already accepted, {len(plan.unknown)} unknown, "
        f"{len(plan.pending)} to send{capped}"
    )
    # Re-sent unknowns go in batches of their own: a `53` for one of those says the first
    # attempt went out, and must not be confused with a fresh number's refusal.
    retried = plan_batches(plan.retried) if plan.retried else []
    fresh = [p for p in plan.pending if p not in set(plan.retried)]
    batches = [*retried, *(Batch(len(retried) + b.index, b.phones) for b in plan_batches(fresh))]
    results = _send_batches(client, journal, batches, len(retried), content, product)
    return _summary(results, len(plan.pending), len(plan.unknown))


def _send_batches(
    client: Client,
    journal: Journal,
    batches: list[Batch],
    retried: int,
    content: str,
    product: str | None,
) -> list[tuple[BatchResult, bool]]:
    """Send each batch; each result with whether the cap refused it. The first ``retried``
    batches re-send numbers of unknown outcome."""
    results: list[tuple[BatchResult, bool]] = []
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console()) as bar:
        task = bar.add_task("batches", total=len(batches))
        for batch in batches:
            journal.sending(batch)
            result = client.send_batch(batch, content, product)
            capped = outcome(result, retried=batch.index < retried) == CAPPED
            journal.record(result, retried=batch.index < retried)
            results.append((result, capped))
            _say(bar.console, _batch_line(result, len(batches), capped))
            bar.advance(task)
            if result.error is not None and not only_this_batch(result.error):
                _say(bar.console, _stop_line(result.error))
                break
    return results


def _say(console: Console, line: str) -> None:
    """A line above the progress bar, printed as is (no markup, no wrapping)."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _stop_line(error: ClientError) -> str:
    if isinstance(error, ApiError):
        return "Stopping: the next batches would fail the same way."
    return "Stopping: the server is not answering properly."


def _batch_line(result: BatchResult, total: int, capped: bool = False) -> str:
    head = f"batch {result.index + 1}/{total} ({len(result.phones)} numbers):"
    if result.error is None:
        return f"{head} accepted"
    if capped:
        return f"{head} refused by the cap (53): the earlier attempt went out; not tried again"
    return f"{head} {describe(result.error)}"


def _summary(results: list[tuple[BatchResult, bool]], pending: int, skipped_unknown: int) -> int:
    """The closing lines and the exit code; ``results`` pairs each batch with "capped"."""
    accepted = sum(len(r.phones) for r, _ in results if r.ok)
    capped = sum(len(r.phones) for r, cap in results if cap)
    unknown = sum(len(r.phones) for r, _ in results if r.outcome_unknown) + skipped_unknown
    failed = sum(len(r.phones) for r, cap in results if r.error and not r.outcome_unknown) - capped
    not_tried = pending - sum(len(r.phones) for r, _ in results)
    typer.echo(
        f"Done: {accepted} accepted, {failed} failed, {unknown} unknown, {not_tried} not tried."
    )
    if capped:
        typer.echo(
            f"{capped} number(s) re-sent after an unknown outcome were refused by the frequency "
            "cap (53): the earlier attempt went out. Recorded as such, not tried again."
        )
    if unknown:
        typer.echo(_UNKNOWN_HINT.format(n=unknown))
    if failed or not_tried:
        typer.echo("Fix the cause and run the same command again: accepted numbers are skipped.")
    return 0 if accepted + capped == pending and not unknown else 1
