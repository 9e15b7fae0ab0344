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
    # architecture (tile_size / patch / pooling decide tokens per tile: (96/8/3)^2 = 16)
    tile_size: int = 96
    patch_size: int = 8
    pooling_ratio: int = 3
    max_num_tiles: int = 1
    vision_width: int = 96
    vision_depth: int = 2
    vision_heads: int = 4
    hidden_size: int = 128
    layers: int = 3
    heads: int = 16  # head dim 8: many narrow heads learn the option/region look-ups faster
    kv_heads: int = 16
    intermediate_size: int = 384
    replay_output_size: int = 2
    init_std: float = 0.2  # normal(0, init_std) init of every matrix (see model.tiny.init_weights)
    replay_geometry: str = "corrected"
    # data
    scene_size: tuple[int, int] = (96, 96)
    #: task -> share of samples; "choice:KIND" draws multiple choice of one kind only
    #: the first phase is motion-heavy: motion, once learnt, stays learnt at 12 % of samples
    mixture: dict[str, float] = field(default_factory=lambda: {
        "describe": 0.20, "choice": 0.17, "free": 0.08, "motion": 0.55})
    #: second mixture, used from step ``late_from * steps`` on (None = one mixture throughout):
    #: multiple choice dominates once description, free questions and motion have been learnt
    late_mixture: dict[str, float] | None = field(default_factory=lambda: {
        "describe": 0.15, "choice": 0.48, "choice:colour_options": 0.04,
        "choice:shape_options": 0.04, "choice:same_colour": 0.05, "free": 0.12, "motion": 0.12})
    late_from: float = 0.25
    clip_frames: tuple[int, int] = (3, 5)  # frames generated per motion clip (min, max)
    context_frames: tuple[int, int] = (2, 4)  # frames given to the model per clip (min, max)
    #: horizontal speed of training clips' objects, pixels per frame (min, max); evaluation: (3, 5)
    motion_speed: tuple[float, float] = (4.0, 12.0)
    # optimisation
    steps: int = 1800
    batch_size: int = 24
    lr: float = 2.5e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 60
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    #: LM loss weight per task (each sample's loss is the mean over its answer tokens)
    task_weights: dict[str, float] = field(default_factory=lambda: {
        "describe": 1.0, "choice": 2.0, "free": 1.0, "motion": 3.0})
    aux_weight: float = 1.5  # replay probe (training only, see objective.py); 0 = off
    reference_weight: float = 1.0  # reference probe on the decoder (objective.py); 0 = off
    option_weight: float = 1.0  # option probe on the decoder (objective.py); 0 = off
    slot_weight: float = 1.0  # slot probe on the decoder (objective.py); 0 = off
    copy_weight: float = 1.0  # answer-attention target (objective.py); 0 = off
    copy_heads: int = 8  # heads of the last decoder layer the copy target shapes
    copy_target: str = "block"  # copy heads look at: "line", "features" (one per region feature) or "block" (objective.py)
    #: the right option's line as a copy target (word options under copy_target "block"): "line"
    #: or "content" (its word alone: the only key that can tell the right line; objective.py)
    word_target: str = "content"
    #: motion clips' copy target: half the copy heads on the oldest frame's block, half on the
    #: newest's, at the answer position (objective.py); False = motion has no copy target
    copy_motion: bool = True
    kind_weight: float = 1.0  # kind probe: the question's kind at the answer position (objective.py); 0 = off
    slot_layer: int = 1  # decoder hidden state the slot probe reads
    probe_layer: int = 2  # decoder hidden state the reference probe reads
    aux_steps: int = 0  # 0 = constant probe weights; else linear decay to 0 over these steps
    split_by_length: bool = True  # two length-sorted micro-batches per step (less padding)
    threads: int = 2  # both cores (with data_workers=1, ~0.45 s per step); 1 = bitwise reproducible across machines, slower
    data_workers: int = 1  # 1 = generate samples in a background process (same samples); 0 = inline
    time_limit_s: float = 0.0  # 0 = none; else stop (and save) when reached

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scene_size"] = list(self.scene_size)
        d["clip_frames"] = list(self.clip_frames)
        d["context_frames"] = list(self.context_frames)
        d["motion_speed"] = list(self.motion_speed)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TinyRecipe":
        d = dict(d)
        for key in ("scene_size", "clip_frames", "context_frames", "motion_speed"):
            if key in d:
                d[key] = tuple(d[key])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})
