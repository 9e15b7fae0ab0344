"""``bag-eval --live``: publish a bag to a running gar_node at its recorded rate and record outputs.

The deployed node (its QoS, threading, drops) is what gets measured. Messages are re-serialized
(CDR) and published raw with rclpy onto the node's input topics:
- frames -> ``image_topic`` (default ``/image``; ``/image/compressed`` for CompressedImage
  sources: start the node with ``use_compressed:=true``),
- regions -> ``regions_topic`` (default ``/regions``),
- queries -> ``<node>/queries``;
and ``<node>/descriptions`` and ``<node>/answers`` are recorded. Description latency is the
node's own (``latency``/``inference_time`` fields); answer latency is from publishing the query
to receiving its answer. The node's counters (frames dropped, stale, bad inputs, ...) come from its
``/diagnostics`` before and after the run. Messages the bag cannot decode are reported, not published.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gar_ros.errors import GarError
from gar_ros.evaluation import typestore as ts
from gar_ros.evaluation.bagio import BagReader
from gar_ros.evaluation.replay import (
    MessageError,
    OutputRecord,
    ReplayOptions,
    ReplayResult,
    _progress,
)
from gar_ros.ros.regions import stamp_to_ns
from gar_ros.types import AnswerStatus


def _rclpy_types() -> dict[str, Any]:
    try:
        from sensor_msgs.msg import CompressedImage, Image

        from gar_ros.msg import Answer, Query, RegionArray, RegionDescriptionArray
    except ImportError as err:
        raise GarError(f"--live needs rclpy and the built gar_ros interfaces (source scripts/env.sh): {err}") from err
    return {ts.IMAGE: Image, ts.COMPRESSED_IMAGE: CompressedImage, ts.REGION_ARRAY: RegionArray,
            ts.QUERY: Query, ts.ANSWER: Answer, ts.DESCRIPTIONS: RegionDescriptionArray}


def run_live(
    bag_path: str | Path,
    options: ReplayOptions,
    *,
    node: str = "/gar_node",
    wait: float = 10.0,
    extra_gt: list[dict[str, Any]] | None = None,
    image_topic: str | None = None,
    regions_topic: str = "/regions",
    discovery_timeout: float = 10.0,
) -> ReplayResult:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    types = _rclpy_types()
    node = "/" + node.strip("/")
    own_context = not rclpy.ok()
    if own_context:
        rclpy.init()
    player = rclpy.create_node("gar_bag_eval_player")
    executor = SingleThreadedExecutor()
    executor.add_node(player)
    spin = threading.Thread(target=executor.spin, daemon=True)
    lock = threading.Lock()
    t_start = time.perf_counter()
    try:
        with BagReader(bag_path) as bag:
            choice = bag.choose_topics(options.image_topic, options.regions_topic, options.queries_topic,
                                       options.gt_topic)
            result = ReplayResult(str(bag_path), choice, model=f"{node} (live)", backend="live",
                                  options=dict(asdict(options), live=True, node=node))
            result.bag_duration = bag.duration * 1e-9
            if extra_gt:
                result.ground_truth.extend(extra_gt)
            img_type = bag.topics[choice.image].normalized if choice.image else ts.IMAGE
            out_image = image_topic or ("/image/compressed" if img_type == ts.COMPRESSED_IMAGE else "/image")
            reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            pubs = {
                "image": player.create_publisher(types[img_type], out_image, reliable),
                "regions": player.create_publisher(types[ts.REGION_ARRAY], regions_topic, reliable),
                "queries": player.create_publisher(types[ts.QUERY], f"{node}/queries", reliable),
            }
            sent_queries: dict[str, float] = {}
            query_log_times: dict[str, int] = {}
            last_output = [time.perf_counter()]

            def on_desc(msg: Any) -> None:
                stamp = stamp_to_ns(msg.header.stamp)
                with lock:
                    for d in msg.descriptions:
                        result.outputs.append(OutputRecord(
                            "description", stamp, msg.header.frame_id, d.id, d.text, latency=float(msg.latency),
                            inference=float(msg.inference_time), log_time=stamp, label=d.label,
                            box=[float(d.box.x_offset), float(d.box.y_offset), float(d.box.x_offset + d.box.width),
                                 float(d.box.y_offset + d.box.height)],
                        ))
                    result.batches.append({"stamp": stamp, "frame_id": msg.header.frame_id,
                                           "descriptions": len(msg.descriptions), "latency": float(msg.latency),
                                           "inference": float(msg.inference_time)})
                    result.add_time("frame_latency", float(msg.latency))
                    if msg.descriptions:
                        result.add_time("describe", float(msg.inference_time))
                    last_output[0] = time.perf_counter()

            def on_answer(msg: Any) -> None:
                now = time.perf_counter()
                stamp = stamp_to_ns(msg.header.stamp)
                with lock:
                    sent = sent_queries.pop(msg.query_id, None)
                    logged = query_log_times.get(msg.query_id, 0)
                    lat = now - sent if sent is not None else 0.0
                    try:
                        status = AnswerStatus(int(msg.status)).name
                    except ValueError:
                        status = str(int(msg.status))
                    result.outputs.append(OutputRecord(
                        "answer", stamp, msg.header.frame_id, msg.query_id, msg.answer, status=status,
                        region_ids=list(msg.region_ids), question=msg.question, message=msg.message,
                        latency=lat, log_time=stamp or logged,
                    ))
                    result.add_time("query_latency", lat)
                    last_output[0] = now

            diag: dict[str, Any] = {"first": None, "last": None, "count": 0}

            def on_diag(msg: Any) -> None:
                for st in msg.status:
                    if st.name.split(":")[0].strip() == node:
                        values = {kv.key: kv.value for kv in st.values}
                        with lock:
                            if diag["first"] is None:
                                diag["first"] = values
                            diag["last"] = values
                            diag["count"] += 1

            from diagnostic_msgs.msg import DiagnosticArray

            player.create_subscription(DiagnosticArray, "/diagnostics", on_diag, reliable)
            player.create_subscription(types[ts.DESCRIPTIONS], f"{node}/descriptions", on_desc, reliable)
            player.create_subscription(types[ts.ANSWER], f"{node}/answers", on_answer, reliable)
            spin.start()
            _wait_for_subscribers(pubs, discovery_timeout, node)

            _wait(lambda: diag["first"] is not None, 2.5)  # the node's counters before the run
            total = sum(bag.topics[t].count for t in choice.topics())
            bar = _progress(total, options.progress)
            t0_wall: float | None = None
            t0_log = 0
            for bm in bag.messages(choice.topics()):
                result.messages_read += 1
                if bar is not None:
                    bar.update(1)
                if bm.error:
                    result.errors.append(MessageError(bm.topic, bm.index, bm.timestamp, "decode", bm.error))
                    continue
                if t0_wall is None:
                    t0_wall, t0_log = time.perf_counter(), bm.timestamp
                delay = t0_wall + (bm.timestamp - t0_log) * 1e-9 / max(options.speed, 1e-6) - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                if bm.topic == choice.ground_truth:
                    try:
                        result.ground_truth.append(json.loads(str(bm.msg.data)))
                    except ValueError as err:
                        result.errors.append(MessageError(bm.topic, bm.index, bm.timestamp, "input", str(err)))
                    continue
                kind = {choice.image: "image", choice.regions: "regions", choice.queries: "queries"}[bm.topic]
                raw = bag.store.serialize_cdr(bm.msg, bm.msgtype)
                if kind == "queries":
                    with lock:
                        sent_queries[str(bm.msg.query_id)] = time.perf_counter()
                        query_log_times[str(bm.msg.query_id)] = bm.timestamp
                if kind == "image":
                    result.frames += 1
                pubs[kind].publish(bytes(raw))
            if bar is not None:
                bar.close()
            end = time.perf_counter() + wait
            while time.perf_counter() < end:
                with lock:
                    idle = not sent_queries and time.perf_counter() - last_output[0] > min(2.0, wait)
                if idle:
                    break
                time.sleep(0.05)
            seen = diag["count"]
            _wait(lambda: diag["count"] > seen, 2.5)  # and after it
            with lock:
                result.counters = _counter_delta(diag["first"], diag["last"])
                if diag["last"]:
                    result.model = f"{diag['last'].get('model', '')} via {node} (live)"
                    result.backend = str(diag["last"].get("backend", "live"))
                for qid in sorted(sent_queries):
                    result.errors.append(MessageError(choice.queries or "", -1, 0, "live",
                                                      f"no answer to query {qid!r} within {wait} s"))
    finally:
        executor.shutdown(timeout_sec=1.0)
        player.destroy_node()
        if own_context:
            rclpy.try_shutdown()
    result.outputs.sort(key=lambda r: (r.stamp, r.kind != "description", r.id))
    result.wall_time = time.perf_counter() - t_start
    return result


def _wait(cond: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not cond():
        time.sleep(0.05)
    return bool(cond())


def _counter_delta(first: dict[str, str] | None, last: dict[str, str] | None) -> dict[str, int]:
    """The node's integer counters (from /diagnostics) accumulated during the run."""
    if not last:
        return {}
    out = {}
    for key, value in last.items():
        if key.startswith("queue_") or "_ms_" in key or not value.isdigit():
            continue
        before = (first or {}).get(key, "0")
        out[key] = int(value) - (int(before) if before.isdigit() else 0)
    return out


def _wait_for_subscribers(pubs: dict[str, Any], timeout: float, node: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(p.get_subscription_count() > 0 for p in pubs.values()):
            return
        time.sleep(0.05)
    missing = [p.topic_name for p in pubs.values() if p.get_subscription_count() == 0]
    raise GarError(f"--live: no subscriber on {', '.join(missing)} after {timeout} s; is {node} running "
                   "(and its image_topic/regions_topic set to these topics)?")
