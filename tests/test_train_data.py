"""Training data: layout detection, problem summary, splits (no TensorFlow needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from audiomnist_edge.resample import resample
from audiomnist_edge.train import datasets
from audiomnist_edge.train.cache import extract
from audiomnist_edge.config import FeatureParams
from audiomnist_edge.wav import read_wav, write_wav


@pytest.fixture
def audiomnist(tmp_path: Path, fsdd: Path) -> Path:
    """A tiny AudioMNIST tree: FSDD clips resampled to 48 kHz into data/NN/."""
    speakers = {"jackson": "01", "nicolas": "02", "theo": "03"}
    for name, nn in speakers.items():
        folder = tmp_path / "am" / "data" / nn
        folder.mkdir(parents=True)
        for digit in (0, 1, 2):
            for take in (0, 1):
                x, sr = read_wav(fsdd / "recordings" / f"{digit}_{name}_{take}.wav")
                write_wav(folder / f"{digit}_{nn}_{take}.wav", resample(x, sr, 48000), 48000)
    (tmp_path / "am" / "data" / "audioMNIST_meta.txt").write_text('{"01": {"gender": "male"}}')
    return tmp_path / "am"


def test_detects_fsdd(fsdd):
    assert datasets.detect_layout(fsdd) == ("fsdd", fsdd)
    assert datasets.detect_layout(fsdd / "recordings") == ("fsdd", fsdd)
    ds = datasets.load(fsdd)
    assert len(ds.clips) == 3000 and len(ds.speakers) == 6 and not ds.problems
    clip = next(c for c in ds.clips if c.name == "7_theo_12.wav")
    assert (clip.digit, clip.speaker, clip.take) == (7, "theo", 12)


def test_detects_audiomnist(audiomnist):
    assert datasets.detect_layout(audiomnist)[0] == "audiomnist"
    assert datasets.detect_layout(audiomnist / "data")[0] == "audiomnist"
    ds = datasets.load(audiomnist)
    assert ds.layout == "audiomnist" and ds.speakers == ["01", "02", "03"]
    assert len(ds.clips) == 18 and ds.meta == {"01": {"gender": "male"}}
    x, ok, problems = extract(ds.clips, FeatureParams(), progress=False, workers=1,
                              cache_dir=audiomnist / "cache")
    assert ok.all() and not problems and x.shape == (18, *FeatureParams().input_shape)
    assert np.abs(x).sum(axis=(1, 2)).min() > 0


def test_not_a_corpus(tmp_path):
    with pytest.raises(datasets.DatasetError, match="no recognisable corpus"):
        datasets.detect_layout(tmp_path)


def test_problems_are_summarised(tmp_path, fsdd):
    rec = tmp_path / "c" / "recordings"
    rec.mkdir(parents=True)
    for name in ("0_jackson_0.wav", "1_theo_3.wav", "2_nicolas_9.wav"):
        shutil.copy(fsdd / "recordings" / name, rec / name)
    (rec / "12_theo_0.wav").write_bytes((fsdd / "recordings" / "1_theo_0.wav").read_bytes())
    (rec / "hello.wav").write_bytes(b"whatever")
    (rec / "3_theo_1.wav").write_bytes(b"RIFF not really a wav")
    ds = datasets.load(tmp_path / "c")
    names = {p[0] for p in ds.problems}
    assert names == {"12_theo_0.wav", "hello.wav"}
    x, ok, problems = extract(ds.clips, FeatureParams(), progress=False, workers=1,
                              cache_dir=tmp_path / "cache")
    assert [p[0] for p in problems] == ["3_theo_1.wav"]
    assert ok.sum() == 3
    text = datasets.problem_summary(ds.problems + problems)
    assert text.startswith("skipped 3 file(s)") and "3_theo_1.wav" in text and "hello.wav" in text


def test_mislabelled_audiomnist_speaker(audiomnist):
    src = audiomnist / "data" / "01" / "0_01_0.wav"
    shutil.copy(src, audiomnist / "data" / "02" / "0_01_7.wav")
    ds = datasets.load(audiomnist)
    assert [p[0] for p in ds.problems] == ["0_01_7.wav"]


def test_official_split(fsdd):
    ds = datasets.load(fsdd)
    split = datasets.make_split(ds, "official")
    takes = np.array([c.take for c in ds.clips])
    assert len(split.test) == 300 and (takes[split.test] < 5).all() and (takes[split.train] >= 5).all()
    assert len(np.intersect1d(split.train, split.test)) == 0


def test_random_split_is_stratified_and_seeded(fsdd):
    ds = datasets.load(fsdd)
    a, b, c = (datasets.make_split(ds, "random", seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.test, b.test) and not np.array_equal(a.test, c.test)
    assert len(a.test) == 750 and len(a.train) == 2250
    assert (np.bincount(ds.digits[a.test], minlength=10) == 75).all()


def test_speaker_folds_are_speaker_independent(fsdd):
    ds = datasets.load(fsdd)
    assert datasets.n_speaker_folds(ds) == 6
    seen = []
    speakers = np.array([c.speaker for c in ds.clips])
    for k in range(6):
        split = datasets.make_split(ds, "speaker", k)
        assert set(speakers[split.train]).isdisjoint(speakers[split.test])
        assert len(set(speakers[split.test])) == 1
        seen += sorted(set(speakers[split.test]))
    assert sorted(seen) == ds.speakers


def test_audiomnist_protocol_36_12_12():
    clips = [datasets.Clip(Path(f"{d}_{s:02d}_0.wav"), d, f"{s:02d}", 0)
             for s in range(1, 61) for d in range(10)]
    ds = datasets.Dataset(Path("."), "audiomnist", clips)
    tests = []
    for k in range(5):
        split = datasets.speaker_split(ds, k, seed=3)
        def sp(idx):
            return {clips[i].speaker for i in idx}
        assert (len(sp(split.train)), len(sp(split.val)), len(sp(split.test))) == (36, 12, 12)
        assert sp(split.train).isdisjoint(sp(split.test)) and sp(split.val).isdisjoint(sp(split.test))
        assert sp(split.train).isdisjoint(sp(split.val))
        tests.append(sp(split.test))
        assert split.test.tolist() == datasets.speaker_split(ds, k, seed=3).test.tolist()
    assert set().union(*tests) == {f"{s:02d}" for s in range(1, 61)}
