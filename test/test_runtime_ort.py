"""onnxruntime backend vs the torch backend on the tiny GAR.

Tolerance (fp32, CPU): max |logit difference| <= 1e-3 (observed ~1e-5) for prefill and decode,
max |token feature difference| <= 1e-4 for the vision engine; greedy tokens identical.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _runtime_helpers import data_dir, random_image, rect_mask, tiny_export, tiny_model
from gar_ros.errors import BackendError
from gar_ros.model.engines import torch_engines
from gar_ros.runtime.ort_engines import OrtKVCache, OrtLanguageEngine, OrtVisionEngine
from gar_ros.types import Region

LOGIT_ATOL = 1e-3
FEATURE_ATOL = 1e-4


@pytest.fixture(scope="module")
def engines():
    model = tiny_model()
    tv, tl = torch_engines(model.torch_model)
    out = tiny_export()
    return model, tv, tl, OrtVisionEngine(out, threads=1), OrtLanguageEngine(out, threads=1)


def _prompt_map(tiles: int, size: int, y0: int, y1: int, x0: int, x1: int, pid: int = 1) -> torch.Tensor:
    ids = torch.full((tiles, 1, size, size), 5.0)
    ids[:, :, y0:y1, x0:x1] = pid
    return ids * 2 / 255 - 1


def test_vision_matches_torch_for_any_tile_count(engines):
    model, tv, _, ov, _ = engines
    size = model.config.tile_size
    for tiles in (1, 4):
        pixels = torch.rand(tiles, 3, size, size, generator=torch.Generator().manual_seed(tiles)) * 2 - 1
        maps = _prompt_map(tiles, size, 5, 30, 10, 40)
        ref = tv.encode(pixels, maps)
        got = ov.encode(pixels, maps)
        assert got.shape == ref.shape
        assert (got - ref).abs().max() <= FEATURE_ATOL
        # the visual-prompt map is part of the graph: another region gives other tokens
        assert (ov.encode(pixels, _prompt_map(tiles, size, 30, 50, 0, 20)) - got).abs().max() > 1e-3
        # a (T, 3, S, S) prompt map is accepted too
        assert (ov.encode(pixels, maps.expand(-1, 3, -1, -1)) - got).abs().max() <= FEATURE_ATOL


def test_language_prefill_decode_match_torch(engines):
    _, _, tl, _, ol = engines
    ids = torch.randint(0, 200, (2, 11), generator=torch.Generator().manual_seed(0))
    assert torch.equal(ol.embed(ids), tl.embed(ids))
    embeds = tl.embed(ids)
    mask = torch.ones(2, 11, dtype=torch.int64)
    mask[1, :4] = 0  # left padding
    ref_logits, ref_cache = tl.prefill(embeds, mask)
    logits, cache = ol.prefill(embeds, mask)
    assert logits.shape == (2, 1, ref_logits.shape[-1])
    assert (logits[:, -1] - ref_logits[:, -1]).abs().max() <= LOGIT_ATOL
    # the padded row equals the same prompt alone, unpadded
    alone, _ = ol.prefill(embeds[1:, 4:], mask[1:, 4:])
    assert (alone[0, -1] - logits[1, -1]).abs().max() <= LOGIT_ATOL
    # decode steps and a 3-token cache extension
    for new in (torch.tensor([[5], [7]]), torch.tensor([[1, 2, 3], [4, 5, 6]])):
        mask = torch.cat([mask, torch.ones_like(new)], 1)
        ref_logits, ref_cache = tl.decode(new, mask, ref_cache)
        logits, cache = ol.decode(new, mask, cache)
        assert (logits[:, -1] - ref_logits[:, -1]).abs().max() <= LOGIT_ATOL
    assert cache.length == mask.shape[1]


def test_cache_helpers_and_errors(engines):
    _, _, tl, _, ol = engines
    embeds = tl.embed(torch.tensor([[1, 2, 3, 4]]))
    _, cache = ol.prefill(embeds, torch.ones(1, 4, dtype=torch.int64))
    assert isinstance(cache, OrtKVCache)
    rep = cache.repeat(3)
    assert rep.batch_size == 3 and np.array_equal(rep.tensors[1][2], cache.tensors[1][0])
    assert cache.select([0, 0]).batch_size == 2
    with pytest.raises(BackendError, match="covers"):
        ol.decode(torch.tensor([[1]]), torch.ones(1, 9, dtype=torch.int64), cache)
    with pytest.raises(BackendError, match="cache"):
        ol.decode(torch.tensor([[1]]), torch.ones(1, 5, dtype=torch.int64), object())
    with pytest.raises(BackendError, match="manifest"):
        OrtLanguageEngine(data_dir() / "no_such_export")


def _run(model, engines_pair, fn):
    old = model.vision, model.language
    model.vision, model.language = engines_pair
    model.clear_cache()
    try:
        return fn()
    finally:
        model.vision, model.language = old
        model.clear_cache()


def test_gar_describe_and_ask_tokens_identical(engines):
    model, tv, tl, ov, ol = engines
    image = random_image()
    regions = [Region("a", mask=rect_mask(90, 140, 10, 50, 20, 80)),
               Region("b", mask=rect_mask(90, 140, 40, 80, 60, 130)),
               Region("c", box=(5.0, 5.0, 60.0, 40.0))]

    def describe():
        texts = model.describe(image, regions, max_new_tokens=10)
        return [t.token_ids for t in texts], model.last_generation.first_logits

    ref_tokens, ref_logits = _run(model, (tv, tl), describe)
    got_tokens, got_logits = _run(model, (ov, ol), describe)
    assert got_tokens == ref_tokens
    assert (got_logits - ref_logits).abs().max() <= LOGIT_ATOL

    def ask():
        return model.ask(image, regions[:2], "what is the relationship between <Prompt0> and <Prompt1>?",
                         max_new_tokens=10).token_ids

    assert _run(model, (ov, ol), ask) == _run(model, (tv, tl), ask)


def test_demo_image_tokens_identical(engines):
    from PIL import Image

    demo = data_dir() / "gar_demo"
    if not (demo / "demo_image_1.png").is_file():
        pytest.skip(f"test data not found in {demo}")
    model, tv, tl, ov, ol = engines
    image = np.asarray(Image.open(demo / "demo_image_1.png").convert("RGB"))
    mask = np.asarray(Image.open(demo / "demo_mask_1.png").convert("L")) > 0
    regions = [Region("demo", mask=mask)]

    def describe():
        return [t.token_ids for t in model.describe(image, regions, max_new_tokens=12)]

    assert _run(model, (ov, ol), describe) == _run(model, (tv, tl), describe)


def test_io_binding_path_gives_same_tokens(engines):
    """The I/O-binding path (used with the CUDA provider; the KV cache stays on the device as
    OrtValues) runs here on the CPU provider and must give the same greedy tokens."""
    model, _, _, ov, ol = engines
    bound = OrtLanguageEngine(tiny_export(), threads=1, io_binding=True)
    image = random_image(seed=3)
    regions = [Region("a", mask=rect_mask(90, 140, 10, 50, 20, 80)), Region("b", box=(60.0, 30.0, 130.0, 85.0))]

    def describe():
        return [t.token_ids for t in model.describe(image, regions, max_new_tokens=8)]

    assert _run(model, (ov, bound), describe) == _run(model, (ov, ol), describe)
    _, cache = bound.prefill(ol.embed(torch.tensor([[1, 2, 3]])), torch.ones(1, 3, dtype=torch.int64))
    assert not isinstance(cache.tensors[0], np.ndarray) and cache.length == 3
    assert cache.repeat(2).batch_size == 2
