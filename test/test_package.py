"""The package skeleton: ROS manifest, CLI entry point, pip-installable pure-Python library."""
from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_package_xml_is_format3_ament_cmake_interface_package() -> None:
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "gar_ros"
    assert root.find("export/build_type").text == "ament_cmake"
    groups = [e.text for e in root.findall("member_of_group")]
    assert "rosidl_interface_packages" in groups


def test_every_interface_file_is_generated_by_cmake() -> None:
    cmake = (REPO / "CMakeLists.txt").read_text()
    files = sorted(p.relative_to(REPO).as_posix() for d in ("msg", "srv", "action") for p in (REPO / d).iterdir())
    assert files, "no interface files"
    for f in files:
        assert f'"{f}"' in cmake, f"{f} is not listed in rosidl_generate_interfaces"


def test_generated_interfaces_import_with_documented_fields() -> None:
    from gar_ros.action import Ask as AskAction
    from gar_ros.msg import Answer, Query, Region, RegionArray, RegionDescription, RegionDescriptionArray
    from gar_ros.srv import Ask

    region = Region()
    for field in ("id", "label", "score", "box", "mask"):
        assert hasattr(region, field)
    assert hasattr(RegionArray(), "header") and hasattr(RegionArray(), "regions")
    assert hasattr(RegionDescription(), "frame_stamps")
    assert hasattr(RegionDescriptionArray(), "model")
    query = Query()
    for field in ("query_id", "question", "region_ids", "stamp"):
        assert hasattr(query, field)
    assert (Answer.OK, Answer.NOT_FOUND, Answer.AMBIGUOUS, Answer.INVALID, Answer.BUSY, Answer.ERROR) == (0, 1, 2, 3, 4, 5)
    assert hasattr(Ask.Request(), "stamp") and hasattr(Ask.Response(), "status")
    assert hasattr(AskAction.Goal(), "max_new_tokens") and hasattr(AskAction.Feedback(), "text")


def test_cli_help_lists_subcommands() -> None:
    out = subprocess.run([sys.executable, "-m", "gar_ros.cli", "--help"], capture_output=True, text=True, check=True)
    assert "usage: gar-ros" in out.stdout


def test_cli_reports_unknown_command_as_error() -> None:
    out = subprocess.run([sys.executable, "-m", "gar_ros.cli", "no-such-command"], capture_output=True, text=True)
    assert out.returncode != 0


def test_pip_installs_pure_python_library_with_entry_point(tmp_path: Path) -> None:
    # Build from a copy so that setuptools' in-tree build files stay out of the checkout.
    src = tmp_path / "src"
    shutil.copytree(REPO / "gar_ros", src / "gar_ros", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "setup.py", src / "setup.py")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(src)],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    )
    assert (target / "gar_ros" / "cli.py").is_file()
    assert (target / "bin" / "gar-ros").is_file()
