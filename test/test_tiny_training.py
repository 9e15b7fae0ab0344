"""train-tiny smoke run: a few steps, same seed -> identical weights; the result loads with
``GarModel.from_pretrained`` like real weights (the full run is documented in PROVENANCE.md)."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from gar_ros import cli
from gar_ros.synthetic.tasks import make_describe
from gar_ros.training.recipe import TinyRecipe
from gar_ros.training.train import _warn_if_over_limit, draw_sample, train_tiny

SMOKE = {"steps": 2, "batch_size": 6, "warmup_steps": 1, "data_workers": 0, "threads": 1,
         "mixture": {"describe": 1.0, "choice": 1.0, "free": 1.0, "motion": 1.0}}


def test_same_seed_same_weights_and_loadable(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    a = train_tiny(tmp_path / "a", TinyRecipe(seed=3, **SMOKE))
    b = train_tiny(tmp_path / "b", TinyRecipe(seed=3, **SMOKE))
    c = train_tiny(tmp_path / "c", TinyRecipe(seed=4, **SMOKE))
    wa, wb, wc = (load_file(str(tmp_path / d / "model.safetensors")) for d in "abc")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    assert a["final_loss"] == b["final_loss"]
    record = json.loads((tmp_path / "a" / "training.json").read_text())
    assert record["recipe"]["seed"] == 3 and record["steps_done"] == 2
    assert record["recipe"]["replay_geometry"] == "corrected"

    from gar_ros.model import GarModel

    model = GarModel.from_pretrained(tmp_path / "a")
    assert model.config.replay_geometry == "corrected"
    sample = make_describe(5)[0]
    out = model.describe(sample.image, sample.regions, max_new_tokens=3)
    assert len(out) == 1 and isinstance(out[0].text, str)
    del c


def test_background_data_worker_gives_the_same_weights(tmp_path: Path) -> None:
    """data_workers=1 (the default) generates the same steps in another process."""
    torch.set_num_threads(1)
    inline = train_tiny(tmp_path / "inline", TinyRecipe(seed=2, **SMOKE))
    worker = train_tiny(tmp_path / "worker", TinyRecipe(seed=2, **{**SMOKE, "data_workers": 1}))
    wa, wb = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("inline", "worker"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert inline["final_loss"] == worker["final_loss"]


def test_training_stream_is_seeded_and_mixes_tasks() -> None:
    recipe = TinyRecipe(seed=0)
    tasks = [draw_sample(recipe, i).task for i in range(60)]
    assert set(tasks) == {"describe", "choice", "free", "motion"}
    again = [draw_sample(recipe, i) for i in range(5)]
    first = [draw_sample(recipe, i) for i in range(5)]
    assert [s.answer for s in again] == [s.answer for s in first]


def test_train_tiny_cli(tmp_path: Path) -> None:
    recipe = json.dumps({k: v for k, v in SMOKE.items() if k != "steps"})
    assert cli.main(["train-tiny", str(tmp_path / "m"), "--steps", "1", "--recipe", recipe]) == 0
    assert (tmp_path / "m" / "model.safetensors").is_file()


def test_mixture_entry_of_one_choice_kind() -> None:
    recipe = TinyRecipe(mixture={"choice:left_of": 1.0})
    kinds = {draw_sample(recipe, i).kind for i in range(12)}
    assert kinds == {"left_of"}


def test_late_mixture_takes_over_at_its_step() -> None:
    recipe = TinyRecipe(mixture={"describe": 1.0}, late_mixture={"choice:above": 1.0},
                        late_from=0.5, steps=10, batch_size=3)
    early = {draw_sample(recipe, i).task for i in range(5 * 3)}
    late = {draw_sample(recipe, i).kind for i in range(5 * 3, 10 * 3)}
    assert early == {"describe"}
    assert late == {"above"}
    assert TinyRecipe.from_dict(recipe.to_dict()).late_mixture == {"choice:above": 1.0}


def test_projection_warns_when_the_time_limit_cuts_the_run() -> None:
    said: list[str] = []
    recipe = TinyRecipe(steps=1800, time_limit_s=880.0)
    _warn_if_over_limit(recipe, 99, 73.0, said.append)  # 0.73 s/step: 1314 s projected
    assert len(said) == 1 and "near step 1205" in said[0] and "880s" in said[0]
    said.clear()
    _warn_if_over_limit(recipe, 99, 40.0, said.append)  # 0.40 s/step: 720 s, within the limit
    assert said == []


def test_recipe_overrides_from_long_json_text_or_a_file(tmp_path: Path) -> None:
    """--recipe takes JSON text of any length (longer than a file name may be) or a JSON file."""
    import pytest

    from gar_ros.errors import InputError
    from gar_ros.training.cli import _recipe_overrides

    big = {"late_mixture": {f"choice:kind_{i}": 0.01 for i in range(40)}, "motion_speed": [3.0, 12.0]}
    assert len(json.dumps(big)) > 300
    assert _recipe_overrides(json.dumps(big)) == big
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"steps": 3}))
    assert _recipe_overrides(str(path)) == {"steps": 3}
    with pytest.raises(InputError, match="neither a JSON file nor JSON text"):
        _recipe_overrides("not-json")
    assert TinyRecipe.from_dict(TinyRecipe(motion_speed=(3.0, 12.0)).to_dict()).motion_speed == (3.0, 12.0)
