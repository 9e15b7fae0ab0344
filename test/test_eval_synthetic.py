"""Synthetic-scene bags: contents, and bag-eval accuracy vs eval-tiny with the embedded tiny model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gar_ros.cli import main
from gar_ros.evaluation.bagio import BagReader

SCENES = 20


def test_bag_from_synthetic_contents(tmp_path: Path) -> None:
    from gar_ros.synthetic.tasks import make_choice, make_describe

    bag = tmp_path / "syn"
    assert main(["bag-from-synthetic", str(bag), "--scenes", "3", "--seed", "40"]) == 0
    with BagReader(bag) as r:
        choice = r.choose_topics()
        msgs = list(r.messages(choice.topics()))
    assert not any(m.error for m in msgs)
    gts = [json.loads(m.msg.data) for m in msgs if m.topic == choice.ground_truth]
    queries = [m.msg for m in msgs if m.topic == choice.queries]
    gts = [g for g in gts if g["kind"] != "grounding"]
    assert [g["kind"] for g in gts] == ["description", "multiple_choice"] * 3
    queries = [q for q in queries if q.query_id.startswith("choice_")]
    for k, seed in enumerate(range(40, 43)):
        desc, mc = gts[2 * k], gts[2 * k + 1]
        want = {s.meta["objects"][0]: s.answer for s in make_describe(seed)}
        assert desc["references"] == want
        sample = make_choice(seed)
        assert mc["answer"] == sample.answer and mc["type"] == sample.kind
        q = queries[k]
        assert "<Prompt" not in q.question and list(q.region_ids) == [r.id for r in sample.regions]
        assert q.question.count("<region:") == sample.question.count("<Prompt")


def _embedded_model():
    from gar_ros.pipeline.models import embedded_model_path

    path = embedded_model_path()
    if path is None:
        pytest.skip("the embedded tiny model (gar_ros/data/tiny_gar) is not installed")
    import torch

    torch.set_num_threads(1)
    from gar_ros.evaluation.runner import load_model

    return load_model(None)


@pytest.mark.slow
def test_synthetic_bag_accuracy_matches_eval_tiny(tmp_path: Path) -> None:
    model = _embedded_model()
    from gar_ros.evaluation.replay import ReplayOptions, Replayer
    from gar_ros.evaluation.report import write_all
    from gar_ros.evaluation.synthetic_bag import bag_from_synthetic, held_out_first_seed
    from gar_ros.training.evaluate import evaluate

    bag = tmp_path / "syn"
    bag_from_synthetic(bag, scenes=SCENES)
    result = Replayer(model, ReplayOptions(max_new_tokens=8, query_max_new_tokens=8, progress=False)).run(bag)
    doc = write_all(result, tmp_path / "out", plots=False, copy_inputs=False)
    kinds = doc["grade"].by_kind.categories
    assert doc["summary"]["errors"] == 0 and doc["grade"].not_described == 0
    model.clear_cache()
    ref = evaluate(model, SCENES, seed_base=held_out_first_seed(), ablation=False, free=False)
    assert kinds["description"].total == ref.scores["description"].total
    assert kinds["multiple_choice"].total == ref.scores["choice"].total == SCENES
    assert abs(kinds["description"].accuracy - ref.accuracy("description")) <= 2.0
    assert abs(kinds["multiple_choice"].accuracy - ref.accuracy("choice")) <= 2.0
