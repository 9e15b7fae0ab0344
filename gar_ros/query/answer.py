"""Answering natural-language questions about the regions of one frame with a GAR model.

Flow: parse (:mod:`.parse`) -> ground target and anchors (:mod:`.grounding`) -> when geometry
alone cannot separate candidates, a GAR multiple-choice question over them -> a GAR question
about the target (``<Prompt0>``) and its anchors (``<Prompt1..>``) -> an :class:`Answer` whose
text names the object and whose ``region_ids`` list the target first, then the anchors.
Yes/no relation checks, comparisons and counts are answered from geometry (the model is used
only for grounding captions when labels are missing).
"""
from __future__ import annotations

import re
import weakref
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import numpy as np

from gar_ros.errors import QueryError, RegionError
from gar_ros.query.config import QueryConfig
from gar_ros.query.geometry import Geometry
from gar_ros.query.grounding import CaptionCache, Grounder, Grounding, caption_subject, id_list
from gar_ros.query.parse import Compare, Kind, ParsedQuestion, RefExpr, parse_question
from gar_ros.query.vocabulary import Order, Relation
from gar_ros.types import Answer, AnswerStatus, Region

LETTERS = "ABCDEFGH"
_REFERENCE = re.compile(r"<region:([^<>\s]{1,128})>")

# One caption cache per model object when the caller passes none (captions are per track id).
_DEFAULT_CACHES: "weakref.WeakKeyDictionary[Any, CaptionCache]" = weakref.WeakKeyDictionary()
_FALLBACK_CACHE = CaptionCache()


def _default_cache(model: Any) -> CaptionCache:
    try:
        cache = _DEFAULT_CACHES.get(model)
        if cache is None:
            cache = _DEFAULT_CACHES[model] = CaptionCache()
        return cache
    except TypeError:  # not weak-referenceable
        return _FALLBACK_CACHE


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text


def _strip_det(text: str) -> str:
    return re.sub(r"^(?:the|a|an|any|some)\s+", "", text.strip())


def subject_phrase(ref: RefExpr) -> str:
    """How the answer names the target: "the object left of the red square", "region 3"."""
    if ref.region_id is not None:
        return f"region {ref.region_id}"
    if ref.pronoun is not None:
        return "this object"
    body = _strip_det(ref.text)
    if ref.head is None and not ref.modifiers and not body.startswith(("object", "thing", "one")):
        if ref.order is not None and body.startswith(ref.order.value):
            return f"the {body}"
        body = f"object {body}"
    return f"the {body}"


class _Session:
    """State of one question: the model, the frame, the grounder and the answer helpers."""

    def __init__(self, model: Any, image: np.ndarray, regions: Sequence[Region], grounder: Grounder,
                 config: QueryConfig, *, max_new_tokens: int, frame_key: str | None,
                 on_text: Callable[[str], bool] | None) -> None:
        self.model = model
        self.image = image
        self.by_id = {r.id: r for r in regions}
        self.g = grounder
        self.geo: Geometry = grounder.geometry
        self.config = config
        self.max_new_tokens = max_new_tokens
        self.frame_key = frame_key
        self.on_text = on_text
        cfg = getattr(model, "config", None)
        self.prompt_numbers = int(getattr(cfg, "prompt_numbers", 5) or 5)
        self.notes: list[str] = []
        self.streamed: str | None = None  # the last text passed to on_text

    # ------------------------------------------------------------------ model calls
    def ask(self, ids: Sequence[str], question: str, *, prefix: str = "",
            max_new_tokens: int | None = None, stream: bool = True) -> Answer:
        """``model.ask`` over regions ``ids`` (``<Prompt0>`` = ids[0]); streams prefix + text."""
        regions = [self.by_id[i] for i in ids[: self.prompt_numbers]]
        callback = None
        if stream and self.on_text is not None:
            user = self.on_text

            def callback(text: str) -> bool:
                self.streamed = prefix + text
                return user(self.streamed)

        return self.model.ask(self.image, regions, question,
                              max_new_tokens=max_new_tokens or self.max_new_tokens,
                              frame_key=self.frame_key, on_text=callback)

    def describe_region(self, rid: str) -> Answer:
        """The model's own single-region description of ``rid`` (also refreshes its caption)."""
        texts = self.model.describe(self.image, [self.by_id[rid]], max_new_tokens=self.max_new_tokens,
                                    frame_key=self.frame_key)
        text = texts[0].text if texts else ""
        if text:
            self.g.captions[rid] = text
        return Answer(AnswerStatus.OK, text=text, region_ids=[rid],
                      token_ids=list(texts[0].token_ids) if texts else [])

    def name(self, rid: str) -> str:
        """Short name of a region for answers: label, cached caption, or "region ID"."""
        region = self.by_id[rid]
        if region.label:
            return f"the {region.label} (region {rid})"
        caption = self.g.captions.get(rid) if rid in self.g.captions else None
        if caption:
            return f"{caption_subject(caption).rstrip('.')} (region {rid})"
        return f"region {rid}"

    def choose(self, res: Grounding) -> str | None:
        """Ask the model to pick among geometrically tied candidates (None when it cannot)."""
        ref = res.ref
        if not self.config.multiple_choice or ref is None or not res.tie:
            return None
        anchors = res.anchors[: len(ref.anchors)] if ref.relation is not None else []
        room = min(self.config.max_options, self.prompt_numbers - len(anchors))
        cands = res.ids[:room]
        if len(cands) < 2:
            return None
        # Options in the frame's region order, not by geometric rank: the letter must not leak it.
        cands = sorted(cands, key=self.g.order.index)
        if ref.relation is not None and ref.order is None:
            if ref.relation is Relation.BETWEEN and len(anchors) == 2:
                anchor_text = "<Prompt0> and <Prompt1>"
            else:
                anchor_text = " and ".join(f"<Prompt{k}>" for k in range(len(anchors)))
            question = f"Which object is {ref.relation.value} {anchor_text}?"
            regions = anchors + cands
            first = len(anchors)
        else:
            order = ref.order or Order.LEFTMOST
            names = [f"<Prompt{k}>" for k in range(len(cands))]
            listed = ", ".join(names[:-1]) + " and " + names[-1]
            phrase = {Order.MIDDLE: "in the middle", Order.CLOSEST: "the closest to the camera",
                      Order.FARTHEST: "the farthest from the camera"}.get(order, f"the {order.value}")
            question = f"Which one among {listed} is {phrase}?"
            regions = cands
            first = 0
        options = [f"{LETTERS[i]}. <Prompt{first + i}>" for i in range(len(cands))]
        text = "\n".join([f"Question: {question}", "Options:", *options]) + self.config.choice_suffix
        try:
            out = self.ask(regions, text, max_new_tokens=4, stream=False)
        except QueryError:
            return None
        letter = out.text.strip()[:1].upper()
        if out.status != AnswerStatus.OK or letter not in LETTERS[: len(cands)]:
            return None
        chosen = cands[LETTERS.index(letter)]
        self.notes.append(f"geometry alone could not separate regions {id_list(cands)}; "
                          f"the model chose region {chosen}")
        return chosen

    def single(self, ref: RefExpr) -> tuple[Grounding, str | None]:
        """Ground ``ref`` to one region, with a model choice on geometric ties."""
        res = self.g.resolve(ref)
        if res.ok:
            return res, res.ids[0]
        chosen = self.choose(res) if res.tie else None
        return res, chosen

    def failure(self, res: Grounding) -> Answer:
        status = res.status if res.status != AnswerStatus.OK else AnswerStatus.NOT_FOUND
        message = res.message or "could not find that object"
        return Answer(status, text=_sentence(message) + ("." if not message.endswith("?") else ""),
                      region_ids=list(res.ids), message=message)

    def finish(self, answer: Answer, text: str, ids: Sequence[str]) -> Answer:
        """An OK answer with ``text`` and ids (target first), keeping the model's tokens."""
        ordered: list[str] = []
        for rid in ids:
            if rid not in ordered:
                ordered.append(rid)
        note = "; ".join(m for m in (answer.message, *self.notes) if m)
        if answer.status == AnswerStatus.OK and self.on_text is not None and self.streamed != text:
            self.stream_final(text)  # the last text streamed is the final answer
        if answer.status != AnswerStatus.OK:
            answer.region_ids = ordered
            answer.message = note
            return answer
        return Answer(AnswerStatus.OK, text=text, region_ids=ordered, message=note,
                      token_ids=list(answer.token_ids))

    def stream_final(self, text: str) -> None:
        if self.on_text is not None:
            self.streamed = text
            self.on_text(text)

    # ------------------------------------------------------------------ question kinds
    def what(self, q: ParsedQuestion) -> Answer:
        res, target = self.single(q.target)
        if target is None:
            return self.failure(res)
        phrase = subject_phrase(q.target)
        prefix = f"{_sentence(phrase)} is "
        if self.config.what_template is None:
            out = self.describe_region(target)
        else:
            out = self.ask([target], self.config.what_template, prefix=prefix)
        body = out.text.strip().rstrip(".")
        text = f"{prefix}{body}." if body else f"{_sentence(phrase)} is region {target}."
        return self.finish(out, text, [target, *res.anchors])

    def describe(self, q: ParsedQuestion) -> Answer:
        res, target = self.single(q.target)
        if target is None:
            return self.failure(res)
        anchors = [a for a in res.anchors if a != target][: self.prompt_numbers - 1]
        phrase = _sentence(subject_phrase(q.target))
        if anchors and self.config.describe_with_anchors:
            names = " and ".join(f"<Prompt{k + 1}>" for k in range(len(anchors)))
            question = self.config.describe_template.format(anchors=names)
            out = self.ask([target, *anchors], question, prefix=f"{phrase}: ")
        else:
            out = self.describe_region(target)
        return self.finish(out, f"{phrase}: {out.text.strip()}", [target, *res.anchors])

    def attribute(self, q: ParsedQuestion) -> Answer:
        res, target = self.single(q.target)
        if target is None:
            return self.failure(res)
        attribute = q.attribute or "color"
        question = self.config.attribute_templates.get(attribute, f"What is the {attribute} of <Prompt0>?")
        phrase = subject_phrase(q.target)
        prefix = f"The {attribute} of {phrase} is "
        out = self.ask([target], question, prefix=prefix)
        body = out.text.strip().rstrip(".")
        return self.finish(out, f"{prefix}{body}.", [target, *res.anchors])

    def check(self, q: ParsedQuestion) -> Answer:
        res_x, x = self.single(q.target)
        if x is None:
            return self.failure(res_x)
        anchors: list[str] = []
        for other in q.others:
            if q.relation is Relation.BETWEEN and len(q.others) == 1:
                r = self.g.resolve(other, plural=True)
                if not r.ok or len(r.ids) != 2:
                    return self.failure(r if not r.ok else Grounding(
                        AnswerStatus.AMBIGUOUS, r.ids, message="'between' needs exactly two objects"))
                anchors += r.ids
                continue
            r, y = self.single(other)
            if y is None:
                return self.failure(r)
            anchors.append(y)
        if x in anchors:
            return Answer(AnswerStatus.INVALID, text="Both names refer to the same region.",
                          region_ids=[x], message=f"both names refer to region {x}")
        holds = self.geo.relation(q.relation, x, tuple(anchors)) is not None
        how = ""
        if q.relation in (Relation.IN_FRONT_OF, Relation.BEHIND):
            shapes = [self.geo.shapes[i] for i in [x, *anchors]]
            how = " (from depth)" if all(s.depth is not None for s in shapes) else " (from image cues)"
        other_text = " and ".join(self.name(a) for a in anchors)
        verb = "is" if holds else "is not"
        text = f"{'Yes' if holds else 'No'}, {self.name(x)} {verb} {q.relation.value} {other_text}{how}."
        self.stream_final(text)
        return self.finish(Answer(AnswerStatus.OK), text, [x, *anchors])

    def compare(self, q: ParsedQuestion) -> Answer:
        picks: list[str] = []
        for option in q.options:
            r, rid = self.single(option)
            if rid is None:
                return self.failure(r)
            picks.append(rid)
        if picks[0] == picks[1]:
            return Answer(AnswerStatus.INVALID, text="Both options are the same region.",
                          region_ids=picks[:1], message=f"both options refer to region {picks[0]}")
        ref_id: str | None = None
        if q.other is not None:
            r, ref_id = self.single(q.other)
            if ref_id is None:
                return self.failure(r)
            if ref_id in picks:
                return Answer(AnswerStatus.INVALID, text="An option is the reference object itself.",
                              region_ids=[ref_id], message=f"region {ref_id} is both option and reference")
        a, b = picks
        if q.compare in (Compare.LARGER, Compare.SMALLER):
            va, vb = self.geo.shapes[a].area, self.geo.shapes[b].area
            tol = self.config.area_tie_frac * max(va, vb)
            word = "larger" if q.compare is Compare.LARGER else "smaller"
            sign = 1 if q.compare is Compare.LARGER else -1
        else:
            if ref_id is not None:
                va, vb = self.geo.gap(a, ref_id), self.geo.gap(b, ref_id)
                if abs(va - vb) <= self.config.tie_px:  # both touch: compare centres
                    va = self.geo._centre_tiebreak(a, ref_id, va)
                    vb = self.geo._centre_tiebreak(b, ref_id, vb)
                tol = max(self.config.tie_px, self.config.tie_frac * min(va, vb))
            else:
                sa, sb = self.geo.shapes[a], self.geo.shapes[b]
                if sa.depth is not None and sb.depth is not None:
                    va, vb, tol = sa.depth, sb.depth, self.config.depth_margin_m
                else:
                    va, vb, tol = -sa.y2, -sb.y2, self.config.tie_px
            word = "closer to" if q.compare is Compare.CLOSER else "farther from"
            sign = -1 if q.compare is Compare.CLOSER else 1
        ref_text = (f" {self.name(ref_id)}" if ref_id else " the camera") if "to" in word or "from" in word else ""
        if abs(va - vb) <= tol:
            winner = self._compare_choice(q, a, b, ref_id, word)
            if winner is None:
                msg = f"regions {a} and {b} are about equally {word.split()[0]}{ref_text}"
                return Answer(AnswerStatus.AMBIGUOUS, text=_sentence(msg) + ".", region_ids=[a, b],
                              message=msg)
        else:
            winner = a if sign * (va - vb) > 0 else b
        loser = b if winner == a else a
        text = f"{_sentence(self.name(winner))} is {word}{ref_text} than {self.name(loser)}."
        self.stream_final(text)
        ids = [winner, *([ref_id] if ref_id else []), loser]
        return self.finish(Answer(AnswerStatus.OK), text, ids)

    def _compare_choice(self, q: ParsedQuestion, a: str, b: str, ref_id: str | None, word: str
                        ) -> str | None:
        if not self.config.multiple_choice:
            return None
        if ref_id is not None:
            regions, first, question = [ref_id, a, b], 1, f"Which object is {word} <Prompt0>?"
        else:
            target = {"larger": "the largest", "smaller": "the smallest"}.get(word, f"{word} the camera")
            regions, first = [a, b], 0
            question = f"Which one among <Prompt0> and <Prompt1> is {target}?"
        options = [f"{LETTERS[i]}. <Prompt{first + i}>" for i in range(2)]
        text = "\n".join([f"Question: {question}", "Options:", *options]) + self.config.choice_suffix
        out = self.ask(regions, text, max_new_tokens=4, stream=False)
        letter = out.text.strip()[:1].upper()
        if out.status != AnswerStatus.OK or letter not in "AB":
            return None
        chosen = (a, b)["AB".index(letter)]
        self.notes.append(f"regions {a} and {b} are about equal by geometry; the model chose region {chosen}")
        return chosen

    def count(self, q: ParsedQuestion, exists: bool) -> Answer:
        ref = q.target
        res = self.g.resolve(ref, plural=True)
        if res.status == AnswerStatus.NOT_FOUND and not res.about_anchor:
            ids: list[str] = []
        elif not res.ok:
            return self.failure(res)
        else:
            ids = list(res.ids)
        noun = ref.noun
        if exists:
            if ids:
                text = f"Yes, there {'is' if len(ids) == 1 else 'are'} {len(ids)}: region{'s' if len(ids) > 1 else ''} {id_list(ids)}."
            else:
                text = f"No, there is no {noun}{self._relation_text(ref, res)}."
        else:
            plural = noun if len(ids) == 1 else _plural_noun(noun)
            where = self._relation_text(ref, res)
            if not ids:
                text = f"There are no {plural}{where}."
            elif len(ids) == 1:
                text = f"There is 1 {plural}{where}: region {ids[0]}."
            else:
                text = f"There are {len(ids)} {plural}{where}: regions {id_list(ids)}."
        self.stream_final(text)
        return self.finish(Answer(AnswerStatus.OK), text, [*ids, *res.anchors])

    def _relation_text(self, ref: RefExpr, res: Grounding) -> str:
        if ref.relation is None:
            return ""
        anchors = " and ".join(self.name(a) for a in res.anchors[: len(ref.anchors) or 1])
        return f" {ref.relation.value} {anchors}" if anchors else ""

    def where(self, q: ParsedQuestion) -> Answer:
        res, target = self.single(q.target)
        if target is None:
            return self.failure(res)
        position = self.geo.image_position(target)
        where = f"in the {position} of the image" if position != "centre" else "in the centre of the image"
        others = [r for r in self.by_id if r != target]
        ids = [target]
        if others:
            nearest = min(others, key=lambda r: self.geo._centre_tiebreak(target, r, self.geo.gap(target, r)))
            for rel in (Relation.ON, Relation.INSIDE, Relation.UNDER, Relation.LEFT_OF, Relation.RIGHT_OF,
                        Relation.ABOVE, Relation.BELOW, Relation.NEAR):
                if self.geo.relation(rel, target, (nearest,)) is not None:
                    where += f", {rel.value} {self.name(nearest)}"
                    ids.append(nearest)
                    break
        text = f"{_sentence(self.name(target))} is {where}."
        self.stream_final(text)
        return self.finish(Answer(AnswerStatus.OK), text, [*ids, *res.anchors])

    def free(self, q: ParsedQuestion, question: str, region_ids: Sequence[str]) -> Answer:
        ordered: list[str] = []
        for m in _REFERENCE.finditer(question):
            if m.group(1) not in ordered:
                ordered.append(m.group(1))
        referenced = len(ordered)
        ordered += [r for r in region_ids if r not in ordered]
        if not ordered:
            return Answer(AnswerStatus.INVALID, text="I did not understand the question.",
                          message="the question names no region and could not be parsed")
        if len(ordered) > self.prompt_numbers:
            return Answer(AnswerStatus.INVALID, text="Too many regions in one question.",
                          region_ids=ordered,
                          message=f"{len(ordered)} regions; the model takes at most {self.prompt_numbers}")
        index = {rid: k for k, rid in enumerate(ordered)}
        text = _REFERENCE.sub(lambda m: f"<Prompt{index[m.group(1)]}>", question)
        if referenced == 0:
            text = " ".join(f"<Prompt{k}>" for k in range(len(ordered))) + " " + text
        out = self.ask(ordered, text)
        return self.finish(out, out.text.strip(), ordered)


def _plural_noun(noun: str) -> str:
    words = noun.split(" ")
    last = words[-1]
    if last.endswith(("s", "x", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and len(last) > 2 and last[-2] not in "aeiou":
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join(words[:-1] + [last])


def answer_question(
    model: Any,
    image: np.ndarray,
    regions: Sequence[Region],
    question: str,
    *,
    region_ids: Sequence[str] = (),
    max_new_tokens: int | None = None,
    on_text: Callable[[str], bool] | None = None,
    frame_key: str | None = None,
    depth: np.ndarray | None = None,
    caption_cache: MutableMapping[str, str] | None = None,
    config: QueryConfig | None = None,
) -> Answer:
    """Answer ``question`` about ``regions`` of ``image`` with ``model`` (see the package doc)."""
    cfg = config or QueryConfig()
    region_ids = [str(r) for r in region_ids if str(r)]
    known = {r.id for r in regions}
    explicit = [m.group(1) for m in _REFERENCE.finditer(question or "")]
    unknown = [r for r in dict.fromkeys([*explicit, *region_ids]) if r not in known]
    if unknown:
        msg = f"no region {id_list(unknown)} in this frame"
        return Answer(AnswerStatus.NOT_FOUND, text=_sentence(msg) + ".", region_ids=unknown, message=msg)
    try:
        parsed = parse_question(question, region_ids)
    except QueryError as err:
        return Answer(AnswerStatus.INVALID, text="I did not understand the question.", message=str(err))
    if not regions:
        msg = "there are no regions in this frame"
        return Answer(AnswerStatus.NOT_FOUND, text=_sentence(msg) + ".", message=msg)
    cache = caption_cache if caption_cache is not None else _default_cache(model)
    height, width = image.shape[:2]

    def captioner(todo: Sequence[Region]) -> dict[str, str]:
        texts = model.describe(image, list(todo), max_new_tokens=cfg.caption_max_new_tokens,
                               frame_key=frame_key)
        return {t.region_id: t.text for t in texts}

    try:
        grounder = Grounder(regions, cfg, region_ids=region_ids, captioner=captioner,
                            caption_cache=cache, image_size=(width, height),
                            depth_image=depth if isinstance(depth, np.ndarray) and depth.ndim == 2 else None)
    except RegionError as err:
        return Answer(AnswerStatus.INVALID, text="A region of this frame cannot be used.", message=str(err))
    session = _Session(model, image, regions, grounder, cfg,
                       max_new_tokens=max_new_tokens or cfg.max_new_tokens, frame_key=frame_key,
                       on_text=on_text)
    try:
        if parsed.kind is Kind.WHAT:
            return session.what(parsed)
        if parsed.kind is Kind.DESCRIBE:
            return session.describe(parsed)
        if parsed.kind is Kind.ATTRIBUTE:
            return session.attribute(parsed)
        if parsed.kind is Kind.CHECK:
            return session.check(parsed)
        if parsed.kind is Kind.COMPARE:
            return session.compare(parsed)
        if parsed.kind in (Kind.COUNT, Kind.EXISTS):
            return session.count(parsed, exists=parsed.kind is Kind.EXISTS)
        if parsed.kind is Kind.WHERE:
            return session.where(parsed)
        return session.free(parsed, question, region_ids)
    except QueryError as err:
        return Answer(AnswerStatus.INVALID, text="I could not ask the model that question.",
                      message=str(err))
