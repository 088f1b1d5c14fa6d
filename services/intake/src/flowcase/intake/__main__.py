"""`python -m flowcase.intake`: the intake service, configured from the environment."""

from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.intake.composition import build_service
from flowcase.intake.settings import IntakeSettings
from flowcase.runtime import run_service, starting

kafka, database = KafkaSettings(), DatabaseSettings()
run_service(
    "flowcase-intake",
    lambda http: build_service(kafka=kafka, database=database, http=http, intake=IntakeSettings()),
    needs=[starting.postgresql(database), starting.kafka(kafka)],
)
