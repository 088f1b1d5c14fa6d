"""Every Kafka topic of Flowcase, in one place.

Services name topics only through `Topic`; the launcher, docker-compose init and the AsyncAPI
export create or describe exactly this list.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Topic(StrEnum):
    INTAKE_SUBMISSIONS = "flowcase.intake.submissions"
    INTAKE_REQUESTS = "flowcase.intake.requests"
    INTAKE_REJECTED = "flowcase.intake.rejected"
    WORKFLOW_DEFINITIONS = "flowcase.workflow.definitions"
    WORKFLOW_EVENTS = "flowcase.workflow.events"
    CASE_EVENTS = "flowcase.case.events"
    CASE_CHAIN_HEADS = "flowcase.case.chain-heads"
    DEADLETTER = "flowcase.deadletter"


@dataclass(frozen=True)
class TopicSpec:
    topic: Topic
    description: str
    # Compacted topics keep the latest record per key forever (definitions and chain heads are
    # state, not history).
    compacted: bool = False
    # Raw topics carry upstream JSON that is not (yet) a Flowcase envelope.
    raw: bool = False


TOPIC_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec(
        Topic.INTAKE_SUBMISSIONS,
        "Raw submissions published by upstream systems (JSON, the Submission schema), keyed by "
        "submission id. Intake validates each one.",
        raw=True,
    ),
    TopicSpec(Topic.INTAKE_REQUESTS, "Accepted requests, keyed by request id."),
    TopicSpec(
        Topic.INTAKE_REJECTED,
        "Submissions that failed validation, with the original bytes and every reason.",
    ),
    TopicSpec(
        Topic.WORKFLOW_DEFINITIONS,
        "The latest version of each process definition and its request-type schema, keyed by "
        "request type.",
        compacted=True,
    ),
    TopicSpec(Topic.WORKFLOW_EVENTS, "Workflow instance events, keyed by request id."),
    TopicSpec(Topic.CASE_EVENTS, "Case events, keyed by case id."),
    TopicSpec(
        Topic.CASE_CHAIN_HEADS,
        "The latest anchored head of each case's audit chain, keyed by case id: kept outside "
        "the case database, so a chain rewritten there no longer matches it.",
        compacted=True,
    ),
    TopicSpec(
        Topic.DEADLETTER,
        "Messages a consumer could not process, byte for byte, with the original topic, "
        "partition, offset and the reason in headers.",
        raw=True,
    ),
)
