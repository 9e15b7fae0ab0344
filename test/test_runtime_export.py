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


def test_from_pretrained_backends_end_to_end(monkeypatch, caplog, capsys):
    """The model core's ``from_pretrained(backend=...)`` and ``gar-ros describe --backend`` run the
    onnxruntime engines (export taken from the keyed cache) and give the torch tokens; a requested
    tensorrt falls back with one warning."""
    import logging
    import sys

    from _runtime_helpers import random_image, rect_mask
    from gar_ros.model import GarModel
    from gar_ros.types import Region

    shutil.copytree(tiny_export(), factory.default_onnx_dir(tiny_model()), dirs_exist_ok=True)
    monkeypatch.setattr(factory, "export_model", lambda *a, **k: pytest.fail("exported again"))
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr(factory, "_warned", set())
    image = random_image()
    regions = [Region("a", mask=rect_mask(90, 140, 10, 50, 20, 80)), Region("b", box=(60.0, 30.0, 130.0, 85.0))]
    ref = [t.token_ids for t in tiny_model().describe(image, regions, max_new_tokens=8)]
    with caplog.at_level(logging.WARNING):
        for backend in ("onnxruntime", "tensorrt", "tensorrt"):
            model = GarModel.from_pretrained(tiny_checkpoint(), backend=backend)
            assert model.language.backend == model.vision.backend == "onnxruntime"
            assert [t.token_ids for t in model.describe(image, regions, max_new_tokens=8)] == ref
    assert len([r for r in caplog.records if "tensorrt" in r.getMessage()]) == 1

    from gar_ros.cli import main

    box = "20,10,80,50"
    args = ["describe", "--model", str(tiny_checkpoint()), "--image", "IMG", "--box", box, "--max-new-tokens", "6",
            "--json"]
    from PIL import Image

    img_path = factory.cache_root() / "img.png"
    Image.fromarray(image).save(img_path)
    args[4] = str(img_path)
    assert main(args) == 0
    torch_out = capsys.readouterr().out
    assert main(args + ["--backend", "onnxruntime"]) == 0
    assert capsys.readouterr().out == torch_out


def test_concurrent_first_use_exports_once(tmp_path, monkeypatch):
    import threading
    import time

    calls = []

    def fake_export(model, out):  # stands in for the slow export: copies the real one
        calls.append(out)
        time.sleep(0.3)
        shutil.copytree(tiny_export(), out, dirs_exist_ok=True)

    model, source = tiny_model(), tiny_export()  # made before the threads start
    del source
    monkeypatch.setattr(factory, "export_model", fake_export)
    target = tmp_path / "shared_export"
    results = []
    threads = [threading.Thread(target=lambda: results.append(factory.ensure_export(model, target)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [target] * 3 and len(calls) == 1
