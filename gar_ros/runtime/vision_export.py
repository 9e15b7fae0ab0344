"""Vision-engine graph for ONNX export: pixel tiles + visual-prompt map -> projected tokens.

Graph ``vision``: ``pixel_values`` (T, 3, S, S) float (normalised, mean = std = 0.5) and
``prompt_maps`` (T, C, S, S) float (the visual-prompt id map normalised the same way, C = 1 or 3)
-> ``image_tokens`` (T, N, D): mask embedding, vision tower, projector and pooling included,
exactly what the torch VisionEngine's ``encode`` computes. T (tiles) is dynamic.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from gar_ros.runtime.lm_export import _export, eager_attention

VISION_INPUTS = ["pixel_values", "prompt_maps"]
VISION_OUTPUTS = ["image_tokens"]


class VisionGraph(nn.Module):
    """Adapter: any module or engine with ``encode(pixel_values, prompt_maps)`` or ``forward`` of
    that signature, registered as a submodule so that its weights become graph initializers."""

    def __init__(self, engine: nn.Module) -> None:
        super().__init__()
        self.engine = engine

    def forward(self, pixel_values: Tensor, prompt_maps: Tensor) -> Tensor:
        encode = getattr(self.engine, "encode", None)
        if callable(encode):
            return encode(pixel_values, prompt_maps)
        return self.engine(pixel_values, prompt_maps)


def export_vision(engine: nn.Module, out_dir: Path, *, tile_size: int, prompt_channels: int = 1,
                  opset: int = 18, max_tiles: int = 64) -> tuple[list[str], list[str], tuple[int, int]]:
    """Export ``vision.onnx`` into ``out_dir``; returns (inputs, outputs, (tokens_per_tile, dim))."""
    out_dir.mkdir(parents=True, exist_ok=True)
    param = next(engine.parameters())
    tiles = 2
    pixels = torch.rand(tiles, 3, tile_size, tile_size, dtype=param.dtype, device=param.device) * 2 - 1
    prompt = torch.full((tiles, prompt_channels, tile_size, tile_size), 1.0, dtype=param.dtype, device=param.device)
    prompt[:, :, : tile_size // 2, : tile_size // 2] = -1.0  # some pixels of prompt 0, the rest background
    graph = VisionGraph(engine).eval()
    with torch.no_grad():
        sample = graph(pixels, prompt)
    dim = torch.export.Dim("tiles", min=1, max=max_tiles)
    with eager_attention(engine):
        _export(graph, (pixels, prompt), out_dir / "vision.onnx", VISION_INPUTS, VISION_OUTPUTS,
                ({0: dim}, {0: dim}), opset)
    return VISION_INPUTS, VISION_OUTPUTS, (int(sample.shape[1]), int(sample.shape[2]))
