"""The running service against the real broker and database: one service for the module, each
test with requests of its own, everything observed on the workflow events topic."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.structs import ConsumerRecord
from eventsourcing.persistence import RecordConflictError
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner

from flowcase.devstack.dev_tokens import Tokens
from flowcase.devstack.in_process import eventually
from flowcase.devstack.topic_reader import read_topic
from flowcase.events import Envelope, Topic, decode, encode
from flowcase.events.catalogue.case import CaseResolved
from flowcase.events.catalogue.workflow import DefinitionPublished
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.events.tracing import Headers, inject_trace_context
from flowcase.eventstore import stable_event_id, tracking_of
from flowcase.eventstore.metrics import EVENTSTORE_APPEND_SECONDS
from flowcase.runtime.auth import Role
from flowcase.workflow.catalogue_mapping import submit_from
from flowcase.workflow.cli import app as cli
from flowcase.workflow.composition import WorkflowAssembly
from flowcase.workflow.consumers import batch_handler, message_handler
from flowcase.workflow.definition_files import shipped_folder
from flowcase.workflow.state import instance_id

ROUTINE_AND_ESCALATING = [
    ("password_reset", {"account": "jdoe", "system": "okta"}, "completed"),
    ("password_reset", {"account": "refuse-me", "system": "okta"}, "action_failed"),
    ("password_reset", {"account": "jdoe", "system": "mainframe"}, "rejected"),
    (
        "software_access",
        {"software": "figma", "justification": "Design reviews with the team"},
        "completed",
    ),
    (
        "software_access",
        {
            "software": "cad-suite",
            "monthly_cost": 2400,
            "justification": "3D models of the new plant",
        },
        "no_branch_matched",
    ),
    (
        "invoice_approval",
        {"invoice_id": "INV-1", "vendor": "Acme", "amount": 400, "currency": "EUR"},
        "completed",
    ),
    (
        "purchase_order",
        {
            "supplier": "Acme",
            "department": "ops",
            "amount": 120,
            "lines": [{"sku": "PEN", "quantity": 100}],
        },
        "completed",
    ),
    (
        "employee_onboarding",
        {
            "employee_name": "Ada Lovelace",
            "email": "ada@example.com",
            "manager_email": "grace@example.com",
            "department": "engineering",
            "start_date": "2026-12-01",
        },
        "completed",
    ),
    ("access_complaint", {"system": "payroll", "complaint": "I was locked out"}, "rule"),
    ("hr_matter", {"description": "Leave policy", "category": "policy-question"}, "completed"),
    ("hr_matter", {"description": "Details", "category": "grievance"}, "rule"),
    ("multi_system_incident", {"systems": ["crm"], "impact": "low", "summary": "x"}, "completed"),
    (
        "multi_system_incident",
        {"systems": ["crm", "billing"], "impact": "low", "summary": "Checkout fails"},
        "rule",
    ),
]


def _supervisor(tokens: Tokens, subject: str, *business_roles: str) -> dict[str, str]:
    """A supervisor of the teams invoices are routed to (and forced to, in the tests), with the
    organisation's roles an approval may ask for."""
    return tokens.headers(
        Role.SUPERVISOR, *business_roles, teams=["accounts-payable", "treasury"], subject=subject
    )


def _result(payload: Any) -> str:
    if payload.__class__.__name__ == "EscalatedToCase":
        return str(payload.reason_code)
    return str(payload.outcome)


@pytest.mark.parametrize(("request_type", "payload", "expected"), ROUTINE_AND_ESCALATING)
async def test_every_shipped_definition_runs_end_to_end(
    service: WorkflowAssembly, intake: Any, workflow_events: Any, request_type, payload, expected
) -> None:
    request_id = await intake.submit(request_type, payload)
    assert _result(await workflow_events.outcome(request_id)) == expected
    started = await workflow_events.wait_for(request_id, "workflow.InstanceStarted")
    assert started.definition_version == service.registry.current(request_type).version


async def test_actions_reach_the_far_side_with_their_idempotency_key(
    intake: Any, workflow_events: Any, far_side: Any
) -> None:
    request_id = await intake.submit("password_reset", {"account": "jdoe", "system": "okta"})
    await workflow_events.outcome(request_id)
    calls = far_side.calls_for(request_id)
    assert [(c["connector"], c["idempotency_key"]) for c in calls] == [
        ("identity-provider", f"{request_id}/reset-password"),
        ("email", f"{request_id}/send-reset-link"),
    ]


async def test_a_request_type_nobody_serves_is_rejected_with_the_reason(
    intake: Any, workflow_events: Any
) -> None:
    request_id = await intake.submit("coffee_order", {"size": "large"})
    completed = await workflow_events.outcome(request_id)
    assert str(completed.outcome) == "rejected"
    assert completed.reasons[0].field == "request_type"
    assert "coffee_order" in completed.reasons[0].reason


async def test_an_approval_by_api_completes_the_instance(
    intake: Any, workflow_events: Any, api: httpx.AsyncClient, tokens: Tokens
) -> None:
    payload = {"invoice_id": "INV-2", "vendor": "Acme", "amount": 1840.5, "currency": "EUR"}
    request_id = await intake.submit("invoice_approval", payload)
    requested = await workflow_events.wait_for(request_id, "workflow.ApprovalRequested")
    assert requested.approver_role == "finance-manager"
    body = {
        "decision": "approved",
        "rationale": "Within budget",
        "relied_on": ["budget-2026-q4"],
    }
    grace = _supervisor(tokens, "grace@example.com", "finance-manager")
    answer = await api.post(
        f"/v1/instances/{request_id}/approvals/finance-approval", json=body, headers=grace
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["pending_approval"] is None
    assert _result(await workflow_events.outcome(request_id)) == "completed"
    decided = [e for e in workflow_events.of(request_id) if e.event_type.endswith("Decided")]
    assert [(e.actor, e.payload.relied_on) for e in decided] == [
        ("grace@example.com", ["budget-2026-q4"])
    ]
    again = await api.post(
        f"/v1/instances/{request_id}/approvals/finance-approval", json=body, headers=grace
    )
    assert again.status_code == 409
    assert again.json()["detail"] == "the instance is completed, not running"


async def test_a_denial_by_api_escalates(
    intake: Any, workflow_events: Any, api: httpx.AsyncClient, tokens: Tokens
) -> None:
    payload = {"invoice_id": "INV-3", "vendor": "Acme", "amount": 12000, "currency": "EUR"}
    request_id = await intake.submit("invoice_approval", payload)
    await workflow_events.wait_for(request_id, "workflow.ApprovalRequested")
    answer = await api.post(
        f"/v1/instances/{request_id}/approvals/finance-approval",
        json={"decision": "denied", "rationale": "Duplicate invoice"},
        headers=_supervisor(tokens, "fd@example.com", "finance-director"),
    )
    assert answer.status_code == 200
    escalated = await workflow_events.outcome(request_id)
    assert str(escalated.reason_code) == "approval_denied"


async def test_only_the_role_the_definition_names_decides_and_never_the_requester(
    intake: Any, workflow_events: Any, api: httpx.AsyncClient, tokens: Tokens
) -> None:
    payload = {"invoice_id": "INV-75K", "vendor": "Acme", "amount": 75000, "currency": "EUR"}
    request_id = await intake.submit("invoice_approval", payload)
    requested = await workflow_events.wait_for(request_id, "workflow.ApprovalRequested")
    assert requested.approver_role == "cfo"
    url = f"/v1/instances/{request_id}/approvals/finance-approval"
    body = {"decision": "approved", "rationale": "Within budget"}
    refused = {
        who: await api.post(url, json=body, headers=headers)
        for who, headers in {
            "no business role": _supervisor(tokens, "treasurer@example.com"),
            "a lower role": _supervisor(tokens, "fm@example.com", "finance-manager"),
            "the requester, as cfo": _supervisor(tokens, "jdoe@example.com", "cfo"),
        }.items()
    }
    for who, answer in refused.items():
        assert answer.status_code == 403, (who, answer.text)
    assert "needs the role cfo" in refused["a lower role"].json()["detail"]
    assert "may not decide" in refused["the requester, as cfo"].json()["detail"]
    assert (await api.get(f"/v1/instances/{request_id}")).json()["pending_approval"] is not None
    approved = await api.post(url, json=body, headers=_supervisor(tokens, "cfo@example.com", "cfo"))
    assert approved.status_code == 200, approved.text
    assert _result(await workflow_events.outcome(request_id)) == "completed"


async def test_api_errors(intake: Any, workflow_events: Any, api: httpx.AsyncClient) -> None:
    unknown = await api.get(f"/v1/instances/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    invalid = await api.post(
        f"/v1/instances/{uuid.uuid4()}/approvals/x", json={"decision": "maybe", "actor": "x"}
    )
    assert invalid.status_code == 422
    # The actor is the token's subject: a body naming one is refused.
    assert {e["field"] for e in invalid.json()["errors"]} == {"decision", "actor"}
    override = await api.post(
        f"/v1/instances/{uuid.uuid4()}/overrides",
        json={"override": "force_route", "reason": "r"},
    )
    assert override.status_code == 422
    assert [e["field"] for e in override.json()["errors"]] == ["force_route.team"]


async def test_a_manual_override_by_api_is_recorded_once(
    intake: Any, workflow_events: Any, api: httpx.AsyncClient, tokens: Tokens
) -> None:
    supervisor = _supervisor(tokens, "supervisor@example.com")
    payload = {"invoice_id": "INV-4", "vendor": "Acme", "amount": 2000, "currency": "EUR"}
    request_id = await intake.submit("invoice_approval", payload)
    await workflow_events.wait_for(request_id, "workflow.ApprovalRequested")
    route = {
        "override": "force_route",
        "team": "treasury",
        "reason": "Vendor is on the watch list",
    }
    answer = await api.post(f"/v1/instances/{request_id}/overrides", json=route, headers=supervisor)
    assert answer.json()["team"] == "treasury"
    skip = {
        "override": "skip_step",
        "step": "finance-approval",
        "reason": "Approved by phone",
        "override_id": str(uuid.uuid4()),
    }
    first = await api.post(f"/v1/instances/{request_id}/overrides", json=skip, headers=supervisor)
    retried = await api.post(f"/v1/instances/{request_id}/overrides", json=skip, headers=supervisor)
    assert (first.status_code, retried.status_code) == (200, 200)
    assert _result(await workflow_events.outcome(request_id)) == "completed"
    overrides = [
        e for e in workflow_events.of(request_id) if e.event_type == "workflow.OverrideApplied"
    ]
    assert [(str(e.payload.override), e.actor) for e in overrides] == [
        ("force_route", "supervisor@example.com"),
        ("skip_step", "supervisor@example.com"),
    ]
    late = await api.post(
        f"/v1/instances/{request_id}/overrides",
        json={**skip, "override_id": None},
        headers=supervisor,
    )
    assert late.status_code == 409


async def test_the_same_request_twice_makes_one_instance(
    service: WorkflowAssembly, module_kafka: KafkaSettings, intake: Any, workflow_events: Any
) -> None:
    envelope = intake.envelope("hr_matter", {"description": "Leave", "category": "policy-question"})
    await intake.producer.publish(envelope)
    await intake.producer.publish(envelope)  # published twice: two messages, one request
    request_id = envelope.request_id
    await workflow_events.outcome(request_id)
    # One message consumed twice (as after a crash before the offset commit): the first time
    # records it, the second finds the record.
    handle = message_handler(service.workflow, module_kafka.topic(Topic.CASE_EVENTS))
    record = _record(envelope, offset=10_000)
    await handle(record)
    assert await service.workflow.consumed(tracking_of(record))
    await handle(record)
    await _relay_caught_up(service)
    assert workflow_events.types(request_id).count("workflow.InstanceStarted") == 1
    stored = await service.workflow.turns(request_id)
    assert sum(len(turn.events) for turn in stored) == len(workflow_events.of(request_id))
    assert submit_from(envelope.payload).request_id == request_id


async def test_a_resolved_case_closes_the_escalated_instance(
    module_kafka: KafkaSettings, intake: Any, workflow_events: Any
) -> None:
    request_id = await intake.submit("access_complaint", {"system": "vpn", "complaint": "Locked"})
    assert str((await workflow_events.outcome(request_id)).reason_code) == "rule"
    case_id = uuid.uuid4()
    for payload in (
        CaseResolved(
            case_id=case_id,
            request_id=request_id,
            outcome_code="access-restored",
            rationale="Reset the VPN token",
            relied_on=["note-1"],
        ),
    ):
        await intake.producer.publish(Envelope.wrap(payload, source="case", request_id=request_id))
    completed = await workflow_events.wait_for(request_id, "workflow.InstanceCompleted")
    assert (str(completed.outcome), completed.case_id) == ("resolved_by_case", case_id)


async def test_the_relay_publishes_every_stored_event_once_with_stable_ids(
    service: WorkflowAssembly, intake: Any, workflow_events: Any
) -> None:
    payload = {"invoice_id": "INV-5", "vendor": "Acme", "amount": 100, "currency": "EUR"}
    request_id = await intake.submit("invoice_approval", payload)
    await workflow_events.outcome(request_id)
    await _relay_caught_up(service)
    published = workflow_events.of(request_id)
    turns = await service.workflow.turns(request_id)
    assert [e.event_type for e in published] == [
        event.event_type for turn in turns for event in turn.events
    ]
    assert [e.event_id for e in published] == [
        stable_event_id(instance_id(request_id), version, index)
        for version, turn in enumerate(turns, start=1)
        for index in range(len(turn.events))
    ]
    assert all(e.request_id == request_id for e in published)


async def test_definitions_are_published_keyed_by_request_type(
    service: WorkflowAssembly, module_kafka: KafkaSettings, api: httpx.AsyncClient
) -> None:
    topic = module_kafka.topic(Topic.WORKFLOW_DEFINITIONS)
    records = await read_topic(module_kafka, topic, count=8, timeout=10)
    keys = {r.key.decode() for r in records if r.key}
    assert keys == set(service.registry.request_types())
    published = set()
    for record in records:
        definition = decode(record.value).payload
        assert isinstance(definition, DefinitionPublished)
        published.add(definition.request_type)
    assert published == keys
    listed = (await api.get("/v1/definitions")).json()
    assert {d["request_type"]: d["versions"] for d in listed} == {k: [1] for k in keys}
    one = await api.get("/v1/definitions/invoice_approval/versions/1")
    assert one.json()["request_schema"]["type"] == "object"
    assert (await api.get("/v1/definitions/invoice_approval/versions/9")).status_code == 404
    ready = await api.get("/readyz")
    assert ready.status_code == 200, ready.text
    openapi = (await api.get("/openapi.json")).json()
    overrides = openapi["paths"]["/v1/instances/{request_id}/overrides"]["post"]
    examples = overrides["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"skip_step", "force_route", "force_completion"}
    assert "409" in overrides["responses"]


async def test_instances_are_listed_and_shown_with_their_history(
    service: WorkflowAssembly, intake: Any, workflow_events: Any, api: httpx.AsyncClient
) -> None:
    request_id = await intake.submit(
        "software_access", {"software": "zoom", "justification": "Calls with the vendor"}
    )
    await workflow_events.outcome(request_id)
    one = (await api.get(f"/v1/instances/{request_id}")).json()
    assert one["status"] == "completed"
    assert [h["step"] for h in one["history"]][:2] == ["check-request", "route-to-team"]
    assert one["events"][0]["type"] == "InstanceStarted"
    # The relay and the projection follow the store's log each at its own pace: the list may
    # show the instance running for a moment after the completion is on Kafka.
    for _ in range(50):
        page = (await api.get("/v1/instances", params={"request_type": "software_access"})).json()
        listed = {i["request_id"]: i for i in page["items"]}
        if listed.get(str(request_id), {}).get("status") == "completed":
            break
        await service.projection.advanced.wait()
        service.projection.advanced.clear()
    assert listed[str(request_id)]["status"] == "completed"


async def _relay_caught_up(service: WorkflowAssembly) -> None:
    for _ in range(200):
        if await service.relay.backlog() == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the relay did not catch up: {await service.relay.backlog()} behind")


def _record(
    envelope: Envelope, *, offset: int, partition: int = 0, headers: Headers | None = None
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="flowcase.intake.requests.replayed",
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=str(envelope.request_id).encode(),
        value=encode(envelope),
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=tuple(headers or ()),
    )


def _appends() -> float:
    """Event-store appends (transactions) so far, as the service's metric counts them."""
    for metric in EVENTSTORE_APPEND_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                return sample.value
    raise AssertionError("no append count")


def _traced_headers() -> tuple[Headers, int]:
    """Kafka headers of a trace of its own (as intake's send span would write), and its id."""
    with trace.get_tracer("test").start_as_current_span("send") as span:
        return inject_trace_context([]), span.get_span_context().trace_id


async def test_a_fetched_batch_of_requests_starts_in_one_transaction_each_in_its_own_trace(
    service: WorkflowAssembly,
    module_kafka: KafkaSettings,
    intake: Any,
    workflow_events: Any,
    spans: InMemorySpanExporter,
) -> None:
    envelopes = [
        intake.envelope("password_reset", {"account": f"batch{i}", "system": "okta"})
        for i in range(3)
    ]
    traced = [_traced_headers() for _ in envelopes]
    records = [
        _record(e, offset=100 + i, partition=1, headers=traced[i][0])
        for i, e in enumerate(envelopes)
    ]
    handle = batch_handler(service.workflow, module_kafka.topic(Topic.CASE_EVENTS), "workflow")
    await service.workflow.idle()
    before = _appends()
    await handle(records)
    assert _appends() - before == 1
    assert await service.workflow.consumed(tracking_of(records[-1]))
    for envelope in envelopes:
        assert str((await workflow_events.outcome(envelope.request_id)).outcome) == "completed"

    await handle(records)  # redelivered (a crash before the offset commit): nothing happens
    await _relay_caught_up(service)
    for envelope in envelopes:
        assert workflow_events.types(envelope.request_id).count("workflow.InstanceStarted") == 1

    # Each message has its own process span in its producer's trace, and its steps below it.
    finished = spans.get_finished_spans()
    for envelope, (_, trace_id) in zip(envelopes, traced, strict=True):
        [process] = [
            s
            for s in finished
            if s.name == "process flowcase.intake.requests.replayed"
            and (s.attributes or {}).get("flowcase.request_id") == str(envelope.request_id)
        ]
        assert process.context.trace_id == trace_id
        steps = [
            s
            for s in finished
            if s.name.startswith("workflow step")
            and (s.attributes or {}).get("flowcase.request_id") == str(envelope.request_id)
            and s.parent is not None
            and s.parent.span_id == process.context.span_id
        ]
        assert steps, f"no step span below the process span of {envelope.request_id}"


async def test_a_batch_holding_a_started_request_goes_one_message_at_a_time(
    service: WorkflowAssembly, module_kafka: KafkaSettings, intake: Any, workflow_events: Any
) -> None:
    started = intake.envelope("password_reset", {"account": "first", "system": "okta"})
    await intake.producer.publish(started)
    await workflow_events.outcome(started.request_id)
    fresh = intake.envelope("password_reset", {"account": "second", "system": "okta"})
    records = [_record(fresh, offset=7, partition=2), _record(started, offset=8, partition=2)]

    with pytest.raises(RecordConflictError):
        await batch_handler(service.workflow, module_kafka.topic(Topic.CASE_EVENTS), "workflow")(
            records
        )
    # Nothing of the batch was saved: the runner now hands the messages over one at a time.
    assert not await service.workflow.consumed(tracking_of(records[0]))
    one_at_a_time = message_handler(service.workflow, module_kafka.topic(Topic.CASE_EVENTS))
    for record in records:
        await one_at_a_time(record)
    assert str((await workflow_events.outcome(fresh.request_id)).outcome) == "completed"
    await _relay_caught_up(service)
    for envelope in (started, fresh):
        assert workflow_events.types(envelope.request_id).count("workflow.InstanceStarted") == 1


async def test_a_what_if_over_the_stored_history_predicts_what_happened(
    intake: Any,
    workflow_events: Any,
    api: httpx.AsyncClient,
    tokens: Tokens,
    module_database: DatabaseSettings,
    tmp_path: Path,
) -> None:
    """`flowcase processes what-if` without a history file reads the requests stored in the
    workflow's database for the period: the deployed definition predicts what happened, and a
    lower approval threshold leaves the invoice it now catches pending."""
    since = datetime.now(UTC)
    amounts = {"INV-W1": 400, "INV-W2": 1840.5, "INV-W3": 12000}
    ids = {
        invoice: await intake.submit(
            "invoice_approval",
            {"invoice_id": invoice, "vendor": "Acme", "amount": amount, "currency": "EUR"},
        )
        for invoice, amount in amounts.items()
    }
    for invoice, verdict, approver, role in (
        ("INV-W2", "approved", "grace@example.com", "finance-manager"),
        ("INV-W3", "denied", "fd@example.com", "finance-director"),
    ):
        await workflow_events.wait_for(ids[invoice], "workflow.ApprovalRequested")
        answer = await api.post(
            f"/v1/instances/{ids[invoice]}/approvals/finance-approval",
            json={"decision": verdict, "rationale": "checked"},
            headers=_supervisor(tokens, approver, role),
        )
        assert answer.status_code == 200, answer.text
    for request_id in ids.values():
        await workflow_events.outcome(request_id)

    async def listed() -> set[str]:
        page = await api.get("/v1/instances", params={"request_type": "invoice_approval"})
        return {row["request_id"] for row in page.json()["items"] if row["status"] != "running"}

    await eventually(listed, lambda done: {str(i) for i in ids.values()} <= done)

    shipped = (shipped_folder() / "invoice_approval.yaml").read_text()
    unchanged = tmp_path / "unchanged.yaml"
    unchanged.write_text(shipped.replace("version: 1", "version: 2"))
    lower = tmp_path / "lower.yaml"
    lower.write_text(
        shipped.replace("version: 1", "version: 2").replace(
            "- when: payload.amount >= 1000\n        role: finance-manager",
            "- when: payload.amount >= 300\n        role: finance-manager",
        )
    )

    async def what_if(proposed: Path) -> dict[str, Any]:
        args = ["what-if", str(proposed), "--since", since.isoformat(), "--json"]
        answer = await asyncio.to_thread(
            CliRunner().invoke, cli, [*args, "--database-url", module_database.url]
        )
        assert answer.exit_code == 0, answer.output
        return json.loads(answer.stdout)

    same = await what_if(unchanged)
    assert same["changes"] == []
    assert same["happened"]["requests"] == 3
    assert same["happened"]["completed"] == 2
    assert same["happened"]["escalated"] == {"approval_denied": 1}
    assert same["proposed"] == same["happened"]

    caught = await what_if(lower)
    assert [c["request_id"] for c in caught["changes"]] == [str(ids["INV-W1"])]
    assert caught["proposed"]["pending"] == {"finance-manager": 1}

    # The same by API, for the ops leader (a team's supervisor sees only its teams: refused).
    asked = {"definition": lower.read_text(), "since": since.isoformat(), "changes": 0}
    by_api = await api.post("/v1/what-if", json=asked, headers=tokens.headers(Role.OPS_LEADER))
    assert by_api.status_code == 200, by_api.text
    report = by_api.json()
    assert report["changed"] == 1
    assert report["changes"] == []
    assert report["proposed"] == caught["proposed"]
    refused = await api.post(
        "/v1/what-if", json=asked, headers=_supervisor(tokens, "grace@example.com")
    )
    assert refused.status_code == 403
    broken = await api.post(
        "/v1/what-if", json={"definition": "name: x\nsteps: []\n"}, headers=tokens.admin()
    )
    assert broken.status_code == 422
    assert "version" in broken.json()["detail"]
