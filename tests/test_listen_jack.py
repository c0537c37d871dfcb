"""The rate fallback and a hung sound server, through a real audio stack: JACK -> PortAudio -> listen.

Each test starts a private JACK server (its own name; the dummy backend, so no
sound card) that runs at 48 kHz only, so PortAudio's JACK device refuses the
model's 8 kHz. ``listen`` without --samplerate must say so, capture at 48 kHz
and resample, while sndfile-jackplay plays a stream of FSDD test clips into its
input port. Needs the Debian packages jackd2 and sndfile-tools (``.ci/run``
installs them) and a PortAudio built with JACK (Debian's libportaudio2 is). A
frozen server (SIGSTOP) stands for a sound server that hangs: listen must end
with its "stalled" error instead of waiting on it. A frozen listen is the
opposite fault: JACK runs on without it, an xrun that PortAudio reports as an
input overflow (PulseAudio cannot show one: see test_listen_pulse_faults.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from conftest import require

from audiomnist_edge.resample import resample
from benchmarks.pulse import stop
from audiomnist_edge.wav import read_wav, write_wav
from test_listen import CLI, NOISE_DBFS, listen_json, plumbing_model  # noqa: F401 (fixture)

JACK_RATE = 48000  # the server's only rate
PERIOD = 1024  # frames per JACK cycle
DEVICE = "JACK Audio"  # PortAudio's JACK device ("system, JACK Audio Connection Kit"); not ALSA's "jack" PCM
LEAD_IN = 0.5  # seconds of noise before the first digit (see played_stream)


@pytest.fixture(scope="module", autouse=True)
def audio_stack():
    missing = [tool for tool in ("jackd", "jack_wait", "jack_lsp", "sndfile-jackplay") if shutil.which(tool) is None]
    require(not missing, f"missing {', '.join(missing)}: apt-get install jackd2 sndfile-tools")


@contextlib.contextmanager
def jack_server(log: Path) -> Iterator[tuple[dict[str, str], subprocess.Popen]]:
    """A private JACK server at JACK_RATE (dummy backend); yields the environment its clients need
    and the server process."""
    name = f"audiomnist-edge-{os.getpid()}-{secrets.token_hex(4)}"
    env = {**os.environ, "JACK_DEFAULT_SERVER": name}
    server = subprocess.Popen(["jackd", "--name", name, "--no-realtime", "-d", "dummy", "-r", str(JACK_RATE),
                               "-p", str(PERIOD)], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        started = subprocess.run(["jack_wait", "--server", name, "--wait", "--timeout", "15"], env=env,
                                 capture_output=True, timeout=30)
        if started.returncode != 0 or server.poll() is not None:
            pytest.fail(f"jackd did not start: {log.read_text()[-500:]}")
        yield env, server
    finally:
        stop(server)


def played_stream(clips: list[Path], out: Path, n_digits: int, seed: int) -> tuple[Path, list[str]]:
    """A 48 kHz WAV of n_digits FSDD clips, 0.4-0.9 s apart, over white noise; and their digits.

    Until the player connects, listen's input port carries digital silence; the
    gate's floor comes from the noise that follows it, not from the zeros, so a
    short LEAD_IN of noise before the first digit is enough (before that rule,
    1.7 s lost the first digit in a sound taken for one long noise).
    """
    rng = np.random.default_rng(seed)
    chosen = [clips[i] for i in rng.choice(len(clips), n_digits, replace=False)]
    parts = [np.zeros(int(LEAD_IN * 8000), np.float32)]
    for clip in chosen:
        samples, rate = read_wav(clip)
        assert rate == 8000
        parts += [samples, np.zeros(int(rng.uniform(0.4, 0.9) * rate), np.float32)]
    parts.append(np.zeros(8000, np.float32))  # one second of noise after the last gap
    stream = np.concatenate(parts)
    stream += rng.normal(0, 10 ** (NOISE_DBFS / 20), len(stream)).astype(np.float32)
    write_wav(out, resample(stream, 8000, JACK_RATE), JACK_RATE)
    return out, [clip.name[0] for clip in chosen]


def listen_port(env: dict[str, str]) -> str:
    """The input port PortAudio registered for listen (e.g. ``PortAudio:in_0``)."""
    listed = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True, timeout=10).stdout.split()
    ports = [p for p in listed if p.startswith("PortAudio") and ":in_" in p]
    assert len(ports) == 1, listed
    return ports[0]


@contextlib.contextmanager
def listening(model: Path, env: dict[str, str], log: Path, *options: str) -> Iterator[subprocess.Popen]:
    """``listen --device DEVICE`` in the background (stdout piped), once it says it is listening;
    killed on the way out if it is still running."""
    listener = subprocess.Popen([*CLI, "listen", "--device", DEVICE, *options, "--model", str(model)],
                                env=env, stdout=subprocess.PIPE, stderr=log.open("wb"))
    try:
        deadline = time.monotonic() + 60
        while "listening on" not in log.read_text():
            if listener.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"listen did not start: {log.read_text()}")
            time.sleep(0.1)
        yield listener
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()


def play_then_stop(listener: subprocess.Popen, env: dict[str, str], stream: Path) -> list[dict]:
    """Play ``stream`` into listen's input port, then stop listen with SIGTERM; the JSON lines it printed."""
    subprocess.run(["sndfile-jackplay", f"--autoconnect={listen_port(env)}", str(stream)], env=env,
                   stdout=subprocess.DEVNULL, check=True, timeout=60)
    time.sleep(0.5)  # the last hang-over
    listener.send_signal(signal.SIGTERM)
    out, _ = listener.communicate(timeout=20)
    return [json.loads(line) for line in out.decode().splitlines()]


def test_a_device_refusing_the_model_rate_hears_the_same_digits_as_the_file(
        fsdd_test_clips, plumbing_model, tmp_path):  # noqa: F811 (the fixture imported above)
    stream, digits = played_stream(fsdd_test_clips, tmp_path / "stream.wav", 5, seed=3)
    from_file = listen_json(plumbing_model, "--input", str(stream))
    log = tmp_path / "listen.log"
    with jack_server(tmp_path / "jackd.log") as (env, _):
        with listening(plumbing_model, env, log, "--json") as listener:
            heard = play_then_stop(listener, env, stream)
    text = log.read_text()
    assert listener.returncode == 0, text
    assert "refuses the model's 8000 Hz: capturing at 48000 Hz and resampling" in text, text
    assert "at 48000 Hz (model 8000 Hz)" in text
    assert "stopped by SIGTERM" in text and "0 blocks dropped" in text and "Traceback" not in text
    assert len(heard) == len(from_file) == len(digits), (heard, from_file, digits)
    # The same utterances, shifted by however long listen waited before the player started. The
    # shift also moves the 10 ms frame grid within the speech, which can move where an utterance
    # ends (its last dip; 0.14 s seen) and flip one borderline decision.
    offset = float(np.median([h["start"] - f["start"] for h, f in zip(heard, from_file)]))
    assert all(abs(h["start"] - f["start"] - offset) < 0.1 and abs(h["end"] - f["end"] - offset) < 0.2
               for h, f in zip(heard, from_file)), (offset, heard, from_file)
    same = sum(h["label"] == f["label"] for h, f in zip(heard, from_file))
    assert same >= len(heard) - 1, ([h["label"] for h in heard], [f["label"] for f in from_file])


def test_a_sound_server_that_stops_delivering_is_a_stall_not_a_hang(plumbing_model, tmp_path):  # noqa: F811
    # The JACK server is frozen (SIGSTOP) after listen has started: no more blocks arrive, and
    # listen must end with one "stalled" line and exit 1 within a few seconds, not wait forever.
    log = tmp_path / "listen.log"
    with jack_server(tmp_path / "jackd.log") as (env, server):
        with listening(plumbing_model, env, log) as listener:
            time.sleep(1.0)  # blocks (digital silence) have been arriving
            server.send_signal(signal.SIGSTOP)
            frozen = time.monotonic()
            try:
                listener.wait(timeout=30)
            finally:
                server.send_signal(signal.SIGCONT)
            waited = time.monotonic() - frozen
    text = log.read_text()
    assert listener.returncode == 1, text
    assert "stalled: no audio for 2 s after it had started" in text, text
    assert "Traceback" not in text
    assert waited < 10, waited


def test_a_frozen_listener_counts_an_input_overflow_and_hears_what_follows(
        fsdd_test_clips, plumbing_model, tmp_path):  # noqa: F811
    # listen is frozen (SIGSTOP) for less than a stall: JACK's cycles go on without it, and the
    # server's xrun reaches PortAudio as paInputOverflow. PortAudio 19.6 hands a JACK cycle's flags
    # to the callback only if that cycle completes a block (the next cycle's flags replace them):
    # with 50 ms blocks at 48 kHz, 2 of 4 frozen runs reported no overflow. With blocks of one JACK
    # period every cycle completes one, so the overflow is always seen (--block counts samples at
    # the rate the device was opened at: JACK's 48 kHz, the model's 8 kHz being refused).
    stream, digits = played_stream(fsdd_test_clips, tmp_path / "stream.wav", 1, seed=5)
    from_file = listen_json(plumbing_model, "--input", str(stream))
    log = tmp_path / "listen.log"
    with jack_server(tmp_path / "jackd.log") as (env, _):
        with listening(plumbing_model, env, log, "--block", str(PERIOD), "--json") as listener:
            time.sleep(0.5)
            listener.send_signal(signal.SIGSTOP)
            time.sleep(1.0)  # under STALL_SECONDS
            listener.send_signal(signal.SIGCONT)
            heard = play_then_stop(listener, env, stream)
    text = log.read_text()
    assert listener.returncode == 0, text
    assert "stopped by SIGTERM" in text and "Traceback" not in text
    warning = r"^warning: 0 blocks dropped \(worker too slow\), [1-9]\d* input overflows so far$"
    assert re.search(warning, text, re.M), text
    assert re.search(r", 0 blocks dropped, [1-9]\d* overflows$", text.splitlines()[-1]), text
    # Still listening after the overflow: the digit played after the freeze is heard, as from the file.
    assert [h["label"] for h in heard] == [f["label"] for f in from_file] and len(heard) == len(digits), (
        heard, from_file, digits)
