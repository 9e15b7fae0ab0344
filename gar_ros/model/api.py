"""GarModel: the region-level API of the model core (ROS-free).

- ``describe(image, regions)``: each region alone with the single-region GAR prompt
  (``<Prompt1>``); the frame is tiled once, the vision tower runs once per region prompt map
  (all regions of a call in one batched vision call), generation is batched.
- ``ask(image, regions, question)``: region i is ``<Prompt i>`` (at most ``prompt_numbers``).

Note on caching: GAR adds the mask embedding to the patch embeddings BEFORE the vision
transformer, so the tower's output depends on the prompt map. The per-frame cache therefore
holds the frame's preprocessed tiles plus the encoded tokens per prompt map seen on that frame
(keyed by the map's content); a second call on the same frame and the same region(s) skips the
vision tower entirely, a call with new regions runs it only for their maps.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gar_ros.errors import BackendError, InputError, TooManyRegionsError
from gar_ros.model.checkpoint import load_checkpoint
from gar_ros.model.config import GarConfig
from gar_ros.model.engines import LanguageEngine, VisionEngine, torch_engines
from gar_ros.model.generation import GenerationResult, greedy_generate
from gar_ros.model.modeling import GarTorchModel, fill_embeddings, image_replays
from gar_ros.model.processing import FrameTiles
from gar_ros.model.processor import GarProcessor, RegionPrompt
from gar_ros.model.prompts import DESCRIBE_PROMPT_INDEX
from gar_ros.types import Answer, AnswerStatus, Region, RegionText

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]


@dataclass
class FrameEntry:
    """Cached state of one frame: its tiles and encoded tokens per prompt map digest."""

    digest: bytes
    tiles: FrameTiles
    features: OrderedDict[bytes, torch.Tensor] = field(default_factory=OrderedDict)

    @property
    def nbytes(self) -> int:
        t = self.tiles.pixel_values
        return t.numel() * t.element_size() + sum(f.numel() * f.element_size() for f in self.features.values())


@dataclass
class PreparedPrompt:
    """Everything fed to the language model for one prompt (for inspection and ``--dump``).

    ``input_ids`` (L,) int64; ``pixel_values`` (T, 3, S, S); ``prompt_ids`` (T, S, S) uint8 prompt
    map tiles (empty inside ``describe``, which does not need them); ``boxes`` {prompt index: normalised box}; ``grid`` (tiles_w, tiles_h);
    ``embeds`` (L, D).
    """

    input_ids: torch.Tensor
    pixel_values: torch.Tensor
    prompt_ids: torch.Tensor
    boxes: dict[int, Box]
    grid: tuple[int, int]
    embeds: torch.Tensor


def _check_max_new_tokens(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"max_new_tokens must be an integer >= 0, got {value!r}")
    return value


def _digest(array: np.ndarray) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(str(array.shape).encode())
    h.update(np.ascontiguousarray(array).data)
    return h.digest()


class GarModel:
    """A loaded GAR checkpoint with region-level describe/ask (see module docstring)."""

    def __init__(
        self,
        name: str,
        config: GarConfig,
        processor: GarProcessor,
        torch_model: GarTorchModel,
        vision: VisionEngine,
        language: LanguageEngine,
        *,
        eos_ids: frozenset[int],
        pad_id: int,
        cache_size: int = 8,
        maps_per_frame: int = 16,
        max_batch: int = 8,
        cache_bytes: int = 512 * 2**20,
    ) -> None:
        self.name = name
        self.config = config
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.torch_model = torch_model
        self.vision = vision
        self.language = language
        self.eos_ids = eos_ids
        self.pad_id = pad_id
        self.cache_size = max(0, int(cache_size))
        self.maps_per_frame = max(1, int(maps_per_frame))
        self.cache_bytes = max(0, int(cache_bytes))
        self.max_batch = max(1, int(max_batch))
        self._frames: OrderedDict[Any, FrameEntry] = OrderedDict()
        self._lock = threading.RLock()  # guards the frame cache (and the vision calls that fill it)
        self.last_generation: GenerationResult | None = None
        #: False skips RoI replay (crop tokens keep their token embeddings): ablation switch.
        self.replay_enabled = True

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        backend: str = "torch",
        *,
        cache_size: int = 8,
        cache_bytes: int = 512 * 2**20,
        max_batch: int = 8,
        attn_implementation: str | None = "sdpa",
        engine_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> "GarModel":
        """Load a local GAR directory. ``overrides``: GarConfig fields such as ``max_num_tiles``,
        ``replay_geometry``, ``double_bos``. ``backend`` other than "torch" is built by
        ``gar_ros.runtime.create_engines(model, backend, **engine_options)`` (``onnx_dir``,
        ``engine_dir``, ``precision``, ``force_rebuild``, ...)."""
        ckpt = load_checkpoint(path, device=device, dtype=dtype, attn_implementation=attn_implementation, **overrides)
        processor = GarProcessor(ckpt.config, ckpt.tokenizer, ckpt.chat_template)
        vision, language = torch_engines(ckpt.model)
        model = cls(
            Path(path).expanduser().resolve().name,
            ckpt.config,
            processor,
            ckpt.model,
            vision,
            language,
            eos_ids=ckpt.eos_ids,
            pad_id=ckpt.pad_id,
            cache_size=cache_size,
            cache_bytes=cache_bytes,
            max_batch=max_batch,
        )
        if backend != "torch":
            try:
                from gar_ros.runtime import create_engines  # type: ignore[attr-defined]
            except ImportError as err:
                raise BackendError(f"backend {backend!r} needs gar_ros.runtime.create_engines") from err
            model.vision, model.language = create_engines(model, backend, **(engine_options or {}))
        return model

    @property
    def backend(self) -> str:
        """The backend that actually runs the language model (after any fallback)."""
        return str(getattr(self.language, "backend", "torch"))

    # ------------------------------------------------------------------ cache
    def clear_cache(self) -> None:
        with self._lock:
            self._frames.clear()

    def encode_frame(self, image: np.ndarray, frame_key: Any) -> FrameEntry:
        """Preprocess a frame into the cache under ``frame_key`` (returns the entry)."""
        rgb = self.processor.rgb(image)
        return self._frame_entry(rgb, frame_key)

    def _frame_entry(self, rgb: np.ndarray, frame_key: Any) -> FrameEntry:
        with self._lock:
            return self._frame_entry_locked(rgb, frame_key)

    def _frame_entry_locked(self, rgb: np.ndarray, frame_key: Any) -> FrameEntry:
        digest = _digest(rgb)
        if frame_key is not None:
            entry = self._frames.get(frame_key)
            if entry is not None and entry.digest == digest:
                self._frames.move_to_end(frame_key)
                return entry
        entry = FrameEntry(digest, self.processor.tiles(rgb))
        if frame_key is not None and self.cache_size > 0:
            self._frames[frame_key] = entry
            self._frames.move_to_end(frame_key)
            self._evict()
        return entry

    def _encode(self, entry: FrameEntry, prompts: Sequence[RegionPrompt]) -> list[torch.Tensor]:
        """Tile tokens (T, N, D) per prompt map; uncached maps go through one vision call."""
        with self._lock:
            return self._encode_locked(entry, prompts)

    def _encode_locked(self, entry: FrameEntry, prompts: Sequence[RegionPrompt]) -> list[torch.Tensor]:
        keys = [_digest(p.prompt_map) for p in prompts]
        todo: dict[bytes, torch.Tensor] = {}
        for key, prompt in zip(keys, prompts):
            if key not in entry.features and key not in todo:
                todo[key] = self.processor.prompt_map_tiles(prompt.prompt_map, entry.tiles)
        if todo:
            t = entry.tiles.num_tiles
            pixels = entry.tiles.pixel_values.repeat(len(todo), 1, 1, 1)
            maps = torch.cat(list(todo.values()), dim=0)
            feats = self.vision.encode(pixels, maps)
            for i, key in enumerate(todo):
                entry.features[key] = feats[i * t : (i + 1) * t]
        out = []
        for key in keys:
            entry.features.move_to_end(key)
            out.append(entry.features[key])
        while len(entry.features) > max(self.maps_per_frame, len(set(keys))):
            entry.features.popitem(last=False)
        self._evict()
        return out

    def _evict(self) -> None:
        """Drop least recently used frames beyond ``cache_size`` frames or ``cache_bytes`` bytes
        (the most recent frame always stays)."""
        while len(self._frames) > self.cache_size:
            self._frames.popitem(last=False)
        while len(self._frames) > 1 and sum(e.nbytes for e in self._frames.values()) > self.cache_bytes:
            self._frames.popitem(last=False)

    @property
    def cache_nbytes(self) -> int:
        """Bytes held by the frame cache (tiles + encoded tokens)."""
        with self._lock:
            return sum(e.nbytes for e in self._frames.values())

    # ------------------------------------------------------------------ assembly
    def _prepare(
        self, entry: FrameEntry, ids: list[int], prompt: RegionPrompt, feats: torch.Tensor, *, inspect: bool = True
    ) -> PreparedPrompt:
        """Embeddings of one prompt; ``inspect`` also tiles the prompt map for ``prompt_ids``."""
        input_ids = torch.tensor(ids, dtype=torch.long)
        replays = (
            image_replays(self.config, feats, entry.tiles.grid, prompt.boxes, thumbnail=entry.tiles.thumbnail)
            if self.replay_enabled
            else []
        )
        token_emb = self.language.embed(input_ids[None])[0]
        embeds = fill_embeddings(token_emb, input_ids.to(token_emb.device), self.config.image_token_id,
                                 feats.to(token_emb.device), [(c, r.to(token_emb.device)) for c, r in replays])
        prompt_ids = self.processor_ids(prompt, entry) if inspect else torch.empty(0, dtype=torch.uint8)
        return PreparedPrompt(input_ids, entry.tiles.pixel_values, prompt_ids, dict(prompt.boxes), entry.tiles.grid,
                              embeds)

    def processor_ids(self, prompt: RegionPrompt, entry: FrameEntry) -> torch.Tensor:
        """(T, S, S) uint8 prompt ids of the tiled prompt map, as the model sees them."""
        tiles = self.processor.prompt_map_tiles(prompt.prompt_map, entry.tiles)
        return torch.round((tiles[:, 0] + 1.0) / 2.0 * 255.0).to(torch.uint8)

    def prepare_describe(self, image: np.ndarray, region: Region, frame_key: Any = None) -> PreparedPrompt:
        rgb = self.processor.rgb(image)
        h, w = rgb.shape[:2]
        mask = self.processor.masks([region], w, h)[0]
        entry = self._frame_entry(rgb, frame_key)
        prompt = self.processor.region_prompt([mask], [DESCRIBE_PROMPT_INDEX])
        feats = self._encode(entry, [prompt])[0]
        return self._prepare(entry, self.processor.describe_ids(entry.tiles), prompt, feats)

    def prepare_ask(
        self, image: np.ndarray, regions: Sequence[Region], question: str, frame_key: Any = None
    ) -> PreparedPrompt:
        if len(regions) > self.config.prompt_numbers:
            raise TooManyRegionsError(
                f"{len(regions)} regions in one question; this model has {self.config.prompt_numbers} prompt slots"
            )
        rgb = self.processor.rgb(image)
        h, w = rgb.shape[:2]
        masks = self.processor.masks(regions, w, h)
        indices = list(range(len(regions)))
        self.processor.builder.question_pieces(indices, question)  # validates the question before any compute
        entry = self._frame_entry(rgb, frame_key)
        prompt = self.processor.region_prompt(masks, indices) if masks else self.processor.empty_prompt(w, h)
        ids = self.processor.question_ids(entry.tiles, indices, question)
        feats = self._encode(entry, [prompt])[0]
        return self._prepare(entry, ids, prompt, feats)

    # ------------------------------------------------------------------ public API
    def describe(
        self,
        image: np.ndarray,
        regions: Sequence[Region],
        *,
        max_new_tokens: int = 64,
        frame_key: Any = None,
    ) -> list[RegionText]:
        """Describe each region alone (single-region prompt ``<Prompt1>``), batched."""
        _check_max_new_tokens(max_new_tokens)
        rgb = self.processor.rgb(image)
        h, w = rgb.shape[:2]
        masks = self.processor.masks(regions, w, h)  # all inputs validated before any compute
        if not regions:
            return []
        entry = self._frame_entry(rgb, frame_key)
        ids = self.processor.describe_ids(entry.tiles)
        out: list[RegionText] = []
        for start in range(0, len(regions), self.max_batch):
            chunk = masks[start : start + self.max_batch]
            prompts = [self.processor.region_prompt([m], [DESCRIBE_PROMPT_INDEX]) for m in chunk]
            feats = self._encode(entry, prompts)
            embeds = [self._prepare(entry, ids, p, f, inspect=False).embeds for p, f in zip(prompts, feats)]
            result = greedy_generate(
                self.language, embeds, eos_ids=self.eos_ids, max_new_tokens=max_new_tokens, pad_id=self.pad_id
            )
            self.last_generation = result
            for region, tokens in zip(regions[start : start + self.max_batch], result.tokens):
                out.append(RegionText(region.id, self.processor.decode(tokens), list(tokens)))
        return out

    def ask(
        self,
        image: np.ndarray,
        regions: Sequence[Region],
        question: str,
        *,
        max_new_tokens: int = 64,
        frame_key: Any = None,
        on_text: Callable[[str], bool] | None = None,
    ) -> Answer:
        """Answer a question over up to ``prompt_numbers`` regions (region i is ``<Prompt i>``).

        ``on_text(text_so_far)`` runs after each token; returning False cancels (the answer then
        carries the text so far and ``message="cancelled"``).
        """
        _check_max_new_tokens(max_new_tokens)
        prepared = self.prepare_ask(image, regions, question, frame_key)
        tokens: list[int] = []

        def step(_i: int, emitted: list[int | None]) -> bool:
            if emitted[0] is not None:
                tokens.append(emitted[0])
            if on_text is None:
                return True
            return bool(on_text(self.processor.decode(tokens)))

        result = greedy_generate(
            self.language,
            [prepared.embeds],
            eos_ids=self.eos_ids,
            max_new_tokens=max_new_tokens,
            pad_id=self.pad_id,
            on_step=step,
        )
        self.last_generation = result
        ids = result.tokens[0]
        return Answer(
            status=AnswerStatus.OK,
            text=self.processor.decode(ids),
            region_ids=[r.id for r in regions],
            message="cancelled" if result.cancelled else "",
            token_ids=list(ids),
        )

    def generate_prepared(self, prompts: Sequence[PreparedPrompt], max_new_tokens: int = 64) -> GenerationResult:
        """Greedy generation from prepared prompts (one batch)."""
        return greedy_generate(
            self.language, [p.embeds for p in prompts], eos_ids=self.eos_ids,
            max_new_tokens=max_new_tokens, pad_id=self.pad_id,
        )


__all__ = ["GarModel", "PreparedPrompt", "FrameEntry"]
