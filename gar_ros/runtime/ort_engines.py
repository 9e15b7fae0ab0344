"""onnxruntime implementations of the model core's VisionEngine / LanguageEngine protocols.

Inputs and outputs are torch tensors (CPU); the KV cache is an :class:`OrtKVCache` of NumPy
arrays that stays on the runtime's side between calls. The CUDA execution provider is used
when onnxruntime offers it (``onnxruntime-gpu``), the CPU provider otherwise.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gar_ros.errors import BackendError
from gar_ros.runtime.onnx_io import Manifest

log = logging.getLogger(__name__)


def default_providers() -> list[str]:
    """CUDA first when onnxruntime has it, then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


#: Above this size of weights.bin, sessions skip weight prepacking so that they all read the one
#: memory-mapped copy of the weights (prefill and decode share the decoder) instead of each
#: holding a packed copy: half the memory of a 1B model, similar speed on CPU.
SHARE_WEIGHTS_ABOVE = 1 << 30


def make_session(path: Path, providers: Sequence[str] | None = None, threads: int = 0,
                 share_weights: bool | None = None) -> object:
    """An ``InferenceSession`` for one graph; ``threads`` 0 lets onnxruntime choose.

    ``share_weights`` (default: weights file > 1 GiB) disables prepacking, see SHARE_WEIGHTS_ABOVE.
    """
    import onnxruntime as ort

    if share_weights is None:
        weights = path.parent / "weights.bin"
        share_weights = weights.is_file() and weights.stat().st_size > SHARE_WEIGHTS_ABOVE
    opts = ort.SessionOptions()
    if share_weights:
        opts.add_session_config_entry("session.disable_prepacking", "1")
    opts.intra_op_num_threads = int(threads)
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=list(providers or default_providers()))
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise BackendError(f"onnxruntime cannot load {path}: {err}") from err


def positions_from_mask(attention_mask: np.ndarray, new_tokens: int) -> np.ndarray:
    """Position ids of the last ``new_tokens`` columns: running count of real tokens - 1.

    Same rule as Hugging Face generation (cumsum - 1, padding positions set to 1), so that
    left-padded batches get the positions of their unpadded prompts.
    """
    pos = np.cumsum(attention_mask, axis=1, dtype=np.int64) - 1
    pos = np.where(attention_mask == 0, 1, pos)
    return np.ascontiguousarray(pos[:, -new_tokens:])


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(t.shape() if callable(getattr(t, "shape", None)) else t.shape)


@dataclass
class OrtKVCache:
    """Per-layer keys and values, ``tensors[2i]`` keys and ``tensors[2i+1]`` values of layer i,
    each (B, Hkv, P, hd) float; ``length`` = P. NumPy arrays, or onnxruntime ``OrtValue``s that
    stay on the provider's device when the engine runs with I/O binding."""

    tensors: list[Any]

    @property
    def length(self) -> int:
        return int(_shape(self.tensors[0])[2])

    @property
    def batch_size(self) -> int:
        return int(_shape(self.tensors[0])[0])

    def select(self, index: Sequence[int] | Tensor) -> OrtKVCache:
        """Rows ``index`` of the batch (reorder, drop or repeat sequences); NumPy result."""
        idx = np.asarray(index.cpu() if isinstance(index, Tensor) else index, dtype=np.int64)
        arrays = [t if isinstance(t, np.ndarray) else t.numpy() for t in self.tensors]
        return OrtKVCache([np.ascontiguousarray(t[idx]) for t in arrays])

    def repeat(self, n: int) -> OrtKVCache:
        """Each row repeated ``n`` times consecutively (like ``repeat_interleave``)."""
        return self.select(np.repeat(np.arange(self.batch_size), n))


def _np(t: Tensor, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(dtype, copy=False))


class OrtVisionEngine:
    """``encode(pixel_values (T,3,S,S), prompt_maps (T,1|3,S,S)) -> (T, N, D)`` with vision.onnx."""

    backend = "onnxruntime"

    def __init__(self, export_dir: Path | str, providers: Sequence[str] | None = None, threads: int = 0,
                 share_weights: bool | None = None) -> None:
        self.export_dir = Path(export_dir)
        self.manifest = Manifest.load(self.export_dir)
        spec = self.manifest.graphs.get("vision")
        if spec is None:
            raise BackendError(f"{export_dir} has no vision graph")
        self.session = make_session(self.export_dir / spec.file, providers, threads, share_weights)
        self.inputs = spec.inputs
        self.prompt_channels = int(self.manifest.config["vision"]["prompt_channels"])
        self.dtype = np.dtype(self.manifest.dtype)

    def encode(self, pixel_values: Tensor, prompt_maps: Tensor) -> Tensor:
        if prompt_maps.shape[1] != self.prompt_channels:
            if prompt_maps.shape[1] == 1:
                prompt_maps = prompt_maps.expand(-1, self.prompt_channels, -1, -1)
            else:
                prompt_maps = prompt_maps[:, : self.prompt_channels]
        feeds = {self.inputs[0]: _np(pixel_values, self.dtype), self.inputs[1]: _np(prompt_maps, self.dtype)}
        (tokens,) = self.session.run(None, feeds)
        return torch.from_numpy(tokens).to(pixel_values.dtype)


class OrtLanguageEngine:
    """Embedding lookup, prefill and decode with embed.onnx / prefill.onnx / decode.onnx.

    ``prefill`` and ``decode`` return logits of the LAST position only, shape (B, 1, V).
    With ``io_binding`` (default: when the CUDA provider runs) the KV cache stays on the
    provider's device between steps as ``OrtValue``s; only logits come back to the host.
    """

    backend = "onnxruntime"

    def __init__(self, export_dir: Path | str, providers: Sequence[str] | None = None, threads: int = 0,
                 share_weights: bool | None = None, io_binding: bool | None = None) -> None:
        self.export_dir = Path(export_dir)
        self.manifest = Manifest.load(self.export_dir)
        missing = [g for g in ("embed", "prefill", "decode") if g not in self.manifest.graphs]
        if missing:
            raise BackendError(f"{export_dir} lacks graph(s) {missing}")
        graphs = self.manifest.graphs
        self.sessions = {g: make_session(self.export_dir / graphs[g].file, providers, threads, share_weights)
                         for g in ("embed", "prefill", "decode")}
        self.specs = graphs
        self.dtype = np.dtype(self.manifest.dtype)
        self.num_layers = int(self.manifest.config["language"]["num_layers"])
        on_cuda = "CUDAExecutionProvider" in self.sessions["decode"].get_providers()
        self.device_type = "cuda" if on_cuda else "cpu"
        self.io_binding = on_cuda if io_binding is None else bool(io_binding)

    def _run(self, graph: str, feeds: dict[str, Any]) -> tuple[np.ndarray, list[Any]]:
        """Run one graph; returns (logits as NumPy, KV tensors as NumPy or device OrtValues)."""
        session = self.sessions[graph]
        if not self.io_binding:
            logits, *kv = session.run(None, feeds)
            return logits, kv
        import onnxruntime as ort

        binding = session.io_binding()
        for name, value in feeds.items():
            if isinstance(value, np.ndarray):
                value = ort.OrtValue.ortvalue_from_numpy(value, self.device_type, 0)
            binding.bind_ortvalue_input(name, value)
        for name in self.specs[graph].outputs:
            binding.bind_output(name, self.device_type)
        session.run_with_iobinding(binding)
        logits, *kv = binding.get_outputs()
        return logits.numpy(), kv

    def embed(self, input_ids: Tensor) -> Tensor:
        (out,) = self.sessions["embed"].run(None, {self.specs["embed"].inputs[0]: _np(input_ids, np.int64)})
        return torch.from_numpy(out)

    def prefill(self, inputs_embeds: Tensor, attention_mask: Tensor) -> tuple[Tensor, OrtKVCache]:
        mask = _np(attention_mask, np.int64)
        if mask.shape != tuple(inputs_embeds.shape[:2]):
            raise BackendError(f"attention_mask {mask.shape} does not match inputs_embeds {tuple(inputs_embeds.shape)}")
        names = self.specs["prefill"].inputs
        feeds = {names[0]: _np(inputs_embeds, self.dtype), names[1]: mask,
                 names[2]: positions_from_mask(mask, mask.shape[1])}
        logits, kv = self._run("prefill", feeds)
        return torch.from_numpy(logits), OrtKVCache(kv)

    def decode(self, input_ids: Tensor, attention_mask: Tensor, cache: OrtKVCache) -> tuple[Tensor, OrtKVCache]:
        if not isinstance(cache, OrtKVCache):
            raise BackendError(f"onnxruntime decode needs the cache its prefill returned, got {type(cache).__name__}")
        ids = _np(input_ids, np.int64)
        mask = _np(attention_mask, np.int64)
        if mask.shape[1] != cache.length + ids.shape[1]:
            raise BackendError(
                f"attention_mask covers {mask.shape[1]} tokens, cache {cache.length} + new {ids.shape[1]}"
            )
        names = self.specs["decode"].inputs
        feeds = {names[0]: ids, names[1]: mask, names[2]: positions_from_mask(mask, ids.shape[1])}
        feeds.update(zip(names[3:], cache.tensors))
        logits, kv = self._run("decode", feeds)
        return torch.from_numpy(logits), OrtKVCache(kv)
