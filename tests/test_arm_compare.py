"""deploy/arm/compare_decisions.py: the ARM check's rule for 'the same digits as x86_64'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "arm" / "compare_decisions.py"


def record(name: str, digit, probability: float, unknown: float) -> dict:
    label = digit if digit is not None else 0
    return {"file": f"/mnt/fsdd/{name}", "digit": digit, "probability": probability,
            "top": [["unknown", unknown], [label, probability]]}


def compare(tmp_path: Path, reference: list[dict], other: list[dict]) -> subprocess.CompletedProcess:
    paths = []
    for tag, records in (("x86", reference), ("arm", other)):
        path = tmp_path / f"{tag}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        paths.append(path)
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, paths)], capture_output=True, text=True)


def test_same_digits_pass(tmp_path) -> None:
    rows = [record("0_a_0.wav", 0, 0.9, 0.05), record("1_a_0.wav", None, 0.1, 0.85)]
    result = compare(tmp_path, rows, rows)
    assert result.returncode == 0 and result.stdout.strip() == "2/2 digits identical to x86_64"


def test_a_flip_at_the_confidence_gate_is_named_not_failed(tmp_path) -> None:
    result = compare(tmp_path, [record("0_a_0.wav", None, 0.2861, 0.6865)], [record("0_a_0.wav", 0, 0.3008, 0.67)])
    assert result.returncode == 0
    assert result.stdout.strip() == "0/1 digits identical to x86_64; 1 at a gate (0_a_0.wav: ? here, 0 there)"


def test_a_flip_far_from_every_gate_fails(tmp_path) -> None:
    result = compare(tmp_path, [record("0_a_0.wav", 0, 0.9, 0.05)], [record("0_a_0.wav", 6, 0.9, 0.05)])
    assert result.returncode == 1 and "differs: 0_a_0.wav: 0 here, 6 there" in result.stdout


def test_a_missing_file_fails(tmp_path) -> None:
    result = compare(tmp_path, [record("0_a_0.wav", 0, 0.9, 0.05)], [])
    assert result.returncode == 1
