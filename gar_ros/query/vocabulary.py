"""Words the query parser and the label matcher know: relations, orderings, synonyms, plurals.

Every table maps lowercase words (or word tuples) to canonical forms. Matching is word based:
labels and captions go through :func:`canonical_words` exactly like the question does, so "Mugs",
"mug" and "cup" all become ``cup``.
"""
from __future__ import annotations

import enum
import re


class Relation(str, enum.Enum):
    """A binary (or, for BETWEEN, ternary) spatial relation between a target and anchor(s)."""

    LEFT_OF = "left of"
    RIGHT_OF = "right of"
    ABOVE = "above"
    BELOW = "below"
    ON = "on"
    UNDER = "under"
    NEXT_TO = "next to"
    NEAR = "near"
    BETWEEN = "between"
    IN_FRONT_OF = "in front of"
    BEHIND = "behind"
    CLOSEST_TO = "closest to"
    FARTHEST_FROM = "farthest from"
    INSIDE = "inside"


class Order(str, enum.Enum):
    """An ordering of candidates: superlatives ("the largest") and ordinal directions."""

    LARGEST = "largest"
    SMALLEST = "smallest"
    LEFTMOST = "leftmost"
    RIGHTMOST = "rightmost"
    TOPMOST = "topmost"
    BOTTOMMOST = "bottommost"
    CLOSEST = "closest"  # to the camera
    FARTHEST = "farthest"  # from the camera
    MIDDLE = "middle"


#: Relation phrases as word tuples; the parser takes the longest match.
RELATION_PHRASES: dict[tuple[str, ...], Relation] = {
    ("left", "of"): Relation.LEFT_OF,
    ("to", "the", "left", "of"): Relation.LEFT_OF,
    ("on", "the", "left", "of"): Relation.LEFT_OF,
    ("at", "the", "left", "of"): Relation.LEFT_OF,
    ("on", "the", "left", "side", "of"): Relation.LEFT_OF,
    ("to", "the", "left", "side", "of"): Relation.LEFT_OF,
    ("right", "of"): Relation.RIGHT_OF,
    ("to", "the", "right", "of"): Relation.RIGHT_OF,
    ("on", "the", "right", "of"): Relation.RIGHT_OF,
    ("at", "the", "right", "of"): Relation.RIGHT_OF,
    ("on", "the", "right", "side", "of"): Relation.RIGHT_OF,
    ("to", "the", "right", "side", "of"): Relation.RIGHT_OF,
    ("above",): Relation.ABOVE,
    ("over",): Relation.ABOVE,
    ("higher", "than"): Relation.ABOVE,
    ("below",): Relation.BELOW,
    ("lower", "than"): Relation.BELOW,
    ("on",): Relation.ON,
    ("on", "top", "of"): Relation.ON,
    ("onto",): Relation.ON,
    ("upon",): Relation.ON,
    ("atop",): Relation.ON,
    ("resting", "on"): Relation.ON,
    ("sitting", "on"): Relation.ON,
    ("lying", "on"): Relation.ON,
    ("standing", "on"): Relation.ON,
    ("under",): Relation.UNDER,
    ("underneath",): Relation.UNDER,
    ("beneath",): Relation.UNDER,
    ("next", "to"): Relation.NEXT_TO,
    ("beside",): Relation.NEXT_TO,
    ("besides",): Relation.NEXT_TO,
    ("by",): Relation.NEXT_TO,
    ("alongside",): Relation.NEXT_TO,
    ("near",): Relation.NEAR,
    ("near", "to"): Relation.NEAR,
    ("close", "to"): Relation.NEAR,
    ("nearby",): Relation.NEAR,
    ("between",): Relation.BETWEEN,
    ("in", "between"): Relation.BETWEEN,
    ("in", "front", "of"): Relation.IN_FRONT_OF,
    ("behind",): Relation.BEHIND,
    ("in", "back", "of"): Relation.BEHIND,
    ("closest", "to"): Relation.CLOSEST_TO,
    ("nearest", "to"): Relation.CLOSEST_TO,
    ("nearest",): Relation.CLOSEST_TO,
    ("closer", "to"): Relation.CLOSEST_TO,
    ("farthest", "from"): Relation.FARTHEST_FROM,
    ("furthest", "from"): Relation.FARTHEST_FROM,
    ("farthest", "away", "from"): Relation.FARTHEST_FROM,
    ("furthest", "away", "from"): Relation.FARTHEST_FROM,
    ("most", "distant", "from"): Relation.FARTHEST_FROM,
    ("in",): Relation.INSIDE,
    ("inside",): Relation.INSIDE,
    ("inside", "of"): Relation.INSIDE,
    ("within",): Relation.INSIDE,
}

#: Words that may open a relative clause before a relation ("the cup that is left of ...").
CLAUSE_WORDS: frozenset[str] = frozenset(
    {"that", "which", "who", "is", "are", "located", "placed", "positioned", "situated", "lying",
     "sitting", "standing", "found", "being", "currently", "directly", "just", "immediately",
     "right", "somewhere"}
)

#: Adjectives before the head that order candidates ("the largest cup", "the left cup").
ORDER_WORDS: dict[str, Order] = {
    "largest": Order.LARGEST, "biggest": Order.LARGEST, "widest": Order.LARGEST,
    "smallest": Order.SMALLEST, "tiniest": Order.SMALLEST,
    "leftmost": Order.LEFTMOST, "left": Order.LEFTMOST,
    "rightmost": Order.RIGHTMOST, "right": Order.RIGHTMOST,
    "topmost": Order.TOPMOST, "uppermost": Order.TOPMOST, "highest": Order.TOPMOST,
    "top": Order.TOPMOST, "upper": Order.TOPMOST,
    "bottommost": Order.BOTTOMMOST, "lowest": Order.BOTTOMMOST, "bottom": Order.BOTTOMMOST,
    "lower": Order.BOTTOMMOST, "lowermost": Order.BOTTOMMOST,
    "closest": Order.CLOSEST, "nearest": Order.CLOSEST, "front": Order.CLOSEST,
    "frontmost": Order.CLOSEST,
    "farthest": Order.FARTHEST, "furthest": Order.FARTHEST, "rearmost": Order.FARTHEST,
    "back": Order.FARTHEST, "rear": Order.FARTHEST,
    "middle": Order.MIDDLE, "central": Order.MIDDLE, "center": Order.MIDDLE, "centre": Order.MIDDLE,
}

#: Phrases after the head that order candidates over the whole image ("the cup on the left").
POSITION_PHRASES: dict[tuple[str, ...], Order] = {
    ("on", "the", "left"): Order.LEFTMOST, ("to", "the", "left"): Order.LEFTMOST,
    ("at", "the", "left"): Order.LEFTMOST, ("on", "the", "far", "left"): Order.LEFTMOST,
    ("on", "the", "left", "side"): Order.LEFTMOST, ("on", "left"): Order.LEFTMOST,
    ("on", "the", "right"): Order.RIGHTMOST, ("to", "the", "right"): Order.RIGHTMOST,
    ("at", "the", "right"): Order.RIGHTMOST, ("on", "the", "far", "right"): Order.RIGHTMOST,
    ("on", "the", "right", "side"): Order.RIGHTMOST, ("on", "right"): Order.RIGHTMOST,
    ("at", "the", "top"): Order.TOPMOST, ("on", "top"): Order.TOPMOST,
    ("at", "the", "bottom"): Order.BOTTOMMOST, ("on", "the", "bottom"): Order.BOTTOMMOST,
    ("in", "the", "middle"): Order.MIDDLE, ("in", "the", "center"): Order.MIDDLE,
    ("in", "the", "centre"): Order.MIDDLE, ("at", "the", "center"): Order.MIDDLE,
    ("in", "front"): Order.CLOSEST, ("in", "the", "front"): Order.CLOSEST,
    ("at", "the", "front"): Order.CLOSEST,
    ("in", "the", "back"): Order.FARTHEST, ("at", "the", "back"): Order.FARTHEST,
    ("in", "the", "background"): Order.FARTHEST, ("in", "the", "foreground"): Order.CLOSEST,
}

#: Ordinal directions after the head ("the second cup from the left").
FROM_PHRASES: dict[tuple[str, ...], Order] = {
    ("from", "the", "left"): Order.LEFTMOST, ("from", "left"): Order.LEFTMOST,
    ("from", "the", "right"): Order.RIGHTMOST, ("from", "right"): Order.RIGHTMOST,
    ("from", "the", "top"): Order.TOPMOST, ("from", "top"): Order.TOPMOST,
    ("from", "the", "bottom"): Order.BOTTOMMOST, ("from", "bottom"): Order.BOTTOMMOST,
    ("from", "the", "front"): Order.CLOSEST, ("from", "the", "back"): Order.FARTHEST,
}

#: Ordinals: word -> 1-based rank; -1 = last.
ORDINALS: dict[str, int] = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "last": -1,
    "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6, "7th": 7, "8th": 8, "9th": 9,
    "10th": 10,
}

DETERMINERS: frozenset[str] = frozenset({"the", "a", "an", "any", "some", "all", "every", "each"})

#: Heads that name no class: any region matches.
GENERIC_HEADS: frozenset[str] = frozenset(
    {"object", "thing", "item", "one", "region", "shape", "something", "anything", "stuff",
     "entity", "element", "figure", "segment", "area", "objects", "things", "items", "ones"}
)

#: Pronouns that refer to the regions of the query's ``region_ids`` field, in order.
PRONOUNS: frozenset[str] = frozenset({"it", "this", "that", "these", "those", "them", "here"})

#: References to the viewer: "closest to the camera" means Order.CLOSEST.
VIEWER_WORDS: frozenset[str] = frozenset({"camera", "viewer", "me", "us", "robot", "observer"})

COLOURS: frozenset[str] = frozenset(
    {"red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white",
     "gray", "cyan", "magenta", "beige", "gold", "silver", "teal", "navy", "maroon", "olive",
     "turquoise", "transparent", "dark", "light"}
)
MATERIALS: frozenset[str] = frozenset(
    {"wood", "metal", "plastic", "glass", "paper", "ceramic", "fabric", "leather", "rubber",
     "stone", "cardboard", "cotton", "wool", "steel", "aluminum", "concrete"}
)
SIZES: frozenset[str] = frozenset({"small", "large", "medium", "tiny", "huge"})

#: Word synonyms -> canonical word (applied after singularisation).
SYNONYMS: dict[str, str] = {
    # classes
    "mug": "cup", "teacup": "cup", "bottles": "bottle", "flask": "bottle",
    "couch": "sofa", "settee": "sofa", "tv": "television", "telly": "television",
    "monitor": "screen", "display": "screen", "cellphone": "phone", "smartphone": "phone",
    "mobile": "phone", "telephone": "phone", "bike": "bicycle", "automobile": "car",
    "auto": "car", "man": "person", "woman": "person", "boy": "person", "girl": "person",
    "human": "person", "people": "person", "child": "person", "kid": "person",
    "pedestrian": "person", "guy": "person", "lady": "person",
    "puppy": "dog", "kitten": "cat", "kitty": "cat", "notebook": "laptop",
    "ball": "ball", "sphere": "ball", "bin": "trash", "garbage": "trash", "rubbish": "trash",
    "dustbin": "trash", "trashcan": "trash", "stool": "chair", "seat": "chair",
    "desk": "table", "tabletop": "table", "carton": "box", "crate": "box",
    "backpack": "bag", "rucksack": "bag", "handbag": "bag", "purse": "bag",
    "plant": "plant", "houseplant": "plant", "flowerpot": "pot", "vase": "vase",
    "sneaker": "shoe", "boot": "shoe", "slipper": "shoe", "spectacles": "glasses",
    "mouse": "mouse", "keyboard": "keyboard", "scissor": "scissors",
    # shapes of the synthetic scenes
    "disc": "circle", "disk": "circle", "round": "circle", "rectangle": "square", "plus": "cross",
    # colours and materials
    "grey": "gray", "violet": "purple", "crimson": "red", "scarlet": "red",
    "wooden": "wood", "metallic": "metal", "metal": "metal", "glassy": "glass",
    "big": "large", "little": "small", "tiny": "small", "huge": "large",
    "colour": "color", "colours": "color", "colors": "color",
}

#: Irregular plurals -> singular.
IRREGULAR_PLURALS: dict[str, str] = {
    "people": "person", "men": "man", "women": "woman", "children": "child", "mice": "mouse",
    "feet": "foot", "teeth": "tooth", "geese": "goose", "knives": "knife", "leaves": "leaf",
    "shelves": "shelf", "wolves": "wolf", "loaves": "loaf", "halves": "half", "lives": "life",
    "wives": "wife", "scarves": "scarf", "dice": "die",
}

#: Words that look plural but are not ("glass", "bus", "scissors", "glasses" as eyewear...).
NOT_PLURAL: frozenset[str] = frozenset(
    {"glass", "bus", "gas", "lens", "series", "species", "scissors", "pants", "jeans", "shorts",
     "trousers", "glasses", "news", "chess", "physics", "canvas", "cactus", "octopus", "virus",
     "is", "this", "its", "yes", "was", "has", "does", "us", "as", "cross", "dress", "grass",
     "mattress", "class", "boss", "less", "across", "plus", "hummus", "mess", "press", "kiss",
     "status", "atlas", "iris", "tennis", "analysis", "basis", "axis", "chassis"}
)

#: Words that never carry class meaning in a noun phrase.
FILLER_WORDS: frozenset[str] = frozenset({"of", "kind", "sort", "type", "piece", "visible"})

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def singular(word: str) -> tuple[str, bool]:
    """``(singular form, was plural)`` by simple English rules and a table of irregulars."""
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word], True
    if len(word) <= 3 or word in NOT_PLURAL or not word.endswith("s") or word.endswith("ss"):
        return word, False
    if word.endswith(("us", "is")):
        return word, False
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y", True
    if word.endswith("ves"):
        return word[:-3] + "f", True
    if word.endswith(("ches", "shes", "xes", "zes", "sses", "oes")):
        return word[:-2], True
    return word[:-1], True


def canonical(word: str) -> str:
    """One word's canonical form: lowercase, singular, synonym-mapped."""
    word = word.lower()
    if word in SYNONYMS:
        return SYNONYMS[word]
    base, _ = singular(word)
    return SYNONYMS.get(base, base)


def canonical_words(text: str) -> list[str]:
    """Canonical words of a label or caption ("Two Coffee Mugs" -> ["two", "coffee", "cup"])."""
    return [canonical(w) for w in _WORD.findall(text.lower().replace("-", " "))]


def is_hard_modifier(word: str) -> bool:
    """Colour and material words must match a region's text; other modifiers only rank."""
    return word in COLOURS or word in MATERIALS
