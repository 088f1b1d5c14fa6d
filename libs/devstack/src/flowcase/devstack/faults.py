"""Protocol-aware TCP proxies for fault injection against the real broker and database.

`KafkaFaultProxy`: the local broker has a second listener whose advertised address is this
proxy's, so a client bootstrapped through the proxy keeps talking through it. The proxy reads the
length-prefixed Kafka frames: it can drop the response to a Produce request and cut the
connection, which makes the client retry a send the broker already stored; and it can hold the
responses of one kind of request until told to let them through, which keeps a client's request
in flight while the test acts.

`PostgresFaultProxy` stands between a client and PostgreSQL: it can cut a connection at the moment
the server answers a COMMIT, so the transaction is stored while the client sees only a lost
connection — the ambiguous commit a database restart or a network fault leaves behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Coroutine
from typing import Any

PRODUCE_API_KEY = 0
LIST_OFFSETS_API_KEY = 2


class _FaultProxy:
    """A TCP proxy on `listen_port` to `target_port`; a subclass relays one connection's bytes."""

    def __init__(self, *, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.host = host
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.listen_port)
        # With port 0 the system chose one: the port to point clients at.
        self.listen_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(
                self.host, self.target_port
            )
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, server_writer}
        tasks = [
            asyncio.ensure_future(task)
            for task in self._relay(client_reader, client_writer, server_reader, server_writer)
        ]
        try:
            with contextlib.suppress(Exception):
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Cancelled too when the proxy stops: ending quietly is the point.
            for task in tasks:
                task.cancel()
            for writer in (client_writer, server_writer):
                writer.close()
                self._writers.discard(writer)

    def _relay(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        server_reader: asyncio.StreamReader,
        server_writer: asyncio.StreamWriter,
    ) -> tuple[Coroutine[Any, Any, None], Coroutine[Any, Any, None]]:
        """The two directions of one connection; the first to end closes it."""
        raise NotImplementedError


class KafkaFaultProxy(_FaultProxy):
    def __init__(self, *, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        super().__init__(listen_port=listen_port, target_port=target_port, host=host)
        self.produce_responses_to_drop = 0
        self.dropped = 0
        self.held = 0  # responses held back so far (see `hold_responses`)
        self._holding: set[int] = set()
        self._released = asyncio.Event()
        self._released.set()

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.listen_port}"

    def drop_produce_responses(self, count: int = 1) -> None:
        """Swallow the next `count` Produce responses, cutting each connection that had one."""
        self.produce_responses_to_drop += count

    def hold_responses(self, api_key: int) -> None:
        """Keep back every response to requests of `api_key` until `release_responses`."""
        self._holding.add(api_key)
        self._released.clear()

    def release_responses(self) -> None:
        self._holding.clear()
        self._released.set()

    def _relay(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        broker_reader: asyncio.StreamReader,
        broker_writer: asyncio.StreamWriter,
    ) -> tuple[Coroutine[Any, Any, None], Coroutine[Any, Any, None]]:
        api_keys: dict[int, int] = {}  # by correlation id, of the requests awaiting a response

        async def requests() -> None:
            while frame := await _read_frame(client_reader):
                api_key, _version, correlation_id = struct.unpack(">hhi", frame[4:12])
                api_keys[correlation_id] = api_key
                broker_writer.write(frame)
                await broker_writer.drain()

        async def responses() -> None:
            while frame := await _read_frame(broker_reader):
                (correlation_id,) = struct.unpack(">i", frame[4:8])
                api_key = api_keys.pop(correlation_id, None)
                if api_key == PRODUCE_API_KEY and self.produce_responses_to_drop > 0:
                    self.produce_responses_to_drop -= 1
                    self.dropped += 1
                    return  # the broker stored the batch; the client never hears so
                if api_key in self._holding:
                    self.held += 1
                    await self._released.wait()
                client_writer.write(frame)
                await client_writer.drain()

        return requests(), responses()


class PostgresFaultProxy(_FaultProxy):
    """Cuts connections at COMMIT: the server has stored the transaction, and its answer never
    reaches the client. Point a client's DSN at `listen_port`, with `sslmode=disable` (the proxy
    reads the messages, so they must be in clear)."""

    def __init__(self, *, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        super().__init__(listen_port=listen_port, target_port=target_port, host=host)
        self.commits_to_cut = 0
        self.cut = 0  # commits whose answer was swallowed so far
        self.commits = 0  # commits answered to the client

    def cut_commits(self, count: int = 1) -> None:
        """Swallow the answers to the next `count` COMMITs, cutting each one's connection."""
        self.commits_to_cut += count

    def _relay(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        server_reader: asyncio.StreamReader,
        server_writer: asyncio.StreamWriter,
    ) -> tuple[Coroutine[Any, Any, None], Coroutine[Any, Any, None]]:
        # Before the startup message, each TLS or GSS encryption request gets a one-byte answer
        # ('N': refused, with sslmode=disable none is sent); after it, typed messages only.
        answers: asyncio.Queue[bool] = asyncio.Queue()  # True: a one-byte answer; False: typed

        async def requests() -> None:
            while True:
                message = await _read_untyped(client_reader)
                if message is None:
                    return
                server_writer.write(message)
                await server_writer.drain()
                (code,) = struct.unpack(">i", message[4:8])
                negotiating = code in (_SSL_REQUEST, _GSSENC_REQUEST)
                answers.put_nowait(negotiating)
                if not negotiating:
                    break
            while data := await client_reader.read(65536):
                server_writer.write(data)
                await server_writer.drain()

        async def responses() -> None:
            while await answers.get():
                client_writer.write(await server_reader.readexactly(1))
                await client_writer.drain()
            while message := await _read_typed(server_reader):
                if message[:1] == b"C" and message[5:] == b"COMMIT\0":
                    if self.commits_to_cut > 0:
                        self.commits_to_cut -= 1
                        self.cut += 1
                        return  # stored on the server; the client never hears so
                    self.commits += 1
                client_writer.write(message)
                await client_writer.drain()

        return requests(), responses()


_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


async def _read_frame(reader: asyncio.StreamReader) -> bytes | None:
    try:
        header = await reader.readexactly(4)
        (size,) = struct.unpack(">i", header)
        return header + await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


async def _read_untyped(reader: asyncio.StreamReader) -> bytes | None:
    """A PostgreSQL start-up message: a length that counts itself, then the body."""
    try:
        header = await reader.readexactly(4)
        (size,) = struct.unpack(">i", header)
        return header + await reader.readexactly(size - 4)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


async def _read_typed(reader: asyncio.StreamReader) -> bytes | None:
    """One PostgreSQL protocol message: its type byte, then a length that counts itself."""
    try:
        header = await reader.readexactly(5)
        (size,) = struct.unpack(">i", header[1:])
        return header + await reader.readexactly(size - 4)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
