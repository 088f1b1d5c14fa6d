"""Run a service: the HTTP API and its background workers in one event loop, until SIGTERM.

Shutdown order matters: HTTP stops taking requests and drains first, then each worker (consumer
runner, relay, timer loop) finishes the message in hand and commits. A worker that dies takes the
service down with a non-zero exit, so a supervisor restarts it instead of leaving an API that
answers while its consumer is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import NoReturn, Protocol

import uvicorn
import uvloop
from fastapi import FastAPI

from flowcase.runtime.settings import HttpSettings
from flowcase.runtime.telemetry import configure_logging, configure_tracing

log = logging.getLogger(__name__)


class Worker(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


class Assembly(Protocol):
    """A service put together by its composition root: what `run_service` needs of it."""

    @property
    def app(self) -> FastAPI: ...

    @property
    def workers(self) -> Sequence[Worker]: ...

    async def close(self) -> None: ...


def run_service(name: str, build: Callable[[HttpSettings], Awaitable[Assembly]]) -> NoReturn:
    """The whole of a service's `__main__`: logs and traces, build, serve until SIGTERM, close."""
    configure_logging()
    configure_tracing(name)

    async def main() -> int:
        http = HttpSettings()
        service = await build(http)
        try:
            return await serve(service.app, http, service.workers)
        finally:
            await service.close()

    # uvloop: the event loop every service spends its time in, at a fraction of the cost.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        sys.exit(runner.run(main()))


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The runner owns SIGTERM/SIGINT so it can stop the workers after HTTP has drained.
        yield


@contextlib.asynccontextmanager
async def workers_running(workers: Sequence[Worker]) -> AsyncIterator[None]:
    """Run workers as tasks of this event loop for the block (in-process use: tests, benchmarks).

    On leaving, each is stopped and awaited; a worker that failed re-raises its error here.
    """
    tasks = [asyncio.create_task(w.run(), name=type(w).__name__) for w in workers]
    try:
        yield
    finally:
        for worker in workers:
            worker.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


async def serve(app: FastAPI, settings: HttpSettings, workers: Sequence[Worker] = ()) -> int:
    """Serve until SIGTERM/SIGINT or a worker's failure; return the process exit code."""
    server = _Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=20,
        )
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    http = asyncio.create_task(server.serve(), name="http")
    background = {asyncio.create_task(w.run(), name=type(w).__name__): w for w in workers}
    watch = asyncio.create_task(stopping.wait(), name="signal")
    exit_code = 0
    done, _ = await asyncio.wait({http, watch, *background}, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not watch and not task.cancelled() and task.exception() is not None:
            log.error("%s failed; stopping the service", task.get_name(), exc_info=task.exception())
            exit_code = 1
    server.should_exit = True
    with contextlib.suppress(Exception):
        await http
    for worker in background.values():
        worker.stop()
    results = await asyncio.gather(*background, return_exceptions=True)
    if any(isinstance(r, BaseException) for r in results):
        exit_code = 1
    watch.cancel()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    return exit_code
