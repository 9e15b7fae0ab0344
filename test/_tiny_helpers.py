"""Shared helpers of the tiny-model tests: the embedded checkpoint, loaded once per process."""
from __future__ import annotations

import functools

import pytest

from gar_ros.training import default_model_path


@functools.lru_cache(maxsize=1)
def embedded_model():
    """The embedded tiny GAR through ``GarModel.from_pretrained`` (skips if not committed)."""
    path = default_model_path()
    if not (path / "model.safetensors").is_file():
        pytest.skip(f"embedded tiny model missing at {path}")
    import torch

    from gar_ros.model import GarModel

    torch.set_num_threads(1)
    return GarModel.from_pretrained(path)
