"""`python -m flowcase.intake`: the intake service, configured from the environment."""

from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.intake.composition import build_service
from flowcase.intake.settings import IntakeSettings
from flowcase.runtime import run_service

run_service(
    "flowcase-intake",
    lambda http: build_service(
        kafka=KafkaSettings(), database=DatabaseSettings(), http=http, intake=IntakeSettings()
    ),
)
