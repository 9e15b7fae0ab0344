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


class FakeTrt:
    """A stand-in for the ``tensorrt`` module's builder surface, recording what build_plan asks for.

    It checks our builder code's flow (parse errors, precision flags, one profile per input,
    timing cache round trip), not TensorRT itself, which cannot run here."""

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    class BuilderFlag:
        FP16, BF16, PREFER_PRECISION_CONSTRAINTS = "FP16", "BF16", "PREFER"

    class MemoryPoolType:
        WORKSPACE = "WORKSPACE"

    class LayerType:
        REDUCE, SOFTMAX, NORMALIZATION, ELEMENTWISE, MATRIX_MULTIPLY = range(5)

    class ElementWiseOperation:
        POW, SUM = range(2)

    class IProgressMonitor:
        def __init__(self):
            pass

    float32 = "float32"

    def __init__(self, parse_ok=True):
        self.parse_ok = parse_ok
        self.log = {"flags": [], "profiles": [], "layers_fp32": 0}
        fake = self

        class Layer:
            def __init__(self, type_, op=None):
                self.type, self.op, self.num_outputs, self.precision = type_, op, 1, None

            def set_output_type(self, i, t):
                fake.log["layers_fp32"] += 1

        class Network:
            num_layers = 3

            def get_layer(self, i):
                return [Layer(fake.LayerType.SOFTMAX), Layer(fake.LayerType.ELEMENTWISE, fake.ElementWiseOperation.POW),
                        Layer(fake.LayerType.MATRIX_MULTIPLY)][i]

        class Parser:
            num_errors = 1

            def __init__(self, network, logger):
                pass

            def parse_from_file(self, path):
                fake.log["parsed"] = path
                return fake.parse_ok

            def get_error(self, i):
                return "Unsupported operator Foo"

        class Profile:
            def __init__(self):
                self.shapes = {}

            def set_shape(self, name, lo, opt, hi):
                self.shapes[name] = (lo, opt, hi)

        class Cache:
            def __init__(self, data):
                self.data = data

            def serialize(self):
                return self.data + b"+tuned"

        class Config:
            progress_monitor = None

            def set_memory_pool_limit(self, pool, size):
                fake.log["workspace"] = size

            def set_flag(self, flag):
                fake.log["flags"].append(flag)

            def add_optimization_profile(self, profile):
                fake.log["profiles"].append(profile.shapes)

            def create_timing_cache(self, data):
                return Cache(data)

            def set_timing_cache(self, cache, ignore_mismatch):
                self.cache = cache

            def get_timing_cache(self):
                return self.cache

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                return Network()

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                fake.log["monitor"] = config.progress_monitor
                return b"serialized-engine"

        self.Builder, self.OnnxParser = Builder, Parser
        self.IElementWiseLayer = Layer  # the builder re-classes element-wise layers to read .op


def test_build_plan_flow_with_a_fake_tensorrt(tmp_path, monkeypatch):
    from gar_ros.runtime.trt_engines import build_plan

    fake = FakeTrt()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    profiles = default_profiles(_manifest())["decode"]
    timing = tmp_path / "timing.cache"
    timing.write_bytes(b"old")
    plan = build_plan(tmp_path / "decode.onnx", profiles, "fp16", timing_cache=timing)
    assert plan == b"serialized-engine"
    assert fake.log["parsed"] == str(tmp_path / "decode.onnx")
    assert fake.log["flags"] == ["FP16", "PREFER"] and fake.log["layers_fp32"] == 2  # softmax + pow kept fp32
    assert fake.log["profiles"] == profiles and fake.log["monitor"] is not None
    assert timing.read_bytes() == b"old+tuned"
    fake_bad = FakeTrt(parse_ok=False)
    monkeypatch.setitem(sys.modules, "tensorrt", fake_bad)
    with pytest.raises(BackendError, match="Unsupported operator Foo"):
        build_plan(tmp_path / "decode.onnx", profiles, "bf16")
