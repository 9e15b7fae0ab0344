"""Training objective: the model's next-token loss plus training-only probes.

:func:`step_loss` runs the same computation as ``GarTorchModel.forward`` (vision tower with the
mask embedding, RoI replay, embedding assembly, Llama decoder; cross entropy on the answer
tokens) through the model's public pieces, for image samples and clip samples (the clip prompt
of :mod:`gar_ros.model.video`) in one decoder call. It also returns two training-only signals
(small linear probes, never saved; the checkpoint holds only the GAR network):

- the *replay probe* reads each prompted region's mean replay token (decoder input) and
  predicts the region's colour, shape, centre and log area: a direct signal for the vision
  tower and the mask embedding;
- the *reference probe* reads the decoder's hidden state (after layer ``probe_layer``) at every
  ``<PromptK>`` token of the question text (after the last crop block), and predicts the same
  attributes of region K (for clips also which way it moved). This teaches the decoder early to
  gather a region's replayed features at the places where the question names it, the binding
  that multiple-choice answers ("A. <Prompt1>") and motion questions rely on;
- the *slot probe* reads the hidden state after layer ``slot_layer`` at every crop token and
  predicts its crop slot (the prompt index for images, the frame for clips): the replayed tokens
  replace the crop tokens' embeddings, so a block knows whose it is only from the text before
  it, the first link of every question about a region;
- the *option probe* reads the same hidden state at each multiple-choice option's content token
  (the token after "A.") and predicts the option's letter and whether it is the right answer,
  so that the decoder learns to judge each option where it is written and to know its letter;
  the answer then only has to copy the letter of the option marked right;
- the *copy target* (``copy_weight`` > 0; on in the default recipe, which uses ``copy_target``
  "block" below) with ``copy_target`` "line" asks the first ``copy_heads`` heads of the last
  decoder layer to attend, at the position that predicts a multiple-choice letter, to the right
  option's line ("B", ".", content): the copy step itself.
  Its attention rows are recomputed from the layer's input (:func:`attention_rows`, equal to the
  eager kernel's weights) so that the forward pass keeps the fused kernel. Measured: on one choice
  kind alone it lifts a 200-step run from chance to 71-74 %; in the full mixture it did not;
- with ``copy_target`` "features" the copy target is split by region feature instead: head h of the last
  layer attends, at the answer position, to the crop block of the prompted region that maximises
  feature h (:data:`FEATURE_HEADS`: leftmost, rightmost, topmost, bottommost, largest, smallest;
  then the other region of ``<Prompt0>``'s colour), whatever the question asks. Each head's query is
  then a constant, which a decoder learns in a few dozen steps, and the answer only has to pick
  the head that the question's kind names (relations against an anchor reduce to these: with the
  generator's margins, the one region left of ``<Prompt0>`` is the leftmost prompted region).
  Options that are words (colour / shape options) keep the line target, on :data:`LINE_HEAD`;
- with ``copy_target`` "block" every copy head attends, at the answer position, to the crop
  block of the region that the right option names (word options: the right line): the head's
  query must then carry the question's kind (and for "same colour" ``<Prompt0>``'s colour), a
  bilinear match of query and key that attention computes natively, and the block's slot gives
  the letter. Measured: with the kind probe and a late mixture of 70 % multiple choice, a
  from-scratch run (the default recipe, 725 s) reached 82 % multiple choice, every position kind
  93-100 %;
- word options under the block target: with ``word_target`` "line" the copy heads settled on the
  letters and dots of every option line alike (measured on the 82 % checkpoint: 0.36 of their
  mass on the right line, 0.36 on each other line, 0.000 on any option's word), a local optimum:
  a letter or dot is written before its word, so under causal attention its key cannot tell
  the right line. ``word_target`` "content" targets the right option's word alone, the one key
  that can; measured from scratch, colour / shape options went from 37 / 43 % to 100 / 93 %;
- the *motion copy target* (``copy_motion``): at the answer position of a motion clip the first
  half of the copy heads attend to the oldest given frame's crop block, the other half to the
  newest's (:func:`_motion_blocks`), the two positions the answer compares. Measured on
  motion-only runs: the target is met within 100 steps (copy loss 0.007) while the answer stays
  at chance for 400 steps at 3-5 px per frame, so finding the blocks is not the slow part;
  resolving a 3-5 px shift is. Clips at 8-14 px per frame were learnt in 250 steps and carried
  over to the 3-5 px evaluation clips (83.2 % after 300 steps): hence the recipe's
  ``motion_speed``;
- the *kind probe* reads the hidden state at the answer position of a multiple-choice prompt and
  predicts the question's kind (:data:`gar_ros.synthetic.tasks.CHOICE_KINDS`): the decoder must
  carry the kind to where the answer is written before it can pick a head. Measured from the
  committed checkpoint, multiple choice only, 600 steps: the kind probe converges by step 300 and
  only then does the answer loss fall (62 % after 600 steps, from 47 % with the line target).

The language-model loss is a per-sample mean over answer tokens, weighted per task, so that a
one-letter multiple-choice answer weighs as much as a four-word description.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gar_ros.model.modeling import GarTorchModel, fill_embeddings
from gar_ros.model.processing import normalize_uint8
from gar_ros.model.video import clip_replays
from gar_ros.synthetic.tasks import CHOICE_KINDS
from gar_ros.synthetic.vocabulary import COLOUR_NAMES, SHAPES
from gar_ros.training.batches import EncodedSample
from gar_ros.training.clips import EncodedClip

IGNORE = -100
#: Values of ``Probes.copy_target`` (and of the recipe's ``copy_target``).
COPY_TARGETS = ("line", "features", "block")
#: Values of ``Probes.word_target`` (and of the recipe's ``word_target``).
WORD_TARGETS = ("line", "content")
#: Multiple-choice kinds whose options can each be judged where they are written (against the
#: question and earlier text only): the option probe's "is the answer" target is used for these.
#: For "leftmost" and the like an option's correctness depends on later options, which a causal
#: decoder cannot see at that position.
LOCAL_CHOICE_KINDS = frozenset({"left_of", "right_of", "above", "below", "same_colour",
                                "colour_options", "shape_options"})
#: Target row of a probe: colour id, shape id, cx, cy, log area fraction, direction (0 left,
#: 1 right; -1 none). Ids of -1 are ignored.
Target = tuple[float, float, float, float, float, float]


class RegionProbe(nn.Module):
    """Linear heads on a feature: colour/shape/direction logits, (cx, cy, log area)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.colour = nn.Linear(dim, len(COLOUR_NAMES))
        self.shape = nn.Linear(dim, len(SHAPES))
        self.geometry = nn.Linear(dim, 3)
        self.direction = nn.Linear(dim, 2)

    def forward(self, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """feats (N, D); targets (N, 6) (see :data:`Target`) -> scalar loss."""
        feats = self.norm(feats)
        colour, shape, direction = self.colour(feats), self.shape(feats), self.direction(feats)
        self.stats = {"colour": _accuracy(colour, targets[:, 0]), "shape": _accuracy(shape, targets[:, 1]),
                      "direction": _accuracy(direction, targets[:, 5])}
        loss = _ce(colour, targets[:, 0]) + _ce(shape, targets[:, 1]) + _ce(direction, targets[:, 5])
        geo = self.geometry(feats)
        ref = torch.stack([targets[:, 2] * 2 - 1, targets[:, 3] * 2 - 1, (targets[:, 4] + 4.0) / 2.0], dim=1)
        return loss + 4.0 * F.mse_loss(geo, ref)


class SlotProbe(nn.Module):
    """A linear head on a crop token: which crop slot it fills."""

    def __init__(self, dim: int, slots: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.slot = nn.Linear(dim, slots)

    def forward(self, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """feats (N, D); targets (N,) slot indices -> scalar loss."""
        return _ce(self.slot(self.norm(feats)), targets)


class OptionProbe(nn.Module):
    """Linear heads on an option's content token: its letter and whether it is the answer."""

    def __init__(self, dim: int, letters: int = 4) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.letter = nn.Linear(dim, letters)
        self.correct = nn.Linear(dim, 2)

    def forward(self, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """feats (N, D); targets (N, 2) = letter index, 1 if the option is the answer else 0."""
        feats = self.norm(feats)
        letter, correct = self.letter(feats), self.correct(feats)
        self.stats = {"letter": _accuracy(letter, targets[:, 0]), "correct": _accuracy(correct, targets[:, 1])}
        return _ce(letter, targets[:, 0]) + _ce(correct, targets[:, 1])


def _accuracy(logits: torch.Tensor, target: torch.Tensor) -> float | None:
    """Training-batch accuracy of a probe head over its labelled rows (None when none)."""
    keep = target >= 0
    if not bool(keep.any()):
        return None
    return float((logits.detach()[keep].argmax(-1) == target[keep].long()).float().mean())


def _ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    target = target.long()
    if not bool((target >= 0).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, ignore_index=-1)


@dataclass
class Probes:
    """The training-only probes: on replay tokens and on the decoder at question references."""

    replay: RegionProbe | None
    reference: RegionProbe | None
    options: OptionProbe | None = None
    slots: SlotProbe | None = None
    prompt_ids: tuple[int, ...] = ()  # token ids of <Prompt0>.. (the reference probe's anchors)
    letter_ids: tuple[int, ...] = ()  # token ids of the option letters "A".. (the option probe's)
    dot_id: int = -1  # token id of "." (an option line starts "<letter> .")
    layer: int = 2  # decoder hidden state read by the reference and option probes (0 = embeddings)
    slot_layer: int = 1  # decoder hidden state read by the slot probe
    copy_heads: int = 0  # > 0: attention target on the first copy_heads heads of the last layer
    #: where the copy heads look at the answer position: "line" (the right option's line),
    #: "features" (one head per region feature, :func:`_feature_targets`) or "block" (the right
    #: option's crop block, :func:`_answer_block`)
    copy_target: str = "line"
    kinds: SlotProbe | None = None  # the question's kind at the answer position (multiple choice)
    #: where the copy target is the right option's line (word options under ``copy_target``
    #: "block" and at :data:`LINE_HEAD`; every option under "line"): "line" (letter, ".",
    #: content) or "content" (the content token alone: the only one whose key can tell the line)
    word_target: str = "line"
    #: motion clips get a copy target too: at the answer position the first half of the copy
    #: heads attend to the oldest given frame's crop block, the other half to the newest's
    #: (:func:`_motion_blocks`), so that the answer reads the two positions it compares
    copy_motion: bool = False

    def parameters(self) -> list[tuple[str, nn.Parameter]]:
        out = []
        for name, probe in (("replay", self.replay), ("reference", self.reference), ("options", self.options),
                            ("slots", self.slots), ("kinds", self.kinds)):
            if probe is not None:
                out += [(f"{name}.{n}", p) for n, p in probe.named_parameters()]
        return out


@dataclass
class LossParts:
    lm: torch.Tensor  # weighted mean over samples of the per-sample answer-token cross entropy
    replay: torch.Tensor | None
    reference: torch.Tensor | None
    options: torch.Tensor | None = None
    slots: torch.Tensor | None = None
    copy: torch.Tensor | None = None
    kind: torch.Tensor | None = None
    #: (N,) detached per-sample answer cross entropy (mean over the sample's answer tokens)
    per_sample: torch.Tensor | None = None


def _with_direction(t: Sequence[float], direction: int = -1) -> Target:
    return (float(t[0]), float(t[1]), float(t[2]), float(t[3]), float(t[4]), float(direction))


def step_loss(model: GarTorchModel, items: Sequence[EncodedSample | EncodedClip],
              weights: Sequence[float], probes: Probes) -> LossParts:
    """Loss of one micro-batch of image samples and clips (``weights[i]`` = item i's LM weight)."""
    cfg = model.config
    pix, maps, counts = [], [], []
    for it in items:
        if isinstance(it, EncodedClip):
            pix += [v.pixel_values for v in it.inputs.vision]
            maps += [v.prompt_map for v in it.inputs.vision]
            counts.append(len(it.inputs.vision))
        else:
            pix.append(normalize_uint8(it.pixels))
            maps.append(normalize_uint8(it.prompt_map))
            counts.append(int(it.pixels.shape[0]))
    feats = model.encode_images(torch.cat(pix, 0), torch.cat(maps, 0)).split(counts, 0)
    prompt_ids = {int(t): k for k, t in enumerate(probes.prompt_ids)}
    crop_ids = set(int(c) for c in cfg.crop_tokens_ids)
    rows, id_rows, label_rows = [], [], []
    replay_feats, replay_targets = [], []
    ref_at, ref_targets = [], []
    opt_at, opt_targets = [], []
    letters = {int(t): k for k, t in enumerate(probes.letter_ids)}
    slot_of = {int(c): k for k, c in enumerate(cfg.crop_tokens_ids)}
    slot_at, slot_targets = [], []
    kind_at, kind_targets = [], []
    copy_at: list[tuple[int, int, int, list[int]]] = []  # (batch, query, head, key positions)
    for b, it in enumerate(items):
        if isinstance(it, EncodedClip):
            frames = list(feats[b])
            replays = clip_replays(cfg, frames, it.inputs)
            ids = list(it.inputs.prompt.input_ids) + list(it.answer)
            labels = [IGNORE] * len(it.inputs.prompt.input_ids) + list(it.answer)
            t_ids = torch.tensor(ids, dtype=torch.long)
            emb = fill_embeddings(model.embed(t_ids[None])[0], t_ids, cfg.image_token_id,
                                  torch.stack(frames, 0), replays)
            side = cfg.replay_side ** 2
            for crop_id, tokens in replays:  # one region per motion clip: one block per slot
                k = cfg.crop_tokens_ids.index(crop_id)
                for j in range(tokens.shape[0] // side):
                    if k in it.frame_targets:
                        replay_feats.append(tokens[j * side:(j + 1) * side].mean(0))
                        replay_targets.append(_with_direction(it.frame_targets[k]))
            targets = {0: _with_direction(it.frame_targets[max(it.frame_targets)], it.direction)}
            # the last crop token sees every earlier frame's block: it can tell the motion
            last = max(i for i, t in enumerate(ids) if t in crop_ids)
            ref_at.append((b, last))
            ref_targets.append(targets[0])
            if probes.copy_heads > 0 and probes.copy_motion:
                answer_at = len(it.inputs.prompt.input_ids) - 1
                for head, cols in _motion_blocks(ids, cfg.crop_tokens_ids, probes.copy_heads):
                    copy_at.append((b, answer_at, head, cols))
        else:
            ids, labels = list(it.input_ids), list(it.labels)
            t_ids = torch.tensor(ids, dtype=torch.long)
            replays = model.image_replays(feats[b], it.grid, it.boxes)
            emb = model.assemble(t_ids, feats[b], replays)
            for k, (_, tokens) in zip(sorted(it.boxes), replays):
                if k in it.region_targets:
                    replay_feats.append(tokens.mean(0))
                    replay_targets.append(_with_direction(it.region_targets[k]))
            targets = {k: _with_direction(t) for k, t in it.region_targets.items()}
        last_crop = max((i for i, t in enumerate(ids) if t in crop_ids), default=-1)
        for i in range(last_crop + 1, len(ids)):
            k = prompt_ids.get(ids[i])
            if k is not None and k in targets and labels[i] == IGNORE:
                ref_at.append((b, i))
                ref_targets.append(targets[k])
        lines = (_option_lines(ids, labels, letters, probes.dot_id)
                 if probes.options is not None or probes.copy_heads > 0 else [])
        if probes.options is not None:
            local = getattr(it, "kind", "") in LOCAL_CHOICE_KINDS
            for at, letter, right in lines:
                opt_at.append((b, at))
                opt_targets.append((float(letter), float(right) if local else -1.0))
        if probes.copy_heads > 0 and lines:
            answer_at = next((i for i, t in enumerate(labels) if t != IGNORE), 0) - 1
            right_line = next(([at - 2, at - 1, at] for at, _, right in lines if right), [])
            if probes.word_target == "content":
                right_line = right_line[-1:]  # the content token alone
            if probes.copy_target == "features" and isinstance(it, EncodedSample):
                for head, cols in _feature_targets(ids, it.region_targets, cfg.crop_tokens_ids, right_line,
                                                   ids[lines[0][0]] in prompt_ids):
                    copy_at.append((b, answer_at, head, cols))
            elif probes.copy_target == "block" and isinstance(it, EncodedSample):
                cols = _answer_block(ids, right_line, prompt_ids, cfg.crop_tokens_ids) or right_line
                for head in range(probes.copy_heads):
                    copy_at.append((b, answer_at, head, cols))
            else:
                for head in range(probes.copy_heads):  # the right option's line: letter, ".", content
                    copy_at.append((b, answer_at, head, right_line))
        if probes.kinds is not None and lines and getattr(it, "kind", "") in CHOICE_KINDS:
            kind_at.append((b, next(i for i, t in enumerate(labels) if t != IGNORE) - 1))
            kind_targets.append(CHOICE_KINDS.index(it.kind))
        if probes.slots is not None:
            for i, t in enumerate(ids):
                if t in slot_of:
                    slot_at.append((b, i))
                    slot_targets.append(slot_of[t])
        rows.append(emb)
        id_rows.append(ids)
        label_rows.append(labels)
    longest = max(len(r) for r in id_rows)
    embeds = rows[0].new_zeros((len(rows), longest, rows[0].shape[-1]))
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    lab = torch.full((len(rows), longest), IGNORE, dtype=torch.long)
    for b, (r, labels) in enumerate(zip(rows, label_rows)):
        embeds[b, : r.shape[0]] = r
        mask[b, : r.shape[0]] = 1
        lab[b, : len(labels)] = torch.tensor(labels)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    hidden_needed = any(p is not None for p in (probes.reference, probes.options, probes.slots, probes.kinds))
    out = model.mllm.model.language_model(inputs_embeds=embeds, attention_mask=mask,
                                          position_ids=positions,
                                          output_hidden_states=hidden_needed or bool(copy_at))
    logits = model.mllm.lm_head(out.last_hidden_state)
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), lab[:, 1:].reshape(-1),
                         ignore_index=IGNORE, reduction="none").view(len(rows), -1)
    tokens = (lab[:, 1:] != IGNORE).sum(1).clamp(min=1)
    w = torch.tensor(list(weights), dtype=torch.float32)
    per_sample = ce.sum(1) / tokens
    lm = (per_sample * w).sum() / w.sum()
    replay_loss = reference_loss = None
    if probes.replay is not None and replay_feats:
        replay_loss = probes.replay(torch.stack(replay_feats, 0), torch.tensor(replay_targets))
    options_loss = None
    if probes.reference is not None and ref_at:
        hidden = out.hidden_states[probes.layer]
        picked = torch.stack([hidden[b, i] for b, i in ref_at], 0)
        reference_loss = probes.reference(picked, torch.tensor(ref_targets))
    if probes.options is not None and opt_at:
        hidden = out.hidden_states[probes.layer]
        picked = torch.stack([hidden[b, i] for b, i in opt_at], 0)
        options_loss = probes.options(picked, torch.tensor(opt_targets))
    slots_loss = None
    if probes.slots is not None and slot_at:
        hidden = out.hidden_states[probes.slot_layer]
        picked = torch.stack([hidden[b, i] for b, i in slot_at], 0)
        slots_loss = probes.slots(picked, torch.tensor(slot_targets))
    kind_loss = None
    if probes.kinds is not None and kind_at:
        hidden = out.hidden_states[probes.layer]
        picked = torch.stack([hidden[b, i] for b, i in kind_at], 0)
        kind_loss = probes.kinds(picked, torch.tensor(kind_targets))
    copy_loss = None
    if copy_at:
        lm_model = model.mllm.model.language_model
        layer = len(lm_model.layers) - 1
        rows = [(b, p) for b, p, _, _ in copy_at]
        att = attention_rows(lm_model, layer, out.hidden_states[layer], positions, mask, rows)
        mass = torch.stack([att[j, head, cols].sum() for j, (_, _, head, cols) in enumerate(copy_at)], 0)
        copy_loss = -torch.log(mass.clamp(min=1e-6)).mean()
    return LossParts(lm, replay_loss, reference_loss, options_loss, slots_loss, copy_loss, kind_loss,
                     per_sample.detach())


def attention_rows(lm_model: nn.Module, layer: int, hidden_in: torch.Tensor, positions: torch.Tensor,
                   mask: torch.Tensor, rows: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Attention probabilities of decoder ``layer`` at query positions ``rows`` [(batch, t)].

    ``hidden_in`` (B, T, D) is the layer's input (``hidden_states[layer]``), ``positions`` and
    ``mask`` (B, T) the position ids and the padding mask of the forward pass. Returns (R, heads, T):
    the same numbers as eager attention's weights (causal, padding masked), recomputed for a few
    rows so that the forward pass itself can keep the fused (sdpa) kernel.
    """
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    block = lm_model.layers[layer]
    attn = block.self_attn
    x = block.input_layernorm(hidden_in)
    bsz, t, _ = x.shape
    q = attn.q_proj(x).view(bsz, t, -1, attn.head_dim).transpose(1, 2)
    k = attn.k_proj(x).view(bsz, t, -1, attn.head_dim).transpose(1, 2)
    cos, sin = lm_model.rotary_emb(x, positions)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    k = repeat_kv(k, attn.num_key_value_groups)
    b_idx = torch.tensor([b for b, _ in rows])
    t_idx = torch.tensor([p for _, p in rows])
    scores = torch.einsum("rhd,rhtd->rht", q[b_idx, :, t_idx], k[b_idx]) * attn.scaling
    keys = torch.arange(t)
    allowed = (keys[None, :] <= t_idx[:, None]) & mask[b_idx].bool()
    scores = scores.masked_fill(~allowed[:, None, :], float("-inf"))
    return torch.softmax(scores.float(), dim=-1)


#: Region features read by the feature heads (head h attends to the region with the largest
#: value of feature h): -cx (leftmost), cx, -cy (topmost), cy, log area, -log area.
FEATURE_HEADS = ("left", "right", "up", "down", "larger", "smaller")
SAME_COLOUR_HEAD = len(FEATURE_HEADS)  # the other region of <Prompt0>'s colour
LINE_HEAD = SAME_COLOUR_HEAD + 1  # options that are words: the right option's line
POSITION_GAP = 0.08  # centre gap (fraction of the image) for a feature head's target to count
AREA_GAP = 0.30  # log-area gap (about a 1.35 ratio)


def _feature_targets(ids: Sequence[int], regions: Mapping[int, Sequence[float]], crop_ids: Sequence[int],
                     right_line: list[int], options_are_regions: bool) -> list[tuple[int, list[int]]]:
    """(head, key positions) of the feature-head copy target of one multiple-choice prompt.

    Each feature head attends, at the answer position, to the crop block of the region that
    maximises its feature (only where the best region leads the next by the gap), whatever the
    question: the answer then only selects a head by the question's kind, and the block's slot
    gives the letter. Options that are words (colour / shape options) target the right line.
    """
    if not options_are_regions:
        return [(LINE_HEAD, right_line)]
    blocks = {k: [i for i, t in enumerate(ids) if t == crop_ids[k]] for k in regions}
    blocks = {k: v for k, v in blocks.items() if v}
    if len(blocks) < 2:
        return []
    out = []
    feats = {k: (-regions[k][2], regions[k][2], -regions[k][3], regions[k][3], regions[k][4], -regions[k][4])
             for k in blocks}
    for head in range(len(FEATURE_HEADS)):
        ranked = sorted(blocks, key=lambda k: -feats[k][head])
        gap = AREA_GAP if head >= 4 else POSITION_GAP
        if feats[ranked[0]][head] - feats[ranked[1]][head] >= gap:
            out.append((head, blocks[ranked[0]]))
    colour0 = regions.get(0, (-1,))[0]
    same = [k for k in blocks if k != 0 and regions[k][0] == colour0]
    if 0 in blocks and colour0 >= 0 and len(same) == 1:
        out.append((SAME_COLOUR_HEAD, blocks[same[0]]))
    return out


def _motion_blocks(ids: Sequence[int], crop_ids: Sequence[int], heads: int) -> list[tuple[int, list[int]]]:
    """(head, key positions) of a motion clip's copy target: heads ``0 .. heads//2 - 1`` attend to
    the crop block of the oldest given frame (the lowest crop slot present), the rest to the
    newest's (the highest); [] when the clip shows fewer than two frames' blocks."""
    slot_of = {int(c): k for k, c in enumerate(crop_ids)}
    blocks: dict[int, list[int]] = {}
    for i, t in enumerate(ids):
        k = slot_of.get(int(t))
        if k is not None:
            blocks.setdefault(k, []).append(i)
    if len(blocks) < 2 or heads < 2:
        return []
    oldest, newest = blocks[min(blocks)], blocks[max(blocks)]
    return [(h, oldest if h < heads // 2 else newest) for h in range(heads)]


def _answer_block(ids: Sequence[int], right_line: Sequence[int], prompt_ids: Mapping[int, int],
                  crop_ids: Sequence[int]) -> list[int]:
    """Positions of the crop block of the region the right option names ("B. <Prompt2>" -> the
    block of slot 2); [] when the option is a word or the line is unknown."""
    if not right_line:
        return []
    k = prompt_ids.get(int(ids[right_line[-1]]))
    if k is None or k >= len(crop_ids):
        return []
    return [i for i, t in enumerate(ids) if t == crop_ids[k]]


def _option_lines(ids: Sequence[int], labels: Sequence[int], letters: Mapping[int, int],
                  dot_id: int) -> list[tuple[int, int, bool]]:
    """(content position, letter index, is the answer) of each "<letter> . <content>" option in
    the prompt of a sequence whose answer starts with a letter; [] otherwise."""
    answer = next((t for t in labels if t != IGNORE), None)
    if answer not in letters:
        return []
    end = next(i for i, t in enumerate(labels) if t != IGNORE)
    return [(i + 2, letters[t], t == answer) for i, t in enumerate(ids[: end - 2])
            if t in letters and ids[i + 1] == dot_id]


def task_weights(weights: Mapping[str, float], tasks: Sequence[str]) -> list[float]:
    """The LM weight of each item from its task name (1.0 for tasks not listed)."""
    return [float(weights.get(t, 1.0)) for t in tasks]
