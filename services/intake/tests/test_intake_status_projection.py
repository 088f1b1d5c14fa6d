"""The request status read model following workflow and case events on the real broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from flowcase.events.catalogue import case, workflow

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def test_a_request_is_followed_to_its_outcome_through_a_case(
    start_intake, publish, producer, definition, invoice, until
) -> None:
    await publish(definition())
    case_id = uuid4()
    async with start_intake() as (_, client):
        submission = invoice(submitted_at=at(0).isoformat())
        receipt = (await client.post("/v1/requests", json=submission)).json()
        request_id = UUID(receipt["request_id"])

        async def status():
            return (await client.get(receipt["status_url"])).json()

        def reaches(expected: str, **fields):
            return lambda body: (
                body["status"] == expected and all(body[k] == v for k, v in fields.items())
            )

        await publish(
            workflow.InstanceStarted(
                request_id=request_id,
                instance_id=uuid4(),
                request_type="invoice_approval",
                process="invoice-approval",
                definition_version=1,
            ),
            request_id=request_id,
            occurred_at=at(1),
        )
        await until(status, reaches("in_workflow"))
        await publish(
            workflow.StepEntered(request_id=request_id, step="approve", kind="approval"),
            workflow.ApprovalRequested(
                request_id=request_id, step="approve", approver_role="cfo", rule="amount > 1000"
            ),
            request_id=request_id,
            occurred_at=at(2),
        )
        await until(status, reaches("waiting_for_approval"))
        escalation = workflow.EscalatedToCase(
            request_id=request_id,
            request_type="invoice_approval",
            process="invoice-approval",
            definition_version=1,
            reason_code="approval_denied",
            reason="denied",
            step="approve",
            intake_payload={},
            history=[],
        )
        # the case topic runs ahead of the workflow topic: the case opens "before" the escalation
        await publish(
            case.CaseOpened(
                case_id=case_id, request_id=request_id, origin="escalation", title="Invoice"
            ),
            request_id=request_id,
            occurred_at=at(4),
        )
        await until(status, reaches("escalated", case_id=str(case_id)))
        await publish(escalation, request_id=request_id, occurred_at=at(3))
        # later case events name only the case
        await publish(case.CaseAssigned(case_id=case_id, team="finance"), occurred_at=at(5))
        # a late, redelivered workflow event moves nothing back
        late = await publish(
            workflow.StepEntered(request_id=request_id, step="route", kind="route"),
            request_id=request_id,
            occurred_at=at(1),
        )
        await publish(case.CaseResolved(case_id=case_id, outcome_code="paid"), occurred_at=at(9))
        await until(status, reaches("resolved_by_case"))
        # the very same event again (a redelivery) changes nothing; the completion that follows
        # it on the same partition shows it was consumed
        await producer.publish(late[0])
        await publish(
            workflow.InstanceCompleted(
                request_id=request_id, outcome="resolved_by_case", case_id=case_id
            ),
            request_id=request_id,
            occurred_at=at(10),
        )
        final = await until(
            status, lambda body: body["timeline"][-1]["event_type"] == "workflow.InstanceCompleted"
        )
    events = [entry["event_type"] for entry in final["timeline"]]
    assert final["status"] == "resolved_by_case"
    assert final["case_id"] == str(case_id)
    assert events[0] == "intake.RequestSubmitted"
    assert events[-1] == "workflow.InstanceCompleted"
    assert "case.CaseAssigned" in events
    assert late[0].event_id in {UUID(e["event_id"]) for e in final["timeline"]}
    assert len(events) == 10
    statuses = [e["status"] for e in final["timeline"]]
    assert statuses[-2:] == ["resolved_by_case", "resolved_by_case"]


async def test_workflow_events_seen_before_the_submission(
    start_intake, publish, until, tokens
) -> None:
    request_id = uuid4()
    async with start_intake() as (_, client):
        # No one's request until intake's own event names its requester: an admin reads it.
        client.headers.update(tokens.admin())
        await publish(
            workflow.InstanceCompleted(request_id=request_id, outcome="rejected"),
            request_id=request_id,
            occurred_at=at(5),
        )
        body = await until(
            lambda: client.get(f"/v1/requests/{request_id}"), lambda r: r.status_code == 200
        )
        rejected = await client.get("/v1/requests", params={"status": "rejected"})
    assert body.json()["status"] == "rejected"
    assert body.json()["request_type"] is None  # known once intake's own event is seen
    assert [i["request_id"] for i in rejected.json()["items"]] == [str(request_id)]


async def test_events_of_one_instant_keep_the_order_the_workflow_gave_them(
    start_intake, publish, definition, invoice, until
) -> None:
    """One workflow decision stamps all its events with the same time; the timeline must still
    read step by step, not alphabetically by event type."""
    await publish(definition())
    async with start_intake() as (_, client):
        receipt = (
            await client.post("/v1/requests", json=invoice(submitted_at=at(0).isoformat()))
        ).json()
        request_id = UUID(receipt["request_id"])
        await publish(
            workflow.StepEntered(request_id=request_id, step="route", kind="route"),
            workflow.StepCompleted(request_id=request_id, step="route", kind="route", outcome="ap"),
            workflow.StepEntered(request_id=request_id, step="approve", kind="approval"),
            request_id=request_id,
            occurred_at=at(1),
        )

        async def status():
            return (await client.get(receipt["status_url"])).json()

        final = await until(status, lambda body: len(body["timeline"]) == 4)
    assert [e["summary"] for e in final["timeline"][1:]] == [
        "step route (route) entered",
        "step route completed: ap",
        "step approve (approval) entered",
    ]
