"""Conversions between bag messages (rosbags dataclasses) and gar_ros plain types.

Readers are duck-typed (they only touch the fields of the ROS messages), so they accept
rosbags and rclpy messages alike. Writers build rosbags message objects of a typestore.

Images: ``sensor_msgs/Image`` with encodings rgb8, bgr8, rgba8, bgra8, mono8, mono16, 16UC1
(16-bit images are scaled to 8 bits by their maximum), ``sensor_msgs/CompressedImage`` (any
format OpenCV decodes: JPEG, PNG). Output is (H, W, 3) uint8 RGB.
"""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from gar_ros.errors import ImageError, RegionError
from gar_ros.types import Answer, Region, RegionText

#: encoding -> (channels, numpy dtype)
ENCODINGS: dict[str, tuple[int, str]] = {
    "rgb8": (3, "u1"),
    "bgr8": (3, "u1"),
    "rgba8": (4, "u1"),
    "bgra8": (4, "u1"),
    "mono8": (1, "u1"),
    "8uc1": (1, "u1"),
    "8uc3": (3, "u1"),
    "mono16": (1, "u2"),
    "16uc1": (1, "u2"),
}
MAX_PIXELS = 8192 * 8192


def stamp_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` -> int nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def image_to_rgb(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` into (H, W, 3) uint8 RGB; ImageError when unusable."""
    enc = str(msg.encoding).lower()
    if enc not in ENCODINGS:
        raise ImageError(f"unsupported image encoding {msg.encoding!r}")
    channels, dt = ENCODINGS[enc]
    h, w = int(msg.height), int(msg.width)
    if h <= 0 or w <= 0 or h * w > MAX_PIXELS:
        raise ImageError(f"bad image size {w}x{h}")
    itemsize = 2 if dt == "u2" else 1
    row = w * channels * itemsize
    step = int(msg.step) or row
    data = np.asarray(msg.data, dtype=np.uint8).reshape(-1)
    if step < row or data.size < step * (h - 1) + row:
        raise ImageError(
            f"image data holds {data.size} bytes, {enc} {w}x{h} needs {row * h} (step {step})"
        )
    if data.size < step * h:
        data = np.concatenate([data, np.zeros(step * h - data.size, np.uint8)])
    rows = data[: step * h].reshape(h, step)[:, :row]
    order = ">" if int(getattr(msg, "is_bigendian", 0)) else "<"
    pix = np.ascontiguousarray(rows).view(np.dtype(order + dt)).reshape(h, w, channels)
    if itemsize == 2:
        peak = int(pix.max()) or 1
        pix = (pix.astype(np.float32) * (255.0 / peak)).round().astype(np.uint8)
    if channels == 1:
        return np.repeat(pix, 3, axis=2)
    if enc in ("bgr8", "bgra8"):
        return np.ascontiguousarray(pix[:, :, 2::-1])
    return np.array(pix[:, :, :3], order="C", copy=True)  # writable, detached from the message buffer


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG, PNG, ...) into (H, W, 3) uint8 RGB."""
    buf = np.asarray(msg.data, dtype=np.uint8).reshape(-1)
    if buf.size == 0:
        raise ImageError("compressed image is empty")
    try:
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as err:
        raise ImageError(f"cannot decode {msg.format!r} image of {buf.size} bytes: {err}") from err
    if bgr is None:
        raise ImageError(f"cannot decode {msg.format!r} image of {buf.size} bytes (corrupt or truncated)")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def decode_frame(msg: Any) -> np.ndarray:
    """Image or CompressedImage message -> (H, W, 3) uint8 RGB."""
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return compressed_to_rgb(msg)
    return image_to_rgb(msg)


def mask_from_msg(msg: Any) -> np.ndarray | None:
    """mono8 ``sensor_msgs/Image`` mask -> (h, w) bool (non-zero = inside); None when empty."""
    h, w = int(msg.height), int(msg.width)
    if h <= 0 or w <= 0:
        return None
    data = np.asarray(msg.data, dtype=np.uint8).reshape(-1)
    step = int(msg.step) or w
    if str(msg.encoding).lower() not in ("mono8", "8uc1", ""):
        raise RegionError(f"mask encoding {msg.encoding!r} is not mono8")
    if step < w or data.size < step * h:
        raise RegionError(f"mask data holds {data.size} bytes, {w}x{h} mono8 needs {step * h}")
    return data[: step * h].reshape(h, step)[:, :w] != 0


def region_from_msg(msg: Any) -> Region:
    """``gar_ros/Region`` -> :class:`Region` as received.

    ``mask`` keeps the message's size (the frame's or the box's: the pipeline places and
    validates it, ``gar_ros.pipeline.resolve_regions``); ``box`` from the RegionOfInterest
    (None when it has no area); depth NaN/0 -> None. RegionError when the mask bytes are unusable.
    """
    box_msg = msg.box
    bw, bh = int(box_msg.width), int(box_msg.height)
    x0, y0 = int(box_msg.x_offset), int(box_msg.y_offset)
    box = (float(x0), float(y0), float(x0 + bw), float(y0 + bh)) if bw > 0 and bh > 0 else None
    try:
        mask = mask_from_msg(msg.mask)
    except RegionError as err:
        raise RegionError(f"region {msg.id!r}: {err}") from err
    depth = float(msg.depth)
    return Region(
        id=str(msg.id),
        box=box,
        mask=mask,
        label=str(msg.label),
        score=float(msg.score),
        depth=None if (not math.isfinite(depth) or depth == 0.0) else depth,
    )


# ----------------------------------------------------------------------------------- writers


def make_time(store: Any, ns: int) -> Any:
    return store.types["builtin_interfaces/msg/Time"](sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def make_header(store: Any, ns: int, frame_id: str) -> Any:
    return store.types["std_msgs/msg/Header"](stamp=make_time(store, ns), frame_id=frame_id)


def rgb_to_image_msg(store: Any, rgb: np.ndarray, ns: int, frame_id: str) -> Any:
    """(H, W, 3) uint8 RGB -> ``sensor_msgs/Image`` rgb8."""
    h, w = rgb.shape[:2]
    return store.types["sensor_msgs/msg/Image"](
        header=make_header(store, ns, frame_id),
        height=h,
        width=w,
        encoding="rgb8",
        is_bigendian=0,
        step=w * 3,
        data=np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1),
    )


def rgb_to_compressed_msg(store: Any, rgb: np.ndarray, ns: int, frame_id: str, fmt: str = "jpeg") -> Any:
    """(H, W, 3) uint8 RGB -> ``sensor_msgs/CompressedImage`` (jpeg or png)."""
    ext = ".png" if fmt == "png" else ".jpg"
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ImageError(f"cannot encode image as {fmt}")
    return store.types["sensor_msgs/msg/CompressedImage"](
        header=make_header(store, ns, frame_id), format=fmt, data=buf.reshape(-1).astype(np.uint8)
    )


def _roi(store: Any, box: tuple[float, float, float, float] | None) -> Any:
    roi = store.types["sensor_msgs/msg/RegionOfInterest"]
    if box is None:
        return roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return roi(x_offset=max(0, x1), y_offset=max(0, y1), height=max(0, y2 - max(0, y1)),
               width=max(0, x2 - max(0, x1)), do_rectify=False)


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Tight (x1, y1, x2, y2) box of a non-empty bool mask (x2/y2 exclusive)."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        raise RegionError("empty mask")
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def region_to_msg(store: Any, region: Region, ns: int, frame_id: str) -> Any:
    """:class:`Region` -> ``gar_ros/Region`` (full-frame mono8 mask when the region has a mask)."""
    img = store.types["sensor_msgs/msg/Image"]
    box = mask_box(region.mask) if region.mask is not None else region.box
    if region.mask is not None and box is not None:
        # box-sized mono8 mask placed at the box (msg/Region.msg), much smaller than a full frame
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        crop = region.mask[max(0, y1):y2, max(0, x1):x2]
        h, w = crop.shape
        mask = img(header=make_header(store, ns, frame_id), height=h, width=w, encoding="mono8",
                   is_bigendian=0, step=w, data=(crop.astype(np.uint8) * 255).reshape(-1))
    else:
        mask = img(header=make_header(store, ns, frame_id), height=0, width=0, encoding="mono8",
                   is_bigendian=0, step=0, data=np.zeros(0, np.uint8))
    return store.types["gar_ros/msg/Region"](
        id=str(region.id), label=region.label, score=float(region.score), box=_roi(store, box),
        mask=mask, depth=float(region.depth) if region.depth is not None else 0.0,
    )


def regions_to_msg(store: Any, regions: list[Region], ns: int, frame_id: str) -> Any:
    return store.types["gar_ros/msg/RegionArray"](
        header=make_header(store, ns, frame_id),
        regions=[region_to_msg(store, r, ns, frame_id) for r in regions],
    )


def query_to_msg(store: Any, query_id: str, question: str, region_ids: list[str], ns: int) -> Any:
    return store.types["gar_ros/msg/Query"](
        query_id=query_id, question=question, region_ids=list(region_ids), stamp=make_time(store, ns)
    )


def string_msg(store: Any, text: str) -> Any:
    return store.types["std_msgs/msg/String"](data=text)


def descriptions_to_msg(
    store: Any,
    texts: list[RegionText],
    regions: dict[str, Region],
    ns: int,
    frame_id: str,
    *,
    model: str,
    backend: str,
    latency: float,
    inference_time: float,
) -> Any:
    """Descriptions of one frame -> ``gar_ros/RegionDescriptionArray`` stamped like the frame."""
    descs = []
    for t in texts:
        r = regions.get(t.region_id)
        box = None
        if r is not None:
            box = r.box if r.box is not None else (mask_box(r.mask) if r.mask is not None else None)
        descs.append(
            store.types["gar_ros/msg/RegionDescription"](
                id=t.region_id, label=r.label if r is not None else "", box=_roi(store, box),
                text=t.text, frame_stamps=[make_time(store, s) for s in (t.frame_stamps or [ns])],
            )
        )
    return store.types["gar_ros/msg/RegionDescriptionArray"](
        header=make_header(store, ns, frame_id), descriptions=descs, model=model, backend=backend,
        latency=float(latency), inference_time=float(inference_time),
    )


def answer_to_msg(store: Any, answer: Answer, query_id: str, question: str, ns: int, frame_id: str) -> Any:
    """:class:`Answer` -> ``gar_ros/Answer`` stamped like its frame."""
    return store.types["gar_ros/msg/Answer"](
        header=make_header(store, ns, frame_id), query_id=query_id, question=question, answer=answer.text,
        region_ids=list(answer.region_ids), status=int(answer.status), message=answer.message,
    )
