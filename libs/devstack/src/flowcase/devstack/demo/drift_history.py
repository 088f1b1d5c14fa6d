"""The demo's imported history: a team's past HR matters whose case resolution time drifts.

Resolution time cannot drift in live demo traffic: case times are stamped when the cases are
worked, which is now. So the demo imports what governance's history import exists for, the log a
team kept before adopting Flowcase: seven weeks of HR matters at a flat volume, whose cases take
longer week after week (12% a week) and, over the last eight days, day after day (17% a day): a
backlog building up. Governance flags drift in both the daily and the weekly views. The log is
the documented CSV (services/governance/README.md, "CSV columns"); nothing here does I/O but
`write_csv`.

The same log carries the article's other signals, so a newcomer's first look shows each where
it belongs: the intake step's 30-minute SLA is missed about a third of the time (SLA breaches,
and a bottleneck alert past the 20 % line), one matter in twelve is rerouted by a manual
override (one in three of those without a reason), and one case decision in ten is recorded
without its rationale (an audit-trail gap). Each matter was promised an answer within a day (a
`resolve_within` of 24h, stated on its start): kept at first, then broken more and more in the
case as resolution slows, and broken in the workflow by the few policy questions left
unanswered.
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

DRIFT_TYPE = "hr_matter"
COLUMNS = [
    "timestamp",
    "activity",
    "request_id",
    "case_id",
    "process_type",
    "actor",
    "step",
    "step_kind",
    "sla_due_at",
    "rule",
    "outcome",
    "rationale",
    "relied_on",
]
DAYS = 49
DAILY_VOLUME = 10
WEEKLY_GROWTH = 1.12
DAILY_GROWTH = 1.17  # over the last ACCELERATION_DAYS
ACCELERATION_DAYS = 8
BASE_HOURS = 6.0
POLICY_QUESTION_SHARE = 0.25  # answered with the policy; the rest become cases
ADVISORS = ["er-advisor-ana", "er-advisor-bo", "er-advisor-chidi", "er-advisor-dara"]
INTAKE_STEP = "hr-intake"
INTAKE_SLA = timedelta(minutes=30)
# Every 12th matter that becomes a case is rerouted by hand before it opens, every 3rd of those
# overrides without a reason, and every 10th case decision without its rationale: counted, not
# drawn, so each signal shows in every week of the log, the dashboard's default view included.
OVERRIDE_EVERY = 12
UNEXPLAINED_EVERY = 3
UNJUSTIFIED_EVERY = 10
PROMISE = timedelta(hours=24)
UNANSWERED_EVERY = 15  # every 15th policy question waits in the workflow past its promise


def resolution_hours(day: float, days: int = DAYS) -> float:
    """The typical time to resolve a case opened `day` days into the history."""
    turn = days - ACCELERATION_DAYS
    if day <= turn:
        return BASE_HOURS * WEEKLY_GROWTH ** (day / 7)
    return BASE_HOURS * WEEKLY_GROWTH ** (turn / 7) * DAILY_GROWTH ** (day - turn)


def drift_history(
    end: datetime, *, days: int = DAYS, daily_volume: int = DAILY_VOLUME, seed: int = 7
) -> list[dict[str, str]]:
    """The log's rows, oldest first, for the `days` before `end` (exclusive; give it midnight
    UTC so the history stops where the live demo starts). A case not resolved by `end` stays
    open, as it was when the log was taken."""
    rng = random.Random(seed)
    rows: list[tuple[datetime, dict[str, str]]] = []
    cases = overrides = decisions = questions = 0

    def add(at: datetime, activity: str, **values: str) -> None:
        rows.append((at, {"timestamp": at.isoformat(), "activity": activity, **values}))

    for day in range(days):
        midnight = end - timedelta(days=days - day)
        for n in range(daily_volume + rng.choice([-1, 0, 0, 1])):
            request_id = f"HR-{seed}-{day:02d}-{n:02d}"
            submitted = midnight + timedelta(hours=rng.uniform(7, 19))
            employee = f"employee-{rng.randrange(1000, 9999)}"
            add(
                submitted,
                "request_submitted",
                request_id=request_id,
                process_type=DRIFT_TYPE,
                actor=employee,
            )
            add(
                submitted,
                "instance_started",
                request_id=request_id,
                process_type=DRIFT_TYPE,
                sla_due_at=(submitted + PROMISE).isoformat(),
            )
            add(
                submitted,
                "step_entered",
                request_id=request_id,
                step=INTAKE_STEP,
                step_kind="sla",
                sla_due_at=(submitted + INTAKE_SLA).isoformat(),
            )
            if rng.random() < POLICY_QUESTION_SHARE:
                questions += 1
                if questions % UNANSWERED_EVERY == 0:
                    continue  # still waiting in the workflow when the log was taken
                answered = submitted + timedelta(minutes=rng.uniform(5, 50))
                add(answered, "step_completed", request_id=request_id, step=INTAKE_STEP)
                add(answered, "instance_completed", request_id=request_id, outcome="completed")
                continue
            case_id = f"CASE-{request_id}"
            # The intake step ends when the case opens: past its SLA about a third of the time.
            opened = submitted + timedelta(minutes=24 * rng.lognormvariate(0, 0.6))
            add(opened, "step_completed", request_id=request_id, step=INTAKE_STEP)
            cases += 1
            if cases % OVERRIDE_EVERY == 0:
                overrides += 1
                explained = overrides % UNEXPLAINED_EVERY != 0
                add(
                    opened - timedelta(minutes=1),
                    "override_applied",
                    request_id=request_id,
                    actor="hr-ops-lead",
                    rule="matter.kind == 'grievance'",
                    rationale="Sent to employee relations directly" if explained else "",
                    relied_on="call-1" if explained else "",
                )
            reason = "An HR matter other than a policy question needs an investigation"
            add(
                opened,
                "escalated_to_case",
                request_id=request_id,
                process_type=DRIFT_TYPE,
                rationale=reason,
            )
            add(
                opened,
                "case_opened",
                request_id=request_id,
                case_id=case_id,
                process_type=DRIFT_TYPE,
            )
            hours = resolution_hours(
                (opened - (end - timedelta(days=days))) / timedelta(days=1), days
            )
            resolved = opened + timedelta(hours=hours * rng.lognormvariate(0, 0.12))
            if resolved >= end:
                continue
            advisor = rng.choice(ADVISORS)
            decided = opened + (resolved - opened) * 0.8
            decisions += 1
            justified = decisions % UNJUSTIFIED_EVERY != 0
            add(
                decided,
                "decision_recorded",
                case_id=case_id,
                actor=advisor,
                rationale="Both accounts and the policy heard" if justified else "",
                relied_on="note-1;interview-1",
            )
            add(
                resolved,
                "case_resolved",
                request_id=request_id,
                case_id=case_id,
                actor=advisor,
                outcome=rng.choice(["resolved_informally", "upheld", "not_upheld"]),
                rationale="Outcome agreed with the employee",
                relied_on="decision-1",
            )
            add(
                resolved,
                "instance_completed",
                request_id=request_id,
                case_id=case_id,
                outcome="resolved_by_case",
            )
    rows.sort(key=lambda r: r[0])
    return [row for _, row in rows]


def write_csv(rows: list[dict[str, str]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
