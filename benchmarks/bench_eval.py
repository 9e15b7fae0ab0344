"""Bag evaluation throughput: bag writing/reading, image decoding, and bag-eval frames per second.

Prints a table. Usage: python benchmarks/bench_eval.py [--model DIR] [--frames N] [--size WxH]
(default model: the embedded tiny model, else a tiny random checkpoint made in a temp dir).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--regions", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from gar_ros.evaluation.bagio import BagReader
    from gar_ros.evaluation.builders import Item, write_items
    from gar_ros.ros.images import msg_to_rgb as decode_frame
    from gar_ros.evaluation.replay import ReplayOptions, Replayer
    from gar_ros.evaluation.report import write_all
    from gar_ros.evaluation.runner import load_model
    from gar_ros.types import Region

    w, h = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    items = []
    for k in range(args.frames):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        regions = []
        for i in range(args.regions):
            m = np.zeros((h, w), bool)
            x, y = int(rng.integers(0, w - 80)), int(rng.integers(0, h - 80))
            m[y:y + 60, x:x + 70] = True
            regions.append(Region(id=str(i), mask=m))
        items.append(Item(img, regions, f"Is <region:0> left of <region:1>?", f"q{k}", []))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        for fmt in ("raw", "jpeg"):
            t0 = time.perf_counter()
            write_items(items, tmpd / f"bag_{fmt}", image_format=fmt)
            t_write = time.perf_counter() - t0
            t0 = time.perf_counter()
            n = 0
            t_dec = 0.0
            with BagReader(tmpd / f"bag_{fmt}") as r:
                c = r.choose_topics()
                for m in r.messages(c.topics()):
                    n += 1
                    if m.topic == c.image:
                        t1 = time.perf_counter()
                        decode_frame(m.msg)
                        t_dec += time.perf_counter() - t1
            t_read = time.perf_counter() - t0
            rows.append((f"write bag ({fmt}, {args.size})", t_write / args.frames * 1e3, "ms/frame"))
            rows.append((f"read+deserialize ({fmt})", (t_read - t_dec) / n * 1e3, "ms/msg"))
            rows.append((f"decode image ({fmt})", t_dec / args.frames * 1e3, "ms/frame"))
        if args.model:
            model = load_model(args.model)
        else:
            try:
                model = load_model(None)
            except Exception:
                from gar_ros.model.tiny import make_tiny

                model = load_model(make_tiny(tmpd / "tiny_random", 2))
        for describe in ("all", "none"):
            t0 = time.perf_counter()
            res = Replayer(model, ReplayOptions(describe=describe, max_new_tokens=16, query_max_new_tokens=16,
                                                progress=False)).run(tmpd / "bag_jpeg")
            t_run = time.perf_counter() - t0
            rows.append((f"bag-eval describe={describe} ({model.name})", args.frames / t_run, "frames/s"))
        t0 = time.perf_counter()
        write_all(res, tmpd / "out")
        rows.append(("write outputs + report + plots", (time.perf_counter() - t0) * 1e3, "ms"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  value  unit")
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:8.2f}  {unit}")


if __name__ == "__main__":
    main()
