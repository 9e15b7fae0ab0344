"""GarProcessor: image tiles, visual-prompt maps, replay boxes and prompt ids for one checkpoint.

This is the model-independent half of GAR (no weights): everything the official processor and
dataset code compute before the network runs. Reused by the video path (frames without a
thumbnail, one prompt map per frame).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gar_ros.errors import RegionError, TooManyRegionsError
from gar_ros.model.config import GarConfig
from gar_ros.model.processing import (
    FrameTiles,
    as_rgb,
    build_prompt_map,
    mask_box,
    num_image_tokens,
    preprocess_image,
    preprocess_prompt_map,
    region_mask,
)
from gar_ros.model.prompts import DESCRIBE_PROMPT_INDEX, PromptBuilder
from gar_ros.types import Region

Box = tuple[float, float, float, float]


@dataclass
class RegionPrompt:
    """One prompt's visual input: (H, W) uint8 prompt map and {prompt index: normalised box}."""

    prompt_map: np.ndarray
    boxes: dict[int, Box]


class GarProcessor:
    """Preprocessing and prompt building for a checkpoint (see :mod:`gar_ros.model.prompts`)."""

    def __init__(self, config: GarConfig, tokenizer: Any, chat_template: str | None = None) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.builder = PromptBuilder(
            tokenizer,
            prompt_numbers=config.prompt_numbers,
            crop_tokens_ids=config.crop_tokens_ids,
            replay_tokens=config.replay_tokens,
            image_token_id=config.image_token_id,
            chat_template=chat_template,
            double_bos=config.double_bos,
        )

    # ------------------------------------------------------------------ pixels
    def tiles(self, image: np.ndarray, *, thumbnail: bool = True, max_num_tiles: int | None = None) -> FrameTiles:
        """Image -> normalised tiles; ``max_num_tiles=1, thumbnail=False`` gives one video-frame tile."""
        limit = self.config.max_num_tiles if max_num_tiles is None else max_num_tiles
        return preprocess_image(image, self.config.tile_size, limit, thumbnail=thumbnail)

    def prompt_map_tiles(self, prompt_map: np.ndarray, frame: FrameTiles) -> torch.Tensor:
        """(H, W) prompt map -> (T, 1, S, S) normalised tiles matching ``frame``'s tiles."""
        return preprocess_prompt_map(prompt_map, frame.grid, self.config.tile_size, thumbnail=frame.thumbnail)

    def image_tokens(self, frame: FrameTiles) -> int:
        return num_image_tokens(frame.grid, self.config.tokens_per_tile, thumbnail=frame.thumbnail)

    # ------------------------------------------------------------------ regions
    def masks(self, regions: Sequence[Region], width: int, height: int) -> list[np.ndarray]:
        """Validated (H, W) bool masks of the regions, in order."""
        for r in regions:
            if not isinstance(r, Region):
                raise RegionError(f"regions must be gar_ros.types.Region objects, got {type(r).__name__}")
        return [region_mask(r, width, height) for r in regions]

    def region_prompt(self, masks: Sequence[np.ndarray], indices: Sequence[int]) -> RegionPrompt:
        """Prompt map + boxes for masks[i] as ``<Prompt{indices[i]}>`` (each box from its own mask)."""
        if len(masks) > self.config.prompt_numbers:
            raise TooManyRegionsError(
                f"{len(masks)} regions in one prompt; this model has {self.config.prompt_numbers} prompt slots"
            )
        order = sorted(range(len(masks)), key=lambda i: indices[i])
        h, w = masks[0].shape if masks else (0, 0)
        pmap = build_prompt_map(
            [masks[i] for i in order], [indices[i] for i in order], self.config.no_prompt_id, h, w
        )
        geometry = self.config.replay_geometry
        boxes = {indices[i]: mask_box(masks[i], geometry) for i in range(len(masks))}
        return RegionPrompt(pmap, boxes)

    def empty_prompt(self, width: int, height: int) -> RegionPrompt:
        return RegionPrompt(np.full((height, width), self.config.no_prompt_id, dtype=np.uint8), {})

    # ------------------------------------------------------------------ ids
    def describe_ids(self, frame: FrameTiles, index: int = DESCRIBE_PROMPT_INDEX) -> list[int]:
        return self.builder.describe_ids(self.image_tokens(frame), index)

    def question_ids(self, frame: FrameTiles, indices: Sequence[int], question: str) -> list[int]:
        return self.builder.question_ids(self.image_tokens(frame), indices, question)

    def decode(self, token_ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(token_ids), skip_special_tokens=True)).strip()

    @staticmethod
    def rgb(image: np.ndarray) -> np.ndarray:
        return as_rgb(image)
