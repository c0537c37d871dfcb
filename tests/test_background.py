"""The background gate (``--background-db``): talk well below the speaker's last digits is dropped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from signals import tone

from audiomnist_edge.model import Model
from audiomnist_edge.recognizer import BACKGROUND_SECONDS, Recognizer
from audiomnist_edge.stream import Segmenter
from audiomnist_edge.wav import read_wav, write_wav

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "digits"
RATE = 16000  # the example recordings' rate


@pytest.fixture(scope="module")
def model() -> Model:
    return Model.load()


def stream(*words: tuple[str, float, float]) -> np.ndarray:
    """Example recordings of (digit, gain dB, seconds of quiet before it), 0.5 s after the last,
    over a -60 dBFS noise floor; float32 at RATE."""
    parts = []
    for digit, gain_db, pause in words:
        word = read_wav(EXAMPLES / f"{digit}.wav")[0] * 10 ** (gain_db / 20)
        parts += [np.zeros(int(pause * RATE), np.float32), word]
    x = np.concatenate([*parts, np.zeros(RATE // 2, np.float32)])
    return (x + np.random.default_rng(0).normal(0, 1e-3, len(x))).astype(np.float32)


def decided(model: Model, x: np.ndarray, **options) -> list[str | None]:
    """The decisions, as listen makes them from 50 ms blocks."""
    recognizer = Recognizer(model, RATE, **options)
    block = RATE // 20
    found = [d for k in range(0, len(x), block) for d in recognizer.feed(x[k:k + block])] + recognizer.finish()
    return [d.digit for d in found]


def test_a_quieter_word_after_a_digit_is_dropped_only_with_the_gate(model) -> None:
    x = stream(("2", 0, 0.5), ("5", -15, 1.0))
    assert decided(model, x) == ["2", "5"]
    assert decided(model, x, background_db=10) == ["2"]
    assert decided(model, x, background_db=20) == ["2", "5"]


def test_the_level_to_stay_near_is_the_median_of_the_recent_digits(model) -> None:
    """One loud digit does not silence the rest. Loudest frames here: 2 at -11.5 dBFS, then 5 and 7
    at -17.1 and -20.3, then 9 at -26.9: 15.4 dB below the loudest, 9.8 below the median."""
    x = stream(("2", 0, 0.5), ("5", -8, 0.5), ("7", -8, 0.5), ("9", -18, 0.5))
    assert decided(model, x, background_db=12) == ["2", "5", "7", "9"]
    assert decided(model, x, background_db=8) == ["2", "5", "7"]


def test_the_gate_looks_back_only_and_forgets(model) -> None:
    assert decided(model, stream(("5", -15, 0.5), ("2", 0, 1.0)), background_db=10) == ["5", "2"]
    late = stream(("2", 0, 0.5), ("5", -15, BACKGROUND_SECONDS + 1))
    assert decided(model, late, background_db=10) == ["2", "5"]


def test_background_db_must_be_positive(model) -> None:
    for bad in (0.0, -3.0):
        with pytest.raises(ValueError, match="background_db"):
            Recognizer(model, RATE, background_db=bad)


def test_an_utterance_carries_the_level_of_its_loudest_frame() -> None:
    """A 1 kHz tone (inside the speech band) at amplitude a: mean square a^2/2 in every frame."""
    rate = 8000
    for amplitude in (0.5, 0.05):
        x = np.concatenate([np.zeros(rate // 2), tone(1000, 0.4, rate, amplitude), np.zeros(rate // 2)])
        segmenter = Segmenter(rate)
        [utterance] = segmenter.process(x.astype(np.float32)) + segmenter.flush()
        assert utterance.peak_db == pytest.approx(20 * np.log10(amplitude / np.sqrt(2)), abs=1.0)


def test_predict_and_listen_take_the_option(tmp_path) -> None:
    path = tmp_path / "two-then-quiet-five.wav"
    write_wav(path, stream(("2", 0, 0.5), ("5", -15, 1.0)), RATE)

    def run(*args: str) -> list[dict]:
        result = subprocess.run([sys.executable, "-m", "audiomnist_edge", *args, "--json"],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    for gate, sequence in (([], "25"), (["--background-db", "10"], "2")):
        [record] = run("predict", str(path), *gate)
        assert record["sequence"] == sequence
        heard = run("listen", "--input", str(path), *gate)
        assert "".join(str(d["digit"]) for d in heard) == sequence


def test_with_webrtc_the_level_is_measured_not_its_decision() -> None:
    """WebRTC's frame levels are 0 dB for speech: the peak comes from the speech band instead, as with
    the energy gate (its frames may differ a little at the word's edges, not at its loudest)."""
    pytest.importorskip("webrtcvad")
    from audiomnist_edge.stream import GateParams

    peaks = {}
    for vad in ("energy", "webrtc"):
        for gain_db in (0, -15):
            segmenter = Segmenter(RATE, GateParams(vad=vad))
            found = segmenter.process(stream(("2", gain_db, 0.5))) + segmenter.flush()
            peaks[vad, gain_db] = max(u.peak_db for u in found)
    for gain_db in (0, -15):
        assert peaks["webrtc", gain_db] == pytest.approx(peaks["energy", gain_db], abs=1.0)
    assert peaks["webrtc", 0] - peaks["webrtc", -15] == pytest.approx(15, abs=1.0)
