"""``gar_node``: the rclpy lifecycle node around :class:`gar_ros.pipeline.Pipeline`.

Lifecycle: configure loads the model and creates the interfaces, activate starts the worker,
deactivate stops it (inputs ignored, queries answered ERROR), cleanup frees the model; ``autostart``
does configure + activate at start.

Topics (relative names resolve in the node's namespace; ``~`` = the node's name):
- in: ``image`` (sensor_msgs/Image) or ``image/compressed`` (CompressedImage), ``regions``
  (gar_ros/RegionArray), optionally ``detections`` (vision_msgs/Detection2DArray), ``~/queries``.
- out: ``~/descriptions`` (RegionDescriptionArray, source frame's header, also when empty),
  ``~/answers`` (Answer, for every query), ``~/debug_image`` (only while subscribed), ``/diagnostics``.
- service ``~/ask`` (gar_ros/srv/Ask), action ``~/ask_stream`` (gar_ros/action/Ask).

Inference runs on the pipeline's worker thread, never in a callback; service and action callbacks
wait in a reentrant group so that they stay responsive while a description runs.
Run without the ros2 CLI: ``python -m gar_ros.ros.node --ros-args -p model_path:=...``.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

from gar_ros.errors import GarError, ImageError
from gar_ros.pipeline import Frame, Pipeline, PipelineConfig, QueryRequest
from gar_ros.pipeline.frames import DescriptionBatch, QueryResult
from gar_ros.pipeline.models import load_model
from gar_ros.ros import diagnostics
from gar_ros.ros.debug_image import annotate
from gar_ros.ros.images import msg_to_rgb, rgb_to_imgmsg, using_cv_bridge
from gar_ros.ros.params import PARAMS, PIPELINE, descriptor
from gar_ros.ros.regions import (
    descriptions_to_msg,
    detections_to_regionset,
    ns_to_stamp,
    regionset_from_msg,
    stamp_to_ns,
)
from gar_ros.types import Answer, AnswerStatus

#: seconds between checks of a waiting service/action callback (closing, cancel, timeout)
WAIT_STEP = 0.05

RELIABLE = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    durability=DurabilityPolicy.VOLATILE,
)
#: Queries are small and each one is owed an answer, so the query reader and the answer writer keep
#: a deep history: a burst is answered (OK or BUSY by ``query_queue_size``) and every answer reaches
#: a reliable reader instead of being overwritten inside DDS unseen.
QUERY_QOS = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    depth=200,
    durability=DurabilityPolicy.VOLATILE,
)


class _Throttle:
    """One warning per kind per ``period`` seconds, counting the ones left out."""

    def __init__(self, logger, period: float) -> None:
        self.logger = logger
        self.period = period
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.period:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return
            self._last[kind] = now
            skipped = self._suppressed.pop(kind, 0)
        extra = f" ({skipped} more since last report)" if skipped else ""
        self.logger.warning(f"{kind}: {message}{extra}")


class GarNode(LifecycleNode):
    """The gar_node lifecycle node (see the module docstring)."""

    def __init__(self, node_name: str = "gar_node", *, model=None, **kwargs) -> None:
        """``model``: an already loaded GarModel to use instead of loading ``model_path`` at configure."""
        super().__init__(node_name, **kwargs)
        self._given_model = model
        for p in PARAMS:
            self.declare_parameter(p.name, p.default, descriptor(p))
        self.add_post_set_parameters_callback(self._on_parameters)
        self._cb_inputs = MutuallyExclusiveCallbackGroup()
        self._cb_queries = ReentrantCallbackGroup()
        self._cb_timers = MutuallyExclusiveCallbackGroup()
        self.throttle = _Throttle(self.get_logger(), float(self.param("log_throttle")))
        self.model = None
        self.model_name = ""
        self.backend_name = ""
        self.pipeline: Pipeline | None = None
        self.active = False
        self._entities: list = []
        self._action: ActionServer | None = None
        self._texts: OrderedDict[str, str] = OrderedDict()  # latest description per track (debug image)
        self._ids = 0
        self._ids_lock = threading.Lock()
        # service/action callbacks waiting for an answer; _release lets them return before it
        # destroys the interfaces (a response sent on a destroyed service raises inside rclpy)
        self._closing = threading.Event()
        self._waiting = 0
        self._waiting_cv = threading.Condition()
        self._diag = diagnostics.Reporter(self.get_fully_qualified_name())

    # ------------------------------------------------------------------ helpers
    def param(self, name: str):
        return self.get_parameter(name).value

    def _next_id(self, prefix: str) -> str:
        with self._ids_lock:
            self._ids += 1
            return f"{prefix}{self._ids}"

    def bad_input(self, kind: str, message: str) -> None:
        """Count a bad input (shown in /diagnostics) and log it, throttled per kind."""
        if self.pipeline is not None:
            self.pipeline.stats.problem(kind, message)  # the listener logs it
        else:
            self.throttle.warn(kind, message)

    def _input_qos(self) -> QoSProfile:
        reliability = str(self.param("input_reliability")).lower()
        return QoSProfile(
            reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT,
            history=HistoryPolicy.KEEP_LAST,
            depth=int(self.param("input_depth")),
            durability=DurabilityPolicy.VOLATILE,
        )

    def _pipeline_config(self) -> PipelineConfig:
        config = PipelineConfig()
        config.update(**{name: self.param(name) for name in PIPELINE})
        return config

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        log = self.get_logger()
        reliability = str(self.param("input_reliability")).lower()
        if reliability not in ("best_effort", "reliable"):
            log.error(f"input_reliability must be best_effort or reliable, not {reliability!r}")
            return TransitionCallbackReturn.FAILURE
        t0 = time.perf_counter()
        try:
            if self._given_model is not None:
                self.model = self._given_model
            else:
                self.model = load_model(
                    str(self.param("model_path")),
                    backend=str(self.param("backend")),
                    device=str(self.param("device")),
                    dtype=str(self.param("dtype")) or None,
                )
        except GarError as err:
            log.error(f"cannot load the model: {err}")
            return TransitionCallbackReturn.FAILURE
        self.model_name = str(getattr(self.model, "name", "") or "")
        # the backend that actually runs (a model may fall back, e.g. tensorrt -> onnxruntime)
        backend = getattr(self.model, "backend", None)
        self.backend_name = backend if isinstance(backend, str) and backend else str(self.param("backend"))
        log.info(f"model {self.model_name!r} loaded in {time.perf_counter() - t0:.1f} s "
                 f"(backend {self.param('backend')}, device {self.param('device')})")
        self.pipeline = Pipeline(
            self.model,
            self._pipeline_config(),
            on_descriptions=self._publish_descriptions,
            on_answer=self._publish_answer,
        )
        self.pipeline.stats.listener = self.throttle.warn
        self._closing.clear()  # a cleanup before this configure closed the previous interfaces
        self._create_interfaces()
        return TransitionCallbackReturn.SUCCESS

    def _create_interfaces(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CompressedImage, Image

        from gar_ros.action import Ask as AskAction
        from gar_ros.msg import Answer as AnswerMsg
        from gar_ros.msg import Query, RegionArray, RegionDescriptionArray
        from gar_ros.srv import Ask

        qos = self._input_qos()
        image_topic = str(self.param("image_topic"))
        self.pub_descriptions = self.create_publisher(RegionDescriptionArray, "~/descriptions", RELIABLE)
        self.pub_answers = self.create_publisher(AnswerMsg, "~/answers", QUERY_QOS)
        self.pub_debug = self.create_publisher(Image, "~/debug_image", qos_profile=5)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE)
        ents = [self.pub_descriptions, self.pub_answers, self.pub_debug, self.pub_diag]
        if self.param("use_compressed"):
            ents.append(self.create_subscription(
                CompressedImage, image_topic.rstrip("/") + "/compressed", self._on_image, qos,
                callback_group=self._cb_inputs))
        else:
            ents.append(self.create_subscription(Image, image_topic, self._on_image, qos,
                                                 callback_group=self._cb_inputs))
        ents.append(self.create_subscription(RegionArray, str(self.param("regions_topic")),
                                             self._on_regions, qos, callback_group=self._cb_inputs))
        if self.param("use_detections"):
            try:
                from vision_msgs.msg import Detection2DArray
            except ImportError:
                self.get_logger().warning(
                    "use_detections is set but vision_msgs is not installed: detections input skipped")
            else:
                ents.append(self.create_subscription(
                    Detection2DArray, str(self.param("detections_topic")), self._on_detections, qos,
                    callback_group=self._cb_inputs))
        ents.append(self.create_subscription(Query, "~/queries", self._on_query, QUERY_QOS,
                                             callback_group=self._cb_queries))
        ents.append(self._create_ask_service(Ask))
        ents.append(self.create_timer(float(self.param("diagnostics_period")), self._publish_diagnostics,
                                      callback_group=self._cb_timers))
        self._entities = ents
        self._action = ActionServer(
            self,
            AskAction,
            "~/ask_stream",
            execute_callback=self._execute_ask,
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            cancel_callback=lambda goal_handle: CancelResponse.ACCEPT,
            callback_group=self._cb_queries,
        )

    def _create_ask_service(self, srv_type):
        """``~/ask``, counted as waiting from the request until its response is sent.

        The executor sends a service response after the callback returns; counting until then
        lets ``_release`` destroy the service only once no response is still on its way."""
        srv = self.create_service(srv_type, "~/ask", self._on_ask, callback_group=self._cb_queries)
        send = srv.send_response

        def send_then_release(response, header) -> None:
            try:
                send(response, header)
            except InvalidHandle:  # the node closed after the wait for this response timed out
                self.get_logger().warning("~/ask: the node closed before the response could be sent")
            finally:
                self._end_waiting()

        srv.send_response = send_then_release
        return srv

    def _begin_waiting(self) -> None:
        with self._waiting_cv:
            self._waiting += 1

    def _end_waiting(self) -> None:
        with self._waiting_cv:
            self._waiting -= 1
            self._waiting_cv.notify_all()

    def _destroy_interfaces(self) -> None:
        for ent in self._entities:
            kind = type(ent).__name__
            destroy = {
                "Publisher": self.destroy_publisher,
                "Subscription": self.destroy_subscription,
                "Service": self.destroy_service,
                "Timer": self.destroy_timer,
            }.get(kind)
            if destroy is not None:
                destroy(ent)
        self._entities = []
        if self._action is not None:
            self._action.destroy()
            self._action = None

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self.pipeline is not None  # configure succeeded before activate
        self.pipeline.start()
        self.active = True
        self.get_logger().info("active: describing regions and answering queries")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        if self.pipeline is not None:
            self.pipeline.stop(timeout=1.0)
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self, timeout: float = 1.0) -> bool:
        self.active = False
        self._closing.set()
        stopped = True
        if self.pipeline is not None:
            stopped = self.pipeline.stop(timeout=timeout)
        with self._waiting_cv:  # waiting callbacks see _closing within WAIT_STEP and answer ERROR
            had_waiting = self._waiting > 0
            self._waiting_cv.wait_for(lambda: self._waiting == 0, timeout=1.0)
        if had_waiting:
            time.sleep(WAIT_STEP)  # let the executor send the responses they returned
        self._destroy_interfaces()
        self.pipeline = None
        self.model = None
        self._texts.clear()
        return stopped

    def close(self, timeout: float = 1.0) -> bool:
        """Stop the worker (waiting at most ``timeout`` s); True when it ended."""
        return self._release(timeout)

    # ------------------------------------------------------------------ inputs
    def _on_image(self, msg) -> None:
        """sensor_msgs/Image or CompressedImage → a pipeline frame (bad images counted and logged)."""
        if not self.active:
            return
        t0 = time.perf_counter()
        try:
            rgb = msg_to_rgb(msg)
        except ImageError as err:
            self.bad_input("bad_images", f"image at {stamp_to_ns(msg.header.stamp)}: {err}")
            return
        pipeline = self.pipeline
        if pipeline is None:
            return
        pipeline.stats.time("convert", time.perf_counter() - t0)
        pipeline.add_frame(Frame(rgb, stamp_to_ns(msg.header.stamp), str(msg.header.frame_id)))

    def _on_regions(self, msg) -> None:
        if not self.active or self.pipeline is None:
            return
        t0 = time.perf_counter()
        regions = regionset_from_msg(msg)
        self.pipeline.stats.time("convert_regions", time.perf_counter() - t0)
        self.pipeline.add_regions(regions)

    def _on_detections(self, msg) -> None:  # pragma: no cover - needs vision_msgs
        if not self.active or self.pipeline is None:
            return
        self.pipeline.add_regions(detections_to_regionset(msg))

    # ------------------------------------------------------------------ queries
    def _not_active(self, query_id: str, question: str) -> QueryResult:
        return QueryResult(query_id, question, Answer(AnswerStatus.ERROR, message="gar_node is not active"))

    def _submit(self, request: QueryRequest):
        pipeline = self.pipeline
        if not self.active or pipeline is None:
            return None
        return pipeline.submit_query(request)

    def _on_query(self, msg) -> None:
        request = QueryRequest(
            question=str(msg.question),
            region_ids=[str(i) for i in msg.region_ids],
            stamp=stamp_to_ns(msg.stamp),
            query_id=str(msg.query_id) or self._next_id("topic-"),
        )
        if self._submit(request) is None:
            self._publish_answer(self._not_active(request.query_id, request.question))

    def _on_ask(self, req, response):
        """``~/ask``: waits for the answer (at most ``service_timeout`` s); counted as waiting until
        the executor has sent the response (see ``_create_ask_service``)."""
        self._begin_waiting()
        try:
            request = QueryRequest(
                question=str(req.question),
                region_ids=[str(i) for i in req.region_ids],
                stamp=stamp_to_ns(req.stamp),
                query_id=self._next_id("ask-"),
            )
            ticket = self._submit(request)
            if ticket is None:
                result = self._not_active(request.query_id, request.question)
            else:
                result = self._wait(ticket, float(self.param("service_timeout")))
            self._fill_answer(response, result)
        except BaseException:
            self._end_waiting()  # no response will be sent
            raise
        return response

    def _wait(self, ticket, timeout: float, tick: Callable[[], None] | None = None) -> QueryResult:
        """The ticket's result; ERROR after ``timeout`` s or as soon as the node is closing.

        ``tick`` runs every WAIT_STEP seconds (the action's cancel check)."""
        self._begin_waiting()
        try:
            deadline = time.monotonic() + timeout
            while True:
                result = ticket.result(WAIT_STEP)
                if result is not None:
                    return result
                if tick is not None:
                    tick()
                closing = self._closing.is_set() or not rclpy.ok(context=self.context)
                if closing or time.monotonic() > deadline:
                    ticket.cancel()
                    message = "node shutting down" if closing else "timed out"
                    return QueryResult(ticket.request.query_id, ticket.request.question,
                                       Answer(AnswerStatus.ERROR, message=message))
        finally:
            self._end_waiting()

    def _execute_ask(self, goal_handle):
        from gar_ros.action import Ask as AskAction

        goal = goal_handle.request

        def on_text(text: str) -> bool:
            goal_handle.publish_feedback(AskAction.Feedback(text=text))
            return not goal_handle.is_cancel_requested

        request = QueryRequest(
            question=str(goal.question),
            region_ids=[str(i) for i in goal.region_ids],
            stamp=stamp_to_ns(goal.stamp),
            query_id=self._next_id("action-"),
            max_new_tokens=int(goal.max_new_tokens),
            on_text=on_text,
        )
        ticket = self._submit(request)
        result = AskAction.Result()
        if ticket is None:
            self._fill_answer(result, self._not_active(request.query_id, request.question))
            goal_handle.abort()
            return result
        def check_cancel() -> None:
            if goal_handle.is_cancel_requested:
                ticket.cancel()

        outcome = self._wait(ticket, float("inf"), check_cancel)
        self._fill_answer(result, outcome)
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
        else:
            goal_handle.succeed()
        return result

    @staticmethod
    def _header(stamp: int, frame_id: str):
        from std_msgs.msg import Header

        return Header(stamp=ns_to_stamp(stamp), frame_id=frame_id)

    def _fill_answer(self, out, result: QueryResult) -> None:
        """Answer fields of a msg/srv response/action result from a QueryResult."""
        out.header = self._header(result.frame_stamp, result.frame_id)
        out.question = result.question
        out.answer = result.answer.text
        out.region_ids = [str(i) for i in result.answer.region_ids]
        out.status = int(result.answer.status)
        out.message = result.answer.message
        if hasattr(out, "query_id"):
            out.query_id = result.query_id

    # ------------------------------------------------------------------ outputs
    def _publish_answer(self, result: QueryResult) -> None:
        from gar_ros.msg import Answer as AnswerMsg

        msg = AnswerMsg()
        self._fill_answer(msg, result)
        pub = getattr(self, "pub_answers", None)
        if pub is not None and self._entities:
            pub.publish(msg)

    def _publish_descriptions(self, batch: DescriptionBatch) -> None:
        pipeline = self.pipeline
        if pipeline is None or not self._entities:
            return
        t0 = time.perf_counter()
        header = self._header(batch.stamp, batch.frame_id)
        msg = descriptions_to_msg(batch, header, self.model_name, self.backend_name)
        self.pub_descriptions.publish(msg)
        for d in batch.descriptions:
            self._texts[d.region.id] = d.text.text
            self._texts.move_to_end(d.region.id)
        while len(self._texts) > 1000:
            self._texts.popitem(last=False)
        if batch.image is not None and self.pub_debug.get_subscription_count() > 0:
            annotated = annotate(batch.image, batch.regions, self._texts, int(self.param("debug_text_chars")))
            self.pub_debug.publish(rgb_to_imgmsg(annotated, header))
        pipeline.stats.time("publish", time.perf_counter() - t0)

    def _publish_diagnostics(self) -> None:
        pipeline = self.pipeline
        if pipeline is None or not self._entities:
            return
        pipeline.expire()
        msg = self._diag.build(
            pipeline,
            model=self.model_name,
            backend=self.backend_name,
            active=self.active,
            image_converter="cv_bridge" if using_cv_bridge() else "internal",
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)

    # ------------------------------------------------------------------ parameters
    def _on_parameters(self, params) -> None:
        values = {p.name: p.value for p in params if p.name in PIPELINE}
        if "log_throttle" in {p.name for p in params}:
            self.throttle.period = float(self.param("log_throttle"))
        if values and self.pipeline is not None:
            changed = self.pipeline.reconfigure(**values)
            if changed:
                self.get_logger().info(f"updated {', '.join(changed)}")


def autostart(node: GarNode) -> bool:
    """Configure and activate when ``autostart`` is set; True when the node ends up active."""
    if not node.param("autostart"):
        return False
    node.trigger_configure()
    if node.pipeline is None:
        node.get_logger().error("configure failed; the node stays unconfigured")
        return False
    node.trigger_activate()
    return node.active


def main(args: list[str] | None = None) -> int:
    """Run gar_node until SIGINT (or ``ros2 lifecycle`` shutdown); exit code 0 on a clean stop."""
    rclpy.init(args=args if args is not None else sys.argv)
    node = GarNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    autostart(node)
    stopped = True
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stopped = node.close(timeout=1.0)
        executor.shutdown(timeout_sec=0.5)
        node.destroy_node()
        rclpy.try_shutdown()
    if not stopped:
        # the model is still inside a call that cannot be interrupted: do not wait for it
        print("gar_node: a model call was still running at shutdown; exiting without waiting for it",
              file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
