"""Parameters: descriptors, read-only and ranges, run-time updates, config/gar.yaml, the launch
file and ``gar-ros node`` arguments."""
from __future__ import annotations

import ast
import importlib.util
import threading

import pytest
import yaml

pytest.importorskip("rclpy")
import rclpy  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from gar_ros.ros.params import PARAMS, PIPELINE  # noqa: E402

from _node_helpers import spin_node  # noqa: E402
from _pipeline_helpers import REPO_ROOT, RecordingModel  # noqa: E402

pytestmark = pytest.mark.ros

CONFIG = REPO_ROOT / "config" / "gar.yaml"
LAUNCH = REPO_ROOT / "launch" / "gar.launch.py"


def test_yaml_lists_every_parameter_with_its_default():
    data = yaml.safe_load(CONFIG.read_text())
    values = data["/**"]["ros__parameters"]
    assert values == {p.name: p.default for p in PARAMS}


def test_pipeline_parameters_are_pipeline_config_fields():
    from dataclasses import fields

    from gar_ros.pipeline import PipelineConfig

    names = {f.name for f in fields(PipelineConfig)}
    assert set(PIPELINE) <= names


def test_descriptors_read_only_ranges_and_live_updates():
    with spin_node(RecordingModel(), name="gar_node_params") as h:
        node = h.node
        d = node.describe_parameter("max_regions_per_frame")
        assert d.description and d.integer_range[0].to_value == 64
        assert node.describe_parameter("model_path").read_only
        assert node.describe_parameter("sync_tolerance").floating_point_range[0].to_value == 1.0
        # read-only and out-of-range values are refused, the node keeps its settings
        res = node.set_parameters([Parameter("model_path", value="/elsewhere")])
        assert not res[0].successful
        res = node.set_parameters([Parameter("max_regions_per_frame", value=1000)])
        assert not res[0].successful
        assert node.pipeline.config.max_regions_per_frame == 8
        # pipeline parameters apply at run time
        res = node.set_parameters([Parameter("max_regions_per_frame", value=3),
                                   Parameter("redescribe_period", value=2.5),
                                   Parameter("sync_tolerance", value=0.01)])
        assert all(r.successful for r in res)
        cfg = node.pipeline.config
        assert (cfg.max_regions_per_frame, cfg.redescribe_period) == (3, 2.5)
        assert node.pipeline.policy.max_regions_per_frame == 3
        assert node.pipeline.store.tolerance_ns == 10_000_000


def test_node_reads_the_parameters_file(tmp_path):
    from gar_ros.ros.node import GarNode

    params = yaml.safe_load(CONFIG.read_text())
    params["/**"]["ros__parameters"]["redescribe_period"] = 4.0
    params["/**"]["ros__parameters"]["image_topic"] = "camera/image_raw"
    path = tmp_path / "gar.yaml"
    path.write_text(yaml.safe_dump(params))
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "--params-file", str(path)])
    try:
        node = GarNode(model=RecordingModel(), context=context)
        assert node.param("redescribe_period") == 4.0
        node.trigger_configure()
        assert node.pipeline.config.redescribe_period == 4.0
        topics = [s.topic_name for s in node.subscriptions]
        assert "/camera/image_raw" in topics and "/regions" in topics and "/gar_node/queries" in topics
        services = dict(node.get_service_names_and_types_by_node("gar_node", "/"))
        assert services["/gar_node/ask"] == ["gar_ros/srv/Ask"]
        assert "/gar_node/ask_stream/_action/send_goal" in services
        node.trigger_cleanup()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_launch_file_declares_the_issue_arguments():
    tree = ast.parse(LAUNCH.read_text())
    assigned = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ARGUMENTS")
    names = [elt.elts[0].value for elt in assigned.value.elts]
    source = LAUNCH.read_text()
    for extra in ("namespace", "params_file"):
        assert f'"{extra}"' in source
    assert set(names) == {"model_path", "backend", "device", "image_topic", "regions_topic", "use_compressed"}


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None,
                    reason="launch_ros is not installed (not pip-installable here); the launch file "
                           "is checked statically above")
def test_launch_file_loads_with_launch_ros():  # pragma: no cover - needs launch_ros
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument
    from launch_ros.actions import Node

    spec = importlib.util.spec_from_file_location("gar_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    desc = module.generate_launch_description()
    args = {a.name for a in desc.entities if isinstance(a, DeclareLaunchArgument)}
    assert {"model_path", "backend", "device", "image_topic", "regions_topic", "use_compressed",
            "namespace", "params_file"} <= args
    nodes = [e for e in desc.entities if isinstance(e, Node)]
    assert len(nodes) == 1
    LaunchContext()


def test_gar_ros_node_command_arguments():
    import argparse

    from gar_ros.ros.cli import node_argv, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["node", "--model", "/m", "--device", "cuda", "--", "--ros-args", "-r", "image:=/cam"])
    assert node_argv(args) == ["gar_node", "--ros-args", "-r", "image:=/cam", "-p", "model_path:=/m",
                               "-p", "device:=cuda"]
    args = parser.parse_args(["node"])
    assert node_argv(args) == ["gar_node"]
    args = parser.parse_args(["node", "--params-file", "p.yaml"])
    assert node_argv(args) == ["gar_node", "--ros-args", "--params-file", "p.yaml"]


def test_executor_shutdown_is_quick_with_worker_blocked():
    """close() returns within its timeout while the model is stuck in a call."""
    import time

    gate = threading.Event()
    model = RecordingModel(gate=gate)
    context = rclpy.Context()
    rclpy.init(context=context)
    from gar_ros.ros.node import GarNode, autostart

    node = GarNode("gar_node_close", model=model, context=context)
    ex = MultiThreadedExecutor(context=context)
    ex.add_node(node)
    assert autostart(node)
    from gar_ros.pipeline import Frame, RegionSet
    from gar_ros.types import Region

    from _pipeline_helpers import make_image

    node.pipeline.add_frame(Frame(make_image(), 1))
    node.pipeline.add_regions(RegionSet(1, [Region("a", box=(0, 0, 5, 5))]))
    assert model.started.wait(5)
    t0 = time.monotonic()
    stopped = node.close(timeout=0.5)
    assert not stopped and time.monotonic() - t0 < 1.5
    gate.set()
    ex.shutdown(timeout_sec=1)
    node.destroy_node()
    rclpy.try_shutdown(context=context)


def test_input_qos_default_best_effort_and_override():
    from rclpy.qos import ReliabilityPolicy

    with spin_node(RecordingModel(), name="gar_node_qos") as h:
        subs = {s.topic_name: s for s in h.node.subscriptions}
        assert subs["/image"].qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        assert subs["/regions"].qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        assert subs["/image"].qos_profile.depth == 5
        assert h.node.pub_descriptions.qos_profile.reliability == ReliabilityPolicy.RELIABLE
    with spin_node(RecordingModel(), name="gar_node_qos2",
                   params={"input_reliability": "reliable", "input_depth": 2}) as h:
        subs = {s.topic_name: s for s in h.node.subscriptions}
        assert subs["/image"].qos_profile.reliability == ReliabilityPolicy.RELIABLE
        assert subs["/image"].qos_profile.depth == 2
    with spin_node(RecordingModel(), name="gar_node_qos3", params={"input_reliability": "sometimes"}) as h:
        assert h.node.pipeline is None  # configure refused the value


def test_detections_input_skipped_with_reason_without_vision_msgs():
    if importlib.util.find_spec("vision_msgs") is not None:  # pragma: no cover
        pytest.skip("vision_msgs is installed: the detections input is used")
    with spin_node(RecordingModel(), name="gar_node_det", params={"use_detections": True}) as h:
        assert h.node.active
        assert "/detections" not in {s.topic_name for s in h.node.subscriptions}


def test_warnings_throttled_per_kind():
    from gar_ros.ros.node import _Throttle

    class Log:
        def __init__(self):
            self.lines = []

        def warning(self, text):
            self.lines.append(text)

    log = Log()
    t = _Throttle(log, period=60.0)
    for k in range(50):
        t.warn("bad_images", f"image {k}: corrupt")
        t.warn("regions_rejected", f"region {k}: empty mask")
    assert log.lines == ["bad_images: image 0: corrupt", "regions_rejected: region 0: empty mask"]
    t.period = 0.0
    t.warn("bad_images", "image 50: corrupt")
    assert log.lines[-1] == "bad_images: image 50: corrupt (49 more since last report)"
