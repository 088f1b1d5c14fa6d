"""JSON Schema for every event and the submission, and the AsyncAPI 3.0 document of all topics.

Both are generated from the catalogue, so the published contract cannot drift from the code.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from flowcase.events.catalogue.base import REGISTRY, EventPayload, examples_of
from flowcase.events.catalogue.intake import Submission
from flowcase.events.envelope import Envelope
from flowcase.events.kafka.consumer import DeadLetterHeader
from flowcase.events.kafka.producer import EVENT_TYPE_HEADER
from flowcase.events.topics import TOPIC_SPECS, Topic

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
CONTRACT_VERSION = "1.0.0"


def _schema_with_defs(
    model: type[BaseModel], ref_prefix: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = model.model_json_schema(ref_template=ref_prefix + "{model}")
    defs = schema.pop("$defs", {})
    return schema, defs


def event_json_schema(event_type: str, *, ref_prefix: str = "#/$defs/") -> dict[str, Any]:
    """The whole envelope of one event type, its payload schema in place."""
    model = REGISTRY[event_type]
    envelope, defs = _schema_with_defs(Envelope, ref_prefix)
    defs.pop(EventPayload.__name__, None)
    payload, payload_defs = _schema_with_defs(model, ref_prefix)
    defs.update(payload_defs)
    envelope["title"] = event_type
    envelope["description"] = (model.__doc__ or event_type).strip().splitlines()[0]
    envelope["properties"]["event_type"] = {"const": event_type, "type": "string"}
    envelope["properties"]["schema_version"] = {
        "type": "integer",
        "minimum": 1,
        "maximum": model.schema_version,
    }
    envelope["properties"]["payload"] = payload
    if ref_prefix == "#/$defs/":
        envelope = {"$schema": JSON_SCHEMA_DIALECT, **envelope}
        if defs:
            envelope["$defs"] = defs
        return envelope
    envelope["x-defs"] = defs  # hoisted by the caller
    return envelope


def submission_json_schema() -> dict[str, Any]:
    return {"$schema": JSON_SCHEMA_DIALECT, **Submission.model_json_schema()}


def all_json_schemas() -> dict[str, dict[str, Any]]:
    """File name → schema, as `flowcase events schemas` writes them."""
    schemas = {f"{t}.json": event_json_schema(t) for t in sorted(REGISTRY)}
    schemas["intake.Submission.json"] = submission_json_schema()
    return schemas


def _channel_id(topic: Topic) -> str:
    return "".join(part.capitalize() if i else part for i, part in enumerate(topic.split(".")[1:]))


def asyncapi_document() -> dict[str, Any]:
    components_schemas: dict[str, Any] = {}
    components_messages: dict[str, Any] = {}
    prefix = "#/components/schemas/"

    def event_message(event_type: str) -> dict[str, Any]:
        model = REGISTRY[event_type]
        schema = event_json_schema(event_type, ref_prefix=prefix)
        components_schemas.update(schema.pop("x-defs"))
        components_schemas[event_type] = schema
        examples = examples_of(model)
        return {
            "name": event_type,
            "title": event_type,
            "summary": schema["description"],
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {
                    EVENT_TYPE_HEADER: {"type": "string", "const": event_type},
                    "traceparent": {"type": "string", "description": "W3C trace context"},
                    "tracestate": {"type": "string"},
                },
            },
            "correlationId": {
                "description": "The journey of one request",
                "location": "$message.payload#/request_id",
            },
            "payload": {"$ref": prefix + event_type},
            "examples": [
                {"name": f"example{i + 1}", "payload": {"payload": ex}}
                for i, ex in enumerate(examples)
            ],
        }

    for event_type in sorted(REGISTRY):
        components_messages[event_type] = event_message(event_type)

    submission, submission_defs = _schema_with_defs(Submission, prefix)
    components_schemas.update(submission_defs)
    components_schemas["intake.Submission"] = submission
    components_messages["intake.Submission"] = {
        "name": "intake.Submission",
        "title": "A raw submission from an upstream system",
        "contentType": "application/json",
        "payload": {"$ref": prefix + "intake.Submission"},
    }
    components_messages["deadletter.Record"] = {
        "name": "deadletter.Record",
        "title": "A message a consumer could not process, byte for byte",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": [h.value for h in DeadLetterHeader],
            "properties": {h.value: {"type": "string"} for h in DeadLetterHeader},
        },
        "payload": {"description": "The original message value, unchanged."},
    }

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in TOPIC_SPECS:
        channel_id = _channel_id(spec.topic)
        if spec.topic == Topic.INTAKE_SUBMISSIONS:
            names = ["intake.Submission"]
        elif spec.topic == Topic.DEADLETTER:
            names = ["deadletter.Record"]
        else:
            names = sorted(t for t, m in REGISTRY.items() if m.topic == spec.topic)
        channels[channel_id] = {
            "address": spec.topic.value,
            "description": spec.description,
            "messages": {
                n.replace(".", "_"): {"$ref": f"#/components/messages/{n}"} for n in names
            },
            "bindings": {
                "kafka": {
                    "topicConfiguration": {
                        "cleanup.policy": ["compact"] if spec.compacted else ["delete"]
                    },
                    "bindingVersion": "0.5.0",
                }
            },
        }
        operations[f"publish{channel_id[0].upper()}{channel_id[1:]}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{n.replace('.', '_')}"} for n in names
            ],
        }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Flowcase events",
            "version": CONTRACT_VERSION,
            "description": (
                "Every Kafka topic of Flowcase and the events on it. Each event travels in one "
                "envelope, keyed by its entity id; W3C trace context rides in headers."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {k: _rewrite_refs(v, prefix) for k, v in components_schemas.items()},
            "messages": components_messages,
        },
    }


def _rewrite_refs(schema: Any, prefix: str) -> Any:
    """Sub-model refs generated with `#/$defs/` point into components instead."""
    if isinstance(schema, dict):
        return {
            k: (
                v.replace("#/$defs/", prefix)
                if k == "$ref" and isinstance(v, str)
                else _rewrite_refs(v, prefix)
            )
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_rewrite_refs(v, prefix) for v in schema]
    return copy.deepcopy(schema)
