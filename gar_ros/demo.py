"""The gar_ros demo: ``python -m gar_ros.demo [--model DIR]``.

Starts gar_node (in this process, namespace ``/gar_demo``) on the embedded tiny model (or
``--model``), publishes frames with regions from the synthetic scene generator and from the GAR
demo images (``<repo>/../shared/data/gar_demo`` or ``$GAR_ROS_DATA/gar_demo``), prints the
descriptions, asks one relational question through the ``~/ask`` service and one through the
``~/ask_stream`` action, and exits 0. Everything goes over real ROS 2 topics (localhost DDS).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gar_ros.types import Region

NS = "gar_demo"
STATUS = {0: "OK", 1: "NOT_FOUND", 2: "AMBIGUOUS", 3: "INVALID", 4: "BUSY", 5: "ERROR"}


def data_dir() -> Path:
    env = os.environ.get("GAR_ROS_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def demo_frames() -> list[tuple[str, np.ndarray, list[Region]]]:
    """(name, image (H, W, 3) uint8 RGB, regions) of the frames the demo publishes."""
    frames: list[tuple[str, np.ndarray, list[Region]]] = []
    try:
        from gar_ros.synthetic import generate_scene
    except ImportError:
        generate_scene = None
    if generate_scene is not None:
        for seed in (3, 7):
            scene = generate_scene(seed, n_objects=4)
            regions = scene.regions()
            for r in regions:
                r.id = f"s{seed}_{r.id}"  # track ids are unique across the demo's frames
            frames.append((f"synthetic scene {seed}", scene.image, regions))
    demo = data_dir() / "gar_demo"
    if (demo / "demo_image_3.png").is_file():
        import cv2

        def read(name: str) -> np.ndarray:
            return cv2.cvtColor(cv2.imread(str(demo / name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

        def mask(name: str) -> np.ndarray:
            return cv2.imread(str(demo / name), cv2.IMREAD_GRAYSCALE) > 0

        frames.append(("GAR demo 1", read("demo_image_1.png"), [Region("slipper", mask=mask("demo_mask_1.png"))]))
        frames.append(("GAR demo 3", read("demo_image_3.png"),
                       [Region(f"object{k}", mask=mask(f"demo_mask_3_{k}.png")) for k in range(3)]))
        frames.append(("GAR demo 2", read("demo_image_2.jpg"), [Region("dog", box=(800, 500, 1800, 1000))]))
    else:
        print(f"(GAR demo images not found under {demo}; set GAR_ROS_DATA to include them)")
    if not frames:
        raise SystemExit("no demo frames: neither gar_ros.synthetic nor the GAR demo images are available")
    return frames


def _default_model(tmp: Path) -> str:
    """The embedded tiny model, or a tiny random checkpoint when it is not installed yet."""
    from gar_ros.pipeline.models import embedded_model_path

    path = embedded_model_path()
    if path is not None:
        return str(path)
    from gar_ros.model.tiny import make_tiny

    print("(the embedded tiny model is not installed: using a tiny RANDOM checkpoint, so the texts "
          "below are noise)")
    return str(make_tiny(tmp / "tiny_random_gar", seed=0))


def _wait(cond: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def _relational_question(regions: list[Region]) -> str:
    """A question about the object left of (or right of) a labelled anchor in a synthetic scene."""
    def cx(r: Region) -> float:
        return (r.box[0] + r.box[2]) / 2 if r.box is not None else 0.0

    ordered = sorted(regions, key=cx)
    anchor = ordered[-1]
    if anchor.label:
        return f"what is the object left of the {anchor.label}?"
    return f"what is the object left of <region:{anchor.id}>?"


def run(model_path: str | None, max_new_tokens: int, timeout: float) -> int:
    from rclpy.action import ActionClient
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from gar_ros.action import Ask as AskAction
    from gar_ros.msg import RegionArray, RegionDescriptionArray
    from gar_ros.ros.local import frame_messages, local_node
    from gar_ros.ros.regions import ns_to_stamp
    from gar_ros.srv import Ask

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    frames = demo_frames()
    with tempfile.TemporaryDirectory(prefix="gar_demo_") as tmp:
        model = model_path or _default_model(Path(tmp))
        params = {"model_path": model, "max_new_tokens": max_new_tokens, "query_max_new_tokens": max_new_tokens,
                  "input_reliability": "reliable"}
        t0 = time.monotonic()
        with local_node("gar_node", params=params, namespace=NS, client_name="gar_demo_client") as ln:
            node, client = ln.node, ln.client
            if not ln.active:
                print("gar_node did not start (see the log above)", file=sys.stderr)
                return 1
            print(f"gar_node active on model {node.model_name!r} ({time.monotonic() - t0:.1f} s)")
            reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            got: list = []
            client.create_subscription(RegionDescriptionArray, f"/{NS}/gar_node/descriptions", got.append, reliable)
            pub_image = client.create_publisher(Image, f"/{NS}/image", reliable)
            pub_regions = client.create_publisher(RegionArray, f"/{NS}/regions", reliable)
            if not _wait(lambda: pub_image.get_subscription_count() > 0 and pub_regions.get_subscription_count() > 0
                         and node.pub_descriptions.get_subscription_count() > 0, timeout):
                print("topics did not connect", file=sys.stderr)
                return 1
            stamps = {}
            for k, (name, image, regions) in enumerate(frames):
                stamp = time.time_ns()
                stamps[name] = stamp
                image_msg, regions_msg = frame_messages(image, regions, stamp, "demo_camera")
                header = image_msg.header
                pub_image.publish(image_msg)
                pub_regions.publish(regions_msg)
                if not _wait(lambda: any(m.header.stamp == header.stamp for m in got), timeout):
                    print(f"no descriptions for {name}", file=sys.stderr)
                    return 1
                msg = next(m for m in got if m.header.stamp == header.stamp)
                print(f"\n[{name}] {image.shape[1]}x{image.shape[0]}, {len(regions)} regions, "
                      f"{msg.latency * 1e3:.0f} ms ({msg.inference_time * 1e3:.0f} ms in the model)")
                for d in msg.descriptions:
                    print(f"  region {d.id:<10} {d.label or '':<16} {d.text}")

            # one relational question through the service (about the first frame)
            ask = client.create_client(Ask, f"/{NS}/gar_node/ask")
            if not ask.wait_for_service(timeout_sec=timeout):
                print("service ~/ask not available", file=sys.stderr)
                return 1
            name, _, regions = frames[0]
            question = _relational_question(regions)
            fut = ask.call_async(Ask.Request(question=question, stamp=ns_to_stamp(stamps[name])))
            if not _wait(fut.done, timeout):
                print("no answer from ~/ask", file=sys.stderr)
                return 1
            r = fut.result()
            print(f"\n[service ~/ask on {name}] {question}\n  -> {STATUS.get(r.status, r.status)} "
                  f"regions {list(r.region_ids)}: {r.answer or r.message}")

            # one through the action, streaming the answer
            name, _, regions = frames[-2] if len(frames) > 2 else frames[-1]
            refs = [f"<region:{r.id}>" for r in regions[:3]]
            question = (f"What is the relationship between {', '.join(refs[:-1])} and {refs[-1]}?"
                        if len(refs) > 1 else f"Describe {refs[0]} in detail.")
            action = ActionClient(client, AskAction, f"/{NS}/gar_node/ask_stream")
            if not action.wait_for_server(timeout_sec=timeout):
                print("action ~/ask_stream not available", file=sys.stderr)
                return 1
            feedback: list[str] = []
            goal_fut = action.send_goal_async(
                AskAction.Goal(question=question, stamp=ns_to_stamp(stamps[name])),
                feedback_callback=lambda fb: feedback.append(fb.feedback.text))
            if not _wait(goal_fut.done, timeout) or not goal_fut.result().accepted:
                print("goal not accepted", file=sys.stderr)
                return 1
            res_fut = goal_fut.result().get_result_async()
            if not _wait(res_fut.done, timeout):
                print("no result from ~/ask_stream", file=sys.stderr)
                return 1
            res = res_fut.result().result
            print(f"\n[action ~/ask_stream on {name}] {question}\n  ({len(feedback)} feedback messages) -> "
                  f"{STATUS.get(res.status, res.status)} regions {list(res.region_ids)}: {res.answer or res.message}")
            action.destroy()
            return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gar_ros.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint directory (default: the embedded tiny model)")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each step")
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    except ImportError:
        pass
    return run(args.model, args.max_new_tokens, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
