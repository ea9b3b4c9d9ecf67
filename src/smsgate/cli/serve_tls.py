"""`smsgate serve --tls-cert F --tls-key F`: HTTP and HTTPS at once, from one process.

One process, one app, two listeners: the send path's in-memory state (frequency caps,
the group-commit writer, the dispatcher on SQLite) is the same whichever port a request
came in on. A second server process for HTTPS would split it (docs/decisions.md).

- granian (the default): two embedded granian servers on one event loop. The HTTP one
  runs the app's lifespan (start-up and shutdown of the runtime), the HTTPS one serves
  the same app without it (``asginl``). granian terminates TLS itself (rustls), from
  TLS 1.2 up, for the older SMSBao clients still on it.
- uvicorn: two ``uvicorn.Server`` on one loop, sharing the app the first one loaded;
  the second has its lifespan off and serves with Python's ``ssl``.

SIGTERM or SIGINT stops both; the HTTP server stops last, running the shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Callable, Generator, Iterable
from typing import Any

from smsgate import errors
from smsgate.cli import http_limits
from smsgate.settings import Settings


def check_tls(settings: Settings, workers: int) -> None:
    """Refuse, with what to do, a TLS setup that cannot start."""
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise errors.InvalidInput("give both --tls-cert and --tls-key (PEM files)")
    if settings.tls_cert is None or settings.tls_key is None:
        return
    for flag, path in (("--tls-cert", settings.tls_cert), ("--tls-key", settings.tls_key)):
        if not path.is_file():
            raise errors.InvalidInput(f"{flag}: no such file: {path}")
    if settings.tls_port == settings.port:
        raise errors.InvalidInput("--tls-port must differ from --port: both are served")
    if workers > 1:
        raise errors.InvalidInput(
            "HTTPS is served by one process (--workers 1); with several, terminate TLS at "
            "the load balancer in front of them"
        )


def run(settings: Settings) -> None:
    if settings.server == "uvicorn":
        asyncio.run(_uvicorn_pair(settings))
    else:
        import uvloop

        uvloop.run(_granian_pair(settings))


async def _granian_pair(settings: Settings) -> None:
    from granian.constants import Interfaces, SSLProtocols
    from granian.log import LogLevels
    from granian.server.embed import Server

    from smsgate.app import serving_app

    app = serving_app(settings)
    common: dict[str, Any] = {
        "address": settings.host,
        "backlog": 2048,
        "log_access": False,  # ours, masked and the same on both servers (api/guard.py)
        "log_level": LogLevels.info,
        "http1_settings": http_limits.granian_http1(settings),
    }
    plain = Server(app, port=settings.port, interface=Interfaces.ASGI, **common)
    secure = Server(
        app,
        port=settings.tls_port,
        interface=Interfaces.ASGINL,  # the lifespan runs once, in `plain`
        ssl_cert=settings.tls_cert,
        ssl_key=settings.tls_key,
        ssl_protocol_min=SSLProtocols.tls12,
        **common,
    )
    with _on_stop_signals(secure.stop):
        await _serve_both(plain.serve(), secure.serve(), plain.stop)


async def _uvicorn_pair(settings: Settings) -> None:
    import uvicorn

    from smsgate.app import serving_app

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield  # both servers' signals are handled together, below

    common: dict[str, Any] = {
        "host": settings.host,
        "proxy_headers": False,  # X-Forwarded-For is honoured only from trusted_proxies
        "server_header": False,
        "access_log": False,  # ours (api/guard.py)
        "log_level": "info",
        **http_limits.uvicorn_options(settings),
    }
    plain_config = uvicorn.Config(
        functools.partial(serving_app, settings), factory=True, port=settings.port, **common
    )
    plain_config.load()  # the one app both serve
    secure_config = uvicorn.Config(
        plain_config.loaded_app,
        port=settings.tls_port,
        lifespan="off",  # the lifespan runs once, in `plain`
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        **common,
    )
    plain, secure = _Server(plain_config), _Server(secure_config)

    def stop_plain() -> None:
        plain.should_exit = True

    def stop_secure() -> None:
        secure.should_exit = True

    with _on_stop_signals(stop_secure):
        await _serve_both(plain.serve(), secure.serve(), stop_plain)


async def _serve_both(plain: Any, secure: Any, stop_plain: Callable[[], None]) -> None:
    """Run both; when HTTPS stops (a signal, or a failure), stop HTTP too."""
    plain_task = asyncio.ensure_future(plain)
    try:
        await secure
    finally:
        stop_plain()
        await plain_task


@contextlib.contextmanager
def _on_stop_signals(stop: Callable[[], None]) -> Generator[None, None, None]:
    loop = asyncio.get_running_loop()
    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
