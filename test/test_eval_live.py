"""bag-eval --live: a real gar_node (subprocess, tiny random checkpoint) fed from a bag over DDS."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from _eval_helpers import STEP, T0, write_clean_bag
from _pipeline_helpers import read_until, start_node_process, stop_process
from gar_ros.cli import main

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture()
def node(tmp_path: Path):
    import torch

    torch.set_num_threads(1)
    from gar_ros.model.tiny import make_tiny

    ckpt = make_tiny(tmp_path / "tiny_gar", 2)
    name = f"gar_eval_live_{os.getpid()}"
    proc = start_node_process(name, {
        "model_path": ckpt, "max_new_tokens": 4, "query_max_new_tokens": 4, "redescribe_period": 0.001,
        "max_frame_age": 0.0, "image_topic": "/eval_live/image", "regions_topic": "/eval_live/regions"})
    try:
        log = read_until(proc, "active:", 120)
        if "active:" not in log:
            pytest.fail(f"gar_node did not become active:\n{log}")
        yield name
    finally:
        stop_process(proc)


def test_live_replay_records_the_node_outputs(node: str, tmp_path: Path) -> None:
    bag = write_clean_bag(tmp_path / "in", frames=3)
    out = tmp_path / "out"
    rc = main(["bag-eval", str(bag), "--out", str(out), "--live", "--node", f"/{node}",
               "--live-image-topic", "/eval_live/image", "--live-regions-topic", "/eval_live/regions",
               "--wait", "30", "--speed", "0.5", "--no-progress"])
    assert rc == 0
    doc = json.loads((out / "outputs.json").read_text())
    stamps = {T0 + k * STEP for k in range(3)}
    descs = [o for o in doc["outputs"] if o["kind"] == "description"]
    answers = [o for o in doc["outputs"] if o["kind"] == "answer"]
    assert descs and {o["stamp"] for o in descs} <= stamps  # stamped like the source frames
    assert {o["id"] for o in descs} <= {"a", "b"} and all(o["latency"] > 0 for o in descs)
    assert sorted(o["id"] for o in answers) == ["q0", "q1", "q2"], answers
    ok = [o for o in answers if o["status"] == "OK"]
    # a query that arrives before its frame is joined waits for it (pending_timeout); images are best
    # effort, so a dropped frame's query is NOT_FOUND; every answer that found its frame carries its stamp
    assert ok and {o["stamp"] for o in ok} <= stamps and all(o["latency"] > 0 for o in answers)
    assert all(o["status"] == "NOT_FOUND" and "no frame" in o["message"] for o in answers if o not in ok)
    assert doc["summary"]["frames"] == 3 and doc["summary"]["backend"] == "torch"
    c = doc["counters"]  # the node's own counters over the run, from /diagnostics
    assert 1 <= c["frames_received"] <= 3 and c["queries_received"] == 3  # images are best effort
    assert (out / "report.md").is_file()
