"""Bad inputs, each with a clear error and nothing else disturbed.

The corpus (malformed, oversized, wrongly typed, unknown-type, future-schema-version and hostile
submissions) goes over HTTP, where each must be answered 4xx with its reasons, and onto the raw
topic, where each must come back as a rejection with reasons (or a dead-letter record). Envelopes
no consumer can use go straight onto the workflow, case and requests topics, where every
consumer must dead-letter them with the reason. Afterwards no service has crashed, every one is
ready, and a valid request still completes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest

from flowcase.events import Topic, decode
from flowcase.events.catalogue import intake as intake_events
from flowcase.events.kafka import EventProducer

pytestmark = (
    pytest.mark.integration
)  # a dedicated platform: Kafka, PostgreSQL and the four services


async def _send_raw_http(host: str, port: int, data: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()
    status_line = response.split(b"\r\n", 1)[0].split(b" ")
    return (int(status_line[1]) if len(status_line) > 1 else 0), response


# Seconds without progress after which a wait fails: a loaded machine is slow, not stuck.
STALL = 60


@pytest.mark.timeout(600)
async def test_reliability_bad_inputs_get_clear_errors_and_disturb_nothing(
    platform, truth, driver, checks, corpus
) -> None:
    assert all((await platform.all_ready()).values())
    pids = {name: s.pid for name, s in platform.stack.services.items()}
    submissions = corpus.submissions()
    answers: dict[str, tuple[int, str]] = {}

    # over HTTP: 4xx with reasons, never 5xx
    async with platform.client("intake") as intake:
        for item in submissions:
            response = await intake.post(
                "/v1/requests", content=item.body, headers={"Content-Type": item.content_type}
            )
            answers[f"http {item.name}"] = (response.status_code, response.text[:500])
    url = urlsplit(platform.url("intake"))
    for raw in corpus.http_requests(url.hostname, url.port, platform.token()):
        status, response = await _send_raw_http(url.hostname, url.port, raw.data)
        answers[f"http {raw.name}"] = (status, response.decode("latin-1")[-500:])

    # over the raw topic: a rejection (or dead-letter record) with reasons each
    raw_values: list[tuple[str, bytes | None, list[tuple[str, bytes]]]] = [
        (item.name, item.body, []) for item in submissions
    ]
    raw_values += [
        ("tombstone", None, []),
        (
            "forged-dlq-headers",
            b'{"forged": 1}',
            [("flowcase.dlq.reason", b"none"), ("flowcase.dlq.original_topic", b"x")],
        ),
        (
            "garbage-traceparent",
            b'{"traceparent": 2}',
            [("traceparent", b"00-zz-zz-99"), ("tracestate", b"\xff\xfe")],
        ),
        ("huge-header", b'{"huge": "header"}', [("x-pad", b"h" * 100_000)]),
        ("crlf-header", b'{"crlf": "header"}', [("x-injected\r\nx-more", b"a\r\nb")]),
    ]
    topic = platform.kafka.topic(Topic.INTAKE_SUBMISSIONS)
    async with EventProducer(platform.kafka, client_id="reliability-corpus") as producer:
        for name, value, headers in raw_values:
            truth.bad_raw[value or b""] = f"raw {name}"
            await producer.send_raw(topic, value, key=name.encode(), headers=headers)
        for n, target in enumerate(
            (Topic.INTAKE_REQUESTS, Topic.WORKFLOW_EVENTS, Topic.CASE_EVENTS)
        ):
            for i, value in enumerate(corpus.envelopes(target, n)):
                truth.bad_envelopes[value] = f"envelope {i} on {target}"
                await producer.send_raw(platform.kafka.topic(target), value, key=b"bad", headers=[])

    http_problems = {
        name: answer
        for name, answer in answers.items()
        if not 400 <= answer[0] < 500 or not _has_reasons(answer)
    }
    # every raw submission comes back rejected (with reasons) or dead-lettered; the wait ends
    # when all are back or when a minute passes in which none came back
    stalled_at = time.monotonic() + STALL
    missing = [name for name, _, _ in raw_values]
    while True:
        rejected = await _rejections(platform)
        still = [name for name, value, _ in raw_values if (value or b"") not in rejected]
        if len(still) < len(missing):
            stalled_at = time.monotonic() + STALL
        missing = still
        if not missing or time.monotonic() > stalled_at:
            break
        await asyncio.sleep(1)
    reasons_missing = [v[:80] for v, reasons in rejected.items() if not reasons]

    # nothing else disturbed: the same processes, all ready, and a valid request completes
    crashed = {
        n: (p, platform.stack.services[n].pid)
        for n, p in pids.items()
        if platform.stack.services[n].pid != p
    }
    ready = await platform.all_ready(timeout=30)
    valid = await driver.submit("routine", "http")
    valid_raw = await driver.submit("routine", "kafka")
    deadline = time.monotonic() + 2 * STALL
    while not {valid.request_id, valid_raw.request_id} <= driver.completed_at.keys():
        assert time.monotonic() < deadline, "a valid request did not complete after the corpus"
        await asyncio.sleep(0.5)
    quiet = await checks.quiescence(driver)

    statuses = Counter(status for status, _ in answers.values())
    print(
        json.dumps(
            {
                "http_inputs": len(answers),
                "http_statuses": dict(statuses),
                "raw_inputs": len(raw_values),
                "envelopes": len(truth.bad_envelopes),
                "quiescence": quiet,
            },
            indent=1,
        )
    )
    verdict = await checks.verify()
    problems = [
        *(f"HTTP {name}: {answer}" for name, answer in http_problems.items()),
        *(f"raw {name}: neither rejected nor dead-lettered" for name in missing),
        *(f"a rejection without reasons: {value!r}" for value in reasons_missing),
        *(f"{name} restarted on its own: {was} -> {now}" for name, (was, now) in crashed.items()),
        *(f"{name} not ready" for name, ok in ready.items() if not ok),
        *verdict.problems,
    ]
    assert len(answers) + len(raw_values) + len(truth.bad_envelopes) >= 200
    assert not problems, "\n".join(problems)[:8000]


def _has_reasons(answer: tuple[int, str]) -> bool:
    _, text = answer
    try:
        problem = json.loads(text.split("\r\n\r\n", 1)[-1]) if text else {}
    except ValueError:
        return bool(text.strip())  # a framing error answered by the HTTP server in plain text
    if not isinstance(problem, dict):
        return False
    return bool(problem.get("errors") or problem.get("detail"))


async def _rejections(platform) -> dict[bytes, list]:
    """What came back for raw submissions: rejections' reasons, and dead-lettered bytes."""
    found: dict[bytes, list] = {}
    rejected = await read_records(platform, Topic.INTAKE_REJECTED)
    for record in rejected:
        payload = decode(record.value).payload
        if isinstance(payload, intake_events.RequestRejected):
            found[base64.b64decode(payload.original_base64)] = list(payload.reasons)
    for record in await read_records(platform, Topic.DEADLETTER):
        headers = dict(record.headers or ())
        if headers.get("flowcase.dlq.original_topic", b"").decode() == platform.kafka.topic(
            Topic.INTAKE_SUBMISSIONS
        ):
            found[record.value or b""] = [headers.get("flowcase.dlq.error")]
    return found


async def read_records(platform, topic: Topic):
    return await platform.read(topic)
