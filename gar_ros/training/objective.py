"""Training objective: the model's next-token loss plus an auxiliary region probe.

:func:`batch_loss` runs the same computation as ``GarTorchModel.forward`` (vision tower with the
mask embedding, RoI replay, embedding assembly, Llama decoder; cross entropy on the answer
tokens) through the model's public pieces, and also returns the replayed tokens of every
prompted region. A small linear probe (training only, never saved) reads each region's mean
replay token and predicts its colour, shape, centre and log area: this gives the vision tower
a direct signal early in training, so that the few CPU minutes go further. The checkpoint holds
only the GAR network.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gar_ros.model.modeling import GarTorchModel
from gar_ros.synthetic.vocabulary import COLOUR_NAMES, SHAPES

IGNORE = -100


class RegionProbe(nn.Module):
    """Linear heads on a region's mean replay token: colour/shape logits, (cx, cy, log area)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.colour = nn.Linear(dim, len(COLOUR_NAMES))
        self.shape = nn.Linear(dim, len(SHAPES))
        self.geometry = nn.Linear(dim, 3)

    def forward(self, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """feats (N, D); targets (N, 5) = colour id, shape id, cx, cy, log area -> scalar loss."""
        feats = self.norm(feats)
        colour = targets[:, 0].long()
        shape = targets[:, 1].long()
        loss = F.cross_entropy(self.colour(feats), colour, ignore_index=-1)
        loss = loss + F.cross_entropy(self.shape(feats), shape, ignore_index=-1)
        geo = self.geometry(feats)
        ref = torch.stack([targets[:, 2] * 2 - 1, targets[:, 3] * 2 - 1, (targets[:, 4] + 4.0) / 2.0], dim=1)
        return loss + 4.0 * F.mse_loss(geo, ref)


@dataclass
class LossParts:
    lm: torch.Tensor
    aux: torch.Tensor | None
    answer_tokens: int


def batch_loss(model: GarTorchModel, batch: dict, probe: RegionProbe | None) -> LossParts:
    """Loss of one collated batch (see :func:`gar_ros.training.batches.collate`)."""
    input_ids, attention_mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    pixel_values, prompt_maps = batch["pixel_values"], batch["prompt_maps"]
    counts = [int(p.shape[0]) for p in pixel_values]
    feats = model.encode_images(torch.cat(pixel_values, 0), torch.cat(prompt_maps, 0)).split(counts, 0)
    rows = []
    probe_feats, probe_targets = [], []
    for b in range(input_ids.shape[0]):
        replays = model.image_replays(feats[b], batch["grids"][b], batch["boxes"][b])
        rows.append(model.assemble(input_ids[b], feats[b], replays))
        if probe is not None:
            targets = batch["region_targets"][b]
            for k, (_, tokens) in zip(sorted(batch["boxes"][b]), replays):
                if k in targets:
                    probe_feats.append(tokens.mean(0))
                    probe_targets.append(targets[k])
    embeds = torch.stack(rows, 0)
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    logits, _ = model.language_forward(embeds, attention_mask, positions)
    lab = labels.masked_fill(attention_mask == 0, IGNORE)
    lm = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), lab[:, 1:].reshape(-1),
                         ignore_index=IGNORE)
    aux = None
    if probe is not None and probe_feats:
        aux = probe(torch.stack(probe_feats, 0), torch.tensor(probe_targets, dtype=torch.float32))
    return LossParts(lm, aux, int((lab[:, 1:] != IGNORE).sum()))
