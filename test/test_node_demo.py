"""The demo (``python -m gar_ros.demo``) runs end to end over real DDS and exits 0."""
from __future__ import annotations

import pytest

pytest.importorskip("rclpy")

from _pipeline_helpers import model_available  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow,
              pytest.mark.skipif(not model_available(), reason="gar_ros.model is not available")]


def test_demo_runs_and_prints_descriptions_and_answers(capsys):
    from gar_ros.demo import main

    assert main(["--max-new-tokens", "3", "--timeout", "60"]) == 0
    out = capsys.readouterr().out
    assert "[synthetic scene 3]" in out
    assert "[service ~/ask" in out and "[action ~/ask_stream" in out
    assert out.count("-> OK") == 2, out
    assert "region s3_obj0" in out
