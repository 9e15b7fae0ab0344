"""/diagnostics message of gar_node: state, model, backend, queue depths, counters, stage timings.

Level: OK normally; WARN when bad inputs, drops or stale frames occurred since the previous message;
ERROR when the node is not active.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from gar_ros.pipeline import Pipeline

#: counters whose increase makes the status WARN
WARN_COUNTERS = (
    "bad_images",
    "regions_rejected",
    "regions_unmatched",
    "frames_dropped",
    "frames_stale",
    "queries_invalid",
    "queries_busy",
    "errors",
    "describe_errors",
)


class Reporter:
    """Builds the DiagnosticArray of one node; remembers counters to detect new problems."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._previous: dict[str, int] = {}

    def build(self, pipeline: Pipeline | None, *, model: str, backend: str, active: bool,
              image_converter: str) -> DiagnosticArray:
        return _build(self, pipeline, model=model, backend=backend, active=active,
                      image_converter=image_converter)


def _build(rep: Reporter, pipeline: Pipeline | None, *, model: str, backend: str, active: bool,
           image_converter: str) -> DiagnosticArray:
    name = rep.name
    if pipeline is None:
        status = DiagnosticStatus(level=DiagnosticStatus.ERROR, name=f"{name}: pipeline",
                                  message="not configured", hardware_id=model)
        return DiagnosticArray(status=[status])
    snap = pipeline.snapshot()
    values = [
        KeyValue(key="active", value=str(active).lower()),
        KeyValue(key="model", value=model),
        KeyValue(key="backend", value=backend),
        KeyValue(key="image_converter", value=image_converter),
        KeyValue(key="worker_busy", value=str(pipeline.busy).lower()),
    ]
    for key, depth in pipeline.queue_depths().items():
        values.append(KeyValue(key=f"queue_{key}", value=str(depth)))
    for key in sorted(snap.counters):
        values.append(KeyValue(key=key, value=str(snap.counters[key])))
    for stage in sorted(snap.stages):
        s = snap.stages[stage]
        values.append(KeyValue(key=f"{stage}_ms_mean", value=f"{s.mean * 1e3:.2f}"))
        values.append(KeyValue(key=f"{stage}_ms_p95", value=f"{s.p95 * 1e3:.2f}"))
    if snap.problems:
        values.append(KeyValue(key="last_problem", value=snap.problems[-1]))
    grew = [k for k in WARN_COUNTERS if snap.counters.get(k, 0) > rep._previous.get(k, 0)]
    rep._previous = dict(snap.counters)
    if not active:
        level, message = DiagnosticStatus.ERROR, "not active"
    elif grew:
        level, message = DiagnosticStatus.WARN, "since last report: " + ", ".join(grew)
    else:
        level, message = DiagnosticStatus.OK, "ok"
    status = DiagnosticStatus(level=level, name=f"{name}: pipeline", message=message,
                              hardware_id=model, values=values)
    return DiagnosticArray(status=[status])
