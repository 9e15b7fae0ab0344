"""ROS helpers for the node tests: an in-process gar_node spun in a thread, a test client node,
waiting for messages, and synthetic frames/regions as messages (real rclpy, localhost DDS)."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from gar_ros.ros.images import array_to_imgmsg
from gar_ros.ros.local import header_msg, local_node
from gar_ros.ros.regions import regionarray_to_msg

os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
#: for tests that count every message: deep histories so a loaded machine overwrites none.
DEEP_RELIABLE = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
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
    with local_node(name, model=model, params=params, client_name="gar_test_client", autostart=autostart) as ln:
        yield Harness(ln.context, ln.node, ln.client)


header = header_msg


def image_msg(image: np.ndarray, stamp_ns: int, frame_id: str = "cam", encoding: str = "rgb8"):
    arr = image
    if encoding == "bgr8":
        arr = image[..., ::-1]
    return array_to_imgmsg(arr, encoding, header(stamp_ns, frame_id))


def regions_msg(regions, stamp_ns: int, frame_id: str = "cam"):
    return regionarray_to_msg(list(regions), header(stamp_ns, frame_id))
