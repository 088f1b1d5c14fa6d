"""For tests that run the platform in their own process: waiting on a condition, and an app
(the webhook sink, a service's API) served on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import uvicorn

from flowcase.devstack import webhook_sink


async def eventually(
    probe: Callable[[], Awaitable[Any]], accept: Callable[[Any], bool], *, timeout: float = 30.0
) -> Any:
    """Poll `probe` until `accept` holds for its result, and return that result."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if accept(result):
            return result
        assert time.monotonic() < deadline, f"still {result!r} after {timeout}s"
        await asyncio.sleep(0.1)


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave the test runner's signal handlers alone


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """An ASGI app served by uvicorn on a free port of 127.0.0.1: its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = _QuietServer(uvicorn.Config(app, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "the HTTP server did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def served_webhook_sink() -> AsyncIterator[str]:
    """The local stack's webhook sink (every connector answers) on a free port: its URL."""
    async with served(webhook_sink.app) as url:
        yield url
