"""What a drain measured: a backlog published up front, timed from the first publish until every
request reached its outcome (pure).

An open-loop step tells how the platform copes with a rate; a drain tells how much it can do
when it never waits for work: completions per second over the whole drain, the platform's CPU
per completed request, how soon the first request came through, and how far behind governance
was when the last one did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowcase.bench.mix import Kind
from flowcase.bench.samples import Sample, summarise, within
from flowcase.bench.stages import Observations, SubmissionTrace
from flowcase.devstack.dedicated import SERVICE_NAMES

VIA = "raw"
# The platform's own processes: what a completed request costs is their CPU, not the driver's,
# the webhook sink's (a stand-in for the systems the connectors call) or the profiler's.
PLATFORM = frozenset({"kafka", "postgres", *SERVICE_NAMES})


def is_platform(process: str) -> bool:
    """Kafka, PostgreSQL, a service, or a service's replica (`workflow-2`)."""
    name, _, number = process.rpartition("-")
    return process in PLATFORM or (name in PLATFORM and number.isdigit())


@dataclass(frozen=True)
class Drain:
    """A drain as the driver ran it; times are wall-clock seconds (time.time())."""

    traces: list[SubmissionTrace]
    started: float  # the first publish
    published: float  # the broker had acknowledged every submission
    lag_at_start: Mapping[str, float]  # messages each consumer group had left when it began


def summarise_drain(
    drain: Drain,
    seen: Observations,
    *,
    cpu: list[Sample],
    rss: list[Sample],
    consumer_lag: list[Sample],
    governance_lag: list[Sample],
) -> dict[str, Any]:
    """The drain's figures. Every count adds up as a step's do: scheduled = accepted + refused +
    unanswered, accepted = reached its outcome + a wrong one + outstanding.

    The drain ends at the last outcome (or, when some never came, the last that did): CPU, lag
    and throughput are read over [first publish, that end]. The samples' last value is the first
    taken after the end, so governance's "last" lag is how far behind it was as the drain ended.
    """
    start = drain.started
    requests = len(drain.traces)
    counts = {
        "scheduled": requests,
        "accepted": 0,
        "refused": 0,
        "unanswered": 0,
        "reached_outcome": 0,
        "outstanding": 0,
        "wrong_outcome": 0,
    }
    by_kind = {kind.value: 0 for kind in Kind}
    refusals: dict[str, int] = {}
    reached = []
    for trace in drain.traces:
        by_kind[trace.planned.kind.value] += 1
        if trace.refused is not None:
            counts["refused"] += 1
            refusals[trace.refused] = refusals.get(trace.refused, 0) + 1
        elif seen.accepted_at(trace, VIA) is None:
            counts["unanswered"] += 1
        elif (outcome_at := seen.outcome_at(trace)) is not None:
            counts["accepted"] += 1
            counts["reached_outcome"] += 1
            reached.append(outcome_at)
        else:
            counts["accepted"] += 1
            counts["wrong_outcome" if seen.wrong_outcome(trace) else "outstanding"] += 1
    reached.sort()
    drained = counts["outstanding"] == 0 and counts["unanswered"] == 0
    end = reached[-1] if reached else drain.published
    seconds = end - start
    completed_per_second = len(reached) / seconds if reached else 0.0
    after_first = None
    if len(reached) > 1 and end > reached[0]:
        after_first = round((len(reached) - 1) / (end - reached[0]), 2)
    cpu_percent = summarise(within(cpu, start, end))
    publish_seconds = drain.published - start
    return {
        "requests": requests,
        "via": VIA,
        "window": {"start": start, "end": end},
        "publish": {
            "seconds": round(publish_seconds, 3),
            "per_second": round(requests / publish_seconds, 1) if publish_seconds > 0 else None,
        },
        "counts": counts | {"by_kind": by_kind, "refusals": refusals},
        "drained": drained,
        "first_outcome_seconds": round(reached[0] - start, 3) if reached else None,
        "drain_seconds": round(seconds, 3) if drained else None,
        "throughput": {
            "completed_per_second": round(completed_per_second, 2),
            # Without the ramp (intake's first batches, the workflow's first fetches): what the
            # platform sustains once work flows through every stage.
            "completed_per_second_after_first": after_first,
        },
        "completed_each_second": completed_each_second(reached, start),
        "cpu_percent": cpu_percent,
        "rss_mib": summarise(within(rss, start, end), scale=2**20),
        "platform_cpu_ms_per_completed": cpu_ms_per_completed(cpu_percent, completed_per_second),
        "consumer_lag_at_start": dict(drain.lag_at_start),
        "consumer_lag_messages": summarise(within(consumer_lag, start, end)),
        "governance_lag_seconds": summarise(within(governance_lag, start, end), digits=3),
    }


def completed_each_second(outcomes: list[float], start: float) -> list[int]:
    """How many outcomes fell in each second since `start` (flat is a platform at its peak)."""
    if not outcomes:
        return []
    counts = [0] * math.floor(max(outcomes) - start + 1)
    for at in outcomes:
        counts[max(math.floor(at - start), 0)] += 1
    return counts


def cpu_ms_per_completed(
    cpu_percent: Mapping[str, Mapping[str, float]], completed_per_second: float
) -> dict[str, Any]:
    """CPU milliseconds each platform process spent per completed request (mean % of a core
    over the drain ÷ completions per second), and their sum."""
    if not completed_per_second:
        return {"total": None, "by_process": {}}
    by_process = {
        name: round(10 * figures["mean"] / completed_per_second, 2)
        for name, figures in sorted(cpu_percent.items())
        if is_platform(name)
    }
    return {"total": round(sum(by_process.values()), 2), "by_process": by_process}
