"""Export a GAR model to ONNX: vision, embed, prefill and decode graphs + manifest.

See :mod:`gar_ros.runtime.onnx_io` for the directory layout, :mod:`gar_ros.runtime.lm_export`
and :mod:`gar_ros.runtime.vision_export` for the graphs' inputs and outputs.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from torch import nn

from gar_ros.runtime.lm_export import export_language, kv_shape
from gar_ros.runtime.onnx_io import MANIFEST_NAME, WEIGHTS_NAME, GraphSpec, Manifest, directory_hash, repack_shared
from gar_ros.runtime.vision_export import export_vision

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18


def export_graphs(out_dir: Path | str, *, decoder: nn.Module, lm_head: nn.Module,
                  vision: nn.Module | None = None, tile_size: int = 448, prompt_channels: int = 1,
                  source: dict[str, Any] | None = None, opset: int = DEFAULT_OPSET) -> Manifest:
    """Export the language graphs (and the vision graph when ``vision`` is given) into ``out_dir``.

    The graphs are written to a staging folder, their weights repacked into one shared
    ``weights.bin``, and ``manifest.json`` written last: a directory with a manifest is complete.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    staging = out_dir / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    start = time.monotonic()
    try:
        io_names = export_language(decoder, lm_head, staging, opset=opset)
        config: dict[str, Any] = {}
        n_layers, kv_heads, head_dim = kv_shape(decoder)
        config["language"] = {
            "num_layers": n_layers, "num_kv_heads": kv_heads, "head_dim": head_dim,
            "hidden_size": int(decoder.config.hidden_size), "vocab_size": int(lm_head.weight.shape[0]),
        }
        if vision is not None:
            v_in, v_out, (tokens, dim) = export_vision(vision, staging, tile_size=tile_size,
                                                       prompt_channels=prompt_channels, opset=opset)
            io_names["vision"] = (v_in, v_out)
            config["vision"] = {"tile_size": tile_size, "prompt_channels": prompt_channels,
                                "tokens_per_tile": tokens, "hidden_size": dim}
        repack_shared({g: staging / f"{g}.onnx" for g in io_names}, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    graphs = {g: GraphSpec(file=f"{g}.onnx", inputs=list(i), outputs=list(o)) for g, (i, o) in io_names.items()}
    files = [out_dir / s.file for s in graphs.values()] + [out_dir / WEIGHTS_NAME]
    param = next(decoder.parameters())
    manifest = Manifest(graphs=graphs, config=config, source=dict(source or {}),
                        model_hash=directory_hash(files), opset=opset,
                        dtype=str(param.dtype).removeprefix("torch."))
    manifest.save(out_dir)
    log.info("exported %s to %s in %.1f s", ", ".join(graphs), out_dir, time.monotonic() - start)
    return manifest
