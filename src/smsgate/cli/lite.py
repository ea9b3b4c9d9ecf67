"""The `smsgate` command of a bare install (``pip install smsgate`` or ``smsgate[client]``):
`send` and `balance` on the standard library and the SDK alone, and for everything else
a line that says what to install.

`main.py` hands over here when Typer is not installed. Output and exit codes are those of
the full commands (``cli/client.py``): one line per failure, exit 1; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from smsgate import __version__
from smsgate.client import DEFAULT_BASE_URL, Client
from smsgate.client.bulk import unique
from smsgate.client.exceptions import ApiError, ClientError, SendOutcomeUnknown

INSTALL_CLI = "pip install 'smsgate[cli]'"
INSTALL_SERVER = "pip install 'smsgate[server]'"
HINT = (
    f"This install has only `send` and `balance`. For the full client CLI (bulk sends with "
    f"--file, progress): {INSTALL_CLI}. For the gateway itself (serve, account, ...): "
    f"{INSTALL_SERVER}."
)


def describe(exc: ClientError) -> str:
    """``Error 41: Insufficient balance (余额不足)`` and the like."""
    if isinstance(exc, SendOutcomeUnknown):
        return f"Outcome unknown: {exc}"
    if isinstance(exc, ApiError) and exc.code:
        return f"Error {exc}"
    return f"Error: {exc}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smsgate",
        description="smsgate's client commands (the SDK from the command line).",
        epilog=HINT,
    )
    parser.add_argument("--version", action="version", version=f"smsgate {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{send,balance}")
    send = commands.add_parser("send", help="Send TEXT to PHONE[,PHONE] (at most 99).")
    send.add_argument("phones", metavar="PHONE[,PHONE]")
    send.add_argument("text", metavar="TEXT")
    send.add_argument("-g", "--product", help="Product id (g); default product.")
    balance = commands.add_parser("balance", help="Units sent so far and units remaining.")
    for command in (send, balance):
        _connection_options(command)
    return parser


def _connection_options(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--server", default=env("SMSGATE_SERVER", DEFAULT_BASE_URL))
    parser.add_argument("-u", "--user", default=env("SMSGATE_USER"))
    parser.add_argument("-p", "--password", default=env("SMSGATE_PASSWORD"))
    parser.add_argument("-k", "--api-key", default=env("SMSGATE_API_KEY"))
    parser.add_argument("--timeout", type=float, default=15.0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and not args[0].startswith("-") and args[0] not in ("send", "balance"):
        print(f"error: `smsgate {args[0]}` is not installed. {HINT}", file=sys.stderr)
        return 1
    parser = _parser()
    options = parser.parse_args(args)
    if options.command is None:
        parser.print_help()
        return 0
    if not options.user or (options.password is None) == (options.api_key is None):
        print(
            "error: give -u/--user and one of -p/--password or -k/--api-key "
            "(or SMSGATE_USER, SMSGATE_PASSWORD / SMSGATE_API_KEY)",
            file=sys.stderr,
        )
        return 1
    try:
        return _run(options)
    except ClientError as exc:
        print(describe(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted: a request in flight may have been accepted.", file=sys.stderr)
        return 130


def _run(options: argparse.Namespace) -> int:
    with Client(
        options.user,
        password=options.password,
        api_key=options.api_key,
        base_url=options.server,
        timeout=options.timeout,
    ) as client:
        if options.command == "send":
            client.send(options.phones, options.text, options.product)
            print(f"Accepted: {len(unique(options.phones))} number(s)")
        else:
            result = client.balance()
            print(f"sent {result.sent}, remaining {result.remaining}")
    return 0
