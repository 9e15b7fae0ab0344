"""Grounding: which regions a referring expression denotes.

Class words match region labels (case, plurals and synonyms normalised by
:mod:`gar_ros.query.vocabulary`). When labels are missing, or no label matches, short captions of
the regions (from a captioner, e.g. the GAR model's ``describe``; cached per track id) are matched
instead. Relations and orderings are computed by :class:`gar_ros.query.geometry.Geometry`.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from gar_ros.query.config import QueryConfig
from gar_ros.query.geometry import Geometry, region_shape
from gar_ros.query.parse import RefExpr
from gar_ros.query.vocabulary import Order, Relation, canonical_words
from gar_ros.types import AnswerStatus, Region

#: Regions -> {region id: short caption}; called only for regions whose caption is not cached.
Captioner = Callable[[Sequence[Region]], dict[str, str]]

# Caption words after which the caption talks about something else ("a red cup on a table").
_CAPTION_CUT = re.compile(
    r"\b(?:with|on|in|at|next|near|beside|behind|under|above|below|of|that|which|who|and|"
    r"sitting|placed|lying|standing|is|are|holding|against|inside|from)\b|[,.;:]"
)


class CaptionCache(MutableMapping[str, str]):
    """Bounded LRU map of region (track) id -> short caption."""

    def __init__(self, max_size: int = 1024) -> None:
        self.max_size = max_size
        self._data: OrderedDict[str, str] = OrderedDict()

    def __getitem__(self, key: str) -> str:
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: str, value: str) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.max_size:
            self._data.popitem(last=False)

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def caption_subject(caption: str) -> str:
    """The part of a caption that names the region itself ("A red mug on a desk." -> "A red mug")."""
    m = _CAPTION_CUT.search(caption.lower())
    head = caption[: m.start()] if m and m.start() > 0 else caption
    return head.strip()


@dataclass
class Grounding:
    """Result of grounding one referring expression.

    ``status``: OK (``ids`` = [chosen], or every match for a plural), NOT_FOUND (``ids`` empty),
    AMBIGUOUS (``ids`` = the candidates, best first). ``anchors``: the anchor ids used, direct
    anchors first. ``tie``: AMBIGUOUS because geometry could not separate the candidates (a model
    may choose among them). ``message``: for the asker.
    """

    status: AnswerStatus
    ids: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    message: str = ""
    tie: bool = False
    ref: RefExpr | None = None
    used_captions: bool = False
    about_anchor: bool = False  # the failure concerns an anchor, not the target

    @property
    def ok(self) -> bool:
        return self.status == AnswerStatus.OK


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and len(noun) > 2 and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def describe_ref(ref: RefExpr) -> str:
    """Natural text of a reference for messages ("cup", "red object left of the plate")."""
    if ref.region_id is not None:
        return f"region {ref.region_id}"
    return ref.text or ref.noun


def id_list(ids: Sequence[str]) -> str:
    """"3", "3 and 7", "3, 7 and 9"."""
    ids = [str(i) for i in ids]
    if len(ids) <= 1:
        return "".join(ids)
    return ", ".join(ids[:-1]) + " and " + ids[-1]


class Grounder:
    """Grounds referring expressions in the regions of one frame.

    ``region_ids``: the query's explicit ids, which pronouns ("it", "this") refer to in order.
    ``captioner``/``caption_cache``: label fallback (captions cached by region id across calls).
    ``image_size``: (width, height), for "in the middle"; taken from masks when omitted.
    ``depth_image``: optional (H, W) depth in metres (float) or millimetres (uint16).
    """

    def __init__(self, regions: Sequence[Region], config: QueryConfig | None = None, *,
                 region_ids: Sequence[str] = (), captioner: Captioner | None = None,
                 caption_cache: MutableMapping[str, str] | None = None,
                 image_size: tuple[int, int] | None = None,
                 depth_image: np.ndarray | None = None) -> None:
        self.config = config or QueryConfig()
        self.regions = {r.id: r for r in regions}
        self.order = [r.id for r in regions]
        self.region_ids = [str(i) for i in region_ids]
        self.captioner = captioner
        self.captions = caption_cache if caption_cache is not None else CaptionCache()
        shapes = {r.id: region_shape(r, self.config.use_masks, depth_image) for r in regions}
        self.geometry = Geometry(shapes, self.config, image_size)
        self.used_captions = False
        self._captions_tried: set[str] = set()

    # ------------------------------------------------------------------ text matching
    def words(self, rid: str) -> tuple[set[str], set[str]]:
        """(label words, caption-subject words) of a region; caption words only when cached."""
        label = set(canonical_words(self.regions[rid].label))
        caption = self.captions.get(rid) if rid in self.captions else None
        cap = set(canonical_words(caption_subject(caption))) if caption else set()
        return label, cap

    def _ensure_captions(self, ids: Sequence[str]) -> None:
        """Caption (once per call) the regions of ``ids`` that have no cached caption."""
        if self.captioner is None or not self.config.caption_fallback:
            return
        todo = [i for i in ids if i not in self.captions and i not in self._captions_tried]
        if not todo:
            return
        self._captions_tried.update(todo)
        texts = self.captioner([self.regions[i] for i in todo])
        for rid, text in texts.items():
            if rid in self.regions and text:
                self.captions[rid] = text
        self.used_captions = True

    def _text_match(self, ref: RefExpr, rid: str, use_captions: bool) -> bool | None:
        """True/False when decided, None when the label alone cannot decide."""
        label, cap = self.words(rid)
        words = label | cap if use_captions else label
        if not words:
            return None
        if ref.head is not None and ref.head not in words:
            if use_captions or cap:
                return False
            return False if label else None
        missing = [m for m in ref.hard_modifiers if m not in words]
        if missing:
            if not use_captions and not cap:
                return None  # e.g. label "cup" but asked "red cup": the caption decides
            return False
        return True

    def matching(self, ref: RefExpr) -> list[str]:
        """Ids of regions whose label (or, as a fallback, caption) fits ``ref``'s class words."""
        if ref.head is None and not ref.hard_modifiers:
            return list(self.order)
        decided = {rid: self._text_match(ref, rid, use_captions=False) for rid in self.order}
        matched = {rid for rid, m in decided.items() if m}
        undecided = [rid for rid, m in decided.items() if m is None]
        if undecided:  # no label, or a label without the asked colour/material: ask the captions
            self._ensure_captions(undecided)
            matched |= {rid for rid in undecided if self._text_match(ref, rid, use_captions=True)}
        if not matched:  # labels exist but none fits: the captions may know better
            self._ensure_captions(self.order)
            matched = {rid for rid in self.order if self._text_match(ref, rid, use_captions=True)}
        return [rid for rid in self.order if rid in matched]

    def _soft_filter(self, ref: RefExpr, ids: list[str]) -> list[str]:
        """Prefer candidates that also show the soft modifiers ("coffee cup", "small square")."""
        soft = [m for m in ref.modifiers if m not in ref.hard_modifiers]
        if not soft or len(ids) <= 1:
            return ids
        scored = []
        for rid in ids:
            label, cap = self.words(rid)
            scored.append((sum(m in (label | cap) for m in soft), rid))
        best = max(s for s, _ in scored)
        return [rid for s, rid in scored if s == best] if best > 0 else ids

    # ------------------------------------------------------------------ grounding
    def resolve(self, ref: RefExpr, *, plural: bool = False, exclude: Sequence[str] = ()
                ) -> Grounding:
        """Ground ``ref``; ``plural`` returns every match (counting) instead of one region."""
        if ref.region_id is not None:
            if ref.region_id not in self.regions:
                return Grounding(AnswerStatus.NOT_FOUND, message=f"no region {ref.region_id} in this frame",
                                 ref=ref)
            return Grounding(AnswerStatus.OK, [ref.region_id], ref=ref)
        if ref.pronoun is not None:
            if ref.pronoun >= len(self.region_ids):
                return Grounding(AnswerStatus.INVALID, ref=ref, message=(
                    f"'{ref.text}' refers to a region, but the query gives "
                    f"{len(self.region_ids)} region id(s); set region_ids or use <region:ID>"))
            rid = self.region_ids[ref.pronoun]
            if rid not in self.regions:
                return Grounding(AnswerStatus.NOT_FOUND, message=f"no region {rid} in this frame", ref=ref)
            return Grounding(AnswerStatus.OK, [rid], ref=ref)

        candidates = [rid for rid in self.matching(ref) if rid not in exclude]
        noun = ref.noun
        if not candidates:
            return Grounding(AnswerStatus.NOT_FOUND, ref=ref, used_captions=self.used_captions,
                             message=f"no {noun} is visible")
        anchors: list[str] = []
        if ref.relation is not None:
            outcome = self._resolve_relation(ref, candidates, exclude)
            if isinstance(outcome, Grounding):
                return outcome
            candidates, anchors, scores = outcome
        else:
            scores = {}
        nested = anchors
        if ref.order is not None:
            chosen, tied = self.geometry.rank(ref.order, candidates, ref.rank)
            if chosen is not None:
                return self._ok([chosen], anchors, ref)
            if tied:
                return Grounding(AnswerStatus.AMBIGUOUS, tied, nested, ref=ref, tie=True,
                                 used_captions=self.used_captions,
                                 message=(f"regions {id_list(tied)} are equally "
                                          f"{ref.order.value}; which one?"))
            return Grounding(AnswerStatus.NOT_FOUND, ref=ref, anchors=nested,
                             used_captions=self.used_captions,
                             message=f"there are only {len(candidates)} {self._nouns(ref, len(candidates))}")
        if plural:
            return self._ok(candidates, anchors, ref)
        candidates = self._soft_filter(ref, candidates)
        if len(candidates) == 1:
            return self._ok(candidates, anchors, ref)
        if ref.relation is not None:
            ranked = sorted(candidates, key=lambda r: scores[r])
            best, second = scores[ranked[0]], scores[ranked[1]]
            tol = max(self.config.tie_px, self.config.tie_frac * abs(best))
            if second - best > tol:
                return self._ok([ranked[0]], anchors, ref)
            tied = [r for r in ranked if scores[r] - best <= tol]
            return Grounding(AnswerStatus.AMBIGUOUS, tied, anchors, ref=ref, tie=True,
                             used_captions=self.used_captions,
                             message=(f"regions {id_list(tied)} are all {ref.relation.value} "
                                      f"{self._anchor_text(ref, anchors)}; which one?"))
        size = ref.size_modifiers
        if size:
            order = Order.SMALLEST if size[0] in ("small", "tiny") else Order.LARGEST
            chosen, tied = self.geometry.rank(order, candidates, 1)
            if chosen is not None:
                return self._ok([chosen], anchors, ref)
        return Grounding(
            AnswerStatus.AMBIGUOUS, candidates, anchors, ref=ref, used_captions=self.used_captions,
            message=(f"there are {len(candidates)} {self._nouns(ref, len(candidates))}: regions "
                     f"{id_list(candidates)}; which one?"),
        )

    def _ok(self, ids: list[str], anchors: list[str], ref: RefExpr) -> Grounding:
        return Grounding(AnswerStatus.OK, ids, anchors, ref=ref, used_captions=self.used_captions)

    @staticmethod
    def _nouns(ref: RefExpr, n: int) -> str:
        return ref.noun if n == 1 else _plural(ref.noun)

    def _anchor_text(self, ref: RefExpr, anchors: list[str]) -> str:
        parts = [describe_ref(a) for a in ref.anchors]
        text = " and ".join(parts)
        return f"{text} (region {id_list(anchors[: max(1, len(ref.anchors))])})" if anchors else text

    def _resolve_anchors(self, ref: RefExpr, exclude: Sequence[str]
                         ) -> list[list[str]] | Grounding:
        """Anchor id lists to try: one list per reading (a single id each, two for BETWEEN)."""
        if ref.relation is Relation.BETWEEN and len(ref.anchors) == 1:
            g = self.resolve(ref.anchors[0], plural=True, exclude=exclude)
            if not g.ok:
                g.about_anchor = True
                return g
            if len(g.ids) != 2:
                return Grounding(AnswerStatus.AMBIGUOUS if len(g.ids) > 2 else AnswerStatus.NOT_FOUND,
                                 g.ids, ref=ref, about_anchor=True, message=(
                                     f"'between' needs exactly two {_plural(ref.anchors[0].noun)}, "
                                     f"found {len(g.ids)}"))
            return [list(g.ids)]
        per_anchor: list[list[str]] = []
        for anchor in ref.anchors:
            g = self.resolve(anchor, exclude=exclude)
            if g.status == AnswerStatus.AMBIGUOUS and not g.tie:
                per_anchor.append(list(g.ids))  # try each reading of "the cup" below
            elif not g.ok:
                msg = g.message
                return Grounding(g.status, g.ids, ref=ref, message=msg,
                                 used_captions=self.used_captions, about_anchor=True)
            else:
                per_anchor.append([g.ids[0]])
        readings: list[list[str]] = [[]]
        for options in per_anchor:
            readings = [r + [o] for r in readings for o in options if o not in r]
        return readings

    def _resolve_relation(self, ref: RefExpr, candidates: list[str], exclude: Sequence[str]
                          ) -> tuple[list[str], list[str], dict[str, float]] | Grounding:
        readings = self._resolve_anchors(ref, exclude)
        if isinstance(readings, Grounding):
            return readings
        relation = ref.relation
        if relation is None:  # pragma: no cover - callers check
            raise ValueError("no relation")
        found: list[tuple[list[str], dict[str, float]]] = []
        for anchors in readings:
            scores = {}
            for rid in candidates:
                if rid in anchors:
                    continue
                s = self.geometry.relation(relation, rid, tuple(anchors))
                if s is not None:
                    scores[rid] = s
            if scores:
                found.append((anchors, scores))
        if len(found) > 1:
            # Several readings of an ambiguous anchor work: fine when they agree on the target.
            bests = {min(scores, key=scores.__getitem__) for _, scores in found}
            if len(bests) == 1:
                found = [min(found, key=lambda f: min(f[1].values()))]
        if len(readings) > 1 and len(found) != 1:
            ids = sorted({a for r in readings for a in r}, key=self.order.index)
            anchor_noun = ref.anchors[0].noun
            return Grounding(AnswerStatus.AMBIGUOUS, ids, ref=ref, used_captions=self.used_captions,
                             about_anchor=True,
                             message=(f"there are {len(ids)} {_plural(anchor_noun)}: regions "
                                      f"{id_list(ids)}; which one?"))
        if not found:
            anchors = readings[0]
            return Grounding(AnswerStatus.NOT_FOUND, anchors=anchors, ref=ref,
                             used_captions=self.used_captions,
                             message=(f"no {ref.noun} is {relation.value} "
                                      f"{self._anchor_text(ref, anchors)}"))
        anchors, scores = found[0]
        nested = list(anchors)
        for anchor_ref in ref.anchors:  # anchors of anchors follow the direct anchors
            if anchor_ref.relation is not None:
                sub = self.resolve(anchor_ref, exclude=exclude)
                nested += [a for a in sub.anchors if a not in nested]
        ordered = [rid for rid in candidates if rid in scores]
        return ordered, nested, scores
