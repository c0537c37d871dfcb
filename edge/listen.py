"""``audiomnist-edge listen``: recognise digits as they are spoken, continuously.

Options and printing only: sources (microphone, audio file, raw PCM on stdin)
live in ``sources.py``, the decision path (resample, segment, classify) in
``recognizer.py``, shared with ``predict``.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import sys
import time
from typing import Any

import click

from .interpreter import BACKENDS
from .model import Model
from .options import decision_options, finite
from .recognizer import Detection, Recognizer
from .sources import PCM_FORMATS, Blocks, DeviceError, Microphone, file_blocks, input_devices, pcm_blocks
from .stream import GateParams, SequenceGrouper
from .wav import AudioError


class Stopped(Exception):
    """Listening was asked to stop (Ctrl-C or SIGTERM); the message names the reason."""


# ---- output -----------------------------------------------------------------------------


def describe(detection: Detection, min_confidence: float) -> str:
    """One human line: time, digit (or unknown), confidence, latency."""
    if detection.digit is None and not detection.label.isdigit():
        what = f"?  not a digit ({detection.label} {detection.confidence:.2f})"
    elif detection.digit is None:
        what = f"?  unknown ({detection.label}? {detection.confidence:.2f} < {min_confidence:.2f})"
    else:
        what = f"{detection.digit}  ({detection.confidence:.2f})"
    return (
        f"{detection.start:8.2f}-{detection.end:.2f} s  {what}  "
        f"{detection.latency_ms:.1f} ms (+{detection.hangover_ms:.0f} ms hang-over)"
    )


def sequence_record(group: list[tuple[Detection, float, float]]) -> dict[str, Any]:
    """JSON record of a number: its digits ('?' for unknown), times and parts."""
    digits = [d for d, _, _ in group]
    return {
        "sequence": "".join(d.digit if d.digit is not None else "?" for d in digits),
        "start": round(group[0][1], 3),
        "end": round(group[-1][2], 3),
        "digits": [d.to_json() for d in digits],
    }


class Output:
    """Prints detections (or numbers with --sequence) and keeps bounded statistics."""

    def __init__(self, as_json: bool, sequence_gap: float | None, min_confidence: float) -> None:
        self.as_json = as_json
        self.min_confidence = min_confidence
        self.grouper = SequenceGrouper(sequence_gap) if sequence_gap is not None else None
        self.latencies: collections.deque[float] = collections.deque(maxlen=1000)
        self.digits = self.unknown = 0

    def detections(self, detections: list[Detection], settled: float) -> None:
        """Print new detections; with --sequence, numbers whose pause ended before ``settled``."""
        for detection in detections:
            self.latencies.append(detection.latency_ms)
            self.digits += detection.digit is not None
            self.unknown += detection.digit is None
            if self.grouper is None:
                self._emit(detection.to_json() if self.as_json else describe(detection, self.min_confidence))
            else:
                self._groups(self.grouper.add(detection, detection.start, detection.end))
        if self.grouper is not None:
            self._groups(self.grouper.advance(settled))

    def finish(self) -> None:
        if self.grouper is not None:
            self._groups(self.grouper.flush())

    def _groups(self, groups: list) -> None:
        for group in groups:
            record = sequence_record(group)
            self._emit(
                record
                if self.as_json
                else f"{record['start']:8.2f}-{record['end']:.2f} s  {' '.join(record['sequence'])}"
            )

    def _emit(self, item: dict[str, Any] | str) -> None:
        click.echo(json.dumps(item) if isinstance(item, dict) else item)
        sys.stdout.flush()


def run(blocks: Blocks, recognizer: Recognizer, output: Output, duration: float | None) -> None:
    """Feed blocks until the source ends (or ``duration`` seconds of audio); then finish."""
    for block, arrived in blocks:
        output.detections(recognizer.feed(block, arrived), recognizer.settled)
        if duration is not None and recognizer.stream_time >= duration:
            break
    output.detections(recognizer.finish(), float("inf"))
    output.finish()


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


# ---- the command ------------------------------------------------------------------------


@click.command()
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    help="Model file [default: the model packaged with audiomnist-edge].",
)
@click.option("--backend", type=click.Choice(list(BACKENDS)), help="Interpreter to use.")
@click.option(
    "--input",
    "input_path",
    metavar="FILE|-",
    help="Listen to a WAV file, or raw PCM on stdin ('-'), instead of a microphone.",
)
@click.option(
    "--device", help="Microphone: PortAudio device index or part of its name [default: the system's default input]."
)
@click.option("--list-devices", is_flag=True, help="List input devices and exit.")
@click.option(
    "--samplerate",
    type=click.IntRange(1000, 768000),
    help="Capture rate in Hz (microphone) or the rate of stdin PCM "
    "[default: the model's rate; a device that refuses it is opened at its own "
    "rate and resampled].",
)
@click.option(
    "--channels",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Channels to capture (or interleaved in stdin PCM); averaged to mono.",
)
@click.option(
    "--format",
    "pcm_format",
    type=click.Choice(list(PCM_FORMATS)),
    default="s16le",
    show_default=True,
    help="Sample format of raw PCM on stdin.",
)
@click.option("--block", type=click.IntRange(1, None), help="Samples per block at the source rate [default: 50 ms].")
@click.option("--realtime", is_flag=True, help="Play a WAV --input at its real speed [default: as fast as possible].")
@decision_options
@click.option(
    "--shifts",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="Average the model over this many sub-frame starts of each utterance "
    "(1: the exact decision `predict` makes for the same samples).",
)
@click.option(
    "--calibrate",
    type=click.FloatRange(0, 30),
    default=0.25,
    show_default=True,
    callback=finite,
    help="Seconds at the start held until their quietest 10 ms gives a first noise floor, then searched for "
    "speech (after digital silence held up to 1.5 s, until they span 36 dB, so a word right after it is found).",
)
@click.option(
    "--hangover",
    type=click.FloatRange(0.02, 2),
    default=GateParams().hangover,
    show_default=True,
    callback=finite,
    help="Seconds of quiet that end an utterance (added to every decision's delay).",
)
@click.option(
    "--vad",
    type=click.Choice(["energy", "webrtc"]),
    default="energy",
    show_default=True,
    help="How frames are judged: speech-band energy against the tracked noise floor, or "
    "WebRTC's classifier (needs the vad extra).",
)
@click.option("--sequence", is_flag=True, help="Print numbers: digits separated by pauses shorter than --sequence-gap.")
@click.option(
    "--sequence-gap",
    type=click.FloatRange(0.1, 30),
    default=1.0,
    show_default=True,
    callback=finite,
    help="Pause in seconds that ends a number (with --sequence).",
)
@click.option(
    "--duration",
    type=click.FloatRange(0, None, min_open=True),
    callback=finite,
    help="Stop after this many seconds of audio [default: run until stopped].",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON lines: start, end, digit (null if unknown), confidence, latency_ms, "
    "hangover_ms; with --sequence one line per number.",
)
def listen(
    model_path: str | None,
    backend: str | None,
    input_path: str | None,
    device: str | None,
    list_devices: bool,
    samplerate: int | None,
    channels: int,
    pcm_format: str,
    block: int | None,
    realtime: bool,
    min_confidence: float,
    unknown_at: float,
    background_db: float | None,
    shifts: int,
    calibrate: float,
    hangover: float,
    vad: str,
    sequence: bool,
    sequence_gap: float,
    duration: float | None,
    as_json: bool,
) -> None:
    """Recognise spoken digits continuously, from a microphone or a recording.

    Speech is found by an energy gate that tracks the noise floor; each
    utterance is classified as soon as HANGOVER seconds of quiet follow it. One
    line per digit: time in the stream, digit and confidence, and the latency
    from the end of the hang-over to the decision. Status and a summary go to
    stderr. Ctrl-C, SIGTERM or SIGHUP stops cleanly.

    \b
    Examples:
      audiomnist-edge listen                              # default microphone
      audiomnist-edge listen --list-devices
      audiomnist-edge listen --device USB --json          # first device named *USB*
      audiomnist-edge listen --sequence                   # "3 7 1 9" as one number
      audiomnist-edge listen --background-db 12           # ignore talk 12 dB below your digits
      audiomnist-edge listen --input talk.wav             # a recording, as fast as possible
      audiomnist-edge listen --input talk.wav --realtime
      arecord -q -f S16_LE -r 16000 -c 1 -t raw | audiomnist-edge listen --input - --samplerate 16000
    """
    if list_devices:
        _print_devices(as_json)
        return
    model = Model.load(model_path, backend=backend)
    gate = GateParams(calibrate=calibrate, hangover=hangover, vad=vad)
    output = Output(as_json, sequence_gap if sequence else None, min_confidence)
    previous = {signum: signal.signal(signum, _raise_stopped) for signum in (signal.SIGTERM, signal.SIGHUP)}
    started = time.perf_counter()
    microphone = None

    def recognizer_at(rate: int) -> Recognizer:
        return Recognizer(model, rate, gate, min_confidence, shifts, unknown_at=unknown_at, background_db=background_db)

    reason = "end of input"
    try:
        if input_path is None:
            microphone = Microphone(device, samplerate, model.params.sample_rate, channels, block, warn=_warn)
            rate, name = microphone.rate, f"{microphone.name!r}"
            if samplerate is None and rate != model.params.sample_rate:
                click.echo(
                    f"{name} refuses the model's {model.params.sample_rate} Hz: capturing at {rate} Hz and resampling",
                    err=True,
                )
            with microphone:
                click.echo(
                    f"listening on {name} at {rate} Hz (model {model.params.sample_rate} Hz); Ctrl-C stops", err=True
                )
                run(microphone.blocks(), recognizer_at(rate), output, duration)
        else:
            rate, blocks = _file_source(
                input_path, samplerate, model.params.sample_rate, channels, pcm_format, block, realtime
            )
            run(blocks, recognizer_at(rate), output, duration)
    except (KeyboardInterrupt, Stopped) as exc:
        reason = "stopped by " + (str(exc) if isinstance(exc, Stopped) else "Ctrl-C")
        output.finish()
    except DeviceError as exc:
        if microphone is not None and microphone.abandoned:
            _leave_now(f"error: {exc}", 1)
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    _summary(reason, time.perf_counter() - started, output, microphone)
    if microphone is not None and microphone.abandoned:
        _leave_now(None, 0)


def _leave_now(message: str | None, status: int) -> None:
    """Exit at once, skipping the interpreter's exit handlers: PortAudio's would wait forever on
    the sound server that did not let the device close."""
    if message:
        click.echo(message, err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _file_source(
    path: str, samplerate: int | None, model_rate: int, channels: int, fmt: str, block: int | None, realtime: bool
) -> tuple[int, Blocks]:
    if path == "-":
        rate = samplerate or model_rate
        return rate, pcm_blocks(sys.stdin.buffer, fmt, channels, block or rate // 20)
    rate, blocks = file_blocks(path, block, realtime)
    if samplerate is not None and samplerate != rate:
        raise AudioError(
            f"{path}: the file is at {rate} Hz, not --samplerate {samplerate} (leave the option out for WAV files)"
        )
    return rate, blocks


def _print_devices(as_json: bool) -> None:
    devices = input_devices()
    if as_json:
        for device in devices:
            click.echo(json.dumps(device))
        return
    if not devices:
        click.echo("no input devices", err=True)
    for d in devices:
        click.echo(
            f"{'*' if d['default'] else ' '} {d['index']:3d}  {d['name']}  "
            f"({d['hostapi']}, {d['channels']} ch, {d['default_samplerate']:.0f} Hz)"
        )


def _summary(reason: str, elapsed: float, output: Output, microphone: Microphone | None) -> None:
    latencies = sorted(output.latencies)
    p50 = f", latency p50 {latencies[len(latencies) // 2]:.1f} ms" if latencies else ""
    dropped = (
        f", {microphone.dropped} blocks dropped, {microphone.overflows} overflows" if microphone is not None else ""
    )
    click.echo(
        f"{reason} after {elapsed:.1f} s: {output.digits} digits, {output.unknown} unknown{p50}{dropped}", err=True
    )
