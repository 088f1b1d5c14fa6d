"""`flowcase trace REQUEST_ID`: one request's journey from the platform's own records.

For when no trace backend is at hand. It reads what the services already keep and serve, so
it needs nothing but their HTTP APIs:

- intake's status read model (`GET /v1/requests/{id}`): the request, its status, the case it
  escalated to, and the timeline of every event intake observed for it;
- the workflow instance (`GET /v1/instances/{id}`): every recorded event and every step with
  when it was entered and completed;
- the case history (`GET /v1/cases/{case_id}/history`), when the request escalated.

The events of the three sources are merged into one journey (an event two sources report is
shown once), each with the service that recorded it and the topic it travels on; the steps get
their own table with their wait times. A source that is away or does not know the request is
reported and skipped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import typer
from rich.console import Console
from rich.table import Table

from flowcase.events.catalogue import REGISTRY
from flowcase.runtime.command_token import command_token

app = typer.Typer()


@dataclass(frozen=True)
class Hop:
    at: datetime
    service: str
    topic: str | None
    event_type: str
    detail: str


@dataclass(frozen=True)
class Step:
    step: str
    kind: str
    entered_at: datetime
    completed_at: datetime | None
    outcome: str | None

    @property
    def seconds(self) -> float | None:
        if self.completed_at is None:
            return None
        return (self.completed_at - self.entered_at).total_seconds()


@dataclass(frozen=True)
class Journey:
    request_id: str
    summary: dict[str, Any]
    hops: list[Hop]
    steps: list[Step]
    missing: list[str]
    """Sources that could not be read, and why."""


def _topic_of(event_type: str) -> str | None:
    payload = REGISTRY.get(event_type)
    return payload.topic.value if payload is not None else None


def _hop(event_type: str, at: str, detail: str) -> Hop:
    return Hop(
        at=datetime.fromisoformat(at),
        service=event_type.split(".", 1)[0],
        topic=_topic_of(event_type),
        event_type=event_type,
        detail=detail,
    )


def _fact_detail(fact: dict[str, Any]) -> str:
    shown = {k: v for k, v in fact.items() if k in ("step", "outcome", "reason_code", "decision")}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def journey_of(
    request_id: str,
    status: dict[str, Any] | None,
    instance: dict[str, Any] | None,
    case_history: dict[str, Any] | None,
    missing: list[str] | None = None,
) -> Journey:
    """Merge what intake, workflow and case recorded of one request (pure: the JSON bodies)."""
    hops: dict[tuple[str, datetime, int], Hop] = {}

    def merge(source: Iterable[Hop]) -> None:
        # The sources overlap (intake's timeline holds the workflow's and the case's events too)
        # but share no id: intake names an event by its envelope id, workflow by its place in the
        # instance, case by the case's version. Each lists events in the order they happened,
        # so the n-th event of a type at an instant is the same event in every source; five
        # steps run in one instant stay five. The richer detail wins.
        seen: Counter[tuple[str, datetime]] = Counter()
        for hop in source:
            key = (hop.event_type, hop.at, seen[hop.event_type, hop.at])
            seen[hop.event_type, hop.at] += 1
            if key not in hops or len(hop.detail) > len(hops[key].detail):
                hops[key] = hop

    merge(
        _hop(item["event_type"], item["occurred_at"], item.get("summary", ""))
        for item in (status or {}).get("timeline", [])
    )
    merge(
        _hop(f"workflow.{event['type']}", event["at"], _fact_detail(event.get("fact", {})))
        for event in (instance or {}).get("events", [])
    )
    merge(
        _hop(
            entry["event_type"],
            entry["occurred_at"],
            f"v{entry['version']}" + (f" by {entry['actor']}" if entry.get("actor") else ""),
        )
        for entry in (case_history or {}).get("events", [])
    )
    steps = [
        Step(
            step=record["step"],
            kind=record["kind"],
            entered_at=datetime.fromisoformat(record["entered_at"]),
            completed_at=(
                datetime.fromisoformat(record["completed_at"])
                if record.get("completed_at")
                else None
            ),
            outcome=record.get("outcome"),
        )
        for record in (instance or {}).get("history", [])
    ]
    summary = {
        key: value
        for key, value in {
            **{k: (status or {}).get(k) for k in ("status", "request_type", "requester")},
            "submitted_at": (status or {}).get("submitted_at"),
            "workflow": (instance or {}).get("status"),
            "current_step": (instance or {}).get("current_step"),
            "case_id": (status or {}).get("case_id") or (case_history or {}).get("case_id"),
        }.items()
        if value is not None
    }
    return Journey(
        request_id=request_id,
        summary=summary,
        hops=sorted(hops.values(), key=lambda h: h.at),
        steps=steps,
        missing=list(missing or []),
    )


def _get(client: httpx.Client, url: str, missing: list[str], name: str) -> dict[str, Any] | None:
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        missing.append(f"{name}: {exc!r}")
        return None
    if response.status_code != 200:
        missing.append(f"{name}: HTTP {response.status_code} from {url}")
        return None
    body: dict[str, Any] = response.json()
    return body


def fetch(request_id: str, *, intake: str, workflow: str, case: str, token: str | None) -> Journey:
    missing: list[str] = []
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(headers=headers, timeout=10.0) as client:
        status = _get(client, f"{intake}/v1/requests/{request_id}", missing, "intake")
        instance = _get(client, f"{workflow}/v1/instances/{request_id}", missing, "workflow")
        case_id = (status or {}).get("case_id")
        history = (
            _get(client, f"{case}/v1/cases/{case_id}/history", missing, "case") if case_id else None
        )
    return journey_of(request_id, status, instance, history, missing)


def _clock(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


# Wider than any row: piped or redirected, rich would fit the tables into 80 columns and cut or
# wrap what does not fit, and a file or a grep wants every value whole, each row on one line.
_UNBOUNDED = 1_000_000


def _console() -> Console:
    """The terminal's console, or an unbounded one when the output is not a terminal."""
    console = Console()
    return console if console.is_terminal else Console(width=_UNBOUNDED)


def render(journey: Journey, console: Console) -> None:
    console.print(f"[bold]request {journey.request_id}[/bold]")
    for key, value in journey.summary.items():
        console.print(f"  {key}: {value}")
    if journey.hops:
        start = journey.hops[0].at
        hops = Table(title="journey", title_justify="left")
        for column in ("time (UTC)", "+", "service", "topic", "event", "detail"):
            hops.add_column(column, no_wrap=column != "detail")
        for hop in journey.hops:
            hops.add_row(
                _clock(hop.at),
                _elapsed((hop.at - start).total_seconds()),
                hop.service,
                hop.topic or "",
                hop.event_type,
                hop.detail,
            )
        console.print(hops)
    if journey.steps:
        steps = Table(title="workflow steps", title_justify="left")
        for column in ("step", "kind", "entered (UTC)", "took", "outcome"):
            steps.add_column(column)
        for step in journey.steps:
            steps.add_row(
                step.step, step.kind, _clock(step.entered_at), _elapsed(step.seconds), step.outcome
            )
        console.print(steps)
    for problem in journey.missing:
        console.print(f"[yellow]not read: {problem}[/yellow]")
    console.print(
        f"[dim]In a trace backend: spans with flowcase.request_id={journey.request_id}; "
        f"in the logs: lines with request_id {journey.request_id}.[/dim]"
    )


@app.command()
def trace(
    request_id: UUID = typer.Argument(..., help="The request id intake answered with."),
    intake: str = typer.Option(
        "http://127.0.0.1:8001", envvar="FLOWCASE_INTAKE_URL", help="Intake's base URL."
    ),
    workflow: str = typer.Option(
        "http://127.0.0.1:8002", envvar="FLOWCASE_WORKFLOW_URL", help="Workflow's base URL."
    ),
    case: str = typer.Option(
        "http://127.0.0.1:8003", envvar="FLOWCASE_CASE_URL", help="Case's base URL."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the journey as JSON."),
) -> None:
    """Print one request's journey (services, topics, steps, timings)."""
    journey = fetch(
        str(request_id),
        intake=intake.rstrip("/"),
        workflow=workflow.rstrip("/"),
        case=case.rstrip("/"),
        token=command_token("flowcase-trace"),
    )
    if as_json:
        typer.echo(json.dumps(asdict(journey), default=str, indent=2))
    else:
        render(journey, _console())
    if not journey.hops:
        raise typer.Exit(1)
