"""sensor_msgs Image / CompressedImage ↔ (H, W, 3) uint8 RGB numpy arrays.

The one image decoder of gar_ros, used by the node and the bag evaluator alike. Readers are
duck-typed: they only touch the messages' fields (``height``, ``width``, ``encoding``,
``is_bigendian``, ``step``, ``data``; ``format``, ``data``), so rclpy messages and rosbags
dataclasses both work, and importing this module does not import rclpy (the ``*_to_imgmsg``
writers import ``sensor_msgs`` when called).

Uses ROS 2 ``cv_bridge`` for rclpy Images when a working one is importable; otherwise (it cannot
be installed in this package's pip-based environment) an internal converter handles rgb8, bgr8,
rgba8, bgra8, mono8, mono16, 16UC1 (and 8UC1/8UC3/8UC4 as mono8/bgr8/bgra8; encoding names match
case-insensitively). 16-bit images (depth) are scaled to 8 bits by their own min..max range for
the model. Compressed images (JPEG, PNG, anything OpenCV decodes) decode with OpenCV.
Every failure raises :class:`gar_ros.errors.ImageError` saying what is wrong.
"""
from __future__ import annotations

import cv2
import numpy as np

from gar_ros.errors import ImageError

try:  # pragma: no cover - not installable in this environment
    from cv_bridge import CvBridge as _CvBridge

    _BRIDGE = _CvBridge()
except Exception:  # ImportError, or a cv_bridge built against another numpy/OpenCV
    _BRIDGE = None

#: encoding -> (channels, dtype)
ENCODINGS: dict[str, tuple[int, np.dtype]] = {
    "rgb8": (3, np.dtype(np.uint8)),
    "bgr8": (3, np.dtype(np.uint8)),
    "rgba8": (4, np.dtype(np.uint8)),
    "bgra8": (4, np.dtype(np.uint8)),
    "mono8": (1, np.dtype(np.uint8)),
    "8UC1": (1, np.dtype(np.uint8)),
    "8UC3": (3, np.dtype(np.uint8)),
    "8UC4": (4, np.dtype(np.uint8)),
    "mono16": (1, np.dtype(np.uint16)),
    "16UC1": (1, np.dtype(np.uint16)),
}
MAX_PIXELS = 8192 * 8192
_CANONICAL = {name.lower(): name for name in ENCODINGS}


def canonical_encoding(encoding: str) -> str:
    """The ENCODINGS key for ``encoding`` (case-insensitive); ImageError when unsupported."""
    name = _CANONICAL.get(str(encoding).lower())
    if name is None:
        raise ImageError(
            f"unsupported image encoding {str(encoding)!r} (supported: {', '.join(ENCODINGS)})"
        )
    return name


def _byte_array(data) -> np.ndarray:
    """uint8 view of a message's ``data`` (array.array, bytes, or a list of ints)."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):
        return np.asarray(data, dtype=np.uint8)


def using_cv_bridge() -> bool:
    return _BRIDGE is not None


def image_array(msg) -> np.ndarray:
    """The raw pixel array of a sensor_msgs/Image: (H, W, C) of its dtype, row padding removed."""
    encoding = canonical_encoding(msg.encoding)
    channels, dtype = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageError(f"image has no pixels ({width}x{height})")
    if height * width > MAX_PIXELS:
        raise ImageError(f"image {width}x{height} is too large")
    row = width * channels * dtype.itemsize
    if step < row:
        raise ImageError(f"{encoding} image {width}x{height}: step {step} < {row} bytes per row")
    data = msg.data
    size = len(data)
    if size < step * (height - 1) + row or size > step * height:
        raise ImageError(
            f"{encoding} image {width}x{height} (step {step}) needs {step * height} bytes, "
            f"got {size} bytes"
        )
    buf = _byte_array(data)
    if buf.size < step * height:
        buf = np.concatenate([buf, np.zeros(step * height - buf.size, np.uint8)])
    rows = buf[: step * height].reshape(height, step)[:, :row]
    big = bool(getattr(msg, "is_bigendian", 0))
    arr = np.ascontiguousarray(rows).view(dtype.newbyteorder(">" if big else "<") if dtype.itemsize > 1 else dtype)
    return arr.reshape(height, width, channels).astype(dtype, copy=False)


def to_rgb(arr: np.ndarray, encoding: str) -> np.ndarray:
    """(H, W, C) array of ``encoding`` → (H, W, 3) uint8 RGB (may share memory with ``arr`` for rgb8)."""
    if arr.dtype == np.uint16:
        plane = arr[..., 0]
        lo, hi = int(plane.min()), int(plane.max())
        if hi > lo:
            gray = cv2.convertScaleAbs(plane, alpha=255.0 / (hi - lo), beta=-lo * 255.0 / (hi - lo))
        else:
            gray = np.zeros(plane.shape, np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    if arr.shape[2] == 1:
        return cv2.cvtColor(np.ascontiguousarray(arr[..., 0]), cv2.COLOR_GRAY2RGB)
    code = {
        "bgr8": cv2.COLOR_BGR2RGB,
        "8UC3": cv2.COLOR_BGR2RGB,
        "rgba8": cv2.COLOR_RGBA2RGB,
        "bgra8": cv2.COLOR_BGRA2RGB,
        "8UC4": cv2.COLOR_BGRA2RGB,
    }.get(encoding)
    if code is not None:
        return cv2.cvtColor(np.ascontiguousarray(arr), code)
    return np.ascontiguousarray(arr)


def imgmsg_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image → (H, W, 3) uint8 RGB (ImageError when unusable)."""
    encoding = canonical_encoding(msg.encoding)
    if _BRIDGE is not None and type(msg).__module__.startswith("sensor_msgs"):  # pragma: no cover
        try:
            image = _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough")
        except Exception as err:
            raise ImageError(f"cv_bridge: {err}") from err
        arr = image if image.ndim == 3 else image[..., None]
        return to_rgb(arr, encoding)
    return to_rgb(image_array(msg), encoding)


def compressed_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG/PNG) → (H, W, 3) uint8 RGB (ImageError when corrupt)."""
    data = _byte_array(msg.data)
    if data.size == 0:
        raise ImageError("compressed image is empty")
    try:
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as err:
        raise ImageError(
            f"compressed image ({msg.format!r}, {data.size} bytes) cannot be decoded: {err}"
        ) from err
    if decoded is None:
        raise ImageError(
            f"compressed image ({msg.format!r}, {data.size} bytes) cannot be decoded (corrupt?)"
        )
    if decoded.ndim == 2:
        decoded = decoded[..., None]
    if decoded.dtype == np.uint16:
        return to_rgb(decoded[..., :1], "16UC1")
    if decoded.dtype != np.uint8:
        raise ImageError(f"compressed image decodes to unsupported dtype {decoded.dtype}")
    encoding = {1: "mono8", 3: "bgr8", 4: "bgra8"}.get(decoded.shape[2])
    if encoding is None:
        raise ImageError(f"compressed image has {decoded.shape[2]} channels")
    return to_rgb(decoded, encoding)


def is_compressed(msg) -> bool:
    """True for a sensor_msgs/CompressedImage (``format`` field, no ``encoding``)."""
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def msg_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image or CompressedImage → (H, W, 3) uint8 RGB (ImageError when unusable)."""
    return compressed_to_rgb(msg) if is_compressed(msg) else imgmsg_to_rgb(msg)


def rgb_to_imgmsg(image: np.ndarray, header=None, encoding: str = "rgb8"):
    """(H, W, 3) uint8 RGB → sensor_msgs/Image of ``encoding`` (rgb8 or bgr8)."""
    from sensor_msgs.msg import Image

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageError(f"expected (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if encoding == "bgr8":
        image = image[..., ::-1]
    elif encoding != "rgb8":
        raise ImageError(f"cannot encode {encoding!r}")
    return array_to_imgmsg(image, encoding, header)


def array_to_imgmsg(arr: np.ndarray, encoding: str, header=None):
    """Raw (H, W[, C]) array → sensor_msgs/Image of ``encoding`` (any of ENCODINGS; for tests and demos)."""
    from sensor_msgs.msg import Image

    if encoding not in ENCODINGS:
        raise ImageError(f"unsupported image encoding {encoding!r}")
    channels, dtype = ENCODINGS[encoding]
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] != channels:
        raise ImageError(f"{encoding} needs {channels} channels, got {arr.shape[2]}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(arr.shape[1] * channels * dtype.itemsize)
    msg.data = arr.astype(dtype.newbyteorder("<")).tobytes()
    return msg


def rgb_to_compressed(image: np.ndarray, header=None, fmt: str = "jpeg", quality: int = 90):
    """(H, W, 3) uint8 RGB → sensor_msgs/CompressedImage (jpeg or png)."""
    from sensor_msgs.msg import CompressedImage

    ext = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}.get(fmt)
    if ext is None:
        raise ImageError(f"unsupported compression {fmt!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(image[..., ::-1]), params)
    if not ok:
        raise ImageError("encoding failed")
    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format = "jpeg" if ext == ".jpg" else "png"
    msg.data = buf.tobytes()
    return msg
