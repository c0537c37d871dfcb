"""The microphone source against a scripted PortAudio (a fake sounddevice module): rate
fallback, "no audio yet" told apart from a stall, drop and overflow counters."""

from __future__ import annotations

import sys
import threading
import time
import types

import numpy as np
import pytest
from audiomnist_edge import sources
from audiomnist_edge.sources import DeviceError, Microphone


class FakeStatus:
    def __init__(self, overflow: bool) -> None:
        self.input_overflow = overflow


def fake_sounddevice(rates: set[int], default_rate: int, script: list[tuple[float, bool]]) -> types.ModuleType:
    """A sounddevice stand-in: one input device that takes ``rates``; once started, its stream
    calls back per ``script`` entry (delay in s before the block, overflow flag), then goes quiet."""
    sd = types.ModuleType("sounddevice")

    class PortAudioError(Exception):
        pass

    def query_devices(spec=None, kind=None):
        return {"name": "Fake Mic", "max_input_channels": 2, "default_samplerate": default_rate,
                "index": 0, "hostapi": 0}

    def check_input_settings(device=None, channels=None, samplerate=None, dtype=None):
        if samplerate not in rates:
            raise PortAudioError(f"Invalid sample rate {samplerate}")

    class InputStream:
        def __init__(self, device, samplerate, channels, dtype, blocksize, callback, finished_callback):
            self.samplerate, self.blocksize, self.channels = samplerate, blocksize, channels
            self.callback, self.active = callback, False

        def start(self):
            self.active = True
            threading.Thread(target=self._run, daemon=True).start()

        def _run(self):
            for delay, overflow in script:
                time.sleep(delay)
                if not self.active:
                    return
                block = np.full((self.blocksize, self.channels), 0.01, dtype=np.float32)
                self.callback(block, self.blocksize, None, FakeStatus(overflow))

        def abort(self, ignore_errors=True):
            self.active = False

        def close(self, ignore_errors=True):
            self.active = False

    sd.PortAudioError = PortAudioError
    sd.query_devices, sd.check_input_settings, sd.InputStream = query_devices, check_input_settings, InputStream
    return sd


@pytest.fixture
def install(monkeypatch):
    def put(sd: types.ModuleType) -> None:
        monkeypatch.setitem(sys.modules, "sounddevice", sd)
    return put


def test_a_device_refusing_the_model_rate_is_opened_at_its_own(install):
    install(fake_sounddevice({44100}, 44100, [(0.0, False)]))
    mic = Microphone(None, None, 8000, 1)
    assert mic.rate == 44100
    with mic:
        block, _ = next(mic.blocks())
    assert len(block) == round(0.05 * 44100)


def test_a_block_in_samples_counts_at_the_rate_the_device_was_opened_at(install):
    install(fake_sounddevice({44100}, 44100, [(0.0, False)]))
    with Microphone(None, None, 8000, 1, 1024) as mic:
        block, _ = next(mic.blocks())
    assert len(block) == 1024


def test_the_model_rate_is_used_when_the_device_takes_it(install):
    install(fake_sounddevice({8000, 44100}, 44100, []))
    assert Microphone(None, None, 8000, 1).rate == 8000


def test_a_forced_rate_the_device_refuses_is_one_clear_error(install):
    install(fake_sounddevice({44100}, 44100, []))
    with pytest.raises(DeviceError, match="refuses 16000 Hz"):
        Microphone(None, 16000, 8000, 1)


def test_no_audio_at_start_is_told_apart_from_a_stall(install, monkeypatch):
    monkeypatch.setattr(sources, "START_SECONDS", 0.6)
    monkeypatch.setattr(sources, "STALL_SECONDS", 0.4)
    install(fake_sounddevice({8000}, 8000, []))
    with Microphone(None, None, 8000, 1) as mic, pytest.raises(DeviceError, match="no audio yet"):
        next(mic.blocks())
    install(fake_sounddevice({8000}, 8000, [(0.0, False), (0.0, False)]))
    with Microphone(None, None, 8000, 1) as mic, pytest.raises(DeviceError, match="stalled"):
        for _ in mic.blocks():
            pass


def test_time_spent_suspended_is_no_stall(install, monkeypatch):
    # Ctrl-Z then fg, or a laptop's sleep: the clock jumps while nothing runs, then the device's
    # backlog arrives. The worker's first look after waking must not take the jump for silence.
    monkeypatch.setattr(sources, "STALL_SECONDS", 0.8)
    start = time.perf_counter()

    def clock() -> float:  # 10 s pass "asleep" 0.3 s after the start
        now = time.perf_counter()
        return now + (10.0 if now - start > 0.3 else 0.0)

    monkeypatch.setattr(sources, "time", types.SimpleNamespace(perf_counter=clock))
    install(fake_sounddevice({8000}, 8000, [(0.0, False), (0.5, False), (0.0, False)]))
    with Microphone(None, None, 8000, 1) as mic:
        blocks = mic.blocks()
        got = [next(blocks) for _ in range(3)]
    assert len(got) == 3


def test_a_slow_first_block_is_waited_for(install, monkeypatch):
    monkeypatch.setattr(sources, "STALL_SECONDS", 0.3)  # a server that needs longer than a stall to start
    install(fake_sounddevice({8000}, 8000, [(0.8, False)]))
    with Microphone(None, None, 8000, 1) as mic:
        block, _ = next(mic.blocks())
    assert len(block) == 400


def test_overflows_and_drops_are_counted_and_reported(install, monkeypatch):
    monkeypatch.setattr(sources, "QUEUE_BLOCKS", 3)
    install(fake_sounddevice({8000}, 8000, [(0.0, True)] + [(0.0, False)] * 9))
    warnings: list[str] = []
    with Microphone(None, None, 8000, 1, warn=warnings.append) as mic:
        time.sleep(0.3)  # the worker is late: the queue (3 blocks) fills, 7 blocks are dropped
        blocks = mic.blocks()
        got = [next(blocks) for _ in range(3)]
    assert (mic.overflows, mic.dropped) == (1, 7) and len(got) == 3
    assert warnings == ["7 blocks dropped (worker too slow), 1 input overflows so far"]
