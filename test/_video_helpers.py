"""Helpers of the video-context tests: one tiny random GAR per test process, synthetic clips."""
from __future__ import annotations

import atexit
import functools
import tempfile
from pathlib import Path

import numpy as np
import torch

from gar_ros.types import Region

H, W = 60, 80


@functools.lru_cache(maxsize=None)
def tiny_dir(seed: int = 0, replay_geometry: str = "reference") -> Path:
    """A tiny random GAR checkpoint (``gar-ros make-tiny`` layout), made once per process."""
    from gar_ros.model.tiny import make_tiny

    tmp = tempfile.TemporaryDirectory(prefix="gar_video_tiny_")
    atexit.register(tmp.cleanup)
    return Path(make_tiny(Path(tmp.name) / f"tiny{seed}", seed=seed, replay_geometry=replay_geometry))


def load_tiny(seed: int = 0, **overrides):
    from gar_ros.model.api import GarModel

    torch.set_num_threads(1)
    return GarModel.from_pretrained(tiny_dir(seed), cache_size=8, **overrides)


def image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def square(rid: str, x: int, y: int = 10, size: int = 15) -> Region:
    mask = np.zeros((H, W), dtype=bool)
    mask[y : y + size, x : x + size] = True
    return Region(rid, mask=mask)
