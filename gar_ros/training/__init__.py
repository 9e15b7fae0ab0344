"""Training and evaluation of the embedded tiny GAR model on synthetic scenes.

:func:`default_model_path` is the embedded checkpoint (``gar_ros/data/tiny_gar``), loadable with
``GarModel.from_pretrained(default_model_path())`` like real weights.
"""
from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that points the default model somewhere else (a GAR directory).
ENV_VAR = "GAR_ROS_TINY_MODEL"


def default_model_path() -> Path:
    """Directory of the embedded tiny GAR checkpoint (``$GAR_ROS_TINY_MODEL`` overrides)."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parent.parent / "data" / "tiny_gar"


#: Alias used by the pipeline's model loader.
embedded_model_path = default_model_path

__all__ = ["ENV_VAR", "default_model_path", "embedded_model_path"]
