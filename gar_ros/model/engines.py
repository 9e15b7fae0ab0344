"""Compute engines: the two places where GAR spends its time, behind small protocols.

The model core (tiling, prompt assembly, RoI replay, greedy loop) stays in torch and calls
- a :class:`VisionEngine` for the vision tower (mask embedding + tower + projector + pooling), and
- a :class:`LanguageEngine` for token embedding, prefill and one-token decode steps.
The torch implementations here wrap :class:`gar_ros.model.modeling.GarTorchModel`; other
backends (onnxruntime, TensorRT) live in ``gar_ros.runtime`` and implement the same protocols.

Tensor conventions: pixel tiles (T, 3, S, S) float normalised to [-1, 1]; prompt maps
(T, 1, S, S) or (T, 3, S, S) float, normalised prompt ids (v -> 2v/255 - 1); attention masks
(B, L) int64 with 1 = real token, left padding; positions are derived from the mask
(``cumsum - 1``), so padded rows behave like unpadded ones.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from gar_ros.model.modeling import GarTorchModel


@runtime_checkable
class VisionEngine(Protocol):
    def encode(self, pixel_values: torch.Tensor, prompt_maps: torch.Tensor) -> torch.Tensor:
        """(T, 3, S, S) + (T, 1|3, S, S) -> (T, tokens_per_tile, D) projected tokens."""
        ...


@runtime_checkable
class LanguageEngine(Protocol):
    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 -> (B, L, D)."""
        ...

    def prefill(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """(B, L, D) + (B, L) -> logits (B, L', V), cache; L' >= 1, the last row belongs to the
        last prompt token (torch and onnxruntime engines return only that one, L' = 1)."""
        ...

    def decode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        """(B, 1) new tokens + (B, past + 1) mask + cache -> logits (B, 1, V), cache."""
        ...


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, L) 0/1 mask -> (B, L) position ids, 0 at each row's first real token."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class TorchVisionEngine:
    """Eager torch vision engine over a :class:`GarTorchModel`."""

    def __init__(self, model: GarTorchModel) -> None:
        self.model = model
        self.calls = 0
        self.tiles = 0

    @property
    def device(self) -> torch.device:
        return self.model.mask_patch_embedding.weight.device

    @torch.inference_mode()
    def encode(self, pixel_values: torch.Tensor, prompt_maps: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.tiles += int(pixel_values.shape[0])
        dev = self.device
        maps = None if prompt_maps is None else prompt_maps.to(dev)
        return self.model.encode_images(pixel_values.to(dev), maps)


class TorchLanguageEngine:
    """Eager torch language engine (transformers' Llama with its dynamic KV cache)."""

    def __init__(self, model: GarTorchModel) -> None:
        self.model = model

    @property
    def device(self) -> torch.device:
        return self.model.embed_layer.weight.device

    @torch.inference_mode()
    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed(input_ids.to(self.device))

    @torch.inference_mode()
    def prefill(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, Any]:
        mask = attention_mask.to(self.device)
        return self.model.language_forward(
            inputs_embeds.to(self.device), mask, positions_from_mask(mask), cache=None, use_cache=True,
            last_only=True,
        )

    @torch.inference_mode()
    def decode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        mask = attention_mask.to(self.device)
        positions = positions_from_mask(mask)[:, -input_ids.shape[1] :]
        embeds = self.model.embed(input_ids.to(self.device))
        return self.model.language_forward(embeds, mask, positions, cache=cache, use_cache=True, last_only=True)


def torch_engines(model: GarTorchModel) -> tuple[TorchVisionEngine, TorchLanguageEngine]:
    return TorchVisionEngine(model), TorchLanguageEngine(model)
