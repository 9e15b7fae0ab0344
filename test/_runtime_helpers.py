"""Helpers of the runtime tests: one tiny GAR checkpoint and its ONNX export per test process.

Exporting runs torch.export on four graphs (tens of seconds on a loaded 2-core machine), so
every runtime test shares the export made here.
"""
from __future__ import annotations

import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from _model_helpers import random_image, rect_mask  # noqa: F401  (re-exported for the runtime tests)

REPO = Path(__file__).resolve().parents[1]
_TMP = tempfile.TemporaryDirectory(prefix="gar_runtime_test_")
TMP = Path(_TMP.name)
#: Keep exports of the factory's default cache inside the test's temporary directory.
os.environ.setdefault("GAR_ROS_CACHE", str(TMP / "cache"))


def data_dir() -> Path:
    """Shared test data: $GAR_ROS_DATA, else <repo>/../shared/data."""
    env = os.environ.get("GAR_ROS_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data").resolve()


@lru_cache(maxsize=None)
def tiny_checkpoint(seed: int = 0) -> Path:
    from gar_ros.model.tiny import make_tiny

    return make_tiny(TMP / f"tiny_{seed}", seed=seed)


@lru_cache(maxsize=None)
def tiny_model():
    """The tiny GAR loaded with the torch backend (float32, CPU)."""
    import torch

    from gar_ros.model import GarModel

    torch.set_num_threads(1)
    return GarModel.from_pretrained(tiny_checkpoint(), dtype=torch.float32)


@lru_cache(maxsize=None)
def tiny_export() -> Path:
    """ONNX export of :func:`tiny_model` (vision, embed, prefill, decode)."""
    from gar_ros.runtime import export_model

    out = TMP / "onnx_tiny"
    logging.getLogger("onnx_ir").setLevel(logging.WARNING)
    export_model(tiny_model(), out)
    return out


