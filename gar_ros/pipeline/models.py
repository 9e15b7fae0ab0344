"""Loading the model the pipeline runs: a checkpoint directory, or the embedded tiny model."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from gar_ros.errors import CheckpointError

EMBEDDED_DIR = Path(__file__).resolve().parents[1] / "data" / "tiny_gar"


def embedded_model_path() -> Path | None:
    """The embedded tiny GAR model (``gar_ros.training.default_model_path()``, which honours
    ``$GAR_ROS_TINY_MODEL``), when a checkpoint is there; None otherwise."""
    for module_name, attr in (
        ("gar_ros.training", "default_model_path"),
        ("gar_ros.training", "embedded_model_path"),
    ):
        try:
            fn = getattr(importlib.import_module(module_name), attr, None)
        except ImportError:
            continue
        if fn is not None:
            try:
                path = fn()
            except Exception:  # the provider says it is not there
                path = None
            if path is not None and (Path(path) / "config.json").is_file():
                return Path(path)
    return EMBEDDED_DIR if (EMBEDDED_DIR / "config.json").is_file() else None


def resolve_model_path(model_path: str | Path | None) -> Path:
    """``model_path``, or the embedded tiny model when empty; CheckpointError when there is none."""
    if model_path:
        path = Path(model_path).expanduser()
        if not path.exists():
            raise CheckpointError(f"model_path {str(path)!r} does not exist")
        return path
    path = embedded_model_path()
    if path is None:
        raise CheckpointError(
            "no model_path given and the embedded tiny model (gar_ros/data/tiny_gar) is not installed"
        )
    return path


def load_model(
    model_path: str | Path | None,
    *,
    backend: str = "torch",
    device: str = "cpu",
    dtype: str | None = None,
) -> Any:
    """A GarModel for ``model_path`` (empty = embedded tiny model)."""
    path = resolve_model_path(model_path)
    try:
        from gar_ros.model import GarModel
    except ImportError as err:
        raise CheckpointError(f"the GAR model code is not available: {err}") from err
    return GarModel.from_pretrained(str(path), device=device, dtype=dtype or None, backend=backend)
