#!/usr/bin/env python3
"""Benchmark of the inference backends (torch vs onnxruntime) per stage, and of region batching.

Models
- ``tiny``: the tiny random GAR of the tests (gar_ros.model.tiny, tile 56, 2+2 layers).
- ``embedded``: the embedded trained tiny model (gar_ros/data/tiny_gar) when present.
- ``gar1b``: a GAR-1B-shaped model with random weights built in memory (PE-L/14 448, 23 layers,
  width 1024; Llama 2048 x 16 layers, 32 heads / 8 KV heads, MLP 8192, vocabulary 128262), with
  ``--gar1b-tiles`` tiles (default 1, i.e. thumbnail + 1 tile) and ``--gar1b-new-tokens``.
- any checkpoint directory.

Per model and backend (one warm-up call first; times are medians over ``--repeat`` calls):
preprocess (tiling + prompt map), vision encode, replay (RoI replay + embedding assembly),
prefill, decode (tokens/s over all sequences of the batch), end to end (``describe`` of one
region on a new frame). Then, unless disabled: k regions (k = 1..``--k-max``) described with one
call per region on a fresh frame each time (as the official code does) vs one ``describe`` call
(shared tile preprocessing, one vision call for all prompt maps, batched generation), checking
the greedy tokens are identical; and a second question on the same frame vs the first one
(cached tiles and features). onnxruntime runs the ONNX export (made once into ``--work-dir``).

Prints a table and writes JSON (``--json``). Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gar_ros.types import Region  # noqa: E402

log = logging.getLogger("bench_backends")


# ------------------------------------------------------------------ timing wrappers

class Clock:
    """Accumulates seconds per stage; synchronises CUDA around each measured call."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def reset(self) -> None:
        self.totals.clear()
        self.counts.clear()

    @contextlib.contextmanager
    def stage(self, name: str, count: int = 1):
        if self.cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        try:
            yield
        finally:
            if self.cuda:
                torch.cuda.synchronize()
            self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - t
            self.counts[name] = self.counts.get(name, 0) + count


class TimedVision:
    def __init__(self, inner: Any, clock: Clock) -> None:
        self.inner, self.clock = inner, clock

    def encode(self, pixel_values: torch.Tensor, prompt_maps: torch.Tensor) -> torch.Tensor:
        with self.clock.stage("vision", int(pixel_values.shape[0])):
            return self.inner.encode(pixel_values, prompt_maps)


class TimedLanguage:
    def __init__(self, inner: Any, clock: Clock) -> None:
        self.inner, self.clock = inner, clock

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        with self.clock.stage("embed"):
            return self.inner.embed(input_ids)

    def prefill(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor):
        with self.clock.stage("prefill", int(inputs_embeds.shape[0] * inputs_embeds.shape[1])):
            return self.inner.prefill(inputs_embeds, attention_mask)

    def decode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: Any):
        with self.clock.stage("decode", int(input_ids.shape[0] * input_ids.shape[1])):
            return self.inner.decode(input_ids, attention_mask, cache)


@contextlib.contextmanager
def timed_replay(clock: Clock):
    """Times the model core's RoI replay + embedding assembly (module functions of api.py)."""
    from gar_ros.model import api

    originals = api.image_replays, api.fill_embeddings

    def replays(*a: Any, **k: Any) -> Any:
        with clock.stage("replay"):
            return originals[0](*a, **k)

    def fill(*a: Any, **k: Any) -> Any:
        with clock.stage("replay"):
            return originals[1](*a, **k)

    api.image_replays, api.fill_embeddings = replays, fill
    try:
        yield
    finally:
        api.image_replays, api.fill_embeddings = originals


# ------------------------------------------------------------------ models

def build_gar1b(tiles: int, device: str, dtype: torch.dtype, seed: int = 0) -> Any:
    """GAR-1B-shaped GarModel with random weights (std 0.02), built in memory."""
    from gar_ros.model.api import GarModel
    from gar_ros.model.engines import torch_engines
    from gar_ros.model.modeling import GarTorchModel
    from gar_ros.model.processor import GarProcessor
    from gar_ros.model.tiny import CROP_TOKENS, PLM_SPECIAL_IDS, build_tokenizer, build_vocab, init_weights, tiny_config

    vocab = build_vocab((), "plm")
    tokenizer = build_tokenizer(vocab)
    sp = {n: vocab[n] for n in PLM_SPECIAL_IDS}
    config = tiny_config(
        vocab_size=max(vocab.values()) + 1, crop_tokens_ids=[sp[n] for n in CROP_TOKENS],
        image_token_id=sp["<|image|>"], bos_id=sp["<|begin_of_text|>"], eos_id=sp["<|eot_id|>"],
        pad_id=sp["<|end_of_text|>"], tile_size=448, patch_size=14, pooling_ratio=2, max_num_tiles=tiles,
        vision_width=1024, vision_depth=23, vision_heads=16, hidden_size=2048, layers=16, heads=32, kv_heads=8,
        intermediate_size=8192,
    )
    config.mllm_config["text_config"]["max_position_embeddings"] = 131072
    config.mllm_config["text_config"]["rope_scaling"] = {
        "rope_type": "llama3", "factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192,
    }
    torch.manual_seed(seed)
    net = GarTorchModel(config)  # on CPU: buffers (rotary frequencies) must be real values
    init_weights(net, seed, std=0.02)
    net = net.to(device=device, dtype=dtype).eval()
    processor = GarProcessor(config, tokenizer, None)
    vision, language = torch_engines(net)
    return GarModel("gar1b-shaped-random", config, processor, net, vision, language,
                    eos_ids=frozenset({sp["<|eot_id|>"]}), pad_id=sp["<|end_of_text|>"])


def load_model(name: str, work: Path, device: str, dtype: torch.dtype, gar1b_tiles: int) -> Any:
    from gar_ros.model import GarModel

    if name == "gar1b":
        return build_gar1b(gar1b_tiles, device, dtype)
    if name == "tiny":
        from gar_ros.model.tiny import make_tiny

        path = work / "tiny_0"
        if not (path / "config.json").is_file():
            make_tiny(path, seed=0)
    elif name == "embedded":
        path = REPO / "gar_ros" / "data" / "tiny_gar"
    else:
        path = Path(name)
    return GarModel.from_pretrained(path, device=device, dtype=dtype)


# ------------------------------------------------------------------ scenes

def scene(model: Any, k: int = 5) -> tuple[np.ndarray, list[Region]]:
    """A deterministic 480x640 image and k rectangular regions (the GAR demo image when found)."""
    rng = np.random.RandomState(0)
    image = (rng.rand(480, 640, 3) * 255).astype(np.uint8)
    demo = Path(os.environ.get("GAR_ROS_DATA", REPO.parent / "shared" / "data")) / "gar_demo" / "demo_image_1.png"
    if demo.is_file():
        from PIL import Image

        image = np.asarray(Image.open(demo).convert("RGB"))
    h, w = image.shape[:2]
    regions = []
    for i in range(k):
        mask = np.zeros((h, w), dtype=bool)
        y0, x0 = int(h * (0.05 + 0.15 * i)), int(w * (0.1 + 0.12 * i))
        mask[y0 : y0 + h // 4, x0 : x0 + w // 4] = True
        regions.append(Region(f"r{i}", mask=mask))
    return image, regions


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


# ------------------------------------------------------------------ measurements

def stage_times(model: Any, clock: Clock, image: np.ndarray, region: Region, new_tokens: int, repeat: int) -> dict:
    """Per-stage times of describe(one region) on a new frame (warm-up first)."""
    runs: list[dict[str, Any]] = []
    tokens = None
    logits = None
    for i in range(repeat + 1):
        model.clear_cache()
        clock.reset()
        with clock.stage("preprocess"):
            rgb = model.processor.rgb(image)
            entry = model.encode_frame(rgb, frame_key="bench")
            mask = model.processor.masks([region], rgb.shape[1], rgb.shape[0])[0]
            model.processor.prompt_map_tiles(model.processor.region_prompt([mask], [1]).prompt_map, entry.tiles)
        pre = clock.totals["preprocess"]
        model.clear_cache()
        clock.reset()
        with timed_replay(clock), clock.stage("end_to_end"):
            out = model.describe(image, [region], max_new_tokens=new_tokens)
        if i == 0:
            tokens = out[0].token_ids
            logits = model.last_generation.first_logits
            continue  # warm-up
        t = dict(clock.totals)
        decode_tokens = clock.counts.get("decode", 0)
        runs.append({
            "preprocess_s": pre, "vision_s": t.get("vision", 0.0), "tiles": clock.counts.get("vision", 0),
            "replay_s": t.get("replay", 0.0), "prefill_s": t.get("prefill", 0.0),
            "prompt_tokens": clock.counts.get("prefill", 0), "decode_s": t.get("decode", 0.0),
            "decode_tokens": decode_tokens, "end_to_end_s": t["end_to_end"],
        })
    keys = runs[0].keys()
    res = {k: median([r[k] for r in runs]) for k in keys}
    res["decode_tok_per_s"] = res["decode_tokens"] / res["decode_s"] if res["decode_s"] else float("nan")
    res["tokens"] = tokens
    res["_first_logits"] = logits
    return res


def k_regions(model: Any, image: np.ndarray, regions: list[Region], k_max: int, new_tokens: int) -> list[dict]:
    """One call per region (fresh frame each) vs one batched describe, k = 1..k_max."""
    out = []
    model.describe(image, regions[:1], max_new_tokens=new_tokens)  # warm-up
    for k in range(1, k_max + 1):
        t = time.perf_counter()
        single = []
        for r in regions[:k]:
            model.clear_cache()
            single += [x.token_ids for x in model.describe(image, [r], max_new_tokens=new_tokens)]
        t_single = time.perf_counter() - t
        model.clear_cache()
        t = time.perf_counter()
        batched = [x.token_ids for x in model.describe(image, regions[:k], max_new_tokens=new_tokens)]
        t_batched = time.perf_counter() - t
        out.append({"k": k, "per_region_calls_s": t_single, "shared_batched_s": t_batched,
                    "speedup": t_single / t_batched, "same_tokens": single == batched})
    return out


def second_question(model: Any, image: np.ndarray, regions: list[Region], new_tokens: int) -> dict:
    q1 = "What is the relationship between <Prompt0> and <Prompt1>?"
    q2 = "Which of <Prompt0> and <Prompt1> is larger?"
    model.ask(image, regions[:2], q1, max_new_tokens=new_tokens, frame_key="warm")  # warm-up
    model.clear_cache()
    t = time.perf_counter()
    model.ask(image, regions[:2], q1, max_new_tokens=new_tokens, frame_key="f")
    first = time.perf_counter() - t
    t = time.perf_counter()
    model.ask(image, regions[:2], q2, max_new_tokens=new_tokens, frame_key="f")
    second = time.perf_counter() - t
    return {"first_s": first, "second_s": second, "ratio_second_to_first": second / first}


def rss_mib() -> float:
    try:
        return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return float("nan")


def run_model(name: str, args: argparse.Namespace, work: Path) -> dict:
    from gar_ros.runtime.factory import ensure_export
    from gar_ros.runtime.ort_engines import OrtLanguageEngine, OrtVisionEngine

    dtype = getattr(torch, args.dtype)
    cuda = args.device.startswith("cuda")
    is_1b = name == "gar1b"
    new_tokens = args.gar1b_new_tokens if is_1b else args.new_tokens
    k_max = args.gar1b_k_max if is_1b else args.k_max
    t = time.perf_counter()
    model = load_model(name, work, args.device, dtype, args.gar1b_tiles)
    result: dict[str, Any] = {"model": name, "load_s": time.perf_counter() - t,
                              "params": sum(p.numel() for p in model.torch_model.parameters()),
                              "new_tokens": new_tokens, "backends": {}}
    image, regions = scene(model)
    clock = Clock(cuda)
    torch_vision, torch_language = model.vision, model.language
    for backend in args.backends:
        entry: dict[str, Any] = {}
        if backend == "torch":
            model.vision, model.language = TimedVision(torch_vision, clock), TimedLanguage(torch_language, clock)
        elif backend == "onnxruntime":
            if model.torch_model is None:
                raise SystemExit("onnxruntime after torch weights were released")
            t = time.perf_counter()
            out = ensure_export(model, work / f"onnx_{name}")
            entry["export_s"] = time.perf_counter() - t
            entry["weights_mib"] = (out / "weights.bin").stat().st_size / 2**20
            if is_1b:  # free the torch weights before onnxruntime maps its own copy
                model.vision = model.language = torch_vision = torch_language = None
                model.torch_model = None
                gc.collect()
            t = time.perf_counter()
            ov = OrtVisionEngine(out, threads=args.threads)
            ol = OrtLanguageEngine(out, threads=args.threads)
            entry["session_s"] = time.perf_counter() - t
            model.vision, model.language = TimedVision(ov, clock), TimedLanguage(ol, clock)
        else:
            raise SystemExit(f"unknown backend {backend}")
        log.info("%s / %s: stages", name, backend)
        entry["stages"] = stage_times(model, clock, image, regions[0], new_tokens, args.repeat)
        if k_max:
            log.info("%s / %s: k regions", name, backend)
            entry["k_regions"] = k_regions(model, image, regions, k_max, new_tokens)
        if args.second_question and (not is_1b or args.gar1b_second_question):
            log.info("%s / %s: second question", name, backend)
            entry["second_question"] = second_question(model, image, regions, new_tokens)
        entry["rss_mib"] = rss_mib()
        result["backends"][backend] = entry
    stages = {b: e["stages"] for b, e in result["backends"].items()}
    if "torch" in stages and "onnxruntime" in stages:
        a, b = stages["torch"].pop("_first_logits"), stages["onnxruntime"].pop("_first_logits")
        result["onnxruntime_vs_torch"] = {
            "same_tokens": stages["torch"]["tokens"] == stages["onnxruntime"]["tokens"],
            "max_abs_first_logit_diff": float((a.float() - b.float()).abs().max()),
            "max_abs_first_logit": float(a.float().abs().max()),
        }
    for s in stages.values():
        s.pop("_first_logits", None)
    return result


def print_table(results: list[dict]) -> None:
    head = (f"{'model':10s} {'backend':11s} {'prep s':>7s} {'vision s':>9s} {'tiles':>5s} {'replay s':>9s} "
            f"{'prefill s':>9s} {'prompt':>6s} {'decode tok/s':>12s} {'e2e s':>8s}")
    print(head)
    print("-" * len(head))
    for r in results:
        for b, e in r["backends"].items():
            s = e["stages"]
            print(f"{r['model']:10s} {b:11s} {s['preprocess_s']:7.3f} {s['vision_s']:9.3f} {int(s['tiles']):5d} "
                  f"{s['replay_s']:9.4f} {s['prefill_s']:9.3f} {int(s['prompt_tokens']):6d} "
                  f"{s['decode_tok_per_s']:12.1f} {s['end_to_end_s']:8.3f}")
    for r in results:
        cmp = r.get("onnxruntime_vs_torch")
        if cmp:
            print(f"{r['model']}: onnxruntime vs torch: same tokens {cmp['same_tokens']}, max |first-step logit "
                  f"diff| {cmp['max_abs_first_logit_diff']:.2e} (max |logit| {cmp['max_abs_first_logit']:.1f})")
        for b, e in r["backends"].items():
            for row in e.get("k_regions", []):
                print(f"{r['model']} {b}: k={row['k']} one call per region {row['per_region_calls_s']:.3f} s, "
                      f"shared + batched {row['shared_batched_s']:.3f} s, x{row['speedup']:.2f}, "
                      f"same tokens {row['same_tokens']}")
            sq = e.get("second_question")
            if sq:
                print(f"{r['model']} {b}: second question on the same frame {sq['second_s']:.3f} s vs first "
                      f"{sq['first_s']:.3f} s (ratio {sq['ratio_second_to_first']:.2f})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="tiny,gar1b", help="comma list: tiny, embedded, gar1b, or checkpoint dirs")
    p.add_argument("--backends", default="torch,onnxruntime")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads")
    p.add_argument("--new-tokens", type=int, default=16)
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions after one warm-up (tiny models)")
    p.add_argument("--k-max", type=int, default=5)
    p.add_argument("--no-second-question", dest="second_question", action="store_false")
    p.add_argument("--gar1b-tiles", type=int, default=1, help="max_num_tiles of the GAR-1B-shaped model")
    p.add_argument("--gar1b-new-tokens", type=int, default=4)
    p.add_argument("--gar1b-repeat", type=int, default=1)
    p.add_argument("--gar1b-k-max", type=int, default=0, help="k-region comparison on GAR-1B (slow on CPU)")
    p.add_argument("--gar1b-second-question", action="store_true")
    p.add_argument("--work-dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "gar_bench_backends")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("onnx_ir").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("GAR_ROS_CACHE", str(args.work_dir / "cache"))
    args.work_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name == "embedded" and not (REPO / "gar_ros" / "data" / "tiny_gar" / "config.json").is_file():
            log.warning("embedded model not found; skipped")
            continue
        repeat = args.repeat
        if name == "gar1b":
            args.repeat = args.gar1b_repeat
        t = time.perf_counter()
        results.append(run_model(name, args, args.work_dir))
        results[-1]["wall_s"] = time.perf_counter() - t
        args.repeat = repeat
        gc.collect()
    print_table(results)
    meta = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "threads": args.threads, "device": args.device, "dtype": args.dtype}
    if args.device.startswith("cuda") and torch.cuda.is_available():
        meta["gpu"] = torch.cuda.get_device_name(0)
    try:
        import onnxruntime

        meta["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
