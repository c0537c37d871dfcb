"""Bad model files are refused with one clear line, never a traceback."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import tiny_models  # noqa: E402
from audiomnist_edge.artifact import ModelError, metadata_span, read_artifact, seal  # noqa: E402
from audiomnist_edge.config import FeatureParams  # noqa: E402
from audiomnist_edge.convert.metadata import embed_metadata  # noqa: E402
from audiomnist_edge.model import Model  # noqa: E402


@pytest.fixture(scope="module")
def good(fsdd) -> bytes:
    return tiny_models.int8_model_bytes(str(fsdd))


def metadata_of(content: bytes) -> dict:
    start, length = metadata_span(content)
    return json.loads(content[start:start + length])


def edit_metadata(content: bytes, old: bytes, new: bytes) -> bytes:
    """The model with one same-length edit inside its metadata, checksum re-sealed."""
    assert len(old) == len(new)
    start, length = metadata_span(content)
    at = content.index(old, start, start + length)
    return seal(content[:at] + new + content[at + len(old):])


def refused(tmp_path, content: bytes) -> str:
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    with pytest.raises(ModelError) as caught:
        Model.load(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_good_model_loads(tmp_path, good) -> None:
    path = tmp_path / "good.tflite"
    path.write_bytes(good)
    assert Model.load(path).labels == [str(d) for d in range(10)]


@pytest.mark.parametrize("content, reason", [
    (b"", "not a TFLite model"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a TFLite model"),
    (b"\x00" * 64, "not a TFLite model"),
])
def test_not_a_tflite_model(tmp_path, content, reason) -> None:
    assert reason in refused(tmp_path, content)


def test_every_truncation_is_a_model_error(tmp_path, good) -> None:
    lengths = sorted(set(range(0, 64)) | set(range(64, len(good), 211)) | {len(good) - 1})
    for length in lengths:
        refused(tmp_path, good[:length])


def test_random_corruption_is_a_model_error_or_detected(tmp_path, good) -> None:
    rng = random.Random(0)
    for _ in range(300):
        corrupt = bytearray(good)
        for _ in range(rng.choice([1, 2, 4])):
            where = rng.randrange(0, 400) if rng.random() < 0.5 else rng.randrange(len(corrupt))
            corrupt[where] ^= rng.randrange(1, 256)
        refused(tmp_path, bytes(corrupt))


def test_missing_metadata(tmp_path, good) -> None:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(good))
    model.metadata = [m for m in model.metadata if m.name not in (b"audiomnist_edge", "audiomnist_edge")]
    bare = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    assert "no audiomnist_edge metadata" in refused(tmp_path, bare)


def test_unknown_schema_version(tmp_path, good) -> None:
    assert "unknown metadata schema 7" in refused(tmp_path, edit_metadata(good, b'"schema": 1', b'"schema": 7'))


def test_metadata_not_json(tmp_path, good) -> None:
    assert "not valid JSON" in refused(tmp_path, edit_metadata(good, b'"labels": [', b'"labels": {'))


def test_checksum_mismatch(tmp_path, good) -> None:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(good))
    weights = max(model.buffers, key=lambda b: 0 if b.data is None else len(b.data))
    weights.data[len(weights.data) // 2] ^= 0x01  # one bit of the largest weight tensor
    corrupt = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    assert metadata_of(corrupt)["sha256"] == metadata_of(good)["sha256"]
    assert "checksum mismatch" in refused(tmp_path, corrupt)


def with_metadata(good: bytes, **changes) -> bytes:
    return embed_metadata(good, {**metadata_of(good), **changes})


@pytest.mark.parametrize("features, reason", [
    ({**FeatureParams().to_dict(), "pad_mode": "reflect"}, "cannot compute: pad_mode 'reflect'"),
    ({**FeatureParams().to_dict(), "dct_type": 3}, "cannot compute: dct_type 3"),
    ({**FeatureParams().to_dict(), "hann_window_power": 2}, "unknown feature parameters: hann_window_power"),
])
def test_features_the_runtime_cannot_compute(tmp_path, good, features, reason) -> None:
    assert reason in refused(tmp_path, with_metadata(good, features=features))


def test_features_hash_mismatch(tmp_path, good) -> None:
    other = FeatureParams(n_mels=32).stable_hash()
    assert "does not match its hash" in refused(tmp_path, with_metadata(good, features_hash=other))


def test_labels_missing_or_not_matching_outputs(tmp_path, good) -> None:
    assert "no labels" in refused(tmp_path, with_metadata(good, labels=[]))
    assert "10 outputs for 3 labels" in refused(tmp_path, with_metadata(good, labels=["a", "b", "c"]))


def test_input_shape_not_matching_features(tmp_path, good) -> None:
    params = FeatureParams(clip_seconds=0.5)
    message = refused(tmp_path, with_metadata(good, features=params.to_dict(),
                                              features_hash=params.stable_hash()))
    assert "does not fit the feature configuration" in message


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ModelError, match="No such file"):
        read_artifact(tmp_path / "absent.tflite")


def test_cli_reports_bad_model_in_one_line(tmp_path, good) -> None:
    path = tmp_path / "cut.tflite"
    path.write_bytes(good[:len(good) // 2])
    for command in (["info"], ["predict", str(path)]):
        result = subprocess.run([sys.executable, "-m", "audiomnist_edge", *command, "--model", str(path)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("warps", ["0.94", [], [2.0], [0.5], [True], [float("nan")], [1.0] * 9])
def test_malformed_warps_are_refused(tmp_path, good, warps) -> None:
    assert "warps is not a list of 1-8 mel warp factors" in refused(tmp_path, with_metadata(good, warps=warps))


def test_a_model_decides_over_the_warps_its_metadata_names(tmp_path, good, fsdd) -> None:
    from audiomnist_edge.features import clip_features
    from audiomnist_edge.recognizer import Recognizer
    from audiomnist_edge.wav import read_wav

    path = tmp_path / "warped.tflite"
    path.write_bytes(with_metadata(good, warps=[0.9, 1.0]))
    plain_path = tmp_path / "plain.tflite"
    plain_path.write_bytes(good)
    model, plain = Model.load(path), Model.load(plain_path)
    assert model.warps == (0.9, 1.0) and plain.warps == (1.0,)
    moved = 0
    for name in ("3_jackson_0.wav", "7_theo_1.wav", "9_nicolas_2.wav"):
        samples, rate = read_wav(fsdd / "recordings" / name)
        views = [model.probabilities(clip_features(samples, model.params, warp=w)) for w in (0.9, 1.0)]
        expected = np.mean(views, axis=0)
        np.testing.assert_allclose(model.utterance_probabilities(samples), expected, rtol=0, atol=1e-7)
        top = dict(model.classify(samples, rate, top_k=10).top)
        np.testing.assert_allclose([top[label] for label in model.labels], expected, rtol=0, atol=1e-7)
        one_start = Recognizer(model, rate, shifts=1)
        np.testing.assert_allclose(one_start.probabilities(samples), expected, rtol=0, atol=1e-7)
        np.testing.assert_array_equal(plain.utterance_probabilities(samples), views[1])
        moved += not np.array_equal(views[0], views[1])
    assert moved  # the warp changes what the model hears, so the mean is not the plain view

