"""Faults of the microphone path through a real PulseAudio stack (see test_listen_pulse.py).

What this stack does, found by experiment on Debian's PulseAudio 16.1, libasound2-plugins 1.2.7.1
and PortAudio 19.6:

* A listen process frozen (SIGSTOP) loses nothing and reports no overflow: the server keeps up to
  4 MiB of a record stream (the ALSA plugin's maxlength; 65 s at 16 kHz float32) and the backlog
  arrives on SIGCONT. When more than that piles up, the server drops audio silently: the plugin's
  capture side never enters the XRUN state, so PortAudio never sets paInputOverflow (a 6 s freeze
  at 48 kHz on 8 channels lost 1.7 s with 0 overflows). Overflows are counted through JACK instead
  (test_listen_jack.py).
* Blocks are dropped when the worker falls behind the queue: counted, and said in a warning.
* A module-pipe-source whose FIFO nobody writes to opens, starts and delivers nothing at all (no
  silence): "delivered no audio yet". When its writer stops, the blocks stop: "stalled".
"""

from __future__ import annotations

import contextlib
import json
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from test_listen import listen_json, plumbing_model  # noqa: F401 (fixture)
from test_listen_jack import played_stream
from test_listen_pulse import CAPTURE_RATE, audio_stack, pulse_server, start_listen  # noqa: F401 (fixture)

from audiomnist_edge.sources import START_SECONDS, STALL_SECONDS

SLOW_MICROPHONE = Path(__file__).with_name("slow_microphone.py")


@contextlib.contextmanager
def silent_source() -> Iterator[tuple[dict[str, str], Path]]:
    """A private PulseAudio server whose default source reads a FIFO (module-pipe-source) that
    nothing writes to yet; yields the client environment and the FIFO."""
    with pulse_server() as (env, _):
        fifo = Path(env["XDG_RUNTIME_DIR"]) / "microphone"
        for command in (
            [
                "load-module",
                "module-pipe-source",
                "source_name=fifo",
                f"file={fifo}",
                f"rate={CAPTURE_RATE}",
                "channels=1",
                "format=s16le",
            ],
            ["set-default-source", "fifo"],
        ):
            subprocess.run(["pactl", *command], env=env, check=True, capture_output=True, timeout=10)
        yield env, fifo


def ended(listener: subprocess.Popen, timeout: float) -> float:
    """Seconds until listen exits by itself; fails the test (and kills listen) after ``timeout``."""
    started = time.monotonic()
    try:
        listener.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        listener.kill()
        listener.wait()
        pytest.fail(f"listen still running {timeout:.0f} s later")
    return time.monotonic() - started


def test_a_listener_frozen_for_a_second_loses_nothing(fsdd_test_clips, plumbing_model, tmp_path):  # noqa: F811
    # Frozen once it has heard the first digit (audio is flowing: through PulseAudio the first block
    # comes a second or two after "listening on"), for less than a stall, listen gets the second
    # digit as a backlog when it runs again: no block dropped, no overflow, both digits heard in place.
    stream, digits = played_stream(fsdd_test_clips, tmp_path / "stream.wav", 2, seed=3)
    from_file = listen_json(plumbing_model, "--input", str(stream))
    log = tmp_path / "listen.log"
    with pulse_server() as (env, _):
        listener = start_listen(plumbing_model, env, log)
        player = subprocess.Popen(["paplay", str(stream)], env=env)
        if not select.select([listener.stdout], [], [], 30)[0]:
            listener.kill()
            pytest.fail(f"listen heard no first digit: {log.read_text()}")
        first = listener.stdout.readline()
        listener.send_signal(signal.SIGSTOP)
        time.sleep(1.0)
        listener.send_signal(signal.SIGCONT)
        assert player.wait(timeout=60) == 0
        time.sleep(1.0)  # the last hang-over
        listener.send_signal(signal.SIGTERM)
        rest, _ = listener.communicate(timeout=20)
    text = log.read_text()
    assert listener.returncode == 0, text
    assert "stopped by SIGTERM" in text and "warning" not in text and "Traceback" not in text
    assert text.splitlines()[-1].endswith(", 0 blocks dropped, 0 overflows"), text
    heard = [json.loads(line) for line in (first + rest).decode().splitlines()]
    assert [h["label"] for h in heard] == [f["label"] for f in from_file] and len(heard) == len(digits), (
        heard,
        from_file,
        digits,
    )
    shifts = [h["start"] - f["start"] for h, f in zip(heard, from_file)]
    assert max(shifts) - min(shifts) < 0.1, (heard, from_file)  # no audio lost between the digits


def test_a_worker_slower_than_the_queue_drops_blocks_and_says_so():
    with pulse_server() as (env, _):
        result = subprocess.run(
            [sys.executable, str(SLOW_MICROPHONE), "pulse", str(CAPTURE_RATE)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert counts["dropped"] > 0 and counts["overflows"] == 0, counts
    assert counts["warnings"] and counts["warnings"][-1] == (
        f"{counts['dropped']} blocks dropped (worker too slow), 0 input overflows so far"
    ), counts


def test_a_source_that_never_delivers_is_no_audio_yet_not_a_stall(plumbing_model, tmp_path):  # noqa: F811
    log = tmp_path / "listen.log"
    with silent_source() as (env, _):
        listener = start_listen(plumbing_model, env, log)
        waited = ended(listener, START_SECONDS + 20)
    text = log.read_text()
    assert listener.returncode == 1, text
    assert text.splitlines()[-1] == (
        f"error: 'pulse' delivered no audio yet, {START_SECONDS:.0f} s after opening "
        "(is its sound server running? is the device in use?)"
    ), text
    assert "stalled" not in text and "Traceback" not in text
    assert START_SECONDS - 1 < waited, waited  # not a stall: that would have come after STALL_SECONDS


def test_a_source_that_stops_delivering_is_a_stall_not_no_audio(plumbing_model, tmp_path):  # noqa: F811
    log = tmp_path / "listen.log"
    chunk = np.random.default_rng(0).normal(0, 30, CAPTURE_RATE // 10).astype("<i2").tobytes()  # 0.1 s
    with silent_source() as (env, fifo):
        listener = start_listen(plumbing_model, env, log)
        with fifo.open("wb", buffering=0) as writer:
            for _ in range(10):  # a second of quiet noise, in real time; then nothing more
                writer.write(chunk)
                time.sleep(0.1)
        waited = ended(listener, STALL_SECONDS + 10)
    text = log.read_text()
    assert listener.returncode == 1, text
    assert text.splitlines()[-1] == (
        f"error: 'pulse' stalled: no audio for {STALL_SECONDS:.0f} s after it had started (unplugged?)"
    ), text
    assert "no audio yet" not in text and "Traceback" not in text
    assert waited < STALL_SECONDS + 5, waited
