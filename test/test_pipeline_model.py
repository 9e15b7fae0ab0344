"""The pipeline with a real GAR model (tiny random checkpoint, CPU): descriptions, answers,
streaming, cancel, determinism, video context; on synthetic scenes and the GAR demo image."""
from __future__ import annotations

import numpy as np
import pytest

from gar_ros.pipeline import Frame, Pipeline, PipelineConfig, QueryRequest, RegionSet
from gar_ros.types import AnswerStatus, Region

from _pipeline_helpers import model_available, shared_data_dir, tiny_model

pytestmark = pytest.mark.skipif(not model_available(), reason="gar_ros.model is not available")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.getbasetemp())


def _scene_inputs(seed: int, stamp: int):
    from gar_ros.synthetic import generate_scene

    scene = generate_scene(seed, n_objects=3)
    return Frame(scene.image, stamp, "cam"), RegionSet(stamp, scene.regions(), "cam"), scene


def _run(model, n_frames: int = 2, **config):
    batches, answers = [], []
    p = Pipeline(model, PipelineConfig(max_new_tokens=6, query_max_new_tokens=6, **config),
                 synchronous=True, on_descriptions=batches.append, on_answer=answers.append)
    for k in range(n_frames):
        frame, regions, _ = _scene_inputs(k, (k + 1) * 10**9)
        p.add_frame(frame)
        p.add_regions(regions)
    return p, batches, answers


def test_descriptions_from_the_model(model):
    _, batches, _ = _run(model)
    assert [b.stamp for b in batches] == [10**9, 2 * 10**9]
    batch = batches[0]
    assert batch.frame_id == "cam"
    assert [d.region.id for d in batch.descriptions] == [r.id for r in batch.regions]
    for d in batch.descriptions:
        assert d.text.text and 0 < len(d.text.token_ids) <= 6
        assert d.text.frame_stamps == [batch.stamp]
    assert batch.inference_time > 0
    assert batches[1].descriptions == []  # same track ids one second later: not described again


def test_same_inputs_same_outputs(model):
    _, first, _ = _run(model)
    _, second, _ = _run(model)
    texts = [[(d.region.id, d.text.token_ids) for d in b.descriptions] for b in first]
    assert texts[0]
    assert texts == [[(d.region.id, d.text.token_ids) for d in b.descriptions] for b in second]


def test_answer_streams_and_cancels(model):
    p, _, answers = _run(model, n_frames=1, query_grounding=False)
    rid = p.store.latest_joined().regions[1].id
    streamed: list[str] = []
    result = p.submit_query(QueryRequest(f"what is <region:{rid}>?",
                                         on_text=lambda t: streamed.append(t) or True)).result(0)
    assert result.answer.status == AnswerStatus.OK and result.answer.region_ids == [rid]
    assert streamed and streamed[-1] == result.answer.text
    assert len(streamed) == len(result.answer.token_ids)
    stop_after_two = p.submit_query(QueryRequest(f"what is <region:{rid}>?",
                                                 on_text=lambda t: len(t.split()) < 2)).result(0)
    assert len(stop_after_two.answer.token_ids) == 2
    assert [a.query_id for a in answers] == [result.query_id, stop_after_two.query_id]


def test_natural_language_question_is_grounded(model):
    pytest.importorskip("gar_ros.query")
    p, _, _ = _run(model, n_frames=1)
    joined = p.store.latest_joined()
    label = joined.regions[0].label  # e.g. "red square": labels are colour + shape
    result = p.submit_query(QueryRequest(f"what is the {label}?")).result(0)
    assert result.answer.status == AnswerStatus.OK, result.answer.message
    assert result.answer.region_ids[0] == joined.regions[0].id


def test_video_context_uses_recent_frames(model):
    pytest.importorskip("gar_ros.context")
    from gar_ros.synthetic import generate_clip

    clip = generate_clip(5, n_frames=4)
    batches = []
    p = Pipeline(model, PipelineConfig(max_new_tokens=4, context_frames=3, redescribe_period=0.05),
                 synchronous=True, on_descriptions=batches.append)
    for k, scene in enumerate(clip):
        stamp = (k + 1) * 200_000_000
        p.add_frame(Frame(scene.image, stamp, "cam"))
        p.add_regions(RegionSet(stamp, scene.regions(), "cam"))
    last = batches[-1]
    assert last.descriptions, "the last frame's regions are due again"
    used = last.descriptions[0].text.frame_stamps
    assert 2 <= len(used) <= 3 and used[-1] == last.stamp and used == sorted(used)
    rid = last.descriptions[0].region.id
    encoded = p.context.frames_encoded
    assert encoded > 0
    r = p.submit_query(QueryRequest(f"which way did <region:{rid}> move: left or right?")).result(0)
    assert r.answer.status == AnswerStatus.OK and r.answer.region_ids == [rid]
    assert p.context.frames_encoded == encoded  # the clip's frames were encoded once, reused


def test_gar_demo_image_with_masks(model):
    import cv2

    demo = shared_data_dir() / "gar_demo"
    if not (demo / "demo_image_3.png").is_file():
        pytest.skip(f"GAR demo data not found under {demo}")
    image = cv2.cvtColor(cv2.imread(str(demo / "demo_image_3.png")), cv2.COLOR_BGR2RGB)
    regions = []
    for k in range(3):
        mask = cv2.imread(str(demo / f"demo_mask_3_{k}.png"), cv2.IMREAD_GRAYSCALE) > 0
        regions.append(Region(f"obj{k}", mask=mask))
    batches = []
    p = Pipeline(model, PipelineConfig(max_new_tokens=4, query_grounding=False), synchronous=True,
                 on_descriptions=batches.append)
    p.add_frame(Frame(image, 1, "demo"))
    p.add_regions(RegionSet(1, regions, "demo"))
    assert [d.region.id for d in batches[0].descriptions] == ["obj0", "obj1", "obj2"]
    q = ("What is the relationship between <region:obj0>, <region:obj1> and <region:obj2>?")
    r = p.submit_query(QueryRequest(q, max_new_tokens=4)).result(0)
    assert r.answer.status == AnswerStatus.OK and r.answer.region_ids == ["obj0", "obj1", "obj2"]
    assert np.array_equal(batches[0].image, image)
