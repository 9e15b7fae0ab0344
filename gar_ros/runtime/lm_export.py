"""Language-model graphs with explicit KV tensors, for ONNX export.

Two graphs share the decoder weights:

- ``prefill``: ``inputs_embeds`` (B, L, D) float, ``attention_mask`` (B, L) int64 (1 = token,
  0 = padding), ``position_ids`` (B, L) int64 -> ``logits`` (B, 1, V) of the LAST position and
  ``present.{i}.key`` / ``present.{i}.value`` (B, Hkv, L, hd) for every layer i.
- ``decode``: ``input_ids`` (B, L) int64 (L = 1 for a generation step; L > 1 extends a cache with
  more text), ``attention_mask`` (B, P + L) int64, ``position_ids`` (B, L) int64,
  ``past.{i}.key`` / ``past.{i}.value`` (B, Hkv, P, hd) -> ``logits`` (B, 1, V) of the last position
  and ``present.*`` (B, Hkv, P + L, hd).

The attention mask is turned into an additive 4D mask inside the graph (causal within the new
tokens, all past tokens visible, padding hidden). Hidden keys get -65504 (the float16 minimum)
instead of -inf: exp() of it is 0 in every precision, and a fully hidden row (a left-padding
position) stays finite when TensorRT runs the graph in fp16/bf16, so no NaN reaches the cache.
Attention runs the ``eager`` implementation (MatMul + Softmax), which every ONNX runtime and
TensorRT's parser support.

Works with any Hugging Face decoder whose forward accepts ``inputs_embeds``, a 4D
``attention_mask``, ``position_ids`` and a ``cache`` (transformers 5 ``DynamicCache``):
``LlamaModel`` (PerceptionLM's language model) in particular.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from gar_ros.errors import BackendError

log = logging.getLogger(__name__)


MASK_VALUE = -65504.0


def additive_mask(attention_mask: Tensor, query_len: int | Tensor, dtype: torch.dtype) -> Tensor:
    """(B, K) 0/1 key mask -> (B, 1, Q, K) additive mask; query q sits at key position K - Q + q."""
    key_len = attention_mask.shape[1]
    kpos = torch.arange(key_len, device=attention_mask.device)
    qpos = torch.arange(query_len, device=attention_mask.device) + (key_len - query_len)
    causal = kpos[None, :] <= qpos[:, None]  # (Q, K)
    allowed = causal[None, None] & attention_mask[:, None, None, :].bool()
    zeros = torch.zeros(allowed.shape, dtype=dtype, device=attention_mask.device)
    return zeros.masked_fill(~allowed, MASK_VALUE)


def _make_cache(config: object, past: list[Tensor]) -> object:
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache(config=config)
    for i in range(0, len(past), 2):
        cache.update(past[i], past[i + 1], i // 2)
    return cache


def _cache_tensors(cache: object) -> list[Tensor]:
    out: list[Tensor] = []
    for layer in cache.layers:  # type: ignore[attr-defined]
        out += [layer.keys, layer.values]
    return out


class PrefillGraph(nn.Module):
    """Decoder + head over a full prompt; returns last-position logits and the KV cache."""

    def __init__(self, decoder: nn.Module, lm_head: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder
        self.lm_head = lm_head

    def forward(self, inputs_embeds: Tensor, attention_mask: Tensor, position_ids: Tensor) -> tuple[Tensor, ...]:
        mask = additive_mask(attention_mask, inputs_embeds.shape[1], inputs_embeds.dtype)
        cache = _make_cache(self.decoder.config, [])
        out = self.decoder(
            inputs_embeds=inputs_embeds, attention_mask=mask, position_ids=position_ids, cache=cache, use_cache=True
        )
        logits = self.lm_head(out.last_hidden_state[:, -1:])
        return (logits, *_cache_tensors(out.cache))


class EmbedGraph(nn.Module):
    """Token ids (B, L) int64 -> embeddings (B, L, D)."""

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.embed = decoder.get_input_embeddings()

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.embed(input_ids)


class DecodeGraph(nn.Module):
    """Token ids + past KV -> last-position logits and the extended KV cache."""

    def __init__(self, decoder: nn.Module, lm_head: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder
        self.lm_head = lm_head

    def forward(self, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor,
                past: list[Tensor]) -> tuple[Tensor, ...]:
        embeds = self.decoder.get_input_embeddings()(input_ids)
        mask = additive_mask(attention_mask, input_ids.shape[1], embeds.dtype)
        cache = _make_cache(self.decoder.config, list(past))
        out = self.decoder(
            inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids, cache=cache, use_cache=True
        )
        logits = self.lm_head(out.last_hidden_state[:, -1:])
        return (logits, *_cache_tensors(out.cache))


@contextlib.contextmanager
def eager_attention(module: nn.Module) -> Iterator[None]:
    """Temporarily switch every sub-config of ``module`` to the eager attention implementation."""
    configs = []
    for sub in module.modules():
        cfg = getattr(sub, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation") and all(cfg is not c for c, _ in configs):
            configs.append((cfg, cfg._attn_implementation))
    try:
        for cfg, _ in configs:
            cfg._attn_implementation = "eager"
        yield
    finally:
        for cfg, old in configs:
            cfg._attn_implementation = old


def kv_shape(decoder: nn.Module) -> tuple[int, int, int]:
    """(num_layers, num_kv_heads, head_dim) of a Llama-style decoder config."""
    cfg = decoder.config
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return cfg.num_hidden_layers, kv_heads, head_dim


def kv_names(num_layers: int, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{kv}" for i in range(num_layers) for kv in ("key", "value")]


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: tuple, opset: int) -> None:
    quiet = [logging.getLogger(n) for n in ("onnx_ir", "onnxscript", "torch.onnx")]
    levels = [q.level for q in quiet]
    try:
        for q in quiet:
            q.setLevel(logging.WARNING)
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, args, str(path), input_names=inputs, output_names=outputs,
                dynamic_shapes=dynamic, opset_version=opset, dynamo=True, external_data=True,
                verbose=False,
            )
    except Exception as err:  # the exporter raises many unrelated types
        raise BackendError(f"ONNX export of {path.name} failed: {type(err).__name__}: {err}") from err
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)


def export_language(decoder: nn.Module, lm_head: nn.Module, out_dir: Path, *, opset: int = 18,
                    max_seq: int = 32768, max_batch: int = 256) -> dict[str, tuple[list[str], list[str]]]:
    """Export ``embed.onnx``, ``prefill.onnx`` and ``decode.onnx`` (own data files) into ``out_dir``.

    Returns {graph: (input names, output names)}. The caller repacks the weights into one file.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    n_layers, kv_heads, head_dim = kv_shape(decoder)
    param = next(decoder.parameters())
    dtype, device = param.dtype, param.device
    hidden = decoder.config.hidden_size
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    seq = torch.export.Dim("seq", min=1, max=max_seq)
    past_len = torch.export.Dim("past", min=1, max=max_seq)
    result: dict[str, tuple[list[str], list[str]]] = {}

    ids = torch.zeros(2, 5, dtype=torch.int64, device=device)
    _export(EmbedGraph(decoder).eval(), (ids,), out_dir / "embed.onnx", ["input_ids"], ["inputs_embeds"],
            ({0: batch, 1: seq},), opset)
    result["embed"] = (["input_ids"], ["inputs_embeds"])

    prefill_in = ["inputs_embeds", "attention_mask", "position_ids"]
    prefill_out = ["logits", *kv_names(n_layers, "present")]
    b, length = 2, 5
    args = (
        torch.randn(b, length, hidden, dtype=dtype, device=device),
        torch.ones(b, length, dtype=torch.int64, device=device),
        torch.arange(length, device=device).repeat(b, 1),
    )
    with eager_attention(decoder):
        _export(PrefillGraph(decoder, lm_head).eval(), args, out_dir / "prefill.onnx", prefill_in, prefill_out,
                ({0: batch, 1: seq}, {0: batch, 1: seq}, {0: batch, 1: seq}), opset)
    result["prefill"] = (prefill_in, prefill_out)

    decode_in = ["input_ids", "attention_mask", "position_ids", *kv_names(n_layers, "past")]
    decode_out = ["logits", *kv_names(n_layers, "present")]
    p, length = 4, 2
    total = torch.export.Dim("total", min=2, max=2 * max_seq)
    past = [torch.randn(b, kv_heads, p, head_dim, dtype=dtype, device=device) for _ in range(2 * n_layers)]
    args = (
        torch.zeros(b, length, dtype=torch.int64, device=device),
        torch.ones(b, p + length, dtype=torch.int64, device=device),
        torch.arange(p, p + length, device=device).repeat(b, 1),
        past,
    )
    # The total length is P + L; torch.export relates the dims through the graph itself.
    dyn = ({0: batch, 1: seq}, {0: batch, 1: total}, {0: batch, 1: seq},
           [{0: batch, 2: past_len} for _ in past])
    with eager_attention(decoder):
        _export(DecodeGraph(decoder, lm_head).eval(), args, out_dir / "decode.onnx", decode_in, decode_out,
                dyn, opset)
    result["decode"] = (decode_in, decode_out)
    return result
