"""One benchmark run (the service layer): start the dedicated stack, warm it up, measure the
baselines, hold it idle (if asked), drive each rate step open-loop and then drain a backlog
published up front (if asked) while sampling processes and lag, write the results."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from flowcase.bench.baselines import (
    kafka_baseline,
    postgres_baseline,
    request_submitted_records,
    workflow_event_rows,
)
from flowcase.bench.drain import Drain, summarise_drain
from flowcase.bench.lag_sampler import LagSampler
from flowcase.bench.machine import load_average, machine_facts
from flowcase.bench.mix import Mix, PlannedSubmission, plan_submissions
from flowcase.bench.platform_stack import APPROVING_TEAMS, BenchStack
from flowcase.bench.process_sampler import ProcessSampler, Watched
from flowcase.bench.profiler import Profiler
from flowcase.bench.report import results_document
from flowcase.bench.results import result_path, write_results
from flowcase.bench.samples import series, summarise, within
from flowcase.bench.schedule import RateStep, steps_of
from flowcase.bench.stages import SubmissionTrace, summarise_step
from flowcase.bench.submitters import Approver, HttpSubmitter, RawSubmitter, Submitter
from flowcase.bench.topic_watch import TopicWatcher
from flowcase.runtime.auth import Role

VIAS = ("http", "raw")
# The warm-up: joins every consumer group, opens the pools, compiles the definitions and leaves
# stored events to copy for the PostgreSQL baseline; its figures are not reported.
WARMUP = RateStep(rate=10, seconds=3)


class Progress(Protocol):
    def phase(self, description: str, total: float | None = None) -> None: ...

    def advance(self, amount: float = 1) -> None: ...


class NoProgress:
    def phase(self, description: str, total: float | None = None) -> None:
        return None

    def advance(self, amount: float = 1) -> None:
        return None


@dataclass(frozen=True)
class BenchSettings:
    rates: tuple[float, ...] = (100.0,)
    seconds: float = 20.0  # per rate step
    vias: tuple[str, ...] = ("http",)
    mix: Mix = field(default_factory=Mix)
    seed: int = 7
    replicas: int = 1
    replicated: tuple[str, ...] = ("workflow",)
    profile: str | None = None  # a service to run py-spy on during the platform phase
    baseline_seconds: float = 5.0
    pg_writers: int = 4
    pg_batch: int = 100
    drain_seconds: float = 60.0  # the most a step waits for its backlog after its window
    drain: int = 0  # requests published up front after the steps, timed to their outcomes
    drain_stall_seconds: float = 60.0  # the drain gives up after this long without an outcome
    idle_seconds: float = 0.0  # after the warm-up, nothing offered for this long (0: none)
    output: Path | None = None  # the results folder (default: benchmarks/results)

    def described(self) -> dict[str, Any]:
        return {
            "rates": list(self.rates),
            "seconds_per_step": self.seconds,
            "vias": list(self.vias),
            "mix": {kind.value: round(share, 4) for kind, share in self.mix.shares().items()},
            "seed": self.seed,
            "replicas": self.replicas,
            "replicated": list(self.replicated),
            "profile": self.profile,
            "baseline_seconds": self.baseline_seconds,
            "postgres_writers": self.pg_writers,
            "postgres_batch": self.pg_batch,
            "drain_seconds": self.drain_seconds,
            "drain": (
                {"requests": self.drain, "stall_seconds": self.drain_stall_seconds}
                if self.drain
                else None
            ),
            "idle_seconds": self.idle_seconds,
            "warmup": {"rate": WARMUP.rate, "seconds": WARMUP.seconds},
        }


@dataclass
class StepRun:
    summary: dict[str, Any]
    traces: list[SubmissionTrace]
    drained_at: float


async def drive_step(
    step: RateStep,
    submitter: Submitter,
    plan: Iterator[PlannedSubmission],
    watcher: TopicWatcher,
    *,
    drain_seconds: float,
    progress: Progress,
) -> StepRun:
    """Offer `step.count` submissions open-loop, then wait for their outcomes (bounded)."""
    start = time.time() + 0.2
    traces = [SubmissionTrace(next(plan), due_at=start + o) for o in step.offsets()]
    in_flight: set[asyncio.Task[None]] = set()
    for trace in traces:
        await asyncio.sleep(max(0.0, trace.due_at - time.time()))
        # Never awaited here: a slow answer must not delay the next request's due time.
        task = asyncio.create_task(submitter.submit(trace))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        progress.advance()
    end = start + step.seconds
    await asyncio.sleep(max(0.0, end - time.time()))
    deadline = time.monotonic() + drain_seconds
    # The outcomes arrive from another task's reading; polling them is the simplest wait.
    while not watcher.seen.settled(traces, submitter.via) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    for task in in_flight:
        task.cancel()  # still unanswered after the drain: counted as such
    await asyncio.gather(*in_flight, return_exceptions=True)
    drained_at = time.time()
    summary = summarise_step(step, submitter.via, traces, watcher.seen, (start, end))
    return StepRun(summary, traces, drained_at)


async def drive_drain(
    requests: int,
    submitter: RawSubmitter,
    plan: Iterator[PlannedSubmission],
    watcher: TopicWatcher,
    lag: LagSampler,
    *,
    stall_seconds: float,
    progress: Progress,
) -> Drain:
    """Publish `requests` submissions at once and wait until each has its outcome, or until none
    has come for `stall_seconds`."""
    progress.phase("drain: waiting for every consumer group to catch up")
    # A backlog the steps left behind would be counted as the drain's own work.
    caught_up = await lag.next_sample(stall_seconds, lambda s: not any(s.values.values()))
    latest = caught_up or (lag.messages[-1] if lag.messages else None)
    due = time.time()  # every one at once
    traces = [SubmissionTrace(next(plan), due_at=due) for _ in range(requests)]
    progress.phase(f"drain: publishing {requests} requests up front on the raw topic", requests)
    started = time.time()
    await submitter.submit_all(traces, progress.advance)
    published = time.time()
    progress.phase(f"drain: {requests} requests to their outcomes", requests)
    pending = traces
    last_outcome = time.monotonic()
    while pending and time.monotonic() - last_outcome < stall_seconds:
        # Outcome times come from the records, not from this loop: it only has to notice the
        # end, and looks at the requests still pending twice a second (20,000 take ~10 ms).
        await asyncio.sleep(0.5)
        still = [t for t in pending if not watcher.seen.is_settled(t, submitter.via)]
        if len(still) < len(pending):
            progress.advance(len(pending) - len(still))
            last_outcome = time.monotonic()
        pending = still
    # One more lag sample, after the last outcome: how far behind governance was at the end.
    await lag.next_sample(3 * lag.every)
    return Drain(traces, started, published, dict(latest.values) if latest else {})


async def hold_idle(
    seconds: float, lag: LagSampler, progress: Progress
) -> tuple[float, float] | None:
    """Offer nothing for `seconds`, once every consumer group has caught up; the window (None:
    no idle phase). The lag sampler pauses meanwhile: its queries would be the broker's only
    work."""
    if not seconds:
        return None
    progress.phase("idle: waiting for every consumer group to catch up")
    await lag.next_sample(60.0, lambda s: not any(s.values.values()))
    progress.phase(f"idle: nothing offered for {seconds:g}s")
    lag.paused = True
    try:
        start = time.time()
        await asyncio.sleep(seconds)
        return start, time.time()
    finally:
        lag.paused = False


def _submitter(via: str, stack: BenchStack) -> Submitter:
    if via == "http":
        return HttpSubmitter(stack.url("intake"), stack.bearer("bench-upstream", Role.CLIENT))
    if via == "raw":
        return RawSubmitter(stack.kafka)
    raise ValueError(f"--via is one of {VIAS}, not {via!r}")


async def run_bench(
    settings: BenchSettings, progress: Progress | None = None
) -> tuple[dict[str, Any], Path]:
    progress = progress or NoProgress()
    load_before = load_average()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    path = result_path("platform", settings.output)
    stack = BenchStack(replicas=settings.replicas, replicated=settings.replicated)
    progress.phase("starting a dedicated stack (Kafka, PostgreSQL, services)")
    try:
        await stack.start()
        document = await _measure(settings, stack, path, progress)
    finally:
        progress.phase("stopping the dedicated stack")
        await stack.stop()
    document = results_document(
        started_at=started_at,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine_facts(load_before, stack="dedicated"),
        settings=settings.described(),
        **document,
    )
    return document, write_results(document, path)


async def _measure(
    settings: BenchSettings, stack: BenchStack, path: Path, progress: Progress
) -> dict[str, Any]:
    approver = Approver(
        stack.url("workflow"),
        lambda role: stack.bearer(f"bench-{role}", Role.SUPERVISOR, role, teams=APPROVING_TEAMS),
    )
    watcher = TopicWatcher(stack.kafka, approver.approve_soon)
    lag = LagSampler(stack.kafka, watcher)
    run_id = uuid.uuid4().hex[:8]
    plan = plan_submissions(settings.mix, seed=settings.seed, prefix=f"bench-{run_id}")
    await watcher.start()
    await lag.start()
    profiler: Profiler | None = None
    sampler: ProcessSampler | None = None
    try:
        progress.phase("warming up", WARMUP.count)
        warm = await _steps([WARMUP], ("http",), stack, plan, watcher, settings, progress)
        counts = warm[0].summary["counts"]
        if any(counts[k] for k in ("refused", "unanswered", "outstanding", "wrong_outcome")):
            raise RuntimeError(f"the platform did not settle its warm-up: {counts}")
        baselines = await _baselines(settings, stack, plan, progress)

        def processes() -> dict[str, Watched]:
            watched = stack.processes()
            watched["driver"] = Watched(os.getpid(), with_children=False)
            if profiler is not None and profiler.process is not None:
                watched["py-spy"] = Watched(profiler.process.pid)
            return watched

        sampler = ProcessSampler(processes)
        sampler.start()
        idle = await hold_idle(settings.idle_seconds, lag, progress)
        if settings.profile:
            pid = stack.stack.services[settings.profile].pid
            if pid is None:
                raise RuntimeError(f"{settings.profile} is not running: nothing to profile")
            speedscope = path.with_name(f"{path.stem}-{settings.profile}.speedscope.json")
            profiler = Profiler(settings.profile, pid, speedscope)
            await profiler.start()
        runs = await _steps(
            steps_of(list(settings.rates), settings.seconds),
            settings.vias,
            stack,
            plan,
            watcher,
            settings,
            progress,
        )
        drain = await _drain(settings, stack, plan, watcher, lag, progress)
        profile = await profiler.stop() if profiler else None
    finally:
        if sampler is not None:
            await sampler.stop()
        await lag.stop()
        await watcher.stop()
        await approver.stop()
    origin = runs[0].summary["window"]["start"]
    steps = []
    for run in runs:
        start, end = run.summary["window"]["start"], run.summary["window"]["end"]
        steps.append(
            run.summary
            | {
                "cpu_percent": summarise(within(sampler.cpu, start, end)),
                "rss_mib": summarise(within(sampler.rss, start, end), scale=2**20),
                "consumer_lag_messages": summarise(within(lag.messages, start, run.drained_at)),
                "governance_lag_seconds": summarise(
                    within(lag.governance_seconds, start, run.drained_at), digits=3
                ),
            }
        )
    drain_summary = None
    if drain is not None:
        drain_summary = summarise_drain(
            drain,
            watcher.seen,
            cpu=sampler.cpu,
            rss=sampler.rss,
            consumer_lag=lag.messages,
            governance_lag=lag.governance_seconds,
        )
    idle_summary = None
    if idle is not None:
        start, end = idle
        idle_summary = {
            "seconds": round(end - start, 1),
            "cpu_percent": summarise(within(sampler.cpu, start, end)),
            "rss_mib": summarise(within(sampler.rss, start, end), scale=2**20),
        }
    return {
        "baselines": baselines,
        "idle": idle_summary,
        "steps": steps,
        "drain": drain_summary,
        "series": {
            "origin": origin,
            "consumer_lag_messages": series(lag.messages, origin),
            "governance_lag_seconds": series(lag.governance_seconds, origin),
            "cpu_percent": series(sampler.cpu, origin),
            "rss_bytes": series(sampler.rss, origin),
        },
        "profile": profile,
        "approvals_answered": dict(approver.answers),
    }


async def _steps(
    steps: list[RateStep],
    vias: tuple[str, ...],
    stack: BenchStack,
    plan: Iterator[PlannedSubmission],
    watcher: TopicWatcher,
    settings: BenchSettings,
    progress: Progress,
) -> list[StepRun]:
    runs = []
    for via in vias:
        submitter = _submitter(via, stack)
        await submitter.start()
        try:
            for step in steps:
                progress.phase(f"{via} at {step.rate:g}/s for {step.seconds:g}s", step.count)
                runs.append(
                    await drive_step(
                        step,
                        submitter,
                        plan,
                        watcher,
                        drain_seconds=settings.drain_seconds,
                        progress=progress,
                    )
                )
        finally:
            await submitter.stop()
    return runs


async def _drain(
    settings: BenchSettings,
    stack: BenchStack,
    plan: Iterator[PlannedSubmission],
    watcher: TopicWatcher,
    lag: LagSampler,
    progress: Progress,
) -> Drain | None:
    if not settings.drain:
        return None
    submitter = RawSubmitter(stack.kafka)
    await submitter.start()
    try:
        return await drive_drain(
            settings.drain,
            submitter,
            plan,
            watcher,
            lag,
            stall_seconds=settings.drain_stall_seconds,
            progress=progress,
        )
    finally:
        await submitter.stop()


async def _baselines(
    settings: BenchSettings,
    stack: BenchStack,
    plan: Iterator[PlannedSubmission],
    progress: Progress,
) -> dict[str, Any]:
    progress.phase("baseline: raw aiokafka produce → consume")
    records = request_submitted_records([next(plan) for _ in range(2000)])
    kafka = await kafka_baseline(
        stack.kafka.bootstrap, records, settings.baseline_seconds, paced_rate=max(settings.rates)
    )
    progress.phase("baseline: raw PostgreSQL appends")
    rows, events_per_request = await workflow_event_rows(stack.workflow_database_url())
    postgres = await postgres_baseline(
        stack.admin_database_url,
        rows,
        events_per_request,
        seconds=settings.baseline_seconds,
        writers=settings.pg_writers,
        batch=settings.pg_batch,
    )
    return {"kafka": kafka, "postgres": postgres}
