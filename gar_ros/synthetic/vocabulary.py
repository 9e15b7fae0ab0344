"""Colours, shapes and sizes of the synthetic scenes, and the words that name them.

Colours are saturated RGB uint8 triples with well separated hues; backgrounds are drawn from
muted tones so that every object stands out. Every name here is one lowercase word, so that a
word-level tokenizer covers every label and answer.
"""
from __future__ import annotations

#: Object colours: name -> nominal RGB (each object jitters around it).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 225, 40),
    "green": (35, 165, 55),
    "blue": (35, 75, 225),
    "purple": (135, 45, 185),
    "pink": (250, 125, 200),
}

#: Shape names, in a fixed order (index = class id).
SHAPES: tuple[str, ...] = ("square", "circle", "triangle", "star")
#: Shapes the rasteriser can draw but the scenes do not use (kept for experiments).
EXTRA_SHAPES: tuple[str, ...] = ("cross",)

#: Size words: name -> (min, max) object radius as a fraction of the image's shorter side.
SIZES: dict[str, tuple[float, float]] = {
    "small": (0.085, 0.115),
    "large": (0.14, 0.175),
}

#: Background base tones (RGB): greys, beiges and slates with low saturation.
BACKGROUND_TONES: tuple[tuple[int, int, int], ...] = (
    (128, 128, 128),
    (70, 70, 75),
    (190, 190, 185),
    (200, 190, 165),
    (150, 140, 120),
    (90, 100, 110),
    (40, 40, 45),
    (220, 220, 215),
    (110, 115, 100),
)

COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
SIZE_NAMES: tuple[str, ...] = tuple(SIZES)
