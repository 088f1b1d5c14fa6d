"""`python -m flowcase.governance`: the metrics API, the dashboard and the projection worker."""

from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.governance.composition import build_service
from flowcase.runtime import run_service

run_service(
    "flowcase-governance", lambda http: build_service(KafkaSettings(), DatabaseSettings(), http)
)
