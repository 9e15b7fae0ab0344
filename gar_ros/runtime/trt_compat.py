"""Static TensorRT-compatibility check of an ONNX graph (no TensorRT needed).

What TensorRT's ONNX parser (onnx-tensorrt, TensorRT 10) documents and this checks:
- opset of the default domain within 9..20;
- no operator of its "not supported" list, no operator from another domain;
- the inputs that must be constants are constants (``axes`` of Slice/Squeeze/Unsqueeze/
  ReduceMean/Pad..., ``axis`` of CumSum, ``K`` of TopK), TopK sorted and K < 3840, ScatterND
  without reduction, Resize with supported modes;
- no tensor of a type TensorRT lacks (string, double is only cast down, unsigned > 8 bit,
  int16, complex);
- dynamic input dimensions, which every optimisation profile must cover.

The result lists problems (the parser would reject the graph) and notes (it would accept it
with a cost, e.g. double cast down). A clean check does not prove that a build succeeds.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPSET_RANGE = (9, 20)

#: Operators onnx-tensorrt lists as not supported (docs/operators.md for TensorRT 10.0).
UNSUPPORTED_OPS = frozenset({
    "AffineGrid", "Bernoulli", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor",
    "BlackmanWindow", "Col2Im", "CenterCropPad", "Compress", "ConcatFromSequence", "ConvInteger", "DFT",
    "Det", "DynamicQuantizeLinear", "HammingWindow", "HannWindow", "ImageDecoder", "MatMulInteger",
    "MaxRoiPool", "MaxUnpool", "MelWeightMatrix", "Multinomial", "NegativeLogLikelihoodLoss", "Optional",
    "OptionalGetElement", "OptionalHasElement", "QLinearConv", "QLinearMatMul", "RegexFullMatch", "STFT",
    "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength",
    "SequenceMap", "SoftmaxCrossEntropyLoss", "SplitToSequence", "StringConcat", "StringNormalizer",
    "StringSplit", "TfIdfVectorizer", "Unique",
})

#: (operator, input index) that must be an initializer or a Constant output.
CONSTANT_INPUTS = {
    "Slice": (3,), "Squeeze": (1,), "Unsqueeze": (1,), "ReduceMean": (1,), "ReduceSum": (1,),
    "ReduceMax": (1,), "ReduceMin": (1,), "ReduceProd": (1,), "ReduceL2": (1,), "Pad": (3,), "CumSum": (1,),
    "TopK": (1,),
}

_RESIZE_COORD = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
_RESIZE_MODE = {"nearest", "linear", "cubic"}

# onnx.TensorProto data types
_BAD_TYPES = {8: "string", 4: "uint16", 12: "uint32", 13: "uint64", 5: "int16", 14: "complex64", 15: "complex128"}
_NOTE_TYPES = {11: "double (cast down to float by TensorRT)"}


@dataclass
class CompatReport:
    """Outcome of :func:`check_graph`."""

    path: str
    opset: int
    ops: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dynamic_inputs: dict[str, list[str | int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "opset": self.opset, "ok": self.ok, "ops": dict(sorted(self.ops.items())),
                "problems": self.problems, "notes": self.notes, "dynamic_inputs": self.dynamic_inputs}


def _dims(value_info: Any) -> list[str | int]:
    return [d.dim_param if d.dim_param else d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def check_graph(path: Path | str) -> CompatReport:
    """Check one ONNX file (external data is not loaded)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    report = CompatReport(path=str(path), opset=opset)
    if not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        report.problems.append(f"opset {opset} outside TensorRT's {OPSET_RANGE[0]}..{OPSET_RANGE[1]}")
    if len(model.functions):
        report.notes.append(f"{len(model.functions)} model-local function(s); inline them for older parsers")
    graph = model.graph
    constants = {t.name for t in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    local_funcs = {(f.domain, f.name) for f in model.functions}
    for node in graph.node:
        report.ops[node.op_type] += 1
        where = f"{node.op_type} node {node.name or node.output[0]}"
        if node.domain not in ("", "ai.onnx") and (node.domain, node.op_type) not in local_funcs:
            report.problems.append(f"{where}: operator of domain {node.domain!r} (TensorRT needs a plugin)")
            continue
        if node.op_type in UNSUPPORTED_OPS:
            report.problems.append(f"{where}: not supported by TensorRT's ONNX parser")
        for idx in CONSTANT_INPUTS.get(node.op_type, ()):
            if idx < len(node.input) and node.input[idx] and node.input[idx] not in constants:
                report.problems.append(f"{where}: input {idx} ({node.input[idx]}) must be a constant")
        if node.op_type == "TopK" and not _attr(node, "sorted", 1):
            report.problems.append(f"{where}: sorted=0 is not supported")
        if node.op_type == "ScatterND" and _attr(node, "reduction", b"none") not in (b"none", "none"):
            report.problems.append(f"{where}: reduction is not supported")
        if node.op_type == "Resize":
            coord = _attr(node, "coordinate_transformation_mode", b"half_pixel")
            mode = _attr(node, "mode", b"nearest")
            coord = coord.decode() if isinstance(coord, bytes) else coord
            mode = mode.decode() if isinstance(mode, bytes) else mode
            if coord not in _RESIZE_COORD or mode not in _RESIZE_MODE:
                report.problems.append(f"{where}: Resize mode {mode}/{coord} not supported")
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as err:  # shape inference is best effort
        report.notes.append(f"shape inference failed: {err}")
        inferred = model
    typed = list(inferred.graph.input) + list(inferred.graph.output) + list(inferred.graph.value_info)
    seen: set[str] = set()
    for vi in typed:
        elem = vi.type.tensor_type.elem_type
        if elem in _BAD_TYPES and vi.name not in seen:
            report.problems.append(f"tensor {vi.name}: type {_BAD_TYPES[elem]} is not supported")
            seen.add(vi.name)
        elif elem in _NOTE_TYPES and vi.name not in seen:
            report.notes.append(f"tensor {vi.name}: {_NOTE_TYPES[elem]}")
            seen.add(vi.name)
    for t in graph.initializer:
        if t.data_type in _BAD_TYPES:
            report.problems.append(f"initializer {t.name}: type {_BAD_TYPES[t.data_type]} is not supported")
    for vi in graph.input:
        dims = _dims(vi)
        if any(isinstance(d, str) or d == 0 for d in dims):
            report.dynamic_inputs[vi.name] = dims
    return report


def check_profiles(report: CompatReport, profiles: list[dict[str, tuple[tuple[int, ...], ...]]]) -> list[str]:
    """Problems with optimisation profiles for a graph: every dynamic input needs (min, opt, max) of
    its rank, fixed dims must match, min <= opt <= max, and a symbolic dim shared by several inputs
    must get the same ranges everywhere."""
    problems: list[str] = []
    for k, profile in enumerate(profiles):
        ranges: dict[str, tuple[int, int, int]] = {}
        for name, dims in report.dynamic_inputs.items():
            if name not in profile:
                problems.append(f"profile {k}: no shapes for dynamic input {name}")
                continue
            lo, opt, hi = profile[name]
            if not len(lo) == len(opt) == len(hi) == len(dims):
                problems.append(f"profile {k}: {name} has rank {len(dims)}, shapes {profile[name]}")
                continue
            for i, d in enumerate(dims):
                if not lo[i] <= opt[i] <= hi[i]:
                    problems.append(f"profile {k}: {name} dim {i}: not min <= opt <= max")
                if isinstance(d, int) and d > 0 and not lo[i] == opt[i] == hi[i] == d:
                    problems.append(f"profile {k}: {name} dim {i} is fixed at {d}")
                if isinstance(d, str):
                    r = (lo[i], opt[i], hi[i])
                    if ranges.setdefault(d, r) != r:
                        problems.append(f"profile {k}: dim {d!r} of {name} has {r}, elsewhere {ranges[d]}")
    return problems
