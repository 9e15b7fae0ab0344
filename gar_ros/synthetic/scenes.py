"""Seeded synthetic scenes and clips: coloured shapes on varied backgrounds.

A scene is an RGB uint8 image (H, W, 3) with 2-6 non-overlapping objects; each object has a
mask (H, W) bool at image size, a tight box (x1, y1, x2, y2) with exclusive x2/y2, a colour, a
shape, a size word and a label such as "red square". A clip is a list of scenes of the same
objects on the same background, each object moving by a small constant velocity per frame.
Everything is a pure function of the seed (numpy ``default_rng``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from gar_ros.errors import InputError
from gar_ros.synthetic.shapes import mask_box, shape_mask
from gar_ros.synthetic.vocabulary import (
    BACKGROUND_TONES, COLOUR_NAMES, COLOURS, SHAPES, SIZE_NAMES, SIZES,
)
from gar_ros.types import Box, Region

DEFAULT_SIZE: tuple[int, int] = (96, 96)  # (width, height)
_MAX_TRIES = 200


@dataclass
class SceneObject:
    """One object of a scene. ``centre`` (x, y) pixels; ``radius`` pixels; ``rgb`` as drawn."""

    id: str
    colour: str
    shape: str
    size: str
    centre: tuple[float, float]
    radius: float
    rgb: tuple[int, int, int]
    mask: np.ndarray
    box: Box

    @property
    def label(self) -> str:
        """Colour and shape, e.g. "red square"."""
        return f"{self.colour} {self.shape}"

    @property
    def description(self) -> str:
        """Reference description, e.g. "a small red square"."""
        return f"a {self.size} {self.colour} {self.shape}"

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    def region(self) -> Region:
        """This object as a :class:`gar_ros.types.Region` (mask, box and label set)."""
        return Region(id=self.id, box=self.box, mask=self.mask, label=self.label)


@dataclass
class Scene:
    """An image with its objects (drawn in list order; masks do not overlap)."""

    image: np.ndarray
    objects: list[SceneObject]
    seed: int = 0
    stamp: int = 0
    background: dict = field(default_factory=dict)

    def regions(self) -> list[Region]:
        return [o.region() for o in self.objects]

    def object(self, object_id: str) -> SceneObject:
        for o in self.objects:
            if o.id == object_id:
                return o
        raise InputError(f"scene has no object {object_id!r}")


@dataclass
class _Spec:
    colour: str
    shape: str
    size: str
    radius: float
    rgb: tuple[int, int, int]
    cx: float
    cy: float
    vx: float = 0.0
    vy: float = 0.0


def _background(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, dict]:
    """A muted background: tone + optional gradient or stripes/checker + noise. float32 (H,W,3)."""
    tone = np.asarray(BACKGROUND_TONES[rng.integers(len(BACKGROUND_TONES))], np.float32)
    tone = tone + rng.normal(0.0, 8.0, 3).astype(np.float32)
    img = np.broadcast_to(tone, (height, width, 3)).astype(np.float32).copy()
    kind = ["plain", "gradient", "stripes", "checker"][int(rng.integers(4))]
    if kind == "gradient":
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        t = (np.cos(ang) * xx / width + np.sin(ang) * yy / height)
        img += (t - t.mean())[..., None] * rng.uniform(20, 50)
    elif kind in ("stripes", "checker"):
        period = int(rng.integers(6, 16))
        yy, xx = np.mgrid[0:height, 0:width]
        if kind == "stripes":
            pat = ((xx + yy * int(rng.integers(0, 2))) // period) % 2
        else:
            pat = ((xx // period) + (yy // period)) % 2
        img += (pat.astype(np.float32) - 0.5)[..., None] * rng.uniform(10, 25)
    img += rng.standard_normal((height, width, 3), dtype=np.float32) * np.float32(rng.uniform(2.0, 7.0))
    return img, {"kind": kind, "tone": [float(v) for v in tone]}


def _pick_specs(rng: np.random.Generator, n: int, short: int, distinct_colours: bool,
                duplicate_colour: bool) -> list[_Spec]:
    if distinct_colours or n < 2:
        colours = list(rng.choice(COLOUR_NAMES, size=n, replace=False))
    else:
        colours = [str(c) for c in rng.choice(COLOUR_NAMES, size=n, replace=True)]
    if duplicate_colour and n >= 2:
        colours[1] = colours[0]
    specs: list[_Spec] = []
    used: set[tuple[str, str]] = set()
    for colour in colours:
        shape = str(rng.choice(SHAPES))
        while (colour, shape) in used:  # labels stay unique within a scene
            shape = str(rng.choice(SHAPES))
        used.add((colour, shape))
        size = str(rng.choice(SIZE_NAMES))
        lo, hi = SIZES[size]
        base = np.asarray(COLOURS[colour], np.float32)
        rgb = np.clip(base + rng.normal(0, 10, 3), 0, 255).astype(np.uint8)
        specs.append(_Spec(str(colour), shape, size, float(rng.uniform(lo, hi) * short),
                           tuple(int(v) for v in rgb), 0.0, 0.0))
    return specs


def _place(rng: np.random.Generator, specs: list[_Spec], width: int, height: int,
           n_frames: int, max_speed: float, min_speed: float) -> bool:
    """Choose positions (and velocities) so that objects stay inside and apart in every frame."""
    gap = 2.0
    placed: list[_Spec] = []
    for s in specs:
        for _ in range(_MAX_TRIES):
            if max_speed > 0:
                speed = rng.uniform(min_speed, max_speed)
                s.vx = float(speed * rng.choice([-1.0, 1.0]))
                s.vy = float(rng.uniform(-0.4, 0.4) * speed)
            span_x = abs(s.vx) * (n_frames - 1)
            span_y = abs(s.vy) * (n_frames - 1)
            lo_x, hi_x = s.radius + 1 + max(0.0, -s.vx) * (n_frames - 1), width - s.radius - 1 - max(0.0, s.vx) * (n_frames - 1)
            lo_y, hi_y = s.radius + 1 + max(0.0, -s.vy) * (n_frames - 1), height - s.radius - 1 - max(0.0, s.vy) * (n_frames - 1)
            if hi_x <= lo_x or hi_y <= lo_y or span_x > width or span_y > height:
                continue
            s.cx, s.cy = float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y))
            ok = True
            for p in placed:
                for k in range(n_frames):
                    dx = (s.cx + s.vx * k) - (p.cx + p.vx * k)
                    dy = (s.cy + s.vy * k) - (p.cy + p.vy * k)
                    if max(abs(dx), abs(dy)) < s.radius + p.radius + gap:
                        ok = False
                        break
                if not ok:
                    break
            if ok:
                placed.append(s)
                break
        else:
            return False
    return True


def _render(background: np.ndarray, specs: list[_Spec], frame: int, width: int, height: int,
            rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[np.ndarray, float, float]]]:
    img = background.copy()
    shapes: list[tuple[np.ndarray, float, float]] = []
    for s in specs:
        cx, cy = s.cx + s.vx * frame, s.cy + s.vy * frame
        mask = shape_mask(s.shape, cx, cy, s.radius, width, height)
        img[mask] = np.asarray(s.rgb, np.float32)
        shapes.append((mask, cx, cy))
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(3.0)
    return np.clip(img, 0, 255).astype(np.uint8), shapes


def _generate(seed: int, size: tuple[int, int], n_objects: int | None, n_frames: int,
              distinct_colours: bool, duplicate_colour: bool, max_speed: float,
              min_speed: float, min_objects: int, max_objects: int) -> list[Scene]:
    width, height = int(size[0]), int(size[1])
    if width < 32 or height < 32:
        raise InputError(f"synthetic scenes need at least 32x32 pixels, got {width}x{height}")
    rng = np.random.default_rng(seed)
    n = int(n_objects) if n_objects is not None else int(rng.integers(min_objects, max_objects + 1))
    if not 1 <= n <= len(COLOUR_NAMES):
        raise InputError(f"n_objects must be in 1..{len(COLOUR_NAMES)}, got {n}")
    background, bg_info = _background(rng, width, height)
    for _ in range(_MAX_TRIES):
        specs = _pick_specs(rng, n, min(width, height), distinct_colours, duplicate_colour)
        if _place(rng, specs, width, height, n_frames, max_speed, min_speed):
            break
    else:
        raise InputError(f"cannot place {n} objects in {width}x{height} (seed {seed})")
    scenes = []
    for k in range(n_frames):
        img, shapes = _render(background, specs, k, width, height, rng)
        objects = [
            SceneObject(id=f"obj{i}", colour=s.colour, shape=s.shape, size=s.size,
                        centre=(cx, cy), radius=s.radius, rgb=s.rgb, mask=m, box=mask_box(m))
            for i, (s, (m, cx, cy)) in enumerate(zip(specs, shapes))
        ]
        scenes.append(Scene(image=img, objects=objects, seed=seed, stamp=k * 100_000_000,
                            background=dict(bg_info)))
    return scenes


def generate_scene(seed: int, size: tuple[int, int] = DEFAULT_SIZE, n_objects: int | None = None,
                   *, distinct_colours: bool = True, duplicate_colour: bool = False,
                   min_objects: int = 2, max_objects: int = 6) -> Scene:
    """One scene; ``size`` is (width, height); ``n_objects`` None draws 2-6 from the seed.

    ``distinct_colours`` gives every object its own colour; ``duplicate_colour`` makes objects 0
    and 1 share a colour (their shapes differ, so labels stay unique).
    """
    return _generate(seed, size, n_objects, 1, distinct_colours, duplicate_colour, 0.0, 0.0,
                     min_objects, max_objects)[0]


def generate_clip(seed: int, n_frames: int = 4, size: tuple[int, int] = DEFAULT_SIZE,
                  n_objects: int | None = None, *, max_speed: float = 5.0, min_speed: float = 3.0,
                  min_objects: int = 2, max_objects: int = 4) -> list[Scene]:
    """``n_frames`` scenes of the same objects moving at constant velocity (pixels per frame).

    Horizontal speed is at least ``min_speed`` (so "left or right" always has an answer); the
    vertical drift is at most 0.4 of it. Stamps are 0.1 s apart. Object ids match across frames.
    """
    if n_frames < 1:
        raise InputError("a clip needs at least one frame")
    return _generate(seed, size, n_objects, n_frames, True, False, max_speed, min_speed,
                     min_objects, max_objects)


def draw_labels(scene: Scene, scale: int = 4) -> np.ndarray:
    """Upscaled copy of the image with each object's box and label drawn (for inspection)."""
    img = cv2.resize(scene.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    for o in scene.objects:
        x1, y1, x2, y2 = (int(v * scale) for v in o.box)
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), (255, 255, 255), 1)
        cv2.putText(img, f"{o.id} {o.label}", (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return img
