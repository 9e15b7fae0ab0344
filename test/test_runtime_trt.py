"""TensorRT path without TensorRT: engine-cache keys, build decisions, fallback, static checks."""
from __future__ import annotations

import logging
import sys

import onnx
import pytest
from onnx import TensorProto, helper

from gar_ros.errors import BackendError
from gar_ros.runtime import factory
from gar_ros.runtime.onnx_io import GraphSpec, Manifest
from gar_ros.runtime.trt_cache import EngineCache, EngineKey, resolve_engine
from gar_ros.runtime.trt_compat import check_graph, check_profiles
from gar_ros.runtime.trt_engines import ProfileLimits, default_profiles, trt_status

PROFILE = {"x": ((1, 3), (2, 3), (8, 3)), "m": ((1, 1), (2, 1), (8, 1))}


def key(**changes):
    fields = dict(graph="prefill", model_hash="abc", trt_version="10.9.0", gpu_name="NVIDIA H200 sm90",
                  precision="fp16", profiles=[PROFILE])
    fields.update(changes)
    return EngineKey.create(**fields)


def test_key_digest_depends_on_every_field():
    base = key()
    assert base.digest == key().digest
    # the order of inputs within a profile does not matter
    assert base.digest == key(profiles=[dict(reversed(list(PROFILE.items())))]).digest
    others = [key(model_hash="abd"), key(trt_version="10.10.0"), key(gpu_name="NVIDIA L4 sm89"),
              key(precision="bf16"), key(profiles=[{**PROFILE, "x": ((1, 3), (2, 3), (16, 3))}]), key(graph="decode")]
    digests = {k.digest for k in others}
    assert len(digests) == len(others) and base.digest not in digests
    assert base.stem.startswith("prefill-")
    with pytest.raises(BackendError, match="precision"):
        key(precision="int3")


class Builds:
    def __init__(self):
        self.count = 0

    def __call__(self) -> bytes:
        self.count += 1
        return b"plan-%d" % self.count


def test_resolve_builds_once_then_hits(tmp_path, caplog):
    cache, build = EngineCache(tmp_path), Builds()
    with caplog.at_level(logging.WARNING):
        plan = resolve_engine(cache, key(), build)
    assert build.count == 1 and plan.read_bytes() == b"plan-1"
    assert any("no engine" in r.message for r in caplog.records)  # a build is never silent
    caplog.clear()
    assert resolve_engine(cache, key(), build) == plan
    assert build.count == 1 and not caplog.records
    with caplog.at_level(logging.WARNING):
        resolve_engine(cache, key(), build, force_rebuild=True)
    assert build.count == 2 and any("rebuild forced" in r.message for r in caplog.records)
    assert plan.read_bytes() == b"plan-2"


def test_stale_engine_is_named_and_not_used(tmp_path, caplog):
    cache, build = EngineCache(tmp_path), Builds()
    old = resolve_engine(cache, key(trt_version="10.8.0"), build)
    with pytest.raises(BackendError, match="trt_version"):
        resolve_engine(cache, key(), build, allow_build=False)
    assert build.count == 1
    with caplog.at_level(logging.WARNING):
        new = resolve_engine(cache, key(), build)
    assert new != old and build.count == 2
    assert any("trt_version" in r.message for r in caplog.records)
    assert cache.prune_stale(key()) == [old] and not old.exists() and new.exists()


def test_corrupt_plan_is_rebuilt(tmp_path, caplog):
    cache, build = EngineCache(tmp_path), Builds()
    plan = resolve_engine(cache, key(), build)
    plan.write_bytes(b"garbage")
    assert cache.lookup(key())[0] is None and "corrupt" in cache.lookup(key())[1]
    with caplog.at_level(logging.WARNING):
        resolve_engine(cache, key(), build)
    assert build.count == 2 and any("corrupt" in r.message for r in caplog.records)
    plan.with_suffix(".json").write_text("{")
    assert cache.lookup(key())[0] is None


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    monkeypatch.setattr(factory, "_warned", set())


def test_tensorrt_falls_back_with_one_warning(no_tensorrt, caplog):
    ok, reason = trt_status()
    assert not ok and "TensorRT" in reason
    with caplog.at_level(logging.WARNING):
        assert factory.resolve_backend("tensorrt") == "onnxruntime"
        assert factory.resolve_backend("tensorrt") == "onnxruntime"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "onnxruntime" in warnings[0].message and "tensorrt" in warnings[0].message


def test_fallback_to_torch_without_onnxruntime(no_tensorrt, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with caplog.at_level(logging.WARNING):
        assert factory.resolve_backend("tensorrt") == "torch"
        assert factory.resolve_backend("onnxruntime") == "torch"
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    assert factory.resolve_backend("torch") == "torch"
    with pytest.raises(BackendError, match="unknown backend"):
        factory.resolve_backend("tvm")


def _manifest() -> Manifest:
    past = [f"past.{i}.{kv}" for i in range(2) for kv in ("key", "value")]
    names = ["input_ids", "attention_mask", "position_ids", *past]
    graphs = {"embed": GraphSpec("embed.onnx", ["input_ids"], ["inputs_embeds"]),
              "prefill": GraphSpec("prefill.onnx", ["inputs_embeds", "attention_mask", "position_ids"], ["logits"]),
              "decode": GraphSpec("decode.onnx", names, ["logits"]),
              "vision": GraphSpec("vision.onnx", ["pixel_values", "prompt_maps"], ["image_tokens"])}
    config = {"language": {"num_layers": 2, "num_kv_heads": 2, "head_dim": 8, "hidden_size": 32, "vocab_size": 50},
              "vision": {"tile_size": 56, "prompt_channels": 1, "tokens_per_tile": 4, "hidden_size": 32}}
    return Manifest(graphs=graphs, config=config, source={}, model_hash="h")


def test_default_profiles_shapes():
    limits = ProfileLimits(max_tiles=9, max_batch=4, max_prompt=512, max_new_tokens=64)
    profiles = default_profiles(_manifest(), limits)
    assert set(profiles) == {"vision", "embed", "prefill", "decode"}
    lo, opt, hi = profiles["vision"][0]["pixel_values"]
    assert lo == (1, 3, 56, 56) and hi == (9, 3, 56, 56)
    lo, opt, hi = profiles["decode"][0]["past.1.value"]
    assert lo == (1, 2, 1, 8) and hi == (4, 2, 512 + 64, 8)
    mask = profiles["decode"][0]["attention_mask"]
    # the mask covers past + new tokens at every point of the profile
    assert all(m[1] == p[2] + i[1] for m, p, i in zip(mask, profiles["decode"][0]["past.0.key"],
                                                      profiles["decode"][0]["input_ids"]))


def _graph(nodes, inputs, initializers=(), opset=18):
    g = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_compat_flags_unsupported_graphs(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    axes = helper.make_tensor_value_info("axes", TensorProto.INT64, [1])
    starts = helper.make_tensor("starts", TensorProto.INT64, [1], [0])
    ends = helper.make_tensor("ends", TensorProto.INT64, [1], [2])
    nodes = [helper.make_node("Unique", ["x"], ["u"]),
             helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["s"]),
             helper.make_node("Cast", ["s"], ["d"], to=TensorProto.DOUBLE),
             helper.make_node("Relu", ["x"], ["y"])]
    path = tmp_path / "bad.onnx"
    onnx.save(_graph(nodes, [x, axes], [starts, ends]), str(path))
    report = check_graph(path)
    assert not report.ok
    text = " | ".join(report.problems)
    assert "Unique" in text and "must be a constant" in text
    assert any("double" in n for n in report.notes)
    assert report.dynamic_inputs["x"] == ["n", 4]
    # a clean graph passes; a profile with a wrong fixed dim or missing input does not
    good = tmp_path / "good.onnx"
    onnx.save(_graph([helper.make_node("Relu", ["x"], ["y"])], [x]), str(good))
    clean = check_graph(good)
    assert clean.ok and clean.ops["Relu"] == 1
    assert check_profiles(clean, [{"x": ((1, 4), (2, 4), (8, 4))}]) == []
    assert check_profiles(clean, [{"x": ((1, 5), (2, 5), (8, 5))}])
    assert check_profiles(clean, [{}])
    old = tmp_path / "old.onnx"
    onnx.save(_graph([helper.make_node("Relu", ["x"], ["y"])], [x], opset=21), str(old))
    assert any("opset" in p for p in check_graph(old).problems)
