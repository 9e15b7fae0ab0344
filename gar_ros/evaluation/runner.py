"""``bag-eval`` end to end: load the model, replay (or run live), grade, write every file."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gar_ros.evaluation.replay import ReplayOptions, Replayer, iter_ground_truth_file

log = logging.getLogger(__name__)


def load_model(model: str | Path | None, *, backend: str = "torch", device: str = "cpu") -> Any:
    """A GarModel from ``model`` (a checkpoint directory) or the embedded tiny model when None,
    loaded the way the node loads it (``gar_ros.pipeline.models``)."""
    from gar_ros.pipeline.models import load_model as pipeline_load_model

    return pipeline_load_model(str(model) if model else None, backend=backend, device=device)


def evaluate_bag(
    bag: str | Path,
    out: str | Path,
    *,
    model: str | Any | None = None,
    backend: str = "torch",
    device: str = "cpu",
    image_topic: str | None = None,
    regions_topic: str | None = None,
    queries_topic: str | None = None,
    gt_topic: str | None = None,
    gt: str | Path | None = None,
    describe: str = "all",
    realtime: bool = False,
    speed: float = 1.0,
    live: bool = False,
    node: str = "/gar_node",
    wait: float = 10.0,
    live_image_topic: str | None = None,
    live_regions_topic: str = "/regions",
    max_new_tokens: int = 0,
    storage: str | None = None,
    copy_inputs: bool = True,
    progress: bool | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Evaluate ``bag`` into directory ``out``; returns the outputs.json document (+ ``grade``).

    ``model``: a directory, None (embedded tiny model) or an already loaded model object.
    """
    from gar_ros.evaluation.report import write_all

    from gar_ros.evaluation.bagio import BagReader

    with BagReader(bag):  # a missing or broken bag fails here, before the model loads
        pass
    extra_gt = list(iter_ground_truth_file(gt)) if gt else None
    options = ReplayOptions(image_topic=image_topic, regions_topic=regions_topic, queries_topic=queries_topic,
                            gt_topic=gt_topic, describe=describe, realtime=realtime, speed=speed,
                            max_new_tokens=max_new_tokens, progress=progress)
    if live:
        from gar_ros.evaluation.live import run_live

        result = run_live(bag, options, node=node, wait=wait, extra_gt=extra_gt, image_topic=live_image_topic,
                          regions_topic=live_regions_topic)
    else:
        m = load_model(model, backend=backend, device=device) if model is None or isinstance(model, (str, Path)) else model
        result = Replayer(m, options, backend=backend).run(bag, extra_gt)
    return write_all(result, out, storage=storage, copy_inputs=copy_inputs, plots=plots)
