"""Helpers of the runtime tests: tiny random Llama decoders and a tiny PE-style vision engine."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def tiny_llama(seed: int = 0, vocab: int = 300, hidden: int = 32, layers: int = 2) -> nn.Module:
    """A random ``LlamaForCausalLM`` small enough to export in seconds (GQA: 4 heads, 2 KV heads)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # make logits spread out so that greedy argmax is not decided by rounding
        model.lm_head.weight.mul_(8.0)
    return model


class TinyPEVision(nn.Module):
    """PE-style vision engine: timm Eva with 2D RoPE (as PE), a mask patch embedding added right
    after ``patch_embed``, an MLP projector and 2x2 average pooling.

    ``encode(pixel_values (T,3,S,S), prompt_maps (T,1,S,S)) -> (T, (S/p/2)^2, D)``.
    """

    def __init__(self, tile: int = 28, patch: int = 7, width: int = 32, out_dim: int = 32, no_prompt: int = 5) -> None:
        super().__init__()
        from timm.models.eva import Eva

        torch.manual_seed(1)
        self.tower = Eva(img_size=tile, patch_size=patch, embed_dim=width, depth=2, num_heads=2, num_classes=0,
                         global_pool="", attn_type="rope", use_pre_transformer_norm=True, use_rot_pos_emb=True,
                         ref_feat_shape=(tile // patch, tile // patch), rope_grid_offset=1.0,
                         rope_grid_indexing="xy")
        self.mask_embed = nn.Conv2d(3, width, patch, stride=patch, bias=False)
        nn.init.normal_(self.mask_embed.weight, std=0.5)
        self.proj = nn.Sequential(nn.Linear(width, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
        self.no_prompt = no_prompt
        self.grid = tile // patch

    def encode(self, pixel_values: Tensor, prompt_maps: Tensor) -> Tensor:
        ids = torch.round((prompt_maps[:, :1] + 1) / 2 * 255).clamp(0, self.no_prompt)
        binary = (ids != self.no_prompt).to(pixel_values.dtype).expand(-1, 3, -1, -1)
        x = self.tower.patch_embed(pixel_values)
        x = x + self.mask_embed(binary).flatten(2).transpose(1, 2)
        x, rope = self.tower._pos_embed(x)
        x = self.tower.norm_pre(x)
        for blk in self.tower.blocks:
            x = blk(x, rope=rope)
        x = self.tower.norm(x)[:, 1:]
        x = self.proj(x)
        t, n, d = x.shape
        x = x.transpose(1, 2).reshape(t, d, self.grid, self.grid)
        x = nn.functional.avg_pool2d(x, 2)
        return x.flatten(2).transpose(1, 2)

    forward = encode
