"""`python -m flowcase.workflow`: the workflow API and its workers, until SIGTERM."""

from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime import run_service, starting
from flowcase.workflow.composition import build_service
from flowcase.workflow.settings import WorkflowSettings

kafka, database = KafkaSettings(), DatabaseSettings()
run_service(
    "flowcase-workflow",
    lambda http: build_service(kafka, database, WorkflowSettings(), http),
    needs=[starting.postgresql(database), starting.kafka(kafka)],
)
