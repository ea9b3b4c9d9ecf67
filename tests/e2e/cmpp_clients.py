"""The two independent CMPP clients from PyPI, as customers of smsgate's CMPP server.

- ``pycmpp`` (CMPP 2.0, splits long texts with a UDH itself). Its PDUs (CONNECT with the
  authenticator, SUBMIT single and long) are used as they are. Two things are patched
  around here, and why:
  * its receive loop spins forever once the peer closes (``recv`` returning ``b""`` is
    read as "no header yet") and trusts one ``recv`` to return a whole body: the loop
    below reads whole PDUs and ends when the link does;
  * it has no handler for DELIVER (nor DELIVER_RESP to send): the handler below reads
    the status report by the CMPP 2.0 layout with ``struct`` (not with smsgate's codec, so
    the check stays independent) and answers with pycmpp's own ``Pack`` helpers.
- ``cmppy`` (CMPP 3.0): its ``Cmppy.request`` (connect, one SUBMIT, terminate) is used as
  is; a refused login is read with its own ConnectReq / parse_response, since ``request``
  only returns None then.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

import cmppy
from cmppy.request import ConnectReq, SubmitReq
from cmppy.response import parse_response
from pycmpp import cmpp_defines
from pycmpp.cmpp import Cmpp
from pycmpp.response import ConnectResponseInstance, SubmitResponseInstance
from pycmpp.utils import Pack


@dataclass(frozen=True)
class Report:
    """A status report as pycmpp's customer received it (CMPP 2.0 layout)."""

    msg_id: int  # the Msg_Id of the SUBMIT_RESP it is about
    stat: str
    dest: str


@dataclass
class Seen:
    connect_status: int | None = None
    submit_resps: list[tuple[int, int]] = field(default_factory=list)  # (msg_id, result)
    reports: list[Report] = field(default_factory=list)
    replies: list[tuple[str, str]] = field(default_factory=list)  # (user's number, text)
    closed: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)


class PycmppCustomer(Cmpp):
    """pycmpp's client, its receive loop in a thread, what it receives collected."""

    def __init__(self, host: str, port: int, sp_id: str, secret: str, *, answer: bool = True):
        super().__init__(host, port, sp_id, secret, src_id="", delivery=1, client_heartbeat=False)
        self.seen = Seen()
        self.answer_reports = answer  # False: leave DELIVERs unanswered (held by the server)
        self._thread: threading.Thread | None = None

    def login(self) -> int | None:
        self.connect()
        self.so.settimeout(10)
        self.auth()
        self._thread = threading.Thread(target=self.receive, daemon=True)
        self._thread.start()
        self.wait(lambda s: s.connect_status is not None or s.closed.is_set())
        return self.seen.connect_status

    def wait(self, ready, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
        with self.seen.changed:
            return self.seen.changed.wait_for(lambda: ready(self.seen), timeout)

    def _recv_exactly(self, n: int) -> bytes:
        chunks = b""
        while len(chunks) < n:
            chunk = self.so.recv(n - len(chunks))
            if not chunk:
                raise ConnectionError("closed")
            chunks += chunk
        return chunks

    def receive(self) -> None:  # replaces pycmpp's loop, see the module docstring
        try:
            while True:
                header = self._recv_exactly(12)
                length, command, sequence = struct.unpack("!LLL", header)
                message = header + self._recv_exactly(length - 12)
                self._handle(command, sequence, message)
        except (OSError, ConnectionError):
            pass
        finally:
            self.seen.closed.set()
            with self.seen.changed:
                self.seen.changed.notify_all()

    def _handle(self, command: int, sequence: int, message: bytes) -> None:
        if command == cmpp_defines.CMPP_CONNECT_RESP:
            resp = ConnectResponseInstance()
            resp.resolve(message)
            self._note(lambda s: setattr(s, "connect_status", resp.status))
        elif command == cmpp_defines.CMPP_SUBMIT_RESP:
            sub = SubmitResponseInstance()
            sub.resolve(message)
            self._note(lambda s: s.submit_resps.append((sub.msg_id, sub.status)))
        elif command == cmpp_defines.CMPP_DELIVER_REQ:
            self._deliver(sequence, message[12:])
        elif command == cmpp_defines.CMPP_ACTIVE_TEST_REQ:
            self.send(struct.pack("!LLL", 13, cmpp_defines.CMPP_ACTIVE_TEST_RESP, sequence) + b"\0")

    def _deliver(self, sequence: int, body: bytes) -> None:
        # CMPP 2.0 DELIVER: Msg_Id 8, Dest_Id 21, Service_Id 10, TP_pid, TP_udhi, Msg_Fmt,
        # Src_terminal_Id 21, Registered_Delivery 1, Msg_Length 1, Msg_Content, Reserve 8.
        msg_id = body[:8]
        registered, length = body[63], body[64]
        content = body[65 : 65 + length]
        about, stat, dest = 0, "", ""
        if registered == 1:
            # Status report: Msg_Id 8, Stat 7, Submit_time 10, Done_time 10, Dest 21, seq 4.
            (about,) = struct.unpack("!Q", content[:8])
            stat = content[8:15].decode()
            dest = content[35:56].rstrip(b"\0").decode()
        if self.answer_reports:
            resp_body = msg_id + Pack.get_unsigned_char_data(0)
            head = (
                Pack.get_unsigned_long_data(12 + len(resp_body))
                + Pack.get_unsigned_long_data(cmpp_defines.CMPP_DELIVER_RESP)
                + Pack.get_unsigned_long_data(sequence)
            )
            self.send(head + resp_body)
        if registered == 1:
            self._note(lambda s: s.reports.append(Report(about, stat, dest)))
        else:  # a user's reply (short: one part), Msg_Fmt 8 at offset 41, sender at 42
            sender = body[42:63].rstrip(b"\0").decode()
            text = content.decode("utf-16-be") if body[41] == 8 else content.decode("latin-1")
            self._note(lambda s: s.replies.append((sender, text)))

    def _note(self, change) -> None:  # type: ignore[no-untyped-def]
        with self.seen.changed:
            change(self.seen)
            self.seen.changed.notify_all()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.so.shutdown(socket.SHUT_RDWR)
        super().close()
        if self._thread is not None:
            self._thread.join(5)


def cmppy_submit(
    host: str, port: int, sp_id: str, secret: str, phone: str, text: str
) -> tuple[int, int] | None:
    """One SUBMIT with cmppy (CMPP 3.0): (Msg_Id, Result), or None if the login failed."""
    client = cmppy.Cmppy(host, port, sp_id, secret)
    submit = SubmitReq(sp_id, text, src_id="10690001", dest_terminal_id=[phone], service_id="")
    res = client.request(submit)
    return None if res is None else (res.msg_id, res.result)


def cmppy_login_status(host: str, port: int, sp_id: str, secret: str) -> int:
    """The Status of cmppy's CONNECT (CMPP 3.0: 4 bytes)."""
    client = cmppy.Cmppy(host, port, sp_id, secret)
    try:
        client._connect()
        client._write(ConnectReq(sp_id, secret).message)
        return int(parse_response(client._read()).status)
    finally:
        client._close()
