"""Helpers for the pipeline and node tests: synthetic frames/regions, a scheduling test double, the
tiny random checkpoint and a private ROS domain.

``RecordingModel`` is a stand-in used only where a test checks the pipeline's scheduling (which
regions, in which order, how long a call blocks); its texts are labelled as such and never stand
for model output. Tests of real descriptions and answers use the tiny GAR checkpoint.
"""
from __future__ import annotations

import os
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gar_ros.types import Answer, AnswerStatus, Region, RegionText

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("GAR_ROS_DATA", REPO_ROOT.parent / "shared" / "data"))


def make_image(width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 RGB with a few coloured blocks."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 200, np.uint8)
    for _ in range(3):
        x, y = rng.integers(0, width - 8), rng.integers(0, height - 8)
        image[y : y + 8, x : x + 8] = rng.integers(0, 255, 3)
    return image


def box_region(rid: str, box: tuple[float, float, float, float], label: str = "") -> Region:
    return Region(id=rid, box=box, label=label)


@dataclass
class _Config:
    prompt_numbers: int = 5


@dataclass
class RecordingModel:
    """Scheduling test double with the GarModel call signatures; records calls, can block."""

    delay: float = 0.0
    config: _Config = field(default_factory=_Config)
    name: str = "recording-test-double"
    calls: list[tuple[str, list[str], str]] = field(default_factory=list)
    gate: threading.Event | None = None
    #: longest a call waits on ``gate`` (s): the bound that keeps a forgotten gate from hanging a test
    gate_timeout: float = 10.0
    started: threading.Event = field(default_factory=threading.Event)

    def _wait(self) -> None:
        self.started.set()
        if self.gate is not None:
            self.gate.wait(self.gate_timeout)
        if self.delay:
            time.sleep(self.delay)

    def describe(self, image, regions, *, max_new_tokens=64, frame_key=None):
        self.calls.append(("describe", [r.id for r in regions], str(frame_key)))
        self._wait()
        return [RegionText(r.id, f"[test double] region {r.id}") for r in regions]

    def ask(self, image, regions, question, *, max_new_tokens=64, frame_key=None, on_text=None):
        self.calls.append(("ask", [r.id for r in regions], question))
        self._wait()
        text = ""
        for word in ["[test", "double]", "answer"]:
            text = (text + " " + word).strip()
            if on_text is not None and on_text(text) is False:
                break
            time.sleep(self.delay / 3 if self.delay else 0)
        return Answer(AnswerStatus.OK, text=text, region_ids=[r.id for r in regions])


def ros_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a node subprocess: same private DDS domain as this test process."""
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOCALHOST_ONLY"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if extra:
        env.update(extra)
    return env


def start_node_process(name: str, params: dict[str, object]) -> subprocess.Popen:
    """``python -m gar_ros.ros.node --ros-args -r __node:=NAME -p k:=v ...`` in this test's DDS domain;
    stdout and stderr merged into ``proc.stdout`` (text)."""
    cmd = [sys.executable, "-m", "gar_ros.ros.node", "--ros-args", "-r", f"__node:={name}"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    return subprocess.Popen(cmd, cwd="/", env=ros_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def read_until(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    """The process's output lines until one holds ``needle``, it ends, or ``timeout`` s pass."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    out = ""
    end = time.monotonic() + timeout
    while time.monotonic() < end and needle not in out:
        if sel.select(timeout=0.2):
            line = proc.stdout.readline()
            if not line:
                break
            out += line
    return out


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


_TINY: dict[str, Path] = {}


def tiny_checkpoint(tmp_root: Path) -> Path:
    """A tiny random GAR checkpoint made by ``gar-ros make-tiny`` (in-process), once per session."""
    if "path" in _TINY:
        return _TINY["path"]
    out = tmp_root / "tiny_random_gar"
    if not (out / "config.json").exists():
        from gar_ros.cli import main as gar_ros_main

        if gar_ros_main(["make-tiny", str(out)]) != 0:  # `gar-ros make-tiny DIR`, in-process
            raise RuntimeError("gar-ros make-tiny failed")
    _TINY["path"] = out
    return out


def model_available() -> bool:
    try:
        from gar_ros.model import GarModel  # noqa: F401
    except ImportError:
        return False
    return True


_MODEL: dict[str, object] = {}


def tiny_model(tmp_root: Path):
    """The tiny random checkpoint loaded once per session (torch, CPU, one thread)."""
    if "m" not in _MODEL:
        import torch

        torch.set_num_threads(1)
        from gar_ros.model import GarModel

        _MODEL["m"] = GarModel.from_pretrained(str(tiny_checkpoint(tmp_root)), device="cpu")
    return _MODEL["m"]
