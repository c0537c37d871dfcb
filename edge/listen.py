"""``audiomnist-edge listen``: recognise digits as they are spoken, continuously.

Sources (microphone, WAV file, raw PCM on stdin) yield float32 mono blocks at
their own rate; ``Recognizer`` resamples them to the model's rate (streaming),
cuts utterances with ``stream.Segmenter`` and classifies each one with
``Model.classify``, exactly as ``predict`` would classify the same samples.
sounddevice (PortAudio) is imported only when the microphone is used.
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import click
import numpy as np

from .errors import EdgeError
from .features import clip_features
from .interpreter import BACKENDS
from .model import Model
from .resample import Resampler
from .stream import GateParams, SequenceGrouper, Segmenter, Utterance
from .wav import AudioError, read_wav

log = logging.getLogger(__name__)

PCM_FORMATS = {"s16le": ("<i2", 32768.0), "s32le": ("<i4", 2147483648.0), "f32le": ("<f4", 1.0)}
QUEUE_BLOCKS = 64      # microphone blocks buffered between the audio thread and the worker
STALL_SECONDS = 2.0    # no audio for this long from a running device means it is gone
PORTAUDIO_HINT = "install PortAudio (Debian/Raspberry Pi OS: sudo apt install libportaudio2)"


class DeviceError(EdgeError):
    """The audio device is missing, refuses the settings, or stopped."""


class Stopped(Exception):
    """Listening was asked to stop (Ctrl-C or SIGTERM); the message names the reason."""


@dataclass(frozen=True)
class Detection:
    """The decision for one utterance; times in seconds from the start of the stream.

    ``digit`` is None when the confidence is below the threshold (unknown);
    ``latency_ms`` runs from the arrival of the block that ended the utterance
    (end of speech plus hang-over) to the decision.
    """

    start: float
    end: float
    digit: str | None
    label: str
    confidence: float
    latency_ms: float
    hangover_ms: float
    truncated: bool

    def to_json(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3),
                "digit": _label_value(self.digit), "label": _label_value(self.label),
                "confidence": round(self.confidence, 4), "latency_ms": round(self.latency_ms, 2),
                "hangover_ms": round(self.hangover_ms, 1), "truncated": self.truncated}


def _label_value(label: str | None) -> int | str | None:
    return int(label) if label is not None and label.isdigit() else label


class Recognizer:
    """Blocks at the source rate -> resample -> segment -> classify.

    Args:
        model: the loaded model; its params give the working sample rate.
        source_rate: rate of the blocks fed in, Hz.
        gate: voice-activity gate settings.
        min_confidence: decisions below this probability are reported as unknown.
        shifts: average the probabilities over this many starts of the utterance,
            hop_length / shifts samples apart (1: exactly ``Model.classify``). The
            utterance's position on the MFCC frame grid is arbitrary, and a model
            can be sensitive to it; averaging removes that chance.
    """

    def __init__(self, model: Model, source_rate: int, gate: GateParams | None = None,
                 min_confidence: float = 0.5, shifts: int = 4) -> None:
        self.model = model
        self.shifts = max(1, int(shifts))
        self.rate = model.params.sample_rate
        self.source_rate = int(source_rate)
        self.resampler = Resampler(self.source_rate, self.rate)
        self.segmenter = Segmenter(self.rate, gate)
        self.min_confidence = min_confidence
        self.samples_in = 0

    @property
    def stream_time(self) -> float:
        """Seconds of source audio consumed so far."""
        return self.samples_in / self.source_rate

    @property
    def settled(self) -> float:
        """Stream time before which no utterance can still start (for --sequence)."""
        return self.segmenter.settled

    def feed(self, block: np.ndarray, arrived: float | None = None) -> list[Detection]:
        """Consume one block (float32 mono at source_rate); return decisions that became due.

        Args:
            block: samples, shape (n,).
            arrived: time.perf_counter() when the block arrived (default: now).
        """
        arrived = time.perf_counter() if arrived is None else arrived
        self.samples_in += len(block)
        utterances = self.segmenter.process(self.resampler.process(block))
        return [self._decide(u, arrived) for u in utterances]

    def finish(self) -> list[Detection]:
        """End of stream: decide the utterance still open, if any."""
        arrived = time.perf_counter()
        utterances = self.segmenter.process(self.resampler.flush()) + self.segmenter.flush()
        return [self._decide(u, arrived) for u in utterances]

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n_labels,), of one utterance at the model's rate."""
        params, hop = self.model.params, self.model.params.hop_length
        return np.mean([self.model.probabilities(clip_features(samples[k * hop // self.shifts:], params))
                        for k in range(self.shifts)], axis=0)

    def _decide(self, utterance: Utterance, arrived: float) -> Detection:
        prediction = self.model.decide(self.probabilities(utterance.samples), top_k=1)
        known = prediction.probability >= self.min_confidence
        return Detection(
            start=utterance.start, end=utterance.end,
            digit=prediction.label if known else None, label=prediction.label,
            confidence=prediction.probability,
            latency_ms=(time.perf_counter() - arrived) * 1e3,
            hangover_ms=(utterance.closed_at - utterance.end) * 1e3,
            truncated=utterance.truncated,
        )


# ---- sources: each yields (float32 mono block, arrival time) ------------------------------

def wav_blocks(path: str, block: int | None,
               realtime: bool) -> tuple[int, Iterator[tuple[np.ndarray, float]]]:
    """(rate, blocks) of a WAV file, read (and checked) at once.

    Args:
        path: the WAV file.
        block: samples per block at the file's rate (None: 50 ms).
        realtime: release each block when it would have finished arriving from
            a microphone, instead of as fast as possible.
    """
    samples, rate = read_wav(path)
    block = block or max(1, rate // 20)

    def blocks() -> Iterator[tuple[np.ndarray, float]]:
        started = time.perf_counter()
        for i in range(0, len(samples), block):
            chunk = samples[i:i + block]
            if realtime:
                delay = started + (i + len(chunk)) / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            yield chunk, time.perf_counter()

    return rate, blocks()


def pcm_blocks(stream: BinaryIO, fmt: str, channels: int,
               block: int) -> Iterator[tuple[np.ndarray, float]]:
    """Blocks of raw interleaved PCM read from a binary stream until it ends.

    Args:
        stream: e.g. sys.stdin.buffer (arecord -t raw, sox -t raw, ffmpeg -f s16le).
        fmt: one of PCM_FORMATS (little-endian).
        channels: interleaved channels, averaged to mono.
        block: frames per block.
    """
    dtype, scale = PCM_FORMATS[fmt]
    frame_bytes = np.dtype(dtype).itemsize * channels
    carry = b""
    while True:
        data = stream.read(block * frame_bytes)
        if not data:
            break
        data = carry + data
        usable = len(data) - len(data) % frame_bytes
        carry = data[usable:]
        if usable:
            ints = np.frombuffer(data[:usable], dtype=dtype).reshape(-1, channels)
            mono = ints.astype(np.float64).mean(axis=1) / scale
            yield np.clip(mono, -1.0, 1.0).astype(np.float32), time.perf_counter()
    if carry:
        log.warning("stdin ended inside a frame: %d trailing bytes ignored", len(carry))


def _sounddevice():
    """Import sounddevice, turning a missing PortAudio into a DeviceError."""
    try:
        import sounddevice
    except OSError as exc:  # the module is there but libportaudio is not
        raise DeviceError(f"PortAudio library not found ({exc}); {PORTAUDIO_HINT}") from None
    except ImportError:
        raise DeviceError("the sounddevice package is missing: pip install sounddevice") from None
    return sounddevice


def _device_spec(device: str | None) -> int | str | None:
    return int(device) if device is not None and device.strip().isdigit() else device


def input_devices() -> list[dict[str, Any]]:
    """Every PortAudio device with input channels: index, name, host API, channels, rate."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default = sd.default.device[0]
        apis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot list audio devices: {exc}") from None
    return [{"index": d["index"], "name": d["name"], "hostapi": apis[d["hostapi"]]["name"],
             "channels": d["max_input_channels"], "default_samplerate": d["default_samplerate"],
             "default": d["index"] == default}
            for d in devices if d["max_input_channels"] > 0]


class Microphone:
    """A PortAudio input stream whose callback only copies blocks into a bounded queue.

    Blocks the worker does not take in time are dropped and counted; PortAudio
    overflows are counted too. Use as a context manager; ``blocks()`` yields
    (mono block, arrival time) until the stream stops.
    """

    def __init__(self, device: str | None, samplerate: int | None, wanted_rate: int,
                 channels: int, block_seconds: float) -> None:
        sd = self._sd = _sounddevice()
        spec = _device_spec(device)
        try:
            info = sd.query_devices(spec, "input")
        except (ValueError, sd.PortAudioError) as exc:
            if device is None:
                raise DeviceError("no default input device (is a microphone connected? "
                                  "see --list-devices)") from None
            raise DeviceError(f"no input device {device!r}: {exc}") from None
        self.name = info["name"]
        if channels > info["max_input_channels"]:
            raise DeviceError(f"{self.name!r} has {info['max_input_channels']} input channels, "
                              f"--channels asked for {channels}")
        self.rate = self._choose_rate(sd, spec, samplerate, wanted_rate, channels,
                                      int(info["default_samplerate"]))
        self.channels = channels
        self.overflows = 0
        self.dropped = 0
        self._queue: queue.Queue[tuple[np.ndarray, float]] = queue.Queue(QUEUE_BLOCKS)
        self._finished = threading.Event()
        try:
            self._stream = sd.InputStream(
                device=spec, samplerate=self.rate, channels=channels, dtype="float32",
                blocksize=max(1, int(round(block_seconds * self.rate))),
                callback=self._callback, finished_callback=self._finished.set)
        except sd.PortAudioError as exc:
            raise DeviceError(f"cannot open {self.name!r} at {self.rate} Hz: {exc}") from None

    def _choose_rate(self, sd: Any, spec: int | str | None, samplerate: int | None, wanted: int,
                     channels: int, default: int) -> int:
        """The requested rate, else the model's, else the device's own (resampled later), Hz."""
        candidates = [samplerate] if samplerate else [wanted, default]
        for rate in candidates:
            try:
                sd.check_input_settings(device=spec, channels=channels, samplerate=rate,
                                        dtype="float32")
                if rate != wanted:
                    log.info("capturing at %d Hz, resampling to %d Hz", rate, wanted)
                return int(rate)
            except (ValueError, sd.PortAudioError) as exc:
                problem = exc
        raise DeviceError(f"{self.name!r} refuses {' and '.join(f'{r} Hz' for r in candidates)}: "
                          f"{problem}")

    def _callback(self, indata: np.ndarray, frames: int, when: Any, status: Any) -> None:
        if status.input_overflow:
            self.overflows += 1
        try:
            self._queue.put_nowait((indata.copy(), time.perf_counter()))
        except queue.Full:
            self.dropped += 1

    def __enter__(self) -> "Microphone":
        try:
            self._stream.start()
        except self._sd.PortAudioError as exc:
            raise DeviceError(f"cannot start {self.name!r}: {exc}") from None
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._stream.abort(ignore_errors=True)
        finally:
            self._stream.close(ignore_errors=True)

    def blocks(self) -> Iterator[tuple[np.ndarray, float]]:
        """Mono blocks as they arrive; raises DeviceError if the device stops delivering.

        New drops or overflows are reported on stderr as they happen.
        """
        last = time.perf_counter()
        reported = (0, 0)
        while True:
            try:
                data, arrived = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._finished.is_set() or not self._stream.active:
                    raise DeviceError(f"input device {self.name!r} stopped (unplugged, or its "
                                      "sound server went away)") from None
                if time.perf_counter() - last > STALL_SECONDS:
                    raise DeviceError(f"{self.name!r} delivered no audio for "
                                      f"{STALL_SECONDS:.0f} s (unplugged?)") from None
                continue
            last = arrived
            if (self.dropped, self.overflows) != reported:
                reported = (self.dropped, self.overflows)
                click.echo(f"warning: {self.dropped} blocks dropped (worker too slow), "
                           f"{self.overflows} input overflows so far", err=True)
            yield (data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)), arrived


# ---- output -----------------------------------------------------------------------------

def describe(detection: Detection, min_confidence: float) -> str:
    """One human line: time, digit (or unknown), confidence, latency."""
    if detection.digit is None:
        what = f"?  unknown ({detection.label}? {detection.confidence:.2f} < {min_confidence:.2f})"
    else:
        what = f"{detection.digit}  ({detection.confidence:.2f})"
    return (f"{detection.start:8.2f}-{detection.end:.2f} s  {what}  "
            f"{detection.latency_ms:.1f} ms (+{detection.hangover_ms:.0f} ms hang-over)")


def sequence_record(group: list[tuple[Detection, float, float]]) -> dict[str, Any]:
    """JSON record of a number: its digits ('?' for unknown), times and parts."""
    digits = [d for d, _, _ in group]
    return {"sequence": "".join(d.digit if d.digit is not None else "?" for d in digits),
            "start": round(group[0][1], 3), "end": round(group[-1][2], 3),
            "digits": [d.to_json() for d in digits]}


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
                self._emit(detection.to_json() if self.as_json
                           else describe(detection, self.min_confidence))
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
            self._emit(record if self.as_json else
                       f"{record['start']:8.2f}-{record['end']:.2f} s  "
                       f"{' '.join(record['sequence'])}")

    def _emit(self, item: dict[str, Any] | str) -> None:
        click.echo(json.dumps(item) if isinstance(item, dict) else item)
        sys.stdout.flush()


def run(blocks: Iterator[tuple[np.ndarray, float]], recognizer: Recognizer, output: Output,
        duration: float | None) -> None:
    """Feed blocks until the source ends (or ``duration`` seconds of audio); then finish."""
    for block, arrived in blocks:
        output.detections(recognizer.feed(block, arrived), recognizer.settled)
        if duration is not None and recognizer.stream_time >= duration:
            break
    output.detections(recognizer.finish(), float("inf"))
    output.finish()


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)


# ---- the command ------------------------------------------------------------------------

@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False),
              help="Model file [default: the model packaged with audiomnist-edge].")
@click.option("--backend", type=click.Choice(list(BACKENDS)), help="Interpreter to use.")
@click.option("--input", "input_path", metavar="FILE|-",
              help="Listen to a WAV file, or raw PCM on stdin ('-'), instead of a microphone.")
@click.option("--device", help="Microphone: PortAudio device index or part of its name "
                               "[default: the system's default input].")
@click.option("--list-devices", is_flag=True, help="List input devices and exit.")
@click.option("--samplerate", type=click.IntRange(1000, 768000),
              help="Capture rate in Hz (microphone) or the rate of stdin PCM "
                   "[default: the model's rate; a device that refuses it is opened at its own "
                   "rate and resampled].")
@click.option("--channels", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Channels to capture (or interleaved in stdin PCM); averaged to mono.")
@click.option("--format", "pcm_format", type=click.Choice(list(PCM_FORMATS)), default="s16le",
              show_default=True, help="Sample format of raw PCM on stdin.")
@click.option("--block", type=click.IntRange(1, None),
              help="Samples per block at the source rate [default: 50 ms].")
@click.option("--realtime", is_flag=True,
              help="Play a WAV --input at its real speed [default: as fast as possible].")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Decisions less probable than this are reported as unknown.")
@click.option("--shifts", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Average the model over this many sub-frame starts of each utterance "
                   "(1: the exact decision `predict` makes for the same samples).")
@click.option("--calibrate", type=click.FloatRange(0, 30), default=0.25, show_default=True,
              help="Seconds at the start that only measure the noise floor (keep quiet).")
@click.option("--hangover", type=click.FloatRange(0.02, 2), default=0.2, show_default=True,
              help="Seconds of quiet that end an utterance (added to every decision's delay).")
@click.option("--sequence", is_flag=True,
              help="Print numbers: digits separated by pauses shorter than --sequence-gap.")
@click.option("--sequence-gap", type=click.FloatRange(0.1, 30), default=1.0, show_default=True,
              help="Pause in seconds that ends a number (with --sequence).")
@click.option("--duration", type=click.FloatRange(0, None, min_open=True),
              help="Stop after this many seconds of audio [default: run until stopped].")
@click.option("--json", "as_json", is_flag=True,
              help="JSON lines: start, end, digit (null if unknown), confidence, latency_ms, "
                   "hangover_ms; with --sequence one line per number.")
def listen(model_path: str | None, backend: str | None, input_path: str | None,
           device: str | None, list_devices: bool, samplerate: int | None, channels: int,
           pcm_format: str, block: int | None, realtime: bool, min_confidence: float,
           shifts: int, calibrate: float, hangover: float, sequence: bool, sequence_gap: float,
           duration: float | None, as_json: bool) -> None:
    """Recognise spoken digits continuously, from a microphone or a recording.

    Speech is found by an energy gate that tracks the noise floor; each
    utterance is classified as soon as HANGOVER seconds of quiet follow it. One
    line per digit: time in the stream, digit and confidence, and the latency
    from the end of the hang-over to the decision. Status and a summary go to
    stderr. Ctrl-C or SIGTERM stops cleanly.

    \b
    Examples:
      audiomnist-edge listen                              # default microphone
      audiomnist-edge listen --list-devices
      audiomnist-edge listen --device USB --json          # first device named *USB*
      audiomnist-edge listen --sequence                   # "3 7 1 9" as one number
      audiomnist-edge listen --input talk.wav             # a recording, as fast as possible
      audiomnist-edge listen --input talk.wav --realtime
      arecord -q -f S16_LE -r 16000 -c 1 -t raw | audiomnist-edge listen --input - --samplerate 16000
    """
    if list_devices:
        _print_devices(as_json)
        return
    model = Model.load(model_path, backend=backend)
    gate = GateParams(calibrate=calibrate, hangover=hangover)
    output = Output(as_json, sequence_gap if sequence else None, min_confidence)
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    started = time.perf_counter()
    microphone = None
    reason = "end of input"
    try:
        if input_path is None:
            microphone = Microphone(device, samplerate, model.params.sample_rate, channels,
                                    0.05 if block is None else block / (samplerate or model.params.sample_rate))
            rate, name = microphone.rate, f"{microphone.name!r}"
            with microphone:
                click.echo(f"listening on {name} at {rate} Hz (model {model.params.sample_rate} Hz); "
                           "Ctrl-C stops", err=True)
                recognizer = Recognizer(model, rate, gate, min_confidence, shifts)
                run(microphone.blocks(), recognizer, output, duration)
        else:
            rate, blocks = _file_source(input_path, samplerate, model.params.sample_rate,
                                        channels, pcm_format, block, realtime)
            recognizer = Recognizer(model, rate, gate, min_confidence, shifts)
            run(blocks, recognizer, output, duration)
    except (KeyboardInterrupt, Stopped) as exc:
        reason = "stopped by " + (str(exc) if isinstance(exc, Stopped) else "Ctrl-C")
        output.finish()
    finally:
        signal.signal(signal.SIGTERM, previous)
    _summary(reason, time.perf_counter() - started, output, microphone)


def _file_source(path: str, samplerate: int | None, model_rate: int, channels: int, fmt: str,
                 block: int | None, realtime: bool) -> tuple[int, Iterator[tuple[np.ndarray, float]]]:
    if path == "-":
        rate = samplerate or model_rate
        return rate, pcm_blocks(sys.stdin.buffer, fmt, channels, block or rate // 20)
    if not Path(path).is_file():
        raise AudioError(f"{path}: no such file")
    rate, blocks = wav_blocks(path, block, realtime)
    if samplerate is not None and samplerate != rate:
        raise AudioError(f"{path}: the file is at {rate} Hz, not --samplerate {samplerate} "
                         "(leave the option out for WAV files)")
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
        click.echo(f"{'*' if d['default'] else ' '} {d['index']:3d}  {d['name']}  "
                   f"({d['hostapi']}, {d['channels']} ch, {d['default_samplerate']:.0f} Hz)")


def _summary(reason: str, elapsed: float, output: Output, microphone: Microphone | None) -> None:
    latencies = sorted(output.latencies)
    p50 = f", latency p50 {latencies[len(latencies) // 2]:.1f} ms" if latencies else ""
    dropped = (f", {microphone.dropped} blocks dropped, {microphone.overflows} overflows"
               if microphone is not None else "")
    click.echo(f"{reason} after {elapsed:.1f} s: {output.digits} digits, {output.unknown} unknown"
               f"{p50}{dropped}", err=True)
