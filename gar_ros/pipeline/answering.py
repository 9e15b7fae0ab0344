"""Answering one query on one joined frame.

Routing:
- video context on (``context_frames`` > 0) and a free question over explicit regions only
  (``gar_ros.query.needs_grounding`` is False): the clip of recent frames answers it;
- otherwise, with grounding on and ``gar_ros.query`` installed: ``gar_ros.query.answer_question``
  (grounds "the cup left of the bottle" to regions; handles explicit ids too);
- otherwise the question's ``<region:ID>`` references become ``<PromptK>`` and ``GarModel.ask``
  answers directly.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from gar_ros.errors import InputError, UnknownRegionError
from gar_ros.pipeline.frames import JoinedFrame, QueryRequest
from gar_ros.pipeline.references import REFERENCE, map_references
from gar_ros.types import Answer, AnswerStatus


def _query_attr(name: str) -> Callable[..., Any] | None:
    try:
        module = importlib.import_module("gar_ros.query")
    except ImportError:
        return None
    return getattr(module, name, None)


def _query_answerer() -> Callable[..., Answer] | None:
    return _query_attr("answer_question")


def _name_prompts(question: str, n: int) -> str:
    """When no region is named in the text (ids only in region_ids), name them in front."""
    if "<Prompt" in question:
        return question
    return " ".join(f"<Prompt{k}>" for k in range(n)) + " " + question


def answer_query(
    model: Any,
    joined: JoinedFrame,
    request: QueryRequest,
    *,
    max_new_tokens: int,
    max_prompts: int,
    max_chars: int,
    on_text: Callable[[str], bool] | None = None,
    grounding: bool = True,
    context: Any = None,
    caption_cache: Any = None,
) -> Answer:
    """The answer to ``request`` about ``joined`` (status OK/NOT_FOUND/AMBIGUOUS/INVALID)."""
    mapped = map_references(
        request.question,
        list(request.region_ids),
        {r.id for r in joined.regions},
        max_prompts=max_prompts,
        max_chars=max_chars,
    )
    frame = joined.frame
    explicit = bool(REFERENCE.search(request.question)) or bool(request.region_ids)
    if explicit and context is not None and grounding:
        needs = _query_attr("needs_grounding")
        explicit = needs is None or not needs(request.question, list(request.region_ids))
    if context is not None and explicit:
        question = _name_prompts(mapped.question, len(mapped.region_ids))
        try:
            answer = context.ask(model, mapped.region_ids, question, stamp=frame.stamp,
                                 max_new_tokens=max_new_tokens, on_text=on_text)
        except (InputError, UnknownRegionError):
            answer = None  # frame thinned out of the context history: single frame below
        if answer is not None:
            if not answer.region_ids:
                answer.region_ids = list(mapped.region_ids)
            answer.frame_stamp = frame.stamp
            return answer
    answerer = _query_answerer() if grounding else None
    if answerer is not None:
        answer = answerer(
            model,
            frame.image,
            joined.regions,
            request.question,
            region_ids=list(request.region_ids),
            max_new_tokens=max_new_tokens,
            on_text=on_text,
            frame_key=frame.key,
            depth=frame.depth,
            caption_cache=caption_cache,
        )
        answer.frame_stamp = frame.stamp
        return answer
    if not mapped.region_ids:
        return Answer(
            AnswerStatus.INVALID,
            message="the question names no region: use <region:ID> in the text or region_ids",
            frame_stamp=frame.stamp,
        )
    by_id = {r.id: r for r in joined.regions}
    regions = [by_id[rid] for rid in mapped.region_ids]
    question = _name_prompts(mapped.question, len(regions))
    answer = model.ask(
        frame.image,
        regions,
        question,
        max_new_tokens=max_new_tokens,
        frame_key=frame.key,
        on_text=on_text,
    )
    if not answer.region_ids:
        answer.region_ids = list(mapped.region_ids)
    answer.frame_stamp = frame.stamp
    return answer
