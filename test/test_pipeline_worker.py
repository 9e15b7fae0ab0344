"""Pipeline scheduling: worker thread, latest-wins frames, query priority, BUSY, cancel, sync mode.

These tests check which calls the pipeline makes and when; the model is ``RecordingModel``, a
scheduling test double (see _pipeline_helpers). Real model outputs are tested in test_pipeline_model.
"""
from __future__ import annotations

import threading
import time

from gar_ros.pipeline import Frame, Pipeline, PipelineConfig, QueryRequest, RegionSet
from gar_ros.types import AnswerStatus, Region

from _pipeline_helpers import RecordingModel, make_image


def _cfg(**values) -> PipelineConfig:
    """Questions go straight to the model (no natural-language grounding) in these tests."""
    return PipelineConfig(query_grounding=False, **values)


def _feed(p: Pipeline, stamp: int, *ids: str) -> None:
    p.add_frame(Frame(make_image(), stamp, "cam"))
    p.add_regions(RegionSet(stamp, [Region(i, box=(2, 2, 20, 20), label="thing") for i in ids], "cam"))


def _wait(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_sync_mode_describes_each_frame_deterministically():
    batches = []
    model = RecordingModel()
    p = Pipeline(model, _cfg(redescribe_period=1.0), synchronous=True,
                 on_descriptions=batches.append)
    for k in range(5):
        _feed(p, (k + 1) * 500_000_000, "a", "b")  # 2 Hz
    assert [b.stamp for b in batches] == [(k + 1) * 500_000_000 for k in range(5)]
    assert [[d.region.id for d in b.descriptions] for b in batches] == [
        ["a", "b"], [], ["a", "b"], [], ["a", "b"]]
    assert batches[0].descriptions[0].text.frame_stamps == [500_000_000]
    r = p.submit_query(QueryRequest("what is <region:b>?")).result(0)
    assert r.answer.status == AnswerStatus.OK and r.answer.region_ids == ["b"]
    assert model.calls[-1] == ("ask", ["b"], "what is <Prompt0>?")


def test_statuses_not_found_invalid():
    p = Pipeline(RecordingModel(), _cfg(), synchronous=True)
    r = p.submit_query(QueryRequest("what is <region:a>?")).result(0)
    assert r.answer.status == AnswerStatus.NOT_FOUND  # no frame yet
    _feed(p, 1, "a", "b")
    r = p.submit_query(QueryRequest("what is <region:zz>?", region_ids=["yy"])).result(0)
    assert r.answer.status == AnswerStatus.NOT_FOUND and r.answer.region_ids == ["zz", "yy"]
    assert "zz" in r.answer.message
    r = p.submit_query(QueryRequest("what?", region_ids=["a"], stamp=999)).result(0)
    assert r.answer.status == AnswerStatus.NOT_FOUND and "999" in r.answer.message
    r = p.submit_query(QueryRequest("x" * 10_000, region_ids=["a"])).result(0)
    assert r.answer.status == AnswerStatus.INVALID
    ids = [str(i) for i in range(6)]
    _feed(p, 2, *ids)
    r = p.submit_query(QueryRequest("compare", region_ids=ids)).result(0)
    assert r.answer.status == AnswerStatus.INVALID and "at most 5" in r.answer.message


def test_latest_wins_under_fast_stream_and_drops_counted():
    model = RecordingModel(delay=0.15)
    batches = []
    p = Pipeline(model, _cfg(redescribe_period=0.001), on_descriptions=batches.append)
    p.start()
    try:
        for k in range(30):  # 30 Hz for one second while each description takes 150 ms
            _feed(p, (k + 1) * 33_000_000, "a")
            time.sleep(1 / 30)
        assert _wait(lambda: not p.busy and p.queue_depths()["frames"] == 0, 3)
    finally:
        assert p.stop(2.0)
    described = [b.stamp for b in batches]
    assert 3 <= len(described) <= 20  # no backlog: far fewer than 30
    assert described == sorted(described)
    assert described[-1] == 30 * 33_000_000  # the newest frame is the last one described
    counters = p.snapshot().counters
    assert counters["frames_dropped"] + counters.get("frames_stale", 0) + len(described) == 30


def test_stale_frames_dropped():
    gate = threading.Event()
    model = RecordingModel(gate=gate)
    p = Pipeline(model, _cfg(max_frame_age=0.05))
    p.start()
    try:
        _feed(p, 1, "a")
        assert model.started.wait(2)
        _feed(p, 2, "b")  # waits in the slot while the first description is blocked
        time.sleep(0.2)
        gate.set()
        assert _wait(lambda: p.snapshot().counters.get("frames_stale") == 1)
    finally:
        p.stop()
    assert [c[1] for c in model.calls] == [["a"]]


def test_queries_take_priority_and_run_between_chunks():
    gate = threading.Event()
    model = RecordingModel(gate=gate)
    p = Pipeline(model, _cfg(describe_chunk=1, max_regions_per_frame=3))
    p.start()
    try:
        _feed(p, 1, "a", "b", "c")
        assert model.started.wait(2)  # describing "a"
        ticket = p.submit_query(QueryRequest("what is <region:c>?"))
        gate.set()
        result = ticket.result(5)
        assert result is not None and result.answer.status == AnswerStatus.OK
        assert _wait(lambda: len(model.calls) == 4)
    finally:
        p.stop()
    assert [c[0] for c in model.calls] == ["describe", "ask", "describe", "describe"]


def test_full_queue_answers_busy_and_100_queries_in_a_second():
    gate = threading.Event()
    model = RecordingModel(gate=gate)
    answers = []
    p = Pipeline(model, _cfg(query_queue_size=4), on_answer=answers.append)
    p.start()
    try:
        _feed(p, 1, "a")
        assert model.started.wait(2)
        tickets = []
        for k in range(100):
            tickets.append(p.submit_query(QueryRequest(f"q{k} <region:a>?")))
            time.sleep(0.005)
        busy = [t for t in tickets if t.done()]
        assert len(busy) == 96
        assert all(t.result(0).answer.status == AnswerStatus.BUSY for t in busy)
        gate.set()
        assert all(t.result(5) is not None for t in tickets)
        statuses = [t.result(0).answer.status for t in tickets]
        assert statuses.count(AnswerStatus.OK) == 4
        assert len(answers) == 100
        assert p.snapshot().counters["queries_busy"] == 96
        assert p.running
    finally:
        p.stop()


def test_cancel_running_and_queued_query():
    gate = threading.Event()
    model = RecordingModel(gate=gate, delay=0.3)
    p = Pipeline(model, _cfg())
    p.start()
    try:
        _feed(p, 1, "a")
        assert model.started.wait(2)
        streamed = []
        running = p.submit_query(QueryRequest("<region:a>?", on_text=lambda t: streamed.append(t) or True))
        queued = p.submit_query(QueryRequest("<region:a> again?"))
        queued.cancel()
        gate.set()
        assert _wait(lambda: len(streamed) >= 1)
        running.cancel()
        r1, r2 = running.result(5), queued.result(5)
        assert r1.cancelled and len(r1.answer.text.split()) < 3
        assert r2.cancelled and r2.answer.status == AnswerStatus.ERROR
    finally:
        p.stop()
    assert [c[0] for c in model.calls] == ["describe", "ask"]


def test_stop_answers_queued_queries_and_returns_quickly():
    gate = threading.Event()
    model = RecordingModel(gate=gate)
    p = Pipeline(model, _cfg())
    p.start()
    _feed(p, 1, "a")
    assert model.started.wait(2)
    ticket = p.submit_query(QueryRequest("<region:a>?"))
    t0 = time.monotonic()
    p.stop(timeout=0.2)
    assert time.monotonic() - t0 < 1.0
    assert ticket.result(0).answer.status == AnswerStatus.ERROR
    gate.set()


def test_model_exception_does_not_stop_worker():
    class Failing(RecordingModel):
        def describe(self, *a, **k):
            raise RuntimeError("boom")

    batches = []
    p = Pipeline(Failing(), _cfg(), on_descriptions=batches.append)
    p.start()
    try:
        _feed(p, 1, "a")
        assert _wait(lambda: len(batches) == 1)
        assert batches[0].descriptions == []
        r = p.ask(QueryRequest("<region:a>?"), timeout=5)
        assert r.answer.status == AnswerStatus.OK
    finally:
        p.stop()
    assert p.snapshot().counters["errors"] == 1


def test_reconfigure_at_run_time():
    p = Pipeline(RecordingModel(), _cfg(), synchronous=True)
    assert p.reconfigure(max_regions_per_frame=1, bogus=3) == ["max_regions_per_frame"]
    batches = []
    p.on_descriptions = batches.append
    _feed(p, 1, "a", "b")
    assert len(batches[0].descriptions) == 1


def test_stream_restart_forgets_tracks():
    batches = []
    p = Pipeline(RecordingModel(), _cfg(), synchronous=True, on_descriptions=batches.append)
    _feed(p, 50 * 10**9, "a")
    _feed(p, 51 * 10**9, "a")
    _feed(p, 1 * 10**9, "a")  # the bag started again
    assert [[d.region.id for d in b.descriptions] for b in batches] == [["a"], [], ["a"]]


def test_restart_while_the_worker_is_still_busy():
    gate = threading.Event()
    model = RecordingModel(gate=gate)
    batches = []
    p = Pipeline(model, _cfg(), on_descriptions=batches.append)
    p.start()
    _feed(p, 1, "a")
    assert model.started.wait(2)
    assert not p.stop(timeout=0.1)  # stuck in the model
    p.start()
    gate.set()
    _feed(p, 2, "b")
    assert _wait(lambda: any(b.stamp == 2 for b in batches))
    assert p.running
    p.stop()


def test_stamped_query_waits_for_its_frame_then_times_out():
    """A query can arrive before its frame (separate topics): it waits up to pending_timeout."""
    p = Pipeline(RecordingModel(), _cfg(pending_timeout=0.6))
    p.start()
    try:
        _feed(p, 1_000_000_000, "a")
        early = p.submit_query(QueryRequest("what is <region:b>?", stamp=1_100_000_000, query_id="early"))
        bad = p.submit_query(QueryRequest("x" * 10_000, stamp=1_100_000_000))
        assert bad.result(0).answer.status == AnswerStatus.INVALID  # text errors do not wait
        time.sleep(0.15)
        assert early.result(0) is None and p.queue_depths()["queries_awaiting_frame"] == 1
        p.add_regions(RegionSet(1_100_000_000, [Region("b", box=(2, 2, 20, 20))], "cam"))  # regions first
        assert early.result(0) is None
        p.add_frame(Frame(make_image(), 1_100_000_000, "cam"))
        r = early.result(2)
        assert r is not None and r.answer.status == AnswerStatus.OK and r.frame_stamp == 1_100_000_000
        assert r.answer.region_ids == ["b"]

        t0 = time.monotonic()
        never = p.submit_query(QueryRequest("what is <region:a>?", stamp=1_500_000_000)).result(3)
        waited = time.monotonic() - t0
        assert never is not None and never.answer.status == AnswerStatus.NOT_FOUND
        assert "1500000000" in never.answer.message and "0.6 s" in never.answer.message
        assert 0.5 <= waited < 2.0
        # a stamp older than the store keeps pending region sets: its frame is gone, no wait
        t0 = time.monotonic()
        old = p.submit_query(QueryRequest("what is <region:a>?", stamp=5)).result(1)
        assert old.answer.status == AnswerStatus.NOT_FOUND and time.monotonic() - t0 < 0.3
        assert p.queue_depths()["queries_awaiting_frame"] == 0
    finally:
        p.stop()


def test_waiting_query_answered_error_on_stop():
    p = Pipeline(RecordingModel(), _cfg(pending_timeout=5.0))
    p.start()
    ticket = p.submit_query(QueryRequest("what is <region:a>?", stamp=7))
    assert ticket.result(0.1) is None
    assert p.stop()
    r = ticket.result(0)
    assert r.answer.status == AnswerStatus.ERROR and "stopped" in r.answer.message
