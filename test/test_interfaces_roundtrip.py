"""Every gar_ros message, service and action round-trips through real DDS (Fast DDS, localhost,
a test-private domain): publisher → subscriber, service client → server, action client → server."""
from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("rclpy")
import rclpy  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.action import ActionClient, ActionServer  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import RegionOfInterest  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from gar_ros.action import Ask as AskAction  # noqa: E402
from gar_ros.msg import (  # noqa: E402
    Answer,
    Query,
    Region,
    RegionArray,
    RegionDescription,
    RegionDescriptionArray,
)
from gar_ros.ros.images import array_to_imgmsg  # noqa: E402
from gar_ros.srv import Ask  # noqa: E402

from _node_helpers import RELIABLE, wait_for  # noqa: E402

pytestmark = pytest.mark.ros

HEADER = Header(stamp=Time(sec=1_700_000_000, nanosec=123_456_789), frame_id="camera_optical")


def _region(rid: str) -> Region:
    mask = np.zeros((4, 6), np.uint8)
    mask[1:3, 2:5] = 255
    return Region(id=rid, label="cup", score=0.75,
                  box=RegionOfInterest(x_offset=10, y_offset=20, width=6, height=4),
                  mask=array_to_imgmsg(mask, "mono8"), depth=1.5)


SAMPLES = {
    "Region": _region("track_1"),
    "RegionArray": RegionArray(header=HEADER, regions=[_region("a"), _region("b")]),
    "RegionDescription": RegionDescription(
        id="a", label="cup", box=RegionOfInterest(x_offset=1, y_offset=2, width=3, height=4),
        text="A red mug with a handle.", frame_stamps=[Time(sec=1), Time(sec=2, nanosec=5)]),
    "RegionDescriptionArray": RegionDescriptionArray(
        header=HEADER,
        descriptions=[RegionDescription(id="a", text="é ü 中文"), RegionDescription(id="b", text="")],
        model="tiny_gar", backend="torch", latency=0.25, inference_time=0.125),
    "Query": Query(query_id="q1", question="what is <region:a>?", region_ids=["b"], stamp=Time(sec=3)),
    "Answer": Answer(header=HEADER, query_id="q1", question="what is <region:a>?", answer="A mug.",
                     region_ids=["a", "b"], status=Answer.AMBIGUOUS, message="two mugs"),
}


@pytest.fixture(scope="module")
def ros():
    """(context, spinning executor) shared by the tests of this module."""
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield context, executor
    executor.shutdown(timeout_sec=1.0)
    rclpy.try_shutdown(context=context)
    thread.join(2.0)


@pytest.fixture(scope="module")
def nodes(ros):
    context, executor = ros
    server = Node("iface_server", context=context)
    client = Node("iface_client", context=context)
    executor.add_node(server)
    executor.add_node(client)
    yield server, client
    for node in (server, client):
        executor.remove_node(node)
        node.destroy_node()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_message_pub_sub(nodes, name):
    server, client = nodes
    sample = SAMPLES[name]
    got: list = []
    topic = f"/iface_test/{name.lower()}"
    sub = server.create_subscription(type(sample), topic, got.append, RELIABLE)
    pub = client.create_publisher(type(sample), topic, RELIABLE)
    assert wait_for(lambda: pub.get_subscription_count() == 1)
    pub.publish(sample)
    assert wait_for(lambda: len(got) == 1)
    assert got[0] == sample
    client.destroy_publisher(pub)
    server.destroy_subscription(sub)


def test_answer_constants_match_types():
    from gar_ros.types import AnswerStatus

    for status in AnswerStatus:
        assert getattr(Answer, status.name) == status.value
        assert getattr(Ask.Response, status.name) == status.value
        assert getattr(AskAction.Result, status.name) == status.value


def test_service_round_trip(nodes):
    server, client = nodes

    def handle(req, resp):
        resp.header = HEADER
        resp.question = req.question
        resp.answer = f"{len(req.region_ids)} regions at {req.stamp.sec}"
        resp.region_ids = list(req.region_ids)[::-1]
        resp.status = Ask.Response.NOT_FOUND
        resp.message = "none"
        return resp

    srv = server.create_service(Ask, "/iface_test/ask", handle)
    cli = client.create_client(Ask, "/iface_test/ask")
    assert cli.wait_for_service(timeout_sec=10)
    fut = cli.call_async(Ask.Request(question="q?", region_ids=["a", "b"], stamp=Time(sec=7)))
    assert wait_for(fut.done)
    resp = fut.result()
    assert (resp.header, resp.question, resp.answer) == (HEADER, "q?", "2 regions at 7")
    assert list(resp.region_ids) == ["b", "a"] and resp.status == Ask.Response.NOT_FOUND
    client.destroy_client(cli)
    server.destroy_service(srv)


def test_action_round_trip_with_feedback_and_cancel(ros):
    import time

    # rclpy's ActionClient/ActionServer are not safe to create on a node that an executor is
    # already spinning (their waitables can be polled half-built): make them on fresh nodes,
    # then hand the nodes to the executor.
    context, executor = ros
    server = Node("iface_action_server", context=context)
    client = Node("iface_action_client", context=context)

    def execute(goal_handle):
        words = goal_handle.request.question.split()
        text = ""
        for word in words:
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                return AskAction.Result(answer=text, status=AskAction.Result.ERROR, message="cancelled")
            text = (text + " " + word).strip()
            goal_handle.publish_feedback(AskAction.Feedback(text=text))
            time.sleep(0.05)
        goal_handle.succeed()
        return AskAction.Result(header=HEADER, question=goal_handle.request.question, answer=text,
                                region_ids=list(goal_handle.request.region_ids), status=AskAction.Result.OK)

    from rclpy.action import CancelResponse
    from rclpy.callback_groups import ReentrantCallbackGroup

    act = ActionServer(server, AskAction, "/iface_test/ask_stream", execute,
                       cancel_callback=lambda gh: CancelResponse.ACCEPT,
                       callback_group=ReentrantCallbackGroup())
    cli = ActionClient(client, AskAction, "/iface_test/ask_stream")
    executor.add_node(server)
    executor.add_node(client)
    assert cli.wait_for_server(timeout_sec=10)
    feedback: list[str] = []
    goal = AskAction.Goal(question="a b c", region_ids=["r"], stamp=Time(sec=1), max_new_tokens=9)
    fut = cli.send_goal_async(goal, feedback_callback=lambda fb: feedback.append(fb.feedback.text))
    assert wait_for(fut.done)
    res = fut.result().get_result_async()
    assert wait_for(res.done)
    result = res.result().result
    assert result.answer == "a b c" and list(result.region_ids) == ["r"] and result.header == HEADER
    assert wait_for(lambda: feedback == ["a", "a b", "a b c"], 2)

    feedback.clear()
    fut = cli.send_goal_async(AskAction.Goal(question=" ".join("w" * 100)),
                              feedback_callback=lambda fb: feedback.append(fb.feedback.text))
    assert wait_for(fut.done)
    handle = fut.result()
    assert wait_for(lambda: len(feedback) >= 2)
    cancel = handle.cancel_goal_async()
    assert wait_for(cancel.done)
    res = handle.get_result_async()
    assert wait_for(res.done)
    from action_msgs.msg import GoalStatus

    assert res.result().status == GoalStatus.STATUS_CANCELED
    assert res.result().result.message == "cancelled"
    for node in (server, client):
        executor.remove_node(node)
    cli.destroy()
    act.destroy()
    server.destroy_node()
    client.destroy_node()
