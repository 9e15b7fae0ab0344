"""The GAR network in torch: PerceptionLM + a mask patch embedding + RoI feature replay.

Module layout (and so the safetensors keys): ``mllm`` is transformers'
``PerceptionLMForConditionalGeneration`` (``mllm.model.vision_tower.timm_model.*``,
``mllm.model.multi_modal_projector.*``, ``mllm.model.language_model.*``, ``mllm.lm_head.*``) and
``mask_patch_embedding`` is ``Conv2d(3, C, p, stride=p, bias=False)`` (C = vision width, p = patch).

Vision path per tile (thumbnail included): ``patch_embed(pixels) + mask_patch_embedding(binary
prompt map)``, then the tower's class token / position embedding / ``norm_pre`` / blocks / norm,
class token dropped, projector MLP, ``pooling x pooling`` average pooling -> ``tokens_per_tile``
tokens of the LM width. The binary map is ``prompt id != no_prompt`` of the de-normalised map.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PerceptionLMConfig, PerceptionLMForConditionalGeneration

from gar_ros.model.config import GarConfig
from gar_ros.model.processing import prompt_ids_from_normalized
from gar_ros.model.replay import merge_tiles, replay_features

Box = tuple[float, float, float, float]


def build_plm_config(config: GarConfig, attn_implementation: str | None = None) -> PerceptionLMConfig:
    """PerceptionLMConfig from the checkpoint's ``mllm_config`` dict."""
    values = {k: v for k, v in config.mllm_config.items() if k not in ("model_type", "transformers_version")}
    plm = PerceptionLMConfig(**values)
    if attn_implementation:
        plm.text_config._attn_implementation = attn_implementation
    return plm


@dataclass
class GarOutput:
    """Training/inference forward result: ``loss`` (scalar or None), ``logits`` (B, L, V)."""

    loss: torch.Tensor | None
    logits: torch.Tensor


class GarTorchModel(nn.Module):
    """GAR as an ``nn.Module`` (inference pieces + a differentiable ``forward`` with labels)."""

    def __init__(self, config: GarConfig, attn_implementation: str | None = "sdpa") -> None:
        super().__init__()
        self.config = config
        self.mllm = PerceptionLMForConditionalGeneration(build_plm_config(config, attn_implementation))
        width = config.vision_width or self._tower().embed_dim
        self.mask_patch_embedding = nn.Conv2d(
            3, width, kernel_size=config.patch_size, stride=config.patch_size, bias=False
        )

    # ------------------------------------------------------------------ parts
    def _tower(self) -> Any:
        return self.mllm.model.vision_tower.timm_model

    @property
    def embed_layer(self) -> nn.Embedding:
        return self.mllm.model.language_model.embed_tokens

    def tie_lm_head(self) -> None:
        """Share the LM head with the input embeddings (checkpoints without ``lm_head``)."""
        self.mllm.lm_head.weight = self.embed_layer.weight

    # ------------------------------------------------------------------ vision
    def encode_images(self, pixel_values: torch.Tensor, prompt_maps: torch.Tensor | None) -> torch.Tensor:
        """(T, 3, S, S) normalised tiles + (T, 1|3, S, S) normalised prompt maps -> (T, N, D).

        N = tokens_per_tile, D = LM width. ``prompt_maps=None`` skips the mask embedding.
        """
        tower = self._tower()
        dtype = self.mask_patch_embedding.weight.dtype
        x = tower.patch_embed(pixel_values.to(dtype))
        if prompt_maps is not None:
            ids = prompt_ids_from_normalized(prompt_maps, self.config.no_prompt_id)
            binary = (ids != self.config.no_prompt_id).to(dtype)
            if binary.shape[1] == 1:
                binary = binary.expand(-1, 3, -1, -1)
            mask_embeds = self.mask_patch_embedding(binary)  # (T, C, h, w)
            if x.ndim == 4:  # towers with dynamic image size keep NHWC
                x = x + mask_embeds.permute(0, 2, 3, 1)
            else:
                x = x + mask_embeds.flatten(2).transpose(1, 2)
        x, rope = tower._pos_embed(x)
        x = tower.norm_pre(x)
        if getattr(tower, "rope_mixed", False) and rope is not None:
            for i, block in enumerate(tower.blocks):
                x = block(x, rope=rope[i])
        else:
            for block in tower.blocks:
                x = block(x, rope=rope)
        x = tower.norm(x)
        if self.config.vision_use_cls_token:
            x = x[:, 1:, :]
        return self.mllm.model.multi_modal_projector(x)

    # ------------------------------------------------------------------ language
    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed_layer(input_ids)

    def language_forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any = None,
        use_cache: bool = False,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, Any]:
        """Decoder + LM head: (B, L, D) -> logits (B, L, V) (``last_only``: (B, 1, V)), cache."""
        out = self.mllm.model.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
        )
        hidden = out.last_hidden_state[:, -1:] if last_only else out.last_hidden_state
        return self.mllm.lm_head(hidden), out.cache

    # ------------------------------------------------------------------ assembly
    def image_replays(
        self,
        features: torch.Tensor,
        grid: tuple[int, int],
        boxes: dict[int, Box],
        *,
        thumbnail: bool = True,
        geometry: str | None = None,
    ) -> list[tuple[int, torch.Tensor]]:
        return image_replays(self.config, features, grid, boxes, thumbnail=thumbnail, geometry=geometry)

    def assemble(
        self,
        input_ids: torch.Tensor,
        image_features: torch.Tensor | None,
        replays: Sequence[tuple[int, torch.Tensor]] = (),
    ) -> torch.Tensor:
        """(L,) ids -> (L, D) embeddings with image and crop tokens filled (see :func:`fill_embeddings`)."""
        return fill_embeddings(self.embed(input_ids), input_ids, self.config.image_token_id, image_features, replays)

    # ------------------------------------------------------------------ training
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: Sequence[torch.Tensor],
        prompt_maps: Sequence[torch.Tensor | None],
        grids: Sequence[tuple[int, int]],
        boxes: Sequence[dict[int, Box]],
        labels: torch.Tensor | None = None,
        thumbnail: bool = True,
    ) -> GarOutput:
        """Differentiable forward over a batch (padding anywhere, marked by ``attention_mask``).

        input_ids/attention_mask/labels (B, L); per sample: pixel tiles (T_b, 3, S, S), prompt map
        tiles (T_b, 1|3, S, S), grid (tiles_w, tiles_h) and {prompt index: normalised box}.
        Labels at image and crop positions are ignored (-100); the loss is next-token cross entropy.
        """
        counts = [int(p.shape[0]) for p in pixel_values]
        pix = torch.cat(list(pixel_values), dim=0)
        if any(m is None for m in prompt_maps):
            if not all(m is None for m in prompt_maps):
                raise ValueError("prompt_maps must be all tensors or all None")
            maps = None
        else:
            maps = torch.cat(list(prompt_maps), dim=0)  # type: ignore[arg-type]
        feats = self.encode_images(pix, maps).split(counts, dim=0)
        rows = []
        for b in range(input_ids.shape[0]):
            replays = self.image_replays(feats[b], grids[b], boxes[b], thumbnail=thumbnail)
            rows.append(self.assemble(input_ids[b], feats[b], replays))
        embeds = torch.stack(rows, dim=0)
        positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        logits, _ = self.language_forward(embeds, attention_mask, positions)
        loss = None
        if labels is not None:
            special = input_ids == self.config.image_token_id
            for cid in self.config.crop_tokens_ids:
                special |= input_ids == cid
            labels = labels.masked_fill(special | (attention_mask == 0), -100)
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                labels[:, 1:].reshape(-1),
                ignore_index=-100,
            )
        return GarOutput(loss, logits)


def image_replays(
    config: GarConfig,
    features: torch.Tensor,
    grid: tuple[int, int],
    boxes: dict[int, Box],
    *,
    thumbnail: bool = True,
    geometry: str | None = None,
) -> list[tuple[int, torch.Tensor]]:
    """Replay tokens per prompt of one image: [(crop token id, (R, D))], prompts ascending.

    ``features`` (T, N, D) are the image's tile tokens (tile 0 the thumbnail when ``thumbnail``);
    ``boxes`` maps prompt index -> normalised box of that prompt's own mask.
    """
    tiles = features[1:] if thumbnail else features
    fmap = merge_tiles(tiles, grid)
    out = []
    for k in sorted(boxes):
        tokens = replay_features(
            fmap, boxes[k], config.replay_side, geometry or config.replay_geometry, config.feature_stride
        )
        out.append((config.crop_token_id(k), tokens))
    return out


def fill_embeddings(
    embeds: torch.Tensor,
    input_ids: torch.Tensor,
    image_token_id: int,
    image_features: torch.Tensor | None,
    replays: Sequence[tuple[int, torch.Tensor]] = (),
) -> torch.Tensor:
    """Put image features and replay tokens into (L, D) token embeddings (differentiable).

    ``image_features`` (T, N, D) fill the ``image_token_id`` positions in order; each
    ``(crop_id, tokens)`` fills that crop id's positions in order. Counts must match exactly.
    """
    emb = embeds
    if image_features is not None:
        where = input_ids == image_token_id
        flat = image_features.reshape(-1, emb.shape[-1]).to(emb.dtype)
        if int(where.sum()) != flat.shape[0]:
            raise ValueError(f"{int(where.sum())} image tokens but {flat.shape[0]} image features")
        emb = emb.masked_scatter(where[:, None], flat)
    for crop_id, tokens in replays:
        where = input_ids == crop_id
        if int(where.sum()) != tokens.shape[0]:
            raise ValueError(f"{int(where.sum())} crop tokens {crop_id} but {tokens.shape[0]} replay tokens")
        emb = emb.masked_scatter(where[:, None], tokens.to(emb.dtype))
    return emb
