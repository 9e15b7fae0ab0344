"""``gar-ros`` subcommands of the evaluation area: score, bag-from-benchmark, bag-from-images,
bag-from-synthetic, bag-eval."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gar_ros.errors import InputError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("score", help="score GAR-Bench-VQA predictions (first-letter exact match)",
                              description="Score a JSON list of predictions with 'model_output' per item "
                              "(GAR-Bench-VQA protocol: first letter vs 'answer', per type and overall).")
    p.add_argument("predictions", help="JSON list of items with model_output (and answer/type unless --gt)")
    p.add_argument("--gt", help="annotation JSON (GAR-Bench-VQA format) to score against")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=_score)

    p = subparsers.add_parser("bag-from-benchmark", help="GAR-Bench-VQA annotations -> rosbag2 bag",
                              description="One frame per item (images relative to the annotation file): "
                              "masks as a RegionArray (ids '0'..'n-1'), the question as a Query "
                              "(<PromptK> -> <region:K>), the answer as ground truth on /gar/ground_truth.")
    p.add_argument("annotations")
    p.add_argument("out_bag")
    p.add_argument("--limit", type=int, default=None, help="first N items with images")
    _bag_out_args(p)
    p.set_defaults(func=_from_benchmark)

    p = subparsers.add_parser("bag-from-images", help="image files (+ masks/boxes) -> rosbag2 bag")
    p.add_argument("images", nargs="+")
    p.add_argument("--out", required=True, help="output bag")
    p.add_argument("--mask", action="append", default=[], metavar="IMAGE_INDEX:PATH",
                   help="mask PNG for image N (non-zero = inside); repeatable")
    p.add_argument("--box", action="append", default=[], metavar="IMAGE_INDEX:X1,Y1,X2,Y2",
                   help="box region for image N; repeatable")
    p.add_argument("--question", help="ask this question on every frame (<region:K> references)")
    _bag_out_args(p)
    p.set_defaults(func=_from_images)

    p = subparsers.add_parser("bag-from-synthetic", help="synthetic scenes (+ ground truth) -> rosbag2 bag",
                              description="One synthetic scene per seed: its objects as regions, "
                              "description ground truth, and a multiple-choice question.")
    p.add_argument("out_bag")
    p.add_argument("--scenes", type=int, default=20)
    p.add_argument("--seed", type=int, default=None, help="first seed (default: the held-out seeds)")
    p.add_argument("--no-questions", action="store_true")
    _bag_out_args(p)
    p.set_defaults(func=_from_synthetic)

    p = subparsers.add_parser("bag-eval", help="replay a bag through the pipeline; outputs, scores, report",
                              description="Reads frames, regions and queries in log-time order, runs the "
                              "pipeline, writes DIR/outputs_bag, outputs.json/.csv, predictions.json, "
                              "report.md with PNG plots. Bad messages are reported and skipped.")
    p.add_argument("bag")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--model", default=None, help="model directory (default: the embedded tiny model)")
    p.add_argument("--backend", default="torch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--image-topic")
    p.add_argument("--regions-topic")
    p.add_argument("--queries-topic")
    p.add_argument("--gt-topic")
    p.add_argument("--gt", help="ground-truth JSON (our records or GAR-Bench-VQA annotations)")
    p.add_argument("--describe", choices=("all", "policy", "none"), default="all",
                   help="all: every region of every frame; policy: the node's describe policy; none")
    p.add_argument("--realtime", action="store_true", help="feed at recorded rate to the threaded pipeline")
    p.add_argument("--speed", type=float, default=1.0, help="rate factor with --realtime/--live")
    p.add_argument("--live", action="store_true",
                   help="publish the bag to a running gar_node and record its outputs (rclpy)")
    p.add_argument("--node", default="/gar_node", help="node name (--live)")
    p.add_argument("--live-image-topic", default=None,
                   help="--live: publish frames here (default /image, /image/compressed for compressed)")
    p.add_argument("--live-regions-topic", default="/regions", help="--live: publish regions here")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for outputs after the bag (--live)")
    p.add_argument("--max-new-tokens", type=int, default=0)
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3", help="output bag storage")
    p.add_argument("--no-copy-inputs", action="store_true", help="output bag without the input topics")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.set_defaults(func=_bag_eval)


def _bag_out_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image-format", choices=("raw", "png", "jpeg"), default="raw",
                   help="raw: sensor_msgs/Image rgb8; png/jpeg: CompressedImage")
    p.add_argument("--period", type=float, default=0.5, help="seconds between frames")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default=None)
    p.add_argument("--overwrite", action="store_true")


def _bag_kw(args: argparse.Namespace) -> dict[str, Any]:
    return {"period": args.period, "image_format": args.image_format, "storage": args.storage,
            "overwrite": args.overwrite}


def _score(args: argparse.Namespace) -> int:
    from gar_ros.evaluation.scoring import load_json_list, score_vqa

    preds = load_json_list(args.predictions, "predictions")
    gt = load_json_list(args.gt, "annotations") if args.gt else None
    table = score_vqa(preds, gt)
    print(json.dumps(table.to_dict(), indent=1) if args.json else table.format())
    return 0


def _from_benchmark(args: argparse.Namespace) -> int:
    from gar_ros.evaluation.builders import bag_from_benchmark

    s = bag_from_benchmark(args.annotations, args.out_bag, limit=args.limit, **_bag_kw(args))
    print(s.text())
    return 0


def _indexed(values: list[str], n: int, what: str) -> list[list[str]]:
    out: list[list[str]] = [[] for _ in range(n)]
    for v in values:
        idx, sep, rest = v.partition(":")
        if not sep or not idx.isdigit() or int(idx) >= n:
            raise InputError(f"--{what} {v!r}: expected IMAGE_INDEX:VALUE with index < {n}")
        out[int(idx)].append(rest)
    return out


def _from_images(args: argparse.Namespace) -> int:
    from gar_ros.evaluation.builders import image_items, write_items

    n = len(args.images)
    masks = _indexed(args.mask, n, "mask")
    boxes_txt = _indexed(args.box, n, "box")
    boxes = []
    for per in boxes_txt:
        row = []
        for b in per:
            try:
                vals = tuple(float(x) for x in b.split(","))
            except ValueError as err:
                raise InputError(f"--box {b!r}: expected X1,Y1,X2,Y2") from err
            if len(vals) != 4:
                raise InputError(f"--box {b!r}: expected X1,Y1,X2,Y2")
            row.append(vals)
        boxes.append(row)
    items = image_items(args.images, masks, boxes, args.question)
    print(write_items(items, args.out, **_bag_kw(args)).text())
    return 0


def _from_synthetic(args: argparse.Namespace) -> int:
    from gar_ros.evaluation.synthetic_bag import bag_from_synthetic

    s = bag_from_synthetic(args.out_bag, scenes=args.scenes, first_seed=args.seed,
                           questions=not args.no_questions, **_bag_kw(args))
    print(s.text())
    return 0


def _bag_eval(args: argparse.Namespace) -> int:
    from gar_ros.evaluation.runner import evaluate_bag

    doc = evaluate_bag(
        args.bag, args.out, model=args.model, backend=args.backend, device=args.device,
        image_topic=args.image_topic, regions_topic=args.regions_topic, queries_topic=args.queries_topic,
        gt_topic=args.gt_topic, gt=args.gt, describe=args.describe, realtime=args.realtime,
        speed=args.speed, live=args.live, node=args.node, wait=args.wait,
        live_image_topic=args.live_image_topic, live_regions_topic=args.live_regions_topic,
        max_new_tokens=args.max_new_tokens, storage=args.storage, copy_inputs=not args.no_copy_inputs,
        progress=args.progress,
    )
    s = doc["summary"]
    print(f"{s['frames']} frames, {s['descriptions']} descriptions, {s['answers']} answers, "
          f"{s['errors']} message errors in {s['wall_time_s']:.1f} s")
    g = doc["grade"]
    if g.by_type.overall.total:
        print(g.by_type.format())
    print(f"report: {Path(args.out) / 'report.md'}")
    sys.stdout.flush()
    return 0
