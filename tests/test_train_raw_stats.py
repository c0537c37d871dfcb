"""Constants of the raw MFCC columns (train/raw_stats.py), measured on real clips."""

from __future__ import annotations

import numpy as np

from audiomnist_edge.config import FeatureParams
from audiomnist_edge.features import clip_features
from audiomnist_edge.train.cache import load_samples
from audiomnist_edge.train.fit import Recipe
from audiomnist_edge.train.raw_stats import cmn_scale, main, raw_mfcc_stats
from audiomnist_edge.train.variant import apply_settings


def test_constants_standardise_the_raw_columns_of_the_clips_they_come_from(fsdd_test_clips) -> None:
    """Measured on 40 clips, the raw columns of those clips' speech frames have mean 0 and sd 1."""
    clips = fsdd_test_clips[::8][:40]
    mean, std = raw_mfcc_stats(clips, FeatureParams())
    assert len(mean) == len(std) == 20 and -300 < mean[0] < -150 and all(s > 0 for s in std)
    params = FeatureParams(raw_mean=mean, raw_std=std)
    frames = []
    for path in clips:
        x = clip_features(load_samples(path, 8000), params)
        frames.append(x[np.any(x != 0, axis=1), 20:])
    pooled = np.concatenate(frames)
    np.testing.assert_allclose(pooled.mean(axis=0), 0, atol=0.05)
    np.testing.assert_allclose(pooled.std(axis=0), 1, atol=0.05)


def test_command_prints_the_settings_of_evaluate(fsdd, capsys) -> None:
    main(["--data", str(fsdd), "--max-clips", "20"])
    words = capsys.readouterr().out.split()
    assert words[0] == words[2] == "--set" and len(words) == 4
    _, params = apply_settings(Recipe(), FeatureParams(), [words[1], words[3]])
    assert params.input_shape == (101, 40) and -300 < params.raw_mean[0] < -150


def test_cmn_scale_gives_the_clips_it_comes_from_unit_spread(fsdd_test_clips, capsys) -> None:
    """Measured on 40 clips, their normalised columns pool to sd 1 per coefficient; the command prints
    the setting evaluate takes."""
    clips = fsdd_test_clips[::8][:40]
    params = FeatureParams(cmn_scale=cmn_scale(clips, FeatureParams()))
    pooled = []
    for path in clips:
        x = clip_features(load_samples(path, 8000), params)
        pooled.append(x[np.any(x != 0, axis=1)])
    np.testing.assert_allclose(np.concatenate(pooled).std(axis=0), 1, atol=0.02)
    main(["--data", str(fsdd_test_clips[0].parent), "--max-clips", "20", "--cmn"])
    words = capsys.readouterr().out.split()
    _, params = apply_settings(Recipe(), FeatureParams(), words[1:])
    assert words[0] == "--set" and len(words) == 2 and len(params.cmn_scale) == 20 and params.cmn_scale[0] > 10
