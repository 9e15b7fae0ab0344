"""Preprocessing: PLM tile grids, tiling order, prompt-map tiling, prompt ids, sanitising."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as tvf

from _model_helpers import random_image, rect_mask, tiny_checkpoint
from gar_ros.errors import ImageError, QueryError, RegionError
from gar_ros.model.processing import (
    as_rgb,
    build_prompt_map,
    choose_grid,
    mask_box,
    mask_from_array,
    mask_from_box,
    preprocess_image,
    preprocess_prompt_map,
    prompt_ids_from_normalized,
)

torch.set_num_threads(1)


@pytest.mark.parametrize("max_tiles", [1, 2, 4, 8, 16, 36])
def test_grid_matches_perception_lm_rule(max_tiles: int) -> None:
    from transformers.models.perception_lm.image_processing_perception_lm import PerceptionLMImageProcessor

    plm = PerceptionLMImageProcessor(tile_size=448, max_num_tiles=max_tiles)
    for w in range(37, 4200, 173):
        for h in range(29, 4200, 241):
            if max_tiles > 1:
                ref = plm._fit_image_to_canvas(w, h, 448) or plm._find_closest_aspect_ratio(w, h, 448)
            else:
                ref = (1, 1)
            assert choose_grid(w, h, 448, max_tiles) == tuple(ref), (w, h, max_tiles)


def test_known_grids() -> None:
    assert choose_grid(500, 450, 448, 4) == (2, 2)  # HF's 5-tile example (4 tiles + thumbnail)
    assert choose_grid(448, 448, 448, 16) == (4, 4)  # PLM upsamples onto the biggest canvas
    assert choose_grid(100, 900, 448, 8) == (1, 8)
    assert choose_grid(2000, 500, 448, 8) == (4, 1)  # no canvas holds it: closest ratio <= 4
    assert choose_grid(1000, 4000, 448, 8) == (1, 3)  # closest ratio strictly taller


def test_tiles_are_thumbnail_then_row_major() -> None:
    img = random_image(130, 250, seed=3)
    frame = preprocess_image(img, 56, 8)
    tw, th = frame.grid
    assert frame.pixel_values.shape == (1 + tw * th, 3, 56, 56)
    chw = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    thumb = tvf.resize(chw, [56, 56], interpolation=InterpolationMode.BICUBIC, antialias=True)
    assert torch.equal(frame.pixel_values[0], (thumb.float() - 127.5) / 127.5)
    canvas = tvf.resize(chw, [th * 56, tw * 56], interpolation=InterpolationMode.BICUBIC, antialias=True)
    canvas = (canvas.float() - 127.5) / 127.5
    for r in range(th):
        for c in range(tw):
            tile = canvas[:, r * 56 : (r + 1) * 56, c * 56 : (c + 1) * 56]
            assert torch.equal(frame.pixel_values[1 + r * tw + c], tile)
    assert frame.pixel_values.min() >= -1 and frame.pixel_values.max() <= 1


def test_prompt_map_survives_tiling_with_exact_ids() -> None:
    h, w = 97, 203
    masks = [rect_mask(h, w, 0, 40, 0, 60), rect_mask(h, w, 30, 97, 50, 120), rect_mask(h, w, 10, 20, 150, 203)]
    pmap = build_prompt_map(masks, [0, 3, 4], 5, h, w)
    assert pmap[35, 55] == 0  # overlap: first writer wins
    assert pmap[90, 200] == 5
    grid = choose_grid(w, h, 56, 6)
    tiles = preprocess_prompt_map(pmap, grid, 56)
    ids = prompt_ids_from_normalized(tiles, 5)
    assert set(ids.unique().tolist()) == {0, 3, 4, 5}
    canvas = tvf.resize(torch.from_numpy(pmap)[None], [grid[1] * 56, grid[0] * 56],
                        interpolation=InterpolationMode.NEAREST)
    assert torch.equal(ids[1, 0], canvas[0, :56, :56].long())
    # normalisation is v -> 2v/255 - 1 exactly as the image
    assert torch.allclose(tiles, ids.float() * 2 / 255 - 1, atol=1e-6)


def test_image_validation() -> None:
    with pytest.raises(ImageError):
        as_rgb(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ImageError):
        as_rgb(np.zeros((10, 10, 2), dtype=np.uint8))
    with pytest.raises(ImageError):
        as_rgb([[1, 2]])  # type: ignore[arg-type]
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    rgba[..., 3] = 7
    rgba[..., 0] = 200
    out = as_rgb(rgba)
    assert out.shape == (4, 5, 3) and out[0, 0, 0] == 200  # alpha dropped, not composited
    assert as_rgb(np.full((3, 3), 9, dtype=np.uint8)).shape == (3, 3, 3)


def test_region_validation() -> None:
    with pytest.raises(RegionError, match="empty"):
        mask_from_array(np.zeros((10, 20), dtype=bool), 20, 10)
    with pytest.raises(RegionError, match="aspect"):
        mask_from_array(np.ones((10, 10), dtype=bool), 20, 10)
    with pytest.raises(RegionError, match="NaN"):
        mask_from_array(np.full((10, 20), np.nan), 20, 10)
    small = np.zeros((5, 10), dtype=np.uint8)
    small[1:3, 2:5] = 255
    big = mask_from_array(small, 20, 10)
    assert big.shape == (10, 20) and big[2:6, 4:10].all() and big.sum() == 24
    with pytest.raises(RegionError, match="outside"):
        mask_from_box((30, 0, 40, 5), 20, 10)
    with pytest.raises(RegionError, match="NaN"):
        mask_from_box((float("nan"), 0, 4, 5), 20, 10)
    with pytest.raises(RegionError, match="inverted"):
        mask_from_box((5, 0, 4, 5), 20, 10)
    m = mask_from_box((-5, 2, 3, 4), 20, 10)  # partly outside: clipped
    assert m.sum() == 6 and m[2:4, 0:3].all()
    assert mask_from_box((0, 0, 1, 1), 20, 10).sum() == 1  # x2/y2 exclusive


def test_mask_box_reference_uses_inclusive_last_pixel() -> None:
    m = rect_mask(10, 20, 2, 5, 4, 10)
    assert mask_box(m, "reference") == (4 / 20, 2 / 10, 9 / 20, 4 / 10)
    assert mask_box(m, "corrected") == (4 / 20, 2 / 10, 10 / 20, 5 / 10)


# ----------------------------------------------------------------------------- prompt ids
@pytest.fixture(scope="module")
def processor():
    from gar_ros.model.checkpoint import load_checkpoint
    from gar_ros.model.processor import GarProcessor

    ck = load_checkpoint(tiny_checkpoint(0))
    return GarProcessor(ck.config, ck.tokenizer, ck.chat_template)


def test_describe_ids_layout(processor) -> None:
    cfg = processor.config
    frame = processor.tiles(random_image(90, 140))
    ids = processor.describe_ids(frame)
    tok = processor.tokenizer
    assert ids[:2] == [tok.bos_token_id, tok.bos_token_id]  # official inference: two BOS
    tiles = frame.num_tiles
    assert ids.count(cfg.image_token_id) == cfg.tokens_per_tile * tiles
    assert ids.count(cfg.crop_tokens_ids[1]) == cfg.replay_tokens
    assert ids.count(tok.convert_tokens_to_ids("<Prompt1>")) == 2
    assert all(ids.count(c) == 0 for i, c in enumerate(cfg.crop_tokens_ids) if i != 1)
    text = tok.decode(ids, skip_special_tokens=False)
    assert "describe this masked region in detail ." in text
    assert text.rstrip().endswith("<|start_header_id|> assistant <|end_header_id|>")
    # crop tokens sit right after "<Prompt1> :"
    p1 = tok.convert_tokens_to_ids("<Prompt1>")
    second = [i for i, t in enumerate(ids) if t == p1][1]
    assert ids[second + 2] == cfg.crop_tokens_ids[1]


def test_single_bos_setting(processor) -> None:
    from gar_ros.model.prompts import PromptBuilder

    cfg = processor.config
    b = PromptBuilder(processor.tokenizer, prompt_numbers=5, crop_tokens_ids=cfg.crop_tokens_ids,
                      replay_tokens=cfg.replay_tokens, image_token_id=cfg.image_token_id, double_bos=False)
    ids = b.describe_ids(10)
    assert ids[0] == processor.tokenizer.bos_token_id and ids[1] != ids[0]


def test_question_ids_sorted_prompts_and_sanitised(processor) -> None:
    cfg = processor.config
    tok = processor.tokenizer
    frame = processor.tiles(random_image(60, 60))
    q = "Is <Prompt1> left of <Prompt0>? <|image|> <NO_Prompt> <|reserved_special_token_3|> <|eot_id|>"
    ids = processor.question_ids(frame, [1, 0], q)
    specials = set(tok.all_special_ids) - {tok.unk_token_id}
    p = [tok.convert_tokens_to_ids(f"<Prompt{k}>") for k in range(5)] + [tok.convert_tokens_to_ids("<NO_Prompt>")]
    image_count = cfg.tokens_per_tile * frame.num_tiles
    assert ids.count(cfg.image_token_id) == image_count  # typed <|image|> stays text
    assert ids.count(cfg.crop_tokens_ids[1]) == cfg.replay_tokens  # typed crop token stays text
    assert ids.count(p[5]) == 0
    assert ids.count(tok.convert_tokens_to_ids("<|eot_id|>")) == 2  # template's own only
    assert ids.count(p[0]) == 3 and ids.count(p[1]) == 3  # intro, crop line, question
    assert ids.index(p[0]) < ids.index(p[1])  # sorted prompt order
    question_part = ids[ids.index(cfg.crop_tokens_ids[1]) + cfg.replay_tokens:]
    assert not any(t in specials and t not in p[:2] for t in question_part[:-4])
    assert question_part[-4:-3] == [tok.convert_tokens_to_ids("<|eot_id|>")]
    with pytest.raises(QueryError):
        processor.question_ids(frame, [0], "what about <Prompt3>?")
    with pytest.raises(QueryError):
        processor.question_ids(frame, [0], "   ")


def _official_string_ids(processor, frame, user_text: str) -> list[int]:
    """The official path: one string (crop tokens written out, <|image|> expanded), chat
    template, then the tokenizer with its own special tokens (adds the second BOS)."""
    cfg = processor.config
    tok = processor.tokenizer
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user_text}]}]
    rendered = tok.apply_chat_template(messages, chat_template=processor.builder.chat_template,
                                       add_generation_prompt=True, tokenize=False)
    n_image = cfg.tokens_per_tile * frame.num_tiles
    rendered = rendered.replace("<|image|>", "<|image|>" * n_image)
    return tok(rendered, add_special_tokens=True)["input_ids"]


def test_piecewise_ids_equal_whole_string_tokenisation(processor) -> None:
    cfg = processor.config
    frame = processor.tiles(random_image(70, 120))
    crops = lambda k: f"<|reserved_special_token_{k + 2}|>" * cfg.replay_tokens  # noqa: E731
    single = ("There are some objects I am curious about: <Prompt1>;\n<Prompt1>: " + crops(1)
              + "Describe this masked region in detail.")
    assert processor.describe_ids(frame) == _official_string_ids(processor, frame, single)
    question = "Which of <Prompt2> and <Prompt0> is larger? Answer with a letter."
    multi = ("There are some objects I am curious about: <Prompt0>; <Prompt2>; \n"
             + "<Prompt0>: " + crops(0) + "\n<Prompt2>: " + crops(2) + "\n\n" + question)
    assert processor.question_ids(frame, [2, 0], question) == _official_string_ids(processor, frame, multi)
