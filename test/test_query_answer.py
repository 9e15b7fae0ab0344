"""answer_question outcomes that need no generation: geometry answers (checks, comparisons, counts,
where), NOT_FOUND / AMBIGUOUS / INVALID. The model here refuses every call, so these tests prove
that such answers come from geometry alone; model-generated answers are tested end to end with the
embedded tiny model in test_query_e2e.py."""
from __future__ import annotations

import numpy as np
import pytest

from gar_ros.query import answer_question
from gar_ros.types import AnswerStatus, Region

IMAGE = np.zeros((150, 200, 3), np.uint8)


class NoGeneration:
    """Stands in for a GarModel where no model call may happen."""

    class config:  # noqa: N801 - mirrors GarModel.config
        prompt_numbers = 5

    def ask(self, *args, **kwargs):
        raise AssertionError("the model was asked although geometry answers this question")

    def describe(self, *args, **kwargs):
        raise AssertionError("the model was asked for captions although labels match")


SCENE = [
    Region("1", (10, 60, 30, 90), label="bottle"),
    Region("2", (40, 65, 60, 85), label="cup"),
    Region("3", (90, 60, 120, 90), label="plate"),
    Region("4", (140, 65, 155, 85), label="cup"),
    Region("5", (95, 10, 115, 30), label="lamp", depth=3.0),
]


#: Captions as the pipeline's per-track cache would hold them: when no label matches ("dog"),
#: grounding falls back to these instead of asking the model.
CAPTIONS = {"1": "a green glass bottle", "2": "a white cup", "3": "a round plate", "4": "a red cup",
            "5": "a desk lamp"}


def ask(question: str, region_ids=(), regions=SCENE):
    streamed: list[str] = []
    answer = answer_question(NoGeneration(), IMAGE, regions, question, region_ids=region_ids,
                             on_text=lambda t: streamed.append(t) or True,
                             caption_cache=dict(CAPTIONS))
    return answer, streamed


@pytest.mark.parametrize("question,text,ids", [
    ("Is the bottle left of the plate?", "Yes, the bottle (region 1) is left of the plate (region 3).",
     ["1", "3"]),
    ("is the plate left of the bottle", "No, the plate (region 3) is not left of the bottle (region 1).",
     ["3", "1"]),
    ("is the lamp above the plate?", "Yes, the lamp (region 5) is above the plate (region 3).", ["5", "3"]),
    ("is <region:2> next to the bottle", "Yes, the cup (region 2) is next to the bottle (region 1).",
     ["2", "1"]),
    ("is the plate between <region:2> and <region:4>?",
     "Yes, the plate (region 3) is between the cup (region 2) and the cup (region 4).", ["3", "2", "4"]),
    ("Which is closer to the plate, the bottle or the lamp?",
     "The lamp (region 5) is closer to the plate (region 3) than the bottle (region 1).", ["5", "3", "1"]),
    ("which is larger, the plate or the bottle?",
     "The plate (region 3) is larger than the bottle (region 1).", ["3", "1"]),
    ("is the bottle smaller than the plate", "The bottle (region 1) is smaller than the plate (region 3).",
     ["1", "3"]),
    ("How many cups are there?", "There are 2 cups: regions 2 and 4.", ["2", "4"]),
    ("how many mugs are right of the plate", "There is 1 cup right of the plate (region 3): region 4.",
     ["4", "3"]),
    ("how many dogs are there", "There are no dogs.", []),
    ("Is there a cup left of the plate?", "Yes, there is 1: region 2.", ["2", "3"]),
    ("is there a cup above the lamp", "No, there is no cup above the lamp (region 5).", ["5"]),
    ("where is the lamp", "The lamp (region 5) is in the top of the image, above the plate (region 3).",
     ["5", "3"]),
])
def test_geometry_answers(question: str, text: str, ids: list[str]) -> None:
    answer, streamed = ask(question)
    assert answer.status is AnswerStatus.OK, answer
    assert answer.text == text
    assert answer.region_ids == ids
    assert streamed == [text]


@pytest.mark.parametrize("question,status,ids,message", [
    ("what is the cup", AnswerStatus.AMBIGUOUS, ["2", "4"], "there are 2 cups: regions 2 and 4; which one?"),
    ("what is the dog", AnswerStatus.NOT_FOUND, [], "no dog is visible"),
    ("what is the object left of the dog", AnswerStatus.NOT_FOUND, [], "no dog is visible"),
    ("what is left of the bottle", AnswerStatus.NOT_FOUND, [], "no object is left of the bottle (region 1)"),
    ("what is <region:9>", AnswerStatus.NOT_FOUND, ["9"], "no region 9 in this frame"),
    ("what is this", AnswerStatus.NOT_FOUND, ["8"], "no region 8 in this frame"),
    ("how are you?", AnswerStatus.INVALID, [], None),
    ("is the plate left of <region:3>", AnswerStatus.INVALID, ["3"], "both names refer to region 3"),
])
def test_failures(question: str, status: AnswerStatus, ids: list[str], message: str | None) -> None:
    region_ids = ["8"] if question == "what is this" else ()
    answer, _ = ask(question, region_ids=region_ids)
    assert answer.status is status, answer
    assert answer.region_ids == ids
    assert answer.message
    if message is not None:
        assert answer.message == message
    assert answer.text


def test_invalid_message_is_helpful() -> None:
    answer, _ = ask("how are you?")
    assert "what is the object left of the cup" in answer.message


def test_pronoun_without_region_ids_is_invalid() -> None:
    answer, _ = ask("is it left of the plate?")
    assert answer.status is AnswerStatus.INVALID
    assert "region_ids" in answer.message


def test_in_front_check_reports_its_evidence() -> None:
    regions = [Region("t", (50, 40, 150, 90), label="table"), Region("c", (70, 70, 110, 130), label="chair")]
    answer, _ = ask("is the chair in front of the table?", regions=regions)
    assert answer.text.startswith("Yes") and answer.text.endswith("(from image cues).")
    regions = [Region("t", (50, 40, 150, 90), label="table", depth=2.0),
               Region("c", (70, 70, 110, 130), label="chair", depth=3.0)]
    answer, _ = ask("is the chair in front of the table?", regions=regions)
    assert answer.text.startswith("No") and answer.text.endswith("(from depth).")


def test_no_regions() -> None:
    answer, _ = ask("what is the cup", regions=[])
    assert answer.status is AnswerStatus.NOT_FOUND
