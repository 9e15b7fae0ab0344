"""Video-frame context for one camera stream: history + tracks + keyframes + cached frame features.

The pipeline feeds every joined frame to :meth:`FrameContext.add_frame` (regions keyed by the
detector's region ids, as in the RegionArray) and asks for descriptions or answers about regions of
one frame (the newest by default). With ``context_frames = K > 0`` the model sees, for the asked
regions, K keyframes (see :mod:`gar_ros.context.keyframes`) as a clip
(:mod:`gar_ros.model.video`); with ``K = 0`` it sees only the asked frame through the single-image
path (``model.describe`` / ``model.ask``), token for token as without context. K is capped at the
model's crop slots (``prompt_numbers``, 5 for GAR), with one warning.

Every frame's vision features are computed once and stored with the frame in the history (so they
are evicted with it and count towards its byte cap), then reused by later descriptions and queries
that pick the same keyframe. ``frames_encoded`` counts the frame encodings done by this context.

Times in :class:`ContextConfig` are seconds (as the node's parameters); stamps are int ns.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gar_ros.context.history import NS_PER_S, FrameHistory, FrameRecord
from gar_ros.context.keyframes import choose_keyframes
from gar_ros.context.tracks import RegionTracker, TrackerConfig
from gar_ros.errors import InputError, UnknownRegionError
from gar_ros.types import Answer, Region, RegionText

log = logging.getLogger(__name__)


def _ns(seconds: float) -> int:
    return int(round(float(seconds) * NS_PER_S))


@dataclass
class ContextConfig:
    """Parameters (node parameter names in brackets).

    ``context_frames`` [context_frames] K keyframes per clip, 0 = single image;
    ``context_window`` [context_window] seconds over which keyframes are spread;
    ``history_frames`` / ``history_age`` / ``history_bytes`` caps of the frame history;
    ``history_interval`` frames closer than this (s) are thinned out of the history, except the
    newest ``history_recent`` frames;
    ``keep_images`` keep raw images of encoded frames (False saves memory but then a frame can
    only serve region sets it was already encoded for);
    ``iou_threshold`` / ``track_expiry`` / ``use_ids`` see :class:`TrackerConfig`.
    """

    context_frames: int = 0
    context_window: float = 2.0
    history_frames: int = 32
    history_age: float = 10.0
    history_bytes: int = 256 * 1024 * 1024
    history_interval: float = 0.1
    history_recent: int = 8
    keep_images: bool = True
    iou_threshold: float = 0.3
    track_expiry: float = 2.0
    use_ids: str = "auto"

    def __post_init__(self) -> None:
        if self.context_frames < 0:
            raise InputError(f"context_frames must be >= 0, got {self.context_frames}")
        if self.context_window < 0:
            raise InputError(f"context_window must be >= 0, got {self.context_window}")

    def tracker_config(self) -> TrackerConfig:
        return TrackerConfig(
            iou_threshold=self.iou_threshold, expiry_ns=_ns(self.track_expiry), use_ids=self.use_ids
        )


@dataclass
class ClipFrame:
    """One frame of a clip as the video prompt needs it.

    ``stamp`` int ns; ``key`` frame key; ``image`` (H, W, 3) uint8 RGB or None when only cached
    features remain; ``size`` (H, W); ``regions`` the asked region ids visible in this frame
    (a region missing from the frame is absent from the dict); ``features`` the frame's cached
    encodings (encoding key -> tensor); ``store`` records a new encoding (history bookkeeping).
    """

    stamp: int
    key: str
    image: np.ndarray | None
    size: tuple[int, int]
    regions: dict[str, Region]
    features: Mapping[Hashable, Any] = field(default_factory=dict)
    store: Callable[[Hashable, Any], None] | None = None
    all_regions: dict[str, Region] = field(default_factory=dict)


class FrameContext:
    """History, tracker and keyframe choice for one stream (see module docstring)."""

    def __init__(self, config: ContextConfig | None = None) -> None:
        self.config = config or ContextConfig()
        cfg = self.config
        self.history = FrameHistory(
            max_frames=cfg.history_frames,
            max_age_ns=_ns(cfg.history_age),
            max_bytes=cfg.history_bytes,
            min_interval_ns=_ns(cfg.history_interval),
            keep_images=cfg.keep_images,
            keep_recent=cfg.history_recent,
        )
        self.tracker = RegionTracker(cfg.tracker_config())
        #: region id -> track id, per stored stamp
        self._ids: dict[int, dict[str, str]] = {}
        #: frame encodings computed through this context (each stored and reused)
        self.frames_encoded = 0
        self._warned = False
        #: guards history/tracker/ids (not held while the model generates)
        self._lock = threading.RLock()

    # -- input ----------------------------------------------------------------------------------
    def add_frame(
        self,
        stamp: int,
        image: np.ndarray,
        regions: Sequence[Region],
        frame_key: str | None = None,
    ) -> dict[str, str]:
        """Track the frame's regions and store the frame; returns region id -> track id.

        Regions without an id are stored under their track id (and returned under it).
        """
        with self._lock:
            track_ids = self.tracker.update(stamp, regions)
            by_track = {t: r for t, r in zip(track_ids, regions)}
            ids = {(r.id or t): t for t, r in zip(track_ids, regions)}
            self.history.add(stamp, image, by_track, frame_key=frame_key)
            self._ids[int(stamp)] = ids
            kept = set(self.history.stamps)
            for old in [s for s in self._ids if s not in kept]:
                del self._ids[old]
            return dict(ids)

    def clear(self) -> None:
        with self._lock:
            self.history.clear()
            self.tracker.reset()
            self._ids.clear()

    # -- clips ----------------------------------------------------------------------------------
    def _record(self, stamp: int | None) -> FrameRecord:
        record = self.history.newest if stamp is None or stamp == 0 else self.history.get(int(stamp))
        if record is None:
            raise InputError("no frame in the context" if stamp in (None, 0) else f"no frame at stamp {stamp}")
        return record

    def clip(
        self, region_ids: Sequence[str], stamp: int | None = None, k: int | None = None
    ) -> list[ClipFrame]:
        """Keyframes for ``region_ids`` (ids of the frame at ``stamp``, default newest), oldest first.

        With ``k = 0`` (default ``context_frames``) the list holds the asked frame only. Each
        frame's ``regions`` hold the asked ids visible in it (regions are followed by track).
        Raises :class:`UnknownRegionError` for ids the asked frame does not have.
        """
        k = self.config.context_frames if k is None else int(k)
        with self._lock:
            record = self._record(stamp)
            ids = self._ids.get(record.stamp, {})
            missing = [rid for rid in region_ids if rid not in ids]
            if missing:
                raise UnknownRegionError(missing)
            tracks = {rid: ids[rid] for rid in region_ids}
            frames = choose_keyframes(
                self.history, list(tracks.values()), k, _ns(self.config.context_window), until=record.stamp
            )
            return [self._clip_frame(rec, tracks) for rec in frames]

    def _clip_frame(self, rec: FrameRecord, tracks: Mapping[str, str]) -> ClipFrame:
        def store(key: Hashable, value: Any, stamp: int = rec.stamp) -> None:
            with self._lock:
                self.frames_encoded += 1
                self.history.put_features(stamp, key, value)

        ids = self._ids.get(rec.stamp, {})
        by_track_id = {t: rid for rid, t in ids.items()}
        return ClipFrame(
            stamp=rec.stamp,
            key=rec.key,
            image=rec.image,
            size=rec.size,
            regions={rid: rec.regions[t] for rid, t in tracks.items() if t in rec.regions},
            features=rec.features,
            store=store,
            all_regions={by_track_id.get(t, t): r for t, r in rec.regions.items()},
        )

    # -- model calls ----------------------------------------------------------------------------
    @staticmethod
    def _single_frame(clip: Sequence[Any]) -> Any:
        """The newest frame of ``clip`` for the single-image path (its image must still be kept)."""
        frame = clip[-1]
        if frame.image is None:
            raise InputError(f"the image of frame {frame.stamp} is no longer kept")
        return frame

    def _k(self, model: Any) -> int:
        """context_frames, capped at the model's crop slots (``prompt_numbers``, 5 for GAR)."""
        k = int(self.config.context_frames)
        limit = int(getattr(getattr(model, "config", None), "prompt_numbers", k) or k)
        if k > limit and not self._warned:
            self._warned = True
            log.warning("context_frames=%d exceeds the model's %d crop slots; using %d", k, limit, limit)
        return min(k, limit)

    def describe(
        self,
        model: Any,
        region_ids: Sequence[str],
        *,
        stamp: int | None = None,
        max_new_tokens: int = 64,
    ) -> list[RegionText]:
        """One description per region id; ``frame_stamps`` lists the frames used (newest last)."""
        from gar_ros.model.video import describe_clips

        k = self._k(model)
        if k == 0:
            record = self._record(stamp)
            frame = self._single_frame(self.clip(region_ids, stamp=record.stamp, k=0))
            texts = model.describe(
                frame.image,
                [frame.regions[rid] for rid in region_ids],
                max_new_tokens=max_new_tokens,
                frame_key=frame.key,
            )
            for text, rid in zip(texts, region_ids):
                text.region_id = rid
                text.frame_stamps = [frame.stamp]
            return texts
        requests = [(self.clip([rid], stamp=stamp, k=k), rid) for rid in region_ids]
        return describe_clips(model, requests, max_new_tokens=max_new_tokens)

    def ask(
        self,
        model: Any,
        region_ids: Sequence[str],
        question: str,
        *,
        stamp: int | None = None,
        max_new_tokens: int = 64,
        on_text: Callable[[str], bool] | None = None,
    ) -> Answer:
        """Answer ``question`` (``<Prompt i>`` = ``region_ids[i]``) over the context clip."""
        from gar_ros.model.video import ask_clip

        k = self._k(model)
        clip = self.clip(region_ids, stamp=stamp, k=k)
        if k == 0:
            frame = self._single_frame(clip)
            answer = model.ask(
                frame.image,
                [frame.regions[rid] for rid in region_ids],
                question,
                max_new_tokens=max_new_tokens,
                frame_key=frame.key,
                on_text=on_text,
            )
            answer.frame_stamp = frame.stamp
            return answer
        return ask_clip(model, clip, region_ids, question, max_new_tokens=max_new_tokens, on_text=on_text)
