"""PROVENANCE.md of a trained tiny checkpoint: how it was made and what it measured."""
from __future__ import annotations

import json
from pathlib import Path

from gar_ros.training.evaluate import EvalReport


def write_provenance(model_dir: str | Path, command: str, report: EvalReport | None,
                     notes: str = "") -> Path:
    """Write ``model_dir/PROVENANCE.md`` from its ``training.json`` and an evaluation report."""
    root = Path(model_dir)
    record = json.loads((root / "training.json").read_text())
    recipe = record["recipe"]
    size = sum(p.stat().st_size for p in root.iterdir() if p.is_file() and p.name != "PROVENANCE.md")
    lines = [
        "# Embedded tiny GAR: provenance",
        "",
        "A GAR-architecture model (PE-style timm ViT + mask patch embedding + projector + Llama",
        "decoder, word-level tokenizer with the GAR special tokens) trained from scratch on the",
        "synthetic scenes of `gar_ros.synthetic`. Not a real GAR checkpoint: it knows coloured",
        "shapes only. Loaded with `GarModel.from_pretrained(gar_ros.training.default_model_path())`.",
        "",
        "## How it was made",
        "",
        f"- command: `{command}`",
        f"- seed: {recipe['seed']}; steps: {record['steps_done']} x batch {recipe['batch_size']}"
        + (f" (stopped by the {recipe['time_limit_s']:.0f} s time limit; the recipe has {recipe['steps']})"
           if record.get("stopped_early") else "") + f"; threads: {recipe['threads']}",
        f"- architecture: tile {recipe['tile_size']} px, patch {recipe['patch_size']}, pooling "
        f"{recipe['pooling_ratio']}, max_num_tiles {recipe['max_num_tiles']} (thumbnail + 1 tile), "
        f"vision width {recipe['vision_width']} x {recipe['vision_depth']} blocks, decoder "
        f"{recipe['hidden_size']} x {recipe['layers']} layers x {recipe['heads']} heads, replay {recipe['replay_output_size']}x"
        f"{recipe['replay_output_size']}, replay_geometry `{recipe['replay_geometry']}`",
        f"- parameters: {record['parameters']:,}; files: {size / 1e6:.1f} MB",
        f"- mixture: {json.dumps(recipe['mixture'])}; scenes {recipe['scene_size'][0]}x"
        f"{recipe['scene_size'][1]}; motion clips of {recipe['clip_frames'][0]}-"
        f"{recipe['clip_frames'][1]} frames, {recipe['context_frames'][0]}-"
        f"{recipe['context_frames'][1]} given to the model, objects moving "
        f"{recipe.get('motion_speed', [3.0, 5.0])[0]:g}-{recipe.get('motion_speed', [3.0, 5.0])[1]:g} px per frame",
        *([f"- late mixture (from step {int(recipe.get('late_from', 0) * recipe['steps'])}): "
           f"{json.dumps(recipe['late_mixture'])}"] if recipe.get("late_mixture") else []),
        f"- training time: {record['wall_s']:.0f} s wall, {record['process_cpu_s']:.0f} s process CPU "
        f"(load average at the end {record['machine'].get('load_avg_at_end')}, "
        f"{record['machine'].get('cpus')} CPUs shared with other work)",
        f"- final training loss (answer tokens, per-sample mean weighted by task "
        f"{json.dumps(recipe.get('task_weights', {}))}): {record['final_loss']:.4f}",
        f"- training-only probes (not saved): replay {recipe.get('aux_weight')}, reference "
        f"{recipe.get('reference_weight')}, option {recipe.get('option_weight')}, slot "
        f"{recipe.get('slot_weight')}, copy {recipe.get('copy_weight', 0.0)} (target "
        f"{recipe.get('copy_target', 'line')!r}, {recipe.get('copy_heads')} heads, word options "
        f"{recipe.get('word_target', 'line')!r}, motion clips "
        f"{'on' if recipe.get('copy_motion') else 'off'}), kind "
        f"{recipe.get('kind_weight', 0.0)} (see `gar_ros/training/objective.py`)",
        f"- versions: {json.dumps(record['versions'])}",
        "",
    ]
    if report is not None:
        lines += [f"## Measured accuracy ({report.scenes} held-out scenes, `gar-ros eval-tiny`)", ""]
        lines += [f"- {line}" for line in report.lines()]
        if report.per_kind:
            kinds = ", ".join(f"{k.split(':')[1]} {v.accuracy:.0f}%" for k, v in sorted(report.per_kind.items()))
            lines.append(f"- per kind: {kinds}")
        lines.append("")
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    path = root / "PROVENANCE.md"
    path.write_text("\n".join(lines))
    return path
