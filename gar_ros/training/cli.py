"""``gar-ros train-tiny OUT_DIR`` and ``gar-ros eval-tiny [MODEL_DIR]``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from gar_ros.errors import CheckpointError, InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train-tiny", help="train the tiny GAR on synthetic scenes (CPU)")
    p.add_argument("out_dir", help="checkpoint directory to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the recipe's)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the recipe's, 2)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="stop and save after this many seconds of training")
    p.add_argument("--recipe", default=None, help="JSON file or string of TinyRecipe overrides")
    p.add_argument("--eval-scenes", type=int, default=0,
                   help="evaluate on this many held-out scenes after training")
    p.set_defaults(func=_train)

    e = subparsers.add_parser("eval-tiny", help="per-task accuracy of a tiny GAR on held-out scenes")
    e.add_argument("model_dir", nargs="?", default=None, help="default: the embedded tiny model")
    e.add_argument("--scenes", type=int, default=500)
    e.add_argument("--seed-base", type=int, default=None, help="first held-out scene seed")
    e.add_argument("--no-ablation", action="store_true")
    e.add_argument("--clips", type=int, default=None, help="motion clips (default: scenes / 2; 0 = none)")
    e.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    e.set_defaults(func=_eval)


def _recipe_overrides(text: str | None) -> dict:
    if not text:
        return {}
    try:
        is_file = not text.lstrip().startswith("{") and Path(text).is_file()
    except OSError:  # not a usable path (a long JSON text, for one)
        is_file = False
    try:
        raw = Path(text).read_text() if is_file else text
        data = json.loads(raw)
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"--recipe is neither a JSON file nor JSON text: {err}") from err
    if not isinstance(data, dict):
        raise InputError("--recipe must be a JSON object")
    return data


def _train(args: argparse.Namespace) -> int:
    from gar_ros.training.recipe import TinyRecipe
    from gar_ros.training.train import train_tiny

    base = TinyRecipe().to_dict()
    base.update(_recipe_overrides(args.recipe))
    base["seed"] = args.seed
    if args.steps is not None:
        base["steps"] = args.steps
    if args.threads is not None:
        base["threads"] = args.threads
    if args.time_limit is not None:
        base["time_limit_s"] = args.time_limit
    recipe = TinyRecipe.from_dict(base)
    record = train_tiny(args.out_dir, recipe, progress=print)
    print(f"trained {record['steps_done']} steps in {record['wall_s']:.0f}s wall "
          f"({record['process_cpu_s']:.0f}s CPU), final loss {record['final_loss']:.4f}; "
          f"wrote {args.out_dir}")
    if args.eval_scenes:
        return _eval(argparse.Namespace(model_dir=args.out_dir, scenes=args.eval_scenes,
                                        seed_base=None, no_ablation=False, clips=None, json=None))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from gar_ros.training import default_model_path
    from gar_ros.training.evaluate import evaluate_dir, format_report
    from gar_ros.training.recipe import EVAL_SEED_BASE

    model_dir = Path(args.model_dir) if args.model_dir else default_model_path()
    if not model_dir.is_dir():
        raise CheckpointError(f"model directory not found: {model_dir}")
    kwargs = {"ablation": not args.no_ablation}
    if args.seed_base is not None:
        kwargs["seed_base"] = args.seed_base
    else:
        kwargs["seed_base"] = EVAL_SEED_BASE
    kwargs["motion_clips"] = args.clips if args.clips is not None else args.scenes // 2
    report = evaluate_dir(str(model_dir), args.scenes, **kwargs)
    print(format_report(report, model_dir.name))
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return 0
