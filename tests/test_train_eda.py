"""`audiomnist-edge eda`: every plot and the page linking them, from a small FSDD subset."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

PLOTS = ("waveforms.png", "mfcc.png", "balance.png", "durations.png")


def test_eda_writes_plots_and_a_page(fsdd, tmp_path) -> None:
    corpus = tmp_path / "fsdd" / "recordings"
    corpus.mkdir(parents=True)
    for clip in sorted((fsdd / "recordings").glob("*_theo_1*.wav")) + sorted(
            (fsdd / "recordings").glob("*_lucas_2.wav")):
        shutil.copy(clip, corpus)
    out = tmp_path / "eda"
    result = subprocess.run([sys.executable, "-m", "audiomnist_edge", "eda", "--data",
                             str(corpus.parent), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "eda.md").read_text()
    assert set(re.findall(r"\]\(([^)]+\.png)\)", page)) == set(PLOTS)
    assert "theo" in page and "lucas" in page
