"""A Kafka-protocol-aware TCP proxy for fault injection against the real broker.

The local broker has a second listener whose advertised address is this proxy's, so a client
bootstrapped through the proxy keeps talking through it. The proxy reads the length-prefixed Kafka
frames: it can drop the response to a Produce request and cut the connection, which makes the
client retry a send the broker already stored; and it can hold the responses of one kind of
request until told to let them through, which keeps a client's request in flight while the test
acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

PRODUCE_API_KEY = 0
LIST_OFFSETS_API_KEY = 2


class KafkaFaultProxy:
    def __init__(self, *, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.host = host
        self.produce_responses_to_drop = 0
        self.dropped = 0
        self.held = 0  # responses held back so far (see `hold_responses`)
        self._holding: set[int] = set()
        self._released = asyncio.Event()
        self._released.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.listen_port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.listen_port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

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

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            await self._relay(client_reader, client_writer)
        except asyncio.CancelledError:
            client_writer.close()  # the proxy is stopping; ending quietly is the point

    async def _relay(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection(
                self.host, self.target_port
            )
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, broker_writer}
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

        tasks = [asyncio.ensure_future(requests()), asyncio.ensure_future(responses())]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_writer, broker_writer):
            writer.close()
            self._writers.discard(writer)


async def _read_frame(reader: asyncio.StreamReader) -> bytes | None:
    try:
        header = await reader.readexactly(4)
        (size,) = struct.unpack(">i", header)
        return header + await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
