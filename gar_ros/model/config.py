"""GAR checkpoint configuration: the ``config.json`` schema plus the settings derived from it.

A GAR directory holds ``config.json`` with ``model_type`` "GAR", ``mllm_config`` (a PerceptionLM
config: a timm PE vision tower + a Llama decoder), ``prompt_numbers`` and ``crop_tokens_ids``.
gar_ros adds a few optional keys (all absent from the released checkpoints, all defaulting to the
official behaviour):

- ``replay_geometry``: "reference" (default; the official double-scaled RoI box, see
  :mod:`gar_ros.model.replay`) or "corrected" (the box in feature coordinates, scaled once).
- ``replay_output_size``: side of the replayed RoI grid (default: tokens per tile side, 16 for GAR).
- ``double_bos``: keep the two BOS tokens of the official inference path (default True).

Tile size and ``max_num_tiles`` come from ``preprocessor_config.json`` (defaults 448 and 16).
Patch size comes from the vision tower (``model_args.patch_size`` or ``img_size/ref_feat_shape``)
and is checked against the mask patch embedding's kernel when weights are loaded.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from gar_ros.errors import CheckpointError

REPLAY_GEOMETRIES: tuple[str, ...] = ("reference", "corrected")

#: PerceptionLM's image placeholder id (``<|image|>``) when the mllm config does not name one.
DEFAULT_IMAGE_TOKEN_ID = 128002
DEFAULT_TILE_SIZE = 448
DEFAULT_MAX_NUM_TILES = 16


def _int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CheckpointError(f"config value {name}={value!r} is not an integer >= {minimum}")
    return value


@dataclass
class GarConfig:
    """Everything the model core needs to know about one checkpoint (sizes in pixels/tokens)."""

    mllm_config: dict[str, Any]
    prompt_numbers: int = 5
    crop_tokens_ids: list[int] = field(default_factory=lambda: [128004, 128005, 128008, 128010, 128011])
    tile_size: int = DEFAULT_TILE_SIZE
    max_num_tiles: int = DEFAULT_MAX_NUM_TILES
    patch_size: int = 14
    pooling_ratio: int = 2
    replay_geometry: str = "reference"
    replay_output_size: int | None = None
    double_bos: bool = True
    image_token_id: int = DEFAULT_IMAGE_TOKEN_ID
    vision_use_cls_token: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ----------------------------------------------------------------- derived sizes
    @property
    def tokens_per_side(self) -> int:
        """Projected tokens along one side of a tile (16 for GAR: 448 / 14 / 2)."""
        return self.tile_size // self.patch_size // self.pooling_ratio

    @property
    def tokens_per_tile(self) -> int:
        return self.tokens_per_side * self.tokens_per_side

    @property
    def feature_stride(self) -> float:
        """Pixels of a tile covered by one projected token along a side (28 for GAR)."""
        return self.tile_size / self.tokens_per_side

    @property
    def replay_side(self) -> int:
        """Side of the RoI-aligned replay grid; ``replay_side**2`` crop tokens per prompt."""
        return self.replay_output_size or self.tokens_per_side

    @property
    def replay_tokens(self) -> int:
        return self.replay_side * self.replay_side

    @property
    def no_prompt_id(self) -> int:
        """Value of background pixels in the visual-prompt map (``<NO_Prompt>``)."""
        return self.prompt_numbers

    @property
    def text_config(self) -> dict[str, Any]:
        return dict(self.mllm_config.get("text_config") or {})

    @property
    def vision_config(self) -> dict[str, Any]:
        return dict(self.mllm_config.get("vision_config") or {})

    @property
    def hidden_size(self) -> int:
        return int(self.text_config.get("hidden_size", 0))

    @property
    def vision_width(self) -> int:
        args = self.vision_config.get("model_args") or {}
        return int(args.get("embed_dim", 0))

    def crop_token_id(self, prompt_index: int) -> int:
        """Crop (replay) token id of ``<Prompt{prompt_index}>``."""
        return self.crop_tokens_ids[prompt_index]

    # ----------------------------------------------------------------- checks / io
    def validate(self) -> None:
        _int(self.prompt_numbers, "prompt_numbers")
        if len(self.crop_tokens_ids) != self.prompt_numbers:
            raise CheckpointError(
                f"crop_tokens_ids has {len(self.crop_tokens_ids)} ids, prompt_numbers is {self.prompt_numbers}"
            )
        if len(set(self.crop_tokens_ids)) != len(self.crop_tokens_ids):
            raise CheckpointError(f"crop_tokens_ids are not distinct: {self.crop_tokens_ids}")
        for name in ("tile_size", "max_num_tiles", "patch_size", "pooling_ratio"):
            _int(getattr(self, name), name)
        if self.tile_size % (self.patch_size * self.pooling_ratio):
            raise CheckpointError(
                f"tile_size {self.tile_size} is not a multiple of patch_size*pooling "
                f"({self.patch_size}*{self.pooling_ratio})"
            )
        if self.replay_geometry not in REPLAY_GEOMETRIES:
            raise CheckpointError(
                f"replay_geometry must be one of {REPLAY_GEOMETRIES}, got {self.replay_geometry!r}"
            )
        if self.replay_output_size is not None:
            _int(self.replay_output_size, "replay_output_size")
        if not isinstance(self.mllm_config, dict) or "text_config" not in self.mllm_config:
            raise CheckpointError("mllm_config must be a PerceptionLM config with a text_config")
        if "vision_config" not in self.mllm_config:
            raise CheckpointError("mllm_config has no vision_config")

    @classmethod
    def from_dicts(
        cls,
        config: dict[str, Any],
        preprocessor: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> "GarConfig":
        """Build from ``config.json`` and ``preprocessor_config.json`` contents.

        ``overrides`` (e.g. ``max_num_tiles=8``, ``replay_geometry="corrected"``) win over both.
        """
        if config.get("model_type") != "GAR":
            raise CheckpointError(f"config.json model_type is {config.get('model_type')!r}, expected 'GAR'")
        mllm = config.get("mllm_config")
        if not isinstance(mllm, dict):
            raise CheckpointError("config.json has no mllm_config")
        mllm = copy.deepcopy(mllm)
        pre = preprocessor or {}
        vision_args = (mllm.get("vision_config") or {}).get("model_args") or {}
        patch = vision_args.get("patch_size")
        if patch is None:
            img = vision_args.get("img_size")
            ref = vision_args.get("ref_feat_shape")
            if img and ref:
                img0 = img[0] if isinstance(img, (list, tuple)) else img
                ref0 = ref[0] if isinstance(ref, (list, tuple)) else ref
                patch = int(img0) // int(ref0)
            else:
                ks = config.get("kernel_size")
                patch = ks[0] if isinstance(ks, (list, tuple)) else (ks or 14)
        values: dict[str, Any] = dict(
            mllm_config=mllm,
            prompt_numbers=config.get("prompt_numbers", 5),
            crop_tokens_ids=list(config.get("crop_tokens_ids", [128004, 128005, 128008, 128010, 128011])),
            tile_size=int(pre.get("tile_size", DEFAULT_TILE_SIZE)),
            max_num_tiles=int(pre.get("max_num_tiles", DEFAULT_MAX_NUM_TILES)),
            patch_size=int(patch),
            pooling_ratio=int(mllm.get("projector_pooling_ratio", 1) or 1),
            replay_geometry=config.get("replay_geometry", "reference"),
            replay_output_size=config.get("replay_output_size"),
            double_bos=bool(config.get("double_bos", True)),
            image_token_id=int(mllm.get("image_token_id", DEFAULT_IMAGE_TOKEN_ID)),
            vision_use_cls_token=bool(mllm.get("vision_use_cls_token", True)),
        )
        unknown = [k for k in overrides if k not in values]
        if unknown:
            raise CheckpointError(f"unknown config override(s): {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {"model_type", "mllm_config", "prompt_numbers", "crop_tokens_ids", "replay_geometry",
                 "replay_output_size", "double_bos"}
        values["extra"] = {k: v for k, v in config.items() if k not in known}
        return cls(**values)

    def to_config_json(self) -> dict[str, Any]:
        """The ``config.json`` dict (official keys + gar_ros keys)."""
        out: dict[str, Any] = {
            "model_type": "GAR",
            "architectures": ["GARModel"],
            "mllm_config": copy.deepcopy(self.mllm_config),
            "prompt_numbers": self.prompt_numbers,
            "crop_tokens_ids": list(self.crop_tokens_ids),
            "kernel_size": [self.patch_size, self.patch_size],
            "patch_size_h": self.patch_size,
            "patch_size_w": self.patch_size,
            "mask_path_embedding_out_channels": self.vision_width,
            "replay_geometry": self.replay_geometry,
            "double_bos": self.double_bos,
        }
        if self.replay_output_size is not None:
            out["replay_output_size"] = self.replay_output_size
        return out

    def to_preprocessor_json(self) -> dict[str, Any]:
        """The ``preprocessor_config.json`` dict (PerceptionLM image processor keys)."""
        return {
            "image_processor_type": "PerceptionLMImageProcessorFast",
            "processor_class": "PerceptionLMProcessor",
            "vision_input_type": "thumb+tile",
            "tile_size": self.tile_size,
            "max_num_tiles": self.max_num_tiles,
            "resample": 3,
            "do_resize": True,
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": [0.5, 0.5, 0.5],
            "image_std": [0.5, 0.5, 0.5],
            "do_convert_rgb": True,
            "size": {"height": self.tile_size, "width": self.tile_size},
        }
