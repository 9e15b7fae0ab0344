"""``gar-ros export-onnx`` / ``gar-ros build-engine`` (in-process, through gar_ros.cli.main)."""
from __future__ import annotations

import json
import shutil
import sys

from _runtime_helpers import tiny_checkpoint, tiny_export
from gar_ros.cli import main


def test_build_engine_check_only(capsys):
    assert main(["build-engine", str(tiny_export()), "/nonexistent/engines", "--check-only", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"vision", "embed", "prefill", "decode"}
    assert all(r["ok"] for r in report.values())
    assert report["prefill"]["ops"]["MatMul"] > 0


def test_build_engine_without_tensorrt_is_one_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["build-engine", str(tiny_export()), str(tmp_path / "engines")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TensorRT is not installed" in err[0]
    assert not (tmp_path / "engines").exists()


def test_export_onnx_up_to_date_and_errors(tmp_path, capsys):
    out = tmp_path / "export"
    shutil.copytree(tiny_export(), out)
    assert main(["export-onnx", str(tiny_checkpoint()), str(out)]) == 0
    text = capsys.readouterr().out
    assert "up to date" in text and "TensorRT check: ok" in text
    assert main(["export-onnx", str(tmp_path / "missing"), str(out)]) == 2
    assert main(["export-onnx", str(tiny_checkpoint()), str(out), "--opset", "13"]) == 2
    assert main(["build-engine", str(tmp_path), str(out)]) == 2  # not an export: no manifest
    assert "manifest" in capsys.readouterr().err
