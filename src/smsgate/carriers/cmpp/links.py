"""A CMPP connection as a stream of PDUs: framing, sequence numbers, the last sign of life."""

from __future__ import annotations

import asyncio
import contextlib
import time

from smsgate.carriers.cmpp import codec
from smsgate.carriers.cmpp.codec import Command


class PduStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._sequence = 0
        self._last_heard = time.monotonic()
        peer = writer.get_extra_info("peername")
        self.peer_ip: str = peer[0] if peer else ""

    async def read(self) -> tuple[codec.Header, bytes]:
        """The next PDU; IncompleteReadError when the peer has gone."""
        header = codec.parse_header(await self._reader.readexactly(codec.HEADER_SIZE))
        body = await self._reader.readexactly(header.length - codec.HEADER_SIZE)
        self._last_heard = time.monotonic()
        return header, body

    async def send(self, command: Command, sequence: int, body: bytes = b"") -> None:
        self._writer.write(codec.frame(command, sequence, body))
        await self._writer.drain()

    def next_sequence(self) -> int:
        """Our Sequence_Ids: 1 .. 2^31-1, then round again."""
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    def idle_for(self) -> float:
        return time.monotonic() - self._last_heard

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
            await self._writer.wait_closed()
