"""gar_ros/Region(Array) and RegionDescription(Array) messages ↔ gar_ros types.

Boxes: RegionOfInterest (x_offset, y_offset, width, height) ↔ (x1, y1, x2, y2) with x2 = x + width.
Masks travel as mono8 (non-zero = inside), either frame-sized or box-sized; incoming masks are
kept at their size here and placed into the frame by ``gar_ros.pipeline.regions`` once the frame
is known. Outgoing masks are box-sized crops.

Readers (``*_from_msg``, ``stamp_to_ns``, ``roi_to_box``) are duck-typed and shared with the bag
evaluator (rosbags dataclasses have the same fields as rclpy messages); importing this module
does not import rclpy, the writers import the message classes when called.
"""
from __future__ import annotations

import math

import numpy as np

from gar_ros.errors import ImageError, RegionError
from gar_ros.pipeline.frames import DescriptionBatch, RegionSet
from gar_ros.pipeline.regions import box_from_mask, clip_box
from gar_ros.ros.images import array_to_imgmsg, image_array
from gar_ros.types import Region


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time → int nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def roi_to_box(roi) -> tuple[float, float, float, float] | None:
    if int(roi.width) <= 0 or int(roi.height) <= 0:
        return None
    x, y = float(roi.x_offset), float(roi.y_offset)
    return (x, y, x + float(roi.width), y + float(roi.height))


def box_to_roi(box):
    from sensor_msgs.msg import RegionOfInterest

    roi = RegionOfInterest()
    if box is None:
        return roi
    x1, y1, x2, y2 = (max(0, int(round(v))) for v in box)
    roi.x_offset, roi.y_offset = x1, y1
    roi.width, roi.height = max(0, x2 - x1), max(0, y2 - y1)
    return roi


def region_from_msg(msg) -> Region:
    """gar_ros/Region → Region (mask at its own size, bool); RegionError when unreadable."""
    mask = None
    if int(msg.mask.width) > 0 and int(msg.mask.height) > 0:
        if str(msg.mask.encoding).lower() not in ("mono8", "8uc1"):
            raise RegionError(f"region {msg.id!r}: mask encoding {msg.mask.encoding!r}, expected mono8")
        try:
            mask = image_array(msg.mask)[..., 0] != 0
        except ImageError as err:
            raise RegionError(f"region {msg.id!r}: mask: {err}") from err
    depth = float(msg.depth)
    return Region(
        id=str(msg.id),
        box=roi_to_box(msg.box),
        mask=mask,
        label=str(msg.label),
        score=float(msg.score),
        depth=depth if math.isfinite(depth) and depth > 0 else None,
    )


def regionset_from_msg(msg) -> RegionSet:
    """gar_ros/RegionArray → RegionSet; unreadable regions are left out and named in ``problems``."""
    regions, problems = [], []
    for rmsg in msg.regions:
        try:
            regions.append(region_from_msg(rmsg))
        except RegionError as err:
            problems.append(str(err))
    return RegionSet(
        stamp=stamp_to_ns(msg.header.stamp),
        regions=regions,
        frame_id=str(msg.header.frame_id),
        problems=problems,
    )


def region_to_msg(region: Region):
    """Region → gar_ros/Region (mask as a box-sized mono8 crop; box derived from the mask when None).

    Masks larger than their (rounded) box are cropped to it; an empty mask is sent frame-sized.
    """
    from gar_ros.msg import Region as RegionMsg

    msg = RegionMsg()
    msg.id = region.id
    msg.label = region.label
    msg.score = float(region.score)
    box = region.box
    mask = None if region.mask is None else np.asarray(region.mask, dtype=bool)
    if mask is not None and box is None and mask.any():
        box = box_from_mask(mask)
    msg.depth = float(region.depth) if region.depth is not None else float("nan")
    if mask is None:
        msg.box = box_to_roi(box)
        return msg
    height, width = mask.shape
    if box is not None:
        msg.box = box_to_roi(clip_box(box, width, height))
        roi = msg.box
        crop = mask[roi.y_offset : roi.y_offset + roi.height, roi.x_offset : roi.x_offset + roi.width]
        if roi.width > 0 and roi.height > 0 and crop.shape == (roi.height, roi.width):
            msg.mask = array_to_imgmsg(crop.astype(np.uint8) * 255, "mono8")
            return msg
    msg.mask = array_to_imgmsg(mask.astype(np.uint8) * 255, "mono8")  # frame-sized
    return msg


def regionarray_to_msg(regions: list[Region], header):
    from gar_ros.msg import RegionArray

    return RegionArray(header=header, regions=[region_to_msg(r) for r in regions])


def descriptions_to_msg(batch: DescriptionBatch, header, model: str, backend: str):
    """DescriptionBatch → gar_ros/RegionDescriptionArray (header = the source frame's)."""
    from gar_ros.msg import RegionDescription, RegionDescriptionArray

    out = RegionDescriptionArray()
    out.header = header
    out.model = model
    out.backend = backend
    out.latency = float(batch.latency)
    out.inference_time = float(batch.inference_time)
    for d in batch.descriptions:
        out.descriptions.append(
            RegionDescription(
                id=d.region.id,
                label=d.region.label,
                box=box_to_roi(d.region.box),
                text=d.text.text,
                frame_stamps=[ns_to_stamp(s) for s in d.text.frame_stamps],
            )
        )
    return out


def detections_to_regionset(msg) -> RegionSet:
    """vision_msgs/Detection2DArray → RegionSet (bbox centre/size → box, ``id`` → track id)."""
    regions, problems = [], []
    for k, det in enumerate(msg.detections):
        bbox = det.bbox
        cx, cy = float(bbox.center.position.x), float(bbox.center.position.y)
        w, h = float(bbox.size_x), float(bbox.size_y)
        label, score = "", 1.0
        if len(det.results):
            label = str(det.results[0].hypothesis.class_id)
            score = float(det.results[0].hypothesis.score)
        rid = str(det.id) or f"det{k}"
        regions.append(Region(rid, box=(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), label=label, score=score))
    return RegionSet(stamp_to_ns(msg.header.stamp), regions, str(msg.header.frame_id), problems)
