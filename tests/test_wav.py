"""The WAV reader: every supported encoding, and a clear error for everything else."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pytest
from audiomnist_edge.wav import AudioError, open_audio, read_wav, read_wav_info, wav_bytes, write_wav
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def riff(fmt_chunk: bytes, data: bytes, extra_chunks: bytes = b"", data_size: int | None = None) -> bytes:
    """A RIFF/WAVE file from a raw fmt chunk body and data bytes."""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk + extra_chunks
    body += b"data" + struct.pack("<I", len(data) if data_size is None else data_size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt(codec: int, channels: int, rate: int, bits: int) -> bytes:
    block = channels * bits // 8
    return struct.pack("<HHIIHH", codec, channels, rate, (rate * block) % 2 ** 32, block, bits)


def extensible(subformat: int, channels: int, rate: int, bits: int) -> bytes:
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    return (fmt(0xFFFE, channels, rate, bits) + struct.pack("<HHI", 22, bits, 0)
            + struct.pack("<H", subformat) + guid_tail)


SIGNAL = np.array([0.0, 0.5, -0.5, 0.25, -1.0, 0.999], dtype=np.float64)


def encode(bits: int, values: np.ndarray) -> bytes:
    if bits == 8:
        return (np.round(values * 127) + 128).astype(np.uint8).tobytes()
    if bits == 24:
        ints = np.round(values * (2 ** 23 - 1)).astype(np.int32)
        return b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    dtype = {16: "<i2", 32: "<i4"}[bits]
    return np.round(values * (2 ** (bits - 1) - 1)).astype(dtype).tobytes()


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
def test_reads_pcm_depths(bits: int) -> None:
    samples, rate = read_wav(riff(fmt(1, 1, 11025, bits), encode(bits, SIGNAL)))
    assert rate == 11025 and samples.dtype == np.float32
    np.testing.assert_allclose(samples, SIGNAL, atol=2.0 / 2 ** (bits - 1) + 1e-6)


@pytest.mark.parametrize("dtype,bits", [("<f4", 32), ("<f8", 64)])
def test_reads_ieee_float(dtype: str, bits: int) -> None:
    samples, _ = read_wav(riff(fmt(3, 1, 8000, bits), SIGNAL.astype(dtype).tobytes()))
    np.testing.assert_allclose(samples, SIGNAL, atol=1e-7)


@pytest.mark.parametrize("subformat,bits,payload", [
    (1, 16, encode(16, SIGNAL)), (1, 24, encode(24, SIGNAL)), (3, 32, SIGNAL.astype("<f4").tobytes())])
def test_reads_wave_format_extensible(subformat: int, bits: int, payload: bytes) -> None:
    samples, rate = read_wav(riff(extensible(subformat, 1, 48000, bits), payload))
    assert rate == 48000
    np.testing.assert_allclose(samples, SIGNAL, atol=1e-4)


def test_downmixes_channels_and_skips_unknown_chunks() -> None:
    stereo = np.stack([SIGNAL, -SIGNAL * 0.5], axis=1)
    data = encode(16, stereo.reshape(-1))
    samples, fmt_info = read_wav_info(riff(fmt(1, 2, 16000, 16), data, extra_chunks=b"LIST\x03\x00\x00\x00abc\x00"))
    assert samples.shape == (len(SIGNAL), 2) and fmt_info.channels == 2
    mono, _ = read_wav(riff(fmt(1, 2, 16000, 16), data))
    np.testing.assert_allclose(mono, SIGNAL * 0.25, atol=1e-4)


def test_write_then_read_round_trip(tmp_path) -> None:
    path = tmp_path / "x.wav"
    write_wav(path, SIGNAL * 0.9, 22050)
    samples, rate = read_wav(path)
    assert rate == 22050
    np.testing.assert_allclose(samples, SIGNAL * 0.9, atol=1 / 32767)
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]


def test_streamed_data_size_reads_to_end() -> None:
    samples, _ = read_wav(riff(fmt(1, 1, 8000, 16), encode(16, SIGNAL), data_size=0xFFFFFFFF))
    assert len(samples) == len(SIGNAL)


GOOD = riff(fmt(1, 1, 8000, 16), encode(16, SIGNAL))


@pytest.mark.parametrize("data,problem", [
    (b"", "truncated header"),
    (b"RIFX" + GOOD[4:], "not a RIFF/WAVE"),
    (b"RIFF\x10\x00\x00\x00AVI LIST", "not a RIFF/WAVE"),
    (GOOD[:30], "truncated"),
    (GOOD[:-3], "truncated data"),
    (riff(fmt(1, 1, 8000, 16), b""), "no samples"),
    (riff(fmt(2, 1, 8000, 4), b"\x00" * 64), "ADPCM"),
    (riff(fmt(0x55, 1, 8000, 16), b"\x00" * 64), "MP3"),
    (riff(fmt(1, 1, 0, 16), b"\x00" * 64), "sample rate"),
    (riff(fmt(1, 1, 4_000_000_000, 16), b"\x00" * 64), "sample rate"),
    (riff(fmt(1, 0, 8000, 16), b"\x00" * 64), "channel"),
    (riff(fmt(1, 1, 8000, 12), b"\x00" * 64), "bit depth"),
    (riff(struct.pack("<HHIIHH", 1, 1, 8000, 16000, 7, 16), b"\x00" * 64), "block align"),
    (riff(fmt(3, 1, 8000, 32), np.array([0.1, np.nan], "<f4").tobytes()), "NaN"),
    (riff(fmt(3, 1, 8000, 32), np.array([np.inf, 0.1], "<f4").tobytes()), "NaN or infinite"),
    (GOOD.replace(b"fmt ", b"junk"), "data chunk before fmt chunk"),
    (GOOD[:GOOD.index(b"data")], "no data chunk"),
])
def test_bad_input_names_the_problem(data: bytes, problem: str) -> None:
    with pytest.raises(AudioError, match=problem) as info:
        read_wav(data)
    assert str(info.value).startswith("<bytes>: ") and "\n" not in str(info.value)


def test_missing_file_is_an_audio_error(tmp_path) -> None:
    with pytest.raises(AudioError, match="nope.wav"):
        read_wav(tmp_path / "nope.wav")


@pytest.fixture(scope="module")
def real_wav(fsdd_test_clips) -> bytes:
    return fsdd_test_clips[0].read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_real_files_give_audio_or_audio_error(real_wav: bytes, data) -> None:
    """Flip, cut or overwrite bytes of a real FSDD file: valid audio or AudioError, nothing else."""
    mutated = bytearray(real_wav)
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["set", "truncate", "insert"]))
        where = data.draw(st.integers(0, max(0, min(len(mutated) - 1, 96))))
        if action == "set" and mutated:
            mutated[where] = data.draw(st.integers(0, 255))
        elif action == "truncate":
            del mutated[data.draw(st.integers(0, len(mutated))):]
        else:
            mutated[where:where] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        samples, rate = read_wav(bytes(mutated))
    except AudioError as exc:
        assert "\n" not in str(exc)
        return
    assert samples.dtype == np.float32 and samples.ndim == 1 and len(samples) > 0
    assert np.all(np.isfinite(samples)) and np.abs(samples).max() <= 1.0
    assert 1000 <= rate <= 768000


def test_wav_bytes_float32_round_trip() -> None:
    samples, _ = read_wav(wav_bytes(SIGNAL, 8000, bits=32))
    np.testing.assert_allclose(samples, SIGNAL, atol=1e-7)


def mulaw_encode(x: np.ndarray) -> np.ndarray:
    """G.711 mu-law bytes of float samples (a reference encoder for the test)."""
    ints = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int32)
    sign = np.where(ints < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(ints), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def test_reads_mulaw_and_alaw() -> None:
    x = np.sin(np.linspace(0, 20, 800)) * 0.6
    samples, rate = read_wav(riff(fmt(7, 1, 8000, 8), mulaw_encode(x).tobytes()))
    assert rate == 8000
    np.testing.assert_allclose(samples, x, atol=0.02)  # 8-bit companding: about 2% at 0.6
    silence, _ = read_wav(riff(fmt(6, 1, 8000, 8), bytes([0xD5] * 10)))  # A-law zero code
    assert np.abs(silence).max() < 1e-3
    loud, _ = read_wav(riff(fmt(6, 1, 8000, 8), bytes([0xAA, 0x2A])))  # A-law +-max codes
    assert loud[0] > 0.9 and loud[1] < -0.9


@pytest.mark.parametrize("chunk", [b"LIST", b"data"])
def test_huge_declared_chunk_sizes_are_not_allocated(chunk: bytes) -> None:
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt(1, 1, 8000, 16)
    body += chunk + struct.pack("<I", 0xFFFFFFF0) + b"\x00" * 64
    tracemalloc.start()
    try:
        with pytest.raises(AudioError, match="truncated"):
            read_wav(b"RIFF" + struct.pack("<I", len(body)) + body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_blocks_read_a_long_file_in_bounded_memory(tmp_path) -> None:
    path = tmp_path / "long.wav"
    write_wav(path, np.full(48000 * 60, 0.25), 48000)  # one minute at 48 kHz: 5.8 MB on disk
    tracemalloc.start()
    try:
        with open_audio(path) as audio:
            assert (audio.sample_rate, audio.frames) == (48000, 48000 * 60)
            total = sum(len(b) for b in audio.blocks(2400))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 48000 * 60
    assert peak < 1 << 20


def test_fifo_is_streamed_in_blocks(tmp_path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    data = riff(fmt(1, 1, 8000, 16), encode(16, np.tile(SIGNAL, 2000)), data_size=0xFFFFFFFF)
    writer = threading.Thread(target=lambda: fifo.write_bytes(data))
    writer.start()
    with open_audio(fifo) as audio:
        assert audio.frames is None
        sizes = [len(b) for b in audio.blocks(1000)]
    writer.join()
    assert sum(sizes) == 2000 * len(SIGNAL) and max(sizes) == 1000


@pytest.mark.parametrize("where, message", [("folder", "is a folder"), ("/dev/null", "is a device"),
                                            ("absent.wav", "No such file or directory")])
def test_non_files_are_named_for_what_they_are(tmp_path, where: str, message: str) -> None:
    (tmp_path / "folder").mkdir()
    path = where if where.startswith("/") else tmp_path / where
    with pytest.raises(AudioError, match=f"{path}: {message}"):
        read_wav(path)


def test_flac_through_soundfile(tmp_path) -> None:
    soundfile = pytest.importorskip("soundfile")
    path = tmp_path / "x.flac"
    soundfile.write(path, np.stack([SIGNAL * 0.5, SIGNAL * 0.5], axis=1), 16000, subtype="PCM_16")
    samples, rate = read_wav(path)
    assert rate == 16000
    np.testing.assert_allclose(samples, SIGNAL * 0.5, atol=1e-4)


def test_flac_without_soundfile_is_a_one_line_hint(tmp_path) -> None:
    path = tmp_path / "x.flac"
    path.write_bytes(b"fLaC" + b"\x00" * 64)
    code = ("import sys; sys.modules['soundfile'] = None\n"
            "from audiomnist_edge.wav import read_wav, AudioError\n"
            f"try:\n    read_wav({str(path)!r})\nexcept AudioError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == (f"{path}: reading .flac files needs the soundfile extra: "
                                     "pip install 'audiomnist-edge[soundfile]'")
