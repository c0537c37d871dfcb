"""Several corpora as one training set: mixed rates, corpus-balanced speaker folds, no leaks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audiomnist_edge.config import FeatureParams
from audiomnist_edge.train import datasets
from audiomnist_edge.train.cache import extract
from audiomnist_edge.train.fit import babble_clip_paths

EXE = Path(sys.executable).parent / "audiomnist-edge"


@pytest.fixture(scope="module")
def both(fsdd, hd_en) -> datasets.Dataset:
    return datasets.load_many([fsdd, hd_en])


def test_mixed_rate_corpora_load_as_one(both):
    assert len(both.clips) == 5980 and both.corpora == ["fsdd", "hd-en"]
    assert len(both.speakers) == 16 and len(both.speakers_by_corpus()["hd-en"]) == 10
    picked = [next(c for c in both.clips if c.corpus == name) for name in ("fsdd", "hd-en")]
    x, ok, problems = extract(picked, FeatureParams(), progress=False, workers=1, cache_dir=None)
    assert ok.all() and not problems and x.shape == (2, *FeatureParams().input_shape)
    assert np.isfinite(x).all() and np.abs(x).sum(axis=(1, 2)).min() > 0


def test_speaker_groups_cover_both_corpora_once(both):
    groups = datasets.speaker_groups(both)
    assert len(groups) == 4 and sorted(len(g) for g in groups) == [4, 4, 4, 4]
    flat = [s for g in groups for s in g]
    assert sorted(flat) == both.speakers
    by_corpus = both.speakers_by_corpus()
    for group in groups:
        assert {c for c, names in by_corpus.items() if set(group) & set(names)} == {"fsdd", "hd-en"}
    assert datasets.speaker_groups(both, seed=0) == groups
    assert datasets.speaker_groups(both, seed=1) != groups


@pytest.mark.parametrize("fold", range(4))
def test_no_speaker_on_both_sides(both, fold):
    split = datasets.make_split(both, "speaker", fold)
    speakers = np.array([c.speaker for c in both.clips])
    train, test = set(speakers[split.train]), set(speakers[split.test])
    assert train and test and not train & test
    assert len(split.train) + len(split.test) == len(both.clips)
    assert sorted(test) == sorted(split.test_speakers)


def test_official_split_tests_fsdd_takes_only(both):
    split = datasets.make_split(both, "official")
    test = [both.clips[i] for i in split.test]
    assert len(test) == 300 and all(c.corpus == "fsdd" and c.take < 5 for c in test)
    assert sum(both.clips[i].corpus == "hd-en" for i in split.train) == 2980


def test_official_split_takes_its_test_takes_from_the_first_corpus(fsdd, hd_en):
    ds = datasets.load_many([hd_en, fsdd])
    test = [ds.clips[i] for i in datasets.make_split(ds, "official").test]
    assert len(test) == 500 and all(c.corpus == "hd-en" and c.take < 5 for c in test)


@pytest.mark.parametrize("source", ["synthetic", "training", "both"])
def test_babble_voices_never_include_a_test_speaker(both, fsdd, tmp_path, source):
    rec = tmp_path / "recordings"
    rec.mkdir()
    for digit in range(10):
        shutil.copy(fsdd / "recordings" / f"{digit}_theo_0.wav", rec / f"{digit}_synthvoice_0.wav")
    synth = datasets.load_many([tmp_path])
    split = datasets.make_split(both, "speaker", 0)
    paths = babble_clip_paths(both, split.train, synth, source)
    real = {both.clips[i].path for i in split.train}
    synthetic = {c.path for c in synth.clips}
    assert len(set(paths)) == len(paths)
    assert set(paths) == {"synthetic": synthetic, "training": real, "both": real | synthetic}[source]
    speakers = {Path(p).stem.split("_")[1] for p in paths}
    assert not speakers & set(split.test_speakers)
    assert babble_clip_paths(both, split.train, None, "synthetic") == [both.clips[i].path for i in split.train]


def test_a_speaker_in_two_corpora_is_refused(tmp_path, fsdd):
    for name in ("a", "b"):
        rec = tmp_path / name / "recordings"
        rec.mkdir(parents=True)
        shutil.copy(fsdd / "recordings" / "3_theo_0.wav", rec)
    with pytest.raises(datasets.DatasetError, match="theo"):
        datasets.load_many([tmp_path / "a", tmp_path / "b"])


@pytest.fixture(scope="module")
def tiny_pair(fsdd, hd_en, tmp_path_factory) -> list[Path]:
    """Two small corpora named like the real ones: 4 FSDD and 4 HD-EN speakers, 10 takes each."""
    root = tmp_path_factory.mktemp("corpora")
    picks = {"fsdd": (fsdd, ["george", "jackson", "lucas", "theo"]),
             "hd-en": (hd_en, ["hd00", "hd01", "hd02", "hd03"])}
    for name, (src, speakers) in picks.items():
        rec = root / name / "recordings"
        rec.mkdir(parents=True)
        for speaker in speakers:
            for digit in range(10):
                for take in range(10):
                    shutil.copy(src / "recordings" / f"{digit}_{speaker}_{take}.wav", rec)
    return [root / "fsdd", root / "hd-en"]


def test_train_on_two_corpora_end_to_end(tiny_pair, tmp_path):
    pytest.importorskip("tensorflow")
    out = tmp_path / "run"
    args = [str(EXE), "train", "--data", str(tiny_pair[0]), "--data", str(tiny_pair[1]),
            "--split", "speaker", "--fold", "1", "--epochs", "20", "--augment", "0",
            "--batch-size", "32", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "epoch 20/20" in done.stderr and "min left" in done.stderr
    assert "oneDNN" not in done.stderr and "absl" not in done.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["data"] == [str(p.resolve()) for p in tiny_pair]
    seen = info["data_summary"]["speakers"]
    assert not set(seen["train"]) & set(seen["test"]) and len(seen["test"]) == 2
    assert {s[:2] == "hd" for s in seen["test"]} == {True, False}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_test"] == 200 and metrics["accuracy"] > 0.4, metrics["accuracy"]  # chance 0.1
