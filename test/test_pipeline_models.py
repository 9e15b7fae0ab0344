"""Model loading: model_path, the embedded tiny model as default, clear errors."""
from __future__ import annotations

import pytest

from gar_ros.errors import CheckpointError
from gar_ros.pipeline import models

from _pipeline_helpers import model_available, tiny_checkpoint


def test_missing_model_path_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        models.resolve_model_path(tmp_path / "nope")


def test_default_is_the_embedded_model_or_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GAR_ROS_TINY_MODEL", str(tmp_path / "absent"))
    monkeypatch.setattr(models, "EMBEDDED_DIR", tmp_path / "absent")
    with pytest.raises(CheckpointError, match="embedded tiny model"):
        models.resolve_model_path("")


@pytest.mark.skipif(not model_available(), reason="gar_ros.model is not available")
def test_empty_model_path_loads_the_embedded_model(tmp_path_factory, monkeypatch):
    ckpt = tiny_checkpoint(tmp_path_factory.getbasetemp())
    monkeypatch.setenv("GAR_ROS_TINY_MODEL", str(ckpt))  # stands in for gar_ros/data/tiny_gar
    assert models.resolve_model_path("") == ckpt
    model = models.load_model("")
    assert model.name == ckpt.name and model.config.prompt_numbers == 5
