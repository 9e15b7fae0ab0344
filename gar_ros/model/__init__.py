"""gar_ros.model: GAR (Grasp Any Region) inference and training pieces on transformers' PerceptionLM.

Public entry point: :class:`GarModel` (``GarModel.from_pretrained(local_dir)``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gar_ros.model.api import GarModel

__all__ = ["GarModel"]


def __getattr__(name: str) -> Any:
    # Lazy: importing gar_ros.model (e.g. for the CLI) must not pull in torch/transformers.
    if name == "GarModel":
        from gar_ros.model.api import GarModel

        return GarModel
    raise AttributeError(name)
