"""Capture augmentation: seeded, label-preserving, each effect measured on its own."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from signals import chirp, tone

pytest.importorskip("pyroomacoustics")

from audiomnist_edge.train import augment, capture
from audiomnist_edge.train.augment import AugmentParams, random_augment
from audiomnist_edge.train.capture import CaptureParams, random_capture

RATE = 8000
# every effect off: tests switch on the one they measure
NOTHING = CaptureParams(reverb=0, pad=0, noise=0, gain_db=(0.0, 0.0), lowcut=0, highcut=0,
                        telephone=0, mulaw=0, dc=0, clipping=0)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A private cache root, and small impulse-response banks so tests stay fast."""
    monkeypatch.setenv("AUDIOMNIST_EDGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def word(rate: int = RATE) -> np.ndarray:
    """A word-like test signal: 0.6 s chirp 200-3000 Hz with a smooth envelope, peak 0.5."""
    x = chirp(200, 3000, 0.6, rate, 0.5)
    return (x * np.hanning(len(x))).astype(np.float32)


def everything(**changes) -> CaptureParams:
    """Every effect always on (small RIR bank)."""
    p = CaptureParams(reverb=1, rir_count=4, pad=1, noise=1, lowcut=1, highcut=1, telephone=1,
                      mulaw=1, dc=1, clipping=1)
    return dataclasses.replace(p, **changes)


def band_gain_db(filtered: np.ndarray, original: np.ndarray, rate: int = RATE) -> float:
    """Power ratio of two signals in dB, ignoring 0.1 s at each end."""
    m = int(0.1 * rate)
    return capture.db(capture.power(filtered[m:-m])) - capture.db(capture.power(original[m:-m]))


def test_same_seed_same_capture_other_seed_other_capture():
    x = word()
    sources = [tone(300 + 50 * k, 0.5, RATE) for k in range(4)]
    params = everything()
    a = random_capture(x, RATE, np.random.default_rng(7), params, sources)
    b = random_capture(x, RATE, np.random.default_rng(7), params, sources)
    c = random_capture(x, RATE, np.random.default_rng(8), params, sources)
    np.testing.assert_array_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a, c)


def test_output_is_finite_float32_within_full_scale_and_never_shorter():
    rng = np.random.default_rng(0)
    sources = [word()]
    for k in range(40):
        loud = np.clip(word() * 3, -1, 1) if k % 2 else word()
        params = everything(gain_db=(6.0, 6.0)) if k % 4 == 1 else CaptureParams(rir_count=4)
        y = random_capture(loud, RATE, rng, params, sources)
        assert y.dtype == np.float32 and np.all(np.isfinite(y))
        assert np.max(np.abs(y)) <= 1.0 and len(y) >= len(loud)
    nan_input = word()
    nan_input[100] = np.nan
    assert np.all(np.isfinite(random_capture(nan_input, RATE, rng, everything(), sources)))


@pytest.mark.parametrize("kind", capture.NOISE_KINDS)
@pytest.mark.parametrize("snr", [0.0, 10.0, 30.0])
def test_noise_lands_at_the_drawn_snr(kind, snr):
    """The noise added is `snr` below the speech's active power (padding does not dilute it)."""
    x = word() * 0.3
    weights = tuple(1.0 if k == kind else 0.0 for k in capture.NOISE_KINDS)
    params = dataclasses.replace(NOTHING, noise=1, noise_weights=weights, snr_db=(snr, snr),
                                 pad=1, floor_dbfs=(-300.0, -300.0))
    sources = [word(), tone(440, 0.8, RATE, 0.2), tone(1000, 0.3, RATE, 0.4)]
    y = random_capture(x, RATE, np.random.default_rng(3), params, sources)
    # find the word inside the padding by correlation, then subtract it
    start = int(np.argmax(np.correlate(y, x, mode="valid")))
    noise = y.astype(np.float64).copy()
    noise[start:start + len(x)] -= x
    assert start > 0 and len(y) > len(x) + int(0.4 * RATE)
    achieved = capture.db(capture.speech_power(x, RATE)) - capture.db(capture.power(noise))
    assert abs(achieved - snr) < 0.5


def test_babble_mixes_several_talkers_and_needs_sources():
    rng = np.random.default_rng(0)
    sources = [tone(200 * (k + 1), 0.3, RATE) for k in range(6)]
    b = capture.babble(sources, 4000, talkers=6, rng=rng)
    spectrum = np.abs(np.fft.rfft(b))
    bins = np.fft.rfftfreq(len(b), 1 / RATE)
    present = [f for f in (200, 400, 600, 800, 1000, 1200)
               if spectrum[np.argmin(np.abs(bins - f))] > 0.1 * spectrum.max()]
    assert len(present) >= 3
    assert capture.power(b) == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError):
        capture.babble([np.zeros(100, np.float32)], 100, 3, rng)


def test_without_sources_babble_is_never_drawn():
    params = dataclasses.replace(NOTHING, noise=1, noise_weights=(0, 0, 0, 1, 0))
    y = random_capture(word(), RATE, np.random.default_rng(0), params, None)
    np.testing.assert_array_equal(y, word())


def test_gain_is_exact():
    x = word() * 0.5
    for g in (-30.0, -12.5, 0.0, 6.0):
        y = random_capture(x, RATE, np.random.default_rng(0), dataclasses.replace(NOTHING, gain_db=(g, g)))
        np.testing.assert_allclose(y, x * 10 ** (g / 20), rtol=1e-6, atol=1e-9)


def test_padding_carries_a_floor_at_the_drawn_level():
    params = dataclasses.replace(NOTHING, pad=1, pad_seconds=(0.5, 1.0), floor_dbfs=(-50.0, -50.0))
    x = word()
    y = random_capture(x, RATE, np.random.default_rng(1), params)
    extra = len(y) - len(x)
    assert int(1.0 * RATE) <= extra <= int(2.0 * RATE)
    head = y[:int(0.45 * RATE)]
    assert capture.db(capture.power(head)) == pytest.approx(-50.0, abs=0.5)


def test_telephone_band_passes_speech_and_cuts_100_hz_and_3900_hz():
    for rate in (8000, 16000):
        for f, low, high in ((100, -200, -20), (3900, -200, -20), (1000, -1, 1), (2500, -1, 1)):
            x = tone(f, 1.0, rate)
            assert low < band_gain_db(capture.telephone(x, rate), x, rate) < high, (rate, f)


def test_lowcut_and_highcut_shape_the_spectrum():
    low, high = tone(60, 1.0, RATE), tone(3000, 1.0, RATE)
    mid = tone(1000, 1.0, RATE)
    assert band_gain_db(capture.lowcut(low, RATE, 300), low) < -20
    assert abs(band_gain_db(capture.lowcut(mid, RATE, 300), mid)) < 0.5
    assert band_gain_db(capture.highcut(high, RATE, 1000), high) < -30
    assert abs(band_gain_db(capture.highcut(low, RATE, 1000), low)) < 0.5


def test_mulaw_round_trip_is_8_bit_companding():
    for rate in (8000, 16000):
        x = tone(440, 0.5, rate, 0.5)
        y = capture.mulaw(x, rate)
        assert len(y) == len(x) and not np.array_equal(x, y)
        m = rate // 10
        error = capture.power(y[m:-m] - x[m:-m])
        assert 25 < capture.db(capture.power(x[m:-m])) - capture.db(error) < 45
    # at 8 kHz the output takes at most 255 distinct values
    assert len(np.unique(capture.mulaw(np.linspace(-1, 1, 5000, dtype=np.float32), 8000))) <= 255


def test_hum_is_at_the_mains_frequency():
    h = capture.hum(RATE, RATE, 50.0, np.random.default_rng(0))
    spectrum = np.abs(np.fft.rfft(h))
    assert np.argmax(spectrum) == 50  # 1 Hz bins
    assert spectrum[100] > 0.2 * spectrum[50] and spectrum[75] < 1e-3 * spectrum[50]


def test_dc_offset_and_clipping():
    x = word()
    params = dataclasses.replace(NOTHING, dc=1, dc_offset=(0.1, 0.1))
    y = random_capture(x, RATE, np.random.default_rng(0), params)
    assert np.mean(y) - np.mean(x) == pytest.approx(0.1, abs=1e-6)
    clipped = capture.clip(x, 6.0)
    assert np.max(np.abs(clipped)) == pytest.approx(np.max(np.abs(x)) * 10 ** (-6 / 20), rel=1e-5)
    assert np.sum(np.abs(clipped) >= np.max(np.abs(clipped)) - 1e-7) > 20


def test_reverb_bank_is_built_once_cached_and_loaded(cache, monkeypatch):
    bank = capture.rir_bank(RATE, (0.2, 0.5), count=6, seed=1)
    path = capture.rir_bank_path(RATE, (0.2, 0.5), 6, 1)
    assert path.is_file() and path.parent.parent == cache and len(bank) == 6
    assert np.all((bank.rt60 >= 0.2) & (bank.rt60 <= 0.5))
    np.testing.assert_allclose(bank.measured_rt60, bank.rt60, rtol=0.2)
    assert capture.rir_bank(RATE, (0.2, 0.5), count=6, seed=1) is bank  # same process: no reload
    capture._load_or_build.cache_clear()

    def no_build(*args):
        raise AssertionError("the cached bank should have been loaded")

    monkeypatch.setattr(capture, "build_rir_bank", no_build)
    again = capture.rir_bank(RATE, (0.2, 0.5), count=6, seed=1)
    np.testing.assert_array_equal(again.rirs, bank.rirs)


def test_reverberation_adds_a_tail_that_grows_with_rt60():
    x = word()
    tails = []
    for rt60 in (0.2, 0.7):
        bank = capture.rir_bank(RATE, (rt60, rt60), count=2, seed=0)
        y = capture.reverberate(x, bank.get(0))
        assert len(y) == len(x) + bank.lengths[0] - 1
        tail = y[len(x) + int(0.1 * RATE):]
        tails.append(capture.power(tail) / capture.power(y))
    assert tails[1] > 3 * tails[0] > 0


def test_babble_bank_from_clips_round_trips(fsdd, cache):
    paths = sorted((fsdd / "recordings").glob("*_jackson_4*.wav"))
    target = capture.build_babble_bank(paths, RATE, count=5, seed=0)
    assert target.parent.parent == cache
    sources = capture.load_babble_bank(target)
    assert len(sources) == 5 and all(len(s) > 0.1 * RATE for s in sources)
    assert capture.build_babble_bank(paths, RATE, count=5, seed=0) == target


def test_capture_params_round_trip_through_json():
    p = everything(snr_db=(5.0, 7.0))
    assert CaptureParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_augment_params_round_trip_as_workers_rebuild_them():
    aug = AugmentParams(capture=0.5, capture_rt60=(0.2, 0.4), babble_bank="/x/b.npz",
                        capture_noise_weights=(0.0, 1.0, 0.0, 3.0, 0.0))
    data = json.loads(json.dumps(aug.to_dict()))
    rebuilt = AugmentParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    assert rebuilt == aug and rebuilt.capture_params().rt60 == (0.2, 0.4)
    assert rebuilt.capture_params().noise_weights == (0.0, 1.0, 0.0, 3.0, 0.0)
    assert AugmentParams().capture_params().noise_weights == CaptureParams().noise_weights


def test_capture_off_leaves_the_augmentation_as_it_was():
    """capture=0 draws exactly what the augmentation drew before capture existed."""
    x = word()
    aug = AugmentParams(capture=0.0, capture_snr_db=(0.0, 1.0))
    y, warp = random_augment(x, RATE, aug, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    ref = augment.speed(x, rng.uniform(*aug.speed))
    ref = augment.gain(ref, rng.uniform(*aug.gain_db))
    n = int(aug.shift_seconds * RATE)
    ref = augment.shift(np.pad(ref, (n, n)), int(rng.integers(-n, n + 1)))
    if rng.random() < aug.noise_probability:
        ref = augment.add_noise(ref, rng.uniform(*aug.snr_db), rng)
    np.testing.assert_array_equal(y, ref)
    assert warp == rng.uniform(1 - aug.warp, 1.0)


def test_cut_edges_keeps_a_seeded_inner_part_of_the_word_without_its_silence():
    from audiomnist_edge.config import FeatureParams
    from audiomnist_edge.features import speech_bounds

    x = np.concatenate([np.zeros(2000, np.float32), word(), np.zeros(2000, np.float32)])
    start, end = speech_bounds(x, FeatureParams(trim_db=30.0))
    heads, tails = [], []
    for seed in range(60):
        y = augment.cut_edges(x, RATE, 0.08, np.random.default_rng(seed))
        np.testing.assert_array_equal(y, augment.cut_edges(x, RATE, 0.08, np.random.default_rng(seed)))
        head = int(np.flatnonzero(x == y[0])[0]) - start  # y is one stretch of x
        np.testing.assert_array_equal(x[start + head:start + head + len(y)], y)
        tail = end - (start + head + len(y))
        assert 0 <= head <= 0.08 * RATE and 0 <= tail <= 0.08 * RATE
        heads.append(head)
        tails.append(tail)
    # each side is cut about half the time, independently
    assert 15 <= sum(h > 0 for h in heads) <= 45 and 15 <= sum(t > 0 for t in tails) <= 45
    short = augment.cut_edges(x[:start + 400], RATE, 0.08, np.random.default_rng(1))
    assert len(short) >= 400 // 2  # at least half of a short word stays


def test_cut_edges_at_a_level_drops_the_weak_onset_and_keeps_the_vowel():
    """A quiet 60 ms consonant before a loud vowel: a start cut at 10-20 dB below the loudest
    frame removes the consonant alone; an end cut removes nothing of a vowel that ends loud."""
    from audiomnist_edge.config import FeatureParams
    from audiomnist_edge.features import speech_bounds

    rng = np.random.default_rng(0)
    consonant = (0.03 * rng.standard_normal(int(0.06 * RATE))).astype(np.float32)  # 21.5 dB under the vowel
    vowel = 0.5 * np.sin(2 * np.pi * 220 * np.arange(int(0.3 * RATE)) / RATE).astype(np.float32)
    x = np.concatenate([np.zeros(800, np.float32), consonant, vowel, np.zeros(800, np.float32)])
    start, end = speech_bounds(x, FeatureParams(trim_db=30.0))
    assert start < 800 + len(consonant) // 2  # the default trim keeps the consonant
    onset = 800 + len(consonant)
    lengths = set()
    for seed in range(40):
        y = augment.cut_edges(x, RATE, 0.08, np.random.default_rng(seed), level_db=(10.0, 20.0))
        np.testing.assert_array_equal(y, augment.cut_edges(x, RATE, 0.08, np.random.default_rng(seed),
                                                           level_db=(10.0, 20.0)))
        head = start + int(np.flatnonzero(x[start:] == y[0])[0])
        np.testing.assert_array_equal(x[head:head + len(y)], y)
        # all of the consonant or none of it (a frame is win_length long: it sees the vowel early)
        assert head == start or onset - FeatureParams().win_length <= head <= onset
        assert head + len(y) >= end - FeatureParams().win_length  # the vowel's end stays
        lengths.add(len(y))
    assert len(lengths) >= 2  # the start is cut about half the time
    # the cut never takes more than a quarter of the word
    long_onset = np.concatenate([np.zeros(800, np.float32), np.tile(consonant, 4), vowel[:800]])
    first, last = speech_bounds(long_onset, FeatureParams(trim_db=30.0))
    for seed in range(20):
        y = augment.cut_edges(long_onset, RATE, 0.08, np.random.default_rng(seed), level_db=(10.0, 20.0))
        assert len(y) >= (last - first) - 2 * ((last - first) // 4)


def test_level_cut_setting_is_optional_and_checked():
    assert "edge_cut_db" not in AugmentParams().to_dict()  # recipes without it keep their cache keys
    aug = AugmentParams(edge_cut_db=[6, 15])
    assert aug.edge_cut_db == (6.0, 15.0) and aug.to_dict()["edge_cut_db"] == (6.0, 15.0)
    for bad in ((20.0, 10.0), (0.0, 10.0)):
        with pytest.raises(ValueError, match="edge_cut_db"):
            AugmentParams(edge_cut_db=bad)


def test_edge_cut_spares_the_unknown_class(tmp_path):
    """A non-digit word keeps its edges ("sixty" cut short is a "six"); digits are cut."""
    from audiomnist_edge.config import FeatureParams
    from audiomnist_edge.train.cache import extract
    from audiomnist_edge.train.datasets import LABELS, Clip
    from audiomnist_edge.wav import write_wav

    x = np.concatenate([np.zeros(800, np.float32), word(), np.zeros(800, np.float32)])
    clips = []
    for digit, name in ((3, "3_s_0.wav"), (len(LABELS), "unknown_s_0.wav")):
        write_wav(tmp_path / name, x, RATE)
        clips.append(Clip(tmp_path / name, digit, "s", 0, synthetic=True))
    def features(aug):
        return extract(clips, FeatureParams(), aug, seed=3, cache_dir=tmp_path / "c", progress=False,
                       workers=1)[0]
    plain = features(AugmentParams(copies=4))
    for cutting in (AugmentParams(copies=4, edge_cut=0.1), AugmentParams(copies=4, edge_cut_db=(6.0, 15.0))):
        cut = features(cutting)
        np.testing.assert_array_equal(cut[1], plain[1])
        assert not np.array_equal(cut[0], plain[0])


def test_warp_up_widens_the_warp_range_above_one_and_nothing_else():
    x = word()
    low, _ = random_augment(x, RATE, AugmentParams(), np.random.default_rng(1))
    warps = [random_augment(x, RATE, AugmentParams(warp_up=0.12), np.random.default_rng(seed))
             for seed in range(40)]
    np.testing.assert_array_equal(warps[1][0], low)  # the same draws for the samples
    factors = np.array([w for _, w in warps])
    assert factors.min() >= 0.88 and factors.max() <= 1.12 and (factors > 1.0).sum() >= 10


def test_capture_on_replaces_gain_shift_and_noise_with_the_capture_chain(fsdd, cache):
    from audiomnist_edge.config import FeatureParams

    paths = sorted((fsdd / "recordings").glob("*_theo_4*.wav"))
    aug = AugmentParams(capture=1.0, capture_reverb=1.0, capture_rt60=(0.3, 0.3), capture_rirs=3,
                        babble_bank=str(capture.build_babble_bank(paths, RATE, count=4)))
    augment.prepare_capture(aug, RATE)
    assert capture.rir_bank_path(RATE, (0.3, 0.3), 3, 0).is_file()
    x = word()
    y, _ = random_augment(x, RATE, aug, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    ref = augment.speed(x, rng.uniform(*aug.speed))
    assert rng.random() < aug.capture
    ref = random_capture(ref, RATE, rng, aug.capture_params(), capture.load_babble_bank(aug.babble_bank))
    np.testing.assert_array_equal(y, ref)
    params = FeatureParams()
    out = augment.augmented_features(x, params, aug, np.random.default_rng(0), copies=3)
    assert out.shape == (3, *params.input_shape) and np.all(np.isfinite(out))


def test_the_floor_never_drowns_a_quiet_word():
    x = word() * 0.001  # speech about -72 dBFS
    speech_db = capture.db(capture.speech_power(x, RATE))
    params = dataclasses.replace(NOTHING, pad=1, floor_dbfs=(-35.0, -35.0), gain_db=(-6.0, -6.0))
    y = random_capture(x, RATE, np.random.default_rng(0), params)
    head = y[:int(0.15 * RATE)]
    assert capture.db(capture.power(head)) == pytest.approx(speech_db - 6 - 5, abs=0.5)
    unlimited = dataclasses.replace(params, floor_snr_db=None)
    y = random_capture(x, RATE, np.random.default_rng(0), unlimited)
    assert capture.db(capture.power(y[:int(0.15 * RATE)])) == pytest.approx(-35, abs=0.5)


@pytest.mark.parametrize("aug, warps", [
    (AugmentParams(), (0.94, 1.0)),                        # copies warped 0.88-1: 1 and the middle
    (AugmentParams(warp=0.2, warp_up=0.1), (0.95, 1.0)),
    (AugmentParams(warp=0.12, warp_up=0.12), (1.0,)),      # warped both ways: 1 is the middle
    (AugmentParams(warp=0.0), (1.0,)),
    (AugmentParams(copies=0), (1.0,)),                     # no augmented copies: nothing was warped
])
def test_test_warps_are_one_and_the_middle_of_the_training_range(aug, warps):
    assert aug.test_warps() == warps
