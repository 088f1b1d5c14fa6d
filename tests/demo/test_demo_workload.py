"""The demo's generated workload and history, checked without servers: counts, payloads valid
against the shipped definitions, determinism, backfills inside every deadline, and a history
whose drift governance's own pure functions flag."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from flowcase.devstack.demo.drift_history import COLUMNS, DRIFT_TYPE, drift_history, write_csv
from flowcase.devstack.demo.workload import (
    BACKFILL,
    COUNTS,
    DENIED_SHARE,
    Verdict,
    plan_workload,
    scaled_counts,
)
from flowcase.events import Envelope
from flowcase.events.catalogue.intake import Submission
from flowcase.governance.drift import Trend, resolution_drift
from flowcase.governance.facts import AuditKind
from flowcase.governance.log_readers import Rejected, read_csv
from flowcase.governance.metrics import measure, series
from flowcase.governance.projector import fold
from flowcase.governance.windows import Granularity, Period, window_of
from flowcase.workflow.definition import ApprovalStep, SlaStep
from flowcase.workflow.definition_files import load_folder, shipped_folder

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 24, tzinfo=UTC)
DEFINITIONS = {d.request_type: d for d in load_folder(shipped_folder())}


def test_every_shipped_type_gets_its_count_a_few_hundred_in_all() -> None:
    plan = plan_workload(NOW)
    assert Counter(p.request_type for p in plan) == COUNTS
    assert set(COUNTS) == set(DEFINITIONS)
    assert 250 <= len(plan) <= 400
    assert len({p.submission_id for p in plan}) == len(plan)


def test_scaled_counts_keep_the_minimums() -> None:
    counts = scaled_counts(0.1, minimum={"invoice_approval": 30, "hr_matter": 10})
    assert counts["invoice_approval"] == 30
    assert counts["hr_matter"] == 10
    assert counts["password_reset"] == 6
    assert counts["employee_onboarding"] == 3
    assert min(counts.values()) >= 1


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_every_submission_is_valid_against_the_shipped_schema(seed: int) -> None:
    for planned in plan_workload(NOW, seed=seed):
        body = planned.submission()
        Submission.model_validate(body)
        schema = DEFINITIONS[planned.request_type].request_schema
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        errors = [e.message for e in validator.iter_errors(planned.payload)]
        assert errors == [], (planned.submission_id, errors)


def test_the_same_seed_plans_the_same_workload_another_seed_another() -> None:
    assert plan_workload(NOW, seed=3) == plan_workload(NOW, seed=3)
    assert plan_workload(NOW, seed=3) != plan_workload(NOW, seed=4)


def test_invoices_are_denied_at_a_share_over_the_exception_line() -> None:
    for count in (30, 60):
        plan = plan_workload(NOW, counts={"invoice_approval": count})
        denied = sum(p.verdict is Verdict.DENY for p in plan)
        assert denied == round(count * DENIED_SHARE)
        assert denied / count > 0.2
    # Only invoices are denied.
    assert all(
        p.verdict is Verdict.APPROVE
        for p in plan_workload(NOW)
        if p.request_type != "invoice_approval"
    )


def test_backfills_stay_inside_every_deadline_of_their_definition() -> None:
    """The workflow runs a request from its submission time: an older one would breach an SLA
    or time out an approval at once, which the demo must not fake."""
    for request_type, window in BACKFILL.items():
        deadlines = [
            step.within if isinstance(step, SlaStep) else step.timeout
            for step in DEFINITIONS[request_type].steps
            if isinstance(step, SlaStep | ApprovalStep)
        ]
        assert all(window <= deadline * 0.75 for deadline in deadlines), request_type
    for planned in plan_workload(NOW):
        if planned.submitted_at is None:
            assert planned.request_type not in BACKFILL
        else:
            assert NOW - BACKFILL[planned.request_type] <= planned.submitted_at <= NOW


def _history_facts(seed: int = 7):
    rows = drift_history(MIDNIGHT, seed=seed)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    parsed = list(read_csv(io.StringIO(buffer.getvalue())))
    assert [p for p in parsed if isinstance(p, Rejected)] == []
    return rows, fold(p for p in parsed if isinstance(p, Envelope))


@pytest.mark.parametrize(("granularity", "count"), [(Granularity.DAY, 7), (Granularity.WEEK, 12)])
@pytest.mark.parametrize("seed", [7, 11])
def test_the_history_drifts_by_governance_s_own_test(
    granularity: Granularity, count: int, seed: int
) -> None:
    """The dashboard's default view (7 days by day) and its 12 weeks by week both flag it."""
    _, facts = _history_facts(seed)
    last = window_of(NOW, granularity).start
    per_window = series(
        facts, DRIFT_TYPE, granularity, last - (count - 1) * granularity.length, last
    )
    drift = resolution_drift(per_window)
    assert drift.flagged, drift
    assert drift.relative_slope is not None
    assert drift.relative_slope >= 0.11
    assert drift.volume_trend in (Trend.FLAT, Trend.FALLING)


def test_the_history_s_volume_is_flat_and_its_cases_escalate() -> None:
    rows, facts = _history_facts()
    assert all(datetime.fromisoformat(r["timestamp"]) < MIDNIGHT for r in rows)
    volumes = [
        measure(
            facts,
            DRIFT_TYPE,
            Period(MIDNIGHT - timedelta(days=d + 1), MIDNIGHT - timedelta(days=d)),
        ).volume
        for d in range(49)
    ]
    assert min(volumes) >= 9
    assert max(volumes) <= 11
    whole = measure(facts, DRIFT_TYPE, Period(MIDNIGHT - timedelta(days=49), MIDNIGHT))
    assert whole.exception_rate is not None
    assert 0.6 < whole.exception_rate < 0.9
    assert (
        whole.resolution.still_open > 0
    )  # the latest cases were still open when the log was taken


def test_the_history_is_deterministic_and_written_as_the_documented_csv(tmp_path) -> None:
    assert drift_history(MIDNIGHT, seed=5) == drift_history(MIDNIGHT, seed=5)
    path = tmp_path / "history.csv"
    write_csv(drift_history(MIDNIGHT, days=7), path)
    header = path.read_text().splitlines()[0]
    assert header == ",".join(COLUMNS)


def test_the_history_shows_every_other_signal_in_the_dashboard_s_default_week() -> None:
    _, facts = _history_facts()
    week = measure(facts, DRIFT_TYPE, Period(MIDNIGHT - timedelta(days=7), MIDNIGHT))

    (intake,) = week.steps
    # Past SLA over the 20% line: the bottleneck alert; and the SLA breach rate with it.
    assert intake.past_sla_share is not None
    assert 0.25 < intake.past_sla_share < 0.5
    assert week.sla_breach_rate is not None
    assert week.sla_breach_rate > 0.25
    assert week.overrides > 0
    assert week.audit.gaps_of(AuditKind.DECISION)
    whole = measure(facts, DRIFT_TYPE, Period(MIDNIGHT - timedelta(days=49), MIDNIGHT))
    assert whole.audit.gaps_of(AuditKind.OVERRIDE)
    assert whole.audit.share is not None
    assert 0.05 < whole.audit.share < 0.15


def test_the_history_keeps_its_promises_at_first_and_breaks_them_in_both_layers() -> None:
    _, facts = _history_facts()
    first_week = measure(
        facts, DRIFT_TYPE, Period(MIDNIGHT - timedelta(days=49), MIDNIGHT - timedelta(days=42))
    ).promises
    assert first_week.attainment is not None
    assert first_week.attainment > 0.9
    # Read the evening the log was taken: cases slowed past their promise, a few questions
    # waited in the workflow past theirs.
    last_week = measure(
        facts, DRIFT_TYPE, Period(MIDNIGHT - timedelta(days=7), MIDNIGHT), now=MIDNIGHT
    ).promises
    assert last_week.attainment is not None
    assert last_week.attainment < first_week.attainment - 0.1
    whole = measure(
        facts, DRIFT_TYPE, Period(MIDNIGHT - timedelta(days=49), MIDNIGHT), now=MIDNIGHT
    ).promises
    assert whole.attainment is not None
    assert whole.attainment < 1
    assert whole.broken_in_case > 0
    assert whole.broken_in_workflow > 0
