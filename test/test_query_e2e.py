"""End to end: generated relational questions about synthetic scenes, asked through the gar_node's
``~/ask`` service (real rclpy, localhost DDS) and answered by the embedded tiny GAR model.

Scenes are published as image + RegionArray; every fourth scene has no labels, so that grounding
must use the model's own captions of the regions. Ground truth comes from the objects' centroids
(test/_query_helpers.py), independently of gar_ros.query. Prints the figures; asserts the answer
names the right object in >= 80 % and the region ids (target, anchor) are right in >= 95 %.
"""
from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _query_helpers import generate_questions, named_right, scene_regions  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

N_QUESTIONS = int(os.environ.get("GAR_ROS_QUERY_E2E_N", "100"))


@pytest.fixture(scope="module")
def tiny_model():
    from gar_ros.errors import CheckpointError
    from gar_ros.pipeline.models import load_model

    try:
        return load_model(os.environ.get("GAR_ROS_QUERY_E2E_MODEL", ""))
    except CheckpointError as err:
        pytest.skip(f"the embedded tiny model is not available: {err}")


def _call(harness, client, request, timeout: float = 60.0):
    future = client.call_async(request)
    end = time.monotonic() + timeout
    while not future.done() and time.monotonic() < end:
        time.sleep(0.005)
    if not future.done():
        raise AssertionError(f"no answer to {request.question!r} within {timeout} s")
    return future.result()


def test_relational_questions_through_the_node_service(tiny_model) -> None:
    from _node_helpers import image_msg, regions_msg, spin_node, wait_for
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from gar_ros.msg import RegionArray, RegionDescriptionArray
    from gar_ros.ros.regions import ns_to_stamp, stamp_to_ns
    from gar_ros.srv import Ask

    scenes, questions = generate_questions(N_QUESTIONS)
    by_scene = defaultdict(list)
    for q in questions:
        by_scene[q.scene_index].append(q)
    params = {"max_regions_per_frame": 0, "max_frame_age": 0.0, "input_reliability": "reliable",
              "service_timeout": 60.0}
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    rows = []
    with spin_node(model=tiny_model, params=params) as h:
        images = h.publisher(Image, "image", reliable)
        regions_pub = h.publisher(RegionArray, "regions", reliable)
        described = h.subscribe(RegionDescriptionArray, "gar_node/descriptions")
        client = h.client.create_client(Ask, "gar_node/ask")
        assert client.wait_for_service(timeout_sec=10.0), "no ~/ask service"
        h.wait_matched(images)
        h.wait_matched(regions_pub)
        for k, scene in enumerate(scenes):
            stamp = (k + 1) * 1_000_000_000
            labelled = by_scene[k][0].labelled
            images.publish(image_msg(scene.image, stamp))
            regions_pub.publish(regions_msg(scene_regions(scene, k, labelled), stamp))
            wait_for(lambda: any(stamp_to_ns(m.header.stamp) == stamp for m in described), 10.0)
            for q in by_scene[k]:
                request = Ask.Request(question=q.question, stamp=ns_to_stamp(stamp))
                response = _call(h, client, request)
                ids = list(response.region_ids)
                rows.append((q, response.status, response.answer, ids, response.message))
        # The same kind of question through the streaming action: the feedback grows towards the
        # final answer, which equals the service's answer to the same question.
        from rclpy.action import ActionClient

        from gar_ros.action import Ask as AskAction

        q = by_scene[len(scenes) - 1][0]
        service_text = rows[-len(by_scene[len(scenes) - 1])][2]
        action = ActionClient(h.client, AskAction, "gar_node/ask_stream")
        assert action.wait_for_server(timeout_sec=10.0)
        feedback: list[str] = []
        goal = AskAction.Goal(question=q.question, stamp=ns_to_stamp(len(scenes) * 1_000_000_000))
        goal_future = action.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback.text))
        assert wait_for(goal_future.done, 30.0)
        result_future = goal_future.result().get_result_async()
        assert wait_for(result_future.done, 60.0)
        result = result_future.result().result
        assert result.answer == service_text
        assert wait_for(lambda: bool(feedback) and feedback[-1] == result.answer, 5.0)
        action.destroy()

    n = len(rows)
    named = [named_right(q, text) and status == 0 for q, status, text, _, _ in rows]
    ids_ok = [ids == [q.target, q.anchor] for q, _, _, ids, _ in rows]
    # What the model itself says about each right target region (its description prompt, or the
    # attribute question): the ceiling of any grounding, since the answer can only repeat it.
    oracle = []
    for q, *_ in rows:
        scene = scenes[q.scene_index]
        region = scene_regions(scene, q.scene_index, True)[int(q.target.rsplit("o", 1)[1])]
        if q.check == "object":
            text = tiny_model.describe(scene.image, [region], max_new_tokens=16)[0].text
        else:
            template = "What color is <Prompt0>?" if q.check == "colour" else "What shape is <Prompt0>?"
            text = tiny_model.ask(scene.image, [region], template, max_new_tokens=8).text
        oracle.append(named_right(q, text))
    print(f"\nrelational questions through ~/ask with the embedded tiny model: {n}")
    print(f"  answer names the right object: {sum(named)}/{n} = {100 * sum(named) / n:.1f} %")
    print(f"  region ids right (target, anchor): {sum(ids_ok)}/{n} = {100 * sum(ids_ok) / n:.1f} %")
    print(f"  the model itself names the right target region: {sum(oracle)}/{n} = "
          f"{100 * sum(oracle) / n:.1f} % (ceiling of the first figure)")
    for label, keep in (("labelled regions", True), ("unlabelled (caption grounding)", False)):
        sel = [i for i, row in enumerate(rows) if row[0].labelled is keep]
        if sel:
            print(f"  {label}: named {sum(named[i] for i in sel)}/{len(sel)}, "
                  f"ids {sum(ids_ok[i] for i in sel)}/{len(sel)}")
    for check in ("object", "colour", "shape"):
        sel = [i for i, row in enumerate(rows) if row[0].check == check]
        if sel:
            print(f"  asks for {check}: named {sum(named[i] for i in sel)}/{len(sel)}")
    for (q, status, text, ids, message), good_name, good_ids in zip(rows, named, ids_ok):
        if not (good_name and good_ids):
            print(f"  miss: {q.question!r} -> status {status} {text!r} ids {ids} "
                  f"(want {q.colour} {q.shape}, ids {[q.target, q.anchor]}) {message}")
    assert n >= 100 or N_QUESTIONS < 100
    assert sum(ids_ok) / n >= 0.95
    # Where the ids are right, the answer names the object as well as the model itself does.
    right = [i for i in range(n) if ids_ok[i]]
    assert sum(named[i] for i in right) >= sum(oracle[i] for i in right) - 0.05 * len(right)
    assert sum(named) / n >= 0.80, (f"named {100 * sum(named) / n:.1f} % < 80 % (the embedded model "
                                    f"itself names {100 * sum(oracle) / n:.1f} % of these targets right)")


def test_multiple_choice_resolves_geometric_ties(tiny_model) -> None:
    """With tie margins so wide that geometry cannot rank ("the leftmost object" ties all), the
    model's multiple-choice answer (GAR-Bench layout, <Prompt0..3>) picks the region."""
    import numpy as np

    from gar_ros.query import QueryConfig, answer_question
    from gar_ros.synthetic import generate_scene

    from _query_helpers import centroid

    cfg = QueryConfig(position_tie_frac=10.0, area_tie_frac=10.0)
    keys = {
        "leftmost": lambda o: centroid(o.mask)[0], "rightmost": lambda o: -centroid(o.mask)[0],
        "topmost": lambda o: centroid(o.mask)[1], "bottommost": lambda o: -centroid(o.mask)[1],
        "largest": lambda o: -np.log(o.area), "smallest": lambda o: np.log(o.area),
    }
    rng = np.random.default_rng(11)
    rows = []
    seed = 8_000_000
    while len(rows) < 30:
        seed += 1
        scene = generate_scene(seed, n_objects=int(rng.integers(2, 5)))
        word = list(keys)[len(rows) % len(keys)]
        vals = sorted((keys[word](o), i) for i, o in enumerate(scene.objects))
        margin = np.log(1.35) if word in ("largest", "smallest") else 0.08 * min(scene.image.shape[:2])
        if vals[1][0] - vals[0][0] < margin:
            continue
        regions = scene.regions()
        answer = answer_question(tiny_model, scene.image, regions, f"What is the {word} object?",
                                 config=cfg, frame_key=f"mc{seed}")
        rows.append((word, scene.objects[vals[0][1]].id, answer))
    chosen = [a.status == 0 and a.region_ids[:1] == [truth] for _, truth, a in rows]
    by_model = ["the model chose" in a.message for _, _, a in rows]
    # The model's own accuracy on the same multiple-choice task (prompted regions, held-out seeds).
    from gar_ros.synthetic import is_correct, make_choice

    own = 0
    for k in range(30):
        sample = make_choice(8_100_000 + k, kind=list(keys)[k % len(keys)])
        own += is_correct(sample, tiny_model.ask(sample.image, sample.regions, sample.question,
                                                 max_new_tokens=4).text)
    print(f"\nmultiple choice over tied candidates: right {sum(chosen)}/{len(rows)} "
          f"({100 * sum(chosen) / len(rows):.1f} %), decided by the model {sum(by_model)}/{len(rows)}; "
          f"the model's own multiple-choice accuracy on these kinds: {own}/30")
    assert all(by_model)
    if sum(chosen) / len(rows) < 0.75:
        if own / 30 < 0.75:
            pytest.xfail(f"{100 * sum(chosen) / len(rows):.1f} % < 75 %: the embedded model answers its own "
                         f"multiple-choice task right only {100 * own / 30:.1f} % of the time")
        raise AssertionError(f"multiple choice right {100 * sum(chosen) / len(rows):.1f} % < 75 %")
