"""gar_node in-process over real DDS: topics, service, action, lifecycle, bad inputs, latest-wins.

The model here is the scheduling test double (RecordingModel): these tests check what the node
receives, routes and publishes. Real model outputs through the node: test_node_model.py.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from gar_ros.msg import Answer, Query, RegionArray, RegionDescriptionArray  # noqa: E402
from gar_ros.ros.regions import ns_to_stamp  # noqa: E402
from gar_ros.types import Region  # noqa: E402

from _node_helpers import (  # noqa: E402
    DEEP_RELIABLE,
    RELIABLE,
    header,
    image_msg,
    regions_msg,
    spin_node,
    wait_for,
)
from _pipeline_helpers import RecordingModel, make_image  # noqa: E402

pytestmark = pytest.mark.ros

W, H = 64, 48
REGIONS = [Region("7", box=(2, 2, 20, 20), label="cup"), Region("cup_3", box=(30, 10, 60, 40), label="box")]


def _diag_value(diags: list, key: str) -> str | None:
    for msg in reversed(diags):
        for status in msg.status:
            if "gar_node" in status.name:
                for kv in status.values:
                    if kv.key == key:
                        return kv.value
    return None


@pytest.fixture(scope="module")
def harness():
    model = RecordingModel()
    with spin_node(model, params={"diagnostics_period": 0.2, "redescribe_period": 0.0, "query_grounding": False,
                                   "max_frame_age": 0.0}) as h:
        h.model = model
        h.descriptions = h.subscribe(RegionDescriptionArray, "/gar_node/descriptions")
        h.answers = h.subscribe(Answer, "/gar_node/answers", DEEP_RELIABLE)
        h.diags = h.subscribe(DiagnosticArray, "/diagnostics")
        h.pub_image = h.publisher(Image, "/image")
        h.pub_regions = h.publisher(RegionArray, "/regions")
        h.pub_query = h.publisher(Query, "/gar_node/queries", DEEP_RELIABLE)
        h.wait_matched(h.pub_image)
        h.wait_matched(h.pub_regions)
        h.wait_matched(h.pub_query)
        assert wait_for(lambda: h.node.pub_answers.get_subscription_count() >= 1)
        assert wait_for(lambda: h.node.pub_descriptions.get_subscription_count() >= 1)
        yield h


def _send(h, stamp: int, regions=REGIONS, encoding="rgb8", image=None):
    img = make_image(W, H) if image is None else image
    h.pub_image.publish(image_msg(img, stamp, encoding=encoding))
    time.sleep(0.01)
    h.pub_regions.publish(regions_msg(regions, stamp))


def _counter(h, key: str) -> int:
    return h.node.pipeline.snapshot().counters.get(key, 0)


def test_descriptions_carry_source_header_and_region_ids(harness):
    h = harness
    stamp = 1_700_000_000_123_456_789
    _send(h, stamp)
    assert wait_for(lambda: any(m.header.stamp == ns_to_stamp(stamp) for m in h.descriptions))
    msg = next(m for m in h.descriptions if m.header.stamp == ns_to_stamp(stamp))
    assert msg.header.frame_id == "cam"
    assert [d.id for d in msg.descriptions] == ["7", "cup_3"]
    assert [d.label for d in msg.descriptions] == ["cup", "box"]
    assert (msg.descriptions[1].box.x_offset, msg.descriptions[1].box.width) == (30, 30)
    assert list(msg.descriptions[0].frame_stamps) == [ns_to_stamp(stamp)]
    assert msg.model == "recording-test-double" and msg.backend == "torch"
    # the same tracks again: published (empty), not described again
    _send(h, stamp + 1)
    assert wait_for(lambda: any(m.header.stamp == ns_to_stamp(stamp + 1) for m in h.descriptions))
    again = next(m for m in h.descriptions if m.header.stamp == ns_to_stamp(stamp + 1))
    assert list(again.descriptions) == []


@pytest.mark.parametrize("encoding", ["bgr8", "rgba8", "bgra8", "mono8", "mono16", "16UC1"])
def test_encodings_reach_the_model(harness, encoding):
    h = harness
    stamp = 2_000_000_000 + hash(encoding) % 1000
    rgb = make_image(W, H, seed=3)
    if encoding in ("rgba8", "bgra8"):
        arr = np.concatenate([rgb if encoding == "rgba8" else rgb[..., ::-1], np.full((H, W, 1), 255, np.uint8)], 2)
    elif encoding == "mono8":
        arr = rgb[..., 0]
    elif encoding in ("mono16", "16UC1"):
        arr = rgb[..., 0].astype(np.uint16) * 100
    else:
        arr = rgb[..., ::-1]
    from gar_ros.ros.images import array_to_imgmsg

    before = _counter(h, "frames_received")
    h.pub_image.publish(array_to_imgmsg(arr, encoding, header(stamp)))
    h.pub_regions.publish(regions_msg([Region(f"enc_{encoding}", box=(0, 0, 10, 10))], stamp))
    assert wait_for(lambda: any(m.header.stamp == ns_to_stamp(stamp) for m in h.descriptions))
    assert _counter(h, "frames_received") > before


def test_service_round_trip_and_statuses(harness):
    from gar_ros.srv import Ask

    h = harness
    _send(h, 3_000_000_000)
    assert wait_for(lambda: any(m.header.stamp == ns_to_stamp(3_000_000_000) for m in h.descriptions))
    cli = h.client.create_client(Ask, "/gar_node/ask")
    assert cli.wait_for_service(timeout_sec=10)

    def call(**kw):
        fut = cli.call_async(Ask.Request(**kw))
        assert wait_for(fut.done, 10)
        return fut.result()

    r = call(question="is <region:cup_3> left of <region:7>?")
    assert r.status == Answer.OK and list(r.region_ids) == ["cup_3", "7"]
    assert r.header.stamp == ns_to_stamp(3_000_000_000) and r.header.frame_id == "cam"
    assert h.model.calls[-1] == ("ask", ["cup_3", "7"], "is <Prompt0> left of <Prompt1>?")
    r = call(question="what is <region:nope>?", region_ids=["gone"])
    assert r.status == Answer.NOT_FOUND and list(r.region_ids) == ["nope", "gone"]
    assert "nope" in r.message and "gone" in r.message
    r = call(question="compare", region_ids=[str(i) for i in range(6)])
    assert r.status == Answer.NOT_FOUND  # unknown ids are reported before the count
    r = call(question="y" * 10_000, region_ids=["7"])
    assert r.status == Answer.INVALID and "10000" in r.message
    r = call(question="<|begin_of_text|><|eot_id|> <Prompt4> what is <region:7>?")
    assert r.status == Answer.OK
    asked = h.model.calls[-1][2]
    assert "<|" not in asked and "<Prompt4>" not in asked and "<Prompt0>" in asked
    r = call(question="what is it?", region_ids=["7"], stamp=ns_to_stamp(12345))
    assert r.status == Answer.NOT_FOUND and "12345" in r.message


def test_more_than_five_regions_invalid(harness):
    from gar_ros.srv import Ask

    h = harness
    many = [Region(f"m{i}", box=(i, i, i + 10, i + 10)) for i in range(6)]
    _send(h, 3_500_000_000, regions=many)
    assert wait_for(lambda: any(m.header.stamp == ns_to_stamp(3_500_000_000) for m in h.descriptions))
    cli = h.client.create_client(Ask, "/gar_node/ask")
    assert cli.wait_for_service(timeout_sec=10)
    fut = cli.call_async(Ask.Request(question="compare them", region_ids=[r.id for r in many]))
    assert wait_for(fut.done, 10)
    assert fut.result().status == Answer.INVALID and "at most 5" in fut.result().message


def test_query_topic_answers_on_answers_topic(harness):
    h = harness
    _send(h, 4_000_000_000)
    assert wait_for(lambda: any(m.header.stamp == ns_to_stamp(4_000_000_000) for m in h.descriptions))
    h.pub_query.publish(Query(query_id="q-topic-1", question="what is <region:7>?"))
    assert wait_for(lambda: any(a.query_id == "q-topic-1" for a in h.answers))
    a = next(a for a in h.answers if a.query_id == "q-topic-1")
    assert a.status == Answer.OK and list(a.region_ids) == ["7"] and a.question == "what is <region:7>?"


def _send_goal(h, question: str):
    """An Ask goal sent to ~/ask_stream: (action client, goal handle, the feedback texts so far)."""
    from rclpy.action import ActionClient

    from gar_ros.action import Ask as AskAction

    client = ActionClient(h.client, AskAction, "/gar_node/ask_stream")
    assert client.wait_for_server(timeout_sec=10)
    feedback: list[str] = []
    fut = client.send_goal_async(AskAction.Goal(question=question),
                                 feedback_callback=lambda fb: feedback.append(fb.feedback.text))
    assert wait_for(fut.done, 10)
    return client, fut.result(), feedback


def test_action_feedback_and_result(harness):
    h = harness
    _send(h, 5_000_000_000)
    assert wait_for(lambda: any(m.header.stamp == ns_to_stamp(5_000_000_000) for m in h.descriptions))
    client, goal, feedback = _send_goal(h, "describe <region:cup_3>")
    assert goal.accepted
    res_fut = goal.get_result_async()
    assert wait_for(res_fut.done, 10)
    result = res_fut.result().result
    assert result.status == Answer.OK and list(result.region_ids) == ["cup_3"]
    assert wait_for(lambda: len(feedback) == 3, 5)
    assert feedback[-1] == result.answer and feedback[0] != feedback[-1]
    client.destroy()


def test_action_cancel(harness):
    from action_msgs.msg import GoalStatus

    h = harness
    _send(h, 6_000_000_000)
    assert wait_for(lambda: any(m.header.stamp == ns_to_stamp(6_000_000_000) for m in h.descriptions))
    h.model.delay = 1.5  # slow answers: 0.5 s per streamed word
    try:
        client, goal, feedback = _send_goal(h, "describe <region:7>")
        assert wait_for(lambda: len(feedback) >= 1, 10)
        cancel = goal.cancel_goal_async()
        assert wait_for(cancel.done, 5)
        res_fut = goal.get_result_async()
        assert wait_for(res_fut.done, 10)
        assert res_fut.result().status == GoalStatus.STATUS_CANCELED
        assert len(res_fut.result().result.answer.split()) < 3
        client.destroy()
    finally:
        h.model.delay = 0.0


def test_service_stays_responsive_while_describing(harness):
    from gar_ros.srv import Ask

    h = harness
    gate = threading.Event()
    h.model.gate = gate
    h.model.started.clear()
    try:
        _send(h, 7_000_000_000, regions=[Region("slow1", box=(0, 0, 9, 9))])
        assert h.model.started.wait(10)  # a description is in flight and blocked
        cli = h.client.create_client(Ask, "/gar_node/ask")
        assert cli.wait_for_service(timeout_sec=10)
        t0 = time.monotonic()
        fut = cli.call_async(Ask.Request(question="what is <region:missing>?"))
        assert wait_for(fut.done, 5)
        assert fut.result().status == Answer.NOT_FOUND
        assert time.monotonic() - t0 < 2.0
    finally:
        h.model.gate = None
        gate.set()


# ------------------------------------------------------------------ bad inputs
def _bad_count_grows(h, key: str, action, timeout: float = 10.0) -> None:
    before = _counter(h, key)
    action()
    assert wait_for(lambda: _counter(h, key) > before, timeout), f"{key} did not grow"


def test_bad_unsupported_encoding(harness):
    h = harness
    msg = image_msg(make_image(W, H), 8_000_000_000)
    msg.encoding = "yuv422_yuy2"
    _bad_count_grows(h, "bad_images", lambda: h.pub_image.publish(msg))
    assert "unsupported image encoding" in h.node.pipeline.snapshot().problems[-1]


def test_bad_data_length(harness):
    h = harness
    msg = Image(header=header(8_100_000_000), height=480, width=640, encoding="rgb8", step=1920,
                data=bytes(30))
    _bad_count_grows(h, "bad_images", lambda: h.pub_image.publish(msg))
    assert "needs 921600 bytes, got 30" in h.node.pipeline.snapshot().problems[-1]


def test_bad_regions_for_frame_never_received(harness):
    h = harness
    h.node.pipeline.reconfigure(pending_timeout=0.2)
    try:
        _bad_count_grows(
            h, "regions_unmatched",
            lambda: h.pub_regions.publish(regions_msg(REGIONS, 8_200_000_000)),
        )
    finally:
        h.node.pipeline.reconfigure(pending_timeout=2.0)


@pytest.mark.parametrize(
    "case, region",
    [
        ("mask of the wrong size", Region("bad_mask", box=(0, 0, 10, 10))),
        ("empty mask", Region("empty_mask", mask=np.zeros((H, W), bool))),
        ("box outside the image", Region("outside", box=(500, 500, 600, 600))),
        ("NaN score", Region("nan_score", box=(0, 0, 10, 10))),
    ],
)
def test_bad_regions_rejected_others_described(harness, case, region):
    h = harness
    stamp = 9_000_000_000 + abs(hash(case)) % 1_000_000
    msg = regions_msg([region, Region(f"good_{stamp}", box=(1, 1, 11, 11))], stamp)
    if case == "NaN score":
        msg.regions[0].score = float("nan")
    if case == "mask of the wrong size":  # neither the frame's 64x48 nor the box's 10x10
        from gar_ros.ros.images import array_to_imgmsg

        msg.regions[0].mask = array_to_imgmsg(np.full((5, 7), 255, np.uint8), "mono8")
    if case == "empty mask":
        m = msg.regions[0].mask
        msg.regions[0].mask = image_msg(np.zeros((H, W, 3), np.uint8), 0, encoding="rgb8")
        msg.regions[0].mask.encoding, msg.regions[0].mask.step = "mono8", W
        msg.regions[0].mask.data = bytes(W * H)
        del m
    before = _counter(h, "regions_rejected")
    h.pub_image.publish(image_msg(make_image(W, H), stamp))
    h.pub_regions.publish(msg)
    assert wait_for(lambda: any(m.header.stamp == ns_to_stamp(stamp) for m in h.descriptions))
    described = next(m for m in h.descriptions if m.header.stamp == ns_to_stamp(stamp))
    assert [d.id for d in described.descriptions] == [f"good_{stamp}"]
    assert _counter(h, "regions_rejected") == before + 1
    needle = {"mask of the wrong size": "mask is 5x7", "empty mask": "empty", "box outside the image": "outside",
              "NaN score": "score is nan"}[case]
    assert any(needle in p for p in h.node.pipeline.snapshot().problems)


def test_bad_duplicate_region_ids(harness):
    h = harness
    stamp = 9_500_000_000
    before = _counter(h, "regions_rejected")
    _send(h, stamp, regions=[Region("dup", box=(0, 0, 10, 10)), Region("dup", box=(20, 20, 30, 30))])
    assert wait_for(lambda: any(m.header.stamp == ns_to_stamp(stamp) for m in h.descriptions))
    described = next(m for m in h.descriptions if m.header.stamp == ns_to_stamp(stamp))
    assert [(d.id, d.box.x_offset) for d in described.descriptions] == [("dup", 0)]
    assert _counter(h, "regions_rejected") == before + 1


def test_bad_100_queries_in_one_second(harness):
    h = harness
    _send(h, 9_800_000_000)
    assert wait_for(lambda: any(m.header.stamp == ns_to_stamp(9_800_000_000) for m in h.descriptions))
    gate = threading.Event()
    h.model.gate = gate  # the first query blocks the worker while the other 99 arrive
    h.model.gate_timeout = 60.0  # held until every BUSY answer is in, however loaded the machine
    h.model.started.clear()
    try:
        ids = [f"burst-{k}" for k in range(100)]
        t0 = time.monotonic()
        for qid in ids:
            h.pub_query.publish(Query(query_id=qid, question="what is <region:7>?"))
            time.sleep(0.008)
        sent = time.monotonic() - t0
        assert wait_for(lambda: len({a.query_id for a in h.answers} & set(ids)) >= 91, 30)
    finally:
        h.model.gate = None
        h.model.gate_timeout = 10.0
        gate.set()
    assert wait_for(lambda: len({a.query_id for a in h.answers} & set(ids)) == 100, 30)
    statuses = [next(a.status for a in h.answers if a.query_id == qid) for qid in ids]
    assert set(statuses) == {Answer.OK, Answer.BUSY}, sent
    assert statuses.count(Answer.OK) == 1 + 8  # the running one + a full queue (query_queue_size 8)
    assert h.node.pipeline.running


def test_diagnostics_report_problems_and_stages(harness):
    h = harness
    assert wait_for(lambda: _diag_value(h.diags, "bad_images") is not None, 5)
    assert int(_diag_value(h.diags, "bad_images")) >= 1
    assert _diag_value(h.diags, "model") == "recording-test-double"
    assert _diag_value(h.diags, "backend") == "torch"
    assert _diag_value(h.diags, "queue_queries") is not None
    assert float(_diag_value(h.diags, "convert_ms_mean")) >= 0
    assert float(_diag_value(h.diags, "describe_ms_mean")) >= 0
    assert _diag_value(h.diags, "image_converter") in ("internal", "cv_bridge")


def test_debug_image_only_when_subscribed(harness):
    h = harness
    assert h.node.pub_debug.get_subscription_count() == 0
    debug = h.subscribe(Image, "/gar_node/debug_image")
    assert wait_for(lambda: h.node.pub_debug.get_subscription_count() == 1)
    _send(h, 9_900_000_000, regions=[Region("dbg", box=(5, 5, 30, 30), label="thing")])
    assert wait_for(lambda: len(debug) >= 1)
    img = debug[-1]
    assert (img.width, img.height, img.encoding) == (W, H, "rgb8")
    assert img.header.stamp == ns_to_stamp(9_900_000_000)


def test_compressed_input_and_corrupt_jpeg():
    from gar_ros.ros.images import rgb_to_compressed

    model = RecordingModel()
    with spin_node(model, params={"use_compressed": True}, name="gar_node_c") as h:
        descriptions = h.subscribe(RegionDescriptionArray, "/gar_node_c/descriptions")
        pub = h.publisher(CompressedImage, "/image/compressed")
        pub_r = h.publisher(RegionArray, "/regions")
        h.wait_matched(pub)
        h.wait_matched(pub_r)
        bad = CompressedImage(header=header(1), format="jpeg", data=b"\xff\xd8\xff\xe0garbage!")
        pub.publish(bad)
        assert wait_for(lambda: h.node.pipeline.snapshot().counters.get("bad_images", 0) == 1)
        assert "cannot be decoded" in h.node.pipeline.snapshot().problems[-1]
        for fmt, stamp in (("jpeg", 11), ("png", 12)):
            pub.publish(rgb_to_compressed(make_image(W, H), header(stamp), fmt))
            pub_r.publish(regions_msg([Region(f"c{stamp}", box=(0, 0, 20, 20))], stamp))
            assert wait_for(lambda: any(m.header.stamp == ns_to_stamp(stamp) for m in descriptions))


def test_latest_frame_policy_at_30hz_with_slow_inference():
    model = RecordingModel(delay=0.2)
    # every frame arrives: reliable with histories deep enough that a busy 2-core machine loses none
    params = {"redescribe_period": 0.0, "input_reliability": "reliable", "input_depth": 100}
    with spin_node(model, params=params, name="gar_node_rate") as h:
        descriptions = h.subscribe(RegionDescriptionArray, "/gar_node_rate/descriptions")
        pub = h.publisher(Image, "/image", DEEP_RELIABLE)
        pub_r = h.publisher(RegionArray, "/regions", DEEP_RELIABLE)
        h.wait_matched(pub)
        h.wait_matched(pub_r)
        img = make_image(W, H)
        n = 45
        for k in range(1, n + 1):
            stamp = k * 33_333_333
            pub.publish(image_msg(img, stamp))
            pub_r.publish(regions_msg([Region(f"t{k}", box=(0, 0, 10, 10))], stamp))
            time.sleep(1 / 30)
        last = ns_to_stamp(n * 33_333_333)
        assert wait_for(lambda: any(m.header.stamp == last for m in descriptions), 5)
        time.sleep(0.3)
        counters = h.node.pipeline.snapshot().counters
        assert len(descriptions) < n / 2  # no backlog
        assert counters["frames_joined"] == n
        assert counters["frames_dropped"] + counters.get("frames_stale", 0) == n - len(descriptions)
        stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in descriptions]
        assert stamps == sorted(stamps)


def test_lifecycle_transitions():
    from lifecycle_msgs.msg import State

    model = RecordingModel()
    with spin_node(model, name="gar_node_lc", autostart=False) as h:
        node = h.node
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
        assert node.pipeline is None
        node.trigger_configure()
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_INACTIVE
        assert node.pipeline is not None and not node.pipeline.running
        node.trigger_activate()
        assert node.active and node.pipeline.running
        node.trigger_deactivate()
        assert not node.active and not node.pipeline.running
        node.trigger_activate()
        assert node.pipeline.running
        node.trigger_deactivate()
        node.trigger_cleanup()
        assert node.pipeline is None and node.model is None
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
        # configured again after a cleanup, the node answers queries (not "node shutting down")
        from gar_ros.srv import Ask

        node.trigger_configure()
        node.trigger_activate()
        assert node.active and node.pipeline.running
        pub = h.publisher(Image, "/image", RELIABLE)
        pub_r = h.publisher(RegionArray, "/regions", RELIABLE)
        h.wait_matched(pub)
        h.wait_matched(pub_r)
        pub.publish(image_msg(make_image(W, H), 7))
        pub_r.publish(regions_msg([Region("7", box=(2, 2, 20, 20))], 7))
        assert wait_for(lambda: node.pipeline.snapshot().counters.get("frames_joined", 0) >= 1)
        model.delay = 0.3  # the answer takes longer than one wait step of the service callback
        client = h.client.create_client(Ask, "/gar_node_lc/ask")
        assert client.wait_for_service(timeout_sec=5.0)
        future = client.call_async(Ask.Request(question="what is <region:7>?"))
        assert wait_for(future.done, 10.0)
        response = future.result()
        assert response.status == Answer.OK, response.message


def test_configure_fails_cleanly_on_missing_model(tmp_path):
    from lifecycle_msgs.msg import State

    with spin_node(None, params={"model_path": str(tmp_path / "nope")}, name="gar_node_bad",
                   autostart=False) as h:
        h.node.trigger_configure()
        assert h.node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
        assert h.node.pipeline is None


@pytest.mark.parametrize("kind", ["service", "action"])
def test_shutdown_with_a_query_inside_the_model(kind, capfd):
    """Closing the node while a ~/ask call (or an ~/ask_stream goal) waits on a model call that
    outlives the close: the waiting callback answers ERROR and returns before the interfaces are
    destroyed, so nothing raises inside rclpy afterwards (it used to: "cannot use Destroyable")."""
    import gc

    from rclpy.action import ActionClient

    from gar_ros.action import Ask as AskAction
    from gar_ros.srv import Ask

    model = RecordingModel()
    gate = threading.Event()
    name = f"gar_node_close_{kind}"
    try:
        with spin_node(model, name=name) as h:
            pub = h.publisher(Image, "/image", RELIABLE)
            pub_r = h.publisher(RegionArray, "/regions", RELIABLE)
            h.wait_matched(pub)
            h.wait_matched(pub_r)
            pub.publish(image_msg(make_image(W, H), 5))
            pub_r.publish(regions_msg([Region("7", box=(2, 2, 20, 20))], 5))
            assert wait_for(lambda: h.node.pipeline.snapshot().counters.get("frames_joined", 0) >= 1)
            assert wait_for(lambda: not h.node.pipeline.busy)
            model.gate = gate
            model.started.clear()
            if kind == "service":
                client = h.client.create_client(Ask, f"/{name}/ask")
                assert client.wait_for_service(timeout_sec=5.0)
                client.call_async(Ask.Request(question="what is <region:7>?"))
            else:
                client = ActionClient(h.client, AskAction, f"/{name}/ask_stream")
                assert client.wait_for_server(timeout_sec=5.0)
                client.send_goal_async(AskAction.Goal(question="what is <region:7>?"))
            assert model.started.wait(5.0)
            t0 = time.monotonic()
        closed_in = time.monotonic() - t0
    finally:
        gate.set()  # the model call ends after the node is gone
    time.sleep(0.3)
    gc.collect()
    err = capfd.readouterr().err
    assert "never retrieved" not in err and "Destroyable" not in err, err[-2000:]
    assert closed_in < 6.0
