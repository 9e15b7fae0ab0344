"""Shared pytest setup: a private, localhost-only DDS domain per test session and the test-data dir."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Real DDS traffic stays on this machine and away from other runs: one domain id per session.
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def shared_data_dir() -> Path:
    """The GAR test data: $GAR_ROS_DATA, else ``<repo>/../shared/data``."""
    return Path(os.environ.get("GAR_ROS_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "README.md").is_file():
        pytest.skip(f"GAR test data not found at {path} (set GAR_ROS_DATA)")
    return path
