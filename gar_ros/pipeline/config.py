"""Pipeline settings (the node's parameters of the same names; seconds unless stated)."""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class PipelineConfig:
    #: frames and region sets join when their stamps differ by at most this (0 = exact).
    sync_tolerance: float = 0.0
    #: re-describe a track after this long (0 = describe each track once).
    redescribe_period: float = 10.0
    #: describe at most this many regions of one frame.
    max_regions_per_frame: int = 8
    #: generation budget of descriptions and (default) of answers.
    max_new_tokens: int = 48
    query_max_new_tokens: int = 64
    #: a frame older than this (since receipt) when the worker gets to it is dropped (0 = no limit).
    max_frame_age: float = 1.0
    #: queries waiting beyond this many are answered BUSY.
    query_queue_size: int = 8
    #: frames kept waiting for their regions; joined frames kept for queries.
    frame_buffer: int = 15
    history: int = 5
    #: region sets wait this long for their frame before counted unmatched.
    pending_timeout: float = 2.0
    #: longer questions are INVALID.
    max_question_chars: int = 2000
    #: regions per model call; queries run between chunks of a frame's descriptions.
    describe_chunk: int = 4
    #: forget tracks not seen for this long.
    track_expiry: float = 60.0
    #: recent frames used as context per region (0 = single image).
    context_frames: int = 0
    #: keyframes are spread over this many seconds of the track's past.
    context_window: float = 2.0
    #: video context: frames kept in the history (count and seconds).
    history_frames: int = 32
    history_age: float = 10.0
    #: video context: regions without (or with contradicting) ids join a track above this IoU.
    track_iou_threshold: float = 0.3
    #: ground natural-language questions with gar_ros.query when installed (else: ids only).
    query_grounding: bool = True

    def update(self, **values: object) -> list[str]:
        """Set known fields (converted to their type); returns the names that changed."""
        changed = []
        types = {f.name: f.type for f in fields(self)}
        for name, value in values.items():
            if name not in types:
                continue
            kind = {"int": int, "bool": bool, "str": str}.get(str(types[name]), float)
            new = kind(value)  # type: ignore[arg-type]
            if getattr(self, name) != new:
                setattr(self, name, new)
                changed.append(name)
        return changed
