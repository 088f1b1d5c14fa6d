"""Judging a submission (pure): accepted as a `Submission`, or refused with every reason.

One judgment serves both channels, so a submission refused over HTTP (422) is refused on the raw
topic (`intake.RequestRejected`) for the same reasons. Reasons name the offending field as a
dotted path (`payload.lines.0.amount`); an empty field means the whole body.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaViolation
from pydantic import ValidationError

from flowcase.events.boundary import read_json, unusable_values
from flowcase.events.catalogue.common import Reason
from flowcase.events.catalogue.intake import Submission
from flowcase.intake.request_types import RequestTypes


@dataclass(frozen=True)
class Accepted:
    submission: Submission


@dataclass(frozen=True)
class Refused:
    reasons: list[Reason]
    # What could be read of the submission, to label the rejection record.
    submission_id: str | None = None
    request_type: str | None = None


Judgment = Accepted | Refused


def judge_bytes(data: bytes, request_types: RequestTypes, *, max_bytes: int) -> Judgment:
    """Judge a submission as it arrived on the wire."""
    if len(data) > max_bytes:
        return Refused(
            [
                Reason(
                    field="",
                    reason=f"the submission is {len(data)} bytes, over the limit of "
                    f"{max_bytes} bytes",
                )
            ]
        )
    try:
        document = read_json(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Refused([Reason(field="", reason=f"not valid JSON: {exc}")])
    except RecursionError:
        return Refused([Reason(field="", reason="not valid JSON: nested too deeply")])
    if unusable := unusable_values(document):
        return Refused(
            [Reason(field=field, reason=reason) for field, reason in unusable], **_label(document)
        )
    return judge_document(document, request_types)


def _label(document: Any) -> dict[str, str | None]:
    """What a refused submission's record is labelled with, as far as it could be read."""
    if not isinstance(document, dict):
        return {}
    return {
        "submission_id": _text_or_none(document.get("submission_id")),
        "request_type": _text_or_none(document.get("request_type")),
    }


def judge_document(document: Any, request_types: RequestTypes) -> Judgment:
    """Judge a parsed submission: its envelope fields, then its payload against its type."""
    if not isinstance(document, dict):
        return Refused(
            [Reason(field="", reason=f"a submission is a JSON object, not {_json_kind(document)}")]
        )
    label = _label(document)
    reasons: list[Reason] = []
    submission: Submission | None = None
    try:
        submission = Submission.model_validate(document)
    except ValidationError as exc:
        reasons.extend(_model_reasons(exc))
    # The payload is checked even when other fields failed, so one answer lists every problem.
    request_type, payload = document.get("request_type"), document.get("payload")
    if (
        isinstance(request_type, str)
        and isinstance(payload, dict)
        and not any(r.field == "request_type" for r in reasons)
    ):
        reasons.extend(payload_reasons(request_type, payload, request_types))
    if reasons or submission is None:
        return Refused(reasons, **label)
    return Accepted(submission)


def payload_reasons(
    request_type: str, payload: dict[str, Any], request_types: RequestTypes
) -> list[Reason]:
    known = request_types.get(request_type)
    if known is None:
        published = ", ".join(t.name for t in request_types) or "none yet"
        return [
            Reason(
                field="request_type",
                reason=f"unknown request type {request_type!r} (published types: {published})",
            )
        ]
    return sorted(_schema_reasons(known.schema.errors(payload)), key=lambda r: r.field)


def _schema_reasons(violations: Iterable[SchemaViolation]) -> Iterable[Reason]:
    for violation in violations:
        path = ["payload", *(str(p) for p in violation.absolute_path)]
        if violation.validator == "required":
            # jsonschema reports a missing property at its parent; name the property itself.
            missing = [
                name
                for name in violation.validator_value
                if isinstance(violation.instance, dict)
                and name not in violation.instance
                and violation.message.startswith(repr(name))
            ]
            if missing:
                yield Reason(field=".".join([*path, missing[0]]), reason="Field required")
                continue
        yield Reason(field=".".join(path), reason=violation.message)


def _model_reasons(exc: ValidationError) -> Iterable[Reason]:
    for error in exc.errors():
        yield Reason(field=".".join(str(p) for p in error["loc"]), reason=error["msg"])


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json_kind(value: Any) -> str:
    match value:
        case list():
            return "an array"
        case str():
            return "a string"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case None:
            return "null"
    return type(value).__name__
