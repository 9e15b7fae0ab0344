"""ONNX export + onnxruntime vs torch: a tiny random Llama (prefill/decode with explicit KV) and a
tiny PE-style vision engine. Tolerance: |logits diff| <= 1e-4 (fp32), greedy tokens identical."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from _runtime_helpers import TinyPEVision, tiny_llama
from gar_ros.errors import BackendError
from gar_ros.runtime.export import export_graphs
from gar_ros.runtime.onnx_io import Manifest
from gar_ros.runtime.ort_engines import OrtKVCache, OrtLanguageEngine, OrtVisionEngine

ATOL = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(1)
    lm = tiny_llama()
    vision = TinyPEVision().eval()
    out = tmp_path_factory.mktemp("onnx")
    manifest = export_graphs(out, decoder=lm.model, lm_head=lm.lm_head, vision=vision, tile_size=28,
                             source={"name": "tiny"})
    return lm, vision, out, manifest


def torch_greedy(lm, embeds, mask, steps):
    """Reference: Hugging Face generate on inputs_embeds (greedy, KV cache)."""
    with torch.no_grad():
        out = lm.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=steps, do_sample=False,
                          pad_token_id=0, eos_token_id=None, min_new_tokens=steps)
    return out[:, -steps:]


def ort_greedy(engine, embeds, mask, steps):
    logits, cache = engine.prefill(embeds, mask)
    tokens = []
    for _ in range(steps):
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        tokens.append(nxt)
        mask = torch.cat([mask, torch.ones_like(nxt)], 1)
        logits, cache = engine.decode(nxt, mask, cache)
    return torch.cat(tokens, 1)


def test_layout_and_shared_weights(exported):
    lm, _, out, manifest = exported
    assert set(manifest.graphs) == {"embed", "prefill", "decode", "vision"}
    assert Manifest.load(out).model_hash == manifest.model_hash
    params = sum(p.numel() * 4 for p in lm.parameters())
    # prefill and decode hold the same decoder weights: stored once, not twice
    assert (out / "weights.bin").stat().st_size < 1.5 * params + 200_000
    for g in manifest.graphs.values():
        model = onnx.load(str(out / g.file), load_external_data=False)
        assert model.opset_import[0].version >= 17
        onnx.checker.check_model(str(out / g.file))
    cfg = json.loads((out / "manifest.json").read_text())["config"]
    assert cfg["language"]["num_layers"] == 2


def test_prefill_decode_logits_match_torch(exported):
    lm, _, out, _ = exported
    engine = OrtLanguageEngine(out, threads=1)
    ids = torch.randint(0, 300, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.int64)
    mask[1, :3] = 0  # left padding
    embeds = engine.embed(ids)
    assert torch.allclose(embeds, lm.model.embed_tokens(ids).detach(), atol=0)
    logits, cache = engine.prefill(embeds, mask)
    with torch.no_grad():
        pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)  # Hugging Face generation's rule
        ref = lm(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=True)
    assert logits.shape == (2, 1, 300)
    assert (logits[:, -1] - ref.logits[:, -1]).abs().max() < ATOL
    ref_k = ref.cache.layers[0].keys
    assert np.abs(cache.tensors[0] - ref_k.numpy()).max() < ATOL
    # decode 3 tokens at once (cache extension) against torch with the same past
    new = torch.randint(0, 300, (2, 3))
    mask2 = torch.cat([mask, torch.ones(2, 3, dtype=torch.int64)], 1)
    logits2, cache2 = engine.decode(new, mask2, cache)
    with torch.no_grad():
        pos = (mask2.cumsum(-1) - 1)[:, -3:]
        ref2 = lm(input_ids=new, attention_mask=mask2, position_ids=pos, cache=ref.cache, use_cache=True)
    assert (logits2[:, -1] - ref2.logits[:, -1]).abs().max() < ATOL
    assert cache2.length == 12


def test_greedy_tokens_identical(exported):
    lm, _, out, _ = exported
    engine = OrtLanguageEngine(out, threads=1)
    torch.manual_seed(3)
    embeds = torch.randn(3, 7, 32)
    mask = torch.ones(3, 7, dtype=torch.int64)
    mask[2, :2] = 0
    ref = torch_greedy(lm, embeds, mask, 12)
    got = ort_greedy(engine, embeds, mask, 12)
    assert torch.equal(got, ref)


def test_cache_select_and_errors(exported):
    _, _, out, _ = exported
    engine = OrtLanguageEngine(out, threads=1)
    embeds = torch.randn(1, 4, 32)
    _, cache = engine.prefill(embeds, torch.ones(1, 4, dtype=torch.int64))
    rep = cache.repeat(3)
    assert rep.batch_size == 3 and np.array_equal(rep.tensors[1][2], cache.tensors[1][0])
    with pytest.raises(BackendError):
        engine.decode(torch.zeros(1, 1, dtype=torch.int64), torch.ones(1, 9, dtype=torch.int64), cache)
    with pytest.raises(BackendError):
        engine.decode(torch.zeros(1, 1, dtype=torch.int64), torch.ones(1, 5, dtype=torch.int64), object())
    assert isinstance(cache, OrtKVCache)


def test_vision_matches_torch_dynamic_tiles(exported):
    _, vision, out, manifest = exported
    engine = OrtVisionEngine(out, threads=1)
    assert manifest.config["vision"]["tokens_per_tile"] == 4
    for tiles in (1, 3):
        pixels = torch.rand(tiles, 3, 28, 28) * 2 - 1
        ids = torch.full((tiles, 1, 28, 28), 5.0)
        ids[:, :, 3:20, 5:15] = 1
        prompt = ids * 2 / 255 - 1
        with torch.no_grad():
            ref = vision.encode(pixels, prompt)
        got = engine.encode(pixels, prompt)
        assert got.shape == ref.shape == (tiles, 4, 32)
        assert (got - ref).abs().max() < ATOL
        # the prompt map changes the output (mask embedding is in the graph)
        other = engine.encode(pixels, torch.full_like(prompt, 5 * 2 / 255 - 1))
        assert (other - got).abs().max() > 1e-3


def test_missing_export_is_clear(tmp_path):
    with pytest.raises(BackendError, match="manifest"):
        OrtLanguageEngine(tmp_path)
