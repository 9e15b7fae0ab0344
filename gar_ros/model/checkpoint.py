"""Loading a GAR checkpoint directory (Hugging Face layout) without remote code or pickle.

Expected files: ``config.json`` (model_type "GAR"), ``model.safetensors`` or
``model.safetensors.index.json`` + its shards, ``tokenizer.json`` (+ ``tokenizer_config.json``),
optional ``preprocessor_config.json``, ``generation_config.json``, ``chat_template.json`` /
``chat_template.jinja``. Weights: ``mllm.*`` and ``mask_patch_embedding.weight``; a missing
``mllm.lm_head.weight`` means the head is tied to the input embeddings.
"""
from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from gar_ros.errors import CheckpointError
from gar_ros.model.config import GarConfig
from gar_ros.model.modeling import GarTorchModel

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
TOKENIZER_FILE = "tokenizer.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
GENERATION_FILE = "generation_config.json"
LM_HEAD_KEY = "mllm.lm_head.weight"
EMBED_KEY = "mllm.model.language_model.embed_tokens.weight"
MASK_KEY = "mask_patch_embedding.weight"

#: Older transformers layouts of PerceptionLM-style models -> the current one.
_LEGACY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("mllm.language_model.model.", "mllm.model.language_model."),
    ("mllm.language_model.lm_head.", "mllm.lm_head."),
    ("mllm.vision_tower.", "mllm.model.vision_tower."),
    ("mllm.multi_modal_projector.", "mllm.model.multi_modal_projector."),
)


def read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError as err:
        raise CheckpointError(f"{path.parent}: missing {path.name}") from err
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: cannot read JSON: {err}") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def check_directory(path: str | Path) -> Path:
    """Resolve a checkpoint directory and name every required file that is missing."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise CheckpointError(f"model directory not found: {root}")
    missing = [name for name in (CONFIG_FILE, TOKENIZER_FILE) if not (root / name).is_file()]
    if not (root / WEIGHTS_FILE).is_file() and not (root / WEIGHTS_INDEX).is_file():
        if any(root.glob("*.bin")) or any(root.glob("*.pt")) or any(root.glob("*.pth")):
            missing.append(f"{WEIGHTS_FILE} (pickle weights are not loaded; convert to safetensors)")
        else:
            missing.append(f"{WEIGHTS_FILE} or {WEIGHTS_INDEX}")
    if missing:
        raise CheckpointError(f"{root}: incomplete GAR checkpoint, missing {', '.join(missing)}")
    return root


def weight_files(root: Path) -> list[Path]:
    """The safetensors files of a checkpoint (single file or all shards of the index)."""
    if (root / WEIGHTS_FILE).is_file():
        return [root / WEIGHTS_FILE]
    index = read_json(root / WEIGHTS_INDEX)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{root / WEIGHTS_INDEX}: no weight_map")
    shards = sorted(set(weight_map.values()))
    absent = [s for s in shards if not (root / s).is_file()]
    if absent:
        raise CheckpointError(f"{root}: missing weight shard(s) {', '.join(absent)}")
    return [root / s for s in shards]


def load_state_dict(root: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for file in weight_files(root):
        try:
            part = load_file(str(file))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{file}: cannot read safetensors: {err}") from err
        state.update(part)
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for old, new in _LEGACY_PREFIXES:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        renamed[key] = value
    return renamed


def read_chat_template(root: Path, tokenizer: Any) -> str | None:
    """The checkpoint's own chat template, or None (then PerceptionLM's default is used)."""
    jinja = root / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    js = root / "chat_template.json"
    if js.is_file():
        value = read_json(js).get("chat_template")
        if isinstance(value, str) and value:
            return value
    template = getattr(tokenizer, "chat_template", None)
    return template if isinstance(template, str) and template else None


def load_tokenizer(root: Path) -> Any:
    from transformers import PreTrainedTokenizerFast

    try:
        return PreTrainedTokenizerFast.from_pretrained(str(root), local_files_only=True)
    except Exception as err:  # tokenizers raises plain Exceptions on bad files
        raise CheckpointError(f"{root}: cannot load the tokenizer: {err}") from err


@dataclass
class LoadedCheckpoint:
    config: GarConfig
    model: GarTorchModel
    tokenizer: Any
    chat_template: str | None
    eos_ids: frozenset[int]
    pad_id: int


def _no_init() -> Any:
    try:
        from transformers.initialization import no_init_weights

        return no_init_weights()
    except ImportError:  # older transformers: plain (slower) random init
        return nullcontext()


def load_config(root: Path, **overrides: Any) -> GarConfig:
    config = read_json(root / CONFIG_FILE)
    pre = read_json(root / PREPROCESSOR_FILE) if (root / PREPROCESSOR_FILE).is_file() else None
    return GarConfig.from_dicts(config, pre, **overrides)


def load_checkpoint(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = "sdpa",
    **overrides: Any,
) -> LoadedCheckpoint:
    """Load config, tokenizer and weights; every mismatch is a :class:`CheckpointError`."""
    root = check_directory(path)
    config = load_config(root, **overrides)
    tokenizer = load_tokenizer(root)
    state = load_state_dict(root)
    mask_w = state.get(MASK_KEY)
    if mask_w is None:
        raise CheckpointError(f"{root}: weights have no {MASK_KEY}")
    if mask_w.ndim != 4 or mask_w.shape[1] != 3 or mask_w.shape[2] != mask_w.shape[3]:
        raise CheckpointError(f"{root}: {MASK_KEY} has shape {tuple(mask_w.shape)}, expected (C, 3, p, p)")
    if int(mask_w.shape[2]) != config.patch_size:
        log.info("patch size from the mask embedding kernel: %d", int(mask_w.shape[2]))
        config.patch_size = int(mask_w.shape[2])
        config.validate()
    try:
        with _no_init():
            model = GarTorchModel(config, attn_implementation=attn_implementation)
    except (TypeError, ValueError, KeyError, RuntimeError, ImportError, AttributeError) as err:
        raise CheckpointError(f"{root}: cannot build the model from config.json: {err}") from err
    if model.mask_patch_embedding.weight.shape != mask_w.shape:
        raise CheckpointError(
            f"{root}: {MASK_KEY} shape {tuple(mask_w.shape)} does not fit the vision tower "
            f"({tuple(model.mask_patch_embedding.weight.shape)})"
        )
    tie = LM_HEAD_KEY not in state
    expected = set(model.state_dict().keys())
    if tie:
        expected.discard(LM_HEAD_KEY)
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise CheckpointError(f"{root}: weights do not match the config: {'; '.join(parts)}")
    for key, tensor in model.state_dict().items():
        if key in state and tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{root}: {key} has shape {tuple(state[key].shape)}, the config needs {tuple(tensor.shape)}"
            )
    model.load_state_dict(state, strict=False)
    if tie:
        model.tie_lm_head()
    if dtype is None:
        dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    model.to(device=device, dtype=dtype).eval()
    if tie:
        model.tie_lm_head()
    eos = _eos_ids(root, tokenizer)
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = min(eos) if eos else 0
    return LoadedCheckpoint(config, model, tokenizer, read_chat_template(root, tokenizer), eos, int(pad))


def _eos_ids(root: Path, tokenizer: Any) -> frozenset[int]:
    """End ids: the tokenizer's eos (what the official demo passes to generate), else the
    generation config's ``eos_token_id``."""
    if tokenizer.eos_token_id is not None:
        return frozenset({int(tokenizer.eos_token_id)})
    ids: set[int] = set()
    if (root / GENERATION_FILE).is_file():
        value = read_json(root / GENERATION_FILE).get("eos_token_id")
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(int(v) for v in value)
    if not ids:
        raise CheckpointError(f"{root}: no end-of-sequence token (tokenizer or generation config)")
    return frozenset(ids)
