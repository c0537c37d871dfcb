"""The microphone path through a real audio stack: PulseAudio -> ALSA -> PortAudio -> listen.

Each test starts its own PulseAudio daemon (an ordinary per-user server with its
own XDG_RUNTIME_DIR) with a null sink whose monitor is the default source. The
test plays a stream into the sink with paplay, and ``listen --device pulse``
captures the monitor through sounddevice. Needs the Debian packages pulseaudio,
pulseaudio-utils, libportaudio2 and libasound2-plugins (``.ci/run`` installs them).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from conftest import require

from benchmarks.pulse import private_daemon
from test_listen import CLI, build_stream, listen_json, plumbing_model  # noqa: F401 (fixture)

CAPTURE_RATE = 16000  # the sink's rate, and the rate listen captures at (resampled to the model's)


@pytest.fixture(scope="module", autouse=True)
def audio_stack():
    missing = [tool for tool in ("pulseaudio", "paplay", "pactl") if shutil.which(tool) is None]
    require(not missing, f"missing {', '.join(missing)}: apt-get install pulseaudio pulseaudio-utils")


@contextlib.contextmanager
def pulse_server() -> Iterator[tuple[dict[str, str], subprocess.Popen]]:
    """A private PulseAudio daemon (benchmarks/pulse.py); yields (client environment, daemon)."""
    try:
        with private_daemon(CAPTURE_RATE) as (env, daemon):
            yield env, daemon
    except RuntimeError as exc:  # the daemon did not start (or a RuntimeError in the test)
        pytest.fail(str(exc))


def start_listen(model: Path, env: dict[str, str], log: Path,
                 rate: list[str] = ["--samplerate", str(CAPTURE_RATE)]) -> subprocess.Popen:  # noqa: B006
    """``listen --device pulse --json`` in the background, once it reports it is listening."""
    process = subprocess.Popen(
        [*CLI, "listen", "--device", "pulse", *rate, "--json", "--model", str(model)],
        env=env, stdout=subprocess.PIPE, stderr=log.open("wb"))
    deadline = time.monotonic() + 60
    while "listening on" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"listen did not start: {log.read_text()}")
        time.sleep(0.1)
    return process


@pytest.mark.parametrize("rate", [["--samplerate", str(CAPTURE_RATE)], []], ids=["16k", "default"])
def test_microphone_hears_the_same_digits_as_the_file(fsdd_test_clips, plumbing_model, tmp_path, rate):
    stream = build_stream(fsdd_test_clips, tmp_path / "stream.wav", 10, seed=1)
    from_file = listen_json(plumbing_model, "--input", str(stream.path))
    with pulse_server() as (env, _):
        listener = start_listen(plumbing_model, env, tmp_path / "listen.log", rate)
        subprocess.run(["paplay", str(stream.path)], env=env, check=True, timeout=120)
        time.sleep(1.0)  # the last hang-over
        listener.send_signal(signal.SIGTERM)
        out, _ = listener.communicate(timeout=20)
    log = (tmp_path / "listen.log").read_text()
    assert listener.returncode == 0, log
    assert "stopped by SIGTERM" in log and "Traceback" not in log
    assert "0 blocks dropped" in log
    assert f"at {rate[1] if rate else 8000} Hz" in log  # without --samplerate: the model's rate
    heard = [json.loads(line) for line in out.decode().splitlines()]
    assert len(heard) == len(from_file) == len(stream.digits), (heard, from_file)
    # The same utterances, shifted by however long listen waited before paplay started.
    offset = heard[0]["start"] - from_file[0]["start"]
    assert all(abs(h["start"] - f["start"] - offset) < 0.1 and abs(h["end"] - f["end"] - offset) < 0.1
               for h, f in zip(heard, from_file)), (heard, from_file)
    # Two resamplings and 16-bit PCM in between: at most one borderline decision may differ.
    same = sum(h["label"] == f["label"] for h, f in zip(heard, from_file))
    assert same >= len(heard) - 1, ([h["label"] for h in heard], [f["label"] for f in from_file])


def test_losing_the_device_mid_stream_is_a_clear_error(plumbing_model, tmp_path):
    with pulse_server() as (env, daemon):
        listener = start_listen(plumbing_model, env, tmp_path / "listen.log")
        time.sleep(0.5)
        daemon.terminate()  # the sound server goes away, as an unplugged device does
        daemon.wait(timeout=10)
        try:
            listener.wait(timeout=20)
        except subprocess.TimeoutExpired:
            listener.kill()
            pytest.fail("listen hung after its device went away")
    log = (tmp_path / "listen.log").read_text()
    assert listener.returncode == 1, log
    assert "error:" in log.splitlines()[-1] and "Traceback" not in log


def test_no_sound_server_means_no_device(plumbing_model, tmp_path):
    env = {**os.environ, "PULSE_SERVER": f"unix:{tmp_path}/nothing", "XDG_RUNTIME_DIR": str(tmp_path)}
    result = subprocess.run([*CLI, "listen", "--device", "pulse", "--model", str(plumbing_model)],
                            env=env, capture_output=True, timeout=60)
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 1
    assert lines[-1].startswith("error: ") and "Traceback" not in result.stderr.decode()


def test_latency_benchmark_through_pulseaudio(fsdd):
    """docs/listening.md's PulseAudio latency row: its command runs and hears every digit."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.listen_latency", "--device", "pulse",
                             "--private-pulse", "--digits", "4", "--data", str(fsdd), "--json"],
                            cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["mode"] == "device pulse" and figures["detections"] == figures["digits_spoken"] == 4
    assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["max"]


def test_idle_cpu_benchmark_through_pulseaudio():
    """docs/listening.md's PulseAudio CPU row: its command runs on a private server and hears nothing."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.listen_idle_cpu", "--device", "pulse",
                             "--rate", "16000", "--private-pulse", "--seconds", "5", "--warmup", "1", "--json"],
                            cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert (figures["source"], figures["rate"], figures["detections"]) == ("pulse", 16000, 0)
    assert figures["cpu_percent_of_one_core"] >= 0 and figures["rss_kib_end"] > 10_000


def test_stream_benchmark_through_pulseaudio(fsdd, tmp_path):
    """docs/listening.md's PulseAudio stream row: on a short FSDD stream both paths decide every utterance alike."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.pulse_stream", "--digits", "3", "--fsdd", str(fsdd),
                             "--hd-en", str(tmp_path / "no-hd-en"), "--out", str(tmp_path)],
                            cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "pulse-stream.json").read_text())
    (row,) = figures["streams"].values()
    assert row["capture"] == {"device": "pulse", "rate": 8000, "blocks_dropped": 0, "overflows": 0}
    assert row["input"]["digits"] == row["pulse"]["digits"] == len(row["truth"]) == 3
    assert row["utterances"]["paired"] == row["utterances"]["utterances"] >= 3, row["utterances"]
    assert row["utterances"]["max_boundary_shift_ms"] < 100
    assert row["pulse_digits"] == row["input_digits"] and row["points"] == 0 and figures["met"]
    assert "**met**" in (tmp_path / "pulse-stream.md").read_text()


def test_stream_benchmark_aligns_the_clocks_without_the_first_utterance():
    from audiomnist_edge.recognizer import Detection

    from benchmarks.pulse_stream import clock_offset

    def found(starts: list[float]) -> list[Detection]:
        return [Detection(s, s + 0.4, "1", "1", 0.9, 1.0, 100.0, False) for s in starts]

    reference = [1.0, 1.6, 2.5, 3.1, 4.0]
    heard = found([1.234 + s for s in reference[1:]] + [6.0])  # the first missed, a late extra
    assert clock_offset(heard, found(reference)) == pytest.approx(1.234)
    assert clock_offset([], found(reference)) == 0.0
