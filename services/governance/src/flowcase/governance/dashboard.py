"""The ops leaders' dashboard: one self-contained HTML page rendered on the server.

The processes table with the recommendation, per process type the charts of exception rate
(with the 20% line), overrides per 100 requests and resolution time per window, the worst
bottleneck steps, and the alerts. Inline CSS and SVG only: it works offline, and the page
carries one point per window and process type, whatever history lies behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from urllib.parse import urlencode

from flowcase.governance.alerts import Alert, AlertKind
from flowcase.governance.charts import bar_chart, line_chart
from flowcase.governance.drift import Drift
from flowcase.governance.reports import ProcessReport, Span
from flowcase.governance.windows import Granularity

WORST_STEPS = 3
NO_DRIFT = '<p class="muted drift">no resolution-time drift</p>'

# The views the header offers: granularity and how many windows back.
VIEWS = (
    ("last 24 hours by hour", Granularity.HOUR, 24),
    ("last 7 days by day", Granularity.DAY, 7),
    ("last 30 days by day", Granularity.DAY, 30),
    ("last 12 weeks by week", Granularity.WEEK, 12),
)

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2933;background:#f7f8fa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}h3{margin:0 0 6px}
.muted{color:#616e7c}nav a{margin-right:12px}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{padding:6px 8px;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.over{color:#c81e1e;font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;color:#fff}
.badge.workflow{background:#2f855a}.badge.case{background:#b7791f}
.badge.layered{background:#2b6cb0}.badge.none{background:#9aa5b1}
.cards{display:flex;flex-wrap:wrap;gap:16px}
.card{background:#fff;border:1px solid #e4e7eb;border-radius:6px;padding:12px}
.charts{display:flex;flex-wrap:wrap;gap:8px}.charts figure{margin:0}
figcaption{font-size:12px;color:#616e7c}
svg .axis{stroke:#9aa5b1}svg .tick{font-size:10px;fill:#616e7c}
svg .series{fill:none;stroke:#2b6cb0;stroke-width:2}svg .point{fill:#2b6cb0}
svg .point.over{fill:#c81e1e}svg .bar{fill:#7b93db}
svg .threshold{stroke:#c81e1e;stroke-dasharray:4 3}
ul.alerts{background:#fff;border:1px solid #e4e7eb;padding:8px 8px 8px 28px}
"""


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


def _badge(report: ProcessReport) -> str:
    approach = report.advice.approach
    name = approach.value if approach else "none"
    label = approach.value if approach else "no recommendation"
    return f'<span class="badge {name}" data-approach="{name}">{escape(label)}</span>'


def _drift(drift: Drift) -> str:
    """The verdict, and under it the windows it used (or why there is none)."""
    if drift.flagged:
        verdict = "<span class=over>drifting</span>"
    elif drift.sufficient:
        verdict = "none"
    else:
        verdict = '<span class="muted">no verdict</span>'
    if drift.used is None:
        basis = drift.reason or "no windows"
    else:
        basis = f"windows from {drift.used.start:%Y-%m-%d} to {drift.used.end:%Y-%m-%d}"
        if drift.reason:
            basis += f": {drift.reason}"
    if drift.left_out_after:
        basis += f"; {drift.left_out_after} empty windows after the data left out"
    return f'{verdict}<div class="muted drift-basis">{escape(basis)}</div>'


def _recommendation(report: ProcessReport) -> str:
    return f'{_badge(report)}<div class="muted reason">{escape(report.advice.reason)}</div>'


def _table(reports: Sequence[ProcessReport]) -> str:
    head = (
        "<tr><th>process type</th><th>requests</th><th>exception rate</th>"
        "<th>overrides / 100</th><th>SLA breach rate</th>"
        '<th title="decisions (human approvals and case decisions) with an audit-trail gap">'
        "audit gaps (decisions)</th>"
        "<th>resolution median</th><th>worst step</th><th>drift</th>"
        "<th>recommendation</th></tr>"
    )
    rows = []
    for r in reports:
        m = r.totals
        over = ' class="num over"' if r.advice.over_threshold else ' class="num"'
        rows.append(
            f'<tr data-process="{escape(r.process_type)}">'
            f"<td>{escape(r.process_type)}</td>"
            f'<td class="num">{m.volume}</td>'
            f"<td{over}>{_pct(m.exception_rate)}</td>"
            f'<td class="num">{_number(m.overrides_per_100)}</td>'
            f'<td class="num">{_pct(m.sla_breach_rate)}</td>'
            f'<td class="num">{_pct(m.audit.share)}</td>'
            f'<td class="num">{_duration(m.resolution.median_seconds)}</td>'
            f"<td>{escape(r.advice.worst_step or '—')}</td>"
            f"<td>{_drift(r.drift)}</td>"
            f"<td>{_recommendation(r)}</td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="10" class="muted">no events projected yet</td></tr>'
    return f'<table id="processes"><thead>{head}</thead><tbody>{body}</tbody></table>'


def _card(report: ProcessReport, threshold: float) -> str:
    g = report.span.granularity
    labels = [_window_label(m.period.start, g) for m in report.series]
    t = escape(report.process_type)
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
    figures = "".join(
        f"<figure>{svg}<figcaption>{cap}</figcaption></figure>" for svg, cap in charts
    )
    worst = sorted(
        report.totals.steps,
        key=lambda s: (-(s.past_sla_share or 0.0), -(s.wait_p95_seconds or 0.0), s.step),
    )[:WORST_STEPS]
    steps = "".join(
        f"<tr><td>{escape(s.step)}</td><td class=num>{_pct(s.past_sla_share)}</td>"
        f"<td class=num>{_duration(s.wait_p50_seconds)}</td>"
        f"<td class=num>{_duration(s.wait_p95_seconds)}</td><td class=num>{s.executions}</td></tr>"
        for s in worst
    )
    steps_table = (
        '<table class="steps"><thead><tr><th>worst steps</th><th>past SLA</th><th>wait p50</th>'
        f"<th>wait p95</th><th>runs</th></tr></thead><tbody>{steps}</tbody></table>"
        if steps
        else '<p class="muted">no step entered in this period</p>'
    )
    return (
        f'<section class="card" data-process="{t}"><h3>{t} {_badge(report)}</h3>'
        f'<div class="charts">{figures}</div>{steps_table}</section>'
    )


def _alerts(alerts: Sequence[Alert]) -> str:
    shown = [a for a in alerts if a.kind is not AlertKind.AUDIT_GAP] + [
        a for a in alerts if a.kind is AlertKind.AUDIT_GAP
    ]
    if not shown:
        return '<p class="muted" id="alerts">no alerts</p>'
    items = "".join(
        f'<li data-kind="{a.kind}"><strong>{escape(a.process_type)}</strong> '
        f"({escape(a.kind.replace('_', ' '))}): {escape(a.summary)}"
        + (
            f'<div class="muted">{escape(", ".join(a.record_ids[:5]))}'
            f"{' …' if len(a.record_ids) > 5 else ''}</div>"
            if a.record_ids
            else ""
        )
        + "</li>"
        for a in shown
    )
    return f'<ul class="alerts" id="alerts">{items}</ul>'


def render(
    reports: Sequence[ProcessReport], alerts: Sequence[Alert], span: Span, *, threshold: float
) -> str:
    period = span.period
    nav = " ".join(
        f'<a href="/?{urlencode({"granularity": g.value, "windows": n})}">{escape(label)}</a>'
        for label, g, n in VIEWS
    )
    drift = "".join(
        f'<p class="over drift">{escape(a.process_type)}: {escape(a.summary)}</p>'
        for a in alerts
        if a.kind is AlertKind.DRIFT
    )
    cards = "".join(_card(r, threshold) for r in reports)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>Flowcase governance</title><style>{STYLE}</style></head><body>"
        "<h1>Flowcase governance</h1>"
        '<p class="muted">Per process type, whether the work sits on the right layer. '
        f"{len(span.windows)} {span.granularity} windows, {period.start:%Y-%m-%d %H:%M} to "
        f"{period.end:%Y-%m-%d %H:%M} UTC (event time). Exception rate over {threshold:.0%}: "
        f"the approach is probably wrong for the work.</p><nav>{nav}</nav>"
        f"<h2>Processes</h2>{_table(reports)}"
        f"<h2>Drift</h2>{drift or NO_DRIFT}"
        f"<h2>Alerts</h2>{_alerts(alerts)}"
        f'<h2>Per process</h2><div class="cards">{cards}</div>'
        "</body></html>"
    )


def render_sign_in(status: int, detail: str) -> str:
    """The page a browser gets instead of the dashboard when its token is missing, expired or
    lacks the role: what went wrong, and how to open the dashboard with a token."""
    if status == 401:
        what = "This page needs a bearer token with the <code>ops_leader</code> role"
    else:
        what = "Your token is valid, but this page needs the <code>ops_leader</code> role"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>Flowcase governance: sign in</title><style>{STYLE}</style></head><body>"
        "<h1>Flowcase governance</h1>"
        f'<p class="over" id="problem">{what}: {escape(detail)}.</p>'
        "<p>Get a token from your identity provider (on the local stack: "
        "<code>uv run flowcase token --role ops_leader</code>) and open this page once as "
        "<code>/?token=&lt;the token&gt;</code>: the token moves into a cookie and the address "
        "loses it. A token expires; when it has, do the same with a new one.</p>"
        "</body></html>"
    )
