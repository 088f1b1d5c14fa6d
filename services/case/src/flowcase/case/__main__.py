"""`python -m flowcase.case`: the case service, configured from the environment."""

from flowcase.case.composition import build_service
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime import run_service, starting

kafka, database = KafkaSettings(), DatabaseSettings()
run_service(
    "flowcase-case",
    lambda http: build_service(kafka=kafka, database=database, http=http),
    needs=[starting.postgresql(database), starting.kafka(kafka)],
)
