"""GAR over a short clip: K frames of tracked regions in one prompt (GAR's video mode).

Vision input (as the official ``feature_replay_video``): each of the K frames (oldest first) is ONE
tile, the whole frame squashed to ``tile_size``² (BICUBIC, like the thumbnail; no thumbnail, no
grid), with its own visual-prompt map (NEAREST). ``<|image|>`` expands to ``K * tokens_per_tile``
tokens, frame 0 first. A region's replay in frame k is RoI-aligned from frame k's own 16x16 token
map with the box of the region's mask in that frame (``replay_geometry`` as for images), and it
fills crop slot k, i.e. ``crop_tokens_ids[k]`` = ``<|reserved_special_token_{2+k}|>``. Hence
``K <= prompt_numbers`` (5 for GAR).

Text template (the official code publishes none for video; this is gar_ros's choice). ``[k]`` is
the N = ``replay_side**2`` (256) crop tokens of slot k, written only for the frames in which the
region is visible, oldest first:

- describe one region (``<P>`` = ``<Prompt1>``, as the single-image describe)::

    There are some objects I am curious about: <P>;\\n<P>: [0][1]...[K-1]Describe this masked region in detail.

- question over regions ``<Prompt0>`` .. ``<Prompt{R-1}>`` (``region_ids[i]`` is ``<Prompt i>``)::

    There are some objects I am curious about: <Prompt0>; <Prompt1>; \\n<Prompt0>: [0]...[K-1]\\n<Prompt1>: [0]...[K-1]\\n\\n{question}

i.e. exactly the single-image templates with the one crop block of each prompt replaced by its
per-frame blocks; inside the checkpoint's chat template like images. With K = 1 the text differs
from the single-image one only by which crop id marks the (replaced) slot.

A region missing in some frames: its line has no block for those frames (fewer crop tokens); the
frames themselves stay in the image block (the other regions and the scene still use them) and
their prompt maps do not mark the region. A region missing from every frame of the clip raises
:class:`UnknownRegionError`.

Prompt maps: GAR adds the mask embedding BEFORE the vision tower, so a frame's tokens depend on
which pixels its map marks. ``prompt_map="prompt"`` (default) marks only the asked regions, as
the single-image path does (region i with its prompt id; the describe region with id 1): each
frame is encoded once per region set and reused by every later description or query of the same
region set that picks it. ``"frame"`` marks every region of the frame (``ClipFrame.all_regions``),
so one encoding per frame serves all regions and queries; but with the official ``reference``
replay geometry the replay barely depends on the box, so the marked pixels are what tells the
regions apart: use ``"frame"`` only with checkpoints trained that way (or ``corrected`` geometry).
Encodings are cached in ``ClipFrame.features`` under ``("clip-tile", <hash of the binary map>)``
(the mask embedding sees only the binary map) and recorded through ``ClipFrame.store``.

``context_frames = 0`` is the single-image path: :func:`describe_clip` / :func:`ask_clip` with
``k=0`` call ``model.describe`` / ``model.ask`` on the newest given frame, token for token.

API: :func:`describe_clip` / :func:`describe_clips` (batched) -> RegionText with ``frame_stamps``
(the frames showing the region, newest last); :func:`ask_clip` -> Answer (``frame_stamp`` = newest
frame). Training on clips: :func:`prepare_clip` / :func:`task_clip_inputs` + :func:`clip_forward`
build exactly the inference prompt, differentiably. Uncached frames of a clip go through the
vision engine in one call.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gar_ros.errors import InputError, TooManyRegionsError, UnknownRegionError
from gar_ros.model.generation import greedy_generate
from gar_ros.model.modeling import fill_embeddings
from gar_ros.model.processing import (
    build_prompt_map,
    mask_box,
    preprocess_image,
    preprocess_prompt_map,
    region_mask,
)
from gar_ros.model.prompts import DESCRIBE_PROMPT_INDEX
from gar_ros.model.replay import merge_tiles, replay_features
from gar_ros.types import Answer, AnswerStatus, Box, Region, RegionText

CLIP_FEATURE_KEY = "clip-tile"
PROMPT_MAP_MODES: tuple[str, ...] = ("frame", "prompt")


# ----------------------------------------------------------------------------- text
@dataclass
class ClipPrompt:
    """Token ids of a clip prompt and its slot layout.

    ``visible[i]``: frame indices (ascending) whose crop blocks follow prompt ``prompt_indices[i]``.
    ``image_tokens`` = frames * tokens_per_tile.
    """

    input_ids: list[int]
    frames: int
    prompt_indices: list[int]
    visible: list[list[int]]
    image_tokens: int


def _blocks(builder: Any, frames: Sequence[int]) -> list[int]:
    ids: list[int] = []
    for k in frames:
        ids += builder.crop_piece(k)
    return ids


def clip_prompt_ids(
    builder: Any,
    tokens_per_tile: int,
    frames: int,
    visible: Sequence[Sequence[int]],
    question: str | None,
) -> ClipPrompt:
    """Build the clip prompt (see module docstring) with a :class:`PromptBuilder`.

    ``visible[i]`` lists the frames in which region i is visible; ``question=None`` describes the
    single region as ``<Prompt1>``; otherwise region i is ``<Prompt i>``.
    """
    if not 1 <= frames <= len(builder.crop_tokens_ids):
        raise InputError(f"a clip has 1..{len(builder.crop_tokens_ids)} frames, got {frames}")
    vis = [sorted(set(int(k) for k in v)) for v in visible]
    for v in vis:
        if any(k < 0 or k >= frames for k in v):
            raise InputError(f"frame index out of range 0..{frames - 1}: {v}")
    if question is None:
        if len(vis) != 1:
            raise InputError("a clip description is about exactly one region")
        indices = [DESCRIBE_PROMPT_INDEX]
        pieces: list[Any] = builder.describe_pieces(DESCRIBE_PROMPT_INDEX, crop=lambda _k: _blocks(builder, vis[0]))
    else:
        if len(vis) > builder.prompt_numbers:
            raise TooManyRegionsError(
                f"{len(vis)} regions in one question; this model takes at most {builder.prompt_numbers}"
            )
        indices = list(range(len(vis)))
        pieces = builder.question_pieces(indices, question, crop=lambda k: _blocks(builder, vis[k]))
    image_tokens = frames * tokens_per_tile
    ids = builder.build(builder.pieces_ids(pieces), image_tokens)
    return ClipPrompt(ids, frames, indices, vis, image_tokens)


# ----------------------------------------------------------------------------- vision
@dataclass
class ClipVision:
    """Per-frame vision inputs: ``pixel_values`` (1, 3, S, S) and ``prompt_map`` (1, 1, S, S)."""

    pixel_values: torch.Tensor
    prompt_map: torch.Tensor
    key: tuple[str, str]


def _map_key(binary: np.ndarray) -> tuple[str, str]:
    digest = hashlib.blake2b(np.packbits(binary).tobytes(), digest_size=16)
    digest.update(repr(binary.shape).encode())
    return (CLIP_FEATURE_KEY, digest.hexdigest())


def frame_vision_inputs(
    image: np.ndarray | None,
    size: tuple[int, int],
    marked: Sequence[np.ndarray],
    prompt_ids: Sequence[int],
    config: Any,
) -> ClipVision:
    """One frame as one tile + its prompt map (``marked`` masks at frame size, ``prompt_ids`` theirs).

    ``image`` may be None when only the cache key is needed.
    """
    h, w = size
    pmap = build_prompt_map(list(marked), list(prompt_ids), config.no_prompt_id, h, w)
    key = _map_key(pmap != config.no_prompt_id)
    if image is None:
        return ClipVision(torch.empty(0), torch.empty(0), key)
    tiles = preprocess_image(image, config.tile_size, 1, thumbnail=False)
    maps = preprocess_prompt_map(pmap, tiles.grid, config.tile_size, thumbnail=False)
    return ClipVision(tiles.pixel_values, maps, key)


# ----------------------------------------------------------------------------- model access
@dataclass
class _Parts:
    config: Any
    builder: Any
    vision: Any
    language: Any
    decode: Callable[[Sequence[int]], str]
    eos_ids: frozenset[int]
    pad_id: int
    replay: bool = True


def _parts(model: Any) -> _Parts:
    """The model core's pieces used here (attribute names of :class:`GarModel`)."""
    return _Parts(
        config=model.config,
        builder=model.processor.builder,
        vision=model.vision,
        language=model.language,
        decode=model.processor.decode,
        eos_ids=frozenset(model.eos_ids),
        pad_id=int(model.pad_id),
        replay=bool(getattr(model, "replay_enabled", True)),
    )


# ----------------------------------------------------------------------------- clip assembly
@dataclass
class ClipInputs:
    """Everything needed to run a clip prompt.

    ``prompt`` text layout; ``vision[k]`` frame k's tile + map; ``boxes[i][k]`` normalised replay
    box of region i in frame k (only visible frames); ``frame_stamps`` oldest first.
    """

    prompt: ClipPrompt
    vision: list[ClipVision]
    boxes: list[dict[int, Box]]
    frame_stamps: list[int]
    region_ids: list[str]


def prepare_clip(
    config: Any,
    builder: Any,
    frames: Sequence[Any],
    region_ids: Sequence[str],
    question: str | None,
    *,
    prompt_map: str = "prompt",
    need_pixels: Callable[[int, tuple[str, str]], bool] | None = None,
) -> ClipInputs:
    """Validate a clip and build its prompt, per-frame vision inputs and replay boxes.

    ``frames``: objects with ``stamp``, ``image``, ``size`` (H, W), ``regions`` (id -> Region) and
    optionally ``all_regions``; oldest first. ``need_pixels(k, key)`` False skips preprocessing
    frame k's pixels (its features are cached).
    """
    if prompt_map not in PROMPT_MAP_MODES:
        raise InputError(f"prompt_map must be one of {PROMPT_MAP_MODES}, got {prompt_map!r}")
    if not frames:
        raise InputError("a clip needs at least one frame")
    if len(frames) > config.prompt_numbers:
        raise InputError(f"{len(frames)} frames in a clip; this model takes at most {config.prompt_numbers}")
    stamps = [int(f.stamp) for f in frames]
    if stamps != sorted(stamps):
        raise InputError("clip frames must be ordered oldest first")
    ids = list(region_ids)
    if len(set(ids)) != len(ids):
        raise InputError("duplicate region ids in one clip prompt")
    missing = [rid for rid in ids if not any(rid in f.regions for f in frames)]
    if missing:
        raise UnknownRegionError(missing)
    describe = question is None
    prompt_of = {rid: (DESCRIBE_PROMPT_INDEX if describe else i) for i, rid in enumerate(ids)}
    visible: list[list[int]] = [[k for k, f in enumerate(frames) if rid in f.regions] for rid in ids]
    prompt = clip_prompt_ids(builder, config.tokens_per_tile, len(frames), visible, question)

    vision: list[ClipVision] = []
    boxes: list[dict[int, Box]] = [{} for _ in ids]
    for k, frame in enumerate(frames):
        h, w = (int(frame.size[0]), int(frame.size[1]))
        asked: list[tuple[int, np.ndarray]] = []
        for i, rid in enumerate(ids):
            region: Region | None = frame.regions.get(rid)
            if region is None:
                continue
            mask = region_mask(region, w, h)
            boxes[i][k] = mask_box(mask, config.replay_geometry)
            asked.append((prompt_of[rid], mask))
        asked.sort(key=lambda pm: pm[0])
        marked = [m for _, m in asked]
        pids = [p for p, _ in asked]
        if prompt_map == "frame":
            asked_objs = {id(frame.regions[rid]) for rid in ids if rid in frame.regions}
            for other in getattr(frame, "all_regions", {}).values():
                if id(other) not in asked_objs:
                    marked.append(region_mask(other, w, h))
                    pids.append(0)
        key_only = frame_vision_inputs(None, (h, w), marked, pids, config)
        if need_pixels is not None and not need_pixels(k, key_only.key):
            vision.append(key_only)
            continue
        if frame.image is None:
            raise InputError(f"frame {frame.stamp} has neither its image nor features for these regions")
        vision.append(frame_vision_inputs(frame.image, (h, w), marked, pids, config))
    return ClipInputs(prompt, vision, boxes, stamps, ids)


def clip_replays(config: Any, features: Sequence[torch.Tensor], inputs: ClipInputs) -> list[tuple[int, torch.Tensor]]:
    """Replay tokens as ``(crop id, tokens)`` for :func:`fill_embeddings`.

    Crop id k's positions are filled in text order: region 0's frame-k block, region 1's, ...
    ``features[k]`` is frame k's (tokens_per_tile, D) tile tokens.
    """
    per_slot: dict[int, list[torch.Tensor]] = {}
    maps = [merge_tiles(f[None], (1, 1)) for f in features]
    for i in range(len(inputs.region_ids)):
        for k in sorted(inputs.boxes[i]):
            tokens = replay_features(
                maps[k], inputs.boxes[i][k], config.replay_side, config.replay_geometry, config.feature_stride
            )
            per_slot.setdefault(k, []).append(tokens)
    return [(config.crop_token_id(k), torch.cat(per_slot[k], dim=0)) for k in sorted(per_slot)]


def clip_embeddings(
    config: Any,
    embed: Callable[[torch.Tensor], torch.Tensor],
    inputs: ClipInputs,
    features: Sequence[torch.Tensor],
    *,
    replay: bool = True,
) -> torch.Tensor:
    """(L, D) prompt embeddings: text embedded, frames' tile tokens and replays filled in.

    Differentiable when ``embed`` and ``features`` are (training on clips). ``replay=False``
    leaves the crop tokens' own embeddings (the model's ablation switch ``replay_enabled``).
    """
    ids = torch.tensor(inputs.prompt.input_ids, dtype=torch.long)
    emb = embed(ids[None].to(features[0].device))[0]
    image = torch.stack(list(features), dim=0)
    replays = clip_replays(config, features, inputs) if replay else []
    return fill_embeddings(emb, ids.to(emb.device), config.image_token_id, image, replays)


def encode_clip(parts: _Parts, frames: Sequence[Any], inputs: ClipInputs) -> list[torch.Tensor]:
    """Frame features (tokens_per_tile, D) per frame, from ``frame.features`` or one batched encode."""
    out: list[torch.Tensor | None] = []
    todo: list[int] = []
    for k, frame in enumerate(frames):
        cached = getattr(frame, "features", {}).get(inputs.vision[k].key)
        out.append(cached)
        if cached is None:
            todo.append(k)
    if todo:
        pix = torch.cat([inputs.vision[k].pixel_values for k in todo], dim=0)
        maps = torch.cat([inputs.vision[k].prompt_map for k in todo], dim=0)
        feats = parts.vision.encode(pix, maps)
        for j, k in enumerate(todo):
            value = feats[j].detach()
            out[k] = value
            store = getattr(frames[k], "store", None)
            if store is not None:
                store(inputs.vision[k].key, value)
    return [t for t in out if t is not None]


def _cached(frames: Sequence[Any]) -> Callable[[int, tuple[str, str]], bool]:
    def need(k: int, key: tuple[str, str]) -> bool:
        return key not in getattr(frames[k], "features", {})

    return need


def _run(
    parts: _Parts,
    frames: Sequence[Any],
    region_ids: Sequence[str],
    question: str | None,
    *,
    max_new_tokens: int,
    prompt_map: str,
    on_text: Callable[[str], bool] | None = None,
) -> tuple[list[int], bool, ClipInputs]:
    inputs = prepare_clip(
        parts.config, parts.builder, frames, region_ids, question, prompt_map=prompt_map, need_pixels=_cached(frames)
    )
    feats = encode_clip(parts, frames, inputs)
    with torch.inference_mode():
        emb = clip_embeddings(parts.config, parts.language.embed, inputs, feats, replay=parts.replay)
    on_step = None
    if on_text is not None:
        so_far: list[int] = []

        def on_step(step: int, emitted: list[int | None]) -> bool:
            if emitted[0] is not None:
                so_far.append(emitted[0])
            return bool(on_text(parts.decode(so_far)))

    result = greedy_generate(
        parts.language, [emb], eos_ids=parts.eos_ids, max_new_tokens=max_new_tokens, pad_id=parts.pad_id,
        on_step=on_step,
    )
    return result.tokens[0], result.cancelled, inputs


# ----------------------------------------------------------------------------- training
def clip_forward(
    torch_model: Any,
    clips: Sequence[ClipInputs],
    answers: Sequence[Sequence[int]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable loss over clip prompts (training on clips with :class:`GarTorchModel`).

    Each sequence is ``clips[b]``'s prompt followed by ``answers[b]`` (answer ids, end id
    included); sequences are right-padded. Returns (mean next-token cross entropy over the answer
    tokens, logits (B, L, V)). Vision runs through ``torch_model.encode_images`` with gradients.
    """
    if len(clips) != len(answers) or not clips:
        raise InputError("clip_forward needs one answer per clip and at least one clip")
    cfg = torch_model.config
    dev = torch_model.embed_layer.weight.device
    pix = torch.cat([v.pixel_values for c in clips for v in c.vision], dim=0).to(dev)
    maps = torch.cat([v.prompt_map for c in clips for v in c.vision], dim=0).to(dev)
    feats = torch_model.encode_images(pix, maps)
    rows, labels = [], []
    start = 0
    for clip, answer in zip(clips, answers):
        n = len(clip.vision)
        prompt = clip_embeddings(cfg, torch_model.embed, clip, list(feats[start : start + n]))
        start += n
        ans = torch.tensor(list(answer), dtype=torch.long, device=dev)
        rows.append(torch.cat([prompt, torch_model.embed(ans[None])[0].to(prompt.dtype)], dim=0))
        labels.append(torch.cat([torch.full((prompt.shape[0],), -100, dtype=torch.long, device=dev), ans]))
    longest = max(int(r.shape[0]) for r in rows)
    emb = rows[0].new_zeros((len(rows), longest, rows[0].shape[1]))
    lab = torch.full((len(rows), longest), -100, dtype=torch.long, device=dev)
    mask = torch.zeros((len(rows), longest), dtype=torch.long, device=dev)
    for b, (r, l) in enumerate(zip(rows, labels)):
        emb[b, : r.shape[0]] = r
        lab[b, : l.shape[0]] = l
        mask[b, : r.shape[0]] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits, _ = torch_model.language_forward(emb, mask, positions)
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), lab[:, 1:].reshape(-1), ignore_index=-100
    )
    return loss, logits


def task_clip_inputs(
    config: Any,
    builder: Any,
    sample: Any,
    context_frames: int,
    *,
    window_ns: int = 1_000_000_000,
    prompt_map: str = "prompt",
) -> ClipInputs:
    """ClipInputs of a clip task sample, keyframes chosen as :class:`FrameContext` chooses them.

    ``sample``: ``frames`` (scenes with ``image`` and ``stamp``, oldest first), ``clip_regions[k]``
    (regions of frame k, ids stable across frames), ``regions`` (the asked regions, ids as in the
    clip; region i is ``<Prompt i>``) and ``question`` (None = describe the one region), as
    :class:`gar_ros.synthetic.tasks.TaskSample`. Training on these (with :func:`clip_forward`)
    sees exactly what inference with ``context_frames`` = K and ``context_window`` sees.
    """
    from gar_ros.context.keyframes import choose_keyframes

    stamps = [int(getattr(f, "stamp", 0) or 0) for f in sample.frames]
    if len(set(stamps)) != len(stamps):
        stamps = [k * 100_000_000 for k in range(len(sample.frames))]
    frames = clip_frames(
        [f.image for f in sample.frames],
        [{r.id: r for r in regs} for regs in sample.clip_regions],
        stamps=stamps,
    )
    ids = [r.id for r in sample.regions]
    chosen = choose_keyframes(frames, ids, min(int(context_frames), config.prompt_numbers), window_ns)
    return prepare_clip(config, builder, chosen, ids, sample.question, prompt_map=prompt_map)


# ----------------------------------------------------------------------------- public API
def describe_clip(
    model: Any,
    frames: Sequence[Any],
    region_id: str,
    *,
    max_new_tokens: int = 64,
    k: int | None = None,
    prompt_map: str = "prompt",
) -> RegionText:
    """Describe ``region_id`` over ``frames`` (oldest first; ClipFrame-like objects).

    ``k=0`` uses only the newest frame through ``model.describe`` (the single-image path);
    otherwise all given frames (at most ``prompt_numbers``) form the clip. ``frame_stamps`` of the
    result lists the frames used, newest last.
    """
    if k == 0:
        frame = frames[-1]
        if region_id not in frame.regions:
            raise UnknownRegionError([region_id])
        if frame.image is None:
            raise InputError(f"the image of frame {frame.stamp} is no longer kept")
        text = model.describe(
            frame.image, [frame.regions[region_id]], max_new_tokens=max_new_tokens, frame_key=frame.key
        )[0]
        text.region_id = region_id
        text.frame_stamps = [int(frame.stamp)]
        return text
    return describe_clips(model, [(frames, region_id)], max_new_tokens=max_new_tokens, prompt_map=prompt_map)[0]


def describe_clips(
    model: Any,
    requests: Sequence[tuple[Sequence[Any], str]],
    *,
    max_new_tokens: int = 64,
    prompt_map: str = "prompt",
) -> list[RegionText]:
    """Describe several regions, each over its own clip ``(frames, region_id)``, generation batched.

    Frames shared between requests are encoded once per prompt map (their ``features`` cache);
    up to ``model.max_batch`` prompts are generated together (left padding, same greedy tokens).
    """
    parts = _parts(model)
    prepared = []
    for frames, region_id in requests:
        inputs = prepare_clip(
            parts.config, parts.builder, frames, [region_id], None, prompt_map=prompt_map,
            need_pixels=_cached(frames),
        )
        prepared.append((frames, inputs))
    embeds = []
    for frames, inputs in prepared:
        feats = encode_clip(parts, frames, inputs)
        with torch.inference_mode():
            embeds.append(clip_embeddings(parts.config, parts.language.embed, inputs, feats, replay=parts.replay))
    batch = max(1, int(getattr(model, "max_batch", 8)))
    out: list[RegionText] = []
    for start in range(0, len(embeds), batch):
        result = greedy_generate(
            parts.language, embeds[start : start + batch], eos_ids=parts.eos_ids,
            max_new_tokens=max_new_tokens, pad_id=parts.pad_id,
        )
        for (_, inputs), tokens in zip(prepared[start : start + batch], result.tokens):
            used = [inputs.frame_stamps[j] for j in inputs.prompt.visible[0]]
            out.append(RegionText(inputs.region_ids[0], parts.decode(tokens), list(tokens), used))
    return out


def ask_clip(
    model: Any,
    frames: Sequence[Any],
    region_ids: Sequence[str],
    question: str,
    *,
    max_new_tokens: int = 64,
    on_text: Callable[[str], bool] | None = None,
    k: int | None = None,
    prompt_map: str = "prompt",
) -> Answer:
    """Answer ``question`` (``<Prompt i>`` = ``region_ids[i]``) over ``frames`` (oldest first).

    ``k=0`` asks ``model.ask`` on the newest frame (single-image path). ``frame_stamp`` of the
    answer is the newest frame's stamp. Cancelling through ``on_text`` returns the text so far.
    """
    if k == 0:
        frame = frames[-1]
        missing = [rid for rid in region_ids if rid not in frame.regions]
        if missing:
            raise UnknownRegionError(missing)
        if frame.image is None:
            raise InputError(f"the image of frame {frame.stamp} is no longer kept")
        answer = model.ask(
            frame.image, [frame.regions[rid] for rid in region_ids], question,
            max_new_tokens=max_new_tokens, frame_key=frame.key, on_text=on_text,
        )
        answer.frame_stamp = int(frame.stamp)
        return answer
    parts = _parts(model)
    tokens, cancelled, inputs = _run(
        parts, frames, region_ids, question, max_new_tokens=max_new_tokens, prompt_map=prompt_map, on_text=on_text
    )
    text = parts.decode(tokens)
    return Answer(
        status=AnswerStatus.OK,
        text=text,
        region_ids=list(region_ids),
        message="cancelled" if cancelled else "",
        token_ids=list(tokens),
        frame_stamp=inputs.frame_stamps[-1],
    )


def clip_frames(
    images: Sequence[np.ndarray],
    regions: Sequence[Mapping[str, Region]],
    stamps: Sequence[int] | None = None,
    keys: Sequence[str] | None = None,
) -> list[Any]:
    """Plain ClipFrames from lists (oldest first): ``regions[k]`` maps region id -> Region in frame k."""
    from gar_ros.context.frame_context import ClipFrame

    out = []
    for k, (image, regs) in enumerate(zip(images, regions)):
        stamp = int(stamps[k]) if stamps is not None else k
        features: dict[Hashable, Any] = {}
        out.append(
            ClipFrame(
                stamp=stamp,
                key=keys[k] if keys is not None else f"clip@{stamp}",
                image=image,
                size=(int(image.shape[0]), int(image.shape[1])),
                regions=dict(regs),
                features=features,
                store=features.__setitem__,
                all_regions=dict(regs),
            )
        )
    return out
