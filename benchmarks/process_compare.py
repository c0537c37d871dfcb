"""The edge process against processes that import TensorFlow: cold start and peak memory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from audiomnist_edge.bench import COLD_START_CODE, run_fresh_process

from .timing import Tick, ratio

OURS = "edge"

# Import TensorFlow, load the Keras model, compute our features and predict one clip.
# argv: model.keras, features.json, WAV path.
KERAS_CODE = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras
from audiomnist_edge.config import FeatureParams
from audiomnist_edge.features import clip_features
from audiomnist_edge.memory import peak_rss_bytes
from audiomnist_edge.resample import resample
from audiomnist_edge.wav import read_wav
model = keras.models.load_model(sys.argv[1], compile=False)
params = FeatureParams.from_json(open(sys.argv[2]).read())
samples, rate = read_wav(sys.argv[3])
x = clip_features(resample(samples, rate, params.sample_rate), params)
label = int(model.predict(x[None], verbose=0).argmax())
done = time.time()
print(json.dumps({"done": done, "label": str(label), "peak_rss_bytes": peak_rss_bytes()}))
"""


def commands(model: Path, run_dir: Path | None, wav: Path) -> dict[str, list[str]]:
    """Name -> argv of each process: ours (ai-edge-litert), the same model on TensorFlow's
    interpreter, and the Keras model (when there is a run folder)."""
    python = sys.executable
    argvs = {
        OURS: [python, "-c", COLD_START_CODE, str(model), "ai-edge-litert", str(wav)],
        "tensorflow_lite": [python, "-c", COLD_START_CODE, str(model), "tensorflow", str(wav)],
    }
    if run_dir is not None:
        argvs["tensorflow_keras"] = [python, "-c", KERAS_CODE, str(run_dir / "model.keras"),
                                     str(run_dir / "features.json"), str(wav)]
    return argvs


def compare(model: Path, run_dir: Path | None, wav: Path, runs: int,
            tick: Tick = lambda n: None) -> dict[str, Any]:
    """Cold start (ms) and peak RSS (MB) of each process over ``runs`` interleaved runs,
    and their paired ratios to ours (above 1: ours starts faster / uses less)."""
    argvs = commands(model, run_dir, wav)
    start_ms = {name: [] for name in argvs}
    peak_mb = {name: [] for name in argvs}
    for _ in range(runs):
        for name, argv in argvs.items():
            ms, mb, _ = run_fresh_process(argv)
            start_ms[name].append(ms)
            peak_mb[name].append(mb)
        tick(1)

    def summary(values: list[float]) -> dict[str, float]:
        p25, p50, p75 = np.percentile(values, [25, 50, 75])
        return {"median": round(float(p50), 1), "p25": round(float(p25), 1), "p75": round(float(p75), 1)}

    return {
        "cold_start_ms": {name: summary(v) for name, v in start_ms.items()},
        "peak_rss_mb": {name: summary(v) for name, v in peak_mb.items()},
        "cold_start_ratio": {name: ratio(v, start_ms[OURS]) for name, v in start_ms.items() if name != OURS},
        "memory_ratio": {name: ratio(v, peak_mb[OURS]) for name, v in peak_mb.items() if name != OURS},
    }
