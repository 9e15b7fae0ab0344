"""ROS helpers for the node tests: an in-process gar_node spun in a thread, a test client node,
waiting for messages, and synthetic frames/regions as messages (real rclpy, localhost DDS)."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy

from gar_ros.ros.images import array_to_imgmsg
from gar_ros.ros.regions import ns_to_stamp, region_to_msg

os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, period: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(period)
    return cond()


class Harness:
    """A node under test plus a client node, spun by one multi-threaded executor in a thread."""

    def __init__(self, context, node, client: Node) -> None:
        self.context = context
        self.node = node
        self.client = client
        self.received: dict[str, list] = {}

    def subscribe(self, msg_type, topic: str, qos=RELIABLE) -> list:
        box: list = []
        self.received[topic] = box
        self.client.create_subscription(msg_type, topic, box.append, qos)
        return box

    def publisher(self, msg_type, topic: str, qos=BEST_EFFORT):
        pub = self.client.create_publisher(msg_type, topic, qos)
        return pub

    def wait_matched(self, pub, n: int = 1, timeout: float = 10.0) -> None:
        assert wait_for(lambda: pub.get_subscription_count() >= n, timeout), f"no subscriber on {pub.topic_name}"


@contextmanager
def spin_node(model=None, params: dict | None = None, name: str = "gar_node", autostart: bool = True):
    """Yield a Harness with an in-process GarNode (``model`` injected) and a client node."""
    from gar_ros.ros.node import GarNode
    from gar_ros.ros.node import autostart as do_autostart

    context = rclpy.Context()
    rclpy.init(context=context)
    overrides = [Parameter(k, value=v) for k, v in (params or {}).items()]
    node = GarNode(name, model=model, context=context, parameter_overrides=overrides)
    client = Node("gar_test_client", context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(node)
    executor.add_node(client)
    if autostart:
        do_autostart(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield Harness(context, node, client)
    finally:
        node.close(timeout=1.0)
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        client.destroy_node()
        rclpy.try_shutdown(context=context)
        thread.join(2.0)


def header(stamp_ns: int, frame_id: str = "cam"):
    from std_msgs.msg import Header

    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


def image_msg(image: np.ndarray, stamp_ns: int, frame_id: str = "cam", encoding: str = "rgb8"):
    arr = image
    if encoding == "bgr8":
        arr = image[..., ::-1]
    return array_to_imgmsg(arr, encoding, header(stamp_ns, frame_id))


def regions_msg(regions, stamp_ns: int, frame_id: str = "cam"):
    from gar_ros.msg import RegionArray

    return RegionArray(header=header(stamp_ns, frame_id), regions=[region_to_msg(r) for r in regions])
