"""A stand-in SMSBao server for your tests: a real HTTP server on 127.0.0.1, standard library
only, answering from a script and recording every request.

    with FakeSmsbao() as fake:
        fake.script = ["0", "41"]               # then the default answer
        client = Client("alice", api_key="k" * 32, base_url=fake.url)
        client.send("13800138000", "hi")        # accepted
        client.send("13800138000", "hi")        # raises InsufficientBalance
        assert fake.requests[0].params["m"] == "13800138000"

Without a script, ``/query`` answers ``0\n0,0`` and every other path ``default`` (``"0"``).
An answer is the body to return (``"0"``, ``"41"``, ``"0\\n12,34"``) or :data:`DROP` (close the
connection without answering: the client sees a broken exchange) or :data:`HOLD` (wait until
``release`` is set, then drop: for killing a client mid-request).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

DROP = "<drop>"
HOLD = "<hold>"


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server saw it: the path, the decoded query (last value wins) and
    the answer it got."""

    path: str
    params: dict[str, str]
    answer: str = "0"


class FakeSmsbao:
    def __init__(self, default: str = "0") -> None:
        self.script: list[str] = []
        self.default = default
        self.requests: list[Received] = []
        self.arrived = threading.Event()  # set when a HOLD request is in
        self.release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeSmsbao:
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, params: dict[str, str]) -> str:
        """Record the request; the scripted answer for it."""
        if self.script:
            answer = self.script.pop(0)
        else:
            answer = "0\n0,0" if path.rstrip("/") == "/query" else self.default
        self.requests.append(Received(path, params, answer))
        if answer == HOLD:
            self.arrived.set()
            self.release.wait(30)
        return answer

    def sent_numbers(self, path: str = "/sms") -> list[str]:
        """The numbers of every request to ``path`` not refused with an error code (answered
        ``0``, or dropped: the client cannot know those were not sent), repeats kept."""
        return [
            number
            for r in self.requests
            if r.path == path and r.answer in ("0", DROP, HOLD)
            for number in r.params["m"].split(",")
        ]


def _handler(fake: FakeSmsbao) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query, keep_blank_values=True)
            params = {key: values[-1] for key, values in query.items()}
            answer = fake.answer(url.path, params)
            if answer in (DROP, HOLD):
                self.close_connection = True
                return
            body = answer.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    return Handler
