"""Region tracks across frames: detector ids when they are trustworthy, IoU association otherwise.

:class:`RegionTracker.update` takes one frame's regions and returns, per region, a stable *track id*.

Association (per frame):

1. Id pass (``use_ids`` = ``"auto"`` or ``"always"``): a region whose detector id is known to a live
   track joins it. In ``"auto"`` mode the id is overruled only when the evidence says the
   detector swapped ids: the region overlaps its own track's predicted region by less than
   ``iou_threshold`` while another live track, not claimed by its own id this frame, overlaps it
   by at least ``iou_threshold``. Such regions go to the IoU pass. ``"always"`` never overrules.
2. IoU pass: the remaining regions (no id, an unknown id, or an overruled id) and the live tracks
   not matched in step 1 are paired by an optimal assignment (``scipy.optimize.linear_sum_assignment``)
   on cost ``1 - IoU``; pairs below ``iou_threshold`` are rejected. IoU is mask IoU when both
   sides have a mask (exact, on the overlap of the mask crops), box IoU otherwise (pycocotools).
   The track side is *predicted*: its last box/mask shifted by its constant-velocity estimate
   (box centre motion between its last two sightings) times the time since it was last seen, so
   crossing objects keep their tracks.
   A matched detector id becomes an alias of the track (later frames match it in the id pass).
3. Leftover regions start new tracks. The track id is the detector id when it is free, else
   ``"<id>#<n>"``; regions without id get ``"track<n>"``. ``use_ids="never"`` ignores ids entirely.

Tracks unseen for more than ``expiry_ns`` are dropped; an object that disappears and comes back
within the expiry (same id, or overlapping its predicted place) resumes its old track.
Boxes are (x1, y1, x2, y2) pixels, x2/y2 exclusive; masks (H, W) bool; stamps int ns.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from gar_ros.errors import InputError, RegionError
from gar_ros.types import Box, Region

NS_PER_S = 1_000_000_000


def region_box(region: Region) -> Box:
    """The region's box; from the mask's extent when ``box`` is None (x2/y2 exclusive)."""
    if region.box is not None:
        try:
            box = tuple(float(v) for v in region.box)
        except (TypeError, ValueError) as err:
            raise RegionError(f"region {region.id!r} has a malformed box {region.box!r}") from err
        if len(box) != 4 or not all(np.isfinite(box)):
            raise RegionError(f"region {region.id!r} has a malformed or non-finite box {region.box!r}")
        return box  # type: ignore[return-value]
    if region.mask is None:
        raise RegionError(f"region {region.id!r} has neither a box nor a mask")
    mask = np.asarray(region.mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise RegionError(f"region {region.id!r} has an empty mask")
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def _xywh(box: Box) -> list[float]:
    x1, y1, x2, y2 = box
    return [x1, y1, max(0.0, x2 - x1), max(0.0, y2 - y1)]


@dataclass(frozen=True)
class CropMask:
    """A mask stored as its bounding crop: ``bits`` (h, w) bool placed at pixel (x0, y0)."""

    x0: int
    y0: int
    bits: np.ndarray
    area: int

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> "CropMask":
        mask = np.asarray(mask, dtype=bool)
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            raise RegionError("empty mask")
        bits = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()
        return cls(int(cols[0]), int(rows[0]), bits, int(np.count_nonzero(bits)))

    def shifted(self, dx: float, dy: float) -> "CropMask":
        return CropMask(self.x0 + int(round(dx)), self.y0 + int(round(dy)), self.bits, self.area)

    def iou(self, other: "CropMask") -> float:
        """Exact mask IoU, computed on the overlap of the two crops only."""
        x0, y0 = max(self.x0, other.x0), max(self.y0, other.y0)
        x1 = min(self.x0 + self.bits.shape[1], other.x0 + other.bits.shape[1])
        y1 = min(self.y0 + self.bits.shape[0], other.y0 + other.bits.shape[0])
        inter = 0
        if x1 > x0 and y1 > y0:
            a = self.bits[y0 - self.y0 : y1 - self.y0, x0 - self.x0 : x1 - self.x0]
            b = other.bits[y0 - other.y0 : y1 - other.y0, x0 - other.x0 : x1 - other.x0]
            inter = int(np.count_nonzero(a & b))
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


def _crop(mask: "np.ndarray | CropMask | None") -> "CropMask | None":
    if mask is None or isinstance(mask, CropMask):
        return mask
    return CropMask.from_mask(mask)


@dataclass
class TrackerConfig:
    """Association parameters.

    ``iou_threshold``: minimum IoU for a match; ``expiry_ns``: a track unseen this long is dropped;
    ``use_ids``: "auto" (detector ids unless they contradict the overlaps), "always", "never";
    ``predict_motion``: shift tracks by their constant-velocity estimate before matching.
    """

    iou_threshold: float = 0.3
    expiry_ns: int = 2 * NS_PER_S
    use_ids: str = "auto"
    predict_motion: bool = True

    def __post_init__(self) -> None:
        if self.use_ids not in ("auto", "always", "never"):
            raise InputError(f"use_ids must be auto, always or never, got {self.use_ids!r}")
        if not 0.0 < self.iou_threshold <= 1.0:
            raise InputError(f"iou_threshold must be in (0, 1], got {self.iou_threshold}")
        if self.expiry_ns < 0:
            raise InputError("expiry_ns must be >= 0")


@dataclass
class Track:
    """One tracked object: its last sighting and motion estimate (pixels per ns)."""

    id: str
    first_stamp: int
    last_stamp: int
    box: Box
    mask: CropMask | None
    aliases: set[str] = field(default_factory=set)
    velocity: tuple[float, float] = (0.0, 0.0)
    hits: int = 1

    def predicted(self, stamp: int, use_motion: bool) -> tuple[Box, CropMask | None]:
        if not use_motion:
            return self.box, self.mask
        dt = stamp - self.last_stamp
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        x1, y1, x2, y2 = self.box
        box = (x1 + dx, y1 + dy, x2 + dx, y2 + dy)
        mask = None if self.mask is None else self.mask.shifted(dx, dy)
        return box, mask

    def observe(self, stamp: int, box: Box, mask: CropMask | None) -> None:
        dt = stamp - self.last_stamp
        if dt > 0:
            cx0, cy0 = (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2
            cx1, cy1 = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            self.velocity = ((cx1 - cx0) / dt, (cy1 - cy0) / dt)
        self.last_stamp = max(self.last_stamp, stamp)
        self.box = box
        self.mask = mask
        self.hits += 1


def pairwise_iou(
    boxes_a: Sequence[Box],
    masks_a: Sequence[np.ndarray | CropMask | None],
    boxes_b: Sequence[Box],
    masks_b: Sequence[np.ndarray | CropMask | None],
) -> np.ndarray:
    """(len(a), len(b)) IoU: mask IoU where both masks exist, else box IoU (pycocotools).

    Mask IoU runs only for pairs whose boxes overlap, on the overlap of the two mask crops.
    """
    n, m = len(boxes_a), len(boxes_b)
    out = np.zeros((n, m), dtype=np.float64)
    if n == 0 or m == 0:
        return out
    box_iou = np.asarray(
        mask_utils.iou([_xywh(b) for b in boxes_a], [_xywh(b) for b in boxes_b], [0] * m),
        dtype=np.float64,
    ).reshape(n, m)
    out[:] = box_iou
    crops_a = [_crop(mk) for mk in masks_a]
    crops_b = [_crop(mk) for mk in masks_b]
    for i, j in zip(*np.nonzero(box_iou > 0)):
        ca, cb = crops_a[i], crops_b[j]
        if ca is not None and cb is not None:
            out[i, j] = ca.iou(cb)
    return out


class RegionTracker:
    """Assigns stable track ids to the regions of consecutive frames (see module docstring)."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: dict[str, Track] = {}
        self._counter = itertools.count(1)
        self.last_stamp: int | None = None

    def reset(self) -> None:
        self.tracks.clear()
        self.last_stamp = None

    def track_for_alias(self, detector_id: str) -> str | None:
        """The live track that detector id ``detector_id`` currently maps to, if any."""
        for track in self.tracks.values():
            if detector_id in track.aliases:
                return track.id
        return None

    def update(self, stamp: int, regions: Sequence[Region]) -> list[str]:
        """Associate one frame's regions; returns the track id of each region, in input order.

        Raises :class:`RegionError` for duplicate non-empty region ids or regions without geometry.
        """
        cfg = self.config
        stamp = int(stamp)
        ids = [r.id for r in regions]
        named = [i for i in ids if i]
        if len(named) != len(set(named)):
            raise RegionError("duplicate region ids in one frame")
        self._expire(stamp)
        boxes = [region_box(r) for r in regions]
        masks = [None if r.mask is None else CropMask.from_mask(r.mask) for r in regions]
        result: list[str | None] = [None] * len(regions)
        live = list(self.tracks.values())
        pred = [t.predicted(stamp, cfg.predict_motion) for t in live]
        iou = pairwise_iou([p[0] for p in pred], [p[1] for p in pred], boxes, masks)
        claimed: set[int] = set()  # track indices taken

        # 1. id pass
        if cfg.use_ids != "never":
            alias_to_track = {a: ti for ti, t in enumerate(live) for a in t.aliases}
            by_id = {ri: alias_to_track[rid] for ri, rid in enumerate(ids) if rid in alias_to_track}
            own_region = {ti: ri for ri, ti in by_id.items()}

            def own_ok(tj: int) -> bool:
                rj = own_region.get(tj)
                return rj is not None and iou[tj, rj] >= cfg.iou_threshold

            for ri, ti in sorted(by_id.items(), key=lambda kv: -iou[kv[1], kv[0]]):
                if ti in claimed:
                    continue
                if cfg.use_ids == "auto" and iou[ti, ri] < cfg.iou_threshold:
                    rivals = [
                        tj
                        for tj in range(len(live))
                        if tj != ti and iou[tj, ri] >= cfg.iou_threshold and not own_ok(tj)
                    ]
                    if rivals:
                        continue  # the id contradicts the overlaps: leave it to the IoU pass
                result[ri] = live[ti].id
                claimed.add(ti)
        # 2. IoU pass
        rest_r = [ri for ri in range(len(regions)) if result[ri] is None]
        rest_t = [ti for ti in range(len(live)) if ti not in claimed]
        if rest_r and rest_t:
            sub = iou[np.ix_(rest_t, rest_r)]
            rows, cols = linear_sum_assignment(1.0 - sub)
            for r, c in zip(rows, cols):
                if sub[r, c] >= cfg.iou_threshold:
                    result[rest_r[c]] = live[rest_t[r]].id
                    claimed.add(rest_t[r])
        # 3. new tracks
        for ri, rid in enumerate(ids):
            if result[ri] is None:
                result[ri] = self._new_track_id(rid if cfg.use_ids != "never" else "")
                self.tracks[result[ri]] = Track(
                    id=result[ri], first_stamp=stamp, last_stamp=stamp, box=boxes[ri], mask=masks[ri]
                )
            else:
                self.tracks[result[ri]].observe(stamp, boxes[ri], masks[ri])
            if rid and cfg.use_ids != "never":
                for track in self.tracks.values():  # an id names one track at a time
                    track.aliases.discard(rid)
                self.tracks[result[ri]].aliases = {rid}  # the latest detector id only
        self.last_stamp = stamp if self.last_stamp is None else max(self.last_stamp, stamp)
        return [str(t) for t in result]

    def _new_track_id(self, detector_id: str) -> str:
        if detector_id and detector_id not in self.tracks:
            return detector_id
        base = detector_id or "track"
        sep = "#" if detector_id else ""
        while True:
            candidate = f"{base}{sep}{next(self._counter)}"
            if candidate not in self.tracks:
                return candidate

    def _expire(self, stamp: int) -> None:
        expiry = self.config.expiry_ns
        for tid in [t.id for t in self.tracks.values() if stamp - t.last_stamp > expiry]:
            del self.tracks[tid]
