"""The tiny model's recipe: architecture sizes, data mixture, optimisation (one dataclass).

Held-out evaluation scenes use seeds below :data:`TRAIN_SEED_BASE`; training samples draw
seeds at or above it, so (with :data:`gar_ros.synthetic.tasks.SUB_SEEDS`) no evaluation scene
is ever trained on.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

TRAIN_SEED_BASE = 100_000_000
EVAL_SEED_BASE = 0


@dataclass
class TinyRecipe:
    """Everything that determines a trained tiny model (recorded in its training.json)."""

    seed: int = 0
    # architecture (tile_size / patch / pooling decide tokens per tile: (64/8/2)^2 = 16)
    tile_size: int = 64
    patch_size: int = 8
    pooling_ratio: int = 2
    max_num_tiles: int = 1
    vision_width: int = 96
    vision_depth: int = 2
    vision_heads: int = 4
    hidden_size: int = 128
    layers: int = 3
    heads: int = 4
    kv_heads: int = 4
    intermediate_size: int = 384
    replay_output_size: int = 2
    replay_geometry: str = "corrected"
    # data
    scene_size: tuple[int, int] = (96, 96)
    mixture: dict[str, float] = field(default_factory=lambda: {
        "describe": 0.35, "choice": 0.45, "free": 0.20})
    # optimisation
    steps: int = 1200
    batch_size: int = 32
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 60
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    threads: int = 1
    time_limit_s: float = 0.0  # 0 = none; else stop (and save) when reached

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scene_size"] = list(self.scene_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TinyRecipe":
        d = dict(d)
        if "scene_size" in d:
            d["scene_size"] = tuple(d["scene_size"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})
