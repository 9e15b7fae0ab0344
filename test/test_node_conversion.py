"""Image and region message conversion (no DDS): encodings, padding, bad data, masks, boxes."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sensor_msgs")
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from gar_ros.errors import ImageError, RegionError  # noqa: E402
from gar_ros.pipeline.regions import resolve_region  # noqa: E402
from gar_ros.ros.images import (  # noqa: E402
    array_to_imgmsg,
    compressed_to_rgb,
    imgmsg_to_rgb,
    rgb_to_compressed,
    rgb_to_imgmsg,
)
from gar_ros.ros.regions import (  # noqa: E402
    box_to_roi,
    ns_to_stamp,
    region_from_msg,
    region_to_msg,
    regionset_from_msg,
    roi_to_box,
    stamp_to_ns,
)
from gar_ros.types import Region  # noqa: E402

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "encoding, arr, expected",
    [
        ("rgb8", RGB, RGB),
        ("bgr8", RGB[..., ::-1], RGB),
        ("8UC3", RGB[..., ::-1], RGB),
        ("rgba8", np.dstack([RGB, np.full((5, 7), 9, np.uint8)]), RGB),
        ("bgra8", np.dstack([RGB[..., ::-1], np.full((5, 7), 9, np.uint8)]), RGB),
        ("mono8", RGB[..., 0], np.repeat(RGB[..., :1], 3, 2)),
    ],
)
def test_8bit_encodings(encoding, arr, expected):
    out = imgmsg_to_rgb(array_to_imgmsg(arr, encoding))
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_16bit_scaled_to_8bit(encoding):
    depth = np.array([[1000, 2000], [3000, 5000]], np.uint16)
    out = imgmsg_to_rgb(array_to_imgmsg(depth, encoding))
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[..., 0], [[0, 64], [128, 255]])  # min..max → 0..255, rounded


def test_big_endian_16bit_and_row_padding():
    depth = np.array([[0, 256, 512]], np.uint16)
    msg = Image(height=1, width=3, encoding="16UC1", is_bigendian=1, step=8,
                data=depth.astype(">u2").tobytes() + b"\x00\x00")
    np.testing.assert_array_equal(imgmsg_to_rgb(msg)[0, :, 0], [0, 128, 255])
    padded = Image(height=2, width=2, encoding="rgb8", step=8,
                   data=bytes([1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0]))
    np.testing.assert_array_equal(imgmsg_to_rgb(padded).reshape(-1), np.arange(1, 13))


@pytest.mark.parametrize(
    "msg, needle",
    [
        (Image(height=480, width=640, encoding="rgb8", step=1920, data=bytes(30)), "needs 921600 bytes, got 30"),
        (Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(100)), "got 100"),
        (Image(height=2, width=2, encoding="yuv422", step=4, data=bytes(8)), "unsupported image encoding"),
        (Image(height=2, width=2, encoding="rgb8", step=2, data=bytes(4)), "step 2 < 6"),
        (Image(height=0, width=2, encoding="rgb8", step=6, data=b""), "no pixels"),
    ],
)
def test_bad_images_raise_image_error(msg, needle):
    with pytest.raises(ImageError, match=needle):
        imgmsg_to_rgb(msg)


def test_compressed_jpeg_png_and_corrupt():
    img = np.zeros((16, 16, 3), np.uint8)
    img[:, :8] = (250, 10, 10)
    out = compressed_to_rgb(rgb_to_compressed(img, fmt="jpeg", quality=95))
    assert out.shape == (16, 16, 3) and out[8, 2, 0] > 200 and out[8, 2, 2] < 60  # red stays red
    np.testing.assert_array_equal(compressed_to_rgb(rgb_to_compressed(img, fmt="png")), img)
    with pytest.raises(ImageError, match="cannot be decoded"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=b"\xff\xd8\xff\xe0\x00\x10JFIF"))
    with pytest.raises(ImageError, match="empty"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=b""))
    truncated = rgb_to_compressed(img, fmt="png")
    truncated.data = bytes(truncated.data)[:20]
    with pytest.raises(ImageError):
        compressed_to_rgb(truncated)


def test_rgb_to_imgmsg_round_trip():
    for enc in ("rgb8", "bgr8"):
        msg = rgb_to_imgmsg(RGB, encoding=enc)
        assert msg.encoding == enc and msg.step == 21
        np.testing.assert_array_equal(imgmsg_to_rgb(msg), RGB)


def test_stamps_and_boxes():
    ns = 1_700_000_000_987_654_321
    assert stamp_to_ns(ns_to_stamp(ns)) == ns
    assert roi_to_box(box_to_roi((10.2, 20.6, 30.0, 41.0))) == (10.0, 21.0, 30.0, 41.0)
    assert roi_to_box(box_to_roi(None)) is None


def test_region_round_trip_box_sized_mask():
    mask = np.zeros((40, 50), bool)
    mask[10:20, 5:15] = True
    mask[12, 7] = False
    region = Region("cup_1", box=(5, 10, 15, 20), mask=mask, label="cup", score=0.5, depth=2.0)
    msg = region_to_msg(region)
    assert (msg.mask.width, msg.mask.height) == (10, 10)  # box-sized on the wire
    back = region_from_msg(msg)
    assert (back.id, back.label, back.score, back.depth) == ("cup_1", "cup", 0.5, 2.0)
    resolved = resolve_region(back, 50, 40)
    np.testing.assert_array_equal(resolved.mask, mask)


def test_region_frame_sized_mask_and_no_mask():
    from gar_ros.msg import Region as RegionMsg

    msg = RegionMsg(id="a", score=1.0)
    msg.box = box_to_roi((1, 2, 5, 6))
    frame_mask = np.zeros((8, 9), np.uint8)
    frame_mask[2:6, 1:5] = 255
    msg.mask = array_to_imgmsg(frame_mask, "mono8")
    r = resolve_region(region_from_msg(msg), 9, 8)
    assert r.mask.sum() == 16 and r.box == (1.0, 2.0, 5.0, 6.0)
    msg.mask = Image()
    r = region_from_msg(msg)
    assert r.mask is None and r.box == (1.0, 2.0, 5.0, 6.0)
    assert region_from_msg(RegionMsg(id="d", depth=float("nan"))).depth is None


def test_region_mask_with_bad_encoding_or_size_reported():
    from gar_ros.msg import Region as RegionMsg
    from gar_ros.msg import RegionArray

    bad_enc = RegionMsg(id="x")
    bad_enc.mask = array_to_imgmsg(np.zeros((2, 2, 3), np.uint8), "rgb8")
    with pytest.raises(RegionError, match="mono8"):
        region_from_msg(bad_enc)
    short = RegionMsg(id="y")
    short.mask = Image(height=4, width=4, encoding="mono8", step=4, data=bytes(3))
    rs = regionset_from_msg(RegionArray(regions=[bad_enc, short, RegionMsg(id="ok")]))
    assert [r.id for r in rs.regions] == ["ok"]
    assert len(rs.problems) == 2 and "got 3" in rs.problems[1]


def test_region_with_mask_only_travels_with_its_box():
    mask = np.zeros((30, 40), bool)
    mask[5:9, 10:20] = True
    msg = region_to_msg(Region("m", mask=mask))
    assert (msg.box.x_offset, msg.box.y_offset, msg.box.width, msg.box.height) == (10, 5, 10, 4)
    np.testing.assert_array_equal(resolve_region(region_from_msg(msg), 40, 30).mask, mask)


def test_region_box_partly_outside_and_empty_mask():
    mask = np.zeros((30, 40), bool)
    mask[0:4, 0:6] = True
    msg = region_to_msg(Region("p", box=(-5, -5, 6, 4), mask=mask))
    np.testing.assert_array_equal(resolve_region(region_from_msg(msg), 40, 30).mask, mask)
    empty = region_to_msg(Region("e", mask=np.zeros((30, 40), bool)))
    assert (empty.mask.width, empty.mask.height) == (40, 30)  # sent frame-sized, receiver rejects it
    with pytest.raises(RegionError, match="empty"):
        resolve_region(region_from_msg(empty), 40, 30)


def test_detection2d_array_conversion():
    """vision_msgs/Detection2DArray fields (duck-typed: vision_msgs is not installable here)."""
    from types import SimpleNamespace as NS

    from gar_ros.ros.regions import detections_to_regionset

    det = NS(id="track7", bbox=NS(center=NS(position=NS(x=50.0, y=40.0)), size_x=20.0, size_y=10.0),
             results=[NS(hypothesis=NS(class_id="cup", score=0.9))])
    anon = NS(id="", bbox=NS(center=NS(position=NS(x=5.0, y=5.0)), size_x=4.0, size_y=4.0), results=[])
    msg = NS(header=NS(stamp=ns_to_stamp(42), frame_id="cam"), detections=[det, anon])
    rs = detections_to_regionset(msg)
    assert rs.stamp == 42 and rs.frame_id == "cam"
    a, b = rs.regions
    assert (a.id, a.box, a.label, a.score) == ("track7", (40.0, 35.0, 60.0, 45.0), "cup", 0.9)
    assert b.id == "det1" and b.box == (3.0, 3.0, 7.0, 7.0)
