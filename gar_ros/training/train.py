"""Train the tiny GAR on synthetic tasks (CPU, seeded) and write it as a GAR checkpoint.

The network is the model core's :class:`gar_ros.model.modeling.GarTorchModel` built from
:func:`gar_ros.model.tiny.tiny_config` (PE-style timm ViT + mask patch embedding + projector +
Llama decoder) with the word-level tokenizer of :mod:`gar_ros.training.tokenizer`; the loss is
:func:`gar_ros.training.objective.step_loss` (the model's own next-token loss, per-sample and
task-weighted, plus training-only probes); the checkpoint is written by
:func:`gar_ros.model.tiny.save_checkpoint` (the official directory layout) and loads with
``GarModel.from_pretrained``. Samples are generated on the fly from per-step seeds, so a run is a
pure function of the recipe (up to floating-point summation order across thread counts); with
``data_workers`` = 1 they are generated in a background process while the model trains.
"""
from __future__ import annotations

import json
import logging
import math
import platform
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from gar_ros.model.modeling import GarTorchModel
from gar_ros.model.processor import GarProcessor
from gar_ros.model.tiny import init_weights, save_checkpoint, tiny_config
from gar_ros.synthetic.tasks import (
    CHOICE_KINDS, LETTERS, TaskSample, make_choice, make_describe, make_free, make_motion,
)
from gar_ros.training.batches import EncodedSample, encode_sample
from gar_ros.training.clips import EncodedClip, encode_motion, pick_frames
from gar_ros.errors import InputError
from gar_ros.training.objective import (
    COPY_TARGETS, LINE_HEAD, WORD_TARGETS, OptionProbe, Probes, RegionProbe, SlotProbe, step_loss, task_weights,
)
from gar_ros.training.recipe import TRAIN_SEED_BASE, TinyRecipe
from gar_ros.training.tokenizer import BOS, EOT, IMAGE, PAD, build_tokenizer

log = logging.getLogger(__name__)
#: LossParts field of each training-only probe -> the recipe field of its weight.
PROBE_WEIGHTS = {"replay": "aux_weight", "reference": "reference_weight", "options": "option_weight",
                 "slots": "slot_weight", "copy": "copy_weight", "kind": "kind_weight"}
CROP_TOKENS = tuple(f"<|reserved_special_token_{k + 2}|>" for k in range(5))


def build_untrained(recipe: TinyRecipe) -> tuple[GarTorchModel, GarProcessor]:
    """A freshly initialised tiny model and its processor (tokenizer + config)."""
    tok = build_tokenizer()
    ids = lambda t: int(tok.convert_tokens_to_ids(t))  # noqa: E731
    config = tiny_config(
        vocab_size=len(tok), crop_tokens_ids=[ids(t) for t in CROP_TOKENS],
        tile_size=recipe.tile_size, patch_size=recipe.patch_size,
        pooling_ratio=recipe.pooling_ratio, max_num_tiles=recipe.max_num_tiles,
        vision_width=recipe.vision_width, vision_depth=recipe.vision_depth,
        vision_heads=recipe.vision_heads, hidden_size=recipe.hidden_size, layers=recipe.layers,
        heads=recipe.heads, kv_heads=recipe.kv_heads, intermediate_size=recipe.intermediate_size,
        replay_geometry=recipe.replay_geometry, replay_output_size=recipe.replay_output_size,
        image_token_id=ids(IMAGE), bos_id=ids(BOS), eos_id=ids(EOT), pad_id=ids(PAD),
    )
    config.double_bos = False
    torch.manual_seed(recipe.seed)
    model = GarTorchModel(config)
    init_weights(model, recipe.seed, std=recipe.init_std)
    processor = GarProcessor(config, tok, tok.chat_template)
    return model, processor


def mixture_at(recipe: TinyRecipe, step: int) -> dict[str, float]:
    """The task mixture of training step ``step``: ``late_mixture`` from ``late_from * steps`` on."""
    if recipe.late_mixture and step >= int(recipe.late_from * recipe.steps):
        return recipe.late_mixture
    return recipe.mixture


def draw_sample(recipe: TinyRecipe, index: int) -> TaskSample:
    """Training sample ``index`` of the recipe's stream (seeds >= TRAIN_SEED_BASE)."""
    rng = np.random.default_rng([recipe.seed, index])
    mixture = mixture_at(recipe, index // recipe.batch_size)
    names = list(mixture)
    weights = np.asarray([mixture[n] for n in names], dtype=float)
    task, _, kind = names[int(rng.choice(len(names), p=weights / weights.sum()))].partition(":")
    seed = TRAIN_SEED_BASE + int(rng.integers(0, 2**40))
    size = recipe.scene_size
    if task == "describe":
        options = make_describe(seed, size)
        return options[int(rng.integers(len(options)))]
    if task == "choice":
        return make_choice(seed, kind or None, size=size)
    if task == "free":
        return make_free(seed, size)
    if task == "motion":
        return make_motion(seed, n_frames=int(rng.integers(recipe.clip_frames[0], recipe.clip_frames[1] + 1)),
                           size=size, speed=recipe.motion_speed)
    raise ValueError(f"unknown task {task!r} in the mixture")


def _lr(recipe: TinyRecipe, step: int) -> float:
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    t = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    floor = recipe.lr * recipe.min_lr_ratio
    return floor + (recipe.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


Item = EncodedSample | EncodedClip


def step_items(recipe: TinyRecipe, processor: GarProcessor, step: int) -> list[tuple[str, Item]]:
    """The encoded (task, item) pairs of training step ``step`` (a pure function of the recipe)."""
    end_id = int(processor.tokenizer.convert_tokens_to_ids(EOT))
    out: list[tuple[str, Item]] = []
    for i in range(recipe.batch_size):
        index = step * recipe.batch_size + i
        sample = draw_sample(recipe, index)
        if sample.task == "motion":
            rng = np.random.default_rng([recipe.seed, index, 7])
            k = int(rng.integers(recipe.context_frames[0], recipe.context_frames[1] + 1))
            frames = pick_frames(len(sample.frames), k, rng)
            out.append((sample.task, encode_motion(processor.config, processor.builder, sample, frames,
                                                   processor.tokenizer, end_id)))
        else:
            out.append((sample.task, encode_sample(processor, sample, end_id)))
    return out


class _StepStream(torch.utils.data.IterableDataset):
    """Steps ``first..last-1`` of the recipe's sample stream (for a prefetching DataLoader)."""

    def __init__(self, recipe: TinyRecipe, processor: GarProcessor, first: int, last: int) -> None:
        self.recipe, self.processor, self.first, self.last = recipe, processor, first, last

    def __iter__(self):
        for step in range(self.first, self.last):
            yield step_items(self.recipe, self.processor, step)


def _stream(recipe: TinyRecipe, processor: GarProcessor):
    """Encoded steps in order; generated in one background process when ``recipe.data_workers``
    > 0 (the same items as in-process generation: every step is a pure function of its index)."""
    if recipe.data_workers <= 0:
        return (step_items(recipe, processor, s) for s in range(recipe.steps))
    loader = torch.utils.data.DataLoader(
        _StepStream(recipe, processor, 0, recipe.steps), batch_size=None, num_workers=1,
        prefetch_factor=4, persistent_workers=False, collate_fn=lambda x: x)
    return iter(loader)


def _length(item: Item) -> int:
    return len(item) if isinstance(item, EncodedClip) else len(item.input_ids)


def train_tiny(out_dir: str | Path, recipe: TinyRecipe | None = None,
               progress: Callable[[str], None] | None = None) -> dict:
    """Train and save; returns the training record (also written to ``training.json``)."""
    recipe = recipe or TinyRecipe()
    say = progress or log.info
    torch.set_num_threads(recipe.threads)
    random.seed(recipe.seed)
    np.random.seed(recipe.seed % (2**32))
    model, processor = build_untrained(recipe)
    model.train()
    dim = model.config.hidden_size
    tok = processor.tokenizer
    if recipe.copy_target not in COPY_TARGETS:
        raise InputError(f"copy_target must be one of {COPY_TARGETS}, not {recipe.copy_target!r}")
    if recipe.word_target not in WORD_TARGETS:
        raise InputError(f"word_target must be one of {WORD_TARGETS}, not {recipe.word_target!r}")
    if recipe.copy_target == "features" and recipe.copy_weight > 0 and recipe.heads <= LINE_HEAD:
        raise InputError(f"copy_target 'features' needs at least {LINE_HEAD + 1} decoder heads, "
                         f"the recipe has {recipe.heads}")
    probes = Probes(RegionProbe(dim) if recipe.aux_weight > 0 else None,
                    RegionProbe(dim) if recipe.reference_weight > 0 else None,
                    OptionProbe(dim, len(LETTERS)) if recipe.option_weight > 0 else None,
                    prompt_ids=tuple(processor.builder.prompt_token_ids[: model.config.prompt_numbers]),
                    letter_ids=tuple(int(tok.convert_tokens_to_ids(x)) for x in LETTERS),
                    dot_id=int(tok.convert_tokens_to_ids(".")), layer=recipe.probe_layer,
                    slots=SlotProbe(dim, model.config.prompt_numbers) if recipe.slot_weight > 0 else None,
                    slot_layer=recipe.slot_layer,
                    copy_heads=recipe.copy_heads if recipe.copy_weight > 0 else 0,
                    copy_target=recipe.copy_target, word_target=recipe.word_target,
                    copy_motion=recipe.copy_motion,
                    kinds=SlotProbe(dim, len(CHOICE_KINDS)) if recipe.kind_weight > 0 else None)
    named = [*model.named_parameters(), *probes.parameters()]
    params = [p for _, p in named]
    decay = [p for n, p in named if p.ndim >= 2]
    no_decay = [p for n, p in named if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=recipe.lr, betas=(0.9, 0.98))
    start = time.perf_counter()
    cpu_start = time.process_time()
    losses: list[float] = []
    probe_losses: dict[str, list[float]] = {name: [] for name in PROBE_WEIGHTS}
    probe_acc: dict[str, list[float]] = {}
    task_losses: dict[str, list[float]] = {}  # task -> per-sample answer cross entropy, in order
    wait_s = 0.0
    step = 0
    stopped_early = False
    stream = _stream(recipe, processor)
    for step in range(recipe.steps):
        t0 = time.perf_counter()
        items = next(stream)
        wait_s += time.perf_counter() - t0
        items.sort(key=lambda ti: _length(ti[1]))
        n = len(items)
        parts = [items[: n // 2], items[n // 2:]] if recipe.split_by_length else [items]
        for group in opt.param_groups:
            group["lr"] = _lr(recipe, step)
        opt.zero_grad(set_to_none=True)
        decay_t = max(0.0, 1.0 - step / max(1, recipe.aux_steps)) if recipe.aux_steps else 1.0
        step_lm = 0.0
        step_probe = dict.fromkeys(PROBE_WEIGHTS, 0.0)
        total_w = sum(task_weights(recipe.task_weights, [t for t, _ in items]))
        for part in (p for p in parts if p):
            w = task_weights(recipe.task_weights, [t for t, _ in part])
            lp = step_loss(model, [it for _, it in part], w, probes)
            for (task, _), value in zip(part, lp.per_sample.tolist()):
                task_losses.setdefault(task, []).append(value)
            share = sum(w) / total_w
            loss = lp.lm * share
            step_lm += float(lp.lm.detach()) * share
            for name, weight_field in PROBE_WEIGHTS.items():  # fixed order: same sums every run
                value = getattr(lp, name)
                if value is not None:
                    loss = loss + getattr(recipe, weight_field) * decay_t * value * len(part) / n
                    step_probe[name] += float(value.detach()) * len(part) / n
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip)
        opt.step()
        losses.append(step_lm)
        for name, value in step_probe.items():
            probe_losses[name].append(value)
        for name, probe in (("ref", probes.reference), ("opt", probes.options)):
            for key, value in (getattr(probe, "stats", None) or {}).items():
                if value is not None:
                    probe_acc.setdefault(f"{name}.{key}", []).append(value)
        elapsed = time.perf_counter() - start
        if step % 25 == 0 or step == recipe.steps - 1:
            say("  answer loss " + " ".join(f"{k} {np.mean(v[-200:]):.3f}" for k, v in sorted(task_losses.items())))
            say("  probe accuracy " + " ".join(f"{k} {np.mean(v[-25:]):.2f}" for k, v in sorted(probe_acc.items())))
            probe_text = " ".join(f"{k} {np.mean(v[-25:]):.3f}" for k, v in probe_losses.items())
            say(f"step {step}/{recipe.steps} loss {np.mean(losses[-25:]):.4f} {probe_text} "
                f"lr {_lr(recipe, step):.2e} {elapsed:.0f}s (data wait {wait_s:.0f}s)")
        if step == _PROJECT_AT and recipe.time_limit_s:
            _warn_if_over_limit(recipe, step, elapsed, say)
        if recipe.time_limit_s and elapsed > recipe.time_limit_s:
            stopped_early = True
            say(f"time limit {recipe.time_limit_s:.0f}s reached at step {step}")
            break
    del stream
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    model.eval()
    out = Path(out_dir)
    save_checkpoint(out, model.config, model, processor.tokenizer)
    record = {
        "recipe": recipe.to_dict(),
        "steps_done": step + 1,
        "stopped_early": stopped_early,
        "final_loss": float(np.mean(losses[-25:])) if losses else None,
        "loss_curve": [round(float(np.mean(losses[i:i + 25])), 4) for i in range(0, len(losses), 25)],
        "wall_s": round(wall, 1),
        "process_cpu_s": round(cpu, 1),
        "data_wait_s": round(wait_s, 1),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, **_lib_versions()},
        "machine": {"cpus": _cpu_count(), "load_avg_at_end": _loadavg()},
    }
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


_PROJECT_AT = 100  # step at which the run's length is projected against its time limit


def _warn_if_over_limit(recipe: TinyRecipe, step: int, elapsed_s: float, say) -> None:
    """Say, early, when this machine is too slow for the recipe's steps within its time limit.

    The run then stops at the limit with fewer steps than the recipe (and its recorded
    accuracy) assume; the projection uses the mean step time so far (early steps, which
    include long motion clips, are slower than the average).
    """
    per_step = elapsed_s / (step + 1)
    projected = per_step * recipe.steps
    if projected > recipe.time_limit_s:
        reach = int(recipe.time_limit_s / per_step)
        say(f"warning: {per_step:.2f} s per step so far; {recipe.steps} steps would take about "
            f"{projected:.0f}s, beyond the {recipe.time_limit_s:.0f}s time limit: the run will stop "
            f"near step {reach} and give a weaker model than a full run")


def _lib_versions() -> dict[str, str]:
    import timm
    import tokenizers
    import transformers
    return {"transformers": transformers.__version__, "timm": timm.__version__,
            "tokenizers": tokenizers.__version__}


def _cpu_count() -> int:
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _loadavg() -> list[float]:
    import os
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []
