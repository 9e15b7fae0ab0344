"""The training objective computes the model's own loss, and its probes read the right places.

``step_loss`` rebuilds the forward from the model's public pieces (so that it can read hidden
states for the probes); its language-model loss must equal ``GarTorchModel.forward`` for image
samples and ``gar_ros.model.video.clip_forward`` for clips, and every probe must receive the
positions and targets documented in ``gar_ros.training.objective``.
"""
from __future__ import annotations

import pytest
import torch

from gar_ros.model.processing import normalize_uint8
from gar_ros.model.video import clip_forward
from gar_ros.synthetic.tasks import CHOICE_KINDS, LETTERS, make_choice, make_describe, make_motion
from gar_ros.training.batches import collate, encode_sample
from gar_ros.training.clips import encode_motion
from gar_ros.training.objective import (
    FEATURE_HEADS, LINE_HEAD, LOCAL_CHOICE_KINDS, SAME_COLOUR_HEAD, OptionProbe, Probes, RegionProbe, SlotProbe,
    IGNORE, _answer_block, _feature_targets, _option_lines, step_loss,
)
from gar_ros.training.recipe import TinyRecipe
from gar_ros.training.tokenizer import EOT, PAD
from gar_ros.training.train import build_untrained

SMALL = {"vision_width": 32, "vision_depth": 1, "hidden_size": 32, "layers": 2, "heads": 2,
         "kv_heads": 2, "intermediate_size": 64, "vision_heads": 2}


@pytest.fixture(scope="module")
def built():
    torch.manual_seed(0)
    model, processor = build_untrained(TinyRecipe(seed=1, **SMALL))
    return model, processor


def _probes(model, processor, layer: int = 1) -> Probes:
    tok = processor.tokenizer
    d = model.config.hidden_size
    return Probes(RegionProbe(d), RegionProbe(d), OptionProbe(d, len(LETTERS)),
                  prompt_ids=tuple(processor.builder.prompt_token_ids[:5]),
                  letter_ids=tuple(int(tok.convert_tokens_to_ids(x)) for x in LETTERS),
                  dot_id=int(tok.convert_tokens_to_ids(".")), layer=layer)


def _end(processor) -> int:
    return int(processor.tokenizer.convert_tokens_to_ids(EOT))


def test_image_loss_equals_model_forward(built) -> None:
    model, processor = built
    sample = make_choice(11, kind="left_of")
    enc = encode_sample(processor, sample, _end(processor))
    batch = collate([enc], int(processor.tokenizer.convert_tokens_to_ids(PAD)))
    with torch.no_grad():
        ref = model(batch["input_ids"], batch["attention_mask"], batch["pixel_values"], batch["prompt_maps"],
                    batch["grids"], batch["boxes"], labels=batch["labels"]).loss
        got = step_loss(model, [enc], [1.0], _probes(model, processor))
    assert torch.allclose(got.lm, ref, atol=1e-5)


def test_clip_loss_equals_clip_forward(built) -> None:
    model, processor = built
    sample = make_motion(5, n_frames=4)
    enc = encode_motion(model.config, processor.builder, sample, [0, 2, 3], processor.tokenizer, _end(processor))
    with torch.no_grad():
        ref, _ = clip_forward(model, [enc.inputs], [enc.answer])
        got = step_loss(model, [enc], [1.0], _probes(model, processor))
    assert torch.allclose(got.lm, ref, atol=1e-5)
    assert sorted(enc.frame_targets) == [0, 1, 2]
    assert enc.direction == (0 if sample.answer == "left" else 1)


def test_per_sample_weights(built) -> None:
    """The LM loss is the weighted mean of per-sample means: weight 0 removes a sample."""
    model, processor = built
    a = encode_sample(processor, make_describe(3)[0], _end(processor))
    b = encode_sample(processor, make_choice(4, kind="leftmost"), _end(processor))
    probes = Probes(None, None)
    with torch.no_grad():
        only_a = step_loss(model, [a], [1.0], probes).lm
        only_b = step_loss(model, [b], [1.0], probes).lm
        mixed = step_loss(model, [a, b], [1.0, 3.0], probes).lm
        zero = step_loss(model, [a, b], [1.0, 0.0], probes).lm
    assert torch.allclose(zero, only_a, atol=1e-5)
    assert torch.allclose(mixed, (only_a + 3 * only_b) / 4, atol=1e-5)


def test_option_lines_and_local_kinds(built) -> None:
    _, processor = built
    tok = processor.tokenizer
    letters = {int(tok.convert_tokens_to_ids(x)): k for k, x in enumerate(LETTERS)}
    dot = int(tok.convert_tokens_to_ids("."))
    for kind in ("colour_options", "leftmost", "left_of"):
        sample = make_choice(7, kind=kind)
        enc = encode_sample(processor, sample, _end(processor))
        lines = _option_lines(enc.input_ids, enc.labels, letters, dot)
        n_options = sample.question.count("\n") - 2
        assert [letter for _, letter, _ in lines] == list(range(n_options))
        assert [LETTERS[letter] for _, letter, right in lines if right] == [sample.answer]
        contents = [tok.convert_ids_to_tokens(enc.input_ids[at]) for at, _, _ in lines]
        expected = [line.split(". ", 1)[1] for line in sample.question.split("\n")[2:-1]]
        assert contents == expected
        assert enc.kind == kind
    assert "left_of" in LOCAL_CHOICE_KINDS and "leftmost" not in LOCAL_CHOICE_KINDS
    describe = encode_sample(processor, make_describe(2)[0], _end(processor))
    assert _option_lines(describe.input_ids, describe.labels, letters, dot) == []


def test_every_probe_trains(built) -> None:
    model, processor = built
    probes = _probes(model, processor)
    items = [encode_sample(processor, make_choice(9, kind="right_of"), _end(processor)),
             encode_motion(model.config, processor.builder, make_motion(2, n_frames=3), [0, 2],
                           processor.tokenizer, _end(processor))]
    parts = step_loss(model, items, [1.0, 1.0], probes)
    assert parts.replay is not None and parts.reference is not None and parts.options is not None
    (parts.lm + parts.replay + parts.reference + parts.options).backward()
    for probe in (probes.replay, probes.reference, probes.options):
        for name, p in probe.named_parameters():
            if probe is probes.replay and name.startswith("direction"):
                continue  # replay targets carry no direction
            assert p.grad is not None and float(p.grad.abs().sum()) > 0, name
    assert float(model.mask_patch_embedding.weight.grad.abs().sum()) > 0
    model.zero_grad(set_to_none=True)


def test_attention_rows_equal_eager_attention(built) -> None:
    """The copy target's recomputed rows are the eager kernel's attention probabilities."""
    from gar_ros.model.modeling import GarTorchModel
    from gar_ros.training.objective import attention_rows

    model, _ = built
    eager = GarTorchModel(model.config, attn_implementation="eager")
    eager.load_state_dict(model.state_dict())
    lm = eager.mllm.model.language_model
    torch.manual_seed(3)
    emb = torch.randn(3, 17, model.config.hidden_size)
    mask = torch.ones(3, 17, dtype=torch.long)
    mask[1, 12:] = 0  # right padding
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        out = lm(inputs_embeds=emb, attention_mask=mask, position_ids=positions,
                 output_hidden_states=True, output_attentions=True)
        rows = [(0, 16), (1, 11), (2, 4)]
        for layer in range(len(lm.layers)):
            got = attention_rows(lm, layer, out.hidden_states[layer], positions, mask, rows)
            ref = torch.stack([out.attentions[layer][b, :, t] for b, t in rows])
            assert torch.allclose(got, ref, atol=1e-5)
            assert float(got[2, :, 5:].abs().sum()) == 0.0  # causal: nothing after the query


def test_copy_target_reads_the_right_option_line(built) -> None:
    model, processor = built
    sample = make_choice(5, kind="colour_options")
    enc = encode_sample(processor, sample, _end(processor))
    probes = _probes(model, processor)
    probes.copy_heads = 1
    got = step_loss(model, [enc], [1.0], probes)
    assert got.copy is not None and float(got.copy) > 0
    got.copy.backward()
    grad = model.mllm.model.language_model.layers[-1].self_attn.q_proj.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    model.zero_grad(set_to_none=True)
    describe = encode_sample(processor, make_describe(5)[0], _end(processor))
    assert step_loss(model, [describe], [1.0], probes).copy is None  # no options, no target


def test_feature_targets_pick_the_extreme_region() -> None:
    crop = [90, 91, 92, 93, 94]
    ids = [1, 90, 90, 2, 91, 91, 3, 92, 92, 4]
    # prompt -> (colour, shape, cx, cy, log area)
    regions = {0: (1, 0, 0.50, 0.10, -3.0), 1: (2, 0, 0.10, 0.52, -2.0), 2: (1, 0, 0.85, 0.55, -4.0)}
    got = dict(_feature_targets(ids, regions, crop, [7, 8, 9], True))
    assert got[FEATURE_HEADS.index("left")] == [4, 5]  # region 1 has the smallest cx
    assert got[FEATURE_HEADS.index("right")] == [7, 8]
    assert got[FEATURE_HEADS.index("up")] == [1, 2]
    assert FEATURE_HEADS.index("down") not in got  # cy 0.55 vs 0.52: no clear bottom region
    assert got[FEATURE_HEADS.index("larger")] == [4, 5]
    assert got[FEATURE_HEADS.index("smaller")] == [7, 8]
    assert got[SAME_COLOUR_HEAD] == [7, 8]  # region 2 shares <Prompt0>'s colour
    assert LINE_HEAD not in got
    # options that are words: only the right option's line
    assert _feature_targets(ids, regions, crop, [7, 8, 9], False) == [(LINE_HEAD, [7, 8, 9])]
    assert _feature_targets(ids[:3], {0: regions[0]}, crop, [], True) == []  # one region: nothing


def test_answer_block_is_the_right_options_crop_block() -> None:
    crop = [90, 91, 92]
    prompt_ids = {50: 0, 51: 1, 52: 2}
    # crop blocks of slots 0..2, then "A . <Prompt1>" and "B . <Prompt2>"
    ids = [1, 90, 90, 2, 91, 91, 3, 92, 92, 60, 7, 51, 61, 7, 52]
    assert _answer_block(ids, [12, 13, 14], prompt_ids, crop) == [7, 8]
    assert _answer_block(ids, [9, 10, 11], prompt_ids, crop) == [4, 5]
    assert _answer_block(ids, [9, 10, 6], prompt_ids, crop) == []  # a word option
    assert _answer_block(ids, [], prompt_ids, crop) == []


@pytest.mark.parametrize("kind", ["topmost", "above", "colour_options"])
def test_block_copy_target_trains_the_last_layer(built, kind: str) -> None:
    model, processor = built
    probes = _probes(model, processor)
    probes.copy_heads, probes.copy_target = 2, "block"
    enc = encode_sample(processor, make_choice(33, kind=kind), _end(processor))
    parts = step_loss(model, [enc], [1.0], probes)
    assert parts.copy is not None and float(parts.copy) > 0
    parts.copy.backward()
    grad = model.mllm.model.language_model.layers[-1].self_attn.q_proj.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("kind", ["leftmost", "below", "same_colour", "shape_options"])
def test_feature_heads_and_kind_probe_train(kind: str) -> None:
    torch.manual_seed(0)
    recipe = TinyRecipe(seed=1, **{**SMALL, "heads": LINE_HEAD + 1, "kv_heads": LINE_HEAD + 1})
    model, processor = build_untrained(recipe)
    probes = _probes(model, processor)
    probes.copy_heads, probes.copy_target = 1, "features"
    probes.kinds = SlotProbe(model.config.hidden_size, len(CHOICE_KINDS))
    sample = make_choice(21, kind=kind)
    enc = encode_sample(processor, sample, _end(processor))
    parts = step_loss(model, [enc], [1.0], probes)
    assert parts.copy is not None and parts.kind is not None
    (parts.copy + parts.kind).backward()
    grad = model.mllm.model.language_model.layers[-1].self_attn.q_proj.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    assert all(p.grad is not None for p in probes.kinds.parameters())
    describe = encode_sample(processor, make_describe(5)[0], _end(processor))
    none = step_loss(model, [describe], [1.0], probes)
    assert none.copy is None and none.kind is None  # no options: neither target


@pytest.mark.parametrize("word_target", ["line", "content"])
def test_word_option_copy_target_is_the_right_line_or_its_word(built, word_target: str) -> None:
    """Under the block target, a word option's copy loss is -log of the copy heads' mean mass on
    the right option's line (letter, ".", word) or, with ``word_target`` "content", on its word."""
    from gar_ros.training.objective import attention_rows

    model, processor = built
    probes = _probes(model, processor)
    probes.copy_heads, probes.copy_target, probes.word_target = 2, "block", word_target
    enc = encode_sample(processor, make_choice(52, kind="colour_options"), _end(processor))
    with torch.no_grad():
        parts = step_loss(model, [enc], [1.0], probes)
        letters = {t: k for k, t in enumerate(probes.letter_ids)}
        lines = _option_lines(enc.input_ids, enc.labels, letters, probes.dot_id)
        right = next(at for at, _, ok in lines if ok)
        cols = [right - 2, right - 1, right] if word_target == "line" else [right]
        ids = torch.tensor(enc.input_ids)
        feats = model.encode_images(normalize_uint8(enc.pixels), normalize_uint8(enc.prompt_map))
        emb = model.assemble(ids, feats, model.image_replays(feats, enc.grid, enc.boxes))
        lm = model.mllm.model.language_model
        hidden = lm(inputs_embeds=emb[None], output_hidden_states=True).hidden_states
        last = len(lm.layers) - 1
        answer_at = next(i for i, t in enumerate(enc.labels) if t != IGNORE) - 1
        positions = torch.arange(len(ids))[None]
        att = attention_rows(lm, last, hidden[last], positions, torch.ones_like(positions), [(0, answer_at)])[0]
    expected = -torch.log(att[:2, cols].sum(-1).clamp(min=1e-6)).mean()
    assert torch.allclose(parts.copy, expected, atol=1e-5)


def test_unknown_word_target_is_refused(tmp_path) -> None:
    from gar_ros.errors import InputError
    from gar_ros.training.train import train_tiny

    with pytest.raises(InputError, match="word_target"):
        train_tiny(tmp_path / "m", TinyRecipe(steps=1, word_target="letters", **SMALL))


def test_motion_copy_target_is_the_oldest_and_the_newest_frame_block(built) -> None:
    """With ``copy_motion``, a clip's copy heads attend, at the answer position, to the oldest
    given frame's crop block (first half of the heads) and the newest's (second half); the loss
    is -log of that mass, recomputed here with the layer's own attention."""
    from gar_ros.model.video import clip_replays
    from gar_ros.model.modeling import fill_embeddings
    from gar_ros.training.objective import _motion_blocks, attention_rows

    model, processor = built
    cfg = model.config
    enc = encode_motion(cfg, processor.builder, make_motion(7, n_frames=5), [1, 3, 4],
                        processor.tokenizer, _end(processor))
    ids = list(enc.inputs.prompt.input_ids) + list(enc.answer)
    crop = [int(c) for c in cfg.crop_tokens_ids]
    oldest = [i for i, t in enumerate(ids) if t == crop[0]]
    newest = [i for i, t in enumerate(ids) if t == crop[2]]
    assert oldest and newest and len(oldest) == len(newest) == cfg.replay_side ** 2
    assert _motion_blocks(ids, cfg.crop_tokens_ids, 4) == [(0, oldest), (1, oldest), (2, newest), (3, newest)]
    probes = _probes(model, processor)
    probes.copy_heads = 2
    with torch.no_grad():
        assert step_loss(model, [enc], [1.0], probes).copy is None  # copy_motion off: no target
        probes.copy_motion = True
        parts = step_loss(model, [enc], [1.0], probes)
        frames = list(model.encode_images(torch.cat([v.pixel_values for v in enc.inputs.vision], 0),
                                          torch.cat([v.prompt_map for v in enc.inputs.vision], 0)))
        t_ids = torch.tensor(ids)
        emb = fill_embeddings(model.embed(t_ids[None])[0], t_ids, cfg.image_token_id, torch.stack(frames, 0),
                              clip_replays(cfg, frames, enc.inputs))
        lm = model.mllm.model.language_model
        hidden = lm(inputs_embeds=emb[None], output_hidden_states=True).hidden_states
        last = len(lm.layers) - 1
        at = len(enc.inputs.prompt.input_ids) - 1
        positions = torch.arange(len(ids))[None]
        att = attention_rows(lm, last, hidden[last], positions, torch.ones_like(positions), [(0, at)])[0]
    expected = -(torch.log(att[0, oldest].sum().clamp(min=1e-6)) + torch.log(att[1, newest].sum().clamp(min=1e-6))) / 2
    assert torch.allclose(parts.copy, expected, atol=1e-5)
    assert parts.per_sample is not None and parts.per_sample.shape == (1,)
    assert torch.allclose(parts.per_sample[0], parts.lm)
