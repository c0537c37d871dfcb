"""Write the project's self-description into a .tflite file.

The reader is ``audiomnist_edge.artifact`` (standard library only); this side
uses TensorFlow's flatbuffer utilities to add the metadata entry.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from audiomnist_edge.artifact import METADATA_NAME, metadata_bytes, metadata_span, seal
from audiomnist_edge.config import FeatureParams


def folder_names(paths: str | list[str]) -> str | list[str]:
    """The last component of a path, or of each path in a list (a shipped model should not
    carry the training machine's paths)."""
    return Path(paths).name if isinstance(paths, str) else [Path(p).name for p in paths]


def describe_model(name: str, labels: list[str], params: FeatureParams, runtime: Any, quant: str,
                   normalisation: str = "in the graph") -> dict[str, Any]:
    """The metadata every model file carries: name, creation time, labels, features (and their
    hash), normalisation and the quantization of ``runtime`` (an edge Model of the bytes)."""
    from .quantize import tensor_quantization

    return {
        "name": name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "labels": list(labels),
        "features": params.to_dict(),
        "features_hash": params.stable_hash(),
        "normalisation": normalisation,
        "quantization": {"type": quant,
                         "input": tensor_quantization(runtime.input_details),
                         "output": tensor_quantization(runtime.output_details)},
    }


def embed_metadata(model_content: bytes, metadata: dict[str, Any]) -> bytes:
    """Model bytes with ``metadata`` stored as the sealed ``audiomnist_edge`` entry.

    An existing entry of that name is replaced; the result's checksum is filled in.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_content))
    model.metadata = [m for m in (model.metadata or [])
                      if (m.name.decode() if isinstance(m.name, bytes) else m.name) != METADATA_NAME]
    buffer = schema.BufferT()
    buffer.data = list(metadata_bytes(metadata))
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    content = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    if metadata_span(content) is None:
        raise RuntimeError("metadata entry was not written")
    return seal(content)
