"""Relational queries: natural-language questions about the regions of a frame, answered by GAR.

Public entry point (called by the pipeline for every query)::

    answer_question(model, image, regions, question, *, region_ids=(), max_new_tokens=None,
                    on_text=None, frame_key=None, depth=None, caption_cache=None, config=None) -> Answer

- ``model``: a :class:`gar_ros.model.GarModel` (uses ``ask``, ``describe`` and ``config.prompt_numbers``).
- ``image``: (H, W, 3) uint8 RGB; ``regions``: the frame's :class:`gar_ros.types.Region` list
  (box and/or frame-sized bool mask, optional ``label`` and ``depth`` in metres).
- ``question``: free text; ``<region:ID>`` marks an explicit region; "it"/"this" refer to
  ``region_ids`` in order; ids only in ``region_ids`` follow the referenced ones in free questions.
- ``max_new_tokens``: generation limit (None = ``config.max_new_tokens``); ``on_text(text_so_far)``
  streams the answer text as it grows (False cancels); ``frame_key``: the model's feature-cache key.
- ``depth``: optional (H, W) depth image (float metres or uint16 millimetres) for in front of / behind;
  per-region ``Region.depth`` wins when set; without either, image cues (occlusion, lower edge) decide.
- ``caption_cache``: mutable map region (track) id -> short caption, used when labels are missing or
  do not match; one :class:`CaptionCache` per model object is used when None.
- ``config``: :class:`QueryConfig` margins, tie thresholds, templates.

Returns an :class:`gar_ros.types.Answer`: OK with ``text`` naming the object ("The object left of
the red square is a small blue circle.") and ``region_ids`` = target first, then anchors (counts:
every match, then anchors; comparisons: winner, reference, other option); NOT_FOUND ("no cup is
visible", unknown ids), AMBIGUOUS (``region_ids`` = the candidates: "there are 2 cups: regions 3 and
7; which one?"), INVALID (unparseable question; ``message`` lists supported forms). ``frame_stamp``
is left 0 for the caller to set. Model errors (:class:`gar_ros.errors.GarError`) propagate.

``needs_grounding(question, region_ids=()) -> bool`` tells whether a question names regions by
words or relations (False for free questions over explicit ``<region:ID>`` / ``region_ids`` only and
for unparseable text), for callers that answer explicit-id questions another way (video context).

Supported questions: what is X / describe X / what colour|material|shape|size|texture is X /
is X <relation> Y / which is closer to X, A or B (farther, larger, smaller) / is X bigger than Y /
how many X (are there) / is there an X ... / where is X / free questions with explicit references.
Referring expressions X: "the object left of the cup", "the red square", "the mug next to
<region:5>", "the second cup from the left", "the largest box", "the thing between the cup and the
plate", "the bottle closest to the camera"; relations: left of, right of, above, below, on, under,
next to, near, between A and B, in front of, behind, closest to, farthest from, inside.
"""
from gar_ros.query.answer import answer_question, subject_phrase
from gar_ros.query.config import QueryConfig
from gar_ros.query.geometry import Geometry, Shape, region_shape
from gar_ros.query.grounding import CaptionCache, Grounder, Grounding
from gar_ros.query.parse import Compare, Kind, ParsedQuestion, RefExpr, needs_grounding, parse_question
from gar_ros.query.vocabulary import Order, Relation

__all__ = [
    "answer_question", "subject_phrase", "QueryConfig", "Geometry", "Shape", "region_shape",
    "CaptionCache", "Grounder", "Grounding", "Compare", "Kind", "ParsedQuestion", "RefExpr",
    "parse_question", "needs_grounding", "Order", "Relation",
]
