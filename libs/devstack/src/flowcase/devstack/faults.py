"""A Kafka-protocol-aware TCP proxy for fault injection against the real broker.

The local broker has a second listener whose advertised address is this proxy's, so a client
bootstrapped through the proxy keeps talking through it. The proxy reads the length-prefixed Kafka
frames: it can drop the response to a Produce request and cut the connection, which makes the
client retry a send the broker already stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

PRODUCE_API_KEY = 0


class KafkaFaultProxy:
    def __init__(self, *, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.host = host
        self.produce_responses_to_drop = 0
        self.dropped = 0
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
        produce_requests: set[int] = set()

        async def requests() -> None:
            while frame := await _read_frame(client_reader):
                api_key, _version, correlation_id = struct.unpack(">hhi", frame[4:12])
                if api_key == PRODUCE_API_KEY:
                    produce_requests.add(correlation_id)
                broker_writer.write(frame)
                await broker_writer.drain()

        async def responses() -> None:
            while frame := await _read_frame(broker_reader):
                (correlation_id,) = struct.unpack(">i", frame[4:8])
                if correlation_id in produce_requests and self.produce_responses_to_drop > 0:
                    self.produce_responses_to_drop -= 1
                    self.dropped += 1
                    return  # the broker stored the batch; the client never hears so
                produce_requests.discard(correlation_id)
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
