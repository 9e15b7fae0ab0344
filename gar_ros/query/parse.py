"""Rule-based parsing of questions about regions (no network, no language model).

A question becomes a :class:`ParsedQuestion`: a kind (what / describe / attribute / relation check /
comparison / count / existence / where / free) and referring expressions (:class:`RefExpr`) for the
target, the anchors and the options. ``<region:ID>`` references become explicit references; words
such as "it" or "this" refer to the ids of the query's ``region_ids`` field, in order.

Grammar of a referring expression (over lowercase words)::

    ref      := EXPLICIT | PRONOUN [generic] | [det] [ordinal] [order-adj]* words* head
                [from-phrase | position-phrase] [clause-words] [relation anchor [and anchor]]
    relation := "left of" | "to the right of" | "above" | "on top of" | "between" | ...

The longest phrase wins, so "on the left of the cup" is a relation and "on the left" a position.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace

from gar_ros.errors import QueryError
from gar_ros.query.vocabulary import (
    CLAUSE_WORDS, COLOURS, DETERMINERS, FILLER_WORDS, FROM_PHRASES, GENERIC_HEADS, MATERIALS,
    ORDER_WORDS, ORDINALS, POSITION_PHRASES, PRONOUNS, RELATION_PHRASES, SIZES, VIEWER_WORDS,
    Order, Relation, canonical, singular,
)

REFERENCE = re.compile(r"<region:([^<>\s]{1,128})>")
_TOKEN = re.compile(r"@ref\d+|[a-z0-9]+(?:'[a-z]+)?|,")
_MAX_WORDS = 80


class Kind(str, enum.Enum):
    """What the question asks for."""

    WHAT = "what"  # name the target
    DESCRIBE = "describe"  # describe the target (with its anchors as context)
    ATTRIBUTE = "attribute"  # colour / material / shape / size / texture of the target
    CHECK = "check"  # is X <relation> Y? (yes / no)
    COMPARE = "compare"  # which is closer to X, A or B?
    COUNT = "count"  # how many X are there?
    EXISTS = "exists"  # is there an X ...?
    WHERE = "where"  # where is X?
    FREE = "free"  # any other question over explicit references


class Compare(str, enum.Enum):
    """The quantity a COMPARE question ranks the options by."""

    CLOSER = "closer"
    FARTHER = "farther"
    LARGER = "larger"
    SMALLER = "smaller"


@dataclass(frozen=True)
class RefExpr:
    """A referring expression.

    ``region_id``: an explicit id (``<region:ID>``); ``pronoun``: index into the query's
    ``region_ids`` (0 = first); otherwise ``head`` (canonical class word, None = any object) and
    ``modifiers`` (canonical words before the head). ``order``/``rank``: pick the rank-th candidate
    (1-based, -1 = last) by that ordering. ``relation`` with ``anchors`` (two for BETWEEN, or one
    plural anchor). ``plural``: the head was plural ("cups").
    """

    text: str
    region_id: str | None = None
    pronoun: int | None = None
    head: str | None = None
    modifiers: tuple[str, ...] = ()
    plural: bool = False
    order: Order | None = None
    rank: int = 1
    relation: Relation | None = None
    anchors: tuple["RefExpr", ...] = ()

    @property
    def hard_modifiers(self) -> tuple[str, ...]:
        """Colour and material words: a region must show them to match."""
        return tuple(m for m in self.modifiers if m in COLOURS or m in MATERIALS)

    @property
    def size_modifiers(self) -> tuple[str, ...]:
        return tuple(m for m in self.modifiers if m in SIZES)

    @property
    def noun(self) -> str:
        """The head phrase without relations, e.g. "red cup" or "object"."""
        words = [m for m in self.modifiers] + [self.head or "object"]
        return " ".join(words)


@dataclass(frozen=True)
class ParsedQuestion:
    """A parsed question. ``target``: the region asked about (CHECK: the subject X).

    CHECK: ``relation`` and ``other`` (Y; ``others`` for BETWEEN). COMPARE: ``compare``, the
    reference ``other`` (None for LARGER/SMALLER) and the ``options``. ATTRIBUTE: ``attribute``
    (color, material, shape, size, texture). FREE: ``text`` (the question with ``@refK`` placeholders)
    and ``explicit_ids``. ``explicit_ids`` lists the ``<region:ID>`` ids in order of appearance.
    """

    kind: Kind
    question: str
    target: RefExpr | None = None
    attribute: str | None = None
    relation: Relation | None = None
    other: RefExpr | None = None
    others: tuple[RefExpr, ...] = ()
    compare: Compare | None = None
    options: tuple[RefExpr, ...] = ()
    explicit_ids: tuple[str, ...] = ()
    text: str = ""


# ----------------------------------------------------------------------------- normalisation

_CONTRACTIONS = (
    (r"\bwhat's\b", "what is"), (r"\bwhere's\b", "where is"), (r"\bwho's\b", "who is"),
    (r"\bthat's\b", "that is"), (r"\bwhich's\b", "which is"), (r"\bthere's\b", "there is"),
    (r"\bisn't\b", "is not"), (r"\baren't\b", "are not"), (r"\bit's\b", "it is"),
    (r"\bleft-hand\b", "left"), (r"\bright-hand\b", "right"), (r"\bleft-most\b", "leftmost"),
    (r"\bright-most\b", "rightmost"), (r"\btop-most\b", "topmost"),
    (r"\bbottom-most\b", "bottommost"), (r"\bleft most\b", "leftmost"),
    (r"\bright most\b", "rightmost"), (r"\bcolour\b", "color"), (r"\bgrey\b", "gray"),
)
_POLITE = re.compile(
    r"^(?:(?:hey|hi|ok|okay|robot|gar)[, ]+)*(?:(?:please|can you|could you|would you|will you|"
    r"kindly)[, ]+)*(?:tell me |let me know )?"
)
_TRAILING = re.compile(
    r"(?:[, ]+(?:please|thanks|thank you))?"
    r"(?: (?:in|of|within|from) (?:the|this) (?:image|picture|photo|scene|frame|view|camera image))?"
    r"(?: (?:right now|now|currently))?$"
)


def _normalise(question: str, explicit: list[str]) -> str:
    """Lowercase text with ``<region:ID>`` replaced by ``@refK`` (K indexes ``explicit``)."""

    def ref(m: re.Match[str]) -> str:
        rid = m.group(1)
        if rid not in explicit:
            explicit.append(rid)
        return f" @ref{explicit.index(rid)} "

    text = REFERENCE.sub(ref, question)
    text = text.lower().replace("\u2019", "'")
    for pattern, repl in _CONTRACTIONS:
        text = re.sub(pattern, repl, text)
    text = text.replace(":", ",").replace(";", ",")
    text = re.sub(r"[^a-z0-9@',\- ]+", " ", text)
    text = text.replace("-", " ")
    text = re.sub(r"\s*,\s*", ", ", text)
    text = re.sub(r"\s+", " ", text).strip(" ,")
    text = _POLITE.sub("", text).strip(" ,")
    text = _TRAILING.sub("", text).strip(" ,")
    return text


# ----------------------------------------------------------------------------- referring expressions


def _match_phrase(tokens: list[str], i: int, table: dict[tuple[str, ...], object]) -> int:
    """Length of the longest phrase of ``table`` at ``tokens[i:]`` (0 when none)."""
    best = 0
    for phrase in table:
        n = len(phrase)
        if n > best and tuple(tokens[i : i + n]) == phrase:
            best = n
    return best


class _RefParser:
    """Recursive-descent parser of referring expressions over a token list."""

    def __init__(self, tokens: list[str], explicit: list[str]) -> None:
        self.tokens = tokens
        self.explicit = explicit
        self.pronouns_used = 0

    def text(self, i: int, j: int) -> str:
        """Surface text of tokens[i:j] with ``@refK`` rendered as "region ID"."""
        return " ".join(
            f"region {self.explicit[int(t[4:])]}" if t.startswith("@ref") else t
            for t in self.tokens[i:j]
        )

    def phrase_at(self, i: int) -> tuple[str, int]:
        """Which table's phrase starts at i: ("relation"|"position"|"from"|"", length)."""
        lengths = {
            "relation": _match_phrase(self.tokens, i, RELATION_PHRASES),
            "position": _match_phrase(self.tokens, i, POSITION_PHRASES),
            "from": _match_phrase(self.tokens, i, FROM_PHRASES),
        }
        kind = max(lengths, key=lambda k: lengths[k])
        if lengths[kind] == 0:
            return "", 0
        # "closest to the camera" style relations win over "closest" as an order word elsewhere.
        return kind, lengths[kind]

    def relation_at(self, i: int) -> tuple[Relation | None, int]:
        """A relation at i, allowing clause words first ("that is directly left of")."""
        j = i
        while j < len(self.tokens) and self.tokens[j] in CLAUSE_WORDS:
            kind, n = self.phrase_at(j)
            if kind == "relation":
                break
            j += 1
        kind, n = self.phrase_at(j)
        if kind != "relation":
            return None, 0
        return RELATION_PHRASES[tuple(self.tokens[j : j + n])], j + n - i

    def parse(self, i: int, stops: frozenset[str] = frozenset(), with_relation: bool = True
              ) -> tuple[RefExpr, int]:
        """Parse one referring expression at ``tokens[i]``; returns it and the next index."""
        toks = self.tokens
        start = i
        if i >= len(toks):
            raise QueryError("expected a description of an object, got nothing")
        tok = toks[i]
        if tok.startswith("@ref"):
            rid = self.explicit[int(tok[4:])]
            return RefExpr(text=f"region {rid}", region_id=rid), i + 1
        if tok in PRONOUNS:
            i += 1
            if i < len(toks) and toks[i] in GENERIC_HEADS:
                i += 1
            ref = RefExpr(text="it" if tok == "it" else f"{tok} object", pronoun=self.pronouns_used)
            self.pronouns_used += 1
            return ref, i
        # "what is left of the cup": a relation without any noun phrase.
        relation, n = self.relation_at(i) if with_relation else (None, 0)
        if relation is not None:
            return self._relation_tail(RefExpr(text="object"), i, stops, start)
        while i < len(toks) and toks[i] in DETERMINERS:
            i += 1
        rank, order, plural_det = 1, None, False
        words: list[str] = []
        plural = False
        while i < len(toks):
            tok = toks[i]
            if tok in stops or tok == "," or tok.startswith("@ref"):
                break
            kind, n = self.phrase_at(i)
            if kind and (words or kind == "relation" and tok not in ORDER_WORDS):
                break
            if tok in ORDINALS and not words:
                rank = ORDINALS[tok]
                i += 1
                continue
            if tok == "most" and i + 1 < len(toks) and toks[i + 1] in ("distant", "remote"):
                order = Order.FARTHEST
                i += 2
                continue
            if tok in ORDER_WORDS and not words and not (
                i + 1 < len(toks) and toks[i + 1] in ("of", "to", "from")
            ):
                if tok == "far" or order is None or ORDER_WORDS[tok] == order:
                    order = ORDER_WORDS[tok]
                i += 1
                continue
            if tok in ("is", "are", "that", "which", "who", "and", "or", "than", "there", "to",
                       "from", "with", "has", "have", "do", "does", "can", "made", "bigger",
                       "larger", "smaller", "closer", "nearer", "farther", "further", "not"):
                break
            if tok in DETERMINERS or tok in ("far",):
                i += 1
                continue
            words.append(tok)
            i += 1
        if not words and order is None and rank == 1:
            raise QueryError(f"expected an object after {' '.join(toks[start:i]) or 'the start'!r}")
        head, modifiers, plural = _head_and_modifiers(words)
        # Post-head ordering: "from the left", "on the left".
        kind, n = self.phrase_at(i) if i < len(toks) else ("", 0)
        if kind == "from":
            order = FROM_PHRASES[tuple(toks[i : i + n])]
            i += n
        elif kind == "position":
            order = POSITION_PHRASES[tuple(toks[i : i + n])]
            i += n
        if rank != 1 and order is None:
            order = Order.LEFTMOST  # "the second cup": reading order
        ref = RefExpr(
            text=self.text(start, i), head=head, modifiers=modifiers, plural=plural or plural_det,
            order=order, rank=rank,
        )
        if with_relation:
            relation, n = self.relation_at(i)
            if relation is not None:
                return self._relation_tail(ref, i, stops, start)
        return ref, i

    def _relation_tail(self, ref: RefExpr, i: int, stops: frozenset[str], start: int
                       ) -> tuple[RefExpr, int]:
        relation, n = self.relation_at(i)
        if relation is None:
            raise QueryError(f"expected a relation such as 'left of' at {' '.join(self.tokens[i:])!r}")
        i += n
        if relation is Relation.BETWEEN:
            first, i = self.parse(i, stops | {"and"}, with_relation=False)
            if i < len(self.tokens) and self.tokens[i] == "and":
                second, i = self.parse(i + 1, stops, with_relation=False)
                anchors: tuple[RefExpr, ...] = (first, second)
            elif first.plural:
                anchors = (first,)
            else:
                raise QueryError("'between' needs two objects: 'between A and B'")
        else:
            anchor, i = self.parse(i, stops)
            if anchor.head in VIEWER_WORDS and anchor.region_id is None:
                order = {
                    Relation.CLOSEST_TO: Order.CLOSEST, Relation.FARTHEST_FROM: Order.FARTHEST,
                }.get(relation)
                if order is None:
                    raise QueryError(f"cannot relate an object {relation.value} the camera")
                return replace(ref, order=order, rank=1,
                               text=self.text(start, i)), i
            anchors = (anchor,)
        return replace(ref, relation=relation, anchors=anchors,
                       text=self.text(start, i)), i


def _head_and_modifiers(words: list[str]) -> tuple[str | None, tuple[str, ...], bool]:
    """Canonical head (None = any object), modifiers and plurality of noun-phrase words."""
    words = [w for w in words if w not in FILLER_WORDS]
    if not words:
        return None, (), False
    last = words[-1]
    _, plural = singular(last)
    if last in ("ones", "objects", "things", "items", "shapes", "regions"):
        plural = True
    head_c = canonical(last)
    mods = tuple(canonical(w) for w in words[:-1])
    if last in GENERIC_HEADS or head_c in GENERIC_HEADS:
        return None, mods, plural
    if head_c in COLOURS or head_c in MATERIALS or head_c in SIZES:
        return None, mods + (head_c,), plural  # "the red", "the big"
    return head_c, mods, plural


# ----------------------------------------------------------------------------- question frames

_ATTRIBUTES = {
    "color": "color", "material": "material", "shape": "shape", "size": "size",
    "texture": "texture", "pattern": "texture",
}
_COUNT = re.compile(
    r"^(?:how many|count(?: the| all)?|number of|what is the number of)\s+(?P<x>.+?)"
    r"(?:\s+(?:are|is) there|\s+(?:can|do) you see|\s+are (?:visible|present|shown)|"
    r"\s+there are|\s+do i have|\s+(?:are )?in view|\s+are|\s+is)?$"
)
_EXISTS = re.compile(r"^(?:is|are) there (?P<x>.+)$")
_COMPARE = re.compile(
    r"^which(?: one| object| thing| item| region| of them| of these| of the two)?(?: is)?\s+"
    r"(?:(?P<rel>closer|nearer|farther|further) (?:to|from) (?P<ref>.+?)\s*[,:]|"
    r"(?P<size>larger|bigger|smaller)\s*[,:]?)\s*(?P<a>.+?),? or (?P<b>.+)$"
)
_COMPARE_OF = re.compile(
    r"^which of (?P<a>.+?),? (?:and|or) (?P<b>.+?) is\s+"
    r"(?:(?P<rel>closer|nearer|farther|further) (?:to|from) (?P<ref>.+)|(?P<size>larger|bigger|smaller))$"
)
_COMPARE_IS = re.compile(
    r"^is (?P<a>.+?) or (?P<b>.+?)\s+(?:(?P<rel>closer|nearer|farther|further) (?:to|from) "
    r"(?P<ref>.+)|(?P<size>larger|bigger|smaller))$"
)
_ATTRIBUTE = [
    re.compile(r"^(?:what|which) (?P<a>color|material|shape|size|texture|pattern)s? (?:is|are|does) "
               r"(?P<x>.+?)(?: have| made of| made from)?$"),
    re.compile(r"^what is the (?P<a>color|material|shape|size|texture|pattern) of (?P<x>.+)$"),
    re.compile(r"^(?:what|which) (?P<a>color|material|shape|size|texture|pattern)s? (?:is|are) "
               r"(?P<x>.+)$"),
    re.compile(r"^(?:tell me |give me )?the (?P<a>color|material|shape|size|texture|pattern) of "
               r"(?P<x>.+)$"),
    re.compile(r"^what (?:is|are) (?P<x>.+?) made (?:of|from)$"),
    re.compile(r"^what is (?P<x>.+?) made (?:of|from)$"),
]
_DESCRIBE = [
    re.compile(r"^(?:describe|caption|tell me about|about|say something about|talk about|"
               r"give (?:me )?a description of|what can you say about|what do you see (?:at|in))\s+"
               r"(?P<x>.+?)(?: in detail| briefly| please)?$"),
    re.compile(r"^what does (?P<x>.+) look like$"),
]
_WHAT = [
    re.compile(r"^(?:what|who|which object|which thing|what object|what thing|what item) "
               r"(?:is|are) (?P<x>.+)$"),
    re.compile(r"^(?:identify|name|find|show me|show|locate|point (?:at|to)|which is) (?P<x>.+)$"),
    re.compile(r"^what is (?P<x>.+)$"),
]
_WHERE = re.compile(r"^where (?:is|are) (?P<x>.+)$")
_CHECK = re.compile(r"^(?:is|are) (?P<x>.+)$")


class _Frames:
    """Applies the question frames to normalised text."""

    def __init__(self, text: str, explicit: list[str], question: str) -> None:
        self.text = text
        self.explicit = explicit
        self.question = question
        self.parser = _RefParser(_TOKEN.findall(text), explicit)

    def ref(self, fragment: str, *, plural_ok: bool = False, with_relation: bool = True) -> RefExpr:
        """Parse a whole fragment as one referring expression (QueryError on leftovers)."""
        parser = self.parser
        tokens = _TOKEN.findall(fragment)
        parser.tokens = tokens
        ref, end = parser.parse(0, with_relation=with_relation)
        if end != len(tokens):
            raise QueryError(f"did not understand {' '.join(tokens[end:])!r} in {fragment!r}")
        return ref

    def check(self, fragment: str) -> ParsedQuestion:
        """``X <relation> Y`` after "is"; or ``X larger/smaller than Y``."""
        parser = self.parser
        tokens = _TOKEN.findall(fragment)
        parser.tokens = tokens
        subject, i = parser.parse(0, with_relation=False)
        if tokens[i : i + 1] and tokens[i] in ("not",):
            i += 1
        size = {"larger": Compare.LARGER, "bigger": Compare.LARGER, "smaller": Compare.SMALLER}
        if i < len(tokens) and tokens[i] in size and tokens[i + 1 : i + 2] == ["than"]:
            other, end = parser.parse(i + 2)
            if end != len(tokens):
                raise QueryError(f"did not understand {' '.join(tokens[end:])!r}")
            return ParsedQuestion(Kind.COMPARE, self.question, compare=size[tokens[i]],
                                  options=(subject, other), explicit_ids=tuple(self.explicit))
        relation, n = parser.relation_at(i)
        if relation is None:
            raise QueryError(f"no spatial relation after {' '.join(tokens[:i])!r}")
        probe = replace(subject, relation=None)
        full, end = parser._relation_tail(probe, i, frozenset(), 0)
        if end != len(tokens):
            raise QueryError(f"did not understand {' '.join(tokens[end:])!r}")
        if full.relation is None:  # "closest to the camera"
            raise QueryError("ask 'which is closest to the camera' instead of a yes/no question")
        return ParsedQuestion(
            Kind.CHECK, self.question, target=subject, relation=full.relation,
            other=full.anchors[0], others=full.anchors, explicit_ids=tuple(self.explicit),
        )

    def compare(self, m: re.Match[str]) -> ParsedQuestion:
        a = self.ref(m.group("a"))
        b = self.ref(m.group("b"))
        if m.group("size"):
            kind = Compare.SMALLER if m.group("size") == "smaller" else Compare.LARGER
            return ParsedQuestion(Kind.COMPARE, self.question, compare=kind, options=(a, b),
                                  explicit_ids=tuple(self.explicit))
        kind = Compare.CLOSER if m.group("rel") in ("closer", "nearer") else Compare.FARTHER
        ref_text = m.group("ref")
        ref = self.ref(ref_text)
        if ref.head in VIEWER_WORDS and ref.region_id is None:
            ref = None
        return ParsedQuestion(Kind.COMPARE, self.question, compare=kind, other=ref,
                              options=(a, b), explicit_ids=tuple(self.explicit))


def parse_question(question: str, region_ids: tuple[str, ...] | list[str] = ()) -> ParsedQuestion:
    """Parse ``question``; raises :class:`QueryError` with a helpful message when it cannot.

    ``region_ids`` is only used to decide whether an unparsed question may still be answered as a
    FREE question (it refers to regions explicitly).
    """
    if not question or not question.strip():
        raise QueryError("empty question")
    explicit: list[str] = []
    text = _normalise(question, explicit)
    if not text:
        raise QueryError("empty question")
    if len(_TOKEN.findall(text)) > _MAX_WORDS:
        raise QueryError(f"question too long to parse (more than {_MAX_WORDS} words)")
    frames = _Frames(text, explicit, question)
    has_refs = bool(explicit) or bool(region_ids)
    try:
        return _parse_frames(frames, text)
    except QueryError as err:
        if has_refs:
            return ParsedQuestion(Kind.FREE, question, explicit_ids=tuple(explicit), text=question)
        raise QueryError(f"{err}. {HELP}") from err


def needs_grounding(question: str, region_ids: tuple[str, ...] | list[str] = ()) -> bool:
    """True when the question refers to regions by words or relations (not only by explicit ids
    in a free question), i.e. when :func:`gar_ros.query.answer_question` should handle it."""
    try:
        parsed = parse_question(question, region_ids)
    except QueryError:
        return False
    return parsed.kind is not Kind.FREE


HELP = (
    "Ask e.g. 'what is the object left of the cup?', 'describe the largest box', 'what colour is "
    "the second cup from the left?', 'is the bottle left of the cup?', 'which is closer to the "
    "plate, the cup or the bottle?', 'how many cups are there?', or refer to regions as <region:ID>"
)


def _parse_frames(frames: _Frames, text: str) -> ParsedQuestion:
    q = frames.question
    ids = tuple(frames.explicit)
    for pattern in (_COMPARE, _COMPARE_OF, _COMPARE_IS):
        m = pattern.match(text)
        if m:
            return frames.compare(m)
    m = _COUNT.match(text)
    if m:
        target = frames.ref(m.group("x"))
        return ParsedQuestion(Kind.COUNT, q, target=target, explicit_ids=ids)
    m = _EXISTS.match(text)
    if m:
        return ParsedQuestion(Kind.EXISTS, q, target=frames.ref(m.group("x")), explicit_ids=ids)
    for pattern in _ATTRIBUTE:
        m = pattern.match(text)
        if m:
            attribute = _ATTRIBUTES[m.group("a")] if "a" in m.groupdict() and m.group("a") else "material"
            return ParsedQuestion(Kind.ATTRIBUTE, q, target=frames.ref(m.group("x")),
                                  attribute=attribute, explicit_ids=ids)
    for pattern in _DESCRIBE:
        m = pattern.match(text)
        if m:
            return ParsedQuestion(Kind.DESCRIBE, q, target=frames.ref(m.group("x")), explicit_ids=ids)
    m = _WHERE.match(text)
    if m:
        return ParsedQuestion(Kind.WHERE, q, target=frames.ref(m.group("x")), explicit_ids=ids)
    m = _CHECK.match(text)
    if m:
        return frames.check(m.group("x"))
    for pattern in _WHAT:
        m = pattern.match(text)
        if m:
            return ParsedQuestion(Kind.WHAT, q, target=frames.ref(m.group("x")), explicit_ids=ids)
    # A bare referring expression ("the cup left of the plate") asks what it is.
    if not re.match(r"^(?:what|who|why|how|when|which|where|do|does|can|could|should|would|will)\b",
                    text):
        return ParsedQuestion(Kind.WHAT, q, target=frames.ref(text), explicit_ids=ids)
    raise QueryError(f"unsupported question {q!r}")
