"""Greedy decoding over a :class:`~gar_ros.model.engines.LanguageEngine` with a KV cache.

Sequences of different lengths are batched with LEFT padding (zero embeddings, mask 0); the
engine derives positions from the mask, so each row decodes as if it were alone. A row stops at
its first end-of-sequence id (not included in its output) or after ``max_new_tokens`` tokens.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from gar_ros.model.engines import LanguageEngine

#: Called after each step with (step index, new token per row or None for finished rows);
#: returning False stops generation for every row.
StepCallback = Callable[[int, list[int | None]], bool]


@dataclass
class GenerationResult:
    """``tokens[i]``: generated ids of row i (eos excluded); ``first_logits`` (B, V) float32."""

    tokens: list[list[int]]
    finished: list[bool]
    cancelled: bool = False
    first_logits: torch.Tensor | None = None
    steps: int = 0
    prompt_lengths: list[int] = field(default_factory=list)


def left_pad(embeds: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """[(L_i, D)] -> (B, Lmax, D) left-padded with zeros, (B, Lmax) int64 mask."""
    longest = max(int(e.shape[0]) for e in embeds)
    dim = int(embeds[0].shape[1])
    out = embeds[0].new_zeros((len(embeds), longest, dim))
    mask = torch.zeros((len(embeds), longest), dtype=torch.long, device=embeds[0].device)
    for i, e in enumerate(embeds):
        out[i, longest - e.shape[0] :] = e
        mask[i, longest - e.shape[0] :] = 1
    return out, mask


@torch.inference_mode()
def greedy_generate(
    engine: LanguageEngine,
    embeds: Sequence[torch.Tensor],
    *,
    eos_ids: set[int] | frozenset[int],
    max_new_tokens: int,
    pad_id: int,
    on_step: StepCallback | None = None,
) -> GenerationResult:
    """Greedy decoding of a batch of prompt embeddings (each (L_i, D))."""
    if not embeds:
        return GenerationResult([], [])
    batch = len(embeds)
    x, mask = left_pad(embeds)
    tokens: list[list[int]] = [[] for _ in range(batch)]
    finished = [False] * batch
    result = GenerationResult(tokens, finished, prompt_lengths=[int(e.shape[0]) for e in embeds])
    if max_new_tokens <= 0:
        return result
    logits, cache = engine.prefill(x, mask)
    last = logits[:, -1].float()
    result.first_logits = last.detach().cpu()
    for step in range(max_new_tokens):
        nxt = last.argmax(dim=-1).tolist()
        emitted: list[int | None] = []
        for i, tok in enumerate(nxt):
            if finished[i]:
                emitted.append(None)
                continue
            if tok in eos_ids:
                finished[i] = True
                emitted.append(None)
            else:
                tokens[i].append(int(tok))
                emitted.append(int(tok))
        result.steps = step + 1
        if on_step is not None and not on_step(step, emitted):
            result.cancelled = True
            break
        if all(finished) or step + 1 >= max_new_tokens:
            break
        feed = torch.tensor(
            [[pad_id if finished[i] else nxt[i]] for i in range(batch)], dtype=torch.long, device=mask.device
        )
        mask = torch.cat([mask, mask.new_ones((batch, 1))], dim=1)
        logits, cache = engine.decode(feed, mask, cache)
        last = logits[:, -1].float()
    return result
