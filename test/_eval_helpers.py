"""Small bags for the evaluation tests: valid synthetic frames and every kind of broken message."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gar_ros.evaluation import convert
from gar_ros.evaluation import typestore as ts
from gar_ros.evaluation.bagio import BagWriter
from gar_ros.types import Region

T0 = 1_700_000_000_000_000_000
STEP = 100_000_000


def scene(k: int, size: int = 64) -> tuple[np.ndarray, list[Region]]:
    """A deterministic frame: background plus two filled rectangles (regions "a", "b")."""
    img = np.full((size, size, 3), 90 + 7 * k, np.uint8)
    m1 = np.zeros((size, size), bool)
    m1[8:24, 6:26] = True
    m2 = np.zeros((size, size), bool)
    m2[30:56, 34:58] = True
    img[m1] = (220, 30, 30)
    img[m2] = (30, 60, 220)
    return img, [Region(id="a", mask=m1, label="red"), Region(id="b", mask=m2, label="blue")]


def write_frame(bag: BagWriter, k: int, *, compressed: bool = False, query: str | None = None) -> int:
    store = bag.store
    ns = T0 + k * STEP
    img, regions = scene(k)
    if compressed:
        bag.write("/cam/image/compressed", ts.COMPRESSED_IMAGE,
                  convert.rgb_to_compressed_msg(store, img, ns, "cam", "png"), ns)
    else:
        bag.write("/cam/image", ts.IMAGE, convert.rgb_to_image_msg(store, img, ns, "cam"), ns)
    bag.write("/gar/regions", ts.REGION_ARRAY, convert.regions_to_msg(store, regions, ns, "cam"), ns)
    if query is not None:
        bag.write("/gar/queries", ts.QUERY, convert.query_to_msg(store, f"q{k}", query, [], ns), ns)
    return ns


def write_clean_bag(path: Path, frames: int = 3, *, storage: str | None = None, query: bool = True) -> Path:
    with BagWriter(path, storage=storage) as bag:
        for k in range(frames):
            write_frame(bag, k, query="Which one is red: <region:a> or <region:b>?" if query else None)
    return path


def write_broken_bag(path: Path) -> dict[str, int]:
    """A bag dir (its name may end in .bag) mixing good frames and every broken message kind.

    Returns counts of what was written: good frames, broken image messages, undefined type msgs.
    """
    store = ts.gar_typestore()
    with BagWriter(path) as bag:
        write_frame(bag, 0, query="Is <region:a> red?")
        # a 640x480 rgb8 Image holding 30 bytes
        ns = T0 + 1 * STEP
        bad = store.types[ts.IMAGE](header=convert.make_header(store, ns, "cam"), height=480, width=640,
                                    encoding="rgb8", is_bigendian=0, step=1920, data=np.arange(30, dtype=np.uint8))
        bag.write("/cam/image", ts.IMAGE, bad, ns)
        bag.write("/gar/regions", ts.REGION_ARRAY, convert.regions_to_msg(store, scene(1)[1], ns, "cam"), ns)
        # unsupported encoding
        ns = T0 + 2 * STEP
        enc = store.types[ts.IMAGE](header=convert.make_header(store, ns, "cam"), height=2, width=2,
                                    encoding="yuv422_yuy2", is_bigendian=0, step=4, data=np.zeros(8, np.uint8))
        bag.write("/cam/image", ts.IMAGE, enc, ns)
        # a message type without a definition
        ns = T0 + 3 * STEP
        bag.write_raw("/acme/mystery", "acme_msgs/msg/Mystery", b"\x00\x01\x00\x00abc", ns,
                      msgdef="", rihs01="RIHS01_" + "1" * 64)
        # a type name without /msg/ (ROS 1 style), decodable once normalised
        ns = T0 + 4 * STEP
        good = convert.rgb_to_image_msg(store, scene(4)[0], ns, "cam")
        msgdef, _ = store.generate_msgdef(ts.IMAGE, ros_version=2)
        bag.write_raw("/legacy/image", "sensor_msgs/Image", store.serialize_cdr(good, ts.IMAGE), ns,
                      msgdef=msgdef, rihs01=store.hash_rihs01(ts.IMAGE))
        # truncated CDR on the regions topic
        ns = T0 + 5 * STEP
        bag.write_raw("/gar/regions", ts.REGION_ARRAY, b"\x00\x01\x00\x00\x10", ns)
        # a good frame after all that
        write_frame(bag, 6, query="Is <region:b> blue?")
    return {"good_frames": 2}


def write_broken_compressed_bag(path: Path) -> None:
    """CompressedImage topic: a 10-byte JPEG, then a good PNG frame."""
    store = ts.gar_typestore()
    with BagWriter(path) as bag:
        ns = T0
        jpg = store.types[ts.COMPRESSED_IMAGE](header=convert.make_header(store, ns, "cam"), format="jpeg",
                                               data=np.frombuffer(b"\xff\xd8\xff\xe0\x00\x10JFIF", np.uint8))
        bag.write("/cam/image/compressed", ts.COMPRESSED_IMAGE, jpg, ns)
        bag.write("/gar/regions", ts.REGION_ARRAY, convert.regions_to_msg(store, scene(0)[1], ns, "cam"), ns)
        write_frame(bag, 1, compressed=True, query="Is <region:a> red?")


def write_message_compressed_bag(path: Path, *, corrupt: bool = True) -> None:
    """Per-message zstd compression; with ``corrupt`` one image message's block is garbage."""
    with BagWriter(path, compression="message") as bag:
        write_frame(bag, 0, query="Is <region:a> red?")
        if corrupt:
            ns = T0 + STEP
            conn = bag._conns["/cam/image"]
            bag._writer.storage.write(conn, ns, b"not a zstd frame")  # bypasses compression
            bag._writer.counts[conn.id] += 1
        write_frame(bag, 2, query="Is <region:b> blue?")
