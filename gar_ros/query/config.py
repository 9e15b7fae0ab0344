"""Tunable margins, thresholds and prompt templates of the query engine."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class QueryConfig:
    """Settings of parsing, grounding and answering.

    Margins are fractions of object sizes (box width/height in pixels) unless named ``*_px``.
    Relation scores are pixel distances; lower is better.
    """

    # --- geometry
    use_masks: bool = True  # centroids, areas, gaps and occlusion from masks when given
    direction_margin: float = 0.25  # left/right/above/below: centre offset >= this x anchor size
    max_angle_deg: float = 60.0  # ... and within this angle of the axis ("left of" = roughly left)
    off_axis_weight: float = 0.5  # score = gap + weight x off-axis centre offset
    touch_px: float = 2.0  # gaps up to this many pixels count as touching
    touch_frac: float = 0.15  # ... plus this fraction of the target's height (on / under contact)
    axis_overlap: float = 0.3  # on/under: x-overlap, next to: y-overlap, as fraction of smaller side
    near_factor: float = 1.0  # near / next to: gap <= factor x the larger box diagonal
    between_width: float = 0.5  # between: distance from the A-B segment <= width x |AB|
    inside_frac: float = 0.8  # inside / in: share of the target inside the anchor
    depth_margin_m: float = 0.05  # in front of / behind with depth: difference in metres
    tie_px: float = 2.0  # scores within max(tie_px, tie_frac x best) are tied
    tie_frac: float = 0.15
    area_tie_frac: float = 0.05  # largest / smallest: areas within 5 % are tied
    position_tie_frac: float = 0.1  # leftmost/...: centres within 10 % of mean size are tied
    # --- grounding
    caption_max_new_tokens: int = 16  # short captions for label fallback
    caption_fallback: bool = True
    # --- answering
    max_new_tokens: int = 64
    multiple_choice: bool = True  # ask the model to choose when geometry is ambiguous
    max_options: int = 4  # options of a multiple-choice question (A-D)
    # WHAT ("what is X"): None = the model's own single-region description prompt
    # (GarModel.describe; not streamed token by token), else an ask() template over <Prompt0>.
    what_template: str | None = None
    # DESCRIBE with anchors as context (describe_template over <Prompt0> + anchors). Off by default:
    # the embedded tiny model names the object in 27 % of such prompts against 70 % with its own
    # description prompt; turn on for real GAR checkpoints (GAR-Bench relation-caption prompt).
    describe_with_anchors: bool = False
    describe_template: str = "Describe <Prompt0> in detail, including the relationship with {anchors}."
    attribute_templates: dict[str, str] = field(default_factory=lambda: {
        "color": "What color is <Prompt0>?",
        "material": "What material is <Prompt0> made of?",
        "shape": "What shape is <Prompt0>?",
        "size": "What size is <Prompt0>?",
        "texture": "What texture or pattern does <Prompt0> have?",
    })
    choice_suffix: str = "\nAnswer with the correct option's letter directly."
