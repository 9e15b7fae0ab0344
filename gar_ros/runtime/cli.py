"""``gar-ros export-onnx`` and ``gar-ros build-engine``."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from gar_ros.errors import BackendError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    e = subparsers.add_parser(
        "export-onnx", help="export a GAR checkpoint to ONNX (vision, embed, prefill, decode graphs)",
        description="Export MODEL_DIR to OUT_DIR: vision.onnx, embed.onnx, prefill.onnx, decode.onnx, "
                    "one shared weights.bin and manifest.json; then check the graphs for TensorRT.",
    )
    e.add_argument("model_dir", type=Path, help="GAR checkpoint directory")
    e.add_argument("out_dir", type=Path, help="export directory")
    e.add_argument("--force", action="store_true", help="export even when OUT_DIR holds this model's export")
    e.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18; >= 17)")
    e.add_argument("--json", action="store_true", help="print the TensorRT check as JSON")
    e.set_defaults(func=_export_onnx)

    b = subparsers.add_parser(
        "build-engine", help="build TensorRT engines from an ONNX export (needs TensorRT and a GPU)",
        description="Build (or reuse from the cache in ENGINE_DIR) one TensorRT engine per graph of "
                    "ONNX_DIR. Engines are keyed by model hash, TensorRT version, GPU, precision and "
                    "profile shapes; a stale engine is rebuilt with a warning, --force-rebuild always "
                    "rebuilds. --check-only runs the static TensorRT checks without TensorRT.",
    )
    b.add_argument("onnx_dir", type=Path)
    b.add_argument("engine_dir", type=Path)
    b.add_argument("--precision", choices=("fp16", "bf16", "fp32"), default="fp16")
    b.add_argument("--force-rebuild", action="store_true")
    b.add_argument("--graphs", default=None, help="comma-separated subset of vision,embed,prefill,decode")
    b.add_argument("--max-tiles", type=int, default=17, help="tiles per frame incl. thumbnail")
    b.add_argument("--max-batch", type=int, default=8, help="sequences generated together")
    b.add_argument("--max-prompt", type=int, default=4096, help="prompt tokens")
    b.add_argument("--max-new-tokens", type=int, default=256)
    b.add_argument("--check-only", action="store_true", help="static checks only (no TensorRT needed)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_build_engine)


def _check(onnx_dir: Path, limits: object, graphs: list[str] | None, as_json: bool) -> bool:
    from gar_ros.runtime.onnx_io import Manifest
    from gar_ros.runtime.trt_compat import check_graph, check_profiles
    from gar_ros.runtime.trt_engines import default_profiles

    manifest = Manifest.load(onnx_dir)
    profiles = default_profiles(manifest, limits)
    reports = {}
    for graph in graphs or list(manifest.graphs):
        report = check_graph(onnx_dir / manifest.graphs[graph].file)
        report.problems += check_profiles(report, profiles[graph])
        reports[graph] = report
    if as_json:
        print(json.dumps({g: r.to_json() for g, r in reports.items()}, indent=2))
    else:
        for graph, r in reports.items():
            status = "ok" if r.ok else f"{len(r.problems)} problem(s)"
            print(f"{graph:8s} opset {r.opset}  {sum(r.ops.values()):5d} nodes  {len(r.ops):3d} op types  "
                  f"TensorRT check: {status}")
            for p in r.problems:
                print(f"  problem: {p}")
            for n in r.notes:
                print(f"  note: {n}")
    return all(r.ok for r in reports.values())


def _export_onnx(args: argparse.Namespace) -> int:
    import torch

    from gar_ros.model import GarModel
    from gar_ros.runtime.factory import _export_lock, ensure_export, export_model, model_fingerprint
    from gar_ros.runtime.onnx_io import MANIFEST_NAME, Manifest
    from gar_ros.runtime.trt_engines import ProfileLimits

    if args.opset is not None and args.opset < 17:
        raise BackendError(f"opset {args.opset} is below 17")
    model = GarModel.from_pretrained(args.model_dir, dtype=torch.float32)
    up_to_date = (
        not args.force and (args.out_dir / MANIFEST_NAME).is_file()
        and Manifest.load(args.out_dir).source.get("fingerprint") == model_fingerprint(model)
    )
    if up_to_date:
        print(f"{args.out_dir}: export of {model.name} is up to date (use --force to export again)")
        ensure_export(model, args.out_dir)
    else:
        with _export_lock(args.out_dir):
            manifest = export_model(model, args.out_dir, opset=args.opset)
        size = (args.out_dir / "weights.bin").stat().st_size
        print(f"exported {', '.join(manifest.graphs)} of {model.name} to {args.out_dir} "
              f"(weights {size / 2**20:.1f} MiB, model hash {manifest.model_hash[:16]})")
    ok = _check(args.out_dir, ProfileLimits(), None, args.json)
    return 0 if ok else 1


def _limits(args: argparse.Namespace) -> object:
    from gar_ros.runtime.trt_engines import ProfileLimits

    base = ProfileLimits()
    return ProfileLimits(
        max_tiles=args.max_tiles, opt_tiles=min(base.opt_tiles, args.max_tiles), max_batch=args.max_batch,
        opt_batch=min(base.opt_batch, args.max_batch), max_prompt=args.max_prompt,
        opt_prompt=min(base.opt_prompt, args.max_prompt), max_new_tokens=args.max_new_tokens,
    )


def _build_engine(args: argparse.Namespace) -> int:
    from gar_ros.runtime.trt_engines import engine_paths, trt_status

    graphs = [g.strip() for g in args.graphs.split(",")] if args.graphs else None
    limits = _limits(args)
    ok = _check(args.onnx_dir, limits, graphs, args.json)
    if args.check_only:
        return 0 if ok else 1
    usable, reason = trt_status()
    if not usable:
        raise BackendError(f"cannot build TensorRT engines: {reason} (--check-only runs the static checks)")
    plans = engine_paths(args.onnx_dir, args.engine_dir, precision=args.precision, limits=limits,
                         graphs=graphs, force_rebuild=args.force_rebuild)
    for graph, plan in plans.items():
        print(f"{graph:8s} {plan}")
    return 0
