"""The node's parameters: name, default, description, range, read-only (one table, one place).

Pipeline parameters (``PIPELINE``) can change at run time; the others are read-only (topics, QoS
and the model are fixed once the node is configured).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    name: str
    default: object
    description: str
    read_only: bool = False
    low: float | None = None
    high: float | None = None
    step: float | None = None


PARAMS: tuple[Param, ...] = (
    Param("model_path", "", "GAR checkpoint directory; empty = the embedded tiny model", True),
    Param("backend", "torch", "inference backend: torch, onnxruntime or tensorrt", True),
    Param("device", "cpu", "torch device (cpu, cuda, cuda:0)", True),
    Param("dtype", "", "model dtype (float32, float16, bfloat16); empty = the backend's default", True),
    Param("autostart", True, "configure and activate at start", True),
    Param("image_topic", "image", "sensor_msgs/Image input (image_topic + '/compressed' when use_compressed)", True),
    Param("regions_topic", "regions", "gar_ros/RegionArray input", True),
    Param("use_compressed", False, "subscribe to sensor_msgs/CompressedImage at '<image_topic>/compressed'", True),
    Param("use_detections", False, "also take vision_msgs/Detection2DArray as regions (when installed)", True),
    Param("detections_topic", "detections", "vision_msgs/Detection2DArray input", True),
    Param("input_reliability", "best_effort", "QoS reliability of image/region inputs: best_effort or reliable", True),
    Param("input_depth", 5, "QoS history depth of image/region inputs", True, 1, 100, 1),
    Param("sync_tolerance", 0.0, "frames and regions join when their stamps differ by at most this (s)", False, 0.0, 1.0),
    Param("redescribe_period", 10.0, "re-describe a track after this long (s); 0 = once per track", False, 0.0, 3600.0),
    Param("max_regions_per_frame", 8, "describe at most this many regions per frame", False, 0, 64, 1),
    Param("max_new_tokens", 48, "generation budget of a description", False, 1, 1024, 1),
    Param("query_max_new_tokens", 64, "default generation budget of an answer", False, 1, 1024, 1),
    Param("max_frame_age", 1.0, "skip frames older than this when the worker gets to them (s); 0 = no limit", False, 0.0, 60.0),
    Param("query_queue_size", 8, "queries waiting beyond this many are answered BUSY", False, 0, 1000, 1),
    Param("frame_buffer", 15, "frames kept while waiting for their regions", True, 1, 300, 1),
    Param("max_question_chars", 2000, "longer questions are INVALID", False, 1, 100000, 1),
    Param("describe_chunk", 4, "regions per model call (queries run between chunks)", False, 1, 64, 1),
    Param("context_frames", 0, "recent frames used as context per region (0 = single image; at most the model's 5 crop slots)", False, 0, 5, 1),
    Param("context_window", 2.0, "keyframes are spread over this many seconds of a track's past", False, 0.0, 60.0),
    Param("history_frames", 32, "video context: frames kept in the history", False, 1, 1000, 1),
    Param("history_age", 10.0, "video context: frames older than this are dropped (s)", False, 0.1, 3600.0),
    Param("track_iou_threshold", 0.3, "video context: regions without ids join a track above this mask/box IoU", False, 0.0, 1.0),
    Param("query_grounding", True, "ground natural-language questions (\"the cup left of the box\") to regions", False),
    Param("service_timeout", 60.0, "the ~/ask service answers ERROR after this long (s)", False, 0.1, 3600.0),
    Param("diagnostics_period", 1.0, "seconds between /diagnostics messages", True, 0.1, 60.0),
    Param("debug_text_chars", 60, "characters of description drawn per region on ~/debug_image", False, 0, 500, 1),
    Param("log_throttle", 5.0, "seconds between repeated warnings of one kind", False, 0.0, 3600.0),
)

#: Parameters that map one-to-one onto PipelineConfig fields.
PIPELINE: tuple[str, ...] = (
    "sync_tolerance",
    "redescribe_period",
    "max_regions_per_frame",
    "max_new_tokens",
    "query_max_new_tokens",
    "max_frame_age",
    "query_queue_size",
    "frame_buffer",
    "max_question_chars",
    "describe_chunk",
    "context_frames",
    "context_window",
    "history_frames",
    "history_age",
    "track_iou_threshold",
    "query_grounding",
)


def descriptor(p: Param):
    """rcl_interfaces ParameterDescriptor for one parameter (ranges for ints and doubles)."""
    from rcl_interfaces.msg import (
        FloatingPointRange,
        IntegerRange,
        ParameterDescriptor,
        ParameterType,
    )

    kinds = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    d = ParameterDescriptor(
        name=p.name, type=kinds[type(p.default)], description=p.description, read_only=p.read_only
    )
    if p.low is not None and isinstance(p.default, bool) is False:
        if isinstance(p.default, int):
            d.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=int(p.step or 1))]
        elif isinstance(p.default, float):
            d.floating_point_range = [FloatingPointRange(from_value=float(p.low), to_value=float(p.high), step=0.0)]
    return d
