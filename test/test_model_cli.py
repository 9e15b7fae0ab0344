"""``gar-ros make-tiny`` and ``gar-ros describe`` (in-process through gar_ros.cli.main)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _model_helpers import random_image, tiny_checkpoint
from gar_ros.cli import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def image_and_mask(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("cli")
    Image.fromarray(random_image(80, 120, seed=11)).save(d / "img.png")
    mask = np.zeros((80, 120), dtype=np.uint8)
    mask[10:50, 20:70] = 255
    Image.fromarray(mask).save(d / "mask.png")
    return d / "img.png", d / "mask.png"


def test_make_tiny_writes_official_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["make-tiny", str(tmp_path / "t"), "--seed", "3", "--layout", "compact"]) == 0
    files = {p.name for p in (tmp_path / "t").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"} <= files
    cfg = json.loads((tmp_path / "t" / "config.json").read_text())
    assert cfg["model_type"] == "GAR" and cfg["prompt_numbers"] == 5 and "mllm_config" in cfg
    assert max(cfg["crop_tokens_ids"]) < 1000  # compact layout: special tokens after the words
    from safetensors import safe_open

    with safe_open(str(tmp_path / "t" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert "mask_patch_embedding.weight" in keys and all(k.startswith(("mllm.", "mask_")) for k in keys)


def test_describe_json_and_dump(image_and_mask, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img, mask = image_and_mask
    model = str(tiny_checkpoint(0))
    rc = main(["describe", "--model", model, "--image", str(img), "--mask", str(mask), "--box", "60,40,110,75",
               "--max-new-tokens", "4", "--json", "--dump", str(tmp_path / "dump")])
    assert rc == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["region"] for r in rows] == ["mask0", "box0"]
    assert all(len(r["token_ids"]) == 4 and isinstance(r["text"], str) for r in rows)
    d = tmp_path / "dump" / "mask0"
    ids = np.load(d / "input_ids.npy")
    pix = np.load(d / "pixel_values.npy")
    pid = np.load(d / "prompt_ids.npy")
    logits = np.load(d / "first_logits.npy")
    assert pix.shape[0] == pid.shape[0] == 1 + int(np.prod(np.load(d / "aspect_ratio.npy")))
    assert set(np.unique(pid).tolist()) == {1, 5}
    assert logits.shape == (json.loads((Path(model) / "config.json").read_text())
                            ["mllm_config"]["text_config"]["vocab_size"],)
    assert int(logits.argmax()) == rows[0]["token_ids"][0]
    assert json.loads((d / "boxes.json").read_text())["geometry"] == "reference"
    assert ids.ndim == 1
    rc = main(["describe", "--model", model, "--image", str(img), "--mask", str(mask), "--question",
               "What is <Prompt0>?", "--max-new-tokens", "2", "--json"])
    assert rc == 0 and len(json.loads(capsys.readouterr().out)["token_ids"]) == 2


def test_describe_errors_are_one_line(image_and_mask, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img, mask = image_and_mask
    assert main(["describe", "--model", str(tmp_path / "none"), "--image", str(img), "--box", "1,1,5,5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not found" in err
    model = str(tiny_checkpoint(0))
    assert main(["describe", "--model", model, "--image", str(img), "--box", "1,1,nan,5"]) == 2
    assert "box" in capsys.readouterr().err
    assert main(["describe", "--model", model, "--image", str(img), "--box", "500,500,600,600"]) == 2
    assert "outside" in capsys.readouterr().err
