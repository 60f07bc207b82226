"""`nmbrs-sync leave calc`: the pure calculation from a JSON file, printed as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.entrypoints.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "leave-calc-example.json"


def test_leave_calc_prints_the_result_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leave", "calc", "--input", str(EXAMPLE)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["employee_id"] == 4711
    assert result["years"][0]["entitlement"]["statutory"] == "80.48"  # 4 x 24 x 306 / 365
    assert result["explanation"]


def test_leave_calc_rejects_an_invalid_file_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"as_of": "2026-01-01", "employments": [{"start": "2026-05-01", "end": "2026-01-01"}]}))
    assert main(["leave", "calc", "--input", str(bad)]) == 2
    assert "employments.0" in capsys.readouterr().err


def test_leave_calc_reports_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leave", "calc", "--input", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
