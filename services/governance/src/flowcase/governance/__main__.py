"""`python -m flowcase.governance`: the metrics API, the dashboard and the projection worker."""

from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.governance.composition import build_service
from flowcase.runtime import run_service, starting

kafka, database = KafkaSettings(), DatabaseSettings()
run_service(
    "flowcase-governance",
    lambda http: build_service(kafka, database, http),
    needs=[starting.postgresql(database), starting.kafka(kafka)],
)
