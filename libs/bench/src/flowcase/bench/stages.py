"""What one rate step measured, from the driver's traces and what the topics said (pure).

The driver records when each submission was due and what intake answered; the topic watcher
records, by id, when each event of interest reached its topic (the record's timestamp, stamped
by the producer that wrote it). A stage's latency is the difference of two such times; every
count here adds up: scheduled = accepted + refused + unanswered, accepted = reached its outcome
in the window + after it + outstanding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowcase.bench.histograms import LatencyHistogram
from flowcase.bench.mix import Kind, PlannedSubmission
from flowcase.bench.schedule import RateStep

STAGES = (
    "submit_to_accepted",
    "submit_to_completed_routine",
    "approval_requested_to_completed",
    "escalation_to_case_opened",
)
COMPLETED = "completed"
# A platform that keeps up has drained its backlog this soon after the window ends: longer
# means requests were queueing (a routine request's own latency is well under it).
KEPT_UP_DRAIN_SECONDS = 2.0


@dataclass
class SubmissionTrace:
    """One submission as the driver saw it; times are wall-clock seconds (time.time())."""

    planned: PlannedSubmission
    due_at: float
    sent_at: float | None = None
    accepted_at: float | None = None  # HTTP: the 202 arrived; raw: None (the topic tells)
    request_id: str | None = None  # from the 202, or later from the requests topic
    refused: str | None = None  # the status or error when intake did not accept it


@dataclass
class Observations:
    """First sightings on the platform's topics, keyed by submission or request id."""

    accepted: dict[str, tuple[str, float]] = field(default_factory=dict)  # sid -> (rid, at)
    completed: dict[str, tuple[float, str]] = field(default_factory=dict)  # rid -> (at, outcome)
    approval_requested: dict[str, float] = field(default_factory=dict)
    escalated: dict[str, float] = field(default_factory=dict)
    case_opened: dict[str, float] = field(default_factory=dict)

    def request_id(self, trace: SubmissionTrace) -> str | None:
        if trace.request_id is not None:
            return trace.request_id
        seen = self.accepted.get(trace.planned.submission_id)
        return seen[0] if seen else None

    def accepted_at(self, trace: SubmissionTrace, via: str) -> float | None:
        if via == "http":
            return trace.accepted_at
        seen = self.accepted.get(trace.planned.submission_id)
        return seen[1] if seen else None

    def outcome_at(self, trace: SubmissionTrace) -> float | None:
        """When the submission reached the outcome its kind must reach (None: not yet)."""
        request_id = self.request_id(trace)
        if request_id is None:
            return None
        if trace.planned.kind is Kind.ESCALATION:
            return self.case_opened.get(request_id)
        completed = self.completed.get(request_id)
        return completed[0] if completed and completed[1] == COMPLETED else None

    def wrong_outcome(self, trace: SubmissionTrace) -> str | None:
        """An outcome other than the expected one (e.g. rejected), if any."""
        request_id = self.request_id(trace)
        completed = self.completed.get(request_id) if request_id else None
        if completed is None or completed[1] == COMPLETED:
            return None
        if trace.planned.kind is Kind.ESCALATION and completed[1] == "resolved_by_case":
            return None
        return completed[1]

    def is_settled(self, trace: SubmissionTrace, via: str) -> bool:
        """The submission was refused, or accepted and at its outcome (or a wrong one)."""
        return trace.refused is not None or (
            self.accepted_at(trace, via) is not None
            and (self.outcome_at(trace) is not None or self.wrong_outcome(trace) is not None)
        )

    def settled(self, traces: list[SubmissionTrace], via: str) -> bool:
        return all(self.is_settled(t, via) for t in traces)


def summarise_step(
    step: RateStep,
    via: str,
    traces: list[SubmissionTrace],
    seen: Observations,
    window: tuple[float, float],
) -> dict[str, Any]:
    start, end = window
    histograms = {stage: LatencyHistogram() for stage in STAGES}
    lateness = LatencyHistogram()
    counts = {
        "scheduled": len(traces),
        "accepted": 0,
        "refused": 0,
        "unanswered": 0,
        "outcome_in_window": 0,
        "outcome_after_window": 0,
        "outstanding": 0,
        "wrong_outcome": 0,
    }
    by_kind = {kind.value: 0 for kind in Kind}
    accepted_in_window = routine_in_window = 0
    last_outcome = end
    refusals: dict[str, int] = {}
    for trace in traces:
        by_kind[trace.planned.kind.value] += 1
        if trace.sent_at is not None:
            lateness.record_seconds(trace.sent_at - trace.due_at)
        accepted_at = seen.accepted_at(trace, via)
        if trace.refused is not None:
            counts["refused"] += 1
            refusals[trace.refused] = refusals.get(trace.refused, 0) + 1
            continue
        if accepted_at is None:
            counts["unanswered"] += 1
            continue
        counts["accepted"] += 1
        accepted_in_window += accepted_at <= end
        histograms["submit_to_accepted"].record_seconds(accepted_at - trace.due_at)
        outcome_at = seen.outcome_at(trace)
        if outcome_at is None:
            wrong = seen.wrong_outcome(trace)
            counts["wrong_outcome" if wrong else "outstanding"] += 1
            continue
        last_outcome = max(last_outcome, outcome_at)
        if outcome_at <= end:
            counts["outcome_in_window"] += 1
            routine_in_window += trace.planned.kind is Kind.ROUTINE
        else:
            counts["outcome_after_window"] += 1
        _record_stage(histograms, trace, seen, outcome_at)
    drained = counts["outstanding"] == 0 and counts["unanswered"] == 0
    everything_accepted = counts["refused"] == 0 and counts["wrong_outcome"] == 0
    drain_seconds = round(last_outcome - end, 3) if drained else None
    seconds = end - start
    return {
        "rate": step.rate,
        "seconds": step.seconds,
        "via": via,
        "window": {"start": start, "end": end},
        "counts": counts | {"by_kind": by_kind, "refusals": refusals},
        "throughput": {
            "offered_per_second": round(len(traces) / seconds, 2),
            "accepted_per_second": round(accepted_in_window / seconds, 2),
            "completed_per_second": round(counts["outcome_in_window"] / seconds, 2),
            "routine_completed_per_second": round(routine_in_window / seconds, 2),
        },
        "backlog_at_window_end": counts["accepted"] - counts["outcome_in_window"],
        "drain_seconds": drain_seconds,
        "kept_up": drained
        and everything_accepted
        and drain_seconds is not None
        and drain_seconds <= max(KEPT_UP_DRAIN_SECONDS, 0.1 * step.seconds),
        "stages_ms": {stage: h.summary() for stage, h in histograms.items()},
        "driver_lateness_ms": lateness.summary(),
    }


def _record_stage(
    histograms: dict[str, LatencyHistogram],
    trace: SubmissionTrace,
    seen: Observations,
    outcome_at: float,
) -> None:
    request_id = seen.request_id(trace)
    assert request_id is not None  # an outcome was found by it
    if trace.planned.kind is Kind.ROUTINE:
        histograms["submit_to_completed_routine"].record_seconds(outcome_at - trace.due_at)
    elif trace.planned.kind is Kind.APPROVAL:
        requested = seen.approval_requested.get(request_id)
        if requested is not None:
            histograms["approval_requested_to_completed"].record_seconds(outcome_at - requested)
    else:
        escalated = seen.escalated.get(request_id)
        if escalated is not None:
            histograms["escalation_to_case_opened"].record_seconds(outcome_at - escalated)
