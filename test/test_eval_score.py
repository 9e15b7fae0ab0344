"""GAR-Bench-VQA scoring: the official GAR-1B/GAR-8B outputs reproduce the published tables."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gar_ros.cli import main
from gar_ros.errors import InputError
from gar_ros.evaluation.scoring import first_letter, is_correct, load_json_list, score_vqa

GAR_1B_TYPES = {
    "color": (34, 69, 49.3),
    "texture/pattern": (17, 29, 58.6),
    "mirror": (36, 61, 59.0),
    "ordering": (13, 64, 20.3),
    "material": (14, 36, 38.9),
    "shape": (32, 64, 50.0),
    "relation": (57, 101, 56.4),
}


@pytest.fixture(scope="module")
def official(shared_data: Path) -> Path:
    path = shared_data / "gar_bench_vqa_official"
    if not (path / "gar_1b_vqa.json").is_file():
        pytest.skip(f"official GAR-Bench-VQA outputs not found in {path}")
    return path


def test_gar_1b_reproduces_published_table(official: Path) -> None:
    table = score_vqa(load_json_list(official / "gar_1b_vqa.json", "predictions"))
    d = table.to_dict()
    assert d["overall"] == {"correct": 203, "total": 424, "accuracy": 47.9}
    got = {k: (v["correct"], v["total"], v["accuracy"]) for k, v in d["categories"].items()}
    assert got == GAR_1B_TYPES


def test_gar_8b_overall(official: Path) -> None:
    table = score_vqa(load_json_list(official / "gar_8b_vqa.json", "predictions"))
    assert (table.overall.correct, table.overall.total, round(table.overall.accuracy, 1)) == (245, 424, 57.8)
    assert table.categories["texture/pattern"].correct == 22
    assert table.categories["ordering"].correct == 28


def test_score_cli_against_separate_annotations(official: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # predictions stripped to model_output only, scored against the annotation file by position
    preds = [{"model_output": x["model_output"]} for x in load_json_list(official / "gar_1b_vqa.json", "p")]
    pfile = tmp_path / "preds.json"
    pfile.write_text(json.dumps(preds))
    assert main(["score", str(pfile), "--gt", str(official / "GAR-Bench-VQA.json")]) == 0
    out = capsys.readouterr().out
    assert "=> overall:" in out and "[203/424]=47.9" in out
    assert "[13/64]=20.3" in out  # ordering
    assert main(["score", str(official / "gar_8b_vqa.json"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["overall"] == {"correct": 245, "total": 424, "accuracy": 57.8}


def test_first_letter_rule() -> None:
    assert first_letter("  b. the cup") == "B"
    assert first_letter("") == ""
    assert is_correct("C", "C") and is_correct("c) red", "C")
    assert not is_correct("The answer is C", "C")  # the protocol looks at the first letter only
    assert not is_correct("", "A")


def test_matching_by_id_and_missing_predictions() -> None:
    gt = [{"index_in_full_benchmark": i, "answer": "A", "type": t} for i, t in enumerate("xxy")]
    preds = [{"index_in_full_benchmark": 2, "model_output": "A"}, {"index_in_full_benchmark": 0, "model_output": "B"}]
    table = score_vqa(preds, gt)
    assert (table.overall.correct, table.overall.total) == (1, 3)
    assert table.categories["y"].correct == 1 and table.categories["x"].correct == 0
    with pytest.raises(InputError):
        score_vqa([{"model_output": "A"}], [{"answer": "A"}, {"answer": "B"}])


def test_score_cli_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["score", str(bad)]) == 2
    assert "cannot read predictions" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "missing.json")]) == 2
