"""The ops leaders' dashboard: one self-contained HTML page rendered on the server.

The processes table with the recommendation, per process type the charts of exception rate
(with the 20% line), overrides per 100 requests and resolution time per window, the worst
bottleneck steps, and the alerts. Inline CSS and SVG only: it works offline, and the page
carries one point per window and process type, whatever history lies behind it.

The pages are Jinja2 templates (`templates/`), autoescaped: every value from events (process
types, step names, record ids, reasons) is escaped where it is written; only the SVG charts,
built and escaped in `charts`, are marked safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from flowcase.governance.alerts import Alert, AlertKind
from flowcase.governance.charts import bar_chart, line_chart
from flowcase.governance.drift import Drift
from flowcase.governance.facts import AuditKind, CaseFact
from flowcase.governance.metrics import StepMetrics
from flowcase.governance.reports import ProcessReport, Span
from flowcase.governance.windows import Granularity

WORST_STEPS = 3
MAX_CASES = 50  # on a process's page, the longest open first

# The views the header offers: granularity and how many windows back.
VIEWS = (
    ("last 24 hours by hour", Granularity.HOUR, 24),
    ("last 7 days by day", Granularity.DAY, 7),
    ("last 30 days by day", Granularity.DAY, 30),
    ("last 12 weeks by week", Granularity.WEEK, 12),
)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


_DURATION_UNITS = (("d", 86400), ("h", 3600), ("min", 60))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    for unit, size in _DURATION_UNITS:
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _duration_unit(seconds: float) -> float:
    """The unit `_duration` writes `seconds` in, so an axis ends on a round number of it."""
    return next((size for _, size in _DURATION_UNITS if abs(seconds) >= size), 1.0)


def _window_label(start: datetime, granularity: Granularity) -> str:
    return start.strftime("%m-%d %H:00" if granularity is Granularity.HOUR else "%m-%d")


def _drift_basis(drift: Drift) -> str:
    """Under the verdict: the windows it used, or why there is none."""
    if drift.used is None:
        basis = drift.reason or "no windows"
    else:
        basis = f"windows from {drift.used.start:%Y-%m-%d} to {drift.used.end:%Y-%m-%d}"
        if drift.reason:
            basis += f": {drift.reason}"
    if drift.left_out_after:
        basis += f"; {drift.left_out_after} empty windows after the data left out"
    return basis


_PAGES = Environment(
    loader=PackageLoader("flowcase.governance", "templates"),
    autoescape=select_autoescape(["html", "css"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_PAGES.filters.update(pct=_pct, number=_number, duration=_duration, drift_basis=_drift_basis)


@dataclass(frozen=True)
class _Card:
    report: ProcessReport
    charts: list[tuple[Markup, str]]
    worst_steps: list[StepMetrics]


def _card(report: ProcessReport, threshold: float) -> _Card:
    g = report.span.granularity
    labels = [_window_label(m.period.start, g) for m in report.series]
    charts = [
        (
            line_chart(
                "exception-rate",
                f"{report.process_type}: exception rate per {g}",
                [m.exception_rate for m in report.series],
                labels,
                lambda v: f"{v:.0%}",
                threshold=threshold,
                cap=1.0,
            ),
            f"exception rate per {g} (dashed: the {threshold:.0%} line)",
        ),
        (
            bar_chart(
                "overrides",
                f"{report.process_type}: overrides per 100 requests per {g}",
                [m.overrides_per_100 for m in report.series],
                labels,
                lambda v: f"{v:.1f}",
            ),
            f"overrides per 100 requests per {g}",
        ),
        (
            line_chart(
                "resolution-time",
                f"{report.process_type}: median resolution time per {g}",
                [m.resolution.median_seconds for m in report.series],
                labels,
                _duration,
                unit=_duration_unit,
            ),
            f"median case resolution time per {g}",
        ),
    ]
    worst = report.totals.steps_worst_first[:WORST_STEPS]
    # The charts escape what they draw (charts.py); the page takes them as they are.
    return _Card(report, [(Markup(svg), caption) for svg, caption in charts], worst)


def _view_of(span: Span) -> str:
    """The query that shows `span`'s view again (from a process's page, and back)."""
    return urlencode({"granularity": span.granularity.value, "windows": len(span.windows)})


def render(
    reports: Sequence[ProcessReport], alerts: Sequence[Alert], span: Span, *, threshold: float
) -> str:
    # Audit gaps last: their lists of record ids are long.
    ordered = [a for a in alerts if a.kind is not AlertKind.AUDIT_GAP] + [
        a for a in alerts if a.kind is AlertKind.AUDIT_GAP
    ]
    context: dict[str, Any] = {
        "reports": reports,
        "span": span,
        "threshold": threshold,
        "views": [
            (label, urlencode({"granularity": g.value, "windows": n})) for label, g, n in VIEWS
        ],
        "drift_alerts": [a for a in alerts if a.kind is AlertKind.DRIFT],
        "alerts": ordered,
        "cards": [_card(r, threshold) for r in reports],
        # A process's page keeps the view the overview shows.
        "view": _view_of(span),
    }
    return _PAGES.get_template("dashboard.html").render(context)


def render_process(
    report: ProcessReport, cases: Sequence[CaseFact], alerts: Sequence[Alert], *, threshold: float
) -> str:
    """The page of one process type: what the overview row says, and everything behind it."""
    span = report.span
    return _PAGES.get_template("process.html").render(
        report=report,
        card=_card(report, threshold),
        steps=report.totals.steps_worst_first,
        cases=cases[:MAX_CASES],
        more_cases=max(0, len(cases) - MAX_CASES),
        alerts=alerts,
        span=span,
        threshold=threshold,
        back=_view_of(span),
        period_end=span.period.end,
        kinds=AuditKind,
    )


def render_not_found(process_type: str) -> str:
    return _PAGES.get_template("not_found.html").render(process_type=process_type)


def render_sign_in(status: int, detail: str) -> str:
    """The page a browser gets instead of the dashboard when its token is missing, expired or
    lacks the role: what went wrong, and how to open the dashboard with a token."""
    return _PAGES.get_template("sign_in.html").render(status=status, detail=detail)
