"""`flowcase trace`: the journey merged from the services' records, as the `flowcase` command
runs it (the command mounted by `build_app`, its output not a terminal)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from flowcase.cli.main import build_app
from flowcase.runtime.trace_cli import journey_of

REQUEST_ID = "3f2c8a1e-5b7d-4e0a-9c61-2d4f8b9e7a10"
SUBMITTED = "2026-11-24T09:15:00+00:00"
DECIDED = "2026-11-24T09:15:00.250000+00:00"  # one decision: its events share one instant
LONG_STEP = "reconcile-the-invoice-with-the-purchase-order-and-the-goods-received-note-first"
STEPS = ["check-invoice", "route-to-team", LONG_STEP]


def _entered(step: str) -> dict[str, Any]:
    return {"type": "StepEntered", "at": DECIDED, "fact": {"step": step}}


def _completed(step: str) -> dict[str, Any]:
    return {"type": "StepCompleted", "at": DECIDED, "fact": {"step": step, "outcome": "done"}}


STATUS = {
    "request_id": REQUEST_ID,
    "status": "in_workflow",
    "request_type": "invoice_approval",
    "requester": "ap-clerk-7",
    "submitted_at": SUBMITTED,
    "case_id": None,
    "timeline": [
        {
            "occurred_at": SUBMITTED,
            "event_type": "intake.RequestSubmitted",
            "status": "submitted",
            "summary": "submitted over http by ap-clerk-7",
            "event_id": "3d1c6f0e-2a4b-5c6d-8e7f-9a0b1c2d3e4f",
        },
        # Intake has seen the first step of the decision so far.
        {
            "occurred_at": DECIDED,
            "event_type": "workflow.StepEntered",
            "status": "in_workflow",
            "summary": "step check-invoice (validate) entered",
            "event_id": "4e2d7a1f-3b5c-5d6e-9f8a-0b1c2d3e4f5a",
        },
    ],
}
INSTANCE = {
    "request_id": REQUEST_ID,
    "status": "running",
    "current_step": LONG_STEP,
    "history": [
        {
            "step": step,
            "kind": "validate",
            "entered_at": DECIDED,
            "completed_at": DECIDED,
            "outcome": "done",
        }
        for step in STEPS
    ],
    "events": [event for step in STEPS for event in (_entered(step), _completed(step))],
}


def test_events_of_one_type_at_one_instant_are_each_one_hop() -> None:
    journey = journey_of(REQUEST_ID, STATUS, INSTANCE, None)

    entered = [hop for hop in journey.hops if hop.event_type == "workflow.StepEntered"]
    completed = [hop for hop in journey.hops if hop.event_type == "workflow.StepCompleted"]
    assert len(entered) == len(completed) == len(STEPS)
    # The step intake and workflow both reported is one hop, with intake's richer detail.
    assert [hop.detail for hop in entered] == [
        "step check-invoice (validate) entered",
        "step=route-to-team",
        f"step={LONG_STEP}",
    ]
    assert len(journey.hops) == 1 + 2 * len(STEPS)


@pytest.fixture(scope="module")
def services() -> Iterator[str]:
    """One HTTP server answering as intake and workflow do for REQUEST_ID."""
    bodies = {f"/v1/requests/{REQUEST_ID}": STATUS, f"/v1/instances/{REQUEST_ID}": INSTANCE}

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body or {}).encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


def _flowcase(services: str, *args: str) -> Any:
    env = {"FLOWCASE_INTAKE_URL": services, "FLOWCASE_WORKFLOW_URL": services}
    return CliRunner().invoke(build_app(), list(args), env=env)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["trace", REQUEST_ID, "--json"], id="option-after-the-id"),
        pytest.param(["trace", "--json", REQUEST_ID], id="option-before-the-id"),
    ],
)
def test_flowcase_trace_takes_its_options_before_or_after_the_request_id(
    services: str, args: list[str]
) -> None:
    result = _flowcase(services, *args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["request_id"] == REQUEST_ID


def test_flowcase_trace_piped_prints_every_value_whole(services: str) -> None:
    result = _flowcase(services, "trace", REQUEST_ID)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # Each row on one line, nothing cut: the long step in the journey, the steps and the summary.
    assert len([line for line in lines if LONG_STEP in line]) == 4
    assert len([line for line in lines if "flowcase.workflow.events" in line]) == 2 * len(STEPS)
    assert "…" not in result.stdout
