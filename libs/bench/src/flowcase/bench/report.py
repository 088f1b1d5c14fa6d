"""The platform's figures as ratios to the raw baselines, and the results document (pure)."""

from __future__ import annotations

from typing import Any

RESULTS_SCHEMA_VERSION = 1


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    # Four significant digits: the platform's figure may be a thousandth of a baseline's.
    return float(f"{numerator / denominator:.4g}")


def ratios(throughput: dict[str, Any], baselines: dict[str, Any]) -> dict[str, float | None]:
    """A step's (or a drain's) completions per second against what the same machine does raw.

    The platform stores several events per request (`events_per_request` rows in the workflow's
    event store alone), so next to the request ratios stand the event ratios: the rows the
    workflow appended per second against the rows PostgreSQL appends per second raw.
    """
    completed = throughput["completed_per_second"]
    kafka = baselines["kafka"]["throughput"]["messages_per_second"]
    postgres = baselines["postgres"]
    single = postgres["one_row_per_transaction"]["rows_per_second"]
    batched = postgres["batched"]["rows_per_second"]
    events = completed * postgres["events_per_request"] if completed else None
    return {
        "completed_vs_kafka_produce_consume": _ratio(completed, kafka),
        "completed_vs_postgres_single_row_appends": _ratio(completed, single),
        "completed_vs_postgres_batched_appends": _ratio(completed, batched),
        "workflow_events_vs_postgres_single_row_appends": _ratio(events, single),
        "workflow_events_vs_postgres_batched_appends": _ratio(events, batched),
    }


def saturation(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest rate the platform kept up with, and the most it completed per second."""
    kept = [s for s in steps if s["kept_up"]]
    best = max(steps, key=lambda s: s["throughput"]["completed_per_second"], default=None)
    return {
        "highest_rate_kept_up": max((s["rate"] for s in kept), default=None),
        "max_completed_per_second": best["throughput"]["completed_per_second"] if best else None,
        "at_rate": best["rate"] if best else None,
        "via": best["via"] if best else None,
    }


def results_document(
    *,
    started_at: str,
    finished_at: str,
    machine: dict[str, Any],
    settings: dict[str, Any],
    baselines: dict[str, Any],
    idle: dict[str, Any] | None,
    steps: list[dict[str, Any]],
    drain: dict[str, Any] | None,
    series: dict[str, Any],
    profile: dict[str, Any] | None,
    approvals_answered: dict[str, int],
) -> dict[str, Any]:
    for step in steps:
        step["ratios"] = ratios(step["throughput"], baselines)
    if drain is not None:
        drain["ratios"] = ratios(drain["throughput"], baselines)
    return {
        "benchmark": "platform",
        "schema_version": RESULTS_SCHEMA_VERSION,
        "started_at": started_at,
        "finished_at": finished_at,
        "machine": machine,
        "settings": settings,
        "baselines": baselines,
        "idle": idle,
        "steps": steps,
        "saturation": saturation(steps),
        "drain": drain,
        "approvals_answered": approvals_answered,
        "series": series,
        "profile": profile,
    }
