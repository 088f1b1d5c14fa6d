"""Trace context from Kafka headers, without servers."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import baggage

from flowcase.events.tracing import REQUEST_ID, extract_trace_context


def test_a_malformed_baggage_header_is_logged_once_bounded_and_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hostile = ",".join(f"bad member {n}\r\nX-Injected: yes" for n in range(150))
    headers = [("baggage", (hostile + f",{REQUEST_ID}=r-1").encode("latin-1"))]
    caplog.set_level(logging.DEBUG)
    context = extract_trace_context(headers)
    assert baggage.get_baggage(REQUEST_ID, context) == "r-1"  # the usable member still counts
    [record] = caplog.records
    assert record.name == "flowcase.events.tracing"
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("ignored 150 unusable parts of a record's baggage header")
    assert "\r" not in message
    assert "\n" not in message
    assert len(message) < 320
