"""Run a service: the HTTP API and its background workers in one event loop, until SIGTERM.

HTTP answers from the start: while the service waits for its dependencies (`starting`), with
`/healthz` 200 and `/readyz` 503; then the service's own app, on the same bound port.

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
from typing import Any, NoReturn, Protocol, TypeVar

import uvicorn
import uvloop
from fastapi import FastAPI

from flowcase.runtime.settings import HttpSettings
from flowcase.runtime.starting import (
    Dependency,
    DependencyRefused,
    StartingApp,
    start_when_reachable,
)
from flowcase.runtime.telemetry import configure_logging, configure_tracing

log = logging.getLogger(__name__)
T = TypeVar("T")


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


def run_service(
    name: str,
    build: Callable[[HttpSettings], Awaitable[Assembly]],
    needs: Sequence[Dependency] = (),
) -> NoReturn:
    """The whole of a service's `__main__`: logs and traces, wait for what it `needs` (HTTP
    already answering, not ready), build, serve until SIGTERM, close."""
    configure_logging()
    configure_tracing(name)

    async def main() -> int:
        http = HttpSettings()
        front = StartingApp([dependency.name for dependency in needs])
        async with serving(front, http) as server:
            try:
                service = await server.unless_stopped(
                    start_when_reachable(front, needs, lambda: build(http))
                )
            except DependencyRefused as refused:
                log.critical("cannot start: %s", refused)
                return 1
            if service is None:  # stopped while waiting
                return 0
            front.serve_from(service.app)
            try:
                return await server.run(service.workers)
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


async def serve(app: Any, settings: HttpSettings, workers: Sequence[Worker] = ()) -> int:
    """Serve until SIGTERM/SIGINT or a worker's failure; return the process exit code."""
    async with serving(app, settings) as server:
        return await server.run(workers)


class Serving:
    """HTTP served, and SIGTERM/SIGINT noted, for `serving`'s block."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._http = asyncio.create_task(server.serve(), name="http")
        self.stopping = asyncio.Event()
        self._watch = asyncio.create_task(self.stopping.wait(), name="signal")

    async def unless_stopped(self, work: Awaitable[T]) -> T | None:
        """What `work` returns, or None (`work` cancelled) when a signal or HTTP ends first."""
        task = asyncio.ensure_future(work)
        await asyncio.wait({task, self._watch, self._http}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return None
        return task.result()

    async def run(self, workers: Sequence[Worker]) -> int:
        """Run the workers until a signal or a failure; drain HTTP, then stop them; exit code."""
        background = {asyncio.create_task(w.run(), name=type(w).__name__): w for w in workers}
        exit_code = 0
        done, _ = await asyncio.wait(
            {self._http, self._watch, *background}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            if task is not self._watch and not task.cancelled() and task.exception() is not None:
                error = task.exception()
                log.error("%s failed; stopping the service", task.get_name(), exc_info=error)
                exit_code = 1
        await self._stop_http()
        for worker in background.values():
            worker.stop()
        results = await asyncio.gather(*background, return_exceptions=True)
        if any(isinstance(r, BaseException) for r in results):
            exit_code = 1
        return exit_code

    async def close(self) -> None:
        await self._stop_http()
        self._watch.cancel()

    async def _stop_http(self) -> None:
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await self._http


@contextlib.asynccontextmanager
async def serving(app: Any, settings: HttpSettings) -> AsyncIterator[Serving]:
    """`app` served on the settings' port and SIGTERM/SIGINT caught for the block; on leaving,
    HTTP drains and stops."""
    server = _Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=20,
            # What a service opens and closes is its assembly's, built before serving and closed
            # after; no app has a lifespan of its own, and the starting front could not pass one on.
            lifespan="off",
        )
    )
    loop = asyncio.get_running_loop()
    state = Serving(server)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, state.stopping.set)
    try:
        yield state
    finally:
        await state.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
