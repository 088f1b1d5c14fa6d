"""`python -m flowcase.case`: the case service, configured from the environment."""

from flowcase.case.composition import build_service
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime import run_service

run_service(
    "flowcase-case",
    lambda http: build_service(kafka=KafkaSettings(), database=DatabaseSettings(), http=http),
)
