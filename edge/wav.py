"""Audio reading in blocks (stdlib + NumPy), and WAV writing.

``open_audio`` opens a file, FIFO or stream and yields float32 mono blocks at
the source's rate without reading it whole; memory stays bounded whatever the
header claims. The WAV reader handles PCM (8-bit unsigned, 16/24/32-bit
signed), IEEE float (32/64-bit), mu-law and A-law (8-bit, as in telephony) and
WAVE_FORMAT_EXTENSIBLE with any number of channels. FLAC, OGG and MP3 go
through the optional ``soundfile`` extra. Anything else raises AudioError
naming the source and the problem.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .errors import EdgeError

PCM, IEEE_FLOAT, ALAW, MULAW, EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE
_CODEC_NAMES = {0x0002: "MS ADPCM", 0x0011: "IMA ADPCM", 0x0050: "MPEG", 0x0055: "MP3"}
_STREAMED = (0, 0xFFFFFFFF)  # data sizes written by tools that cannot seek back
MAX_CHANNELS = 64
RATE_RANGE = (1000, 768000)
MAX_FMT_BYTES = 4096  # a fmt chunk is 16-40 bytes; more is a broken or hostile header
SKIP_STEP = 1 << 16  # bytes read at a time when skipping chunks nobody needs
SOUNDFILE_SUFFIXES = {".flac", ".ogg", ".oga", ".opus", ".mp3"}
SOUNDFILE_HINT = "pip install 'audiomnist-edge[soundfile]'"


class AudioError(EdgeError, ValueError):
    """Audio input the runtime cannot use; the message names source and problem."""


@dataclass(frozen=True)
class WavFormat:
    """What a WAV file's fmt chunk says."""

    codec: int
    channels: int
    sample_rate: int
    bits: int


def _parse_format(chunk: bytes) -> WavFormat:
    if len(chunk) < 16:
        raise AudioError(f"fmt chunk is {len(chunk)} bytes, need at least 16")
    codec, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", chunk[:16])
    if codec == EXTENSIBLE:
        if len(chunk) < 40:
            raise AudioError("WAVE_FORMAT_EXTENSIBLE fmt chunk is truncated")
        codec = struct.unpack("<H", chunk[24:26])[0]
    if codec not in (PCM, IEEE_FLOAT, ALAW, MULAW):
        name = _CODEC_NAMES.get(codec, f"format tag 0x{codec:04x}")
        raise AudioError(f"unsupported codec {name} (only PCM, IEEE float, mu-law and A-law)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"absurd channel count {channels}")
    if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise AudioError(f"absurd sample rate {rate} Hz")
    supported = {PCM: (8, 16, 24, 32), IEEE_FLOAT: (32, 64), ALAW: (8,), MULAW: (8,)}[codec]
    if bits not in supported:
        kind = {PCM: "PCM", IEEE_FLOAT: "float", ALAW: "A-law", MULAW: "mu-law"}[codec]
        raise AudioError(f"unsupported {kind} bit depth {bits}")
    if block_align != channels * bits // 8:
        raise AudioError(f"block align {block_align} does not match {channels} x {bits} bits")
    return WavFormat(codec, channels, rate, bits)


def _companding_tables() -> dict[int, np.ndarray]:
    """G.711 mu-law and A-law byte -> float32 in [-1, 1] (ITU-T G.711 decoders)."""
    code = np.arange(256, dtype=np.int32)
    u = ~code & 0xFF
    mu = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    mu = np.where(u & 0x80, 0x84 - mu, mu - 0x84)
    a = code ^ 0x55
    exponent, mantissa = (a & 0x70) >> 4, a & 0x0F
    alaw = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1))
    alaw = np.where(a & 0x80, alaw, -alaw)
    return {MULAW: (mu / 32768.0).astype(np.float32), ALAW: (alaw / 32768.0).astype(np.float32)}


_COMPANDING = _companding_tables()


def decode(data: bytes, fmt: WavFormat) -> np.ndarray:
    """Raw sample bytes -> float32 array of shape (frames, channels); a partial frame is dropped."""
    width = fmt.bits // 8
    usable = len(data) - len(data) % (width * fmt.channels)
    raw = np.frombuffer(data, dtype=np.uint8, count=usable)
    if fmt.codec in _COMPANDING:
        samples = _COMPANDING[fmt.codec][raw]
    elif fmt.codec == IEEE_FLOAT:
        samples = raw.view("<f4" if width == 4 else "<f8").astype(np.float32)
    elif width == 1:
        samples = (raw.astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        triplets = raw.reshape(-1, 3).astype(np.int32)
        ints = triplets[:, 0] | (triplets[:, 1] << 8) | (triplets[:, 2] << 16)
        ints = np.where(ints & 0x800000, ints - (1 << 24), ints)
        samples = ints.astype(np.float32) / float(1 << 23)
    else:
        ints = raw.view("<i2" if width == 2 else "<i4")
        samples = (ints.astype(np.float64) / float(1 << (fmt.bits - 1))).astype(np.float32)
    return samples.reshape(-1, fmt.channels)


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Up to size bytes, reading again after short reads (pipes); fewer only at the end."""
    parts, missing = [], size
    while missing > 0:
        part = stream.read(missing)
        if not part:
            break
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


def _skip(stream: BinaryIO, size: int) -> int:
    """Skip size bytes in steps of at most SKIP_STEP (never one huge read); bytes skipped."""
    done = 0
    while done < size:
        part = stream.read(min(SKIP_STEP, size - done))
        if not part:
            break
        done += len(part)
    return done


class WavReader:
    """A WAV stream positioned at its samples: ``format``, ``frames`` (None if unknown), ``blocks()``.

    Args:
        stream: a binary stream at the start of the RIFF header (file, pipe, BytesIO).
        name: how errors name the source.
        size: bytes available from the stream's start, if known (caps what the header may claim).
    """

    def __init__(self, stream: BinaryIO, name: str, size: int | None = None) -> None:
        self.stream, self.name = stream, name
        self.format, declared = self._header(stream)
        self._remaining: int | None = None
        frame = self.format.channels * self.format.bits // 8
        if declared not in _STREAMED:
            available = None if size is None else max(0, size - self._position)
            if available is not None and declared > available:
                raise AudioError(f"truncated data: header says {declared} bytes, file has {available}")
            self._remaining = declared
        self.frames = None if self._remaining is None else self._remaining // frame
        if self.frames == 0:
            raise AudioError("no samples")

    @property
    def sample_rate(self) -> int:
        return self.format.sample_rate

    def _header(self, stream: BinaryIO) -> tuple[WavFormat, int]:
        header = _read_exactly(stream, 12)
        self._position = len(header)
        if len(header) < 12:
            raise AudioError("truncated header (file shorter than 12 bytes)")
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise AudioError("not a RIFF/WAVE file")
        fmt = None
        while True:
            chunk_header = _read_exactly(stream, 8)
            self._position += len(chunk_header)
            if len(chunk_header) < 8:
                break
            chunk_id, size = chunk_header[:4], struct.unpack("<I", chunk_header[4:])[0]
            if chunk_id == b"data":
                if fmt is None:
                    raise AudioError("data chunk before fmt chunk")
                return fmt, size
            padded = size + size % 2
            if chunk_id == b"fmt ":
                if size > MAX_FMT_BYTES:
                    raise AudioError(f"fmt chunk claims {size} bytes (at most {MAX_FMT_BYTES})")
                body = _read_exactly(stream, padded)
                got = len(body)
                fmt = _parse_format(body[:size]) if got >= size else None
            else:
                got = _skip(stream, padded)
            self._position += got
            if got < size:
                raise AudioError(f"truncated {chunk_id.decode('latin-1')!r} chunk")
        raise AudioError("no fmt chunk" if fmt is None else "no data chunk")

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        """Float32 blocks, shape (frames, channels) (the last may be shorter), in [-1, 1]."""
        fmt = self.format
        width = fmt.channels * fmt.bits // 8
        carry, seen = b"", 0
        while self._remaining is None or self._remaining > 0:
            want = frames * width - len(carry)
            if self._remaining is not None:
                want = min(want, self._remaining)
            data = _read_exactly(self.stream, want)
            if self._remaining is not None:
                self._remaining -= len(data)
                if len(data) < want:
                    raise AudioError("truncated data: the stream ended early")
            if not data:
                break
            data = carry + data
            usable = len(data) - len(data) % width
            carry = data[usable:]
            if usable:
                seen += usable
                yield _checked(decode(data[:usable], fmt))
        if seen == 0:
            raise AudioError("no samples")


def _checked(samples: np.ndarray) -> np.ndarray:
    """Refuse NaN/Inf; clip float samples to [-1, 1]."""
    if not np.all(np.isfinite(samples)):
        raise AudioError("NaN or infinite samples")
    return np.clip(samples, -1.0, 1.0)


class SoundFileReader:
    """FLAC, OGG/Vorbis/Opus or MP3 through libsndfile (the ``soundfile`` extra)."""

    def __init__(self, path: str) -> None:
        try:
            import soundfile
        except (ImportError, OSError):
            suffix = os.path.splitext(path)[1].lower() or "this format"
            raise AudioError(f"reading {suffix} files needs the soundfile extra: {SOUNDFILE_HINT}") from None
        try:
            self._file: Any = soundfile.SoundFile(path)
        except (RuntimeError, soundfile.LibsndfileError) as exc:
            raise AudioError(f"cannot decode: {exc}") from None
        self.name = path
        rate = int(self._file.samplerate)
        if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
            raise AudioError(f"absurd sample rate {rate} Hz")
        self.format = WavFormat(IEEE_FLOAT, int(self._file.channels), rate, 32)
        self.frames = int(self._file.frames) or None

    @property
    def sample_rate(self) -> int:
        return self.format.sample_rate

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        """Float32 blocks, shape (frames, channels), in [-1, 1]."""
        seen = 0
        try:
            for block in self._file.blocks(frames, dtype="float32", always_2d=True):
                seen += len(block)
                yield _checked(block)
        except RuntimeError as exc:
            raise AudioError(f"cannot decode: {exc}") from None
        if seen == 0:
            raise AudioError("no samples")

    def close(self) -> None:
        self._file.close()


AudioReader = WavReader | SoundFileReader


class open_audio:
    """Open an audio source for reading in blocks; a context manager yielding a reader.

    ``source`` is a path (regular file or FIFO; ``-`` is stdin), bytes, or a
    binary stream. Folders and devices are refused in one line; a missing file
    says "No such file or directory", as the system does. Errors from reading the header or any block are
    AudioError prefixed with the source's name.

        with open_audio("talk.wav") as audio:
            for block in audio.blocks(4000): ...
    """

    def __init__(self, source: str | os.PathLike | bytes | BinaryIO) -> None:
        self.source = source
        self.name = _name(source)
        self._close: list[Any] = []

    def __enter__(self) -> NamedReader:
        try:
            reader = self._open()
        except AudioError as exc:
            self.__exit__()
            raise AudioError(f"{self.name}: {exc}") from None
        except OSError as exc:
            self.__exit__()
            raise AudioError(f"{self.name}: {exc.strerror or exc}") from None
        return NamedReader(reader, self.name)

    def __exit__(self, *exc_info: object) -> None:
        for closable in reversed(self._close):
            closable.close()
        self._close = []

    def _open(self) -> AudioReader:
        source = self.source
        if isinstance(source, (bytes, bytearray)):
            return WavReader(io.BytesIO(source), self.name, len(source))
        if hasattr(source, "read"):
            return WavReader(source, self.name)  # type: ignore[arg-type]
        path = os.fspath(source)
        if path == "-":
            import sys

            return WavReader(sys.stdin.buffer, self.name)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise AudioError("No such file or directory") from None
        if stat.S_ISDIR(info.st_mode):
            raise AudioError("is a folder, not an audio file")
        if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) or stat.S_ISSOCK(info.st_mode):
            raise AudioError("is a device, not an audio file")
        regular = stat.S_ISREG(info.st_mode)
        if regular and os.path.splitext(path)[1].lower() in SOUNDFILE_SUFFIXES:
            reader = SoundFileReader(path)
            self._close.append(reader)
            return reader
        stream = open(path, "rb")
        self._close.append(stream)
        if regular and stream.read(4) in (b"fLaC", b"OggS", b"ID3\x03", b"ID3\x04"):
            stream.close()
            reader = SoundFileReader(path)
            self._close.append(reader)
            return reader
        if regular:
            stream.seek(0)
        return WavReader(stream, self.name, info.st_size if regular else None)


class NamedReader:
    """A reader whose errors name the source: ``sample_rate``, ``format``, ``frames``, ``blocks()``."""

    def __init__(self, reader: AudioReader, name: str) -> None:
        self.reader, self.name = reader, name
        self.format, self.frames = reader.format, reader.frames

    @property
    def sample_rate(self) -> int:
        return self.format.sample_rate

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        """Float32 mono blocks of ``frames`` samples at ``sample_rate`` (channels averaged)."""
        for block in self.frame_blocks(frames):
            mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1)
            yield np.ascontiguousarray(mono, dtype=np.float32)

    def frame_blocks(self, frames: int) -> Iterator[np.ndarray]:
        """Float32 blocks of shape (frames, channels)."""
        try:
            yield from self.reader.blocks(frames)
        except AudioError as exc:
            raise AudioError(f"{self.name}: {exc}") from None
        except OSError as exc:
            raise AudioError(f"{self.name}: {exc.strerror or exc}") from None


def read_wav_info(source: str | os.PathLike | bytes | BinaryIO) -> tuple[np.ndarray, WavFormat]:
    """Samples (frames, channels) as float32 and the format of a whole (small) audio source."""
    with open_audio(source) as audio:
        samples = np.concatenate(list(audio.frame_blocks(1 << 16)))
        return samples.astype(np.float32, copy=False), audio.format


def read_wav(source: str | os.PathLike | bytes | BinaryIO) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] (channels averaged) and the rate in Hz, read whole."""
    samples, fmt = read_wav_info(source)
    mono = samples[:, 0] if fmt.channels == 1 else samples.mean(axis=1)
    return np.ascontiguousarray(mono, dtype=np.float32), fmt.sample_rate


def wav_bytes(samples: np.ndarray, sample_rate: int, bits: int = 16) -> bytes:
    """A PCM WAV (16-bit by default, or 32-bit float with bits=32) of float samples.

    ``samples`` has shape (frames,) or (frames, channels), values in [-1, 1].
    """
    x = np.asarray(samples, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if bits == 16:
        codec, data = PCM, np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tobytes()
    elif bits == 32:
        codec, data = IEEE_FLOAT, x.astype("<f4").tobytes()
    else:
        raise ValueError("bits must be 16 or 32")
    channels = x.shape[1]
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", codec, channels, sample_rate, sample_rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int, bits: int = 16) -> None:
    """Write a WAV file atomically (temporary name, then rename)."""
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "wb") as stream:
        stream.write(wav_bytes(samples, sample_rate, bits))
    os.replace(tmp, path)


def _name(source: object) -> str:
    """How messages name a source: its path, <stdin>, <bytes> or a stream's name."""
    if isinstance(source, str) and source == "-":
        return "<stdin>"
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>"
    if hasattr(source, "read"):
        return str(getattr(source, "name", "<stream>"))
    return str(source)
