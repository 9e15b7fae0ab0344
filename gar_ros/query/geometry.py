"""Region geometry and spatial relations from boxes and masks.

Coordinates are image pixels, origin top-left, x right, y down; boxes ``(x1, y1, x2, y2)`` with
exclusive x2/y2, so boxes that share an edge (``a.x2 == b.x1``) touch with gap 0. Each relation
test returns ``None`` when it does not hold, else a score in pixels (lower = better example).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from gar_ros.errors import RegionError
from gar_ros.query.config import QueryConfig
from gar_ros.query.vocabulary import Order, Relation
from gar_ros.types import Region


@dataclass
class Shape:
    """Geometry of one region: box, optional mask, area (pixels), centroid, depth (metres)."""

    id: str
    x1: float
    y1: float
    x2: float
    y2: float
    area: float
    cx: float
    cy: float
    mask: np.ndarray | None = None
    depth: float | None = None

    @property
    def w(self) -> float:
        return self.x2 - self.x1

    @property
    def h(self) -> float:
        return self.y2 - self.y1

    @property
    def diag(self) -> float:
        return math.hypot(self.w, self.h)


def region_shape(region: Region, use_mask: bool = True, depth_image: np.ndarray | None = None
                 ) -> Shape:
    """Geometry of ``region`` (mask preferred for area/centroid); RegionError when unusable."""
    mask = region.mask if use_mask else None
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise RegionError(f"region {region.id}: mask must be (H, W), got shape {mask.shape}")
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            mask = None
    if region.box is not None:
        x1, y1, x2, y2 = (float(v) for v in region.box)
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
            raise RegionError(f"region {region.id}: invalid box {region.box}")
    elif mask is not None:
        x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
    else:
        raise RegionError(f"region {region.id} has neither a box nor a non-empty mask")
    if mask is not None:
        area = float(len(xs))
        cx, cy = float(xs.mean()) + 0.5, float(ys.mean()) + 0.5
        if region.box is not None:  # a mask refines the box when both are given
            x1, y1 = max(x1, float(xs.min())), max(y1, float(ys.min()))
            x2, y2 = min(x2, float(xs.max() + 1)), min(y2, float(ys.max() + 1))
            if x2 <= x1 or y2 <= y1:  # mask and box disagree: trust the mask
                x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
    else:
        area = (x2 - x1) * (y2 - y1)
        cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    depth = region.depth if region.depth is not None and math.isfinite(region.depth) and region.depth > 0 else None
    if depth is None and depth_image is not None:
        depth = _depth_from_image(depth_image, mask, (x1, y1, x2, y2))
    return Shape(region.id, x1, y1, x2, y2, area, cx, cy, mask, depth)


def _depth_from_image(depth_image: np.ndarray, mask: np.ndarray | None, box: tuple[float, ...]
                      ) -> float | None:
    """Median of valid (finite, > 0) depths inside the mask or box; metres (uint16 = millimetres)."""
    d = np.asarray(depth_image)
    scale = 0.001 if d.dtype == np.uint16 else 1.0
    if mask is not None and mask.shape == d.shape[:2]:
        values = d[mask]
    else:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        values = d[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)].ravel()
    values = values.astype(np.float64) * scale
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.median(values)) if len(values) else None


class Geometry:
    """Pairwise measurements over the shapes of one frame (mask gaps cached per pair)."""

    def __init__(self, shapes: dict[str, Shape], config: QueryConfig,
                 image_size: tuple[int, int] | None = None) -> None:
        self.shapes = shapes
        self.config = config
        self._gaps: dict[tuple[str, str], float] = {}
        if image_size is None:
            for s in shapes.values():
                if s.mask is not None:
                    image_size = (s.mask.shape[1], s.mask.shape[0])
                    break
        self.image_size = image_size  # (width, height) or None

    # ------------------------------------------------------------------ basic measures
    def gap(self, a: str, b: str) -> float:
        """Smallest distance in pixels between the two regions (0 when touching or overlapping)."""
        key = (a, b) if a <= b else (b, a)
        if key not in self._gaps:
            self._gaps[key] = self._gap(self.shapes[a], self.shapes[b])
        return self._gaps[key]

    def _gap(self, a: Shape, b: Shape) -> float:
        dx = max(0.0, b.x1 - a.x2, a.x1 - b.x2)
        dy = max(0.0, b.y1 - a.y2, a.y1 - b.y2)
        box_gap = math.hypot(dx, dy)
        if not self.config.use_masks or a.mask is None or b.mask is None or a.mask.shape != b.mask.shape:
            return box_gap
        # Exact mask-to-mask distance inside the union of the two boxes (both masks lie in it).
        x1, y1 = int(min(a.x1, b.x1)), int(min(a.y1, b.y1))
        x2, y2 = int(math.ceil(max(a.x2, b.x2))), int(math.ceil(max(a.y2, b.y2)))
        ma, mb = a.mask[y1:y2, x1:x2], b.mask[y1:y2, x1:x2]
        if not ma.any() or not mb.any():
            return box_gap
        if (ma & mb).any():
            return 0.0
        dist = ndimage.distance_transform_edt(~ma)
        # Pixel centres one apart are adjacent: subtract one pixel so that touching masks give 0.
        return max(0.0, float(dist[mb].min()) - 1.0)

    def intersection(self, a: str, b: str) -> float:
        """Overlap in pixels (mask pixels when both masks exist, else box area)."""
        sa, sb = self.shapes[a], self.shapes[b]
        if self.config.use_masks and sa.mask is not None and sb.mask is not None and sa.mask.shape == sb.mask.shape:
            return float((sa.mask & sb.mask).sum())
        w = min(sa.x2, sb.x2) - max(sa.x1, sb.x1)
        h = min(sa.y2, sb.y2) - max(sa.y1, sb.y1)
        return max(0.0, w) * max(0.0, h)

    def box_intersection(self, a: str, b: str) -> tuple[float, float, float, float] | None:
        sa, sb = self.shapes[a], self.shapes[b]
        x1, y1 = max(sa.x1, sb.x1), max(sa.y1, sb.y1)
        x2, y2 = min(sa.x2, sb.x2), min(sa.y2, sb.y2)
        return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None

    @staticmethod
    def _overlap_1d(a1: float, a2: float, b1: float, b2: float) -> float:
        """Overlap of two intervals as a fraction of the shorter one."""
        inter = min(a2, b2) - max(a1, b1)
        shorter = min(a2 - a1, b2 - b1)
        return max(0.0, inter) / shorter if shorter > 0 else 0.0

    # ------------------------------------------------------------------ relations
    def relation(self, rel: Relation, t: str, anchors: tuple[str, ...]) -> float | None:
        """Score of ``t rel anchors`` (None when it does not hold)."""
        if t in anchors:
            return None
        if rel is Relation.BETWEEN:
            return self._between(t, anchors[0], anchors[1])
        a = anchors[0]
        fn = {
            Relation.LEFT_OF: lambda: self._direction(t, a, -1, 0),
            Relation.RIGHT_OF: lambda: self._direction(t, a, 1, 0),
            Relation.ABOVE: lambda: self._direction(t, a, 0, -1),
            Relation.BELOW: lambda: self._direction(t, a, 0, 1),
            Relation.ON: lambda: self._on(t, a),
            Relation.UNDER: lambda: self._under(t, a),
            Relation.NEXT_TO: lambda: self._next_to(t, a),
            Relation.NEAR: lambda: self._near(t, a),
            Relation.IN_FRONT_OF: lambda: self._front(t, a),
            Relation.BEHIND: lambda: self._front(a, t),
            Relation.CLOSEST_TO: lambda: self._centre_tiebreak(t, a, self.gap(t, a)),
            Relation.FARTHEST_FROM: lambda: -self._centre_tiebreak(t, a, self.gap(t, a)),
            Relation.INSIDE: lambda: self._inside(t, a),
        }[rel]
        return fn()

    def _centre_tiebreak(self, t: str, a: str, gap: float) -> float:
        st, sa = self.shapes[t], self.shapes[a]
        return gap + 1e-3 * math.hypot(st.cx - sa.cx, st.cy - sa.cy)

    def _direction(self, t: str, a: str, ux: int, uy: int) -> float | None:
        st, sa = self.shapes[t], self.shapes[a]
        dx, dy = st.cx - sa.cx, st.cy - sa.cy
        along = dx * ux + dy * uy  # > 0 in the asked direction
        across = abs(dx * uy) + abs(dy * ux)
        size = sa.w if ux else sa.h
        if along <= self.config.direction_margin * size:
            return None
        if math.degrees(math.atan2(across, along)) > self.config.max_angle_deg:
            return None
        return self.gap(t, a) + self.config.off_axis_weight * across

    def _touch(self, st: Shape) -> float:
        return self.config.touch_px + self.config.touch_frac * st.h

    def _on(self, t: str, a: str) -> float | None:
        st, sa = self.shapes[t], self.shapes[a]
        xo = self._overlap_1d(st.x1, st.x2, sa.x1, sa.x2)
        if xo < self.config.axis_overlap:
            return None
        inside = self.intersection(t, a) / max(st.area, 1.0)
        if inside >= self.config.inside_frac and st.area < sa.area:
            return 0.0 + abs(st.cy - sa.cy) * 1e-3  # resting on a surface seen from above
        if st.cy >= sa.cy or self.gap(t, a) > self._touch(st):
            return None
        # The target's bottom rests near the anchor's top.
        return abs(st.y2 - sa.y1)

    def _under(self, t: str, a: str) -> float | None:
        st, sa = self.shapes[t], self.shapes[a]
        if self._overlap_1d(st.x1, st.x2, sa.x1, sa.x2) < self.config.axis_overlap:
            return None
        if st.cy <= sa.cy or st.y2 <= sa.y2:
            return None
        return max(0.0, st.y1 - sa.y2) + 0.1 * abs(st.cx - sa.cx)

    def _next_to(self, t: str, a: str) -> float | None:
        st, sa = self.shapes[t], self.shapes[a]
        if self._overlap_1d(st.y1, st.y2, sa.y1, sa.y2) < self.config.axis_overlap:
            return None
        if abs(st.cx - sa.cx) <= self.config.direction_margin * min(st.w, sa.w):
            return None  # stacked, not side by side
        g = self.gap(t, a)
        if g > self.config.near_factor * max(st.diag, sa.diag):
            return None
        return self._centre_tiebreak(t, a, g)

    def _near(self, t: str, a: str) -> float | None:
        st, sa = self.shapes[t], self.shapes[a]
        g = self.gap(t, a)
        if g > self.config.near_factor * max(st.diag, sa.diag):
            return None
        return self._centre_tiebreak(t, a, g)

    def _inside(self, t: str, a: str) -> float | None:
        st, sa = self.shapes[t], self.shapes[a]
        if st.area >= sa.area:
            return None
        share = self.intersection(t, a) / max(st.area, 1.0)
        if share < self.config.inside_frac:
            # A mask inside the anchor's box but outside its mask pixels (a hole, e.g. a ring).
            bx = self.box_intersection(t, a)
            box_share = 0.0 if bx is None else (bx[2] - bx[0]) * (bx[3] - bx[1]) / max(st.w * st.h, 1.0)
            if box_share < 0.999:
                return None
        return 1.0 - share

    def _between(self, t: str, a: str, b: str) -> float | None:
        st, sa, sb = self.shapes[t], self.shapes[a], self.shapes[b]
        if t in (a, b):
            return None
        vx, vy = sb.cx - sa.cx, sb.cy - sa.cy
        length2 = vx * vx + vy * vy
        if length2 <= 0:
            return None
        s = ((st.cx - sa.cx) * vx + (st.cy - sa.cy) * vy) / length2
        if not 0.0 < s < 1.0:
            return None
        perp = abs((st.cx - sa.cx) * vy - (st.cy - sa.cy) * vx) / math.sqrt(length2)
        if perp > self.config.between_width * math.sqrt(length2):
            return None
        return perp + 0.01 * abs(s - 0.5) * math.sqrt(length2)

    def _front(self, t: str, a: str) -> float | None:
        """``t`` in front of ``a``: depth when both known, else occlusion, else lower bottom edge."""
        st, sa = self.shapes[t], self.shapes[a]
        if st.depth is not None and sa.depth is not None:
            diff = sa.depth - st.depth
            if diff <= self.config.depth_margin_m:
                return None
            return self.gap(t, a) + 1e-3 * diff
        occ = self.occlusion(t, a)
        if occ is not None:
            return self.gap(t, a) if occ > 0 else None
        if st.y2 - sa.y2 <= self.config.direction_margin * sa.h:
            return None
        g = self.gap(t, a)
        if g > self.config.near_factor * max(st.diag, sa.diag) or (
            self._overlap_1d(st.x1, st.x2, sa.x1, sa.x2) <= 0 and g > 0
        ):
            return None
        return g

    def occlusion(self, t: str, a: str) -> float | None:
        """+1 when ``t``'s mask covers the boxes' overlap (t occludes a), -1 the reverse, None unknown."""
        st, sa = self.shapes[t], self.shapes[a]
        bx = self.box_intersection(t, a)
        if bx is None or st.mask is None or sa.mask is None or st.mask.shape != sa.mask.shape:
            return None
        x1, y1, x2, y2 = (int(round(v)) for v in bx)
        ct = float(st.mask[y1:y2, x1:x2].sum())
        ca = float(sa.mask[y1:y2, x1:x2].sum())
        total = max(1.0, float((x2 - x1) * (y2 - y1)))
        if abs(ct - ca) / total < 0.1:
            return None
        return 1.0 if ct > ca else -1.0

    # ------------------------------------------------------------------ orderings
    def order_key(self, order: Order, rid: str, all_depth: bool) -> float:
        """Sort key (ascending = first) of ``rid`` for ``order``."""
        s = self.shapes[rid]
        if order is Order.LARGEST:
            return -s.area
        if order is Order.SMALLEST:
            return s.area
        if order is Order.LEFTMOST:
            return s.cx
        if order is Order.RIGHTMOST:
            return -s.cx
        if order is Order.TOPMOST:
            return s.cy
        if order is Order.BOTTOMMOST:
            return -s.cy
        if order is Order.CLOSEST:
            return s.depth if all_depth else -s.y2
        if order is Order.FARTHEST:
            return -s.depth if all_depth else s.y2
        cx, cy = self.centre()
        return math.hypot(s.cx - cx, s.cy - cy)

    def centre(self) -> tuple[float, float]:
        if self.image_size is not None:
            return self.image_size[0] / 2.0, self.image_size[1] / 2.0
        xs = [v for s in self.shapes.values() for v in (s.x1, s.x2)]
        ys = [v for s in self.shapes.values() for v in (s.y1, s.y2)]
        return (min(xs) + max(xs)) / 2.0, (min(ys) + max(ys)) / 2.0

    def order_tolerance(self, order: Order, ids: list[str], all_depth: bool) -> float:
        """Keys closer than this are tied for ``order``."""
        shapes = [self.shapes[i] for i in ids]
        if order in (Order.LARGEST, Order.SMALLEST):
            return self.config.area_tie_frac * max(s.area for s in shapes)
        if order in (Order.CLOSEST, Order.FARTHEST) and all_depth:
            return self.config.depth_margin_m
        mean_size = sum(max(s.w, s.h) for s in shapes) / len(shapes)
        return max(self.config.tie_px, self.config.position_tie_frac * mean_size)

    def rank(self, order: Order, ids: list[str], rank: int) -> tuple[str | None, list[str]]:
        """The ``rank``-th (1-based, -1 = last) of ``ids`` by ``order``.

        Returns ``(id, [])`` when unique, ``(None, tied ids)`` when ties at that rank make it
        ambiguous, ``(None, [])`` when there are fewer than ``rank`` candidates.
        """
        if not ids:
            return None, []
        all_depth = all(self.shapes[i].depth is not None for i in ids)
        keyed = sorted(ids, key=lambda i: self.order_key(order, i, all_depth))
        k = len(keyed) - 1 if rank == -1 else rank - 1
        if not 0 <= k < len(keyed):
            return None, []
        tol = self.order_tolerance(order, ids, all_depth)
        key = self.order_key(order, keyed[k], all_depth)
        tied = [i for i in keyed if abs(self.order_key(order, i, all_depth) - key) <= tol]
        if len(tied) > 1:
            return None, tied
        return keyed[k], []

    def image_position(self, rid: str) -> str:
        """Coarse position in the image: "top left", "centre", "bottom right", ..."""
        s = self.shapes[rid]
        if self.image_size is not None:
            w, h = self.image_size
            x0, y0 = 0.0, 0.0
        else:
            xs = [v for o in self.shapes.values() for v in (o.x1, o.x2)]
            ys = [v for o in self.shapes.values() for v in (o.y1, o.y2)]
            x0, y0, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
        fx = (s.cx - x0) / max(w, 1.0)
        fy = (s.cy - y0) / max(h, 1.0)
        col = "left" if fx < 1 / 3 else ("right" if fx > 2 / 3 else "")
        row = "top" if fy < 1 / 3 else ("bottom" if fy > 2 / 3 else "")
        return f"{row} {col}".strip() or "centre"
