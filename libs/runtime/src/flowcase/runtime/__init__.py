"""What every Flowcase service runs on."""

from flowcase.runtime.app import create_app
from flowcase.runtime.health import ReadinessCheck
from flowcase.runtime.probes import KafkaProbe, PostgresProbe
from flowcase.runtime.problems import FieldError, Problem, ProblemError
from flowcase.runtime.runner import run_service, serve, workers_running
from flowcase.runtime.settings import HttpSettings

__all__ = [
    "FieldError",
    "HttpSettings",
    "KafkaProbe",
    "PostgresProbe",
    "Problem",
    "ProblemError",
    "ReadinessCheck",
    "create_app",
    "run_service",
    "serve",
    "workers_running",
]
