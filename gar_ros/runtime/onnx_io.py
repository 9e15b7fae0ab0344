"""ONNX file handling: graphs that share one external-data file, and the export manifest.

An export directory holds::

    manifest.json        what was exported (graphs, input/output names, dims, hashes)
    vision.onnx          tiles + prompt map -> projected tokens
    prefill.onnx         inputs_embeds + mask + positions -> last logits + KV
    decode.onnx          token ids + mask + positions + past KV -> last logits + KV
    weights.bin          the tensors of all graphs, each distinct tensor stored once

The prefill and decode graphs hold the same decoder weights; :func:`repack_shared` stores each
distinct tensor (by content) once, so the directory is as large as the model, not twice.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gar_ros.errors import BackendError

MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "weights.bin"
#: Tensors at least this large (bytes) go to the shared data file; smaller ones stay inline.
EXTERNAL_MIN_BYTES = 1024
_ALIGN = 4096
FORMAT_VERSION = 1


def _external_info(tensor: Any) -> dict[str, str]:
    return {e.key: e.value for e in tensor.external_data}


def _tensor_bytes(tensor: Any, base_dir: Path, mmaps: dict[str, np.memmap]) -> memoryview | bytes:
    """Raw little-endian bytes of one initializer, inline or external (memory-mapped, no copy)."""
    import onnx

    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        info = _external_info(tensor)
        location = info["location"]
        if location not in mmaps:
            mmaps[location] = np.memmap(base_dir / location, dtype=np.uint8, mode="r")
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else mmaps[location].size - offset
        return memoryview(mmaps[location][offset : offset + length])
    if tensor.raw_data:
        return tensor.raw_data
    return onnx.numpy_helper.to_array(tensor).tobytes()


def repack_shared(sources: dict[str, Path], out_dir: Path, data_name: str = WEIGHTS_NAME) -> None:
    """Write each source graph to ``out_dir/<name>.onnx`` with all its large tensors in one file.

    ``sources`` maps the output graph name to an exported ``.onnx`` file (its external data next
    to it). Tensors with identical bytes, dtype and shape are stored once (offsets 4 KiB aligned)
    and referenced by every graph that uses them. Memory use stays at one tensor at a time.
    """
    import onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    data_path = out_dir / data_name
    seen: dict[tuple[str, int, tuple[int, ...]], tuple[int, int]] = {}
    with open(data_path, "wb") as data:
        for name, src in sources.items():
            model = onnx.load(str(src), load_external_data=False)
            mmaps: dict[str, np.memmap] = {}
            tensors = list(model.graph.initializer)
            for tensor in tensors:
                raw = _tensor_bytes(tensor, src.parent, mmaps)
                if len(raw) < EXTERNAL_MIN_BYTES:
                    if tensor.data_location == onnx.TensorProto.EXTERNAL:
                        tensor.raw_data = bytes(raw)
                        del tensor.external_data[:]
                        tensor.data_location = onnx.TensorProto.DEFAULT
                    continue
                digest = hashlib.sha256(raw).hexdigest()
                key = (digest, int(tensor.data_type), tuple(int(d) for d in tensor.dims))
                if key not in seen:
                    offset = data.tell()
                    pad = (-offset) % _ALIGN
                    if pad:
                        data.write(b"\0" * pad)
                        offset += pad
                    data.write(raw)
                    seen[key] = (offset, len(raw))
                offset, length = seen[key]
                tensor.ClearField("raw_data")
                for field in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
                    tensor.ClearField(field)
                del tensor.external_data[:]
                for k, v in (("location", data_name), ("offset", str(offset)), ("length", str(length))):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = k, v
                tensor.data_location = onnx.TensorProto.EXTERNAL
            mmaps.clear()
            onnx.save(model, str(out_dir / f"{name}.onnx"))


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def directory_hash(paths: Iterable[Path]) -> str:
    """One SHA-256 over the names and contents of ``paths`` (sorted by name)."""
    h = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        h.update(path.name.encode())
        h.update(file_sha256(path).encode())
    return h.hexdigest()


@dataclass
class GraphSpec:
    """One exported graph: file name, ordered input/output names, and symbolic dims."""

    file: str
    inputs: list[str]
    outputs: list[str]


@dataclass
class Manifest:
    """What an export directory holds; written as ``manifest.json``.

    ``model_hash`` identifies the exported graphs and weights (SHA-256 over the files), so that
    compiled engines built from them can be keyed and invalidated. ``source`` describes the
    checkpoint the graphs came from (name + fingerprint).
    """

    graphs: dict[str, GraphSpec]
    config: dict[str, Any]
    source: dict[str, Any]
    model_hash: str = ""
    opset: int = 18
    dtype: str = "float32"
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "model_hash": self.model_hash,
            "opset": self.opset,
            "dtype": self.dtype,
            "source": self.source,
            "config": self.config,
            "graphs": {k: vars(v) for k, v in self.graphs.items()},
        }

    def save(self, out_dir: Path) -> None:
        tmp = out_dir / (MANIFEST_NAME + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True))
        os.replace(tmp, out_dir / MANIFEST_NAME)

    @classmethod
    def load(cls, out_dir: Path | str) -> Manifest:
        path = Path(out_dir) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise BackendError(f"{out_dir} is not an ONNX export of gar_ros (no {MANIFEST_NAME})") from err
        except (OSError, json.JSONDecodeError) as err:
            raise BackendError(f"cannot read {path}: {err}") from err
        if data.get("format_version") != FORMAT_VERSION:
            raise BackendError(
                f"{path}: export format {data.get('format_version')} is not {FORMAT_VERSION}; export again"
            )
        graphs = {k: GraphSpec(**v) for k, v in data["graphs"].items()}
        for spec in graphs.values():
            if not (Path(out_dir) / spec.file).is_file():
                raise BackendError(f"{out_dir}: graph file {spec.file} is missing; export again")
        return cls(
            graphs=graphs,
            config=data["config"],
            source=data["source"],
            model_hash=data["model_hash"],
            opset=data["opset"],
            dtype=data["dtype"],
        )
