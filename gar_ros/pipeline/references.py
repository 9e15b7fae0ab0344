"""Region references in questions: ``<region:ID>`` → ``<PromptK>``.

Referenced regions become ``<Prompt0>``, ``<Prompt1>``, ... in order of first appearance; ids given
only in ``region_ids`` follow them. A ``<PromptK>`` typed by the user refers to the K-th region of
that final list and is kept only when that region exists; any other text that looks like a model
special token (``<|...|>``, ``<image>``, out-of-range ``<PromptK>``) is neutralised by breaking the
angle bracket, so it tokenises as plain text.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from gar_ros.errors import QueryError, TooManyRegionsError, UnknownRegionError

REFERENCE = re.compile(r"<region:([^<>\s]{1,128})>")
PROMPT = re.compile(r"<Prompt(\d+)>")
SPECIAL = re.compile(r"<\|[^<>]{0,64}\|>|</?(?:image|video|Prompt\d*|s|pad|unk)>", re.IGNORECASE)


@dataclass
class MappedQuestion:
    """``question`` with ``<PromptK>`` tokens; ``region_ids[k]`` is the region of ``<Prompt k>``.

    ``referenced`` is how many of them came from ``<region:ID>`` references in the text.
    """

    question: str
    region_ids: list[str]
    referenced: int


def clean_text(text: str, max_chars: int) -> str:
    """Question text without control characters, stripped; QueryError when empty or too long."""
    if len(text) > max_chars:
        raise QueryError(f"question has {len(text)} characters (limit {max_chars})")
    text = "".join(
        ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else " " for ch in text
    ).strip()
    if not text:
        raise QueryError("empty question")
    return text


def neutralise(text: str) -> str:
    """Break special-token look-alikes so they cannot become special ids (``<|x|>`` → ``< |x|>``)."""
    return SPECIAL.sub(lambda m: "< " + m.group(0)[1:], text)


def map_references(
    question: str,
    region_ids: list[str],
    known_ids: set[str] | list[str],
    *,
    max_prompts: int,
    max_chars: int = 2000,
) -> MappedQuestion:
    """Map references to prompt tokens.

    Raises :class:`QueryError` (empty or too long), :class:`UnknownRegionError` (ids that the frame
    does not have, all of them named) or :class:`TooManyRegionsError` (more than ``max_prompts``).
    """
    text = clean_text(question, max_chars)
    ordered: list[str] = []
    for match in REFERENCE.finditer(text):
        if match.group(1) not in ordered:
            ordered.append(match.group(1))
    referenced = len(ordered)
    for rid in region_ids:
        rid = str(rid)
        if rid and rid not in ordered:
            ordered.append(rid)
    known = set(known_ids)
    unknown = [rid for rid in ordered if rid not in known]
    if unknown:
        raise UnknownRegionError(unknown)
    if len(ordered) > max_prompts:
        raise TooManyRegionsError(
            f"{len(ordered)} regions in one question; the model takes at most {max_prompts}"
        )
    index = {rid: k for k, rid in enumerate(ordered)}

    # Keep user-typed <PromptK> that name an existing slot, neutralise every other special look-alike.
    pieces: list[str] = []
    pos = 0
    for match in REFERENCE.finditer(text):
        pieces.append(_neutralise_keep_prompts(text[pos : match.start()], len(ordered)))
        pieces.append(f"<Prompt{index[match.group(1)]}>")
        pos = match.end()
    pieces.append(_neutralise_keep_prompts(text[pos:], len(ordered)))
    return MappedQuestion(question="".join(pieces), region_ids=ordered, referenced=referenced)


def _neutralise_keep_prompts(text: str, slots: int) -> str:
    def repl(m: re.Match[str]) -> str:
        token = m.group(0)
        prompt = PROMPT.fullmatch(token)
        if prompt is not None and int(prompt.group(1)) < slots:
            return token
        return "< " + token[1:]

    return SPECIAL.sub(repl, text)
