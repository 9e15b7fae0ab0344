"""The embedded tiny GAR: loads like real weights, answers held-out synthetic scenes, and needs
its region pathway (ablation). Uses the committed checkpoint; never trains here."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from gar_ros import cli
from gar_ros.synthetic.tasks import make_choice, make_describe
from gar_ros.training import default_model_path
from gar_ros.training.evaluate import evaluate, region_pathway_disabled
from _tiny_helpers import embedded_model

# Issue 4's acceptance on >= 500 scenes is description >= 90, multiple choice >= 85; the committed
# model measures description 95.6 and multiple choice 94.6 (chance 42.0) on 500 scenes
# (PROVENANCE.md). These thresholds sit a few points below its measurement on these 100 scenes
# (94.8 / 96.0): a regression in the region pathway, the processor or the prompt format drops
# it below them.
N_SCENES = 100
MIN_DESCRIPTION = 90.0
MIN_CHOICE = 88.0  # chance ~41


def test_checkpoint_layout_and_size() -> None:
    path = default_model_path()
    if not path.is_dir():
        pytest.skip("embedded tiny model missing")
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json",
            "PROVENANCE.md"} <= names
    total = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    assert total <= 20 * 1024 * 1024
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "GAR" and config["replay_geometry"] == "corrected"


def test_loads_through_from_pretrained_and_describes() -> None:
    model = embedded_model()
    assert model.config.replay_geometry == "corrected"
    samples = make_describe(987_654)
    texts = model.describe(samples[0].image, [s.regions[0] for s in samples], max_new_tokens=8)
    assert [t.region_id for t in texts] == [s.regions[0].id for s in samples]
    for t in texts:
        assert re.fullmatch(r"a (small|large) [a-z]+ [a-z]+", t.text), t.text


def test_held_out_accuracy_and_ablation_drop() -> None:
    model = embedded_model()
    report = evaluate(model, N_SCENES, free=False)
    for line in report.lines():
        print(line)
    desc = report.accuracy("description")
    choice = report.accuracy("choice")
    abl = report.accuracy("ablation_description")
    chance = report.scores["description"].chance_pct
    assert desc >= MIN_DESCRIPTION
    assert choice >= MIN_CHOICE
    # without mask embedding and replay the model cannot know which region is asked about
    assert abl <= desc - 40.0
    assert abl <= chance + 15.0


def test_ablation_context_restores_the_model() -> None:
    model = embedded_model()
    before = model.torch_model.mask_patch_embedding.weight.detach().clone()
    sample = make_choice(123_457)
    first = model.ask(sample.image, sample.regions, sample.question, max_new_tokens=4).text
    with region_pathway_disabled(model):
        assert float(model.torch_model.mask_patch_embedding.weight.abs().sum()) == 0.0
    assert np.array_equal(before.numpy(), model.torch_model.mask_patch_embedding.weight.detach().numpy())
    assert model.ask(sample.image, sample.regions, sample.question, max_new_tokens=4).text == first


def test_eval_tiny_cli_prints_the_three_lines(capsys: pytest.CaptureFixture[str]) -> None:
    embedded_model()  # skips when the checkpoint is missing
    assert cli.main(["eval-tiny", "--scenes", "12"]) == 0
    out = capsys.readouterr().out
    for word in ("description", "multiple choice", "ablation"):
        assert any(word in line and "%" in line for line in out.splitlines()), out
