"""ROS overhead of gar_node per frame, and end-to-end latency on the tiny model.

    python benchmarks/bench_ros_overhead.py [--model DIR] [--iterations N] [--sizes 640x480,1920x1080]

Per frame size, median (and p95) milliseconds of:
- convert: sensor_msgs/Image rgb8 / bgr8 → RGB array; JPEG CompressedImage decode;
- regions: RegionArray (8 regions with box-sized masks) → RegionSet, then placing masks in the frame;
- sync: joining the frame and its regions in the pipeline's store;
- publish: building + publishing RegionDescriptionArray; debug image (annotate + publish);
- transport: an rgb8 Image published to a subscriber in the same process (Fast DDS, localhost);
and end to end through a running gar_node (publish frame + regions → descriptions received), with
the model's share and the rest (ROS + pipeline overhead). Uses one CPU thread for torch.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))


def _stats(samples: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1e3 for s in samples)
    return statistics.median(ms), ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]


def _time(fn: Callable[[], object], n: int) -> tuple[float, float]:
    fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return _stats(samples)


def _scene(width: int, height: int, n_regions: int = 8):
    from gar_ros.types import Region

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    regions = []
    for k in range(n_regions):
        w, h = width // 6, height // 6
        x, y = (k % 4) * (width // 4), (k // 4) * (height // 2)
        mask = np.zeros((height, width), bool)
        mask[y : y + h, x : x + w] = True
        regions.append(Region(f"r{k}", box=(x, y, x + w, y + h), mask=mask, label="thing"))
    return image, regions


def bench_overhead(width: int, height: int, n: int, rows: list[tuple[str, str, float, float]]) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from gar_ros.msg import RegionDescriptionArray
    from gar_ros.pipeline import Description, DescriptionBatch, Frame, FrameStore
    from gar_ros.pipeline.regions import resolve_regions
    from gar_ros.ros.debug_image import annotate
    from gar_ros.ros.images import compressed_to_rgb, imgmsg_to_rgb, rgb_to_compressed, rgb_to_imgmsg
    from gar_ros.ros.regions import descriptions_to_msg, regionarray_to_msg, regionset_from_msg
    from gar_ros.types import RegionText

    size = f"{width}x{height}"
    image, regions = _scene(width, height)
    header = Header(frame_id="cam")
    rgb_msg = rgb_to_imgmsg(image, header)
    bgr_msg = rgb_to_imgmsg(image, header, encoding="bgr8")
    jpeg_msg = rgb_to_compressed(image, header, "jpeg")
    regions_msg = regionarray_to_msg(regions, header)
    rows.append((size, "convert rgb8", *_time(lambda: imgmsg_to_rgb(rgb_msg), n)))
    rows.append((size, "convert bgr8", *_time(lambda: imgmsg_to_rgb(bgr_msg), n)))
    rows.append((size, "decode jpeg", *_time(lambda: compressed_to_rgb(jpeg_msg), n)))
    rows.append((size, "regions msg→set (8)", *_time(lambda: regionset_from_msg(regions_msg), n)))
    rs = regionset_from_msg(regions_msg)
    rows.append((size, "regions place masks (8)", *_time(lambda: resolve_regions(rs.regions, width, height), n)))

    def sync() -> None:
        store = FrameStore()
        store.add_frame(Frame(image, 1, "cam"))
        store.add_regions(rs)

    rs.stamp = 1
    rows.append((size, "sync (join + validate)", *_time(sync, n)))

    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    node = Node("bench_ros_overhead", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        pub_desc = node.create_publisher(RegionDescriptionArray, "/bench/descriptions", qos)
        pub_img = node.create_publisher(Image, "/bench/debug_image", qos)
        got_desc: list = []
        node.create_subscription(RegionDescriptionArray, "/bench/descriptions", got_desc.append, qos)
        placed, _ = resolve_regions(rs.regions, width, height)
        batch = DescriptionBatch(1, "cam", [Description(r, RegionText(r.id, "a small red square with a handle"))
                                            for r in placed], image=image, regions=placed)
        rows.append((size, "publish descriptions", *_time(
            lambda: pub_desc.publish(descriptions_to_msg(batch, header, "tiny", "torch")), n)))
        texts = {r.id: "a small red square" for r in placed}
        rows.append((size, "debug image (annotate+publish)", *_time(
            lambda: pub_img.publish(rgb_to_imgmsg(annotate(image, placed, texts), header)), max(3, n // 2))))

        # transport: publish an rgb8 Image, wait for it in a subscriber of this process
        arrived = threading.Event()
        node.create_subscription(Image, "/bench/image", lambda m: arrived.set(), qos)
        pub = node.create_publisher(Image, "/bench/image", qos)
        end = time.monotonic() + 10
        while pub.get_subscription_count() == 0 and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        samples = []
        for _ in range(n + 1):
            arrived.clear()
            t0 = time.perf_counter()
            pub.publish(rgb_msg)
            while not arrived.is_set() and time.perf_counter() - t0 < 5:
                executor.spin_once(timeout_sec=0.01)
            samples.append(time.perf_counter() - t0)
        rows.append((size, "transport rgb8 Image (DDS)", *_stats(samples[1:])))
    finally:
        executor.shutdown(timeout_sec=1)
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def bench_end_to_end(model_path: str, width: int, height: int, n: int, max_new_tokens: int,
                     rows: list[tuple[str, str, float, float]]) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from gar_ros.msg import RegionArray, RegionDescriptionArray
    from gar_ros.ros.local import frame_messages, local_node

    image, regions = _scene(width, height, n_regions=2)
    params = {"model_path": model_path, "max_new_tokens": max_new_tokens, "redescribe_period": 0.001,
              "input_reliability": "reliable", "max_frame_age": 0.0}
    with local_node("gar_node_bench", params=params, client_name="bench_client", close_timeout=2.0) as ln:
        node, client = ln.node, ln.client
        if not ln.active:
            raise SystemExit("gar_node did not start")
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        got: list = []
        done = threading.Event()

        def on_desc(msg) -> None:
            got.append((time.perf_counter(), msg))
            done.set()

        client.create_subscription(RegionDescriptionArray, "/gar_node_bench/descriptions", on_desc, qos)
        pub = client.create_publisher(Image, "/image", qos)
        pub_r = client.create_publisher(RegionArray, "/regions", qos)
        end = time.monotonic() + 20
        while time.monotonic() < end and not (pub.get_subscription_count() and pub_r.get_subscription_count()
                                               and node.pub_descriptions.get_subscription_count()):
            time.sleep(0.05)
        e2e, model, rest = [], [], []
        for k in range(n + 1):
            stamp = (k + 1) * 1_000_000_000
            done.clear()
            t0 = time.perf_counter()
            image_msg, regions_msg = frame_messages(image, regions, stamp, "cam")
            pub.publish(image_msg)
            pub_r.publish(regions_msg)
            if not done.wait(120):
                raise SystemExit("no descriptions arrived")
            t1, msg = got[-1]
            if k == 0:
                continue  # warm-up
            e2e.append(t1 - t0)
            model.append(msg.inference_time)
            rest.append(t1 - t0 - msg.inference_time)
        size = f"{width}x{height}"
        rows.append((size, f"end to end (2 regions, {max_new_tokens} tokens)", *_stats(e2e)))
        rows.append((size, "  of which model", *_stats(model)))
        rows.append((size, "  of which ROS + pipeline", *_stats(rest)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint (default: embedded tiny model, else a random tiny one)")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--e2e-iterations", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--sizes", default="640x480,1920x1080")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    rows: list[tuple[str, str, float, float]] = []
    for width, height in sizes:
        bench_overhead(width, height, args.iterations, rows)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        note = ""
        if model is None:
            from gar_ros.pipeline.models import embedded_model_path

            path = embedded_model_path()
            if path is None:
                from gar_ros.model.tiny import make_tiny

                path = make_tiny(Path(tmp) / "tiny_random_gar", seed=0)
                note = " (tiny RANDOM checkpoint: the embedded model is not installed)"
            model = str(path)
        for width, height in sizes:
            bench_end_to_end(model, width, height, args.e2e_iterations, args.max_new_tokens, rows)
    print(f"\ngar_node ROS overhead per frame, ms (median / p95), model {Path(model).name}{note}")
    print(f"{'frame':<11} {'stage':<38} {'median':>8} {'p95':>8}")
    for size, stage, med, p95 in rows:
        print(f"{size:<11} {stage:<38} {med:8.2f} {p95:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
