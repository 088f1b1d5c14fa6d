"""The workflow's what-if over a year of one process: seconds for 100,000 requests.

    uv run python benchmarks/what_if.py [--requests 100000]

No servers: a history of the shipped invoice approval is made with the pure engine (each request
submitted, its actions reported done, every 13th failing; approvers approve, every 7th denies,
every 11th lets the timeout pass), written as JSON lines of envelopes as the workflow's topic
carries them; then `flowcase processes what-if` runs as a user runs it (a child process, to its
exit) over that file, once with the deployed definition and once with a lower approval
threshold, and its time, rate and peak memory are recorded. Results go to
benchmarks/results/what-if-<date>.json. Nothing here is asserted: it measures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from commands import flowcase
from microbench import write_results

from flowcase.events import Envelope, encode
from flowcase.events.catalogue.workflow import ApprovalDecision
from flowcase.workflow.definition import ProcessDefinition
from flowcase.workflow.definition_files import load_definition, shipped_folder
from flowcase.workflow.effects import RunAction
from flowcase.workflow.state import PendingApproval
from flowcase.workflow.triggers import (
    DecideApproval,
    ReportActionFailed,
    ReportActionSucceeded,
    Submit,
    Trigger,
)
from flowcase.workflow.what_if import drive

START = datetime(2025, 12, 1, tzinfo=UTC)
DEFINITION = shipped_folder() / "invoice_approval.yaml"


class Approvers:
    """The world of request `n`: actions succeed (every 13th fails), approvers approve (every
    7th denies, every 11th lets the timeout pass)."""

    def __init__(self, n: int, at: datetime) -> None:
        self.n, self.at = n, at

    def action(self, action: RunAction) -> Trigger:
        if self.n % 13 == 12:
            return ReportActionFailed(step=action.step, attempts=5, error="ERP down")
        return ReportActionSucceeded(step=action.step)

    def fires(self, timer_id: str) -> bool:
        return timer_id.endswith("/approval-timeout") and self.n % 11 == 10

    def approves(self, pending: PendingApproval) -> tuple[DecideApproval, datetime]:
        verdict = ApprovalDecision.DENIED if self.n % 7 == 6 else ApprovalDecision.APPROVED
        actor = f"approver-{self.n % 9}"
        return DecideApproval(step=pending.step, decision=verdict, actor=actor), self.at


def request_history(definition: ProcessDefinition, n: int, rng: random.Random) -> list[Envelope]:
    request_id = UUID(int=n + 1)
    at = START + timedelta(seconds=n * 315)  # a year for 100,000
    payload = {"invoice_id": f"INV-{n}", "vendor": "Acme", "currency": "EUR"}
    submit = Submit(
        request_id=request_id,
        request_type=definition.request_type,
        requester=f"clerk-{n % 50}@example.com",
        payload=payload | {"amount": round(rng.uniform(-100, 80000), 2)},
    )
    decisions = drive(definition, submit, at, Approvers(n, at + timedelta(minutes=5)))
    return [
        Envelope.wrap(
            event,
            source="workflow",
            request_id=request_id,
            occurred_at=decision.turn.at,
            actor=decision.turn.actor_of(event),
        )
        for decision in decisions
        for event in decision.turn.events
    ]


def write_history(path: Path, requests: int) -> dict[str, Any]:
    started = time.monotonic()
    definition = load_definition(DEFINITION)
    rng = random.Random(2026)
    events = 0
    with path.open("wb") as f:
        for n in range(requests):
            for envelope in request_history(definition, n, rng):
                f.write(encode(envelope) + b"\n")
                events += 1
    return {
        "requests": requests,
        "events": events,
        "bytes": path.stat().st_size,
        "seconds": round(time.monotonic() - started, 1),
    }


def what_if(proposed: Path, history: Path, requests: int) -> dict[str, Any]:
    ran = flowcase("processes", "what-if", str(proposed), "--history", str(history), "--json")
    report = json.loads(ran.stdout)
    return {
        "seconds": round(ran.seconds, 1),
        "requests_per_second": round(requests / ran.seconds, 1),
        "peak_rss_mib": ran.peak_rss_mib,
        "changed_outcomes": len(report["changes"]),
        "happened": {k: report["happened"][k] for k in ("completed", "escalated", "pending")},
        "proposed": {k: report["proposed"][k] for k in ("completed", "escalated", "pending")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument(
        "--example",
        type=Path,
        help="only write the history of --requests requests to this file (the workflow README's "
        "example was made with --requests 40 --example services/workflow/examples/"
        "invoice_history.jsonl)",
    )
    args = parser.parse_args()
    requests = args.requests
    if args.example:
        print(write_history(args.example, requests))
        return
    at = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        history = Path(folder) / "history.jsonl"
        print(f"history of {requests} requests …", file=sys.stderr)
        written = write_history(history, requests)
        text = DEFINITION.read_text().replace("version: 1", "version: 2")
        unchanged = Path(folder) / "unchanged.yaml"
        unchanged.write_text(text)
        lower = Path(folder) / "lower-threshold.yaml"
        lower.write_text(
            text.replace(
                "- when: payload.amount >= 1000\n        role: finance-manager",
                "- when: payload.amount >= 500\n        role: finance-manager",
            )
        )
        runs = {}
        for name, proposed in (("unchanged", unchanged), ("lower threshold", lower)):
            print(f"what-if, {name} …", file=sys.stderr)
            runs[name] = what_if(proposed, history, requests)
            print(runs[name], file=sys.stderr)
    write_results("what-if", at, history=written, what_if=runs)


if __name__ == "__main__":
    main()
