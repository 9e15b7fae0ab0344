"""A gar_node and a client node in this process, spun by one multi-threaded executor on a thread.

Used by the demo, the ROS overhead benchmark and the node tests: publish frames and regions from
``client`` (:func:`frame_messages`), read the node's outputs there, and tear everything down on exit.
Needs rclpy (imported when called).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from gar_ros.errors import GarError
from gar_ros.types import Region


@dataclass
class LocalNode:
    """The running pair: ``node`` (a GarNode) and ``client`` share ``context`` and ``executor``."""

    context: Any
    node: Any
    client: Any
    executor: Any
    active: bool


@contextmanager
def local_node(
    name: str = "gar_node",
    *,
    model: Any = None,
    params: Mapping[str, Any] | None = None,
    namespace: str = "",
    client_name: str = "gar_client",
    autostart: bool = True,
    require_active: bool = False,
    close_timeout: float = 1.0,
) -> Iterator[LocalNode]:
    """Yield a :class:`LocalNode`; ``model`` (a loaded GarModel) is used instead of ``model_path``.

    ``autostart``: configure and activate before spinning (``active`` says whether it worked;
    ``require_active`` raises GarError when it did not).
    """
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from gar_ros.ros.node import GarNode
    from gar_ros.ros.node import autostart as do_autostart

    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    overrides = [Parameter(k, value=v) for k, v in (params or {}).items()]
    node = GarNode(name, namespace=namespace, model=model, context=context, parameter_overrides=overrides)
    client = Node(client_name, namespace=namespace, context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(node)
    executor.add_node(client)
    thread = threading.Thread(target=executor.spin, daemon=True)
    try:
        active = do_autostart(node) if autostart else False
        if require_active and not active:
            raise GarError(f"{name} did not become active (see the log above)")
        thread.start()
        yield LocalNode(context, node, client, executor, active)
    finally:
        node.close(timeout=close_timeout)
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        client.destroy_node()
        rclpy.try_shutdown(context=context)
        if thread.is_alive():
            thread.join(2.0)


def header_msg(stamp_ns: int, frame_id: str = "cam") -> Any:
    """std_msgs/Header at ``stamp_ns`` (int nanoseconds)."""
    from std_msgs.msg import Header

    from gar_ros.ros.regions import ns_to_stamp

    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


def frame_messages(image: np.ndarray, regions: Sequence[Region], stamp_ns: int, frame_id: str = "cam",
                   encoding: str = "rgb8") -> tuple[Any, Any]:
    """(sensor_msgs/Image of ``encoding`` rgb8 or bgr8, gar_ros/RegionArray), both stamped ``stamp_ns``.

    ``image``: (H, W, 3) uint8 RGB.
    """
    from gar_ros.ros.images import rgb_to_imgmsg
    from gar_ros.ros.regions import regionarray_to_msg

    header = header_msg(stamp_ns, frame_id)
    return rgb_to_imgmsg(image, header, encoding=encoding), regionarray_to_msg(list(regions), header)
