"""`audiomnist-edge eda`: every plot and the page linking them, for one corpus and for several."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from signals import tone

pytest.importorskip("matplotlib")

from audiomnist_edge.train.datasets import load_many
from audiomnist_edge.train.eda import PLOTS, corpus_stats, corpus_table, edge_levels, speaker_table
from audiomnist_edge.wav import write_wav


def _copy(source: Path, pattern: str, target: Path) -> Path:
    recordings = target / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    for clip in sorted((source / "recordings").glob(pattern)):
        shutil.copy(clip, recordings)
    return target


def _eda(out: Path, *corpora: Path) -> subprocess.CompletedProcess:
    args = [a for c in corpora for a in ("--data", str(c))]
    return subprocess.run([sys.executable, "-m", "audiomnist_edge", "eda", *args, "--out", str(out)],
                          check=False, capture_output=True, text=True, timeout=300)


def _check_plots(out: Path) -> str:
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "eda.md").read_text()
    assert set(re.findall(r"\]\(([^)]+\.png)\)", page)) == set(PLOTS)
    return page


def test_eda_writes_plots_and_a_page(fsdd, tmp_path) -> None:
    corpus = _copy(fsdd, "*_theo_1*.wav", tmp_path / "fsdd")
    _copy(fsdd, "*_lucas_2.wav", corpus)
    out = tmp_path / "eda"
    result = _eda(out, corpus)
    assert result.returncode == 0, result.stderr
    page = _check_plots(out)
    assert "theo" in page and "lucas" in page


def test_eda_compares_corpora(fsdd, hd_en, tmp_path) -> None:
    small_fsdd = _copy(fsdd, "*_theo_1.wav", tmp_path / "fsdd")
    _copy(fsdd, "*_jackson_1.wav", small_fsdd)
    _copy(fsdd, "*_lucas_1.wav", small_fsdd)
    small_hd = _copy(hd_en, "*_hd02_1.wav", tmp_path / "hd-en")
    out = tmp_path / "eda"
    result = _eda(out, small_fsdd, small_hd)
    assert result.returncode == 0, result.stderr
    page = _check_plots(out)
    assert re.search(r"\| fsdd \| 30 \| 3 \| 8000 \|", page)
    assert re.search(r"\| hd-en \| 10 \| 1 \| 16000 \|", page)
    # FSDD's theo is recorded far quieter than everyone else
    assert re.search(r"theo \(fsdd\) is \d+ dB quieter than the median speaker", page)


def test_levels_and_durations_are_measured(tmp_path) -> None:
    rate = 8000
    for corpus, speaker, amplitude, seconds in (("a", "loud", 0.5, 0.5), ("b", "soft", 0.05, 0.8)):
        folder = tmp_path / corpus / "recordings"
        folder.mkdir(parents=True)
        for digit in range(3):
            write_wav(folder / f"{digit}_{speaker}_0.wav", tone(300 + 100 * digit, seconds, rate, amplitude), rate)
    (tmp_path / "b" / "recordings" / "4_soft_1.wav").write_bytes(b"RIFF....broken")
    ds = load_many([tmp_path / "a", tmp_path / "b"])
    stats, problems = corpus_stats(ds.clips)
    assert [name for name, _ in problems] == ["4_soft_1.wav"]
    rows = {r["speaker"]: r for r in speaker_table(stats)}
    assert rows["loud"]["peak_dbfs"] == pytest.approx(-6.02, abs=0.05)
    assert rows["loud"]["speech_dbfs"] - rows["soft"]["speech_dbfs"] == pytest.approx(20, abs=0.05)
    assert rows["loud"]["speech_dbfs"] == pytest.approx(-9.03, abs=0.1)  # sine: peak - 3 dB
    table = {r["corpus"]: r for r in corpus_table(stats, 0.6)}
    assert table["a"]["seconds_median"] == pytest.approx(0.5)
    assert table["b"]["longer_than_window"] == 3 and table["a"]["longer_than_window"] == 0
    assert table["b"]["clips"] == 3 and np.isclose(table["b"]["peak_dbfs"], -26.02, atol=0.05)


def test_clips_trimmed_into_the_word_are_counted(tmp_path) -> None:
    """A take that starts (or ends) at full level was trimmed into its word; one with quiet edges was not."""
    rate = 8000
    word = tone(400, 0.3, rate)
    fade = np.linspace(0, 1, int(0.05 * rate), dtype=np.float32)
    quiet = np.zeros(int(0.1 * rate), np.float32)
    takes = {"cut": [word, word, np.concatenate([quiet, word])],          # 2 of 3 start inside, 3 of 3 end
             "whole": [np.concatenate([quiet, fade * word[:len(fade)], word, quiet])] * 2}
    folder = tmp_path / "c" / "recordings"
    folder.mkdir(parents=True)
    for speaker, clips in takes.items():
        for take, samples in enumerate(clips):
            write_wav(folder / f"1_{speaker}_{take}.wav", samples, rate)
    stats, _ = corpus_stats(load_many([tmp_path / "c"]).clips)
    rows = {r["speaker"]: r for r in speaker_table(stats)}
    assert rows["cut"]["cut_start"] == pytest.approx(2 / 3) and rows["cut"]["cut_end"] == 1.0
    assert rows["whole"]["cut_start"] == rows["whole"]["cut_end"] == 0.0
    [corpus] = corpus_table(stats, 1.0)
    assert corpus["cut_start"] == pytest.approx(2 / 5) and corpus["cut_end"] == pytest.approx(3 / 5)
    start, end = edge_levels(np.concatenate([quiet + 1e-3, word]), rate)
    assert start == pytest.approx(-20 * np.log10(0.5 / np.sqrt(2) / 1e-3), abs=0.2) and end == pytest.approx(0, abs=0.2)
    assert edge_levels(np.zeros(rate, np.float32), rate) == (0.0, 0.0)
