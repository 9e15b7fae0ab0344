"""Replaying a bag through the ROS-free pipeline (``gar_ros.pipeline.Pipeline``).

Deterministic mode (default): the pipeline runs synchronously, every frame with regions is
processed, in the bag's log-time order; outputs only depend on the bag and the model.
``realtime``: the pipeline's worker thread runs as on a robot while messages are fed at their
recorded rate (``speed`` x), so slow inference drops frames (counted) exactly like the node.

Frames and region sets join by header stamp; a zero header stamp (unstamped drivers) is replaced
by the message's log time. Every message that cannot be used (undecodable data, bad image, unusable region, malformed
ground truth) becomes one :class:`MessageError` and the run goes on.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gar_ros.errors import GarError, InputError
from gar_ros.evaluation.bagio import BagMessage, BagReader, TopicChoice
from gar_ros.ros.images import msg_to_rgb
from gar_ros.ros.regions import region_from_msg, stamp_to_ns
from gar_ros.types import AnswerStatus

log = logging.getLogger(__name__)

DESCRIBE_MODES = ("all", "policy", "none")


@dataclass
class ReplayOptions:
    """How to replay. ``describe``: ``all`` regions of every frame (up to ``max_regions_per_frame``),
    ``policy`` (the node's describe policy: new tracks, then every ``redescribe_period``), ``none``."""

    image_topic: str | None = None
    regions_topic: str | None = None
    queries_topic: str | None = None
    gt_topic: str | None = None
    describe: str = "all"
    realtime: bool = False
    speed: float = 1.0
    max_new_tokens: int = 0
    query_max_new_tokens: int = 0
    max_regions_per_frame: int = 0
    progress: bool | None = None  # None: when stderr is a terminal
    pipeline_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class MessageError:
    """One message that could not be used."""

    topic: str
    index: int
    log_time: int
    kind: str
    message: str


@dataclass
class OutputRecord:
    """One output of the run: a region description or an answer.

    ``stamp``/``frame_id``: the source frame's (0/"" when an answer found no frame). ``log_time``:
    where the output goes in the output bag (the frame's stamp, else the query's log time). ``latency``: seconds from receipt of the frame
    (descriptions) or of the query (answers) to the output; ``inference``: seconds in the model.
    """

    kind: str  # "description" | "answer"
    stamp: int
    frame_id: str
    id: str  # region id or query id
    text: str
    status: str = "OK"
    region_ids: list[str] = field(default_factory=list)
    question: str = ""
    message: str = ""
    latency: float = 0.0
    inference: float = 0.0
    log_time: int = 0
    label: str = ""
    box: list[float] | None = None

    def key(self) -> tuple[Any, ...]:
        """Everything except timings (what determinism compares)."""
        return (self.kind, self.stamp, self.frame_id, self.id, self.text, self.status,
                tuple(self.region_ids), self.question, self.message)


@dataclass
class ReplayResult:
    bag: str
    topics: TopicChoice
    outputs: list[OutputRecord] = field(default_factory=list)
    #: one entry per processed frame: stamp, frame_id, descriptions, latency, inference (s)
    batches: list[dict[str, Any]] = field(default_factory=list)
    errors: list[MessageError] = field(default_factory=list)
    ground_truth: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    stage_times: dict[str, list[float]] = field(default_factory=dict)
    pipeline_problems: list[str] = field(default_factory=list)
    messages_read: int = 0
    frames: int = 0
    wall_time: float = 0.0
    bag_duration: float = 0.0
    model: str = ""
    backend: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def add_time(self, stage: str, seconds: float) -> None:
        self.stage_times.setdefault(stage, []).append(float(seconds))


def _progress(total: int, enabled: bool | None) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional; no bar then
        return None
    return tqdm(total=total, unit="msg", desc="bag-eval", disable=None if enabled is None else not enabled,
                leave=False)


class Replayer:
    """Feeds one bag into a pipeline and collects outputs, errors and timings."""

    def __init__(self, model: Any, options: ReplayOptions | None = None, *, backend: str = "torch") -> None:
        self.model = model
        self.options = options or ReplayOptions()
        self.backend = backend
        if self.options.describe not in DESCRIBE_MODES:
            raise InputError(f"describe must be one of {', '.join(DESCRIBE_MODES)}")

    # ------------------------------------------------------------------ pipeline
    def _pipeline(self, result: ReplayResult, on_desc: Callable[..., None], on_answer: Callable[..., None]) -> Any:
        from gar_ros.pipeline import Pipeline, PipelineConfig

        o = self.options
        cfg = PipelineConfig()
        values: dict[str, Any] = {}
        if o.max_new_tokens:
            values["max_new_tokens"] = o.max_new_tokens
        if o.query_max_new_tokens:
            values["query_max_new_tokens"] = o.query_max_new_tokens
        if o.max_regions_per_frame:
            values["max_regions_per_frame"] = o.max_regions_per_frame
        if not o.realtime:
            values["describe_chunk"] = 64  # one model call per frame (chunks only serve query priority)
        if o.describe == "all":
            values["redescribe_period"] = 1e-9  # every region of every frame is due
        elif o.describe == "none":
            values["max_regions_per_frame"] = 0
        values.update(o.pipeline_overrides)
        cfg.update(**values)
        return Pipeline(self.model, cfg, on_descriptions=on_desc, on_answer=on_answer,
                        synchronous=not o.realtime)

    # ------------------------------------------------------------------ run
    def run(self, bag_path: str | Path, extra_gt: list[dict[str, Any]] | None = None) -> ReplayResult:
        o = self.options
        t_start = time.perf_counter()
        with BagReader(bag_path) as bag:
            choice = bag.choose_topics(o.image_topic, o.regions_topic, o.queries_topic, o.gt_topic)
            result = ReplayResult(str(bag_path), choice, model=str(getattr(self.model, "name", "")),
                                  backend=str(getattr(self.model, "backend", "") or self.backend), options=asdict(o))
            result.bag_duration = bag.duration * 1e-9
            if choice.image is None:
                choice.notes.append("no image topic (sensor_msgs/Image or CompressedImage) in the bag")
            if choice.regions is None:
                choice.notes.append("no gar_ros/RegionArray topic in the bag: nothing to describe")
            for info in bag.topics.values():
                if info.topic in choice.topics() and info.normalized != info.msgtype:
                    choice.notes.append(f"{info.topic}: type {info.msgtype!r} read as {info.normalized!r}")
                if info.error:
                    used = "its messages are reported as errors" if info.topic in choice.topics() else "not read"
                    choice.notes.append(f"{info.topic} ({info.count} messages): {info.error}; {used}")
            if extra_gt:
                result.ground_truth.extend(extra_gt)
            total = sum(bag.topics[t].count for t in choice.topics())
            bar = _progress(total, o.progress)

            def on_desc(batch: Any) -> None:
                for d in batch.descriptions:
                    box = d.region.box
                    result.outputs.append(OutputRecord(
                        "description", batch.stamp, batch.frame_id, d.region.id, d.text.text,
                        latency=batch.latency, inference=batch.inference_time, log_time=batch.stamp,
                        label=d.region.label, box=[float(v) for v in box] if box is not None else None,
                    ))
                result.batches.append({"stamp": batch.stamp, "frame_id": batch.frame_id,
                                       "descriptions": len(batch.descriptions), "latency": batch.latency,
                                       "inference": batch.inference_time})
                if batch.descriptions:
                    result.add_time("describe", batch.inference_time)
                result.add_time("frame_latency", batch.latency)

            def on_answer(res: Any) -> None:
                a = res.answer
                result.outputs.append(OutputRecord(
                    "answer", res.frame_stamp, res.frame_id, res.query_id, a.text,
                    status=AnswerStatus(a.status).name, region_ids=list(a.region_ids),
                    question=res.question, message=a.message, latency=res.latency,
                    inference=float(res.timings.get("inference", 0.0)),
                    log_time=res.frame_stamp or self._query_log_times.get(res.query_id, 0),
                ))
                if "inference" in res.timings:
                    result.add_time("query", res.timings["inference"])
                result.add_time("query_latency", res.latency)

            self._query_log_times: dict[str, int] = {}
            pipeline = self._pipeline(result, on_desc, on_answer)
            tickets: list[Any] = []
            if o.realtime:
                pipeline.start()
            t0_wall: float | None = None
            t0_log = 0
            try:
                for bm in bag.messages(choice.topics()):
                    result.messages_read += 1
                    if bar is not None:
                        bar.update(1)
                    if o.realtime:
                        if t0_wall is None:
                            t0_wall, t0_log = time.perf_counter(), bm.timestamp
                        due = t0_wall + (bm.timestamp - t0_log) * 1e-9 / max(o.speed, 1e-6)
                        delay = due - time.perf_counter()
                        if delay > 0:
                            time.sleep(delay)
                    self._feed(bm, choice, pipeline, result, tickets)
                if o.realtime:
                    for t in tickets:
                        t.result(timeout=600.0)
                    self._wait_idle(pipeline)
            finally:
                if o.realtime:
                    pipeline.stop()
                if bar is not None:
                    bar.close()
            snap = pipeline.snapshot()
            result.counters = dict(snap.counters)
            pending = int(pipeline.queue_depths().get("pending_region_sets", 0))
            if pending:
                result.counters["region_sets_without_frame"] = pending
            result.pipeline_problems = list(snap.problems)
        result.outputs.sort(key=lambda r: (r.stamp, r.kind != "description", r.id))
        result.wall_time = time.perf_counter() - t_start
        return result

    @staticmethod
    def _wait_idle(pipeline: Any, timeout: float = 600.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            depths = pipeline.queue_depths()
            if not pipeline.busy and depths.get("queries", 0) == 0 and depths.get("frames", 0) == 0:
                return
            time.sleep(0.01)

    def _timed_join(self, result: ReplayResult, call: Callable[[], None]) -> None:
        """Run an ``add_*`` call; record its time without the model time it triggered as ``join``."""
        before = sum(result.stage_times.get("describe", []))
        t0 = time.perf_counter()
        call()
        elapsed = time.perf_counter() - t0
        if not self.options.realtime:
            result.add_time("join", max(0.0, elapsed - (sum(result.stage_times.get("describe", [])) - before)))

    # ------------------------------------------------------------------ one message
    def _feed(self, bm: BagMessage, choice: TopicChoice, pipeline: Any, result: ReplayResult,
              tickets: list[Any]) -> None:
        from gar_ros.pipeline import Frame, QueryRequest, RegionSet

        def error(kind: str, text: str) -> None:
            result.errors.append(MessageError(bm.topic, bm.index, bm.timestamp, kind, text))
            log.debug("%s #%d: %s", bm.topic, bm.index, text)

        if bm.error:
            error("decode", bm.error)
            return
        msg = bm.msg
        try:
            if bm.topic == choice.image:
                t0 = time.perf_counter()
                image = msg_to_rgb(msg)
                result.add_time("decode", time.perf_counter() - t0)
                result.frames += 1
                stamp = stamp_to_ns(msg.header.stamp) or bm.timestamp  # unstamped: the log time
                self._timed_join(result, lambda: pipeline.add_frame(Frame(
                    image=image, stamp=stamp, frame_id=str(msg.header.frame_id))))
            elif bm.topic == choice.regions:
                regions = []
                for k, rmsg in enumerate(msg.regions):
                    try:
                        regions.append(region_from_msg(rmsg))
                    except GarError as err:
                        error("region", f"region #{k}: {err}")
                stamp = stamp_to_ns(msg.header.stamp) or bm.timestamp
                self._timed_join(result, lambda: pipeline.add_regions(RegionSet(
                    stamp=stamp, regions=regions, frame_id=str(msg.header.frame_id))))
            elif bm.topic == choice.queries:
                req = QueryRequest(question=str(msg.question), region_ids=[str(x) for x in msg.region_ids],
                                   stamp=stamp_to_ns(msg.stamp), query_id=str(msg.query_id))
                self._query_log_times[req.query_id] = bm.timestamp
                tickets.append(pipeline.submit_query(req))
            elif bm.topic == choice.ground_truth:
                record = json.loads(str(msg.data))
                if not isinstance(record, dict):
                    raise InputError("ground truth must be a JSON object")
                result.ground_truth.append(record)
        except GarError as err:
            error("input", str(err))
        except (ValueError, TypeError, AttributeError) as err:  # malformed message contents
            error("input", f"{type(err).__name__}: {err}")


def iter_ground_truth_file(path: str | Path) -> Iterator[dict[str, Any]]:
    """Ground-truth records from ``--gt FILE``: our records, or GAR-Bench-VQA annotations."""
    from gar_ros.evaluation.scoring import load_json_list

    for pos, item in enumerate(load_json_list(path, "ground truth")):
        if "query_id" in item:
            yield item
        elif "answer" in item:  # GAR-Bench-VQA annotation item
            index = item.get("index_in_full_benchmark", pos)
            yield {"query_id": f"vqa_{index}", "kind": "multiple_choice", "answer": item["answer"],
                   "type": item.get("type", ""), "choices": item.get("choices", []),
                   "index_in_full_benchmark": index}
        else:
            raise InputError(f"ground-truth item {pos} has neither 'query_id' nor 'answer'")
