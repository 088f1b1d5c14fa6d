"""The governance metrics of one process type over a period of event time.

The formulas are documented, with the events that feed each one, in docs/governance-metrics.md.

What puts a fact in a period is one instant, chosen so that a period's figures are about the
work that arrived in it:

- a request, and everything counted per request (escalation, overrides, SLA breach): the
  request's submission. A request submitted on Monday and escalated on Tuesday is Monday's
  exception; a period's rates therefore share one denominator, its volume.
- a step execution: when it was first entered.
- an audit record: when it was recorded.
- a case: when it was resolved for the resolution time, when it was opened for the count of
  cases opened and still open. Measuring resolution time at resolution keeps recent windows free
  of the bias of cases not yet resolved: a window's median only moves when a late event arrives.

A fact's process type is its request's `request_type`; a case's is its own, else its request's.
A fact whose process type is not known yet (its linking event has not arrived) is left out until
it is. Shares and rates are None where their denominator is zero.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from flowcase.events.catalogue.common import Outcome
from flowcase.events.catalogue.workflow import StepKind
from flowcase.governance.facts import (
    AuditKind,
    AuditRecord,
    CaseFact,
    Facts,
    Missing,
    OverrideFact,
    RequestFact,
    StepFact,
)
from flowcase.governance.stats import median, percentile
from flowcase.governance.windows import Granularity, Period, window_of, windows


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class StepMetrics:
    """One step's executions entered in the period.

    `judged` counts the executions whose SLA verdict is known: flagged by `workflow.SlaBreached`,
    or completed with a deadline (the step's `sla_due_at`, else entry + the configured default).
    An execution still open and not flagged is not judged yet: governance has no clock of its own.
    """

    step: str
    kind: StepKind | None
    executions: int
    completed: int
    wait_p50_seconds: float | None
    wait_p95_seconds: float | None
    judged: int
    past_sla: int

    @property
    def past_sla_share(self) -> float | None:
        return _share(self.past_sla, self.judged)


@dataclass(frozen=True)
class RuleOverrides:
    """Overrides of one definition rule (None: overrides naming no rule) in one version.

    `share` is the part of the period's requests that ran this definition version which had the
    rule overridden at least once.
    """

    rule: str | None
    definition_version: int
    overrides: int
    requests: int
    requests_on_version: int

    @property
    def share(self) -> float | None:
        return _share(self.requests, self.requests_on_version)


@dataclass(frozen=True)
class AuditGap:
    record_id: str
    kind: AuditKind
    missing: tuple[Missing, ...]


@dataclass(frozen=True)
class AuditGaps:
    """Decisions, overrides and resolutions recorded in the period, by kind, and those with a gap.

    The headline, `share`, is the decisions' (human approvals and case decisions): the signal is
    a routed decision whose why cannot be reconstructed, and a share over every kind would improve
    whenever resolutions are complete. Overrides and resolutions have their own (`share_of`)."""

    records_by_kind: dict[AuditKind, int] = field(hash=False)
    gaps: tuple[AuditGap, ...]

    @property
    def records(self) -> int:
        return sum(self.records_by_kind.values())

    def records_of(self, kind: AuditKind) -> int:
        return self.records_by_kind.get(kind, 0)

    def gaps_of(self, kind: AuditKind) -> tuple[AuditGap, ...]:
        return tuple(gap for gap in self.gaps if gap.kind is kind)

    def share_of(self, kind: AuditKind) -> float | None:
        return _share(len(self.gaps_of(kind)), self.records_of(kind))

    @property
    def share(self) -> float | None:
        return self.share_of(AuditKind.DECISION)

    @property
    def offending_ids(self) -> tuple[str, ...]:
        return tuple(gap.record_id for gap in self.gaps)


@dataclass(frozen=True)
class Promises:
    """End-to-end SLA attainment: the requests submitted in the period that were promised a
    resolution time (the definition's `resolve_within`). A promise is kept when the request ended
    (completed, or resolved by its case) by its due time, and broken when it ended later or is
    still open past it; a breach counts where the request was when its due time passed: in the
    workflow, or in the case it had escalated to. A request refused at validation, or open and
    not yet due, is not judged."""

    judged: int
    kept: int
    broken_in_workflow: int
    broken_in_case: int
    late_p50_seconds: float | None
    """How late the broken promises that have ended were, the median."""

    @property
    def attainment(self) -> float | None:
        return _share(self.kept, self.judged)


@dataclass(frozen=True)
class Resolution:
    """Cases opened in the period (and of those, still open), and cases resolved in it."""

    opened: int
    still_open: int
    resolved: int
    median_seconds: float | None


@dataclass(frozen=True)
class ProcessMetrics:
    process_type: str
    period: Period
    volume: int
    escalated: int
    overridden: int
    exceptions: int
    overrides: int
    sla_breached: int
    steps: tuple[StepMetrics, ...]
    rule_overrides: tuple[RuleOverrides, ...]
    audit: AuditGaps
    resolution: Resolution
    promises: Promises

    @property
    def exception_rate(self) -> float | None:
        """Requests that escalated to a case or had at least one manual override, over volume."""
        return _share(self.exceptions, self.volume)

    @property
    def escalation_rate(self) -> float | None:
        return _share(self.escalated, self.volume)

    @property
    def override_share(self) -> float | None:
        """Requests with at least one manual override, over volume."""
        return _share(self.overridden, self.volume)

    @property
    def overrides_per_100(self) -> float | None:
        return None if not self.volume else 100 * self.overrides / self.volume

    @property
    def sla_breach_rate(self) -> float | None:
        """Requests with at least one step execution past its SLA, over volume."""
        return _share(self.sla_breached, self.volume)

    @property
    def worst_step(self) -> StepMetrics | None:
        return self.steps_worst_first[0] if self.steps else None

    @property
    def steps_worst_first(self) -> list[StepMetrics]:
        """The largest share past SLA first, then the longest p95 wait, then by name."""
        return sorted(
            self.steps,
            key=lambda s: (-(s.past_sla_share or 0.0), -(s.wait_p95_seconds or 0.0), s.step),
        )

    @property
    def most_overridden_rule(self) -> RuleOverrides | None:
        return self.rule_overrides[0] if self.rule_overrides else None


def process_types(facts: Facts) -> list[str]:
    """Every process type the facts know, sorted."""
    types = {r.request_type.value for r in facts.requests.values() if r.request_type}
    types |= {c.request_type.value for c in facts.cases.values() if c.request_type}
    return sorted(types)


def measure(
    facts: Facts,
    process_type: str,
    period: Period,
    *,
    default_sla: timedelta | None = None,
    now: datetime | None = None,
) -> ProcessMetrics:
    """The metrics of `process_type` over `period` (a window or any span of windows).

    `default_sla` is the deadline of a step whose entry stated no `sla_due_at`; `now` judges the
    promises of requests still open (without it, only ended requests are judged).
    """
    process = _Process.of(facts, process_type, default_sla)
    part = process.split(lambda at: period.start if at in period else None).get(period.start)
    return _compute(process_type, period, part or process.empty(), now)


def series(
    facts: Facts,
    process_type: str,
    granularity: Granularity,
    first: datetime,
    last: datetime,
    *,
    default_sla: timedelta | None = None,
    now: datetime | None = None,
) -> list[ProcessMetrics]:
    """The metrics of every window from the one holding `first` to the one holding `last`.

    Windows with nothing in them are there, with zero volume, so a trend sees the gap.
    """
    process = _Process.of(facts, process_type, default_sla)
    parts = process.split(lambda at: window_of(at, granularity).start)
    return [
        _compute(process_type, window, parts.get(window.start) or process.empty(), now)
        for window in windows(granularity, first, last)
    ]


def _sla_verdict(step: StepFact, default_sla: timedelta | None) -> bool | None:
    """Whether the execution waited past its SLA; None while that is not known."""
    if step.sla_breached:
        return True
    deadline = step.sla_due_at
    if deadline is None and default_sla is not None and step.entered_at is not None:
        deadline = step.entered_at + default_sla
    if deadline is None or step.completed_at is None:
        return None
    return step.completed_at > deadline


def cases_of(facts: Facts, process_type: str, period: Period) -> list[CaseFact]:
    """The cases of `process_type` opened or resolved in `period`, the longest open first
    (still open ones by their opening), for the per-process page."""
    found = [
        c
        for c in _Process.of(facts, process_type, None).cases
        if c.opened_at in period or c.resolved_at in period
    ]

    def open_for(case: CaseFact) -> float:
        if case.opened_at is None:
            return 0.0
        end = case.resolved_at or period.end
        return (end - case.opened_at).total_seconds()

    return sorted(found, key=lambda c: (-open_for(c), str(c.case_id)))


@dataclass
class _Process:
    """One process type's facts, joined once; `split` then sorts them into periods."""

    default_sla: timedelta | None
    requests: list[RequestFact] = field(default_factory=list)
    steps: list[StepFact] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)
    cases: list[CaseFact] = field(default_factory=list)
    # Per-request lookups, shared by every period: a request's overrides and SLA breaches count
    # in its submission's period wherever they themselves happened.
    overrides: dict[UUID, list[OverrideFact]] = field(default_factory=dict)
    breached: set[UUID] = field(default_factory=set)

    @classmethod
    def of(cls, facts: Facts, process_type: str, default_sla: timedelta | None) -> _Process:
        type_of = {r.request_id: r.process_type for r in facts.requests.values()}

        def case_type(case: CaseFact) -> str | None:
            if case.request_type:
                return case.request_type.value
            return type_of.get(case.request_id.value) if case.request_id else None

        case_type_of = {c.case_id: case_type(c) for c in facts.cases.values()}

        def record_type(record: AuditRecord) -> str | None:
            if record.case_id is not None:
                return case_type_of.get(record.case_id)
            return type_of.get(record.request_id) if record.request_id else None

        process = cls(default_sla)
        process.requests = [
            r
            for r in facts.requests.values()
            if r.process_type == process_type and r.submitted_at is not None
        ]
        steps = [s for s in facts.steps.values() if type_of.get(s.request_id) == process_type]
        process.steps = [s for s in steps if s.entered_at is not None]
        process.breached = {s.request_id for s in steps if _sla_verdict(s, default_sla)}
        process.audit = [a for a in facts.audit.values() if record_type(a) == process_type]
        process.cases = [c for c in facts.cases.values() if case_type_of[c.case_id] == process_type]
        for override in facts.overrides.values():
            if type_of.get(override.request_id) == process_type:
                process.overrides.setdefault(override.request_id, []).append(override)
        return process

    def empty(self) -> _Process:
        return _Process(self.default_sla, overrides=self.overrides, breached=self.breached)

    def split(self, period_of: Callable[[datetime], datetime | None]) -> dict[datetime, _Process]:
        """Sort the facts into periods: `period_of(instant)` names the period's start, or None."""
        parts: defaultdict[datetime, _Process] = defaultdict(self.empty)

        def starts(*instants: datetime | None) -> Iterable[datetime]:
            found = {period_of(at) for at in instants if at is not None}
            return (start for start in found if start is not None)

        for request in self.requests:
            for start in starts(request.submitted_at):
                parts[start].requests.append(request)
        for step in self.steps:
            for start in starts(step.entered_at):
                parts[start].steps.append(step)
        for record in self.audit:
            for start in starts(record.at):
                parts[start].audit.append(record)
        for case in self.cases:
            for start in starts(case.opened_at, case.resolved_at):
                parts[start].cases.append(case)
        return dict(parts)


def _compute(
    process_type: str, period: Period, process: _Process, now: datetime | None
) -> ProcessMetrics:
    requests = process.requests
    overrides_of = {r.request_id: process.overrides.get(r.request_id, []) for r in requests}
    escalated = {r.request_id for r in requests if r.escalated}
    overridden = {rid for rid, overrides in overrides_of.items() if overrides}
    return ProcessMetrics(
        process_type=process_type,
        period=period,
        volume=len(requests),
        escalated=len(escalated),
        overridden=len(overridden),
        exceptions=len(escalated | overridden),
        overrides=sum(len(overrides) for overrides in overrides_of.values()),
        sla_breached=sum(1 for r in requests if r.request_id in process.breached),
        steps=_steps(process.steps, process.default_sla),
        rule_overrides=_rule_overrides(requests, overrides_of),
        audit=_audit_gaps(process.audit),
        resolution=_resolution(process.cases, period),
        promises=_promises(requests, now),
    )


def _promises(requests: list[RequestFact], now: datetime | None) -> Promises:
    kept = in_workflow = in_case = 0
    late: list[float] = []
    for request in requests:
        due = request.due_at.value if request.due_at else None
        outcome = request.outcome
        if due is None or (outcome is not None and outcome.value is Outcome.REJECTED):
            continue
        ended = outcome.at if outcome is not None else None
        if ended is not None and ended <= due:
            kept += 1
            continue
        if ended is None and (now is None or now <= due):
            continue  # open, and not due yet
        if ended is not None:
            late.append((ended - due).total_seconds())
        if request.escalated_at is not None and request.escalated_at < due:
            in_case += 1
        else:
            in_workflow += 1
    return Promises(
        judged=kept + in_workflow + in_case,
        kept=kept,
        broken_in_workflow=in_workflow,
        broken_in_case=in_case,
        late_p50_seconds=percentile(late, 50),
    )


def _steps(executions: list[StepFact], default_sla: timedelta | None) -> tuple[StepMetrics, ...]:
    by_step: defaultdict[str, list[StepFact]] = defaultdict(list)
    for execution in executions:
        by_step[execution.step].append(execution)
    measured = []
    for step, runs in sorted(by_step.items()):
        waits = [
            (s.completed_at - s.entered_at).total_seconds()
            for s in runs
            if s.completed_at is not None and s.entered_at is not None
        ]
        verdicts = [v for v in (_sla_verdict(s, default_sla) for s in runs) if v is not None]
        kinds = Counter(s.kind.value for s in runs if s.kind)
        measured.append(
            StepMetrics(
                step=step,
                # The kind most executions state; ties go alphabetically, never by arrival.
                kind=min(kinds, key=lambda k: (-kinds[k], k), default=None),
                executions=len(runs),
                completed=len(waits),
                wait_p50_seconds=percentile(waits, 50),
                wait_p95_seconds=percentile(waits, 95),
                judged=len(verdicts),
                past_sla=sum(verdicts),
            )
        )
    return tuple(measured)


def _rule_overrides(
    requests: list[RequestFact], overrides_of: dict[UUID, list[OverrideFact]]
) -> tuple[RuleOverrides, ...]:
    on_version = Counter(r.definition_version.value for r in requests if r.definition_version)
    counts: Counter[tuple[str | None, int]] = Counter()
    overridden: defaultdict[tuple[str | None, int], set[UUID]] = defaultdict(set)
    for request_id, overrides in overrides_of.items():
        for override in overrides:
            rule = (override.rule, override.definition_version)
            counts[rule] += 1
            overridden[rule].add(request_id)
    rules = [
        RuleOverrides(
            rule=rule,
            definition_version=version,
            overrides=count,
            requests=len(overridden[(rule, version)]),
            requests_on_version=on_version[version],
        )
        for (rule, version), count in counts.items()
    ]
    # Most overridden first: that rule is the one to name.
    return tuple(
        sorted(rules, key=lambda r: (-r.overrides, -r.requests, r.rule or "", r.definition_version))
    )


def _audit_gaps(records: list[AuditRecord]) -> AuditGaps:
    gaps = sorted(
        (AuditGap(r.record_id, r.kind, r.missing) for r in records if r.missing),
        key=lambda gap: gap.record_id,
    )
    by_kind = Counter(r.kind for r in records)
    return AuditGaps(records_by_kind={kind: by_kind[kind] for kind in AuditKind}, gaps=tuple(gaps))


def _resolution(cases: list[CaseFact], period: Period) -> Resolution:
    opened = [c for c in cases if c.opened_at in period]
    resolved = [c for c in cases if c.resolved_at in period]
    durations = [
        (c.resolved_at - c.opened_at).total_seconds()
        for c in resolved
        if c.resolved_at is not None and c.opened_at is not None
    ]
    return Resolution(
        opened=len(opened),
        still_open=sum(1 for c in opened if c.resolved_at is None),
        resolved=len(resolved),
        median_seconds=median(durations),
    )
