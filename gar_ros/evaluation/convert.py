"""Writers of bag messages: gar_ros plain types -> rosbags message objects of a typestore.

Reading goes through the node's duck-typed converters, which accept rosbags dataclasses and
rclpy messages alike: :mod:`gar_ros.ros.images` (``msg_to_rgb``: Image/CompressedImage ->
(H, W, 3) uint8 RGB) and :mod:`gar_ros.ros.regions` (``region_from_msg``, ``stamp_to_ns``).
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from gar_ros.errors import ImageError, RegionError
from gar_ros.pipeline.regions import box_from_mask
from gar_ros.types import Answer, Region, RegionText


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
    """Tight (x1, y1, x2, y2) box of a non-empty bool mask (x2/y2 exclusive); RegionError when empty."""
    box = box_from_mask(mask)
    if box is None:
        raise RegionError("empty mask")
    return box


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
