"""Committed reference MFCCs, checked with the runtime alone (no librosa needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audiomnist_edge.config import FeatureParams
from audiomnist_edge.features import clip_features, mfcc
from signals import golden_signals

GOLDEN = json.loads((Path(__file__).parent / "golden" / "mfcc.json").read_text())
PARAMS = FeatureParams.from_dict(GOLDEN["params"])


def make_signal(name: str) -> np.ndarray:
    return golden_signals()[name]


@pytest.mark.parametrize("name", sorted(GOLDEN["signals"]))
def test_mfcc_matches_committed_librosa_values(name: str) -> None:
    expected = np.array(GOLDEN["signals"][name]["mfcc_librosa"], dtype=np.float32)
    np.testing.assert_allclose(mfcc(make_signal(name), PARAMS), expected, atol=1e-3, rtol=0)


@pytest.mark.parametrize("name", sorted(GOLDEN["signals"]))
def test_clip_features_match_committed_values(name: str) -> None:
    expected = np.array(GOLDEN["signals"][name]["clip_features"], dtype=np.float32)
    ours = clip_features(make_signal(name), PARAMS)
    assert ours.shape == PARAMS.input_shape
    np.testing.assert_allclose(ours, expected, atol=1e-3, rtol=0)
