"""The ROS-free GAR pipeline: frames + region sets + queries in, descriptions + answers out.

Two modes share all logic:
- threaded (``start()``): a worker thread runs the model; ``add_frame``/``add_regions``/``submit_query``
  only store and enqueue. Frames are latest-wins (one slot; a replaced frame is counted in
  ``frames_dropped``), frames older than ``max_frame_age`` are dropped (``frames_stale``), queries wait
  in a bounded queue (full → BUSY) and run before descriptions, also between chunks of one frame.
  A query stamped with a frame that is not joined yet (it came before its image or regions) waits
  for that join up to ``pending_timeout`` s, then is NOT_FOUND.
- synchronous (``synchronous=True``): every call runs to completion on the caller's thread, nothing is
  dropped, results only depend on the inputs (the bag evaluator's deterministic mode).

Callbacks ``on_descriptions(DescriptionBatch)`` and ``on_answer(QueryResult)`` run on the worker
thread (or the caller's thread in synchronous mode); every query result, BUSY/INVALID included,
goes to ``on_answer`` and to its ticket.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from gar_ros.errors import (
    GarError,
    InputError,
    QueryError,
    TooManyRegionsError,
    UnknownRegionError,
)
from gar_ros.pipeline.answering import answer_query
from gar_ros.pipeline.config import PipelineConfig
from gar_ros.pipeline.frames import (
    Description,
    DescriptionBatch,
    Frame,
    JoinedFrame,
    QueryRequest,
    QueryResult,
    QueryTicket,
    RegionSet,
)
from gar_ros.pipeline.policy import DescribePolicy
from gar_ros.pipeline.references import clean_text, map_references
from gar_ros.pipeline.stats import PipelineStats, Snapshot
from gar_ros.pipeline.store import FrameStore, StoreEvents
from gar_ros.types import Answer, AnswerStatus

log = logging.getLogger(__name__)

DescriptionsCallback = Callable[[DescriptionBatch], None]
AnswerCallback = Callable[[QueryResult], None]


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


class Pipeline:
    """GAR over a stream of frames; see the module docstring for the threading model.

    ``model``: a :class:`gar_ros.model.GarModel` (or anything with its ``describe``/``ask``/``config``).
    """

    def __init__(
        self,
        model: Any,
        config: PipelineConfig | None = None,
        *,
        on_descriptions: DescriptionsCallback | None = None,
        on_answer: AnswerCallback | None = None,
        synchronous: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.config = config or PipelineConfig()
        self.on_descriptions = on_descriptions
        self.on_answer = on_answer
        self.synchronous = synchronous
        self.clock = clock
        self.stats = PipelineStats()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self.store = self._make_store()
        self.policy = self._make_policy()
        self._frame_slot: JoinedFrame | None = None
        self._queries: deque[QueryTicket] = deque()
        #: queries whose stamped frame has not been joined yet: (deadline, ticket)
        self._awaiting: list[tuple[float, QueryTicket]] = []
        self._thread: threading.Thread | None = None
        self._stop = False
        self._busy = False
        self._query_seq = 0
        #: video context (gar_ros.context) when context_frames > 0: fed on the worker thread
        self.context: Any = None
        self._context_inbox: deque[JoinedFrame] = deque(maxlen=64)
        self._make_context()
        #: short captions per track id for grounding questions (this pipeline's own, so that runs
        #: do not share state); cleared when stamps go backwards
        self.caption_cache: dict[str, str] | Any = self._make_caption_cache()
        self._last_stamp = 0
        self._restart = False

    # ------------------------------------------------------------- settings
    def _make_store(self) -> FrameStore:
        c = self.config
        return FrameStore(
            tolerance_ns=_ns(c.sync_tolerance),
            frame_capacity=c.frame_buffer,
            pending_capacity=c.frame_buffer,
            history=c.history,
            pending_timeout=c.pending_timeout,
        )

    def _make_policy(self) -> DescribePolicy:
        c = self.config
        return DescribePolicy(
            redescribe_period=c.redescribe_period,
            max_regions_per_frame=c.max_regions_per_frame,
            track_expiry=c.track_expiry,
        )

    @staticmethod
    def _make_caption_cache() -> Any:
        try:
            from gar_ros.query.grounding import CaptionCache
        except ImportError:
            return {}
        return CaptionCache()

    def _make_context(self) -> None:
        """A FrameContext when context_frames > 0 and gar_ros.context is installed."""
        c = self.config
        if c.context_frames <= 0:
            self.context = None
            return
        try:
            from gar_ros.context.frame_context import ContextConfig, FrameContext
        except ImportError as err:
            log.warning("context_frames=%d but gar_ros.context is not available (%s): single frames",
                        c.context_frames, err)
            self.context = None
            return
        self.context = FrameContext(ContextConfig(context_frames=int(c.context_frames),
                                                  context_window=float(c.context_window),
                                                  history_frames=int(c.history_frames),
                                                  history_age=float(c.history_age),
                                                  iou_threshold=float(c.track_iou_threshold)))

    def _feed_context(self) -> None:
        """Move joined frames into the video context (worker/caller thread only)."""
        with self._lock:
            restart, self._restart = self._restart, False
        if restart:
            self.caption_cache.clear()
            self._make_context()
        while True:
            with self._lock:
                if not self._context_inbox:
                    return
                joined = self._context_inbox.popleft()
            if self.context is None:
                continue
            frame = joined.frame
            try:
                self.context.add_frame(frame.stamp, frame.image, joined.regions, frame_key=frame.key)
            except GarError as err:
                self.stats.problem("context_errors", f"frame {frame.stamp}: {err}")

    def reconfigure(self, **values: object) -> list[str]:
        """Change settings at run time (unknown names ignored); returns the changed names."""
        with self._lock:
            changed = self.config.update(**values)
            c = self.config
            self.store.tolerance_ns = _ns(c.sync_tolerance)
            self.store.pending_timeout = c.pending_timeout
            self.policy.redescribe_period = c.redescribe_period
            self.policy.max_regions_per_frame = c.max_regions_per_frame
            self.policy.track_expiry = c.track_expiry
            if {"context_frames", "context_window", "history_frames", "history_age", "track_iou_threshold"} & set(changed):
                self._restart = True  # the worker rebuilds the context
        return changed

    @property
    def max_prompts(self) -> int:
        return int(getattr(getattr(self.model, "config", None), "prompt_numbers", 5) or 5)

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the worker thread (not used in synchronous mode)."""
        if self.synchronous:
            return
        with self._lock:
            self._stop = False
            if self._thread is not None and self._thread.is_alive():
                return  # a worker still finishing its last call carries on
        self._thread = threading.Thread(target=self._run, name="gar-pipeline", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop the worker; queued queries are answered ERROR. True when it ended within ``timeout``."""
        with self._lock:
            self._stop = True
            pending = list(self._queries) + [t for _, t in self._awaiting]
            self._queries.clear()
            self._awaiting.clear()
            self._frame_slot = None
            self._wake.notify_all()
        for ticket in pending:
            self._finish(ticket, None, Answer(AnswerStatus.ERROR, message="pipeline stopped"))
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop

    @property
    def busy(self) -> bool:
        return self._busy

    # ------------------------------------------------------------- input
    def add_frame(self, frame: Frame) -> None:
        """A camera frame (image (H, W, 3) uint8 RGB)."""
        self._add(frame, "frames_received", self.store.add_frame)

    def add_regions(self, regions: RegionSet) -> None:
        """The regions of a frame (joined to it by stamp)."""
        self._add(regions, "region_sets_received", self.store.add_regions)

    def _add(self, item: Frame | RegionSet, counter: str,
             store_add: Callable[..., StoreEvents]) -> None:
        """Stamp ``item`` with its receipt time, put it in the store, act on the join it completes."""
        now = self.clock()
        if not item.received:
            item.received = now
        self.stats.count(counter)
        t0 = time.perf_counter()
        with self._lock:
            events = store_add(item, now=None if self.synchronous else now)
        self.stats.time("sync", time.perf_counter() - t0)
        self._handle(events)

    def expire(self) -> None:
        """Count region sets that waited too long for their frame and answer queries that waited too
        long for theirs (the node calls this periodically; the worker does too)."""
        with self._lock:
            expired = self.store.expire(self.clock())
        self._handle(StoreEvents(unmatched_regions=expired or None))
        self._expire_awaiting()

    def _handle(self, events: StoreEvents) -> None:
        if events.frames_without_regions:
            self.stats.count("frames_without_regions", events.frames_without_regions)
        for rs in events.unmatched_regions or []:
            self.stats.problem(
                "regions_unmatched",
                f"regions of stamp {rs.stamp} ({len(rs.regions)} regions) match no received frame",
            )
        joined = events.joined
        if joined is None:
            return
        self.stats.count("frames_joined")
        stamp = joined.frame.stamp
        with self._lock:
            if stamp and stamp < self._last_stamp - 1_000_000_000:
                # the stream restarted (bag loop, simulation reset): the worker forgets tracks
                self._restart = True
                self._context_inbox.clear()
                self._last_stamp = stamp
            else:
                self._last_stamp = max(stamp, self._last_stamp)
        for problem in joined.problems:
            self.stats.problem("regions_rejected", problem)
        self._release_awaiting()
        if self.config.context_frames > 0:
            with self._lock:
                self._context_inbox.append(joined)
        if self.synchronous:
            self._describe(joined)
            return
        with self._lock:
            if self._frame_slot is not None:
                self.stats.count("frames_dropped")
            self._frame_slot = joined
            self._wake.notify_all()

    # ------------------------------------------------------------- queries
    def submit_query(self, request: QueryRequest) -> QueryTicket:
        """Queue a question; the ticket completes with its result (immediately for bad queries)."""
        now = self.clock()
        ticket = QueryTicket(request, now)
        self.stats.count("queries_received")
        with self._lock:
            self._query_seq += 1
            if not request.query_id:
                request.query_id = f"q{self._query_seq}"
            joined = self.store.joined_at(int(request.stamp))
            if joined is None and self._may_await(request):
                error = self._check_text(request)
                if error is None:
                    # its frame (or that frame's regions) may still be on the way: wait for the join
                    self._awaiting.append((now + self.config.pending_timeout, ticket))
                    self._wake.notify_all()
                    return ticket
        self._dispatch(ticket, joined)
        return ticket

    def _may_await(self, request: QueryRequest) -> bool:
        """A stamped query may wait for its frame: the worker runs, waiting is allowed, and the stamp
        is not older than the store keeps pending region sets (then its frame is gone). Lock held."""
        stamp = int(request.stamp)
        if stamp == 0 or self.synchronous or self._stop or self.config.pending_timeout <= 0:
            return False
        return not self._last_stamp or stamp >= self._last_stamp - self.store.pending_window_ns

    def _release_awaiting(self) -> None:
        """Dispatch the waiting queries whose frame is now joined."""
        with self._lock:
            ready = []
            for item in list(self._awaiting):
                joined = self.store.joined_at(int(item[1].request.stamp))
                if joined is not None:
                    self._awaiting.remove(item)
                    ready.append((item[1], joined))
        for ticket, joined in ready:
            self._dispatch(ticket, joined)

    def _expire_awaiting(self) -> None:
        """Answer NOT_FOUND the waiting queries whose frame did not come within ``pending_timeout``."""
        now = self.clock()
        with self._lock:
            due = [t for deadline, t in self._awaiting if deadline <= now]
            self._awaiting = [(d, t) for d, t in self._awaiting if d > now]
        for ticket in due:
            self._finish(ticket, None, Answer(AnswerStatus.NOT_FOUND, message=(
                f"no frame with regions at stamp {ticket.request.stamp} arrived within "
                f"{self.config.pending_timeout:g} s (pending_timeout)")))

    def _dispatch(self, ticket: QueryTicket, joined: JoinedFrame | None) -> None:
        """Precheck a query against its frame, then run it (synchronous) or queue it for the worker."""
        request = ticket.request
        error = self._precheck(request, joined)
        if error is not None:
            self._finish(ticket, joined, error)
            return
        ticket.joined = joined  # type: ignore[attr-defined]
        if self.synchronous:
            self._run_query(ticket)
            return
        with self._lock:
            if self._stop or len(self._queries) >= max(0, self.config.query_queue_size):
                full = True
            else:
                full = False
                self._queries.append(ticket)
                self._wake.notify_all()
        if full:
            self.stats.count("queries_busy")
            self._finish(
                ticket,
                joined,
                Answer(
                    AnswerStatus.BUSY,
                    message=f"query queue full ({self.config.query_queue_size} waiting); retry later",
                ),
            )

    def ask(self, request: QueryRequest, timeout: float | None = None) -> QueryResult | None:
        """Submit and wait (None when ``timeout`` passes; the query is then cancelled)."""
        ticket = self.submit_query(request)
        result = ticket.result(timeout)
        if result is None:
            ticket.cancel()
        return result

    def _check_text(self, request: QueryRequest) -> Answer | None:
        """INVALID when the question text is unusable (too long, empty, ...)."""
        try:
            clean_text(request.question, self.config.max_question_chars)
        except QueryError as err:
            self.stats.problem("queries_invalid", str(err))
            return Answer(AnswerStatus.INVALID, message=str(err))
        return None

    def _precheck(self, request: QueryRequest, joined: JoinedFrame | None) -> Answer | None:
        """Statuses decidable without the model: INVALID text, NOT_FOUND frame or ids, too many ids."""
        error = self._check_text(request)
        if error is not None:
            return error
        if joined is None:
            what = "no frame with regions received yet" if request.stamp == 0 else (
                f"no frame with regions at stamp {request.stamp}"
            )
            return Answer(AnswerStatus.NOT_FOUND, message=what)
        try:
            map_references(
                request.question,
                list(request.region_ids),
                {r.id for r in joined.regions},
                max_prompts=self.max_prompts,
                max_chars=self.config.max_question_chars,
            )
        except UnknownRegionError as err:
            return Answer(AnswerStatus.NOT_FOUND, region_ids=err.ids, message=str(err))
        except TooManyRegionsError as err:
            self.stats.problem("queries_invalid", str(err))
            return Answer(AnswerStatus.INVALID, message=str(err))
        except QueryError as err:
            self.stats.problem("queries_invalid", str(err))
            return Answer(AnswerStatus.INVALID, message=str(err))
        return None

    def _finish(self, ticket: QueryTicket, joined: JoinedFrame | None, answer: Answer,
                *, cancelled: bool = False, timings: dict[str, float] | None = None) -> None:
        if joined is not None and not answer.frame_stamp:
            answer.frame_stamp = joined.frame.stamp
        result = QueryResult(
            query_id=ticket.request.query_id,
            question=ticket.request.question,
            answer=answer,
            frame_stamp=joined.frame.stamp if joined is not None else 0,
            frame_id=joined.frame.frame_id if joined is not None else "",
            cancelled=cancelled,
            latency=self.clock() - ticket.submitted,
            timings=timings or {},
        )
        self.stats.count(f"answers_{answer.status.name.lower()}")
        ticket.set_result(result)
        if self.on_answer is not None:
            try:
                self.on_answer(result)
            except Exception:  # a broken consumer must not stop the pipeline
                log.exception("answer callback failed")

    def _run_query(self, ticket: QueryTicket) -> None:
        self._feed_context()
        request = ticket.request
        joined: JoinedFrame = ticket.joined  # type: ignore[attr-defined]
        timings = {"queue_wait": self.clock() - ticket.submitted}
        self.stats.time("query_wait", timings["queue_wait"])
        if ticket.cancel_requested:
            self._finish(ticket, joined, Answer(AnswerStatus.ERROR, message="cancelled"),
                         cancelled=True, timings=timings)
            return

        def on_text(text: str) -> bool:
            keep = True
            if request.on_text is not None:
                try:
                    keep = request.on_text(text) is not False
                except Exception:
                    log.exception("on_text callback failed")
            return keep and not ticket.cancel_requested and not self._stop

        t0 = time.perf_counter()
        try:
            answer = answer_query(
                self.model,
                joined,
                request,
                max_new_tokens=request.max_new_tokens or self.config.query_max_new_tokens,
                max_prompts=self.max_prompts,
                max_chars=self.config.max_question_chars,
                on_text=on_text,
                grounding=self.config.query_grounding,
                context=self.context,
                caption_cache=self.caption_cache,
            )
        except GarError as err:
            answer = Answer(AnswerStatus.ERROR, message=str(err))
        except Exception as err:  # the worker survives model failures; reported as ERROR
            log.exception("query failed")
            self.stats.problem("errors", f"query {request.query_id}: {err!r}")
            answer = Answer(AnswerStatus.ERROR, message=f"internal error: {err!r}")
        timings["inference"] = time.perf_counter() - t0
        self.stats.time("query", timings["inference"])
        cancelled = ticket.cancel_requested
        if cancelled and answer.status == AnswerStatus.OK:
            answer.message = "cancelled"
        self._finish(ticket, joined, answer, cancelled=cancelled, timings=timings)

    # ------------------------------------------------------------- describing
    def _describe_part(self, frame: Frame, part: list) -> list:
        """Model call for some regions of a frame: over the video context when enabled."""
        if self.context is not None:
            try:
                return self.context.describe(
                    self.model, [r.id for r in part], stamp=frame.stamp,
                    max_new_tokens=self.config.max_new_tokens,
                )
            except (InputError, UnknownRegionError) as err:
                self.stats.problem("context_errors", f"frame {frame.stamp}: {err}; single frame used")
        return self.model.describe(
            frame.image, part, max_new_tokens=self.config.max_new_tokens, frame_key=frame.key
        )

    def _describe(self, joined: JoinedFrame) -> None:
        self._feed_context()
        frame = joined.frame
        start = self.clock()
        timings = {"queue_wait": start - frame.received}
        self.stats.time("frame_wait", timings["queue_wait"])
        now_s = frame.stamp * 1e-9 if frame.stamp else start
        with self._lock:
            chosen = self.policy.select(joined.regions, now_s)
        descriptions: list[Description] = []
        inference = 0.0
        chunk = max(1, self.config.describe_chunk)
        for i in range(0, len(chosen), chunk):
            if i and not self.synchronous:
                self._drain_queries()
                if self._stop:
                    return
            part = chosen[i : i + chunk]
            t0 = time.perf_counter()
            try:
                texts = self._describe_part(frame, part)
            except GarError as err:
                self.stats.problem("describe_errors", f"frame {frame.stamp}: {err}")
                texts = []
            except Exception as err:
                log.exception("describe failed")
                self.stats.problem("errors", f"describe frame {frame.stamp}: {err!r}")
                texts = []
            inference += time.perf_counter() - t0
            by_id = {t.region_id: t for t in texts}
            for region in part:
                text = by_id.get(region.id)
                if text is None:
                    continue
                if not text.frame_stamps:
                    text.frame_stamps = [frame.stamp]
                descriptions.append(Description(region=region, text=text))
        with self._lock:
            self.policy.mark_described([d.region.id for d in descriptions], now_s)
        timings["inference"] = inference
        self.stats.time("describe", inference)
        self.stats.count("frames_described")
        self.stats.count("descriptions", len(descriptions))
        batch = DescriptionBatch(
            stamp=frame.stamp,
            frame_id=frame.frame_id,
            descriptions=descriptions,
            image=frame.image,
            regions=joined.regions,
            latency=self.clock() - frame.received,
            inference_time=inference,
            timings=timings,
        )
        self.stats.time("latency", batch.latency)
        if self.on_descriptions is not None:
            try:
                self.on_descriptions(batch)
            except Exception:
                log.exception("descriptions callback failed")

    # ------------------------------------------------------------- worker
    def _drain_queries(self) -> None:
        while True:
            with self._lock:
                if self._stop or not self._queries:
                    return
                ticket = self._queries.popleft()
            self._run_query(ticket)

    def _run(self) -> None:
        while True:
            self._expire_awaiting()
            with self._lock:
                while not self._stop and not self._queries and self._frame_slot is None:
                    self._wake.wait(self._wait_time())
                    if self._awaiting and min(d for d, _ in self._awaiting) <= self.clock():
                        break
                if self._stop:
                    return
                ticket = self._queries.popleft() if self._queries else None
                joined = None
                if ticket is None:
                    joined, self._frame_slot = self._frame_slot, None
                self._busy = True
            try:
                if ticket is not None:
                    self._run_query(ticket)
                elif joined is not None:
                    age = self.clock() - joined.frame.received
                    if self.config.max_frame_age > 0 and age > self.config.max_frame_age:
                        self.stats.problem(
                            "frames_stale",
                            f"frame {joined.frame.stamp} is {age:.2f} s old "
                            f"(max_frame_age {self.config.max_frame_age} s); skipped",
                        )
                    else:
                        self._describe(joined)
            finally:
                self._busy = False

    def _wait_time(self) -> float:
        """Seconds the idle worker sleeps: 0.5, less when a waiting query's deadline comes first."""
        if not self._awaiting:
            return 0.5
        return min(0.5, max(0.001, min(d for d, _ in self._awaiting) - self.clock()))

    # ------------------------------------------------------------- status
    def queue_depths(self) -> dict[str, int]:
        with self._lock:
            return {
                "queries": len(self._queries),
                "queries_awaiting_frame": len(self._awaiting),
                "frames": int(self._frame_slot is not None),
                "buffered_frames": self.store.frame_count,
                "pending_region_sets": self.store.pending_count,
                "tracks": self.policy.track_count,
            }

    def snapshot(self) -> Snapshot:
        return self.stats.snapshot()
