"""Tiny random GAR checkpoints in the official layout, for tests and small-scale training.

``make_tiny(out_dir, seed)`` writes config.json (model_type "GAR", mllm_config, prompt_numbers,
crop_tokens_ids), preprocessor_config.json, generation_config.json, model.safetensors (keys
``mllm.*`` + ``mask_patch_embedding.weight``, lm_head tied so absent) and a word-level tokenizer.

Tokenizer layouts
- "plm" (default): special tokens at PerceptionLM's ids: ``<|begin_of_text|>`` 128000,
  ``<|end_of_text|>`` 128001, ``<|image|>`` 128002, ``<|video|>`` 128003, crop tokens
  ``<|reserved_special_token_2..6|>`` at 128004/128005/128008/128010/128011, headers 128006/128007,
  ``<|eot_id|>`` 128009, ``<Prompt0..4>`` and ``<NO_Prompt>`` at 128256..128261; words from 0.
  The embedding then has 128262 rows.
- "compact": the same tokens right after the words (small embedding, for trained tiny models).
The word-level tokenizer lowercases, splits on whitespace and punctuation, adds BOS in front like
Llama 3's (so the official double-BOS path is exercised) and maps unknown words to ``<unk>``.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from gar_ros.model.config import GarConfig
from gar_ros.model.modeling import GarTorchModel
from gar_ros.model.prompts import DEFAULT_SYSTEM_MESSAGE, DESCRIBE_INSTRUCTION, OBJECTS_INTRO

#: Words every tiny tokenizer knows (prompt templates + a small general vocabulary).
_TEMPLATE_TEXT = " ".join([DEFAULT_SYSTEM_MESSAGE, OBJECTS_INTRO, DESCRIBE_INSTRUCTION])
BASE_WORDS: tuple[str, ...] = tuple(dict.fromkeys(re.findall(r"\w+|[^\w\s]", _TEMPLATE_TEXT))) + (
    "system", "user", "assistant", "a", "an", "the", "is", "of", "in", "on", "and", "or", "to", "it", "this",
    "that", "what", "which", "where", "how", "many", "colour", "color", "shape", "size", "left", "right",
    "above", "below", "larger", "smaller", "same", "between", "relationship", "object", "objects", "region",
    "red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "gray", "grey",
    "square", "circle", "triangle", "star", "small", "large", "big", "medium", "answer", "with", "letter",
    "option", "options", "yes", "no", "A", "B", "C", "D", "(", ")", ".", ",", "?", "!", ":", ";", "'",
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
)

PLM_SPECIAL_IDS: dict[str, int] = {
    "<|begin_of_text|>": 128000,
    "<|end_of_text|>": 128001,
    "<|image|>": 128002,
    "<|video|>": 128003,
    "<|reserved_special_token_2|>": 128004,
    "<|reserved_special_token_3|>": 128005,
    "<|start_header_id|>": 128006,
    "<|end_header_id|>": 128007,
    "<|reserved_special_token_4|>": 128008,
    "<|eot_id|>": 128009,
    "<|reserved_special_token_5|>": 128010,
    "<|reserved_special_token_6|>": 128011,
    "<Prompt0>": 128256,
    "<Prompt1>": 128257,
    "<Prompt2>": 128258,
    "<Prompt3>": 128259,
    "<Prompt4>": 128260,
    "<NO_Prompt>": 128261,
}
CROP_TOKENS = tuple(f"<|reserved_special_token_{k + 2}|>" for k in range(5))
UNK = "<unk>"


def build_vocab(words: Iterable[str] = (), layout: str = "plm") -> dict[str, int]:
    """Token -> id map: ``<unk>``, the words (lowercased, de-duplicated), then the special tokens."""
    vocab: dict[str, int] = {UNK: 0}
    for w in list(BASE_WORDS) + list(words):
        w = w.lower()
        if w and w not in vocab:
            vocab[w] = len(vocab)
    if layout == "plm":
        if len(vocab) > 128000:
            raise ValueError("too many words for the PLM id layout")
        # Fill the id gaps with plain filler words so that every id decodes to some text.
        filled = set(vocab.values()) | set(PLM_SPECIAL_IDS.values())
        for i in range(max(PLM_SPECIAL_IDS.values()) + 1):
            if i not in filled:
                vocab[f"w{i}"] = i
        vocab.update(PLM_SPECIAL_IDS)
    elif layout == "compact":
        for name in PLM_SPECIAL_IDS:
            vocab[name] = len(vocab)
    else:
        raise ValueError(f"unknown tokenizer layout {layout!r}")
    return vocab


def build_tokenizer(vocab: dict[str, int]) -> Any:
    """A ``PreTrainedTokenizerFast`` (word level) over ``vocab`` with GAR's special tokens."""
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    bos = "<|begin_of_text|>"
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
    )
    tok.add_special_tokens([AddedToken(name, special=True, normalized=False) for name in PLM_SPECIAL_IDS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token="<|eot_id|>",
        pad_token="<|end_of_text|>",
        unk_token=UNK,
    )


def tiny_config(
    *,
    vocab_size: int,
    crop_tokens_ids: list[int],
    tile_size: int = 56,
    patch_size: int = 14,
    pooling_ratio: int = 2,
    max_num_tiles: int = 4,
    vision_width: int = 32,
    vision_depth: int = 2,
    vision_heads: int = 2,
    hidden_size: int = 32,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate_size: int = 64,
    replay_geometry: str = "reference",
    replay_output_size: int | None = None,
    layer_scale: float | None = None,
    post_norm: bool = True,
    image_token_id: int = 128002,
    bos_id: int = 128000,
    eos_id: int = 128009,
    pad_id: int = 128001,
) -> GarConfig:
    """A GarConfig of PLM's shape with tiny sizes (PE-style timm ViT + Llama).

    ``layer_scale`` (timm ``init_values``) and ``post_norm`` (``use_post_transformer_norm``) mirror
    PLM's tower options (PLM: layer scale on, no post-transformer norm); the defaults keep the
    plain tower of earlier tiny checkpoints.
    """
    grid = tile_size // patch_size
    tower_options: dict[str, Any] = {}
    if layer_scale is not None:
        tower_options["init_values"] = layer_scale
    if not post_norm:
        tower_options["use_post_transformer_norm"] = False
    mllm = {
        "vision_config": {
            "model_type": "timm_wrapper",
            "architecture": "vit_pe_core_large_patch14_336",
            "num_classes": 0,
            "do_pooling": False,
            "model_args": {
                "embed_dim": vision_width,
                "depth": vision_depth,
                "num_heads": vision_heads,
                "patch_size": patch_size,
                "img_size": [tile_size, tile_size],
                "ref_feat_shape": [grid, grid],
                "global_pool": "",
                **tower_options,
            },
        },
        "text_config": {
            "model_type": "llama",
            "hidden_size": hidden_size,
            "intermediate_size": intermediate_size,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "vocab_size": vocab_size,
            "max_position_embeddings": 8192,
            "rope_theta": 500000.0,
            "tie_word_embeddings": True,
            "bos_token_id": bos_id,
            "eos_token_id": eos_id,
            "pad_token_id": pad_id,
        },
        "projector_pooling_ratio": pooling_ratio,
        "vision_use_cls_token": True,
        "image_token_id": image_token_id,
        "video_token_id": image_token_id + 1,
        "tie_word_embeddings": True,
    }
    return GarConfig(
        mllm_config=mllm,
        prompt_numbers=5,
        crop_tokens_ids=list(crop_tokens_ids),
        tile_size=tile_size,
        max_num_tiles=max_num_tiles,
        patch_size=patch_size,
        pooling_ratio=pooling_ratio,
        replay_geometry=replay_geometry,
        replay_output_size=replay_output_size,
        image_token_id=image_token_id,
    )


def init_weights(model: GarTorchModel, seed: int, std: float = 0.2) -> None:
    """Deterministic random init: normal(0, std) matrices (incl. the mask conv), norms 1, biases 0.

    std 0.2 (not the usual 0.02) so that a random tiny model's greedy tokens depend on the
    image, the prompt map and the replay instead of repeating one token.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if p.ndim == 1:
                if name.endswith("bias"):
                    p.zero_()
                else:
                    p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    model.tie_lm_head()


def save_checkpoint(
    out_dir: str | Path, config: GarConfig, model: GarTorchModel, tokenizer: Any, *, dtype: torch.dtype | None = None
) -> Path:
    """Write a GAR directory (config, preprocessor/generation config, safetensors, tokenizer)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_config_json(), indent=2) + "\n")
    (out / "preprocessor_config.json").write_text(json.dumps(config.to_preprocessor_json(), indent=2) + "\n")
    text = config.text_config
    gen = {"bos_token_id": text.get("bos_token_id"), "eos_token_id": text.get("eos_token_id"),
           "pad_token_id": text.get("pad_token_id"), "do_sample": False}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    state = {}
    for key, value in model.state_dict().items():
        if key == "mllm.lm_head.weight":
            continue  # tied to the input embeddings
        value = value.detach().cpu().contiguous()
        state[key] = value.to(dtype) if dtype is not None and value.is_floating_point() else value
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(str(out))
    return out


def make_tiny(
    out_dir: str | Path,
    seed: int = 0,
    *,
    words: Iterable[str] = (),
    layout: str = "plm",
    **sizes: Any,
) -> Path:
    """Write a tiny random GAR checkpoint to ``out_dir`` (see module docstring); returns the path.

    ``sizes`` are :func:`tiny_config` keywords (tile_size, patch_size, pooling_ratio, hidden_size,
    replay_geometry, ...).
    """
    sizes.setdefault("layer_scale", 0.1)  # PLM-like tower: layer scale, no final norm
    sizes.setdefault("post_norm", False)
    vocab = build_vocab(words, layout)
    tokenizer = build_tokenizer(vocab)
    special = {name: vocab[name] for name in PLM_SPECIAL_IDS}
    config = tiny_config(
        vocab_size=max(vocab.values()) + 1,
        crop_tokens_ids=[special[name] for name in CROP_TOKENS],
        image_token_id=special["<|image|>"],
        bos_id=special["<|begin_of_text|>"],
        eos_id=special["<|eot_id|>"],
        pad_id=special["<|end_of_text|>"],
        **sizes,
    )
    torch.manual_seed(seed)
    model = GarTorchModel(config)
    init_weights(model, seed)
    return save_checkpoint(out_dir, config, model, tokenizer)
