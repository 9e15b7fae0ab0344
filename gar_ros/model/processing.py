"""Image and region preprocessing for GAR, matching PerceptionLM's fast image processor.

Conventions
- Input images are (H, W, 3) uint8 RGB; (H, W, 4) loses its alpha channel without compositing
  (as PIL's ``convert("RGB")`` does) and (H, W) grayscale is replicated to three channels.
- "thumb+tile": the whole image squashed to ``tile x tile`` is tile 0 (the thumbnail); the image
  is then stretched (no padding, aspect ratio not kept) onto a canvas of ``tiles_w x tiles_h``
  tiles and split row-major. ``aspect_ratio = (tiles_w, tiles_h)``.
- Resizing uses torchvision's tensor resize on uint8 tensors (antialiased BICUBIC for the image,
  NEAREST for the visual-prompt map), then ``(x - 127.5) / 127.5`` in float32, i.e. rescale 1/255
  and mean = std = 0.5 fused, as the fast processor does.
- Visual-prompt map: (H, W) uint8, region k's pixels hold its prompt id k, background holds
  ``no_prompt`` (= prompt_numbers); the first region written wins on overlap. It is tiled like the
  image and normalised the same way (v -> 2v/255 - 1); the model inverts this.
- Boxes returned for replay are normalised to [0, 1] by the image size; see :func:`mask_box`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as tvf

from gar_ros.errors import ImageError, RegionError
from gar_ros.types import Region

#: Largest accepted image (pixels); bigger inputs are refused rather than tiled slowly.
MAX_IMAGE_PIXELS = 64_000_000
#: Relative aspect-ratio difference up to which a mask of another size is resized to the image.
MASK_ASPECT_TOLERANCE = 0.02


# ----------------------------------------------------------------------------- tile grid
def _factor_pairs(n: int) -> list[tuple[int, int]]:
    """(w, h) pairs with w * h == n, w ascending."""
    return [(w, n // w) for w in range(1, n + 1) if n % w == 0]


@lru_cache(maxsize=64)
def supported_grids(max_num_tiles: int) -> tuple[tuple[float, tuple[tuple[int, int], ...]], ...]:
    """Grids grouped by aspect ratio w/h, in PerceptionLM's order.

    Tile counts are visited from ``max_num_tiles`` down to 1; a ratio keeps the position where it
    was first seen, and its grids are listed in visiting order. The order decides ties below.
    """
    groups: dict[float, list[tuple[int, int]]] = {}
    for count in range(max_num_tiles, 0, -1):
        for w, h in _factor_pairs(count):
            groups.setdefault(w / h, []).append((w, h))
    return tuple((ratio, tuple(grids)) for ratio, grids in groups.items())


def _scaled_size(img_w: int, img_h: int, canvas_w: int, canvas_h: int) -> tuple[float, float]:
    """Size of the image fitted into a canvas keeping its aspect ratio (PLM's rounding)."""
    scale = img_w / img_h
    factor = min(canvas_w / img_w, canvas_h / img_h)
    if scale > 1.0:
        new_w = factor * img_w
        return new_w, math.floor(new_w / scale)
    new_h = factor * img_h
    return math.floor(new_h * scale), new_h


def choose_grid(img_w: int, img_h: int, tile_size: int, max_num_tiles: int) -> tuple[int, int]:
    """Tile grid ``(tiles_w, tiles_h)`` for an image, by PerceptionLM's rule.

    1. Among canvases (w*h <= max_num_tiles) that hold the image without downscaling, take the one
       where the fitted image's shorter side is largest (later candidates win ties).
    2. If none holds it, take the grid whose aspect ratio is closest to the image's (not wider for
       landscape images, strictly taller for portrait ones), preferring more tiles.
    """
    if max_num_tiles <= 1:
        return (1, 1)
    grids = supported_grids(max_num_tiles)
    scale = img_w / img_h
    best: tuple[int, int] | None = None
    best_size: tuple[float, float] | None = None
    for _ratio, candidates in grids:
        for w, h in candidates:
            cw, ch = w * tile_size, h * tile_size
            if cw < img_w or ch < img_h:
                continue
            size = _scaled_size(img_w, img_h, cw, ch)
            if best is None or best_size is None:
                best, best_size = (w, h), size
            elif (scale < 1.0 and size[0] >= best_size[0]) or (scale >= 1.0 and size[1] >= best_size[1]):
                best, best_size = (w, h), size
    if best is not None:
        return best
    ratios = dict(grids)
    if scale >= 1:
        ratio = min((r for r in ratios if r <= scale), key=lambda r: abs(r - scale))
        return max(ratios[ratio], key=lambda g: g[0])
    ratio = min((r for r in ratios if r > scale), key=lambda r: abs(1 / r - 1 / scale))
    return max(ratios[ratio], key=lambda g: g[1])


def num_image_tokens(grid: tuple[int, int], tokens_per_tile: int, thumbnail: bool = True) -> int:
    """``<|image|>`` expansion length: tokens per tile times (tiles + thumbnail)."""
    return tokens_per_tile * (grid[0] * grid[1] + (1 if thumbnail else 0))


# ----------------------------------------------------------------------------- images
def as_rgb(image: np.ndarray) -> np.ndarray:
    """Validate and convert an image to (H, W, 3) uint8 RGB (contiguous)."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif not (image.ndim == 3 and image.shape[2] == 3):
        raise ImageError(f"image must have shape (H, W, 3), got {image.shape}")
    h, w = image.shape[:2]
    if h < 1 or w < 1:
        raise ImageError(f"image is empty: {image.shape}")
    if h * w > MAX_IMAGE_PIXELS:
        raise ImageError(f"image too large: {w}x{h} > {MAX_IMAGE_PIXELS} pixels")
    if not image.flags.writeable or not image.flags.c_contiguous:
        image = np.array(image, order="C", copy=True)
    return image


def _resize(chw: torch.Tensor, height: int, width: int, nearest: bool) -> torch.Tensor:
    mode = InterpolationMode.NEAREST if nearest else InterpolationMode.BICUBIC
    return tvf.resize(chw, [height, width], interpolation=mode, antialias=True)


def tile_uint8(
    chw: torch.Tensor, grid: tuple[int, int], tile_size: int, *, nearest: bool, thumbnail: bool = True
) -> torch.Tensor:
    """(C, H, W) uint8 -> (T, C, tile, tile) uint8: [thumbnail] + row-major tiles of the canvas."""
    tiles_w, tiles_h = grid
    parts = []
    if thumbnail:
        parts.append(_resize(chw, tile_size, tile_size, nearest)[None])
    canvas = _resize(chw, tiles_h * tile_size, tiles_w * tile_size, nearest)
    c = canvas.shape[0]
    split = canvas.view(c, tiles_h, tile_size, tiles_w, tile_size).permute(1, 3, 0, 2, 4)
    parts.append(split.reshape(tiles_h * tiles_w, c, tile_size, tile_size))
    return torch.cat(parts, dim=0)


def normalize_uint8(tiles: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 ``(x - 127.5) / 127.5`` (rescale 1/255 and mean = std = 0.5, fused)."""
    return (tiles.to(torch.float32) - 127.5) / 127.5


def prompt_ids_from_normalized(maps: torch.Tensor, no_prompt: int) -> torch.Tensor:
    """Invert the map normalisation: ``round((x + 1) / 2 * 255)`` clamped to [0, no_prompt]."""
    ids = torch.round((maps.float() + 1.0) / 2.0 * 255.0).long()
    return ids.clamp(0, no_prompt)


@dataclass
class FrameTiles:
    """Preprocessed pixels of one frame.

    ``pixel_values`` (T, 3, S, S) float32 normalised; tile 0 is the thumbnail when ``thumbnail``.
    ``grid`` (tiles_w, tiles_h); ``size`` (width, height) of the source image.
    """

    pixel_values: torch.Tensor
    grid: tuple[int, int]
    size: tuple[int, int]
    thumbnail: bool = True

    @property
    def num_tiles(self) -> int:
        return int(self.pixel_values.shape[0])


def preprocess_image(
    image: np.ndarray, tile_size: int, max_num_tiles: int, *, thumbnail: bool = True
) -> FrameTiles:
    """Image (H, W, 3) uint8 -> :class:`FrameTiles` (thumb+tile, or tiles only)."""
    rgb = as_rgb(image)
    h, w = rgb.shape[:2]
    grid = choose_grid(w, h, tile_size, max_num_tiles)
    chw = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()
    tiles = tile_uint8(chw, grid, tile_size, nearest=False, thumbnail=thumbnail)
    return FrameTiles(normalize_uint8(tiles), grid, (w, h), thumbnail)


def preprocess_prompt_map(
    prompt_map: np.ndarray, grid: tuple[int, int], tile_size: int, *, thumbnail: bool = True
) -> torch.Tensor:
    """(H, W) uint8 prompt-id map -> (T, 1, S, S) float32 normalised, tiled NEAREST like the image."""
    chw = torch.from_numpy(np.ascontiguousarray(prompt_map, dtype=np.uint8))[None]
    tiles = tile_uint8(chw, grid, tile_size, nearest=True, thumbnail=thumbnail)
    return normalize_uint8(tiles)


# ----------------------------------------------------------------------------- regions
def _resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    mh, mw = mask.shape
    if abs((mw / mh) / (width / height) - 1.0) > MASK_ASPECT_TOLERANCE:
        raise RegionError(
            f"mask size {mw}x{mh} does not match the image {width}x{height} (different aspect ratio)"
        )
    t = torch.from_numpy(mask.astype(np.uint8))[None]
    out = tvf.resize(t, [height, width], interpolation=InterpolationMode.NEAREST)
    return out[0].numpy().astype(bool)


def mask_from_array(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Validate a region mask and return it as (height, width) bool.

    Accepts bool, integer (non-zero = inside) or float (> 0.5 = inside) arrays; a mask of another
    size with the same aspect ratio is resized NEAREST; otherwise :class:`RegionError`.
    """
    if not isinstance(mask, np.ndarray):
        raise RegionError(f"mask must be a numpy array, got {type(mask).__name__}")
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.ndim != 2 or mask.shape[0] < 1 or mask.shape[1] < 1:
        raise RegionError(f"mask must have shape (H, W), got {mask.shape}")
    if mask.dtype == bool:
        binary = mask
    elif np.issubdtype(mask.dtype, np.integer):
        binary = mask != 0
    elif np.issubdtype(mask.dtype, np.floating):
        if not np.isfinite(mask).all():
            raise RegionError("mask contains NaN or infinite values")
        binary = mask > 0.5
    else:
        raise RegionError(f"unsupported mask dtype {mask.dtype}")
    if binary.shape != (height, width):
        binary = _resize_mask(binary, width, height)
    if not binary.any():
        raise RegionError("mask is empty")
    return binary


def mask_from_box(box: tuple[float, float, float, float], width: int, height: int) -> np.ndarray:
    """Filled mask of a pixel box (x1, y1, x2, y2), x2/y2 exclusive; clipped to the image.

    Pixel (x, y) is inside when its centre (x + 0.5, y + 0.5) lies in the box. A box with NaN or
    infinite values, x2 <= x1, y2 <= y1, or no pixel inside the image raises :class:`RegionError`.
    """
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError) as err:
        raise RegionError(f"box must be four numbers (x1, y1, x2, y2), got {box!r}") from err
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise RegionError(f"box contains NaN or infinite values: {box!r}")
    if x2 <= x1 or y2 <= y1:
        raise RegionError(f"box is empty or inverted: {box!r}")
    c0 = max(0, math.ceil(x1 - 0.5))
    c1 = min(width, math.ceil(x2 - 0.5))
    r0 = max(0, math.ceil(y1 - 0.5))
    r1 = min(height, math.ceil(y2 - 0.5))
    if c1 <= c0 or r1 <= r0:
        raise RegionError(f"box {box!r} lies outside the {width}x{height} image")
    mask = np.zeros((height, width), dtype=bool)
    mask[r0:r1, c0:c1] = True
    return mask


def region_mask(region: Region, width: int, height: int) -> np.ndarray:
    """The (height, width) bool mask of a region (its mask, else its box as a filled rectangle)."""
    if region.mask is not None:
        return mask_from_array(region.mask, width, height)
    if region.box is not None:
        return mask_from_box(region.box, width, height)
    raise RegionError(f"region {region.id!r} has neither a mask nor a box")


def mask_box(mask: np.ndarray, geometry: str = "reference") -> tuple[float, float, float, float]:
    """Normalised box (x1, y1, x2, y2) of a mask's extent, used for RoI replay.

    "reference" reproduces the official code: ``(x_min/W, y_min/H, x_max/W, y_max/H)`` with the
    INCLUSIVE last pixel index. "corrected" uses the exclusive extent ``(x_max+1)/W``.
    """
    h, w = mask.shape
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise RegionError("mask is empty")
    end = 0 if geometry == "reference" else 1
    return (
        float(cols[0]) / w,
        float(rows[0]) / h,
        float(cols[-1] + end) / w,
        float(rows[-1] + end) / h,
    )


def build_prompt_map(
    masks: list[np.ndarray], prompt_ids: list[int], no_prompt: int, height: int, width: int
) -> np.ndarray:
    """(H, W) uint8 map: ``prompt_ids[i]`` on ``masks[i]``, first writer wins, background ``no_prompt``.

    Masks are written in the given order (callers pass them in ascending prompt order).
    """
    out = np.full((height, width), no_prompt, dtype=np.uint8)
    free = np.ones((height, width), dtype=bool)
    for mask, pid in zip(masks, prompt_ids):
        fill = free & mask
        out[fill] = pid
        free &= ~mask
    return out
