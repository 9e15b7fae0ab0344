"""``create_engines``: the VisionEngine/LanguageEngine pair for a backend, with fallback.

Backends: ``torch`` (the model core's eager engines), ``onnxruntime`` (ONNX export, CPU or CUDA
provider) and ``tensorrt`` (engines built from the same export). When TensorRT (or a CUDA
device) is missing, ``tensorrt`` falls back to ``onnxruntime``, and to ``torch`` when
onnxruntime is missing too, with ONE warning per process and reason; nothing crashes.

Without ``onnx_dir`` the export goes to a cache keyed by the model: ``$GAR_ROS_CACHE`` (default
``~/.cache/gar_ros``) ``/onnx/<name>-<fingerprint>``, where the fingerprint hashes the model's
config and a sample of every weight tensor (so different weights never share an export).
"""
from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gar_ros.errors import BackendError
from gar_ros.runtime.onnx_io import MANIFEST_NAME, Manifest

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "tensorrt")
_warned: set[tuple[str, str, str]] = set()


def cache_root() -> Path:
    return Path(os.environ.get("GAR_ROS_CACHE", Path.home() / ".cache" / "gar_ros")).expanduser()


def _warn_once(requested: str, actual: str, reason: str) -> None:
    key = (requested, actual, reason)
    if key not in _warned:
        _warned.add(key)
        log.warning("backend %r is not available here (%s); using %r instead", requested, reason, actual)


def onnxruntime_status() -> tuple[bool, str]:
    try:
        import onnxruntime  # noqa: F401
    except ImportError as err:
        return False, f"onnxruntime is not installed ({err})"
    return True, ""


def resolve_backend(backend: str) -> str:
    """The backend that will actually run for a requested one (fallback, warned once)."""
    from gar_ros.runtime.trt_engines import trt_status

    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "tensorrt":
        ok, reason = trt_status()
        if ok:
            return "tensorrt"
        ort_ok, ort_reason = onnxruntime_status()
        actual = "onnxruntime" if ort_ok else "torch"
        _warn_once("tensorrt", actual, reason if ort_ok else f"{reason}; {ort_reason}")
        return actual
    if backend == "onnxruntime":
        ok, reason = onnxruntime_status()
        if not ok:
            _warn_once("onnxruntime", "torch", reason)
            return "torch"
    return backend


# ------------------------------------------------------------------ model access

def _torch_model(model: Any) -> nn.Module:
    """The GarTorchModel of a GarModel (or the module itself)."""
    inner = getattr(model, "torch_model", model)
    if not isinstance(inner, nn.Module) or not hasattr(inner, "encode_images"):
        raise BackendError(f"cannot export {type(model).__name__}: expected a GarModel or GarTorchModel")
    return inner


class GarVisionGraph(nn.Module):
    """The model core's vision path as a module: ``encode_images(pixels, prompt_maps)``."""

    def __init__(self, gar: nn.Module) -> None:
        super().__init__()
        self.gar = gar

    def forward(self, pixel_values: torch.Tensor, prompt_maps: torch.Tensor) -> torch.Tensor:
        return self.gar.encode_images(pixel_values, prompt_maps)


def model_fingerprint(model: Any) -> str:
    """SHA-256 over the export-relevant config and a sample (shape + first/last 64 values) of
    every weight tensor; cheap (no full pass over the weights)."""
    gar = _torch_model(model)
    h = hashlib.sha256()
    cfg = getattr(gar, "config", None)
    mllm = getattr(cfg, "mllm_config", None)
    h.update(json.dumps(mllm, sort_keys=True, default=str).encode())
    h.update(str(getattr(cfg, "no_prompt_id", "")).encode())
    for name, t in sorted(gar.state_dict().items()):
        flat = t.detach().reshape(-1)
        sample = torch.cat([flat[:64], flat[-64:]]).to(torch.float32).cpu().numpy().tobytes()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(sample)
    return h.hexdigest()


def export_model(model: Any, out_dir: Path | str, *, opset: int | None = None) -> Manifest:
    """Export a GarModel / GarTorchModel to ``out_dir`` (vision, embed, prefill, decode; fp32)."""
    from gar_ros.runtime.export import DEFAULT_OPSET, export_graphs

    gar = _torch_model(model)
    if any(p.dtype != torch.float32 for p in gar.parameters()):
        log.info("exporting a float32 copy of the model (loaded as %s)", next(gar.parameters()).dtype)
        gar = copy.deepcopy(gar).float()
    gar = gar.to("cpu").eval()
    cfg = gar.config
    name = getattr(model, "name", "") or type(gar).__name__
    source = {"name": name, "fingerprint": model_fingerprint(gar)}
    return export_graphs(
        out_dir,
        decoder=gar.mllm.model.language_model,
        lm_head=gar.mllm.lm_head,
        vision=GarVisionGraph(gar),
        tile_size=int(cfg.tile_size),
        prompt_channels=1,
        source=source,
        opset=opset or DEFAULT_OPSET,
    )


def default_onnx_dir(model: Any) -> Path:
    name = getattr(model, "name", "") or "gar"
    return cache_root() / "onnx" / f"{name}-{model_fingerprint(model)[:16]}"


@contextlib.contextmanager
def _export_lock(out: Path) -> Iterator[None]:
    """Exclusive lock on ``out`` so that two processes never export into one directory at once."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_export(model: Any, onnx_dir: Path | str | None = None) -> Path:
    """An export directory for ``model``: the given one (checked to come from this model) or the
    keyed cache directory, exporting first when it has no manifest (under a file lock)."""
    explicit = onnx_dir is not None
    out = Path(onnx_dir) if explicit else default_onnx_dir(model)
    if (out / MANIFEST_NAME).is_file():
        return _check_export(model, out, explicit)
    with _export_lock(out):
        if (out / MANIFEST_NAME).is_file():  # another process finished it while we waited
            return _check_export(model, out, explicit)
        log.info("exporting %s to ONNX in %s (once per model)", getattr(model, "name", "model"), out)
        export_model(model, out)
    return out


def _check_export(model: Any, out: Path, explicit: bool) -> Path:
    """``out`` when its export comes from ``model``; else an error (explicit directory) or a new
    export (keyed cache directory, which only a fingerprint collision could make stale)."""
    manifest = Manifest.load(out)
    want = model_fingerprint(model)
    have = manifest.source.get("fingerprint")
    if have == want:
        return out
    if explicit:
        raise BackendError(
            f"{out} holds an export of another model ({manifest.source.get('name')}, fingerprint "
            f"{str(have)[:12]} != {want[:12]}); export this model there with `gar-ros export-onnx`"
        )
    log.warning("ONNX export in %s does not match the model; exporting again", out)
    with _export_lock(out):
        export_model(model, out)
    return out


# ------------------------------------------------------------------ factory

def create_engines(model_or_dir: Any, backend: str = "torch", *, onnx_dir: Path | str | None = None,
                   engine_dir: Path | str | None = None, precision: str = "fp16", force_rebuild: bool = False,
                   allow_build: bool = True, providers: list[str] | None = None, threads: int = 0,
                   device: str | int | None = None) -> tuple[Any, Any]:
    """(VisionEngine, LanguageEngine) of ``backend`` for a GarModel or a checkpoint directory.

    ``onnx_dir``: an existing export (else the keyed cache, exported on first use).
    ``engine_dir``: TensorRT engine cache (default: ``<onnx_dir>/engines``); ``precision``
    fp32 | fp16 | bf16; ``force_rebuild`` rebuilds TensorRT engines; ``allow_build=False`` raises
    instead of building a missing engine. ``providers``/``threads``: onnxruntime session options.
    Each engine has a ``backend`` attribute naming what actually runs.
    """
    model = model_or_dir
    if isinstance(model_or_dir, (str, Path)):
        from gar_ros.model import GarModel  # loads the torch model: needed for torch and for export

        model = GarModel.from_pretrained(model_or_dir, dtype=torch.float32)
    actual = resolve_backend(backend)
    if actual == "torch":
        from gar_ros.model.engines import torch_engines

        vision, language = torch_engines(_torch_model(model))
        for e in (vision, language):
            e.backend = "torch"
        return vision, language
    out = ensure_export(model, onnx_dir)
    if actual == "onnxruntime":
        from gar_ros.runtime.ort_engines import OrtLanguageEngine, OrtVisionEngine

        return (OrtVisionEngine(out, providers, threads), OrtLanguageEngine(out, providers, threads))
    from gar_ros.runtime.trt_engines import TrtLanguageEngine, TrtVisionEngine, engine_paths

    dev = torch.device(device) if isinstance(device, str) else torch.device("cuda", device or 0)
    plans = engine_paths(out, Path(engine_dir) if engine_dir else out / "engines", precision=precision,
                         force_rebuild=force_rebuild, allow_build=allow_build, device=dev.index or 0)
    manifest = Manifest.load(out)
    return TrtVisionEngine(plans["vision"], manifest, dev), TrtLanguageEngine(plans, manifest, dev)
