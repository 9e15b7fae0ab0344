"""gar_ros.runtime: compiled inference behind the model core's engine protocols.

- :func:`create_engines` (factory.py): torch | onnxruntime | tensorrt engines, with fallback.
- export.py / lm_export.py / vision_export.py: ONNX export (vision, embed, prefill, decode).
- ort_engines.py: onnxruntime engines. trt_engines.py: TensorRT builder/runner (unexecuted
  here), trt_cache.py: engine cache keys, trt_compat.py: static TensorRT checks of a graph.
"""
from __future__ import annotations

from gar_ros.runtime.factory import BACKENDS, create_engines, export_model, resolve_backend

__all__ = ["BACKENDS", "create_engines", "export_model", "resolve_backend"]
