"""The read side's pure parts: spans of windows, alerts and the dashboard's HTML (no servers)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from flowcase.events import Envelope
from flowcase.governance import (
    Granularity,
    Period,
    advise,
    fold,
    measure,
    process_types,
    resolution_drift,
    series,
)
from flowcase.governance.alerts import AlertKind, alerts
from flowcase.governance.dashboard import render
from flowcase.governance.reports import MAX_WINDOWS, ProcessReport, Span, SpanError

NOW = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)


def test_the_default_span_is_the_last_seven_days_including_today() -> None:
    span = Span.of(Granularity.DAY, now=NOW)
    assert len(span.windows) == 7
    assert span.period == Period(
        datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    )


def test_until_is_exclusive_and_since_names_its_window() -> None:
    span = Span.of(
        Granularity.WEEK,
        now=NOW,
        since=datetime(2026, 11, 4, 12, tzinfo=UTC),  # a Wednesday
        until=datetime(2026, 11, 23, tzinfo=UTC),  # a Monday: its week is not included
    )
    assert [w.start.day for w in span.windows] == [2, 9, 16]


@pytest.mark.parametrize(
    ("since", "until", "granularity"),
    [
        (NOW, NOW, Granularity.DAY),
        (NOW + timedelta(days=1), NOW, Granularity.DAY),
        (NOW - timedelta(days=MAX_WINDOWS // 24 + 1), NOW, Granularity.HOUR),
    ],
)
def test_a_span_that_cannot_be_measured_is_refused(
    since: datetime, until: datetime, granularity: Granularity
) -> None:
    with pytest.raises(SpanError) as refused:
        Span.of(granularity, now=NOW, since=since, until=until)
    assert refused.value.field == "since"


def _reports(events: list[Envelope], span: Span) -> list[ProcessReport]:
    facts = fold(events)
    reports = []
    for process_type in process_types(facts):
        windows = series(
            facts, process_type, span.granularity, span.windows[0].start, span.windows[-1].start
        )
        totals = measure(facts, process_type, span.period)
        drift = resolution_drift(windows)
        reports.append(
            ProcessReport(process_type, span, totals, tuple(windows), drift, advise(totals, drift))
        )
    return reports


@pytest.fixture
def week(make_workload: Callable[..., list[Envelope]]) -> list[ProcessReport]:
    return _reports(
        make_workload(), Span.of(Granularity.DAY, now=datetime(2026, 11, 30, tzinfo=UTC))
    )


def test_alerts_name_drift_exceptions_bottlenecks_and_audit_gaps(
    week: list[ProcessReport],
) -> None:
    found = {r.process_type: alerts(r, advisor_min_volume=30) for r in week}
    kinds = {t: [a.kind for a in found[t]] for t in found}
    assert kinds["access-request"][:2] == [AlertKind.DRIFT, AlertKind.EXCEPTION_RATE]
    assert AlertKind.EXCEPTION_RATE not in kinds["invoice-approval"]
    bottleneck = next(a for a in found["invoice-approval"] if a.kind is AlertKind.BOTTLENECK)
    assert bottleneck.step == "approve"
    assert bottleneck.figures["past_sla_share"] == 0.25
    gap = next(a for a in found["invoice-approval"] if a.kind is AlertKind.AUDIT_GAP)
    assert len(gap.record_ids) == 7


def test_no_exception_alert_below_the_advisors_minimum_volume(week: list[ProcessReport]) -> None:
    triage = next(r for r in week if r.process_type == "incident-triage")
    assert AlertKind.EXCEPTION_RATE not in [a.kind for a in alerts(triage, advisor_min_volume=36)]


def test_the_dashboard_draws_one_point_per_window_and_escapes_what_it_shows(
    make_workload: Callable[..., list[Envelope]],
) -> None:
    events = make_workload(days=2)
    renamed = [
        e.model_copy(update={"payload": e.payload.model_copy(update={"request_type": "<b>x</b>"})})
        if getattr(e.payload, "request_type", None) == "incident-triage"
        else e
        for e in events
    ]
    span = Span.of(Granularity.HOUR, now=datetime(2026, 11, 25, tzinfo=UTC), count=48)
    reports = _reports(renamed, span)
    page = render(reports, [], span, threshold=0.2)
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert page.count('data-chart="exception-rate"') == len(reports)
    assert page.count('class="threshold"') == len(reports)
    # One point per window with requests, never one per event.
    assert page.count("<circle") <= 2 * 48 * len(reports)
    assert "http://" not in page  # nothing to fetch
    assert "https://" not in page


def test_an_empty_dashboard_says_so() -> None:
    span = Span.of(Granularity.DAY, now=NOW)
    page = render([], [], span, threshold=0.2)
    assert "no events projected yet" in page
    assert "no alerts" in page
