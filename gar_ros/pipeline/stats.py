"""Counters and per-stage timings of the pipeline (thread-safe, bounded memory)."""
from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class StageSummary:
    """Seconds spent in one stage over the last ``count`` samples (bounded window)."""

    count: int
    mean: float
    p50: float
    p95: float
    max: float
    last: float


@dataclass
class Snapshot:
    counters: dict[str, int]
    stages: dict[str, StageSummary]
    problems: list[str] = field(default_factory=list)


class PipelineStats:
    """Named counters, per-stage timing windows and the most recent problem lines."""

    def __init__(self, window: int = 200, problems: int = 20) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._counters: Counter[str] = Counter()
        self._stages: dict[str, deque[float]] = {}
        self._problems: deque[str] = deque(maxlen=problems)
        #: called (outside the lock) with (kind, message) for every problem, e.g. a throttled logger.
        self.listener: Callable[[str, str], None] | None = None

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    def time(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._stages.setdefault(stage, deque(maxlen=self._window)).append(float(seconds))

    def problem(self, kind: str, message: str) -> None:
        """Count a bad input of ``kind`` and remember its message."""
        with self._lock:
            self._counters[kind] += 1
            self._problems.append(f"{kind}: {message}")
        listener = self.listener
        if listener is not None:
            listener(kind, message)

    def get(self, name: str) -> int:
        with self._lock:
            return self._counters[name]

    def snapshot(self) -> Snapshot:
        with self._lock:
            stages = {}
            for name, samples in self._stages.items():
                if not samples:
                    continue
                arr = np.fromiter(samples, dtype=float)
                stages[name] = StageSummary(
                    count=len(arr),
                    mean=float(arr.mean()),
                    p50=float(np.percentile(arr, 50)),
                    p95=float(np.percentile(arr, 95)),
                    max=float(arr.max()),
                    last=float(arr[-1]),
                )
            return Snapshot(dict(self._counters), stages, list(self._problems))
