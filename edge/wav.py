"""WAV reading and writing with the standard library and NumPy only.

Reads PCM (8-bit unsigned, 16/24/32-bit signed), IEEE float (32/64-bit) and
WAVE_FORMAT_EXTENSIBLE files with any number of channels, returning float32
mono samples in [-1, 1]. Anything else raises AudioError naming the file and
the problem.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from .errors import EdgeError

PCM, IEEE_FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_CODEC_NAMES = {0x0002: "MS ADPCM", 0x0006: "A-law", 0x0007: "mu-law",
                0x0011: "IMA ADPCM", 0x0050: "MPEG", 0x0055: "MP3"}
_STREAMED = (0, 0xFFFFFFFF)  # data sizes written by tools that cannot seek back
MAX_CHANNELS = 64
RATE_RANGE = (1000, 768000)


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
    if codec not in (PCM, IEEE_FLOAT):
        name = _CODEC_NAMES.get(codec, f"format tag 0x{codec:04x}")
        raise AudioError(f"unsupported codec {name} (only PCM and IEEE float)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"absurd channel count {channels}")
    if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise AudioError(f"absurd sample rate {rate} Hz")
    supported = {PCM: (8, 16, 24, 32), IEEE_FLOAT: (32, 64)}[codec]
    if bits not in supported:
        kind = "PCM" if codec == PCM else "float"
        raise AudioError(f"unsupported {kind} bit depth {bits}")
    if block_align != channels * bits // 8:
        raise AudioError(f"block align {block_align} does not match {channels} x {bits} bits")
    return WavFormat(codec, channels, rate, bits)


def _decode(data: bytes, fmt: WavFormat) -> np.ndarray:
    """Raw sample bytes -> float32 array of shape (frames, channels)."""
    width = fmt.bits // 8
    usable = len(data) - len(data) % (width * fmt.channels)
    raw = np.frombuffer(data, dtype=np.uint8, count=usable)
    if fmt.codec == IEEE_FLOAT:
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


def _read_chunks(stream: BinaryIO) -> tuple[WavFormat, bytes]:
    header = stream.read(12)
    if len(header) < 12:
        raise AudioError("truncated header (file shorter than 12 bytes)")
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        raise AudioError("not a RIFF/WAVE file")
    fmt = None
    while True:
        chunk_header = stream.read(8)
        if len(chunk_header) < 8:
            break
        chunk_id, size = chunk_header[:4], struct.unpack("<I", chunk_header[4:])[0]
        if chunk_id == b"data":
            if fmt is None:
                raise AudioError("data chunk before fmt chunk")
            if size in _STREAMED:
                return fmt, stream.read()
            data = stream.read(size)
            if len(data) < size:
                raise AudioError(f"truncated data: header says {size} bytes, file has {len(data)}")
            return fmt, data
        body = stream.read(size)
        if len(body) < size:
            raise AudioError(f"truncated {chunk_id.decode('latin-1')!r} chunk")
        if size % 2:
            stream.read(1)
        if chunk_id == b"fmt ":
            fmt = _parse_format(body)
    raise AudioError("no fmt chunk" if fmt is None else "no data chunk")


def read_wav_info(source: str | os.PathLike | bytes | BinaryIO) -> tuple[np.ndarray, WavFormat]:
    """Samples (frames, channels) as float32 and the format of a WAV source."""
    name = _name(source)
    try:
        if isinstance(source, (bytes, bytearray)):
            fmt, data = _read_chunks(io.BytesIO(source))
        elif hasattr(source, "read"):
            fmt, data = _read_chunks(source)
        else:
            with open(source, "rb") as stream:
                fmt, data = _read_chunks(stream)
        samples = _decode(data, fmt)
        if len(samples) == 0:
            raise AudioError("no samples")
        if not np.all(np.isfinite(samples)):
            raise AudioError("NaN or infinite samples")
        if fmt.codec == IEEE_FLOAT:
            samples = np.clip(samples, -1.0, 1.0)
    except AudioError as exc:
        raise AudioError(f"{name}: {exc}") from None
    except OSError as exc:
        raise AudioError(f"{name}: {exc.strerror or exc}") from None
    return samples, fmt


def read_wav(source: str | os.PathLike | bytes | BinaryIO) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] (channels averaged) and the rate in Hz."""
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
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>"
    if hasattr(source, "read"):
        return getattr(source, "name", "<stream>")
    return os.fspath(source)
