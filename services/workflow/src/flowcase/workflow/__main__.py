"""`python -m flowcase.workflow`: the workflow API and its workers, until SIGTERM."""

from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime import run_service
from flowcase.workflow.composition import build_service
from flowcase.workflow.settings import WorkflowSettings

run_service(
    "flowcase-workflow",
    lambda http: build_service(KafkaSettings(), DatabaseSettings(), WorkflowSettings(), http),
)
