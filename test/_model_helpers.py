"""Helpers for the model-core tests: tiny checkpoints (cached per process) and test data paths."""
from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Shared test data: $GAR_ROS_DATA, else <repo>/../shared/data."""
    env = os.environ.get("GAR_ROS_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data").resolve()


_TMP = tempfile.TemporaryDirectory(prefix="gar_model_test_")


@lru_cache(maxsize=None)
def tiny_checkpoint(seed: int = 0, **sizes: object) -> Path:
    """A tiny random GAR written once per process (see gar_ros.model.tiny.make_tiny)."""
    from gar_ros.model.tiny import make_tiny

    name = f"tiny_{seed}_" + "_".join(f"{k}{v}" for k, v in sorted(sizes.items()))
    return make_tiny(Path(_TMP.name) / name, seed=seed, **sizes)


def random_image(h: int = 90, w: int = 140, seed: int = 0) -> np.ndarray:
    return (np.random.RandomState(seed).rand(h, w, 3) * 255).astype(np.uint8)


def rect_mask(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m
