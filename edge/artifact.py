"""The model artifact: one .tflite file that carries its own description.

The description is a JSON document stored as a TFLite metadata entry named
``audiomnist_edge`` (the flatbuffer's ``Model.metadata`` list pointing at a
buffer). It holds the schema version, labels, FeatureParams, quantization,
training summary, verification figures and a SHA-256 of the whole file taken
with the checksum field zeroed, so any change to the file is detected.

Reading needs only the standard library: a minimal flatbuffer walk of the
TFLite schema (Model.buffers = field 4, Model.metadata = field 6).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, FeatureParams
from .errors import EdgeError

METADATA_NAME = "audiomnist_edge"
SCHEMA_VERSION = 1
TFLITE_IDENTIFIER = b"TFL3"
CHECKSUM_PLACEHOLDER = "0" * 64
MAX_MODEL_BYTES = 256 * 1024 * 1024
"""Largest model file read (a spoken-digit model is well under 1 MB)."""
_CHECKSUM_FIELD = re.compile(rb'"sha256": ?"([0-9a-f]{64})"')


class ModelError(EdgeError):
    """A model file the runtime refuses; the message says why in one line."""


class _FlatBuffer:
    """Just enough of the flatbuffers wire format to read tables and vectors."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _u32(self, pos: int) -> int:
        if pos < 0 or pos + 4 > len(self.data):
            raise ModelError("truncated or corrupt flatbuffer")
        return struct.unpack_from("<I", self.data, pos)[0]

    def _field(self, table: int, index: int) -> int | None:
        """Absolute position of a table field, or None when absent."""
        vtable = table - struct.unpack_from("<i", self.data, table)[0]
        if vtable < 0 or vtable + 4 > len(self.data):
            raise ModelError("truncated or corrupt flatbuffer")
        vtable_size = struct.unpack_from("<H", self.data, vtable)[0]
        slot = 4 + 2 * index
        if slot >= vtable_size:
            return None
        offset = struct.unpack_from("<H", self.data, vtable + slot)[0]
        return table + offset if offset else None

    def root(self) -> int:
        return self._u32(0)

    def scalar_u32(self, table: int, index: int) -> int | None:
        pos = self._field(table, index)
        return None if pos is None else self._u32(pos)

    def vector(self, table: int, index: int) -> tuple[int, int]:
        """(start of elements, length) of a vector field; (0, 0) when absent."""
        pos = self._field(table, index)
        if pos is None:
            return 0, 0
        start = pos + self._u32(pos)
        length = self._u32(start)
        if start + 4 + length > len(self.data):
            raise ModelError("truncated or corrupt flatbuffer")
        return start + 4, length

    def tables(self, table: int, index: int) -> list[int]:
        start, length = self.vector(table, index)
        return [start + 4 * i + self._u32(start + 4 * i) for i in range(length)]


def metadata_span(data: bytes, name: str = METADATA_NAME) -> tuple[int, int] | None:
    """(offset, length) in ``data`` of the named TFLite metadata buffer, or None."""
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelError("not a TFLite model (no TFL3 identifier)")
    fb = _FlatBuffer(data)
    try:
        model = fb.root()
        buffers = fb.tables(model, 4)
        for entry in fb.tables(model, 6):
            start, length = fb.vector(entry, 0)
            if data[start : start + length].decode("utf-8", "replace") != name:
                continue
            index = fb.scalar_u32(entry, 1)
            if index is None or index >= len(buffers):
                raise ModelError("metadata points at a missing buffer")
            return fb.vector(buffers[index], 0)
    except struct.error:
        raise ModelError("truncated or corrupt flatbuffer") from None
    return None


def metadata_bytes(metadata: dict[str, Any]) -> bytes:
    """Canonical metadata JSON with the schema and a zeroed checksum first.

    The checksum field comes first so it is the one ``seal`` fills in, whatever
    the rest of the document holds.
    """
    rest = {k: v for k, v in metadata.items() if k not in ("schema", "sha256")}
    document = {"schema": SCHEMA_VERSION, "sha256": CHECKSUM_PLACEHOLDER, **rest}
    return json.dumps(document, indent=None, sort_keys=False).encode("utf-8")


def file_checksum(data: bytes, span: tuple[int, int]) -> str:
    """SHA-256 of the file with the metadata's checksum value zeroed."""
    start, length = span
    match = _CHECKSUM_FIELD.search(data, start, start + length)
    if match is None:
        raise ModelError("metadata has no sha256 field")
    zeroed = data[: match.start(1)] + CHECKSUM_PLACEHOLDER.encode() + data[match.end(1) :]
    return hashlib.sha256(zeroed).hexdigest()


def seal(data: bytes) -> bytes:
    """Fill in the checksum of a model whose metadata holds the zero placeholder."""
    span = metadata_span(data)
    if span is None:
        raise ModelError(f"no {METADATA_NAME!r} metadata to seal")
    digest = file_checksum(data, span)
    start, length = span
    match = _CHECKSUM_FIELD.search(data, start, start + length)
    assert match is not None  # file_checksum found it
    return data[: match.start(1)] + digest.encode() + data[match.end(1) :]


@dataclass(frozen=True)
class Artifact:
    """A verified model file: its bytes, metadata and feature configuration."""

    path: Path
    content: bytes
    metadata: dict[str, Any]
    params: FeatureParams

    @property
    def labels(self) -> list[str]:
        return list(self.metadata["labels"])

    @property
    def warps(self) -> tuple[float, ...]:
        """Mel-filterbank warps the model's decision averages over (``Model.utterance_probabilities``);
        (1.0,) for a model that names none."""
        return tuple(float(w) for w in self.metadata.get("warps") or (1.0,))

    @property
    def sha256(self) -> str:
        """SHA-256 of the file as stored (what transfers are checked against)."""
        return hashlib.sha256(self.content).hexdigest()


def _check_quantization(block: Any) -> str | None:
    """Why a metadata ``quantization`` block is malformed, or None when it is fine (or absent)."""
    if block is None:
        return None
    if not isinstance(block, dict):
        return "quantization is not an object"
    for side in ("input", "output"):
        if side not in block:
            continue
        q = block[side]
        if not isinstance(q, dict):
            return f"quantization.{side} is not an object"
        if not isinstance(q.get("dtype"), str):
            return f"quantization.{side}.dtype is not a string"
        shape = q.get("shape")
        if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
            return f"quantization.{side}.shape is not a list of integers"
        scale, zero_point = q.get("scale"), q.get("zero_point")
        if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale)):
            return f"quantization.{side}.scale is not a finite number"
        if not (isinstance(zero_point, int) and not isinstance(zero_point, bool)):
            return f"quantization.{side}.zero_point is not an integer"
    return None


MAX_WARPS = 8


def check_warps(warps: Any) -> str | None:
    """Why a metadata ``warps`` entry is malformed, or None when it is fine (or absent)."""
    if warps is None:
        return None
    if (
        not isinstance(warps, list)
        or not 1 <= len(warps) <= MAX_WARPS
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and 0.7 <= w <= 1.3 for w in warps)
    ):
        return f"warps is not a list of 1-{MAX_WARPS} mel warp factors within 0.7-1.3"
    return None


def parse_artifact(content: bytes, path: Path) -> Artifact:
    """Check and describe model bytes; ModelError with a one-line reason if unusable.

    Every metadata field the runtime reads is checked here (labels, features,
    features_hash, quantization, warps), so a model that loads never fails later on them.
    """
    span = metadata_span(content)
    if span is None:
        raise ModelError(f"{path}: no {METADATA_NAME} metadata (not made by `audiomnist-edge convert`)")
    start, length = span
    try:
        metadata = json.loads(content[start : start + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ModelError(f"{path}: metadata is not valid JSON") from None
    if not isinstance(metadata, dict):
        raise ModelError(f"{path}: metadata is not a JSON object")
    schema = metadata.get("schema")
    if schema != SCHEMA_VERSION:
        raise ModelError(f"{path}: unknown metadata schema {schema!r} (this runtime reads {SCHEMA_VERSION})")
    if metadata.get("sha256") != file_checksum(content, span):
        raise ModelError(f"{path}: checksum mismatch (file changed or corrupt)")
    labels = metadata.get("labels")
    if not isinstance(labels, list) or not labels:
        raise ModelError(f"{path}: metadata has no labels")
    if not all(isinstance(label, str) and label for label in labels) or len(set(labels)) != len(labels):
        raise ModelError(f"{path}: metadata labels must be distinct non-empty strings")
    features = metadata.get("features")
    if not isinstance(features, dict):
        raise ModelError(f"{path}: metadata features is not an object")
    try:
        params = FeatureParams.from_dict(features)
    except ConfigError as exc:
        raise ModelError(f"{path}: feature configuration the runtime cannot compute: {exc}") from None
    if metadata.get("features_hash") != params.stable_hash():
        raise ModelError(f"{path}: feature configuration does not match its hash")
    problem = _check_quantization(metadata.get("quantization")) or check_warps(metadata.get("warps"))
    if problem:
        raise ModelError(f"{path}: metadata {problem}")
    return Artifact(path=path, content=content, metadata=metadata, params=params)


def read_model_bytes(path: Path, limit: int = MAX_MODEL_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ModelError otherwise.

    The size is checked before reading, so a device, a FIFO or a huge sparse file
    is refused at once instead of being read whole.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below).
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ModelError(f"{path}: not a regular file")
            if info.st_size > limit:
                raise ModelError(
                    f"{path}: {info.st_size} bytes is too large for a model (at most {limit // (1024 * 1024)} MB)"
                )
            content = handle.read(limit + 1)
    except OSError as exc:
        raise ModelError(f"{path}: {exc.strerror or exc}") from None
    if len(content) > limit:
        raise ModelError(f"{path}: too large for a model (at most {limit // (1024 * 1024)} MB)")
    return content


def read_artifact(path: str | Path) -> Artifact:
    """Read and check a model file."""
    path = Path(path)
    content = read_model_bytes(path)
    try:
        return parse_artifact(content, path)
    except ModelError as exc:
        message = str(exc)
        raise ModelError(message if message.startswith(str(path)) else f"{path}: {message}") from None
