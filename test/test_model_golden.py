"""Golden outputs of the seed-0 tiny checkpoint on GAR's demo images.

The expected values live in test/data/model_golden.json. Regenerate them on purpose only:
``GAR_ROS_REGEN_GOLDEN=1 python -m pytest test/test_model_golden.py`` (then review the diff).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from _model_helpers import data_dir, tiny_checkpoint
from gar_ros.model import GarModel
from gar_ros.model.cli import load_image, load_mask
from gar_ros.types import Region

torch.set_num_threads(1)
GOLDEN = Path(__file__).resolve().parent / "data" / "model_golden.json"
DEMO = data_dir() / "gar_demo"
pytestmark = pytest.mark.skipif(not DEMO.is_dir(), reason=f"demo data not found at {DEMO}")


def _compute() -> dict[str, object]:
    model = GarModel.from_pretrained(tiny_checkpoint(0))
    image = load_image(DEMO / "demo_image_1.png")
    region = Region("frog", mask=load_mask(DEMO / "demo_mask_1.png"))
    prepared = model.prepare_describe(image, region)
    described = model.describe(image, [region], max_new_tokens=8)[0]
    image3 = load_image(DEMO / "demo_image_3.png")
    regions3 = [Region(f"m{i}", mask=load_mask(DEMO / f"demo_mask_3_{i}.png")) for i in range(3)]
    question = "What is the relationship between <Prompt0>, <Prompt1> and <Prompt2>?"
    answer = model.ask(image3, regions3, question, max_new_tokens=8)
    return {
        "describe_demo_1": {
            "image_size": [int(image.shape[1]), int(image.shape[0])],
            "grid": list(prepared.grid),
            "num_input_ids": int(prepared.input_ids.numel()),
            "box": [round(v, 6) for v in prepared.boxes[1]],
            "token_ids": described.token_ids,
        },
        "ask_demo_3": {"question": question, "token_ids": answer.token_ids},
    }


def test_golden_tiny_outputs() -> None:
    got = _compute()
    if os.environ.get("GAR_ROS_REGEN_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert got == expected
