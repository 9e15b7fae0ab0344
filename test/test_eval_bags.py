"""Bag reading/writing without a model: typestore, builders, robustness of the reader."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from _eval_helpers import (
    scene,
    write_broken_bag,
    write_broken_compressed_bag,
    write_clean_bag,
    write_message_compressed_bag,
)
from gar_ros.cli import main
from gar_ros.errors import BagError
from gar_ros.evaluation import convert
from gar_ros.ros.images import imgmsg_to_rgb, msg_to_rgb
from gar_ros.ros.regions import region_from_msg, stamp_to_ns
from gar_ros.evaluation import typestore as ts
from gar_ros.evaluation.bagio import BagReader
from gar_ros.evaluation.builders import decode_rle, prompts_to_references


def test_typestore_has_our_messages_with_ros_hashes() -> None:
    store = ts.gar_typestore()
    for name in ts.GAR_MSG_NAMES:
        assert f"gar_ros/msg/{name}" in store.types
    msg_dir = ts.find_msg_dir()
    # the colcon build writes the ROS type hash next to each .msg; ours must agree
    for name in ts.GAR_MSG_NAMES:
        desc = msg_dir / f"{name}.json"
        if desc.is_file():
            want = json.loads(desc.read_text())["type_hashes"][0]["hash_string"]
            assert store.hash_rihs01(f"gar_ros/msg/{name}") == want
    src = ts.gar_typestore(Path(__file__).resolve().parents[1] / "msg")  # from the source tree too
    assert "gar_ros/msg/RegionArray" in src.types
    assert ts.normalize_msgtype("sensor_msgs/Image") == "sensor_msgs/msg/Image"
    assert ts.normalize_msgtype("/gar_ros/msg/Query") == "gar_ros/msg/Query"


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_roundtrip_regions_and_images(tmp_path: Path, storage: str) -> None:
    bag = write_clean_bag(tmp_path / f"b_{storage}", frames=2, storage=storage)
    with BagReader(bag) as r:
        choice = r.choose_topics()
        assert (choice.image, choice.regions, choice.queries) == ("/cam/image", "/gar/regions", "/gar/queries")
        msgs = list(r.messages(choice.topics()))
    assert [m.topic for m in msgs] == ["/cam/image", "/gar/regions", "/gar/queries"] * 2
    assert all(not m.error for m in msgs)
    img, regions = scene(0)
    assert np.array_equal(msg_to_rgb(msgs[0].msg), img)
    got = [region_from_msg(x) for x in msgs[1].msg.regions]
    assert [g.id for g in got] == ["a", "b"]
    # box-sized masks placed at the box reproduce the frame-sized ones
    from gar_ros.pipeline import resolve_regions

    resolved, problems = resolve_regions(got, 64, 64)
    assert not problems
    for want, have in zip(regions, resolved):
        assert np.array_equal(want.mask, have.mask)


def test_image_encodings() -> None:
    store = ts.gar_typestore()
    rgb = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    msg = convert.rgb_to_image_msg(store, rgb, 0, "f")
    assert np.array_equal(imgmsg_to_rgb(msg), rgb)
    msg.encoding, msg.data = "bgr8", rgb[:, :, ::-1].reshape(-1).copy()
    assert np.array_equal(imgmsg_to_rgb(msg), rgb)
    mono16 = store.types[ts.IMAGE](header=convert.make_header(store, 0, "f"), height=2, width=2, encoding="16UC1",
                                   is_bigendian=0, step=4,
                                   data=np.array([0, 1, 2, 4], np.uint16).view(np.uint8).copy())
    out = imgmsg_to_rgb(mono16)
    assert out.shape == (2, 2, 3) and out.max() == 255
    from gar_ros.errors import ImageError

    bad = store.types[ts.IMAGE](header=convert.make_header(store, 0, "f"), height=480, width=640, encoding="rgb8",
                                is_bigendian=0, step=1920, data=np.zeros(30, np.uint8))
    with pytest.raises(ImageError, match="30 bytes"):
        imgmsg_to_rgb(bad)


def test_broken_messages_are_per_message_errors(tmp_path: Path) -> None:
    path = tmp_path / "recording.bag"  # a rosbag2 directory whose name ends in .bag
    write_broken_bag(path)
    with BagReader(path) as r:
        assert r.topics["/acme/mystery"].error and "no definition" in r.topics["/acme/mystery"].error
        assert r.topics["/legacy/image"].normalized == ts.IMAGE and not r.topics["/legacy/image"].error
        msgs = list(r.messages(list(r.topics)))
    by_topic: dict[str, list] = {}
    for m in msgs:
        by_topic.setdefault(m.topic, []).append(m)
    assert by_topic["/acme/mystery"][0].error
    assert by_topic["/legacy/image"][0].msg is not None
    bad_regions = [m for m in by_topic["/gar/regions"] if m.error]
    assert len(bad_regions) == 1 and "cannot deserialize" in bad_regions[0].error
    assert [m.timestamp for m in msgs] == sorted(m.timestamp for m in msgs)


def test_compressed_and_per_message_compression(tmp_path: Path) -> None:
    write_broken_compressed_bag(tmp_path / "c")
    with BagReader(tmp_path / "c") as r:
        imgs = [m for m in r.messages(["/cam/image/compressed"])]
    from gar_ros.errors import ImageError

    with pytest.raises(ImageError, match="10 bytes"):
        msg_to_rgb(imgs[0].msg)
    assert msg_to_rgb(imgs[1].msg).shape == (64, 64, 3)

    write_message_compressed_bag(tmp_path / "z")
    with BagReader(tmp_path / "z") as r:
        msgs = list(r.messages(["/cam/image", "/gar/regions"]))
    errors = [m for m in msgs if m.error]
    assert len(errors) == 1 and "decompress" in errors[0].error
    assert sum(1 for m in msgs if m.msg is not None) == 4


def test_missing_and_truncated_bags(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="not found"):
        BagReader(tmp_path / "nope").open()
    bag = write_clean_bag(tmp_path / "t", frames=2)
    db = next(bag.glob("*.db3"))
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])
    with pytest.raises(BagError):
        with BagReader(bag) as r:
            list(r.messages(list(r.topics)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="cannot read bag"):
        BagReader(tmp_path / "empty").open()
    assert main(["bag-eval", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2


def test_bag_from_benchmark_subset(shared_data: Path, tmp_path: Path) -> None:
    ann = shared_data / "gar_bench_vqa_subset" / "annotations.json"
    items = json.loads(ann.read_text())
    out = tmp_path / "vqa"
    assert main(["bag-from-benchmark", str(ann), str(out), "--limit", "3", "--image-format", "png"]) == 0
    with BagReader(out) as r:
        choice = r.choose_topics()
        assert choice.ground_truth == "/gar/ground_truth"
        msgs = [m for m in r.messages(choice.topics())]
    assert not any(m.error for m in msgs)
    queries = [m.msg for m in msgs if m.topic == choice.queries]
    regions = [m.msg for m in msgs if m.topic == choice.regions]
    gts = [json.loads(m.msg.data) for m in msgs if m.topic == choice.ground_truth]
    frames = [m.msg for m in msgs if m.topic == choice.image]
    assert len(queries) == len(regions) == len(gts) == len(frames) == 3
    for item, q, ra, gt, f in zip(items, queries, regions, gts, frames):
        assert "<Prompt" not in q.question and "<region:0>" in q.question
        assert q.question.startswith("Question: ") and prompts_to_references(item["choices"][0]) in q.question
        assert list(q.region_ids) == [str(i) for i in range(len(item["mask_rles"]))]
        assert stamp_to_ns(q.stamp) == stamp_to_ns(f.header.stamp) == stamp_to_ns(ra.header.stamp)
        assert gt["answer"] == item["answer"] and gt["type"] == item["type"] and gt["query_id"] == q.query_id
        from gar_ros.pipeline import resolve_regions

        img = msg_to_rgb(f)
        resolved, problems = resolve_regions([region_from_msg(x) for x in ra.regions], img.shape[1], img.shape[0])
        assert not problems and [x.id for x in resolved] == [str(i) for i in range(len(item["mask_rles"]))]
        for k, rle in enumerate(item["mask_rles"]):
            assert np.array_equal(resolved[k].mask, decode_rle(rle))


def test_sqlite_bag_is_a_real_rosbag2(tmp_path: Path) -> None:
    bag = write_clean_bag(tmp_path / "s", frames=1)
    db = next(bag.glob("*.db3"))
    with sqlite3.connect(db) as con:
        types = {row[0] for row in con.execute("select type from topics")}
    assert {"sensor_msgs/msg/Image", "gar_ros/msg/RegionArray", "gar_ros/msg/Query"} <= types
    assert "rosbag2_bagfile_information" in (bag / "metadata.yaml").read_text()


def test_bag_from_images(shared_data: Path, tmp_path: Path) -> None:
    demo = shared_data / "gar_demo"
    out = tmp_path / "imgs"
    rc = main(["bag-from-images", str(demo / "demo_image_3.png"), str(demo / "demo_image_2.jpg"), "--out", str(out),
               "--mask", f"0:{demo / 'demo_mask_3_0.png'}", "--mask", f"0:{demo / 'demo_mask_3_1.png'}",
               "--box", "1:800,500,1800,1000", "--question", "What is <region:0>?", "--image-format", "jpeg",
               "--storage", "mcap"])
    assert rc == 0
    with BagReader(out) as r:
        c = r.choose_topics()
        msgs = list(r.messages(c.topics()))
    regions = [m.msg for m in msgs if m.topic == c.regions]
    assert [[x.id for x in ra.regions] for ra in regions] == [["0", "1"], ["0"]]
    box = regions[1].regions[0].box
    assert (box.x_offset, box.y_offset, box.width, box.height) == (800, 500, 1000, 500)
    assert [m.msg.question for m in msgs if m.topic == c.queries] == ["What is <region:0>?"] * 2
    assert main(["bag-from-images", str(demo / "demo_image_1.png"), "--out", str(tmp_path / "x"),
                 "--mask", "3:nothing.png"]) == 2


def test_shared_converters_read_bag_messages_without_rclpy() -> None:
    """The node's image/region readers decode rosbags messages in a process where rclpy is unavailable."""
    import subprocess
    import sys

    code = r'''
import sys
for name in ("rclpy", "sensor_msgs", "sensor_msgs.msg", "builtin_interfaces", "builtin_interfaces.msg"):
    sys.modules[name] = None  # importing them now fails
import numpy as np
from gar_ros.evaluation import convert, replay  # noqa: F401
from gar_ros.evaluation import typestore as ts
from gar_ros.ros.images import msg_to_rgb
from gar_ros.ros.regions import region_from_msg, stamp_to_ns
from gar_ros.types import Region

store = ts.gar_typestore()
rgb = np.random.default_rng(1).integers(0, 256, (3, 4, 3), dtype=np.uint8)
hdr = convert.make_header(store, 7, "f")
def image(enc, arr):
    arr = np.ascontiguousarray(arr)
    return store.types[ts.IMAGE](header=hdr, height=3, width=4, encoding=enc, is_bigendian=0,
                                 step=arr.nbytes // 3, data=arr.view(np.uint8).reshape(-1).copy())
alpha = np.full((3, 4, 1), 5, np.uint8)
cases = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "rgba8": np.concatenate([rgb, alpha], 2),
         "bgra8": np.concatenate([rgb[..., ::-1], alpha], 2), "RGB8": rgb}
for enc, arr in cases.items():
    assert np.array_equal(msg_to_rgb(image(enc, arr)), rgb), enc
assert np.array_equal(msg_to_rgb(image("mono8", rgb[..., 0])), np.repeat(rgb[..., :1], 3, 2))
depth = np.arange(12, dtype=np.uint16).reshape(3, 4) * 100
for enc in ("mono16", "16UC1"):
    out = msg_to_rgb(image(enc, depth))
    assert out[0, 0, 0] == 0 and out[2, 3, 0] == 255, enc
assert np.array_equal(msg_to_rgb(convert.rgb_to_compressed_msg(store, rgb, 7, "f", "png")), rgb)
mask = np.zeros((3, 4), bool)
mask[1:, 1:3] = True
r = region_from_msg(convert.region_to_msg(store, Region("m", mask=mask, depth=1.5), 7, "f"))
assert r.box == (1.0, 1.0, 3.0, 3.0) and r.mask.all() and r.mask.shape == (2, 2) and r.depth == 1.5
assert stamp_to_ns(hdr.stamp) == 7
assert "rclpy" not in [m for m in sys.modules if sys.modules[m] is not None]
print("ok")
'''
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
