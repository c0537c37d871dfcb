"""Sound sources for ``listen``: microphone (PortAudio via sounddevice), audio file, raw PCM.

Each source yields (float32 mono block, arrival time) at its own rate.
sounddevice is imported only when a microphone is used.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import numpy as np

from .errors import EdgeError
from .wav import open_audio

log = logging.getLogger(__name__)

PCM_FORMATS = {"s16le": ("<i2", 32768.0), "s32le": ("<i4", 2147483648.0), "f32le": ("<f4", 1.0)}
QUEUE_BLOCKS = 64  # microphone blocks buffered between the audio thread and the worker
STALL_SECONDS = 2.0  # no audio for this long from a running device means it is gone
START_SECONDS = 10.0  # a device may take this long to deliver its first block (sound servers)
BLOCK_SECONDS = 0.05  # a microphone block's length unless samples per block are asked for
CLOSE_SECONDS = 2.0  # closing a device may take this long; a hung sound server is then left behind
POLL_SECONDS = 0.2  # the worker looks at a silent device this often
SUSPENDED_SECONDS = 1.0  # a longer gap between two looks means this process was suspended (Ctrl-Z, sleep)
PORTAUDIO_HINT = "install PortAudio (Debian/Raspberry Pi OS: sudo apt install libportaudio2)"

Blocks = Iterator[tuple[np.ndarray, float]]


class DeviceError(EdgeError):
    """The audio device is missing, refuses the settings, or stopped."""


def file_blocks(path: str, block: int | None = None, realtime: bool = False) -> tuple[int, Blocks]:
    """(rate, blocks) of an audio file or FIFO, read block by block.

    Args:
        path: the file (anything ``wav.open_audio`` reads); its header is checked at once.
        block: samples per block at the file's rate (None: 50 ms).
        realtime: release each block when it would have finished arriving from
            a microphone, instead of as fast as possible.
    """
    opener = open_audio(path)
    audio = opener.__enter__()
    rate = audio.sample_rate
    size = block or max(1, rate // 20)

    def blocks() -> Blocks:
        try:
            started, done = time.perf_counter(), 0
            for chunk in audio.blocks(size):
                done += len(chunk)
                if realtime:
                    delay = started + done / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                yield chunk, time.perf_counter()
        finally:
            opener.__exit__()

    return rate, blocks()


def pcm_blocks(stream: BinaryIO, fmt: str, channels: int, block: int) -> Blocks:
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
            mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
            yield np.clip(mono, -1.0, 1.0).astype(np.float32), time.perf_counter()
    if carry:
        log.warning("stdin ended inside a frame: %d trailing bytes ignored", len(carry))


def sounddevice_module() -> Any:
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
    sd = sounddevice_module()
    try:
        devices = sd.query_devices()
        default = sd.default.device[0]
        apis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot list audio devices: {exc}") from None
    return [
        {
            "index": d["index"],
            "name": d["name"],
            "hostapi": apis[d["hostapi"]]["name"],
            "channels": d["max_input_channels"],
            "default_samplerate": d["default_samplerate"],
            "default": d["index"] == default,
        }
        for d in devices
        if d["max_input_channels"] > 0
    ]


class Microphone:
    """A PortAudio input stream whose callback only copies blocks into a bounded queue.

    Blocks the worker does not take in time are dropped and counted; PortAudio
    overflows are counted too. Use as a context manager; ``blocks()`` yields
    (mono block, arrival time) until the stream stops.

    Args:
        device: PortAudio index or part of a name (None: the default input).
        samplerate: capture rate in Hz (None: ``wanted_rate`` if the device takes
            it, else the device's default rate, to be resampled).
        wanted_rate: the model's rate, Hz.
        channels: channels to capture, averaged to mono.
        block: samples per block at the capture rate, which may be the device's own
            (None: BLOCK_SECONDS).
        warn: called with a message when new drops or overflows happen.
    """

    def __init__(
        self,
        device: str | None,
        samplerate: int | None,
        wanted_rate: int,
        channels: int,
        block: int | None = None,
        warn: Callable[[str], None] = log.warning,
    ) -> None:
        sd = self._sd = sounddevice_module()
        spec = _device_spec(device)
        try:
            info = sd.query_devices(spec, "input")
        except (ValueError, sd.PortAudioError) as exc:
            if device is None:
                raise DeviceError("no default input device (is a microphone connected? see --list-devices)") from None
            raise DeviceError(f"no input device {device!r}: {exc}") from None
        self.name = info["name"]
        if channels > info["max_input_channels"]:
            raise DeviceError(
                f"{self.name!r} has {info['max_input_channels']} input channels, --channels asked for {channels}"
            )
        self.rate = self._choose_rate(sd, spec, samplerate, wanted_rate, channels, int(info["default_samplerate"]))
        self.channels = channels
        self.overflows = 0
        self.dropped = 0
        self.received = 0
        self.abandoned = False  # set when closing did not finish within CLOSE_SECONDS
        self._warn = warn
        self._queue: queue.Queue[tuple[np.ndarray, float]] = queue.Queue(QUEUE_BLOCKS)
        self._finished = threading.Event()
        try:
            self._stream = sd.InputStream(
                device=spec,
                samplerate=self.rate,
                channels=channels,
                dtype="float32",
                blocksize=block or max(1, int(round(BLOCK_SECONDS * self.rate))),
                callback=self._callback,
                finished_callback=self._finished.set,
            )
        except sd.PortAudioError as exc:
            raise DeviceError(f"cannot open {self.name!r} at {self.rate} Hz: {exc}") from None

    def _choose_rate(
        self, sd: Any, spec: int | str | None, samplerate: int | None, wanted: int, channels: int, default: int
    ) -> int:
        """The requested rate, else the model's, else the device's own (resampled later), Hz."""
        candidates = [samplerate] if samplerate else [wanted, default]
        problem: Exception | None = None
        for rate in candidates:
            try:
                sd.check_input_settings(device=spec, channels=channels, samplerate=rate, dtype="float32")
                if rate != wanted:
                    log.info("capturing at %d Hz, resampling to %d Hz", rate, wanted)
                return int(rate)
            except (ValueError, sd.PortAudioError) as exc:
                problem = exc
        raise DeviceError(f"{self.name!r} refuses {' and '.join(f'{r} Hz' for r in candidates)}: {problem}")

    def _callback(self, indata: np.ndarray, frames: int, when: Any, status: Any) -> None:
        if status.input_overflow:
            self.overflows += 1
        try:
            self._queue.put_nowait((indata.copy(), time.perf_counter()))
        except queue.Full:
            self.dropped += 1

    def __enter__(self) -> Microphone:
        try:
            self._stream.start()
        except self._sd.PortAudioError as exc:
            raise DeviceError(f"cannot start {self.name!r}: {exc}") from None
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop and close the stream, waiting at most CLOSE_SECONDS: PortAudio's abort blocks for as
        long as a frozen sound server does not answer, and a stalled device is often just that."""

        def close() -> None:
            try:
                self._stream.abort(ignore_errors=True)
            finally:
                self._stream.close(ignore_errors=True)

        closer = threading.Thread(target=close, name="close-audio", daemon=True)
        closer.start()
        closer.join(CLOSE_SECONDS)
        self.abandoned = closer.is_alive()
        if self.abandoned:
            log.warning("%r did not close within %.0f s; left behind", self.name, CLOSE_SECONDS)

    def blocks(self) -> Blocks:
        """Mono blocks as they arrive; raises DeviceError if the device stops delivering.

        A device gets START_SECONDS to deliver its first block ("no audio yet"),
        then at most STALL_SECONDS between blocks ("stalled"); time this process
        spent suspended does not count. New drops or overflows are reported
        through ``warn`` as they happen.
        """
        last = polled = time.perf_counter()
        reported = (0, 0)
        while True:
            try:
                data, arrived = self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                now = time.perf_counter()
                if now - polled > SUSPENDED_SECONDS:  # the process slept, not the device: its backlog is due
                    last = now
                polled = now
                self._check_alive(now - last)
                continue
            polled = time.perf_counter()
            last = arrived
            self.received += 1
            if (self.dropped, self.overflows) != reported:
                reported = (self.dropped, self.overflows)
                self._warn(f"{self.dropped} blocks dropped (worker too slow), {self.overflows} input overflows so far")
            yield (data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)), arrived

    def _check_alive(self, silent: float) -> None:
        """Raise DeviceError if the stream ended, never started delivering, or stalled."""
        if self._finished.is_set() or not self._stream.active:
            raise DeviceError(f"input device {self.name!r} stopped (unplugged, or its sound server went away)")
        if self.received == 0 and silent > START_SECONDS:
            raise DeviceError(
                f"{self.name!r} delivered no audio yet, {START_SECONDS:.0f} s after "
                "opening (is its sound server running? is the device in use?)"
            )
        if self.received > 0 and silent > STALL_SECONDS:
            raise DeviceError(
                f"{self.name!r} stalled: no audio for {STALL_SECONDS:.0f} s after it had started (unplugged?)"
            )
