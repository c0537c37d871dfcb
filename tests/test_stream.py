"""The segmenter and the sequence grouper on synthetic signals (no model, no files)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from audiomnist_edge.config import FeatureParams
from audiomnist_edge.features import clip_features
from audiomnist_edge.resample import Resampler, resample
from audiomnist_edge.stream import GateParams, Segmenter, SequenceGrouper, valley_cuts
from hypothesis import given, settings
from hypothesis import strategies as st

RATE = 8000
NOISE_DBFS = -60.0


def signal(bursts: list[tuple[float, float, float]], seconds: float, seed: int = 0) -> np.ndarray:
    """White noise at NOISE_DBFS with voiced-like bursts (start s, length s, level dBFS).

    A burst is a 120 Hz (+-20 Hz) pulse train with harmonics up to 3 kHz falling
    3 dB per octave, so most of its energy lies in the speech band as a vowel's does.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 10 ** (NOISE_DBFS / 20), int(seconds * RATE))
    for start, length, level in bursts:
        t = np.arange(int(length * RATE)) / RATE
        pitch = 120 + 20 * np.sin(2 * np.pi * 3 * t)
        wave = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / RATE) / np.sqrt(k) for k in range(1, 22))
        wave *= np.hanning(len(t)) ** 0.2 * 10 ** (level / 20) * np.sqrt(2) / np.std(wave)
        i = int(start * RATE)
        x[i:i + len(wave)] += wave
    return x.astype(np.float32)


def segment(x: np.ndarray, block: int | list[int], rate: int = RATE, gate: GateParams | None = None):
    """All utterances of x, fed in blocks of one size or of the given sizes in turn."""
    segmenter = Segmenter(rate, gate)
    sizes = block if isinstance(block, list) else [block]
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out += segmenter.process(x[i:i + n])
        i, k = i + n, k + 1
    return out + segmenter.flush()


BURSTS = [(1.0, 0.45, -25), (2.2, 0.30, -35), (3.3, 0.60, -20), (4.6, 0.25, -30)]


def test_finds_each_burst_with_pre_roll_and_tail():
    gate = GateParams()
    utterances = segment(signal(BURSTS, 6.0), 400)
    assert len(utterances) == len(BURSTS)
    for u, (start, length, _) in zip(utterances, BURSTS):
        assert start - gate.pre_roll - 0.03 <= u.start <= start - gate.pre_roll + 0.05
        # the end may run up to 3 frames on: the 20 ms window of the frame after the burst still
        # holds it, and noise frames 2 dB above the floor's 20th percentile are not rare
        assert start + length - 0.05 <= u.end <= start + length + gate.tail + 0.03
        assert u.closed_at == pytest.approx(u.end - gate.tail + gate.hangover, abs=0.011)
        assert len(u.samples) == round((u.end - u.start) * RATE)
        assert not u.truncated


@pytest.mark.parametrize("block", [1, 80, 256, 1024, 4000, [1, 999, 17, 4096]])
def test_block_size_does_not_change_the_utterances(block):
    x = signal(BURSTS, 6.0)
    reference = segment(x, len(x))
    got = segment(x, block)
    assert [(u.start, u.end, u.closed_at) for u in got] == \
        [(u.start, u.end, u.closed_at) for u in reference]
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(got, reference))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=8))
def test_any_block_sequence_gives_the_same_utterances(sizes):
    x = signal(BURSTS[:2], 3.0)
    assert [(u.start, u.end) for u in segment(x, sizes)] == [(u.start, u.end) for u in segment(x, len(x))]


def test_streamed_features_equal_offline_features():
    params = FeatureParams()
    x = signal(BURSTS, 6.0)
    for u in segment(x, 333):
        offline = x[round(u.start * RATE):round(u.end * RATE)]
        assert np.array_equal(u.samples, offline)
        assert np.array_equal(clip_features(u.samples, params), clip_features(offline, params))


def test_streamed_resampling_equals_offline_at_48k():
    x = signal(BURSTS, 6.0)
    at_48k = resample(x, RATE, 48000)
    resampler = Resampler(48000, RATE)
    blocks = [resampler.process(at_48k[i:i + 4800]) for i in range(0, len(at_48k), 4800)]
    streamed = np.concatenate(blocks + [resampler.flush()])
    assert np.array_equal(streamed, resample(at_48k, 48000, RATE))
    assert [(u.start, u.end) for u in segment(streamed, 800)] == \
        [(u.start, u.end) for u in segment(resample(at_48k, 48000, RATE), len(x))]


def test_noise_alone_and_a_noise_step_never_trigger():
    x = signal([], 8.0)
    x[4 * RATE:] *= 10 ** (6 / 20)  # a fan switches on: +6 dB
    assert segment(x, 512) == []
    assert segment(np.zeros(3 * RATE, dtype=np.float32), 512) == []


def test_quiet_sounds_in_digital_silence_stay_below_the_absolute_threshold():
    x = signal([(1.0, 0.4, -70)], 2.0)
    x[:] = np.where(np.abs(x) > 10 ** (-65 / 20), x, 0)  # keep only the burst
    assert segment(x, 512) == []


def test_clicks_shorter_than_the_minimum_are_dropped():
    x = signal([(1.0, 0.04, -20), (2.0, 0.3, -20)], 3.0)
    utterances = segment(x, 512)
    assert len(utterances) == 1 and utterances[0].start > 1.5


def test_a_quiet_word_whose_vowel_alone_clears_the_floor_is_kept():
    # In noise a few dB under the speech, only a word's vowel rises above the stop threshold:
    # 80 ms of it, the rest lies in the noise. A 0.1 s minimum dropped such words as clicks.
    x = signal([(1.0, 0.08, -45)], 3.0)
    assert [round(u.start, 1) for u in segment(x, 512)] == [round(1.0 - GateParams().pre_roll, 1)]
    assert segment(x, 512, gate=GateParams(min_duration=0.1)) == []


def test_hysteresis_keeps_a_fading_word_whole():
    # A loud onset, then a tail between the stop and start thresholds (about 4-5 dB above noise).
    x = signal([(1.0, 0.3, -35), (1.3, 0.3, -59)], 3.0)
    utterances = segment(x, 512)
    assert len(utterances) == 1
    assert utterances[0].end >= 1.55
    no_hysteresis = GateParams(stop_db=GateParams().start_db)
    assert segment(x, 512, gate=no_hysteresis)[0].end < utterances[0].end - 0.05


def test_a_pause_longer_than_the_hangover_splits_words():
    gate = GateParams(hangover=0.2)
    x = signal([(1.0, 0.3, -25), (1.55, 0.3, -25)], 3.0)
    first, second = segment(x, 512, gate=gate)
    assert second.start < first.closed_at  # its pre-roll reaches into the first one's hang-over,
    # back to the first one's end at most: no sample belongs to two utterances
    assert second.start == pytest.approx(max(1.55 - gate.pre_roll, first.end), abs=0.021)
    assert np.array_equal(second.samples, x[round(second.start * RATE):round(second.end * RATE)])
    assert len(segment(x, 512, gate=GateParams(hangover=0.4, split_db=None))) == 1


def echoed(bursts: list[tuple[float, float, float]], seconds: float, rt60: float = 0.6) -> np.ndarray:
    """``signal`` with each burst followed by an exponential echo tail (60 dB down after rt60 s),
    as a reverberant room fills the pauses between words."""
    dry = signal(bursts, seconds) - signal([], seconds)
    decay = 10 ** (-3 * np.arange(int(rt60 * RATE)) / (rt60 * RATE))
    tail = np.random.default_rng(1).normal(0, 1, len(decay)) * decay * 0.05
    return (signal([], seconds) + np.convolve(dry, np.r_[1.0, tail])[:len(dry)]).astype(np.float32)


# five digits at a natural pace (pauses of 0.2 s) in a room that joins them into one 2.4 s sound
PIN = [(1.0 + 0.5 * k, 0.3, -25) for k in range(5)]


def test_valley_cuts_find_pauses_between_words_only():
    word, gap = np.zeros(30), np.full(20, -30.0)
    assert valley_cuts(np.r_[word, gap, word], 10, 8, 12.0, 10.0) == [39]  # the middle of the pause
    assert valley_cuts(np.r_[word, gap, word, gap, word], 10, 8, 12.0, 10.0) == [39, 89]
    assert valley_cuts(np.r_[word, np.full(5, -30.0), word], 10, 8, 12.0, 10.0) == []  # a stop closure
    assert valley_cuts(np.r_[word, gap, word - 15], 10, 8, 12.0, 10.0) == []  # a weak final consonant
    assert valley_cuts(np.r_[word, gap - 5, word, np.full(20, -11.0), word], 10, 8, 12.0, 10.0) == [39]
    assert valley_cuts(np.r_[word[:5], np.full(6, -30.0), word], 10, 8, 12.0, 10.0) == []  # a side too short


def test_words_joined_by_a_short_pause_or_an_echo_are_cut_apart():
    joined = GateParams(hangover=0.4)
    x = signal([(1.0, 0.3, -25), (1.55, 0.3, -25)], 3.0)
    first, second = segment(x, 512, gate=joined)
    assert 1.3 <= first.end == second.start <= 1.55
    assert np.array_equal(np.concatenate([first.samples, second.samples]),
                          x[round(first.start * RATE):round(second.end * RATE)])
    assert first.closed_at < 1.85  # decided while the second word is still being said
    pin = echoed(PIN, 5.0)
    utterances = segment(pin, 512)
    assert len(utterances) == len(PIN)
    for u, (start, length, _) in zip(utterances, PIN):
        assert u.start <= start + 0.05 and u.end >= start + length - 0.05
    for u, (start, length, _) in zip(utterances, PIN[1:]):
        assert u.closed_at < start + length  # not held back until the echo dies down
    assert segment(pin, 512, gate=GateParams(split_db=None)) == []  # one 2.4 s sound: dropped as too long


@pytest.mark.parametrize("block", [1, 333, 4000])
def test_cutting_at_dips_does_not_depend_on_the_block_size(block):
    pin = echoed(PIN, 5.0)
    reference = segment(pin, len(pin))
    assert [(u.start, u.end, u.closed_at) for u in segment(pin, block)] == \
        [(u.start, u.end, u.closed_at) for u in reference]


def test_long_sound_is_dropped_and_the_gate_rearms_after_it():
    x = signal([(1.0, 4.0, -20), (6.0, 0.4, -25)], 7.5)
    utterances = segment(x, 512, gate=GateParams(max_duration=1.0))
    assert [round(u.start, 2) for u in utterances] == [round(6.0 - GateParams().pre_roll, 2)]


def test_long_sound_is_cut_at_max_duration_once_when_kept():
    gate = GateParams(max_duration=1.0, drop_long=False)
    utterances = segment(signal([(1.0, 4.0, -20)], 7.0), 512, gate=gate)
    assert len(utterances) == 1
    assert utterances[0].truncated
    assert utterances[0].end - utterances[0].start <= 1.0 + gate.pre_roll + 0.02


def test_speech_during_calibration_is_found_once_the_floor_is_known():
    # A file that starts with speech (one clip): the floor comes from the calibration
    # frames, which are then searched for speech; the burst does not raise the floor.
    x = signal([(0.05, 0.15, -25), (1.0, 0.4, -25)], 2.0)
    utterances = segment(x, 512, gate=GateParams(calibrate=0.25))
    assert [round(u.start, 2) for u in utterances] == [0.0, round(1.0 - GateParams().pre_roll, 2)]
    assert utterances[0].end == pytest.approx(0.2 + GateParams().tail, abs=0.03)
    only_speech = signal([(0.0, 0.4, -25)], 0.6)
    assert [round(u.start, 2) for u in segment(only_speech, 512)] == [0.0]


def test_a_file_that_starts_loud_and_fades_is_one_word():
    # One clip, trimmed at its first loud frame, fading into its own noise (FSDD's "one"s): the
    # frames held before the onset is confirmed are speech and must not raise the floor.
    x = signal([(0.0, 0.15, -22), (0.15, 0.1, -28), (0.25, 0.1, -36), (0.35, 0.1, -46)], 0.45)
    utterances = segment(x, 400)
    assert [round(u.start, 2) for u in utterances] == [0.0]
    assert utterances[0].end >= 0.3


def test_memory_stays_bounded_over_a_long_stream():
    minute = signal([(s, 0.4, -25) for s in np.arange(1.0, 59.0, 1.5)], 60.0)
    segmenter = Segmenter(RATE)
    tracemalloc.start()
    try:
        for i in range(0, len(minute), 800):
            segmenter.process(minute[i:i + 800])
        _, first = tracemalloc.get_traced_memory()
        for _ in range(5):
            for i in range(0, len(minute), 800):
                segmenter.process(minute[i:i + 800])
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current < first + 256 * 1024


def test_gate_params_are_checked():
    with pytest.raises(ValueError):
        GateParams(start_db=3, stop_db=6)
    with pytest.raises(ValueError):
        GateParams(min_duration=2, max_duration=1)
    with pytest.raises(ValueError):
        GateParams(split_db=0)
    with pytest.raises(ValueError):
        GateParams(release_db=-3)


def test_sequence_grouper_splits_on_long_pauses():
    grouper = SequenceGrouper(gap=1.0)
    done = []
    for digit, start, end in [("3", 0.0, 0.4), ("7", 0.9, 1.3), ("1", 1.8, 2.2), ("9", 4.0, 4.4)]:
        done += grouper.add(digit, start, end)
    assert [[d for d, _, _ in g] for g in done] == [["3", "7", "1"]]
    assert grouper.advance(5.0) == []
    assert [[d for d, _, _ in g] for g in grouper.advance(5.5)] == [["9"]]
    assert grouper.flush() == []


def test_zeros_before_the_first_sound_are_no_noise_floor():
    # A device (or a JACK port) that delivers digital silence while it starts, then its noise
    # floor at -50 dBFS, then a word: the floor comes from the noise, not from the zeros, so the
    # noise is not taken for one long sound and dropped with the word inside it.
    # The noise starts 7.5 ms into a 10 ms frame, so the frames at its edge measure part silence.
    noise = np.random.default_rng(2).normal(0, 10 ** (-50 / 20), 3 * RATE)
    word = signal([(1.0, 0.4, -25)], 3.0) - signal([], 3.0)
    x = np.concatenate([np.zeros(RATE // 2 + 60), noise + word]).astype(np.float32)
    assert [round(u.start, 1) for u in segment(x, 512)] == [round(0.5 + 1.0 - GateParams().pre_roll, 1)]


def test_a_word_right_after_digital_silence_is_measured_against_the_quiet_after_it():
    # A clip padded with zeros (an edited file, a synthesiser's output): its first 0.25 s are a
    # steady vowel, so a floor from them alone hides the whole word. The hold goes on until the
    # held frames span peak_drop_db (here: the zeros after the word), then the word is found whole.
    bursts = [(0.5, 0.3, -25), (0.8, 0.15, -45)]  # a vowel and a weak ending 20 dB below it
    x = (signal(bursts, 1.5) - signal([], 1.5)).astype(np.float32)
    utterances = segment(x, 512)
    assert [round(u.start, 2) for u in utterances] == [0.5 - GateParams().pre_roll]
    assert utterances[0].end == pytest.approx(0.95 + GateParams().tail, abs=0.02)
    assert segment(x, 512, gate=GateParams(max_duration=0.2)) == []  # a hold shorter than the word


def test_speech_ends_when_far_below_its_own_peak_even_over_digital_silence():
    # Two words, the first with a faint tail (about 40 dB below its peak) that lasts until
    # the second starts, over digital silence: the floor (-120 dB) would join them into one,
    # the offset relative to the word's own peak splits them.
    bursts = [(0.2, 0.1, -62), (1.0, 0.3, -20), (1.3, 0.45, -62), (1.75, 0.3, -20)]
    x = signal(bursts, 3.0) - signal([], 3.0)  # the same seed: the bursts without the noise
    # (the first faint sound starts the stream, so the zeros are the floor from then on)
    pre_roll = GateParams().pre_roll
    assert [round(u.start, 2) for u in segment(x, 512)] == [round(1.0 - pre_roll, 2), round(1.75 - pre_roll, 2)]
    assert len(segment(x, 512, gate=GateParams(peak_drop_db=99, split_db=None))) == 1


def test_a_quiet_closure_inside_a_word_does_not_end_it():
    # A slow, clean "six": vowel, a closure 33 dB below it for longer than the hang-over, then
    # "ks" 8 dB below the vowel, over digital silence. One word, not "si" and a "ks" of its own.
    bursts = [(0.2, 0.1, -62), (1.0, 0.25, -20), (1.25, 0.14, -53), (1.39, 0.12, -28)]
    x = signal(bursts, 3.0) - signal([], 3.0)
    assert [round(u.start, 2) for u in segment(x, 512)] == [round(1.0 - GateParams().pre_roll, 2)]
    assert len(segment(x, 512, gate=GateParams(peak_drop_db=30))) == 2


def test_the_release_of_a_stop_after_a_long_closure_is_no_word_of_its_own():
    # A slow, clean "eight": vowel, then 0.15 s of silence (longer than the 0.12 s hang-over), then
    # the burst of its "t" 26 dB below the vowel (HD-EN's 8_hd01_23 ends so, and was heard as "8 6").
    vowel, burst = (1.0, 0.3, -22), (1.45, 0.12, -48)
    x = signal([(0.2, 0.1, -62), vowel, burst], 3.0) - signal([], 3.0)
    assert [round(u.start, 2) for u in segment(x, 512)] == [round(1.0 - GateParams().pre_roll, 2)]
    assert len(segment(x, 512, gate=GateParams(release_db=None))) == 2
    # a word at a natural pace is kept: not so far below the word before, or not so soon after it
    level = signal([(0.2, 0.1, -62), vowel, (1.45, 0.12, -34)], 3.0) - signal([], 3.0)
    late = signal([(0.2, 0.1, -62), vowel, (1.7, 0.12, -48)], 3.0) - signal([], 3.0)
    assert len(segment(level, 512)) == 2 and len(segment(late, 512)) == 2
    # a second release right after the first is dropped too; the next word is measured as usual
    twice = signal([(0.2, 0.1, -62), vowel, burst, (1.75, 0.1, -48), (2.4, 0.3, -24)], 3.5)
    twice -= signal([], 3.5)
    assert [round(u.start, 2) for u in segment(twice, 512)] == [round(t - GateParams().pre_roll, 2) for t in (1.0, 2.4)]


def test_webrtc_vad_finds_the_bursts_block_size_invariantly():
    pytest.importorskip("webrtcvad")
    gate = GateParams(vad="webrtc")
    x = signal(BURSTS, 6.0)
    utterances = segment(x, 400, gate=gate)
    assert len(utterances) == len(BURSTS)
    for u, (start, length, _) in zip(utterances, BURSTS):
        assert start - 0.2 <= u.start <= start and start + length - 0.1 <= u.end <= start + length + 0.25
    assert [(u.start, u.end) for u in segment(x, 1234, gate=gate)] == [(u.start, u.end) for u in utterances]
    assert segment(signal([], 4.0), 512, gate=gate) == []


def rumble(seconds: float, dbfs: float, seed: int = 1) -> np.ndarray:
    """Brown noise (energy below a few hundred Hz) at ``dbfs`` RMS, drift below ~20 Hz removed."""
    walk = np.cumsum(np.random.default_rng(seed).normal(0, 1, int(seconds * RATE)))
    walk -= np.convolve(walk, np.ones(401) / 401, mode="same")
    return (walk * 10 ** (dbfs / 20) / np.std(walk)).astype(np.float32)


def hum(seconds: float, dbfs: float) -> np.ndarray:
    """50 Hz mains hum with weaker 150 and 250 Hz harmonics at ``dbfs`` RMS."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = np.sin(2 * np.pi * 50 * t) + 0.3 * np.sin(2 * np.pi * 150 * t) + 0.1 * np.sin(2 * np.pi * 250 * t)
    return (x * 10 ** (dbfs / 20) / np.std(x)).astype(np.float32)


QUIET_BURSTS = [(1.0, 0.4, -45), (2.0, 0.3, -45), (3.0, 0.5, -45), (4.2, 0.35, -45)]


@pytest.mark.parametrize("background", ["rumble", "hum"])
def test_low_frequency_noise_and_hum_do_not_blind_the_gate(background):
    # Bursts 10-15 dB below the background's total level are still found: their energy is
    # in the speech band, the background's is not. Full-band energy finds none of them.
    extra = rumble(6.0, -35) if background == "rumble" else hum(6.0, -30)
    x = signal(QUIET_BURSTS, 6.0) + extra
    found = segment(x, 512)
    assert len(found) == len(QUIET_BURSTS)
    assert all(abs(u.start + GateParams().pre_roll - s) <= 0.1 for u, (s, _, _) in zip(found, QUIET_BURSTS))
    assert segment(x, 512, gate=GateParams(band=None)) == []
    assert segment(signal([], 6.0) + extra, 512) == []


def test_a_quiet_speaker_is_found():
    # Speech at -53 dBFS RMS (peaks under -38 dBFS, like FSDD's quietest speaker) over -65 dBFS hiss.
    x = signal([(s, n, -53) for s, n, _ in QUIET_BURSTS], 6.0) - signal([], 6.0)
    x += np.random.default_rng(5).normal(0, 10 ** (-65 / 20), len(x)).astype(np.float32)
    assert 20 * np.log10(np.abs(x).max()) < -38
    assert len(segment(x, 512)) == len(QUIET_BURSTS)
