"""gar_node with a real model (tiny random checkpoint): in-process and as a subprocess started with
``python -m gar_ros.ros.node --ros-args ...``; service/action round trips; SIGINT shutdown time."""
from __future__ import annotations

import signal
import time

import pytest

pytest.importorskip("rclpy")
from sensor_msgs.msg import Image  # noqa: E402

from gar_ros.msg import Answer, RegionArray, RegionDescriptionArray  # noqa: E402
from gar_ros.ros.regions import ns_to_stamp  # noqa: E402
from gar_ros.types import Region  # noqa: E402

from _node_helpers import image_msg, regions_msg, spin_node, wait_for  # noqa: E402
from _pipeline_helpers import model_available, read_until, start_node_process, tiny_checkpoint  # noqa: E402

pytestmark = [
    pytest.mark.ros,
    pytest.mark.skipif(not model_available(), reason="gar_ros.model is not available"),
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.getbasetemp())


def _scene(seed: int = 1):
    from gar_ros.synthetic import generate_scene

    return generate_scene(seed, n_objects=3)


def test_node_loads_model_and_answers(checkpoint):
    """Configure loads model_path; descriptions, service and action use the real model."""
    from rclpy.action import ActionClient

    from gar_ros.action import Ask as AskAction
    from gar_ros.srv import Ask

    params = {"model_path": str(checkpoint), "max_new_tokens": 5, "query_max_new_tokens": 6,
              "query_grounding": False}
    with spin_node(None, params=params, name="gar_node_tiny") as h:
        assert h.node.active, "configure/activate failed"
        assert h.node.model_name == checkpoint.name
        descriptions = h.subscribe(RegionDescriptionArray, "/gar_node_tiny/descriptions")
        pub, pub_r = h.publisher(Image, "/image"), h.publisher(RegionArray, "/regions")
        h.wait_matched(pub)
        h.wait_matched(pub_r)
        assert wait_for(lambda: h.node.pub_descriptions.get_subscription_count() == 1)
        scene = _scene()
        stamp = 1_234_000_000_000
        pub.publish(image_msg(scene.image, stamp, "cam_optical", encoding="bgr8"))
        pub_r.publish(regions_msg(scene.regions(), stamp, "cam_optical"))
        assert wait_for(lambda: len(descriptions) >= 1, 30)
        msg = descriptions[0]
        assert msg.header.stamp == ns_to_stamp(stamp) and msg.header.frame_id == "cam_optical"
        assert [d.id for d in msg.descriptions] == [o.id for o in scene.objects]
        assert all(d.text for d in msg.descriptions) and msg.model == checkpoint.name
        assert msg.backend == "torch"  # the backend the model reports it runs
        assert msg.latency >= msg.inference_time > 0

        cli = h.client.create_client(Ask, "/gar_node_tiny/ask")
        assert cli.wait_for_service(timeout_sec=10)
        a, b = scene.objects[0].id, scene.objects[1].id
        fut = cli.call_async(Ask.Request(question=f"is <region:{a}> left of <region:{b}>?"))
        assert wait_for(fut.done, 30)
        resp = fut.result()
        assert resp.status == Answer.OK and list(resp.region_ids) == [a, b] and resp.answer
        assert resp.header.stamp == ns_to_stamp(stamp)

        act = ActionClient(h.client, AskAction, "/gar_node_tiny/ask_stream")
        assert act.wait_for_server(timeout_sec=10)
        feedback: list[str] = []
        goal_fut = act.send_goal_async(AskAction.Goal(question="describe it", region_ids=[b], max_new_tokens=4),
                                       feedback_callback=lambda fb: feedback.append(fb.feedback.text))
        assert wait_for(goal_fut.done, 10)
        res_fut = goal_fut.result().get_result_async()
        assert wait_for(res_fut.done, 30)
        result = res_fut.result().result
        assert result.status == Answer.OK and list(result.region_ids) == [b]
        assert wait_for(lambda: bool(feedback) and feedback[-1] == result.answer, 5)
        assert len(feedback) == 4
        act.destroy()


@pytest.mark.slow
def test_subprocess_node_and_sigint_shutdown_with_description_in_flight(checkpoint):
    import rclpy
    from rclpy.node import Node

    from gar_ros.srv import Ask

    proc = start_node_process("gar_node_sub", {
        "model_path": checkpoint, "max_new_tokens": 4, "describe_chunk": 64, "max_regions_per_frame": 64,
        "query_grounding": "false"})
    context = rclpy.Context()
    rclpy.init(context=context)
    client = Node("sub_test_client", context=context)
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=context)
    executor.add_node(client)
    try:
        log = read_until(proc, "active:", 120)
        assert "active:" in log, log
        got: list = []
        client.create_subscription(RegionDescriptionArray, "/gar_node_sub/descriptions", got.append, 10)
        pub = client.create_publisher(Image, "/image", 5)
        pub_r = client.create_publisher(RegionArray, "/regions", 5)
        cli = client.create_client(Ask, "/gar_node_sub/ask")

        def spin(cond, timeout):
            end = time.monotonic() + timeout
            while time.monotonic() < end and not cond():
                executor.spin_once(timeout_sec=0.05)
            return cond()

        assert spin(lambda: pub.get_subscription_count() and pub_r.get_subscription_count()
                    and cli.service_is_ready(), 30)
        scene = _scene(2)
        pub.publish(image_msg(scene.image, 5_000_000_000))
        pub_r.publish(regions_msg(scene.regions(), 5_000_000_000))
        assert spin(lambda: len(got) == 1, 30)
        assert [d.id for d in got[0].descriptions] == [o.id for o in scene.objects]
        fut = cli.call_async(Ask.Request(question=f"what is <region:{scene.objects[0].id}>?"))
        assert spin(fut.done, 30) and fut.result().status == Answer.OK

        # a long description: 60 regions x 400 tokens, then SIGINT while it runs
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        setp = client.create_client(SetParameters, "/gar_node_sub/set_parameters")
        assert spin(setp.service_is_ready, 10)
        f = setp.call_async(SetParameters.Request(
            parameters=[Parameter("max_new_tokens", value=400).to_parameter_msg()]))
        assert spin(f.done, 10) and f.result().results[0].successful
        big = [Region(f"r{k}", box=(k % 10 * 9, k // 10 * 15, k % 10 * 9 + 9, k // 10 * 15 + 15)) for k in range(60)]
        pub.publish(image_msg(scene.image, 6_000_000_000))
        pub_r.publish(regions_msg(big, 6_000_000_000))
        spin(lambda: False, 1.5)  # the description is now running
        assert proc.poll() is None
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=10)
        elapsed = time.monotonic() - t0
        rest = proc.stdout.read()
        assert rc == 0, rest
        assert elapsed < 2.0, f"shutdown took {elapsed:.2f} s"
        assert "still running at shutdown" in rest, rest  # the description was in flight
        assert not any(m.header.stamp == ns_to_stamp(6_000_000_000) for m in got)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        executor.shutdown(timeout_sec=1.0)
        client.destroy_node()
        rclpy.try_shutdown(context=context)
