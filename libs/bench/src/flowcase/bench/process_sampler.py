"""CPU (% of one core) and resident memory of each process of the run, once a second (adapter).

A named process counts with all its children (PostgreSQL is its postmaster and every backend, a
service whatever it spawned), except where it is watched alone: the driver's children are the
profiler, which is sampled under its own name.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from flowcase.bench.background import cancel
from flowcase.bench.samples import Sample, cpu_percent


@dataclass(frozen=True)
class Watched:
    pid: int | None
    with_children: bool = True


def _family(watched: Watched) -> list[psutil.Process]:
    if watched.pid is None:
        return []
    try:
        root = psutil.Process(watched.pid)
        return [root, *root.children(recursive=True)] if watched.with_children else [root]
    except psutil.Error:
        return []


def _reading(processes: list[psutil.Process]) -> tuple[dict[int, float], float]:
    """CPU seconds by pid and the summed RSS bytes; a process that just exited is skipped."""
    cpu: dict[int, float] = {}
    rss = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error), process.oneshot():
            times = process.cpu_times()
            cpu[process.pid] = times.user + times.system
            rss += process.memory_info().rss
    return cpu, rss


class ProcessSampler:
    def __init__(self, processes: Callable[[], dict[str, Watched]], every: float = 1.0) -> None:
        self._processes = processes
        self.every = every
        self.cpu: list[Sample] = []
        self.rss: list[Sample] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel(self._task)

    async def _run(self) -> None:
        before: dict[str, dict[int, float]] = {}
        then = time.monotonic()
        while True:
            await asyncio.sleep(self.every)
            now = time.monotonic()
            # psutil reads /proc synchronously: a thread keeps the driver's loop on schedule.
            readings = await asyncio.to_thread(self._read)
            cpu = {
                name: cpu_percent(before[name], times, now - then)
                for name, (times, _) in readings.items()
                if name in before
            }
            before = {name: times for name, (times, _) in readings.items()}
            then = now
            at = time.time()
            if cpu:
                self.cpu.append(Sample(at, cpu))
            self.rss.append(Sample(at, {name: rss for name, (_, rss) in readings.items()}))

    def _read(self) -> dict[str, tuple[dict[int, float], float]]:
        return {name: _reading(_family(watched)) for name, watched in self._processes().items()}
