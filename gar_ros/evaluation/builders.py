"""Making evaluation bags: from GAR-Bench-VQA annotations, from image files, from synthetic scenes.

Layout of a bag made here (all stamps of one item equal: header stamps = log time):
- ``/camera/image`` sensor_msgs/Image rgb8, or ``/camera/image/compressed`` CompressedImage
  (``image_format`` png or jpeg);
- ``/gar/regions`` gar_ros/RegionArray, header = the frame's; masks box-sized mono8;
- ``/gar/queries`` gar_ros/Query, ``stamp`` = the frame's, ``query_id`` unique;
- ``/gar/ground_truth`` std_msgs/String, one JSON object per query or described frame:
  ``{"query_id", "kind": "multiple_choice"|"grounding"|"description", "answer", "type",
  "choices", "region_ids", "keywords": {region_id: [word, ...]}, "stamp"}`` (fields by kind).
  ``bag-eval`` reads it automatically; ``--gt FILE`` accepts the same objects as a JSON list.
"""
from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gar_ros.errors import ImageError, InputError
from gar_ros.evaluation import convert
from gar_ros.evaluation import typestore as ts
from gar_ros.evaluation.bagio import BagWriter
from gar_ros.types import Region

log = logging.getLogger(__name__)

IMAGE_TOPIC = "/camera/image"
COMPRESSED_TOPIC = "/camera/image/compressed"
REGIONS_TOPIC = "/gar/regions"
QUERIES_TOPIC = "/gar/queries"
GT_TOPIC = "/gar/ground_truth"
FRAME_ID = "camera"
START_NS = 1_700_000_000_000_000_000
VQA_SUFFIX = "Answer with the correct option's letter directly."
_PROMPT_RE = re.compile(r"<Prompt(\d+)>")


def prompts_to_references(text: str) -> str:
    """GAR's ``<PromptK>`` -> the pipeline's ``<region:K>``."""
    return _PROMPT_RE.sub(lambda m: f"<region:{m.group(1)}>", text)


def vqa_question(item: dict[str, Any]) -> str:
    """The GAR-Bench-VQA prompt (question, options, instruction) with region references."""
    lines = [f"Question: {item['question']}", "Options:"]
    lines += [str(c) for c in item.get("choices", [])]
    lines.append(VQA_SUFFIX)
    return prompts_to_references("\n".join(lines))


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE (``size`` [H, W], ``counts`` str or list) -> (H, W) bool mask."""
    from pycocotools import mask as mask_utils

    try:
        if isinstance(rle.get("counts"), list):
            h, w = rle["size"]
            rle = mask_utils.frPyObjects(rle, h, w)
        elif isinstance(rle.get("counts"), str):
            rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
        with warnings.catch_warnings():  # pycocotools' numpy-2 copy-keyword deprecation notice
            warnings.simplefilter("ignore", DeprecationWarning)
            return mask_utils.decode(rle).astype(bool)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"bad COCO RLE mask: {err}") from err


@dataclass
class Item:
    """One frame of a bag to build: image, regions, optional query and ground truth."""

    image: np.ndarray
    regions: list[Region]
    query: str | None = None
    query_id: str = ""
    query_region_ids: list[str] = field(default_factory=list)
    ground_truth: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BuildSummary:
    path: Path
    frames: int = 0
    queries: int = 0
    skipped: list[str] = field(default_factory=list)

    def text(self) -> str:
        s = f"wrote {self.path}: {self.frames} frames, {self.queries} queries"
        if self.skipped:
            s += f", {len(self.skipped)} items skipped"
        return s


def write_items(
    items: Iterable[Item],
    out: str | Path,
    *,
    period: float = 0.5,
    image_format: str = "raw",
    storage: str | None = None,
    overwrite: bool = False,
    start_ns: int = START_NS,
) -> BuildSummary:
    """Write ``items`` as consecutive frames ``period`` seconds apart (see module doc for topics)."""
    if image_format not in ("raw", "png", "jpeg"):
        raise InputError(f"image format must be raw, png or jpeg, got {image_format!r}")
    summary = BuildSummary(Path(out))
    store = ts.gar_typestore()
    step = int(round(period * 1e9))
    with BagWriter(out, storage=storage, store=store, overwrite=overwrite) as bag:
        for k, item in enumerate(items):
            ns = start_ns + k * step
            if image_format == "raw":
                bag.write(IMAGE_TOPIC, ts.IMAGE, convert.rgb_to_image_msg(store, item.image, ns, FRAME_ID), ns)
            else:
                msg = convert.rgb_to_compressed_msg(store, item.image, ns, FRAME_ID, image_format)
                bag.write(COMPRESSED_TOPIC, ts.COMPRESSED_IMAGE, msg, ns)
            bag.write(REGIONS_TOPIC, ts.REGION_ARRAY, convert.regions_to_msg(store, item.regions, ns, FRAME_ID), ns)
            for gt in item.ground_truth:
                record = dict(gt, stamp=ns)
                bag.write(GT_TOPIC, ts.STRING, convert.string_msg(store, json.dumps(record, sort_keys=True)), ns)
            if item.query is not None:
                q = convert.query_to_msg(store, item.query_id, item.query, item.query_region_ids, ns)
                bag.write(QUERIES_TOPIC, ts.QUERY, q, ns)
                summary.queries += 1
            summary.frames += 1
    return summary


# ------------------------------------------------------------------------------ GAR-Bench-VQA


def benchmark_items(annotations: str | Path, *, limit: int | None = None,
                    skipped: list[str] | None = None) -> Iterable[Item]:
    """Items of a GAR-Bench-VQA annotation file whose image exists (``image`` relative to the file).

    Region ids are "0".."n-1" (mask i = ``<Prompt{i}>``); query ids ``vqa_<index>`` with the
    index in the full benchmark when given, else the position in the file.
    """
    path = Path(annotations)
    from gar_ros.evaluation.scoring import load_json_list

    data = load_json_list(path, "annotations")
    done = 0
    for pos, entry in enumerate(data):
        if limit is not None and done >= limit:
            return
        index = entry.get("index_in_full_benchmark", pos)
        img_path = path.parent / str(entry.get("image", ""))
        image = cv2.imread(str(img_path), cv2.IMREAD_COLOR) if img_path.is_file() else None
        if image is None:
            if skipped is not None:
                skipped.append(f"item {index}: image {img_path} missing or unreadable")
            continue
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        regions = []
        for i, rle in enumerate(entry.get("mask_rles", [])):
            mask = decode_rle(rle)
            if mask.shape != rgb.shape[:2]:
                mask = cv2.resize(mask.astype(np.uint8), (rgb.shape[1], rgb.shape[0]),
                                  interpolation=cv2.INTER_NEAREST).astype(bool)
            regions.append(Region(id=str(i), mask=mask))
        qid = f"vqa_{index}"
        ids = [r.id for r in regions]
        gt = {"query_id": qid, "kind": "multiple_choice", "answer": str(entry.get("answer", "")),
              "type": str(entry.get("type", "")), "choices": list(entry.get("choices", [])),
              "index_in_full_benchmark": index}
        done += 1
        yield Item(rgb, regions, vqa_question(entry), qid, ids, [gt])


def bag_from_benchmark(annotations: str | Path, out: str | Path, *, limit: int | None = None,
                       **kw: Any) -> BuildSummary:
    skipped: list[str] = []
    items = list(benchmark_items(annotations, limit=limit, skipped=skipped))
    if not items:
        raise InputError(f"no usable items in {annotations} ({len(skipped)} without images)")
    summary = write_items(items, out, **kw)
    summary.skipped = skipped
    return summary


# ------------------------------------------------------------------------------------ images


def _load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def image_items(images: Sequence[str | Path], masks: Sequence[Sequence[str | Path]] = (),
                boxes: Sequence[Sequence[tuple[float, float, float, float]]] = (),
                question: str | None = None) -> list[Item]:
    """One frame per image; regions from mask files (non-zero = inside) and/or boxes, ids "0".."n-1".

    With ``question`` every frame gets that query (``<region:K>`` references, all regions listed).
    """
    items = []
    for k, img in enumerate(images):
        rgb = _load_rgb(Path(img))
        regions: list[Region] = []
        for mpath in (masks[k] if k < len(masks) else []):
            m = cv2.imread(str(mpath), cv2.IMREAD_GRAYSCALE)
            if m is None:
                raise ImageError(f"cannot read mask {mpath}")
            if m.shape != rgb.shape[:2]:
                raise ImageError(f"mask {mpath} is {m.shape[1]}x{m.shape[0]}, image {img} is {rgb.shape[1]}x{rgb.shape[0]}")
            regions.append(Region(id=str(len(regions)), mask=m > 0))
        for box in (boxes[k] if k < len(boxes) else []):
            regions.append(Region(id=str(len(regions)), box=tuple(float(v) for v in box)))
        ids = [r.id for r in regions]
        items.append(Item(rgb, regions, question, f"q{k}" if question else "", ids if question else []))
    return items
