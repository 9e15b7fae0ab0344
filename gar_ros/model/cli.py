"""``gar-ros make-tiny`` and ``gar-ros describe`` subcommands."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gar_ros.errors import GarError, ImageError, InputError, RegionError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("make-tiny", help="write a tiny random GAR checkpoint (official layout)")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tile-size", type=int, default=56)
    p.add_argument("--patch-size", type=int, default=14)
    p.add_argument("--max-num-tiles", type=int, default=4)
    p.add_argument("--layout", choices=("plm", "compact"), default="plm",
                   help="special-token ids: PerceptionLM's (default) or right after the words")
    p.add_argument("--replay-geometry", choices=("reference", "corrected"), default="reference")
    p.set_defaults(func=_make_tiny)

    d = subparsers.add_parser("describe", help="describe regions of an image, or ask a question about them")
    d.add_argument("--model", required=True, type=Path, help="GAR checkpoint directory")
    d.add_argument("--image", required=True, type=Path)
    d.add_argument("--mask", action="append", default=[], type=Path, help="mask image (non-zero = inside)")
    d.add_argument("--box", action="append", default=[], help="x1,y1,x2,y2 in pixels (x2/y2 exclusive)")
    d.add_argument("--question", help="ask this question over all regions (<Prompt0>.. in order)")
    d.add_argument("--max-new-tokens", type=int, default=64)
    d.add_argument("--max-num-tiles", type=int, default=None)
    d.add_argument("--replay-geometry", choices=("reference", "corrected"), default=None)
    d.add_argument("--device", default="cpu")
    d.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None)
    d.add_argument("--backend", choices=("torch", "onnxruntime", "tensorrt"), default="torch",
                   help="tensorrt falls back to onnxruntime (then torch) with a warning when missing")
    d.add_argument("--onnx-dir", type=Path, help="existing ONNX export (default: exported into a cache keyed by the model)")
    d.add_argument("--engine-dir", type=Path, help="TensorRT engine cache (default: <onnx-dir>/engines)")
    d.add_argument("--precision", choices=("fp16", "bf16", "fp32"), default="fp16", help="TensorRT precision")
    d.add_argument("--force-rebuild", action="store_true", help="rebuild TensorRT engines even when cached")
    d.add_argument("--json", action="store_true", help="print one JSON object per region or question")
    d.add_argument("--dump", type=Path, help="write model inputs and first-step logits (NumPy) here")
    d.set_defaults(func=_describe)


def _make_tiny(args: argparse.Namespace) -> int:
    from gar_ros.model.tiny import make_tiny

    out = make_tiny(
        args.out_dir,
        seed=args.seed,
        layout=args.layout,
        tile_size=args.tile_size,
        patch_size=args.patch_size,
        max_num_tiles=args.max_num_tiles,
        replay_geometry=args.replay_geometry,
    )
    print(out)
    return 0


def load_image(path: Path) -> Any:
    """RGB uint8 (H, W, 3) from a file (alpha dropped without compositing, like PIL's convert)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ImageError(f"cannot read image {path}: {err}") from err


def load_mask(path: Path) -> Any:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L")) > 0
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise RegionError(f"cannot read mask {path}: {err}") from err


def parse_box(text: str) -> tuple[float, float, float, float]:
    parts = text.replace(" ", "").split(",")
    if len(parts) != 4:
        raise RegionError(f"--box needs x1,y1,x2,y2, got {text!r}")
    try:
        x1, y1, x2, y2 = (float(p) for p in parts)
    except ValueError as err:
        raise RegionError(f"--box needs numbers, got {text!r}") from err
    return (x1, y1, x2, y2)


def _describe(args: argparse.Namespace) -> int:
    import torch

    from gar_ros.model import GarModel
    from gar_ros.types import Region

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    image = load_image(args.image)
    regions = [Region(f"mask{i}", mask=load_mask(p)) for i, p in enumerate(args.mask)]
    regions += [Region(f"box{i}", box=parse_box(b)) for i, b in enumerate(args.box)]
    if not regions:
        raise InputError("give at least one --mask or --box")
    dtype = getattr(torch, args.dtype) if args.dtype else None
    overrides = {}
    if args.max_num_tiles is not None:
        overrides["max_num_tiles"] = args.max_num_tiles
    if args.replay_geometry is not None:
        overrides["replay_geometry"] = args.replay_geometry
    engine_options: dict[str, Any] = {}
    if args.backend != "torch":
        engine_options = {"onnx_dir": args.onnx_dir, "engine_dir": args.engine_dir,
                          "precision": args.precision, "force_rebuild": args.force_rebuild}
    model = GarModel.from_pretrained(args.model, device=args.device, dtype=dtype, backend=args.backend,
                                     engine_options=engine_options, **overrides)
    if args.backend != model.backend:
        print(f"backend: {model.backend} (requested {args.backend})", file=sys.stderr)
    results: list[dict[str, Any]] = []
    if args.question:
        answer = model.ask(image, regions, args.question, max_new_tokens=args.max_new_tokens)
        results.append({"question": args.question, "regions": answer.region_ids, "text": answer.text,
                        "token_ids": answer.token_ids})
        if args.dump:
            _dump(args.dump / "question", model, model.prepare_ask(image, regions, args.question))
    else:
        for text in model.describe(image, regions, max_new_tokens=args.max_new_tokens):
            results.append({"region": text.region_id, "text": text.text, "token_ids": text.token_ids})
        if args.dump:
            for i, region in enumerate(regions):
                _dump(args.dump / region.id, model, model.prepare_describe(image, region))
    for r in results:
        if args.json:
            print(json.dumps(r))
        else:
            label = r.get("region") or "answer"
            print(f"{label}: {r['text']}")
    return 0


def _dump(folder: Path, model: Any, prepared: Any) -> None:
    """Model inputs and first-step logits of one prompt as .npy files plus boxes.json."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "input_ids.npy", prepared.input_ids.numpy())
    np.save(folder / "pixel_values.npy", prepared.pixel_values.float().numpy())
    np.save(folder / "prompt_ids.npy", prepared.prompt_ids.numpy())
    np.save(folder / "aspect_ratio.npy", np.array(prepared.grid, dtype=np.int64))
    result = model.generate_prepared([prepared], max_new_tokens=1)
    if result.first_logits is not None:
        np.save(folder / "first_logits.npy", result.first_logits[0].numpy())
    boxes = {str(k): list(v) for k, v in prepared.boxes.items()}
    (folder / "boxes.json").write_text(json.dumps({"boxes": boxes, "geometry": model.config.replay_geometry}) + "\n")


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="gar-ros")
    register(parser.add_subparsers(dest="command"))
    ns = parser.parse_args()
    try:
        sys.exit(ns.func(ns))
    except GarError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
