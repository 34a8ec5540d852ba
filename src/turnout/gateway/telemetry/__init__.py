"""Observability: stage timings, the per-request log line and record, Prometheus metrics,
OpenTelemetry traces, feedback, sampled judging and the dashboard."""

from ._dashboard_data import dashboard_data
from ._judging import Judging
from ._metrics import Metrics
from ._observation import Observation
from ._recorder import RequestRecorder
from ._stages import Stages
from ._telemetry import Telemetry
from ._tracing import Tracing, usage_attributes

__all__ = [
    "Judging",
    "Metrics",
    "Observation",
    "RequestRecorder",
    "Stages",
    "Telemetry",
    "Tracing",
    "dashboard_data",
    "usage_attributes",
]
