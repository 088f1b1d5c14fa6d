"""Histograms, stage summaries, samples, ratios and the results document: pure, no servers."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from flowcase.bench.drain import Drain, is_platform, summarise_drain
from flowcase.bench.histograms import LatencyHistogram
from flowcase.bench.mix import Kind, Mix, PlannedSubmission, plan_submissions
from flowcase.bench.report import ratios, results_document, saturation
from flowcase.bench.samples import Sample, cpu_percent, summarise, within
from flowcase.bench.schedule import RateStep
from flowcase.bench.speedscope import hot_frames
from flowcase.bench.stages import STAGES, Observations, SubmissionTrace, summarise_step


def test_percentiles_of_a_known_distribution() -> None:
    summary = LatencyHistogram.of_seconds([i / 1000 for i in range(1, 1001)]).summary()
    assert summary["count"] == 1000
    assert summary["p50"] == pytest.approx(500, rel=0.002)
    assert summary["p95"] == pytest.approx(950, rel=0.002)
    assert summary["p99"] == pytest.approx(990, rel=0.002)
    assert summary["p999"] == pytest.approx(999, rel=0.002)
    assert summary["max"] == pytest.approx(1000, rel=0.002)
    assert summary["mean"] == pytest.approx(500.5, rel=0.002)


def test_an_empty_histogram_reports_nothing_rather_than_zero() -> None:
    assert LatencyHistogram().summary() == {
        "count": 0,
        "p50": None,
        "p95": None,
        "p99": None,
        "p999": None,
        "max": None,
        "mean": None,
    }


def test_a_negative_latency_from_clock_skew_counts_as_the_smallest() -> None:
    summary = LatencyHistogram.of_seconds([-0.002, 0.010]).summary()
    assert summary["count"] == 2
    assert summary["p50"] == 0.0


def _traces(kinds: list[Kind], start: float, rate: float) -> list[SubmissionTrace]:
    planned = plan_submissions(Mix(), seed=1, prefix="t")
    traces = []
    for i, kind in enumerate(kinds):
        base = next(planned)
        traces.append(
            SubmissionTrace(
                PlannedSubmission(kind, base.submission_id, base.body), start + i / rate
            )
        )
    return traces


def test_a_step_summary_measures_each_stage_from_the_due_time_and_counts_add_up() -> None:
    start, rate = 1000.0, 10.0
    kinds = [Kind.ROUTINE] * 6 + [Kind.APPROVAL] * 2 + [Kind.ESCALATION] * 2
    traces = _traces(kinds, start, rate)
    seen = Observations()
    for i, trace in enumerate(traces):
        trace.sent_at = trace.due_at + 0.001
        request_id = f"r{i}"
        seen.accepted[trace.planned.submission_id] = (request_id, trace.due_at + 0.050)
        if trace.planned.kind is Kind.ESCALATION:
            seen.escalated[request_id] = trace.due_at + 0.100
            seen.case_opened[request_id] = trace.due_at + 0.130
        elif trace.planned.kind is Kind.APPROVAL:
            seen.approval_requested[request_id] = trace.due_at + 0.100
            seen.completed[request_id] = (trace.due_at + 0.300, "completed")
        elif i < 5:
            seen.completed[request_id] = (trace.due_at + 0.200, "completed")
    seen.completed["r5"] = (start + 5.0, "completed")  # long after the 1 s window
    step = RateStep(rate, 1.0)

    summary = summarise_step(step, "raw", traces, seen, (start, start + 1.0))

    counts = summary["counts"]
    assert counts["scheduled"] == 10 == counts["accepted"] + counts["refused"]
    assert counts["accepted"] == (
        counts["outcome_in_window"] + counts["outcome_after_window"] + counts["outstanding"]
    )
    assert counts["outcome_after_window"] >= 1
    assert counts["by_kind"] == {"routine": 6, "approval": 2, "escalation": 2}
    stages = summary["stages_ms"]
    assert set(stages) == set(STAGES)
    assert stages["submit_to_accepted"]["p50"] == pytest.approx(50, rel=0.01)
    assert stages["submit_to_completed_routine"]["count"] == 6
    assert stages["submit_to_completed_routine"]["max"] == pytest.approx(4500, rel=0.01)
    assert stages["approval_requested_to_completed"]["p50"] == pytest.approx(200, rel=0.01)
    assert stages["escalation_to_case_opened"]["p50"] == pytest.approx(30, rel=0.01)
    assert summary["drain_seconds"] == pytest.approx(4.0)
    assert summary["kept_up"] is False  # the last one took 4 s to drain
    assert summary["throughput"]["offered_per_second"] == 10


def test_refused_and_missing_outcomes_are_counted_not_hidden() -> None:
    traces = _traces([Kind.ROUTINE] * 3, 0.0, 10.0)
    traces[0].refused = "503"
    traces[1].accepted_at, traces[1].request_id = 0.2, "r1"
    traces[2].accepted_at, traces[2].request_id = 0.3, "r2"
    seen = Observations(completed={"r2": (0.5, "rejected")})
    summary = summarise_step(RateStep(10, 1), "http", traces, seen, (0.0, 1.0))
    assert summary["counts"] | {"by_kind": None, "refusals": None} == {
        "scheduled": 3,
        "accepted": 2,
        "refused": 1,
        "unanswered": 0,
        "outcome_in_window": 0,
        "outcome_after_window": 0,
        "outstanding": 1,
        "wrong_outcome": 1,
        "by_kind": None,
        "refusals": None,
    }
    assert summary["counts"]["refusals"] == {"503": 1}
    assert summary["drain_seconds"] is None
    assert summary["kept_up"] is False
    assert not seen.settled(traces, "http")


def test_cpu_percent_counts_new_processes_whole_and_ignores_exited_ones() -> None:
    before = {1: 10.0, 2: 5.0}
    after = {1: 10.5, 3: 0.25}  # 2 exited, 3 started in between
    assert cpu_percent(before, after, 1.0) == 75.0
    assert cpu_percent(before, after, 0.0) == 0.0


def test_samples_summarise_per_name_within_a_window() -> None:
    samples = [Sample(t, {"a": 2.0 * t, "b": 1.0}) for t in range(10)]
    chosen = within(samples, 2, 4.5)
    # 5 covers 4 to 5, the window's last half second
    assert [s.at for s in chosen] == [2, 3, 4, 5]
    assert summarise(chosen) == {
        "a": {"mean": 7.0, "max": 10.0, "last": 10.0},
        "b": {"mean": 1.0, "max": 1.0, "last": 1.0},
    }


def test_a_window_shorter_than_the_sampling_still_has_the_sample_covering_it() -> None:
    # A loaded machine: a three-second step, and the sampler's next reading came only after it.
    samples = [Sample(10.0, {"kafka": 50.0}), Sample(14.2, {"kafka": 80.0})]
    assert summarise(within(samples, 10.5, 13.5)) == {
        "kafka": {"mean": 80.0, "max": 80.0, "last": 80.0}
    }


BASELINES: dict[str, Any] = {
    "kafka": {"throughput": {"messages_per_second": 20_000.0}},
    "postgres": {
        "events_per_request": 14.0,
        "one_row_per_transaction": {"rows_per_second": 3_000.0},
        "batched": {"rows_per_second": 50_000.0},
    },
}


def test_ratios_divide_completions_by_each_baseline() -> None:
    assert ratios({"completed_per_second": 100.0}, BASELINES) == {
        "completed_vs_kafka_produce_consume": 0.005,
        "completed_vs_postgres_single_row_appends": 0.03333,
        "completed_vs_postgres_batched_appends": 0.002,
        "workflow_events_vs_postgres_single_row_appends": 0.4667,
        "workflow_events_vs_postgres_batched_appends": 0.028,
    }
    assert set(ratios({"completed_per_second": 0.0}, BASELINES).values()) == {None}


def _step(rate: float, completed: float, kept_up: bool) -> dict[str, Any]:
    return {
        "rate": rate,
        "via": "http",
        "kept_up": kept_up,
        "throughput": {"completed_per_second": completed},
    }


def test_saturation_is_the_highest_rate_kept_up_and_the_most_completed() -> None:
    steps = [_step(50, 49, True), _step(100, 97, True), _step(200, 120, False)]
    assert saturation(steps) == {
        "highest_rate_kept_up": 100,
        "max_completed_per_second": 120,
        "at_rate": 200,
        "via": "http",
    }


def test_the_results_document_has_every_part_and_is_json() -> None:
    document = results_document(
        started_at="2026-11-24T05:00:00+00:00",
        finished_at="2026-11-24T05:05:00+00:00",
        machine={"cpus": 2},
        settings={"rates": [50]},
        baselines=BASELINES,
        idle={"seconds": 60.0, "cpu_percent": {}, "rss_mib": {}},
        steps=[_step(50, 49, True)],
        drain={"throughput": {"completed_per_second": 100.0}},
        series={"cpu_percent": []},
        profile=None,
        approvals_answered={"200": 3},
    )
    assert set(document) == {
        "benchmark",
        "schema_version",
        "started_at",
        "finished_at",
        "machine",
        "settings",
        "baselines",
        "idle",
        "steps",
        "saturation",
        "drain",
        "approvals_answered",
        "series",
        "profile",
    }
    assert document["steps"][0]["ratios"]["completed_vs_kafka_produce_consume"] == 0.00245
    assert document["drain"]["ratios"]["completed_vs_kafka_produce_consume"] == 0.005
    assert json.loads(json.dumps(document)) == document


def test_hot_frames_are_shares_of_the_sampled_weight() -> None:
    speedscope = {
        "shared": {
            "frames": [
                {"name": "main", "file": "/x/lib/python3.11/asyncio/base_events.py", "line": 1},
                {"name": "save", "file": "/x/site-packages/psycopg/connection.py", "line": 9},
                {
                    "name": "decide",
                    "file": "/repo/services/workflow/src/flowcase/workflow/engine.py",
                },
            ]
        },
        "profiles": [
            {"samples": [[0, 1], [0, 1], [0, 2], []], "weights": [1, 1, 2, 1]},
        ],
    }
    hot = hot_frames(speedscope)
    assert hot["samples"] == 3
    assert hot["self"] == [
        {"frame": "save (psycopg/connection.py:9)", "share": 0.5},
        {"frame": "decide (flowcase/workflow/engine.py)", "share": 0.5},
    ]
    assert hot["total"][0] == {"frame": "main (asyncio/base_events.py:1)", "share": 1.0}


def test_plans_do_not_repeat_ids_across_a_run() -> None:
    planned = list(itertools.islice(plan_submissions(Mix(), seed=2, prefix="run"), 500))
    assert len({p.submission_id for p in planned}) == 500


# A drain: ten requests published from t=1000 (acknowledged by 1000.5), reaching their outcomes
# every half second from 1002 to 1006.5, while the processes below used a steady CPU.
DRAIN_CPU = {
    "workflow": 50.0,
    "workflow-2": 30.0,
    "kafka": 20.0,
    "postgres": 10.0,
    "intake": 10.0,
    "governance": 5.0,
    "case": 5.0,  # the platform: 130 % of a core
    "driver": 40.0,
    "webhook-sink": 10.0,
    "py-spy": 20.0,
}


def _drain(kinds: list[Kind]) -> tuple[Drain, Observations]:
    traces = _traces(kinds, 1000.0, rate=1e9)  # all due at once
    seen = Observations()
    for i, trace in enumerate(traces):
        trace.sent_at = 1000.0 + i * 0.01
        request_id = f"r{i}"
        seen.accepted[trace.planned.submission_id] = (request_id, 1000.6)
        at = 1002.0 + i * 0.5
        if trace.planned.kind is Kind.ESCALATION:
            seen.escalated[request_id] = at - 0.1
            seen.case_opened[request_id] = at
        else:
            seen.completed[request_id] = (at, "completed")
    return Drain(traces, 1000.0, 1000.5, {"workflow": 0.0, "governance": 0.0}), seen


def _summarise(drain: Drain, seen: Observations) -> dict[str, Any]:
    cpu = [Sample(999.0, dict.fromkeys(DRAIN_CPU, 400.0))]  # before the drain: not counted
    cpu += [Sample(t, DRAIN_CPU) for t in range(1001, 1010)]
    governance = [Sample(1003.0, {"governance": 2.0}), Sample(1006.0, {"governance": 1.5})]
    governance += [Sample(1007.0, {"governance": 0.25}), Sample(1008.0, {"governance": 9.0})]
    return summarise_drain(
        drain,
        seen,
        cpu=cpu,
        rss=[Sample(1001.0, {"workflow": 2.0**27})],
        consumer_lag=[Sample(1004.0, {"governance": 40.0}), Sample(1007.0, {"governance": 3.0})],
        governance_lag=governance,
    )


def test_a_drain_is_timed_from_the_first_publish_to_the_last_outcome() -> None:
    drain, seen = _drain([Kind.ROUTINE] * 6 + [Kind.APPROVAL] * 2 + [Kind.ESCALATION] * 2)

    summary = _summarise(drain, seen)

    assert summary["publish"] == {"seconds": 0.5, "per_second": 20.0}
    assert summary["window"] == {"start": 1000.0, "end": 1006.5}
    assert summary["drained"] is True
    assert summary["first_outcome_seconds"] == 2.0
    assert summary["drain_seconds"] == 6.5
    assert summary["throughput"] == {
        "completed_per_second": 1.54,  # 10 in 6.5 s
        "completed_per_second_after_first": 2.0,  # 9 more in 4.5 s
    }
    assert summary["completed_each_second"] == [0, 0, 2, 2, 2, 2, 2]
    counts = summary["counts"]
    assert counts["scheduled"] == 10 == counts["accepted"] == counts["reached_outcome"]
    assert counts["by_kind"] == {"routine": 6, "approval": 2, "escalation": 2}
    # 1.3 cores of platform for 6.5 s is 8.45 CPU seconds for 10 requests: 845 ms each; the
    # driver, the webhook sink and the profiler are not the platform's.
    cpu = summary["platform_cpu_ms_per_completed"]
    assert cpu["total"] == pytest.approx(845.0)
    assert cpu["by_process"]["workflow"] == pytest.approx(325.0)
    assert cpu["by_process"]["workflow-2"] == pytest.approx(195.0)
    assert set(cpu["by_process"]) == {
        "workflow",
        "workflow-2",
        "kafka",
        "postgres",
        "intake",
        "governance",
        "case",
    }
    assert summary["cpu_percent"]["driver"]["mean"] == 40.0
    # The sample after the last outcome tells how far behind governance was as it ended.
    assert summary["governance_lag_seconds"]["governance"] == {
        "mean": 1.25,
        "max": 2.0,
        "last": 0.25,
    }
    assert summary["consumer_lag_messages"]["governance"]["last"] == 3.0
    assert summary["consumer_lag_at_start"] == {"workflow": 0.0, "governance": 0.0}
    assert json.loads(json.dumps(summary)) == summary


def test_a_drain_that_gave_up_counts_what_never_came_and_rates_what_did() -> None:
    drain, seen = _drain([Kind.ROUTINE] * 5)
    drain.traces[1].refused = "KafkaTimeoutError"
    del seen.accepted[drain.traces[2].planned.submission_id]  # never on the requests topic
    seen.completed["r3"] = (1003.5, "rejected")
    del seen.completed["r4"]  # still outstanding when the drain gave up

    summary = _summarise(drain, seen)

    assert summary["counts"] | {"by_kind": None} == {
        "scheduled": 5,
        "accepted": 3,
        "refused": 1,
        "unanswered": 1,
        "reached_outcome": 1,
        "outstanding": 1,
        "wrong_outcome": 1,
        "by_kind": None,
        "refusals": {"KafkaTimeoutError": 1},
    }
    assert summary["drained"] is False
    assert summary["drain_seconds"] is None
    # r1's outcome was seen, but it was refused at publishing: only r0 counts, at 1002.
    assert summary["window"]["end"] == 1002.0
    assert summary["throughput"] == {
        "completed_per_second": 0.5,
        "completed_per_second_after_first": None,
    }


def test_a_drain_with_no_outcome_has_no_cost_per_request() -> None:
    drain, _ = _drain([Kind.ROUTINE] * 3)

    summary = _summarise(drain, Observations())

    assert summary["counts"]["unanswered"] == 3
    assert summary["first_outcome_seconds"] is None
    assert summary["throughput"]["completed_per_second"] == 0.0
    assert summary["platform_cpu_ms_per_completed"] == {"total": None, "by_process": {}}
    assert summary["completed_each_second"] == []


@pytest.mark.parametrize(
    ("process", "platform"),
    [
        ("kafka", True),
        ("postgres", True),
        ("workflow", True),
        ("workflow-2", True),
        ("intake-3", True),
        ("driver", False),
        ("webhook-sink", False),
        ("py-spy", False),
        ("workflow-x", False),
    ],
)
def test_the_platform_is_kafka_postgresql_and_the_services_with_their_replicas(
    process: str, platform: bool
) -> None:
    assert is_platform(process) is platform
