"""What every Flowcase service runs on."""

from flowcase.runtime.app import create_app
from flowcase.runtime.health import ReadinessCheck
from flowcase.runtime.problems import FieldError, Problem, ProblemError
from flowcase.runtime.runner import serve
from flowcase.runtime.settings import HttpSettings

__all__ = [
    "FieldError",
    "HttpSettings",
    "Problem",
    "ProblemError",
    "ReadinessCheck",
    "create_app",
    "serve",
]
