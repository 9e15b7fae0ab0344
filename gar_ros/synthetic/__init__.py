"""Seeded synthetic scenes (coloured shapes on varied backgrounds), clips and GAR-style tasks."""
from gar_ros.synthetic.scenes import Scene, SceneObject, generate_clip, generate_scene
from gar_ros.synthetic.tasks import (
    TaskSample, is_correct, make_choice, make_describe, make_free, make_motion,
)

__all__ = [
    "Scene", "SceneObject", "TaskSample", "generate_clip", "generate_scene", "is_correct",
    "make_choice", "make_describe", "make_free", "make_motion",
]
