"""Support for the flash tests: tiny model artifacts, the CLI, mounts.

Models are built by code (no TensorFlow, nothing committed): a float32
RESHAPE -> FULLY_CONNECTED -> SOFTMAX graph with the project's
metadata, written with the TFLite schema that ai-edge-litert ships. ``seed``
gives distinct models; ``padding`` adds an unused buffer to make big files;
``favour`` makes a model that answers that digit whatever it hears.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import require

from audiomnist_edge.artifact import METADATA_NAME, metadata_bytes, seal
from audiomnist_edge.config import FeatureParams
from audiomnist_edge.model import Model
from audiomnist_edge.targets import ACTIVE

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
flatbuffers = pytest.importorskip("flatbuffers")


def _tensor(name: str, shape: list[int], buffer: int, dtype: int | None = None) -> object:
    tensor = schema.TensorT()
    tensor.name, tensor.shape, tensor.buffer = name, shape, buffer
    tensor.type = schema.TensorType.FLOAT32 if dtype is None else dtype
    return tensor


def _operator(opcode: int, inputs: list[int], outputs: list[int]) -> object:
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode, inputs, outputs
    return op


def _buffer(data: np.ndarray | None = None) -> object:
    buffer = schema.BufferT()
    if data is not None:
        buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
    return buffer


@functools.lru_cache(maxsize=None)
def model_bytes(seed: int = 0, padding: int = 0, favour: int | None = None,
                metadata: str = "{}", nan: bool = False) -> bytes:
    """A sealed, loadable model artifact; same arguments give the same bytes.

    ``metadata`` is a JSON object whose fields replace or add metadata fields; ``nan``
    gives NaN weights: a model that loads but never gives a probability.
    """
    params = FeatureParams()
    n_in, n_out = int(np.prod(params.input_shape)), 10
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.05, (n_out, n_in)).astype(np.float32) * (np.nan if nan else 1)
    codes = []
    for builtin in (schema.BuiltinOperator.RESHAPE, schema.BuiltinOperator.FULLY_CONNECTED,
                    schema.BuiltinOperator.SOFTMAX):
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = builtin
        code.version = 1
        codes.append(code)
    graph = schema.SubGraphT()
    graph.tensors = [
        _tensor("features", [1, *params.input_shape], 0),
        _tensor("shape", [2], 1, schema.TensorType.INT32),
        _tensor("flat", [1, n_in], 0),
        _tensor("weights", [n_out, n_in], 2),
        _tensor("bias", [n_out], 3),
        _tensor("logits", [1, n_out], 0),
        _tensor("probabilities", [1, n_out], 0),
    ]
    graph.inputs, graph.outputs = [0], [6]
    graph.operators = [_operator(0, [0, 1], [2]), _operator(1, [2, 3, 4], [5]), _operator(2, [5], [6])]
    softmax = schema.SoftmaxOptionsT()
    softmax.beta = 1.0
    graph.operators[2].builtinOptionsType = schema.BuiltinOptions.SoftmaxOptions
    graph.operators[2].builtinOptions = softmax
    document = {"labels": [str(i) for i in range(n_out)], "features": params.to_dict(),
                "features_hash": params.stable_hash(), "note": f"test model {seed}",
                "name": f"test-{seed}" + (f"-says-{favour}" if favour is not None else "")}
    document.update(json.loads(metadata))
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, codes, [graph]
    model.buffers = [_buffer(), _buffer(np.array([1, n_in], np.int32)), _buffer(weights),
                     _buffer(np.eye(n_out, dtype=np.float32)[favour] * 30 if favour is not None
                             else np.zeros(n_out, np.float32)),
                     _buffer(np.frombuffer(metadata_bytes(document), np.uint8))]
    if padding:
        model.buffers.append(_buffer(rng.integers(0, 256, padding, dtype=np.uint8)))
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, 4
    model.metadata = [entry]
    builder = flatbuffers.Builder(1024 + padding + weights.nbytes)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return seal(bytes(builder.Output()))


CLI = str(Path(sys.executable).with_name("audiomnist-edge"))


def run_flash(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``audiomnist-edge flash ARGS`` as a user runs it; text output captured."""
    return subprocess.run([CLI, "flash", *map(str, args)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def write_model(path: Path, seed: int = 0, padding: int = 0, favour: int | None = None) -> str:
    """Write a test model to ``path``; its SHA-256."""
    data = model_bytes(seed, padding, favour)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory: Path) -> list[str]:
    """Temporary files flash may leave behind (there should be none)."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".model.tflite"))


@contextlib.contextmanager
def mounted(directory: Path, *options: str) -> Iterator[Path]:
    """``mount OPTIONS`` on ``directory`` for the duration; skips (fails in CI) where mount is not permitted.

    Examples: ``mounted(d, "-t", "tmpfs", "-o", "size=64k", "tmpfs")``,
    ``mounted(d, "--bind", "-o", "ro", str(d))`` (a read-only view of d itself).
    """
    require(os.geteuid() == 0, "needs root to mount a full or read-only filesystem")
    done = subprocess.run(["mount", *options, str(directory)], capture_output=True, text=True)
    require(done.returncode == 0, f"mount not permitted here: {done.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def device(tmp_path: Path, name: str, active: Path | None = None) -> Path:
    """A target directory, optionally with ``active`` already installed as the model."""
    directory = tmp_path / name
    directory.mkdir()
    if active is not None:
        (directory / ACTIVE).write_bytes(active.read_bytes())
    return directory


def assert_intact(directory: Path, sha256: str) -> None:
    """The active model is exactly the one expected, loads and runs; no temporary files left."""
    assert sha256_of(directory / ACTIVE) == sha256
    Model.load(directory / ACTIVE)
    assert leftovers(directory) == []
