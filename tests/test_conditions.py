"""The capture-condition set: deterministic, and each condition does what its name says."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from signals import chirp

pytest.importorskip("pyroomacoustics")

from audiomnist_edge.train import capture, conditions
from audiomnist_edge.train.conditions import CONDITIONS, apply_condition, generate
from audiomnist_edge.wav import write_wav

RATE = 8000


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.getbasetemp() / "conditions-cache"  # shared: room banks build once
    monkeypatch.setenv("AUDIOMNIST_EDGE_CACHE", str(root))
    return root


def word() -> np.ndarray:
    x = chirp(200, 3000, 0.6, RATE, 0.5)
    return (x * np.hanning(len(x))).astype(np.float32)


def others() -> list[np.ndarray]:
    return [np.roll(word(), 300 * k) * (0.5 + 0.1 * k) for k in range(5)]


def locate(y: np.ndarray, x: np.ndarray) -> int:
    """Where clean ``x`` sits inside ``y`` (by correlation)."""
    return int(np.argmax(np.correlate(y, x, mode="valid")))


def residual(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    start = locate(y, x)
    out = y.astype(np.float64).copy()
    out[start:start + len(x)] -= x
    return out


def test_the_issue_set_of_conditions():
    assert list(CONDITIONS) == [
        "clean", "padded", "white-20dB", "white-10dB", "white-5dB", "pink-20dB", "pink-10dB",
        "pink-5dB", "babble-20dB", "babble-10dB", "babble-5dB", "reverb-0.3s", "reverb-0.6s",
        "quiet-20dB", "hum-50Hz", "telephone"]
    assert set(conditions.DESCRIPTIONS) == set(CONDITIONS)


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_seeded_by_seed_condition_and_clip(name):
    x = word()
    a = apply_condition(x, RATE, name, 0, 3, others())
    assert np.array_equal(a, apply_condition(x, RATE, name, 0, 3, others()))
    assert a.dtype == np.float32 and np.all(np.isfinite(a)) and np.max(np.abs(a)) <= 1
    if name != "clean":
        assert not np.array_equal(a, apply_condition(x, RATE, name, 0, 4, others()))
        assert not np.array_equal(a, apply_condition(x, RATE, name, 1, 3, others()))


def test_clean_is_the_clip_itself():
    x = word()
    np.testing.assert_array_equal(apply_condition(x, RATE, "clean", 0, 0), x)


def test_padded_adds_half_a_second_to_a_second_each_side_with_a_minus_50_dbfs_floor():
    x = word()
    for i in range(5):
        y = apply_condition(x, RATE, "padded", 0, i)
        start = locate(y, x)
        after = len(y) - start - len(x)
        assert 0.5 * RATE <= start <= RATE and 0.5 * RATE <= after <= RATE
        assert capture.db(capture.power(y[:start - 10])) == pytest.approx(-50, abs=0.5)


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
@pytest.mark.parametrize("snr", [20, 10, 5])
def test_noise_conditions_hit_their_snr(kind, snr):
    x = word()
    y = apply_condition(x, RATE, f"{kind}-{snr}dB", 0, 2, others())
    noise = residual(y, x)
    achieved = capture.db(capture.speech_power(x, RATE)) - capture.db(capture.power(noise))
    assert achieved == pytest.approx(snr, abs=0.5)  # the -50 dBFS floor adds < 0.1 dB here


def test_pink_is_pink_white_is_white():
    x = word()
    # 1/f: the 50-200 Hz band averages about 14 dB above the 2-3.5 kHz band
    for kind, low_minus_high in (("white", (-3, 3)), ("pink", (10, 18))):
        noise = residual(apply_condition(x, RATE, f"{kind}-10dB", 0, 0), x)
        spectrum = np.abs(np.fft.rfft(noise)) ** 2
        f = np.fft.rfftfreq(len(noise), 1 / RATE)
        low = spectrum[(f > 50) & (f < 200)].mean()
        high = spectrum[(f > 2000) & (f < 3500)].mean()
        assert low_minus_high[0] < capture.db(low) - capture.db(high) < low_minus_high[1], kind


def test_babble_is_made_of_the_other_clips():
    x = word()
    sources = [np.sin(2 * np.pi * 1234 * np.arange(4000) / RATE).astype(np.float32)]
    noise = residual(apply_condition(x, RATE, "babble-10dB", 0, 0, sources), x)
    spectrum = np.abs(np.fft.rfft(noise))
    f = np.fft.rfftfreq(len(noise), 1 / RATE)
    assert abs(f[np.argmax(spectrum)] - 1234) < 5


def test_reverb_conditions_ring_longer_for_longer_rt60():
    x = word()
    tails = {}
    for name, rt60 in (("reverb-0.3s", 0.3), ("reverb-0.6s", 0.6)):
        bank = capture.rir_bank(RATE, (rt60, rt60), 32, conditions.EVAL_RIR_SEED)
        np.testing.assert_allclose(np.median(bank.measured_rt60), rt60, rtol=0.1)
        tails[name] = apply_condition(x, RATE, name, 0, 1)
    # energy 0.2-0.4 s after the word ends, relative to the word's, grows with RT60
    ratios = []
    for y in tails.values():
        env = np.convolve(y.astype(np.float64) ** 2, np.ones(400) / 400, mode="same")
        peak = int(np.argmax(env))
        ratios.append(env[peak + int(0.5 * RATE):peak + int(0.7 * RATE)].mean() / env[peak])
    assert ratios[1] > 3 * ratios[0]


def test_quiet_is_the_padded_clip_with_speech_20_db_lower():
    x = word()
    quiet = apply_condition(x, RATE, "quiet-20dB", 0, 0)
    start = locate(quiet, x)
    speech = quiet[start:start + len(x)]
    least_squares_gain = float(np.dot(speech, x) / np.dot(x, x))
    assert 20 * np.log10(least_squares_gain) == pytest.approx(-20, abs=0.05)
    assert capture.db(capture.power(quiet[:start - 10])) == pytest.approx(-50, abs=0.5)


def test_hum_is_50_hz_15_db_below_the_speech():
    x = word()
    noise = residual(apply_condition(x, RATE, "hum-50Hz", 0, 0), x)
    spectrum = np.abs(np.fft.rfft(noise))
    f = np.fft.rfftfreq(len(noise), 1 / RATE)
    assert abs(f[np.argmax(spectrum)] - 50) < 1.5
    achieved = capture.db(capture.speech_power(x, RATE)) - capture.db(capture.power(noise))
    assert achieved == pytest.approx(15, abs=0.5)


def test_telephone_removes_100_hz_and_keeps_1_khz():
    t = np.arange(RATE) / RATE
    for hz, low, high in ((100, -200, -20), (1000, -0.5, 0.5)):
        tone_ = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        y = apply_condition(tone_, RATE, "telephone", 0, 0)
        energy_db = capture.db(np.sum(np.square(y, dtype=np.float64)))
        assert low < energy_db - capture.db(np.sum(np.square(tone_, dtype=np.float64))) < high


def test_unknown_condition_is_a_one_line_error():
    from audiomnist_edge.errors import EdgeError

    with pytest.raises(EdgeError, match="unknown condition"):
        conditions.check_names(["clean", "loud"])


def _clips(folder: Path, n_per_speaker: int = 2) -> list[tuple[Path, int]]:
    out = []
    for speaker, shift in (("anna", 0), ("bert", 500)):
        for k in range(n_per_speaker):
            path = folder / f"{k}_{speaker}_0.wav"
            write_wav(path, np.roll(word(), shift + 100 * k), RATE)
            out.append((path, k))
    return out


def test_generate_is_the_same_audio_whatever_subset_is_asked(tmp_path):
    clips = _clips(tmp_path)
    full = {(c, i): y for c, i, y, _, _ in generate(clips, 0)}
    part = {(c, i): y for c, i, y, _, _ in generate(clips[:1], 0, ["babble-5dB", "white-5dB"])}
    # clip 0 alone has no other clips for babble: compare the white condition only
    np.testing.assert_array_equal(full[("white-5dB", 0)], part[("white-5dB", 0)])
    assert set(part) == {("babble-5dB", 0), ("white-5dB", 0)}


def test_babble_comes_from_other_speakers_clips(tmp_path):
    clips = _clips(tmp_path)
    loaded = [conditions._Loaded(*_read(p), d, conditions._speaker(p)) for p, d in clips]
    sources = conditions._babble_sources(loaded, 0, 0, {})
    assert sources and all(any(np.array_equal(s, loaded[j].samples) for j in (2, 3)) for s in sources)


def _read(path):
    from audiomnist_edge.wav import read_wav

    return read_wav(path)


def test_score_counts_right_answers_per_condition(tmp_path):
    clips = _clips(tmp_path)
    lengths = {len(word())}

    def only_clean_is_understood(samples, rate):
        return clips[0][1] if len(samples) in lengths else -1

    result = conditions.score(only_clean_is_understood, clips, conditions=["clean", "padded"],
                              progress=False)
    assert result["accuracy"] == {"clean": 0.5, "padded": 0.0} and result["n"] == 4
    assert result["mean"] == 0.25 and result["seconds_per_clip"] >= 0


def test_packaged_model_under_conditions(fsdd_test_clips):
    from audiomnist_edge.model import Model

    clips = [(p, int(p.stem[0])) for p in fsdd_test_clips[::15]]
    result = conditions.condition_table(Model.load(), clips, conditions=["clean", "babble-5dB"],
                                        progress=False)
    assert result["accuracy"]["clean"] >= 0.9  # it scores 98.7% on all 300
    assert result["accuracy"]["babble-5dB"] < result["accuracy"]["clean"]


def test_evaluate_conditions_cli(fsdd, tmp_path):
    corpus = tmp_path / "mini" / "recordings"
    corpus.mkdir(parents=True)
    for path in sorted((fsdd / "recordings").glob("*_lucas_[0-7].wav")):
        shutil.copy(path, corpus)
    run = tmp_path / "run"
    run.mkdir()
    from audiomnist_edge.config import FeatureParams

    (run / "features.json").write_text(FeatureParams().to_json())
    (run / "run.json").write_text(json.dumps({"data": str(corpus.parent), "split": "official",
                                              "fold": None, "seed": 0, "recipe": {}}))
    cmd = [sys.executable, "-m", "audiomnist_edge", "evaluate", str(run), "--conditions"]
    missing = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0
    assert missing.stderr.strip().count("\n") == 0 and "audiomnist-edge convert" in missing.stderr
    model = Path(__file__).resolve().parents[1] / "edge" / "models" / "default.tflite"
    ok = subprocess.run(cmd + ["--model", str(model), "--json"], check=False, capture_output=True,
                        text=True,
                        timeout=600)
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout)
    assert result["n"] == 50 and list(result["accuracy"]) == list(CONDITIONS)
    assert result["accuracy"]["clean"] >= 0.9


def test_pocketsphinx_baseline_on_the_same_audio(hd_en, monkeypatch):
    """The benchmark's PocketSphinx recogniser hears studio digits; compare() scores both."""
    pytest.importorskip("pocketsphinx")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from benchmarks.pocketsphinx_compare import PocketSphinxDigits, compare, markdown

    clips = [(p, int(p.stem[0])) for p in sorted((hd_en / "recordings").glob("*_hd02_3.wav"))]
    sphinx = PocketSphinxDigits()
    assert sum(sphinx(*_read(p)) == d for p, d in clips) >= 8  # 10 clean studio digits
    assert sphinx(np.zeros(8000, np.float32), 8000) in (None, *range(10))
    always_seven = {"seven": lambda x, r: 7, "sphinx": sphinx}
    result = compare(always_seven, clips[:4], conditions=["clean", "white-5dB"], progress=False)
    assert result["accuracy"]["seven"] == {"clean": 0.0, "white-5dB": 0.0}  # digits 0-3
    assert result["accuracy"]["sphinx"]["clean"] >= 0.75
    assert result["n"] == 4 and set(result["ms_per_clip"]) == {"seven", "sphinx"}
    with_ours = {"ours": always_seven["seven"], "pocketsphinx": lambda x, r: None}
    result = compare(with_ours, clips[7:8], conditions=["clean"], progress=False)
    page = markdown({"pocketsphinx": "pocketsphinx x", "generated": "now", "command": "cmd",
                     "machine": "m", "model": "m.tflite", "seed": 0,
                     "sets": [{"label": "hd-en", "description": "d", "result": result}]})
    assert "| clean | **100.0%** | 0.0% |" in page
