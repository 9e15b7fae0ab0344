"""Table-driven tests of the rule-based question parser (gar_ros.query.parse)."""
from __future__ import annotations

import pytest

from gar_ros.errors import QueryError
from gar_ros.query.parse import Compare, Kind, RefExpr, needs_grounding, parse_question
from gar_ros.query.vocabulary import Order, Relation, canonical, canonical_words, singular


def summary(ref: RefExpr | None) -> str | None:
    """Compact, readable form of a reference: "cup[red]@leftmost#2 left_of(plate)"."""
    if ref is None:
        return None
    if ref.region_id is not None:
        return f"<{ref.region_id}>"
    if ref.pronoun is not None:
        return f"it{ref.pronoun}"
    s = ref.head or "*"
    if ref.modifiers:
        s += "[" + ",".join(ref.modifiers) + "]"
    if ref.plural:
        s += "+"
    if ref.order is not None:
        s += "@" + ref.order.name.lower()
        if ref.rank != 1:
            s += f"#{ref.rank}"
    if ref.relation is not None:
        s += f" {ref.relation.name.lower()}(" + ";".join(summary(a) for a in ref.anchors) + ")"
    return s


# (question, kind, target summary, extra checks)
CASES: list[tuple[str, Kind, str | None, dict]] = [
    # --- what is X: relations
    ("What is the object left of the cup?", Kind.WHAT, "* left_of(cup)", {}),
    ("what's the thing to the left of the cup", Kind.WHAT, "* left_of(cup)", {}),
    ("What is on the left of the cup?", Kind.WHAT, "* left_of(cup)", {}),
    ("what is the item to the right of the red square?", Kind.WHAT, "* right_of(square[red])", {}),
    ("What is the object above the blue circle?", Kind.WHAT, "* above(circle[blue])", {}),
    ("what is below the green star", Kind.WHAT, "* below(star[green])", {}),
    ("What is on the table?", Kind.WHAT, "* on(table)", {}),
    ("what is on top of the box", Kind.WHAT, "* on(box)", {}),
    ("What is under the chair?", Kind.WHAT, "* under(chair)", {}),
    ("what is underneath the desk", Kind.WHAT, "* under(table)", {}),
    ("What is next to the laptop?", Kind.WHAT, "* next_to(laptop)", {}),
    ("what's beside the bottle", Kind.WHAT, "* next_to(bottle)", {}),
    ("What is near the sofa?", Kind.WHAT, "* near(sofa)", {}),
    ("what is close to the couch", Kind.WHAT, "* near(sofa)", {}),
    ("What is between the cup and the plate?", Kind.WHAT, "* between(cup;plate)", {}),
    ("what is the thing between the red square and the blue circle?", Kind.WHAT,
     "* between(square[red];circle[blue])", {}),
    ("what is between the cups", Kind.WHAT, "* between(cup+)", {}),
    ("What is in front of the chair?", Kind.WHAT, "* in_front_of(chair)", {}),
    ("what is behind the monitor", Kind.WHAT, "* behind(screen)", {}),
    ("What is the object closest to the cup?", Kind.WHAT, "* closest_to(cup)", {}),
    ("what is nearest to the mug", Kind.WHAT, "* closest_to(cup)", {}),
    ("which is closer to the plate?", Kind.WHAT, "* closest_to(plate)", {}),
    ("What is the object farthest from the door?", Kind.WHAT, "* farthest_from(door)", {}),
    ("what is the thing furthest away from the bottle", Kind.WHAT, "* farthest_from(bottle)", {}),
    ("what is in the box", Kind.WHAT, "* inside(box)", {}),
    ("What is the bottle left of the cup?", Kind.WHAT, "bottle left_of(cup)", {}),
    ("what is the object that is directly left of the cup", Kind.WHAT, "* left_of(cup)", {}),
    ("What is the cup on the table next to the laptop?", Kind.WHAT,
     "cup on(table next_to(laptop))", {}),
    # --- targets, synonyms, plurals, orderings
    ("What is the mug?", Kind.WHAT, "cup", {}),
    ("what is the largest object", Kind.WHAT, "*@largest", {}),
    ("What is the biggest box?", Kind.WHAT, "box@largest", {}),
    ("what is the smallest thing", Kind.WHAT, "*@smallest", {}),
    ("what is the leftmost object?", Kind.WHAT, "*@leftmost", {}),
    ("What is the left-most shape?", Kind.WHAT, "*@leftmost", {}),
    ("what is the rightmost cup", Kind.WHAT, "cup@rightmost", {}),
    ("what is the topmost object", Kind.WHAT, "*@topmost", {}),
    ("what is the lowest object", Kind.WHAT, "*@bottommost", {}),
    ("what is the cup on the left", Kind.WHAT, "cup@leftmost", {}),
    ("what is the bottle on the right?", Kind.WHAT, "bottle@rightmost", {}),
    ("what is the object in the middle", Kind.WHAT, "*@middle", {}),
    ("what is the second cup from the left", Kind.WHAT, "cup@leftmost#2", {}),
    ("What is the 3rd bottle from the right?", Kind.WHAT, "bottle@rightmost#3", {}),
    ("what is the second cup", Kind.WHAT, "cup@leftmost#2", {}),
    ("what is the last cup from the top", Kind.WHAT, "cup@topmost#-1", {}),
    ("what is the second largest box", Kind.WHAT, "box@largest#2", {}),
    ("What is the object closest to the camera?", Kind.WHAT, "*@closest", {}),
    ("which object is closest to the camera", Kind.WHAT, "*@closest", {}),
    ("what is the cup farthest from the camera?", Kind.WHAT, "cup@farthest", {}),
    ("which object is left of the red square?", Kind.WHAT, "* left_of(square[red])", {}),
    ("the object left of the cup", Kind.WHAT, "* left_of(cup)", {}),
    ("the red one", Kind.WHAT, "*[red]", {}),
    ("Identify the largest red square.", Kind.WHAT, "square[red]@largest", {}),
    ("Please tell me what is the object right of the cup.", Kind.WHAT, "* right_of(cup)", {}),
    ("what is the object to the left of the cup in the image?", Kind.WHAT, "* left_of(cup)", {}),
    ("What is the coffee mug left of the laptop?", Kind.WHAT, "cup[coffee] left_of(laptop)", {}),
    ("what are the people next to the car", Kind.WHAT, "person+ next_to(car)", {}),
    # --- explicit ids and pronouns
    ("what is the object left of <region:7>?", Kind.WHAT, "* left_of(<7>)", {"explicit_ids": ("7",)}),
    ("What is the mug next to <region:cup_2>?", Kind.WHAT, "cup next_to(<cup_2>)",
     {"explicit_ids": ("cup_2",)}),
    ("what is <region:3>?", Kind.WHAT, "<3>", {}),
    ("what is this?", Kind.WHAT, "it0", {}),
    ("what is it", Kind.WHAT, "it0", {}),
    ("what is left of it?", Kind.WHAT, "* left_of(it0)", {}),
    # --- describe / attributes
    ("Describe the largest box.", Kind.DESCRIBE, "box@largest", {}),
    ("describe the object left of the cup in detail", Kind.DESCRIBE, "* left_of(cup)", {}),
    ("tell me about the bottle on the right", Kind.DESCRIBE, "bottle@rightmost", {}),
    ("What does the thing under the table look like?", Kind.DESCRIBE, "* under(table)", {}),
    ("What colour is the second cup from the left?", Kind.ATTRIBUTE, "cup@leftmost#2",
     {"attribute": "color"}),
    ("what color is the object above the star", Kind.ATTRIBUTE, "* above(star)",
     {"attribute": "color"}),
    ("What is the colour of the mug?", Kind.ATTRIBUTE, "cup", {"attribute": "color"}),
    ("what material is the table made of", Kind.ATTRIBUTE, "table", {"attribute": "material"}),
    ("what is the chair made of?", Kind.ATTRIBUTE, "chair", {"attribute": "material"}),
    ("What shape is the object right of the red square?", Kind.ATTRIBUTE,
     "* right_of(square[red])", {"attribute": "shape"}),
    ("what is the shape of <region:4>", Kind.ATTRIBUTE, "<4>", {"attribute": "shape"}),
    ("what texture does the sofa have", Kind.ATTRIBUTE, "sofa", {"attribute": "texture"}),
    ("what size is the smallest cup?", Kind.ATTRIBUTE, "cup@smallest", {"attribute": "size"}),
    ("what colour is it?", Kind.ATTRIBUTE, "it0", {"attribute": "color"}),
    # --- yes/no relation checks
    ("Is the bottle left of the cup?", Kind.CHECK, "bottle",
     {"relation": Relation.LEFT_OF, "other": "cup"}),
    ("is the red square to the right of the blue circle", Kind.CHECK, "square[red]",
     {"relation": Relation.RIGHT_OF, "other": "circle[blue]"}),
    ("Is the cup on the table?", Kind.CHECK, "cup", {"relation": Relation.ON, "other": "table"}),
    ("is <region:2> above <region:5>?", Kind.CHECK, "<2>",
     {"relation": Relation.ABOVE, "other": "<5>"}),
    ("Is the ball between the cup and the plate?", Kind.CHECK, "ball",
     {"relation": Relation.BETWEEN, "others": ("cup", "plate")}),
    ("is the chair in front of the table", Kind.CHECK, "chair",
     {"relation": Relation.IN_FRONT_OF, "other": "table"}),
    ("is it behind the sofa?", Kind.CHECK, "it0", {"relation": Relation.BEHIND, "other": "sofa"}),
    ("are the mugs next to the laptop", Kind.CHECK, "cup+",
     {"relation": Relation.NEXT_TO, "other": "laptop"}),
    # --- comparisons
    ("Which is closer to the plate, the cup or the bottle?", Kind.COMPARE, None,
     {"compare": Compare.CLOSER, "other": "plate", "options": ("cup", "bottle")}),
    ("which one is nearer to <region:1>: <region:2> or <region:3>?", Kind.COMPARE, None,
     {"compare": Compare.CLOSER, "other": "<1>", "options": ("<2>", "<3>")}),
    ("which is farther from the door, the red chair or the blue chair", Kind.COMPARE, None,
     {"compare": Compare.FARTHER, "other": "door", "options": ("chair[red]", "chair[blue]")}),
    ("Which is closer to the camera, the cup or the mug?", Kind.COMPARE, None,
     {"compare": Compare.CLOSER, "other": None, "options": ("cup", "cup")}),
    ("which is larger, the cup or the plate?", Kind.COMPARE, None,
     {"compare": Compare.LARGER, "options": ("cup", "plate")}),
    ("which of the cup and the bottle is closer to the plate", Kind.COMPARE, None,
     {"compare": Compare.CLOSER, "other": "plate", "options": ("cup", "bottle")}),
    ("is the cup or the bottle closer to the plate?", Kind.COMPARE, None,
     {"compare": Compare.CLOSER, "other": "plate", "options": ("cup", "bottle")}),
    ("is the cup bigger than the plate?", Kind.COMPARE, None,
     {"compare": Compare.LARGER, "options": ("cup", "plate")}),
    ("is the red square smaller than the blue star", Kind.COMPARE, None,
     {"compare": Compare.SMALLER, "options": ("square[red]", "star[blue]")}),
    # --- counting and existence
    ("How many cups are there?", Kind.COUNT, "cup+", {}),
    ("how many mugs do you see", Kind.COUNT, "cup+", {}),
    ("How many red squares are in the image?", Kind.COUNT, "square[red]+", {}),
    ("how many boxes are there", Kind.COUNT, "box+", {}),
    ("how many knives are visible?", Kind.COUNT, "knife+", {}),
    ("how many people are there", Kind.COUNT, "person+", {}),
    ("How many objects are left of the red square?", Kind.COUNT, "*+ left_of(square[red])", {}),
    ("count the bottles", Kind.COUNT, "bottle+", {}),
    ("how many glasses are on the table", Kind.COUNT, "glasses on(table)", {}),
    ("Is there a cup left of the plate?", Kind.EXISTS, "cup left_of(plate)", {}),
    ("are there any bottles", Kind.EXISTS, "bottle+", {}),
    # --- where
    ("Where is the cup?", Kind.WHERE, "cup", {}),
    ("where's the red square", Kind.WHERE, "square[red]", {}),
    # --- free questions with explicit references
    ("What is <region:3> holding?", Kind.FREE, None, {"explicit_ids": ("3",)}),
    ("Is <region:1> happy?", Kind.FREE, None, {"explicit_ids": ("1",)}),
    ("What is the relationship between <region:1> and <region:2> and <region:3>?", Kind.FREE,
     None, {"explicit_ids": ("1", "2", "3")}),
    ("why is <region:a> on <region:b> upside down", Kind.FREE, None,
     {"explicit_ids": ("a", "b")}),
]


@pytest.mark.parametrize("question,kind,target,extra", CASES, ids=[c[0] for c in CASES])
def test_parse(question: str, kind: Kind, target: str | None, extra: dict) -> None:
    parsed = parse_question(question)
    assert parsed.kind is kind, parsed
    if target is not None:
        assert summary(parsed.target) == target
    for key, want in extra.items():
        got = getattr(parsed, key)
        if key in ("other",):
            got = summary(got)
        elif key in ("others", "options"):
            got = tuple(summary(r) for r in got)
        assert got == want, f"{key}: {got!r} != {want!r}"


def test_parse_case_count() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("question", [
    "", "   ", "why?", "how are you", "what is", "is the cup",
    "what is left of", "what is between the cup", "is the cup left of",
])
def test_invalid_questions_raise_query_error(question: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_question(question)
    assert str(info.value)


def test_unparsed_question_with_region_ids_is_free() -> None:
    parsed = parse_question("how heavy is it compared to a brick, roughly?", region_ids=["4"])
    assert parsed.kind is Kind.FREE


def test_invalid_message_lists_supported_forms() -> None:
    with pytest.raises(QueryError, match="what is the object left of the cup"):
        parse_question("how are you")


def test_long_question_is_rejected() -> None:
    with pytest.raises(QueryError, match="too long"):
        parse_question("what is " + "the big " * 60 + "cup")


def test_explicit_ids_keep_order_and_text() -> None:
    parsed = parse_question("what is the object between <region:9> and <region:2>?")
    assert parsed.explicit_ids == ("9", "2")
    assert parsed.target.text == "the object between region 9 and region 2"


def test_between_needs_two_anchors() -> None:
    with pytest.raises(QueryError, match="between"):
        parse_question("what is between the cup")


def test_order_words_and_superlatives() -> None:
    assert parse_question("what is the left cup").target.order is Order.LEFTMOST
    assert parse_question("what is the top box").target.order is Order.TOPMOST
    assert parse_question("what is the cup in front").target.order is Order.CLOSEST


@pytest.mark.parametrize("word,want", [
    ("cups", ("cup", True)), ("boxes", ("box", True)), ("glass", ("glass", False)),
    ("glasses", ("glasses", False)), ("knives", ("knife", True)), ("berries", ("berry", True)),
    ("people", ("person", True)), ("bus", ("bus", False)), ("cross", ("cross", False)),
    ("circles", ("circle", True)), ("tomatoes", ("tomato", True)), ("dishes", ("dish", True)),
])
def test_singular(word: str, want: tuple[str, bool]) -> None:
    assert singular(word) == want


def test_canonical_synonyms() -> None:
    assert canonical("Mugs") == "cup"
    assert canonical("grey") == "gray"
    assert canonical_words("Two Coffee-Mugs") == ["two", "coffee", "cup"]


@pytest.mark.parametrize("question,region_ids,want", [
    ("what is the object left of <region:5>?", (), True),
    ("is <region:1> left of <region:2>?", (), True),
    ("what is this?", ("4",), True),
    ("What is <region:3> holding?", (), False),
    ("how heavy is it, roughly?", ("4",), False),
    ("how are you", (), False),
])
def test_needs_grounding(question: str, region_ids: tuple[str, ...], want: bool) -> None:
    assert needs_grounding(question, region_ids) is want
