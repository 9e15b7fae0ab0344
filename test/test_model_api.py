"""GarModel on tiny random checkpoints: loading, equivalences, cache, bad inputs, training forward."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from _model_helpers import random_image, rect_mask, tiny_checkpoint
from gar_ros.errors import CheckpointError, ImageError, InputError, QueryError, RegionError, TooManyRegionsError
from gar_ros.model import GarModel
from gar_ros.model.generation import left_pad
from gar_ros.types import AnswerStatus, Region

torch.set_num_threads(1)
H, W = 90, 140


@pytest.fixture(scope="module")
def model() -> GarModel:
    return GarModel.from_pretrained(tiny_checkpoint(0))


def regions() -> list[Region]:
    return [
        Region("a", mask=rect_mask(H, W, 10, 40, 20, 70)),
        Region("b", box=(80, 30, 140, 90)),
        Region("c", mask=rect_mask(H, W, 50, 88, 0, 30).astype(np.uint8) * 255),
    ]


def test_loads_official_layout(model: GarModel) -> None:
    cfg = model.config
    assert model.name == tiny_checkpoint(0).name
    assert cfg.prompt_numbers == 5 and cfg.crop_tokens_ids == [128004, 128005, 128008, 128010, 128011]
    tok = model.tokenizer
    assert tok.convert_tokens_to_ids("<|image|>") == 128002
    assert [tok.convert_tokens_to_ids(f"<Prompt{k}>") for k in range(5)] == list(range(128256, 128261))
    assert tok.convert_tokens_to_ids("<NO_Prompt>") == 128261
    tm = model.torch_model
    assert tm.mllm.lm_head.weight.data_ptr() == tm.embed_layer.weight.data_ptr()  # tied: key absent
    assert tm.mask_patch_embedding.weight.abs().sum() > 0


def test_describe_batched_equals_single(model: GarModel) -> None:
    img = random_image(H, W, seed=1)
    regs = regions()
    batched = model.describe(img, regs, max_new_tokens=6)
    single = [model.describe(img, [r], max_new_tokens=6)[0] for r in regs]
    assert [b.token_ids for b in batched] == [s.token_ids for s in single]
    assert [b.region_id for b in batched] == ["a", "b", "c"]
    assert len({tuple(b.token_ids) for b in batched}) > 1  # the region changes the output
    assert all(len(b.token_ids) == 6 for b in batched)


def test_cache_reuses_vision_and_matches_uncached(model: GarModel) -> None:
    img = random_image(H, W, seed=2)
    regs = regions()
    model.clear_cache()
    calls = model.vision.calls
    first = model.describe(img, regs, max_new_tokens=4, frame_key="f1")
    assert model.vision.calls == calls + 1  # one batched vision call for three regions
    again = model.describe(img, regs, max_new_tokens=4, frame_key="f1")
    assert model.vision.calls == calls + 1  # all prompt maps cached
    uncached = model.describe(img, regs, max_new_tokens=4)
    assert model.vision.calls == calls + 2
    assert [r.token_ids for r in first] == [r.token_ids for r in again] == [r.token_ids for r in uncached]
    other = random_image(H, W, seed=3)  # same key, new content: not served from the cache
    model.describe(other, regs[:1], max_new_tokens=1, frame_key="f1")
    assert model.vision.calls == calls + 3
    model.clear_cache()


def test_cache_is_bounded(model: GarModel) -> None:
    model.clear_cache()
    for k in range(model.cache_size + 3):
        model.encode_frame(random_image(20, 20, seed=k), frame_key=k)
    assert len(model._frames) == model.cache_size
    assert 0 not in model._frames and model.cache_size + 2 in model._frames
    one = model._frames[model.cache_size + 2].nbytes
    budget = model.cache_bytes
    model.cache_bytes = 3 * one  # byte budget: only three frames fit
    model.encode_frame(random_image(20, 20, seed=99), frame_key="new")
    assert len(model._frames) == 3 and "new" in model._frames and model.cache_nbytes <= 3 * one
    model.cache_bytes = budget
    model.clear_cache()
    assert model.cache_nbytes == 0


def test_kv_cache_generation_equals_full_recompute(model: GarModel) -> None:
    img = random_image(H, W, seed=4)
    prepared = model.prepare_ask(img, regions()[:2], "What is <Prompt0> next to <Prompt1>?")
    result = model.generate_prepared([prepared], max_new_tokens=5)
    tm = model.torch_model
    embeds = prepared.embeds
    tokens = []
    with torch.inference_mode():
        for _ in range(len(result.tokens[0])):
            x = embeds[None]
            mask = torch.ones(x.shape[:2], dtype=torch.long)
            logits, _ = tm.language_forward(x, mask, torch.arange(x.shape[1])[None])
            nxt = int(logits[0, -1].argmax())
            tokens.append(nxt)
            embeds = torch.cat([embeds, tm.embed(torch.tensor([nxt]))], dim=0)
    assert tokens == result.tokens[0]


def test_left_padding_matches_unpadded(model: GarModel) -> None:
    img = random_image(H, W, seed=5)
    a = model.prepare_ask(img, regions()[:1], "What colour is <Prompt0>?")
    b = model.prepare_ask(img, regions()[:2], "Is <Prompt0> bigger than <Prompt1> or not?")
    both = model.generate_prepared([a, b], max_new_tokens=4)
    alone = [model.generate_prepared([p], max_new_tokens=4).tokens[0] for p in (a, b)]
    assert both.tokens == alone
    x, mask = left_pad([a.embeds, b.embeds])
    assert mask.sum(1).tolist() == [a.embeds.shape[0], b.embeds.shape[0]]


def test_ask_answer_and_streaming_cancel(model: GarModel) -> None:
    img = random_image(H, W, seed=6)
    regs = regions()
    full = model.ask(img, regs, "How are <Prompt0>, <Prompt1> and <Prompt2> related?", max_new_tokens=6)
    assert full.status == AnswerStatus.OK and full.region_ids == ["a", "b", "c"]
    assert len(full.token_ids) == 6 and full.message == ""
    seen: list[str] = []

    def on_text(text: str) -> bool:
        seen.append(text)
        return len(seen) < 2

    cut = model.ask(img, regs, "How are <Prompt0>, <Prompt1> and <Prompt2> related?", max_new_tokens=6,
                    on_text=on_text)
    assert cut.message == "cancelled" and cut.token_ids == full.token_ids[:2]
    assert seen[-1] == cut.text


def test_each_prompt_replays_its_own_box(model: GarModel) -> None:
    img = random_image(H, W, seed=7)
    prepared = model.prepare_ask(img, regions(), "Compare <Prompt0> with <Prompt2>.")
    boxes = prepared.boxes
    assert boxes[0] == (20 / W, 10 / H, 69 / W, 39 / H)
    assert boxes[2] == (0 / W, 50 / H, 29 / W, 87 / H)
    ids = prepared.prompt_ids
    assert set(ids.unique().tolist()) == {0, 1, 2, 5}


def test_bad_inputs_raise_clear_errors(model: GarModel) -> None:
    img = random_image(H, W)
    six = [Region(str(i), box=(i, i, i + 10, i + 10)) for i in range(6)]
    with pytest.raises(TooManyRegionsError):
        model.ask(img, six, "What is <Prompt0>?")
    assert len(model.describe(img, six, max_new_tokens=1)) == 6  # describe: each region alone
    with pytest.raises(RegionError, match="empty"):
        model.describe(img, [Region("e", mask=np.zeros((H, W), bool))])
    with pytest.raises(RegionError, match="aspect"):
        model.describe(img, [Region("s", mask=np.ones((10, 10), bool))])
    with pytest.raises(RegionError, match="outside"):
        model.describe(img, [Region("o", box=(500, 500, 600, 600))])
    with pytest.raises(RegionError, match="NaN"):
        model.describe(img, [Region("n", box=(float("nan"), 0, 5, 5))])
    with pytest.raises(RegionError, match="neither"):
        model.describe(img, [Region("x")])
    with pytest.raises(ImageError):
        model.describe(img.astype(np.float32), regions())
    with pytest.raises(QueryError):
        model.ask(img, regions()[:1], "Where is <Prompt1>?")
    with pytest.raises(QueryError):
        model.ask(img, regions()[:1], "")
    with pytest.raises(RegionError, match="Region objects"):
        model.describe(img, [{"id": "x"}])  # type: ignore[list-item]
    with pytest.raises(InputError, match="max_new_tokens"):
        model.describe(img, regions(), max_new_tokens=-1)
    half = Region("h", mask=rect_mask(H // 2, W // 2, 5, 20, 10, 35))  # same aspect: resized NEAREST
    assert model.describe(img, [half], max_new_tokens=1)[0].region_id == "h"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_checkpoint_errors_name_what_is_missing(tmp_path: Path) -> None:
    src = tiny_checkpoint(0)
    with pytest.raises(CheckpointError, match="not found"):
        GarModel.from_pretrained(tmp_path / "nothing")
    d = _copy(src, tmp_path / "no_weights")
    (d / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        GarModel.from_pretrained(d)
    (d / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="pickle"):
        GarModel.from_pretrained(d)
    d = _copy(src, tmp_path / "no_tok")
    (d / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="tokenizer.json"):
        GarModel.from_pretrained(d)
    d = _copy(src, tmp_path / "bad_type")
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = "llava"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="GAR"):
        GarModel.from_pretrained(d)
    d = _copy(src, tmp_path / "bad_size")
    cfg = json.loads((d / "config.json").read_text())
    cfg["mllm_config"]["text_config"]["num_hidden_layers"] = 3
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="missing"):
        GarModel.from_pretrained(d)
    cfg["mllm_config"]["vision_config"]["architecture"] = "no_such_timm_model"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="cannot build"):
        GarModel.from_pretrained(d)
    d = _copy(src, tmp_path / "corrupt")
    (d / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="safetensors"):
        GarModel.from_pretrained(d)
    d = _copy(src, tmp_path / "sharded")
    from safetensors.torch import load_file, save_file

    state = load_file(str(d / "model.safetensors"))
    (d / "model.safetensors").unlink()
    keys = sorted(state)
    half = len(keys) // 2
    save_file({k: state[k] for k in keys[:half]}, str(d / "model-00001-of-00002.safetensors"))
    save_file({k: state[k] for k in keys[half:]}, str(d / "model-00002-of-00002.safetensors"))
    index = {"weight_map": {k: f"model-0000{1 if i < half else 2}-of-00002.safetensors" for i, k in enumerate(keys)}}
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    assert GarModel.from_pretrained(d).config.prompt_numbers == 5
    (d / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="00002"):
        GarModel.from_pretrained(d)


def test_training_forward_is_differentiable() -> None:
    m = GarModel.from_pretrained(tiny_checkpoint(0), replay_geometry="corrected")
    tm = m.torch_model.train()
    img = random_image(H, W, seed=8)
    prepared = m.prepare_ask(img, regions()[:2], "Is <Prompt0> left of <Prompt1>?")
    answer = m.tokenizer.encode("yes", add_special_tokens=False)
    ids = torch.cat([prepared.input_ids, torch.tensor(answer)])[None]
    labels = torch.full_like(ids, -100)
    labels[0, -len(answer):] = ids[0, -len(answer):]
    frame = m.processor.tiles(img)
    pmap = m.processor.region_prompt(
        m.processor.masks(regions()[:2], W, H), [0, 1]
    )
    out = tm(ids, torch.ones_like(ids), [frame.pixel_values], [m.processor.prompt_map_tiles(pmap.prompt_map, frame)],
             [frame.grid], [pmap.boxes], labels=labels)
    assert out.loss is not None and torch.isfinite(out.loss)
    out.loss.backward()
    assert tm.mask_patch_embedding.weight.grad is not None
    assert tm.mask_patch_embedding.weight.grad.abs().sum() > 0
    assert tm.mllm.model.multi_modal_projector.linear_1.weight.grad.abs().sum() > 0
    tm.eval()


def test_configurable_tile_and_tokens() -> None:
    path = tiny_checkpoint(1, tile_size=112, patch_size=14, max_num_tiles=2, replay_geometry="corrected")
    m = GarModel.from_pretrained(path)
    assert m.config.tokens_per_tile == 16 and m.config.replay_side == 4
    assert m.config.replay_geometry == "corrected"
    img = random_image(60, 200)
    prepared = m.prepare_describe(img, Region("r", box=(10, 10, 120, 50)))
    assert prepared.grid == (2, 1)
    assert int((prepared.input_ids == m.config.image_token_id).sum()) == 16 * 3
    assert len(m.describe(img, [Region("r", box=(10, 10, 120, 50))], max_new_tokens=3)[0].token_ids) == 3


def test_gar_geometry_448_tiles_256_tokens_16x16_replay() -> None:
    """GAR-1B's tile geometry (448 tile, patch 14, 2x2 pooling) through the same code path."""
    m = GarModel.from_pretrained(tiny_checkpoint(0, tile_size=448, max_num_tiles=2))
    cfg = m.config
    assert (cfg.tokens_per_tile, cfg.replay_side, cfg.feature_stride) == (256, 16, 28.0)
    img = random_image(300, 700, seed=9)
    region = Region("r", mask=rect_mask(300, 700, 100, 250, 400, 650))
    prepared = m.prepare_describe(img, region)
    assert prepared.grid == (2, 1) and prepared.pixel_values.shape == (3, 3, 448, 448)
    assert int((prepared.input_ids == cfg.image_token_id).sum()) == 256 * 3
    assert int((prepared.input_ids == cfg.crop_tokens_ids[1]).sum()) == 256
    feats = m.vision.encode(prepared.pixel_values, m.processor.prompt_map_tiles(
        m.processor.region_prompt([region.mask], [1]).prompt_map, m.processor.tiles(img)))
    assert feats.shape == (3, 256, cfg.hidden_size)
    m.replay_enabled = False  # ablation switch: crop tokens keep their own embeddings
    plain = m.prepare_describe(img, region)
    crop = plain.input_ids == cfg.crop_tokens_ids[1]
    assert torch.equal(plain.embeds[crop], m.torch_model.embed(plain.input_ids[crop]))
    assert not torch.equal(prepared.embeds[crop], plain.embeds[crop])


def test_loaded_model_equals_freshly_built_one(model: GarModel) -> None:
    """Loading skips random init: every weight and buffer must still equal the writer's model."""
    from gar_ros.model.modeling import GarTorchModel
    from gar_ros.model.tiny import init_weights

    fresh = GarTorchModel(model.config)
    init_weights(fresh, 0)
    fresh.eval()
    loaded = dict(model.torch_model.named_buffers())
    for name, buf in fresh.named_buffers():
        assert torch.equal(buf, loaded[name]), name
    state = model.torch_model.state_dict()
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, state[name]), name
    frame = model.processor.tiles(random_image(H, W, seed=12))
    prompt = model.processor.region_prompt([rect_mask(H, W, 5, 30, 5, 60)], [1])
    maps = model.processor.prompt_map_tiles(prompt.prompt_map, frame)
    with torch.inference_mode():
        assert torch.equal(fresh.encode_images(frame.pixel_values, maps), model.vision.encode(frame.pixel_values, maps))


def test_greedy_loop_equals_transformers_generate(model: GarModel) -> None:
    """Our KV-cached greedy loop gives the tokens of transformers' own ``generate`` on the same
    embeddings (the official code hands its assembled embeddings to ``mllm.generate``)."""
    from transformers import GenerationConfig

    img = random_image(H, W, seed=13)
    prepared = model.prepare_describe(img, Region("a", mask=rect_mask(H, W, 10, 40, 20, 70)))
    ours = model.generate_prepared([prepared], max_new_tokens=8).tokens[0]
    config = GenerationConfig(max_new_tokens=8, do_sample=False, eos_token_id=sorted(model.eos_ids),
                              pad_token_id=model.pad_id)
    with torch.inference_mode():
        out = model.torch_model.mllm.generate(
            inputs_embeds=prepared.embeds[None],
            attention_mask=torch.ones(1, prepared.embeds.shape[0], dtype=torch.long),
            generation_config=config,
        )
    seq = out.sequences if hasattr(out, "sequences") else out
    theirs = [t for t in seq[0].tolist() if t not in model.eos_ids]
    assert ours == theirs[: len(ours)] and len(ours) == len(theirs)


def test_prepared_crop_embeddings_follow_official_arithmetic(model: GarModel) -> None:
    """Crop positions hold roi_align of the merged non-thumbnail tiles with the official
    double-scaled box, computed here step by step as the official code does."""
    from torchvision.ops import roi_align

    cfg = model.config
    img = random_image(120, 200, seed=14)
    regs = [Region("a", mask=rect_mask(120, 200, 30, 90, 100, 190)), Region("b", box=(5, 5, 60, 50))]
    prepared = model.prepare_ask(img, regs, "Compare <Prompt0> and <Prompt1>.")
    frame = model.processor.tiles(img)
    pmap = model.processor.region_prompt(model.processor.masks(regs, 200, 120), [0, 1])
    feats = model.vision.encode(frame.pixel_values, model.processor.prompt_map_tiles(pmap.prompt_map, frame))
    tw, th = frame.grid
    side = cfg.tokens_per_side
    tiles = feats[1:].reshape(th * tw, side, side, -1)
    merged = torch.zeros(feats.shape[-1], th * side, tw * side)
    for r in range(th):
        for c in range(tw):
            merged[:, r * side : (r + 1) * side, c * side : (c + 1) * side] = tiles[r * tw + c].permute(2, 0, 1)
    for k, mask in enumerate(model.processor.masks(regs, 200, 120)):
        ys, xs = np.nonzero(mask)
        x1, y1, x2, y2 = xs.min() / 200, ys.min() / 120, xs.max() / 200, ys.max() / 120
        feat_h, feat_w = merged.shape[1:]
        orig_h, orig_w = feat_h * 28, feat_w * 28
        scale = feat_w / orig_w
        roi = torch.tensor([[0, x1 * orig_w * scale, y1 * orig_h * scale, x2 * orig_w * scale, y2 * orig_h * scale]],
                           dtype=torch.float32)
        want = roi_align(merged[None], roi, output_size=(side, side), spatial_scale=scale, sampling_ratio=2,
                         aligned=True)[0].permute(1, 2, 0).reshape(side * side, -1)
        got = prepared.embeds[prepared.input_ids == cfg.crop_tokens_ids[k]]
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
