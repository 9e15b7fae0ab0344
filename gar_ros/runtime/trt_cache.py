"""TensorRT engine cache: keys, lookup, invalidation, and the build decision (no TensorRT needed).

An engine is valid only for the exact graph, TensorRT version, GPU, precision and optimisation
profiles it was built for. :class:`EngineKey` holds those five things; its digest names the plan
file ``<graph>-<digest16>.plan`` and a JSON sidecar records the key and the plan's SHA-256.

Rules (:func:`resolve_engine`):
- a plan whose sidecar matches the key and whose bytes match the recorded hash is used;
- otherwise the engine is built, and always with a WARNING saying why (no engine yet, or which
  key fields differ from the cached engines: new TensorRT, other GPU, re-exported graph...);
  with ``allow_build=False`` the same reason is raised as a :class:`BackendError` instead;
- ``force_rebuild=True`` rebuilds even on a hit (also logged);
- a corrupt plan (hash mismatch, unreadable sidecar) is reported and rebuilt, never loaded.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gar_ros.errors import BackendError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16")
#: Shapes of one optimisation profile: input name -> (min, opt, max) shapes.
Profile = dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]


def normalise_profiles(profiles: list[Profile]) -> tuple[tuple[tuple[str, tuple[tuple[int, ...], ...]], ...], ...]:
    """Hashable, order-independent (per profile) form of a list of profiles."""
    return tuple(
        tuple(sorted((name, tuple(tuple(int(d) for d in s) for s in shapes)) for name, shapes in p.items()))
        for p in profiles
    )


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine plan depends on."""

    graph: str
    model_hash: str
    trt_version: str
    gpu_name: str
    precision: str
    profiles: tuple

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BackendError(f"precision {self.precision!r} is not one of {PRECISIONS}")

    @classmethod
    def create(cls, graph: str, model_hash: str, trt_version: str, gpu_name: str, precision: str,
               profiles: list[Profile]) -> EngineKey:
        return cls(graph, model_hash, trt_version, gpu_name, precision, normalise_profiles(profiles))

    def fields(self) -> dict[str, Any]:
        d = asdict(self)
        d["profiles"] = json.loads(json.dumps(self.profiles))
        return d

    @property
    def digest(self) -> str:
        blob = json.dumps(self.fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def stem(self) -> str:
        return f"{self.graph}-{self.digest[:16]}"


@dataclass
class StaleEntry:
    """A cached engine of the same graph built for another key."""

    plan: Path
    differs: list[str]


class EngineCache:
    """A directory of ``<stem>.plan`` + ``<stem>.json`` pairs."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def plan_path(self, key: EngineKey) -> Path:
        return self.root / f"{key.stem}.plan"

    def _sidecar(self, plan: Path) -> Path:
        return plan.with_suffix(".json")

    def _read_sidecar(self, plan: Path) -> dict[str, Any] | None:
        try:
            return json.loads(self._sidecar(plan).read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def lookup(self, key: EngineKey) -> tuple[Path | None, str]:
        """(plan path, "") on a valid hit, else (None, reason)."""
        plan = self.plan_path(key)
        if not plan.is_file():
            return None, "no engine"
        meta = self._read_sidecar(plan)
        if meta is None or meta.get("key") != key.fields():
            return None, f"sidecar of {plan.name} is missing or does not match its key"
        digest = hashlib.sha256(plan.read_bytes()).hexdigest()
        if digest != meta.get("plan_sha256"):
            return None, f"{plan.name} is corrupt (hash mismatch)"
        return plan, ""

    def stale(self, key: EngineKey) -> list[StaleEntry]:
        """Engines of the same graph cached for another key, with the names of differing fields."""
        out = []
        if not self.root.is_dir():
            return out
        want = key.fields()
        for side in sorted(self.root.glob(f"{key.graph}-*.json")):
            try:
                meta = json.loads(side.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            have = meta.get("key", {})
            differs = [f for f in want if have.get(f) != want[f]]
            if differs:
                out.append(StaleEntry(side.with_suffix(".plan"), differs))
        return out

    def store(self, key: EngineKey, plan: bytes, extra: dict[str, Any] | None = None) -> Path:
        """Write the plan and its sidecar atomically; returns the plan path."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.plan_path(key)
        tmp = path.with_suffix(f".plan.tmp{os.getpid()}")
        tmp.write_bytes(plan)
        os.replace(tmp, path)
        meta = {"key": key.fields(), "plan_sha256": hashlib.sha256(plan).hexdigest(), "created": time.time(),
                "bytes": len(plan), **(extra or {})}
        side = self._sidecar(path)
        tmp_side = side.with_suffix(f".json.tmp{os.getpid()}")
        tmp_side.write_text(json.dumps(meta, indent=2, sort_keys=True))
        os.replace(tmp_side, side)
        return path

    def remove(self, plan: Path) -> None:
        plan.unlink(missing_ok=True)
        self._sidecar(plan).unlink(missing_ok=True)

    def prune_stale(self, key: EngineKey) -> list[Path]:
        """Delete the stale engines of ``key``'s graph; returns what was removed."""
        removed = []
        for entry in self.stale(key):
            self.remove(entry.plan)
            removed.append(entry.plan)
        return removed


def resolve_engine(cache: EngineCache, key: EngineKey, build: Callable[[], bytes], *,
                   force_rebuild: bool = False, allow_build: bool = True) -> Path:
    """The plan for ``key``: cached when valid, else built (never silently; see module doc)."""
    plan, reason = cache.lookup(key)
    if plan is not None and not force_rebuild:
        log.debug("TensorRT engine cache hit: %s", plan)
        return plan
    if force_rebuild:
        reason = "rebuild forced"
    else:
        stale = cache.stale(key)
        if stale and reason == "no engine":
            diffs = sorted({f for s in stale for f in s.differs})
            reason = f"cached engine(s) for graph {key.graph!r} were built for another {', '.join(diffs)}"
    if not allow_build:
        raise BackendError(
            f"no usable TensorRT engine for graph {key.graph!r} ({reason}); run `gar-ros build-engine` "
            f"or allow building"
        )
    log.warning("building TensorRT engine for graph %r (%s, precision %s, GPU %s, TensorRT %s); "
                "this can take minutes", key.graph, reason, key.precision, key.gpu_name, key.trt_version)
    start = time.monotonic()
    data = build()
    path = cache.store(key, data, extra={"build_seconds": round(time.monotonic() - start, 2)})
    log.warning("TensorRT engine for graph %r built in %.0f s: %s", key.graph, time.monotonic() - start, path)
    return path
