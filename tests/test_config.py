"""FeatureParams: validation, JSON round trip, a hash that tracks every field."""

from __future__ import annotations

import dataclasses

import pytest

from audiomnist_edge.config import ConfigError, FeatureParams


def test_json_round_trip_and_stable_hash() -> None:
    params = FeatureParams(n_mfcc=20, lifter=22.0, top_db=None)
    again = FeatureParams.from_json(params.to_json())
    assert again == params and again.stable_hash() == params.stable_hash()
    assert FeatureParams().stable_hash() == FeatureParams().stable_hash()


# A shipped configuration spelled out (the default of early 2026-11, before the top_db clamp), its
# canonical JSON and hash. Every shipped model carries its hash: if a change of JSON or hashing
# moves it, each model in the field is refused by the new runtime. Change these only with a plan.
PINNED_JSON = ('{"center":true,"clip_seconds":1.0,"cmvn":true,"db_amin":1e-08,"db_ref":1.0,'
               '"dct_norm":"ortho","dct_type":2,"fmax":4000.0,"fmin":20.0,"hop_length":80,"lifter":0.0,'
               '"n_fft":256,"n_mels":40,"n_mfcc":20,"pad_mode":"constant","power":2.0,"sample_rate":8000,'
               '"top_db":null,"trim_db":30.0,"win_length":200}')
PINNED_HASH = "461edf6aa8b0ef5b"


def test_hash_is_pinned_to_a_committed_value() -> None:
    params = FeatureParams.from_json(PINNED_JSON)
    assert params.to_json() == PINNED_JSON
    assert params.stable_hash() == PINNED_HASH
    # today's defaults: the packaged model's features_hash (fields added later, such as raw_mean, left unset)
    assert FeatureParams().stable_hash() == "cd5900a2ea0f7523"


# A valid alternative for every field that has one (pad_mode and dct_type have a single option).
ALTERNATIVES = {
    "sample_rate": 16000, "clip_seconds": 1.5, "n_fft": 512, "win_length": 256, "hop_length": 128,
    "center": False, "power": 1.0, "n_mels": 64, "fmin": 0.0, "fmax": 3800.0, "db_ref": 2.0,
    "db_amin": 1e-10, "top_db": 80.0, "n_mfcc": 24, "dct_norm": None, "lifter": 22.0,
    "trim_db": None, "cmvn": False, "pcen_seconds": 0.4,
}


def test_alternatives_cover_every_tunable_field() -> None:
    fields = {f.name for f in dataclasses.fields(FeatureParams)}
    assert fields - set(ALTERNATIVES) == {"pad_mode", "dct_type", "raw_mean", "raw_std", "cmn_scale"}


@pytest.mark.parametrize("field,value", sorted(ALTERNATIVES.items()))
def test_every_field_changes_the_hash(field: str, value) -> None:
    base = FeatureParams()
    assert getattr(base, field) != value
    assert dataclasses.replace(base, **{field: value}).stable_hash() != base.stable_hash()


RAW = {"raw_mean": [-240.0] + [0.0] * 19, "raw_std": [70.0] + [5.0] * 19}


def test_raw_columns_are_a_field_pair_that_changes_shape_and_hash() -> None:
    """raw_mean and raw_std: absent from the JSON while None, tuples after a JSON round trip."""
    base = FeatureParams()
    assert "raw_mean" not in base.to_json()
    dual = FeatureParams(**RAW)
    assert dual.input_shape == (101, 40) and dual.stable_hash() != base.stable_hash()
    again = FeatureParams.from_json(dual.to_json())
    assert again == dual and isinstance(again.raw_std, tuple) and hash(again) == hash(dual)
    assert dataclasses.replace(dual, raw_std=(71.0,) + dual.raw_std[1:]).stable_hash() != dual.stable_hash()


@pytest.mark.parametrize("value", [0.0, -0.4, 11.0])
def test_pcen_time_constant_must_be_positive_and_at_most_10_s(value: float) -> None:
    assert "pcen_seconds" not in FeatureParams().to_json()
    with pytest.raises(ConfigError, match="pcen_seconds"):
        FeatureParams(pcen_seconds=value)


@pytest.mark.parametrize("changes,problem", [
    ({"raw_mean": RAW["raw_mean"]}, "go together"),
    ({**RAW, "n_mfcc": 13}, "n_mfcc"),
    ({**RAW, "raw_std": [0.0] * 20}, "positive"),
    ({**RAW, "raw_mean": ["a"] * 20}, "finite numbers"),
    ({**RAW, "raw_mean": 3.0}, "finite numbers"),
])
def test_bad_raw_columns_are_refused(changes: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        FeatureParams(**changes)


@pytest.mark.parametrize("changes,problem", [
    ({"cmn_scale": [1.0] * 19}, "n_mfcc"),
    ({"cmn_scale": [1.0] * 19 + [0.0]}, "positive"),
    ({"cmn_scale": [1.0] * 20, "cmvn": False}, "needs cmvn"),
])
def test_bad_cmn_scale_is_refused(changes: dict, problem: str) -> None:
    assert "cmn_scale" not in FeatureParams().to_json()
    with pytest.raises(ConfigError, match=problem):
        FeatureParams(**changes)


def test_derived_shapes() -> None:
    params = FeatureParams(sample_rate=8000, clip_seconds=1.0, hop_length=80, n_mfcc=13)
    assert params.clip_samples == 8000 and params.input_shape == (101, 13)


@pytest.mark.parametrize("changes,problem", [
    ({"win_length": 1024}, "win_length"),
    ({"fmax": 9000.0}, "fmax"),
    ({"pad_mode": "reflect"}, "pad_mode"),
    ({"dct_type": 3}, "dct_type"),
    ({"n_mfcc": 80}, "n_mfcc"),
    ({"sample_rate": 10}, "sample_rate"),
])
def test_invalid_configurations_are_refused(changes: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        FeatureParams(**changes)


def test_unknown_fields_and_bad_json_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown feature parameters: warp"):
        FeatureParams.from_dict({"warp": 1.1})
    with pytest.raises(ConfigError, match="not JSON"):
        FeatureParams.from_json("{")


def test_librosa_accepts_the_keyword_arguments() -> None:
    librosa = pytest.importorskip("librosa")
    import numpy as np
    params = FeatureParams()
    y = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=y, **params.librosa_melspectrogram_kwargs())
    db = librosa.power_to_db(mel, **params.librosa_power_to_db_kwargs())
    assert librosa.feature.mfcc(S=db, **params.librosa_mfcc_kwargs()).shape == params.input_shape[::-1]
