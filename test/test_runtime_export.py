"""ONNX export of the tiny GAR: layout, shared weights, opset, TensorRT checks, export reuse."""
from __future__ import annotations

import shutil

import onnx
import pytest

from _runtime_helpers import tiny_checkpoint, tiny_export, tiny_model
from gar_ros.errors import BackendError
from gar_ros.runtime import factory
from gar_ros.runtime.onnx_io import Manifest
from gar_ros.runtime.trt_compat import check_graph, check_profiles
from gar_ros.runtime.trt_engines import default_profiles


def test_layout_opset_and_shared_weights():
    out = tiny_export()
    manifest = Manifest.load(out)
    assert set(manifest.graphs) == {"vision", "embed", "prefill", "decode"}
    assert manifest.source["fingerprint"] == factory.model_fingerprint(tiny_model())
    for spec in manifest.graphs.values():
        model = onnx.load(str(out / spec.file), load_external_data=False)
        assert model.opset_import[0].version >= 17
        assert [i.name for i in model.graph.input] == spec.inputs
        assert [o.name for o in model.graph.output] == spec.outputs
        onnx.checker.check_model(str(out / spec.file))
        external = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
        assert external <= {"weights.bin"}
    params = sum(p.numel() * 4 for p in tiny_model().torch_model.parameters())
    # embed + prefill + decode hold the decoder weights three times: stored once (+ the tied head,
    # which the graphs keep transposed)
    embed_bytes = tiny_model().torch_model.embed_layer.weight.numel() * 4
    assert (out / "weights.bin").stat().st_size <= params + embed_bytes + 2_000_000
    lang = manifest.config["language"]
    assert lang["num_layers"] == 2 and lang["num_kv_heads"] == 2
    assert manifest.config["vision"]["tokens_per_tile"] == 4


def test_graphs_pass_tensorrt_checks():
    out = tiny_export()
    manifest = Manifest.load(out)
    profiles = default_profiles(manifest)
    for name, spec in manifest.graphs.items():
        report = check_graph(out / spec.file)
        assert report.ok, (name, report.problems)
        assert check_profiles(report, profiles[name]) == [], name
        assert report.dynamic_inputs  # tiles / batch / sequence are dynamic
    vision = check_graph(out / "vision.onnx")
    assert vision.dynamic_inputs["pixel_values"][0] == "tiles"
    decode = check_graph(out / "decode.onnx")
    assert decode.dynamic_inputs["past.0.key"][2] == "past"


def test_export_reuse_and_mismatch(tmp_path, monkeypatch):
    model = tiny_model()
    # the keyed cache directory holding this model's export is used as is (no new export)
    target = factory.default_onnx_dir(model)
    shutil.copytree(tiny_export(), target, dirs_exist_ok=True)
    monkeypatch.setattr(factory, "export_model", lambda *a, **k: pytest.fail("exported again"))
    assert factory.ensure_export(model) == target
    vision, language = factory.create_engines(model, "onnxruntime", threads=1)
    assert vision.backend == language.backend == "onnxruntime"
    # an explicit directory exported from other weights is refused, with both names
    from gar_ros.model import GarModel

    other = GarModel.from_pretrained(tiny_checkpoint(seed=1))
    with pytest.raises(BackendError, match="another model"):
        factory.ensure_export(other, tiny_export())


def test_create_engines_torch_and_fallback(monkeypatch):
    import sys

    model = tiny_model()
    vision, language = factory.create_engines(model, "torch")
    assert vision.backend == "torch" and hasattr(language, "prefill")
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr(factory, "_warned", set())
    vision, language = factory.create_engines(model, "tensorrt", onnx_dir=tiny_export(), threads=1)
    assert vision.backend == "onnxruntime"
