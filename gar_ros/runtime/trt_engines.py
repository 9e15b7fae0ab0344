"""TensorRT engines built from the ONNX export: profiles, builder, runner, and the two engines.

NOT EXECUTED IN THIS PROJECT'S CI: TensorRT cannot be installed on the development machines.
The builder and runner below follow TensorRT 10's documented Python API (``tensorrt.Builder``,
``OnnxParser.parse_from_file``, ``IBuilderConfig`` with optimisation profiles, precision flags,
timing cache and ``IProgressMonitor``; ``Runtime.deserialize_cuda_engine``,
``IExecutionContext.set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3``) and are
kept small. What does not need TensorRT is tested: profile shapes (:func:`default_profiles`),
engine keys and the cache (:mod:`gar_ros.runtime.trt_cache`), availability detection and the
fallback (:mod:`gar_ros.runtime.factory`).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gar_ros.errors import BackendError
from gar_ros.runtime.onnx_io import Manifest
from gar_ros.runtime.ort_engines import positions_from_mask
from gar_ros.runtime.trt_cache import EngineCache, EngineKey, Profile, resolve_engine

log = logging.getLogger(__name__)


def trt_status() -> tuple[bool, str]:
    """(usable, reason): TensorRT importable AND a CUDA device present."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as err:
        return False, f"TensorRT is not installed ({err})"
    except Exception as err:  # a broken install raises anything from its native loader
        return False, f"TensorRT cannot be imported ({type(err).__name__}: {err})"
    if not torch.cuda.is_available():
        return False, "TensorRT needs a CUDA device and torch sees none"
    return True, ""


def gpu_name(device: int = 0) -> str:
    """GPU model and compute capability, e.g. 'NVIDIA H200 sm90' (a part of engine keys)."""
    major, minor = torch.cuda.get_device_capability(device)
    return f"{torch.cuda.get_device_name(device)} sm{major}{minor}"


@dataclass(frozen=True)
class ProfileLimits:
    """Ranges the engines must accept. ``max_tiles`` counts the thumbnail; the language engines
    cover prompts up to ``max_prompt`` tokens plus ``max_new_tokens`` generated, ``max_batch``
    sequences (regions described together), and cache extensions of up to ``max_extend`` tokens."""

    max_tiles: int = 17
    opt_tiles: int = 5
    max_batch: int = 8
    opt_batch: int = 1
    max_prompt: int = 4096
    opt_prompt: int = 1400
    max_new_tokens: int = 256
    max_extend: int = 64


def default_profiles(manifest: Manifest, limits: ProfileLimits = ProfileLimits()) -> dict[str, list[Profile]]:
    """One optimisation profile per graph, from the export's dims and ``limits``."""
    lang = manifest.config["language"]
    hkv, hd, hidden = lang["num_kv_heads"], lang["head_dim"], lang["hidden_size"]
    b0, b1, b2 = 1, limits.opt_batch, limits.max_batch
    s1, s2 = limits.opt_prompt, limits.max_prompt
    out: dict[str, list[Profile]] = {}
    if "vision" in manifest.graphs:
        v = manifest.config["vision"]
        size, ch = v["tile_size"], v["prompt_channels"]
        t = (1, limits.opt_tiles, limits.max_tiles)
        out["vision"] = [{
            "pixel_values": tuple((n, 3, size, size) for n in t),
            "prompt_maps": tuple((n, ch, size, size) for n in t),
        }]
    out["embed"] = [{"input_ids": ((b0, 1), (b1, s1), (b2, s2))}]
    out["prefill"] = [{
        "inputs_embeds": ((b0, 1, hidden), (b1, s1, hidden), (b2, s2, hidden)),
        "attention_mask": ((b0, 1), (b1, s1), (b2, s2)),
        "position_ids": ((b0, 1), (b1, s1), (b2, s2)),
    }]
    past = (1, s1 + limits.max_new_tokens // 2, s2 + limits.max_new_tokens)
    seq = (1, 1, limits.max_extend)
    decode: Profile = {
        "input_ids": ((b0, seq[0]), (b1, seq[1]), (b2, seq[2])),
        "attention_mask": ((b0, past[0] + seq[0]), (b1, past[1] + seq[1]), (b2, past[2] + seq[2])),
        "position_ids": ((b0, seq[0]), (b1, seq[1]), (b2, seq[2])),
    }
    for name in manifest.graphs["decode"].inputs[3:]:
        decode[name] = ((b0, hkv, past[0], hd), (b1, hkv, past[1], hd), (b2, hkv, past[2], hd))
    out["decode"] = [decode]
    return out


# ---------------------------------------------------------------- TensorRT (unexecuted here)

def build_plan(onnx_path: Path, profiles: list[Profile], precision: str, *, timing_cache: Path | None = None,
               workspace_bytes: int = 8 << 30, progress: bool = True) -> bytes:
    """Parse ``onnx_path`` (external data next to it) and build a serialised engine. UNEXECUTED HERE."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision in ("fp16", "bf16"):
        config.set_flag(trt.BuilderFlag.FP16 if precision == "fp16" else trt.BuilderFlag.BF16)
        # Norm statistics (x^2 mean), softmax and reductions stay in fp32: fp16 overflows there.
        config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            keep = layer.type in (trt.LayerType.REDUCE, trt.LayerType.SOFTMAX, trt.LayerType.NORMALIZATION)
            if layer.type == trt.LayerType.ELEMENTWISE:
                layer.__class__ = trt.IElementWiseLayer
                keep = layer.op == trt.ElementWiseOperation.POW
            if keep:
                layer.precision = trt.float32
                for j in range(layer.num_outputs):
                    layer.set_output_type(j, trt.float32)
    for shapes in profiles:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in shapes.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache is not None and timing_cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)
    if progress:
        config.progress_monitor = _progress_monitor(trt)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BackendError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log)")
    if timing_cache is not None:
        tmp = timing_cache.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(memoryview(config.get_timing_cache().serialize()))
        os.replace(tmp, timing_cache)
    return bytes(memoryview(plan))


def _progress_monitor(trt: Any) -> Any:
    """An ``IProgressMonitor`` logging phase starts/ends (TensorRT calls it from the build)."""

    class _Progress(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.steps: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.steps[phase_name] = num_steps
            log.info("TensorRT build: %s (%d steps)", phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            log.debug("TensorRT build: %s %d/%d", phase_name, step + 1, self.steps.get(phase_name, 0))
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            log.info("TensorRT build: %s done", phase_name)

    return _Progress()


class TrtRunner:
    """One deserialised engine + execution context; runs on torch's current CUDA stream. UNEXECUTED HERE."""

    def __init__(self, plan: Path, device: torch.device) -> None:
        import tensorrt as trt

        self.trt = trt
        self.device = device
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(plan.read_bytes())
        if self.engine is None:
            raise BackendError(f"TensorRT cannot deserialise {plan} (built by another TensorRT or GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: _torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}

    def __call__(self, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        keep = []
        for name in self.inputs:
            t = feeds[name].to(self.device, self.dtypes[name]).contiguous()
            keep.append(t)
            self.context.set_input_shape(name, tuple(t.shape))
            self.context.set_tensor_address(name, t.data_ptr())
        out = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            out[name] = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
            self.context.set_tensor_address(name, out[name].data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise BackendError("TensorRT execution failed")
        del keep  # inputs stay referenced until the stream finished with them: torch's allocator is stream-ordered
        return out


def _torch_dtype(trt: Any, dtype: Any) -> torch.dtype:
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.bfloat16: torch.bfloat16,
             trt.int32: torch.int32, trt.int64: torch.int64, trt.bool: torch.bool, trt.int8: torch.int8}
    return table[dtype]


@dataclass
class TrtKVCache:
    """Per-layer keys/values as CUDA tensors (B, Hkv, P, hd), keys at even indices."""

    tensors: list[Tensor]

    @property
    def length(self) -> int:
        return int(self.tensors[0].shape[2])

    @property
    def batch_size(self) -> int:
        return int(self.tensors[0].shape[0])

    def select(self, index: Sequence[int] | Tensor) -> TrtKVCache:
        idx = torch.as_tensor(index, device=self.tensors[0].device, dtype=torch.long)
        return TrtKVCache([t.index_select(0, idx) for t in self.tensors])

    def repeat(self, n: int) -> TrtKVCache:
        return TrtKVCache([t.repeat_interleave(n, 0) for t in self.tensors])


def engine_paths(onnx_dir: Path, engine_dir: Path, *, precision: str = "fp16", limits: ProfileLimits = ProfileLimits(),
                 graphs: Sequence[str] | None = None, force_rebuild: bool = False, allow_build: bool = True,
                 device: int = 0) -> dict[str, Path]:
    """Cached or freshly built plans for the export's graphs (see ``resolve_engine``). Needs TensorRT."""
    import tensorrt as trt

    manifest = Manifest.load(onnx_dir)
    profiles = default_profiles(manifest, limits)
    cache = EngineCache(engine_dir)
    name = gpu_name(device)
    out = {}
    for graph in graphs or list(profiles):
        key = EngineKey.create(graph, manifest.model_hash, trt.__version__, name, precision, profiles[graph])
        path = onnx_dir / manifest.graphs[graph].file
        out[graph] = resolve_engine(
            cache, key,
            lambda path=path, graph=graph: build_plan(path, profiles[graph], precision,
                                                      timing_cache=Path(engine_dir) / "timing.cache"),
            force_rebuild=force_rebuild, allow_build=allow_build,
        )
    return out


class TrtVisionEngine:
    """VisionEngine on a TensorRT plan of vision.onnx. UNEXECUTED HERE."""

    backend = "tensorrt"

    def __init__(self, plan: Path, manifest: Manifest, device: torch.device) -> None:
        self.runner = TrtRunner(plan, device)
        self.spec = manifest.graphs["vision"]
        self.prompt_channels = int(manifest.config["vision"]["prompt_channels"])

    def encode(self, pixel_values: Tensor, prompt_maps: Tensor) -> Tensor:
        if prompt_maps.shape[1] != self.prompt_channels:
            prompt_maps = (prompt_maps.expand(-1, self.prompt_channels, -1, -1) if prompt_maps.shape[1] == 1
                           else prompt_maps[:, : self.prompt_channels])
        out = self.runner({self.spec.inputs[0]: pixel_values, self.spec.inputs[1]: prompt_maps})
        return out[self.spec.outputs[0]]


class TrtLanguageEngine:
    """LanguageEngine on TensorRT plans of embed/prefill/decode.onnx. UNEXECUTED HERE."""

    backend = "tensorrt"

    def __init__(self, plans: dict[str, Path], manifest: Manifest, device: torch.device) -> None:
        self.runners = {g: TrtRunner(plans[g], device) for g in ("embed", "prefill", "decode")}
        self.specs = manifest.graphs
        self.device = device

    def embed(self, input_ids: Tensor) -> Tensor:
        spec = self.specs["embed"]
        return self.runners["embed"]({spec.inputs[0]: input_ids})[spec.outputs[0]]

    def prefill(self, inputs_embeds: Tensor, attention_mask: Tensor) -> tuple[Tensor, TrtKVCache]:
        spec = self.specs["prefill"]
        mask = attention_mask.to(torch.int64)
        pos = torch.from_numpy(positions_from_mask(mask.cpu().numpy(), mask.shape[1]))
        out = self.runners["prefill"]({spec.inputs[0]: inputs_embeds, spec.inputs[1]: mask, spec.inputs[2]: pos})
        return out[spec.outputs[0]], TrtKVCache([out[n] for n in spec.outputs[1:]])

    def decode(self, input_ids: Tensor, attention_mask: Tensor, cache: TrtKVCache) -> tuple[Tensor, TrtKVCache]:
        if not isinstance(cache, TrtKVCache):
            raise BackendError(f"TensorRT decode needs the cache its prefill returned, got {type(cache).__name__}")
        spec = self.specs["decode"]
        mask = attention_mask.to(torch.int64)
        pos = torch.from_numpy(positions_from_mask(mask.cpu().numpy(), input_ids.shape[1]))
        feeds = {spec.inputs[0]: input_ids, spec.inputs[1]: mask, spec.inputs[2]: pos}
        feeds.update(zip(spec.inputs[3:], cache.tensors))
        out = self.runners["decode"](feeds)
        return out[spec.outputs[0]], TrtKVCache([out[n] for n in spec.outputs[1:]])
