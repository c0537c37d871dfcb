"""Regenerate tests/golden/mfcc.json from librosa, for signals the tests build.

Run with the [train] extra: python tests/golden/make_golden.py

Two sets of values per signal, neither computed by the runtime:
- ``mfcc_librosa``: librosa's MFCCs of the whole signal;
- ``clip_features``: the model's input matrix as FeatureParams describes it,
  written out here step by step (trim by frame energy, keep the middle second,
  librosa's MFCCs of what is left, per-clip CMVN, centre in the frame window).
The runtime-only test (tests/test_features_golden.py) checks the NumPy path
against both, so a device without librosa can verify itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import librosa
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from signals import golden_signals  # noqa: E402

from audiomnist_edge.config import FeatureParams  # noqa: E402

# The golden parameters are spelled out, so changing the package defaults does not move them.
PARAMS = FeatureParams(sample_rate=8000, clip_seconds=1.0, n_fft=256, win_length=200, hop_length=80,
                       n_mels=40, fmin=20.0, fmax=4000.0, db_amin=1e-8, n_mfcc=13, trim_db=30.0,
                       cmvn=True)
CMVN_EPS = 1e-5  # smallest standard deviation CMVN divides by


def librosa_mfcc(y: np.ndarray) -> np.ndarray:
    """librosa's MFCCs with every argument pinned, shape (frames, n_mfcc)."""
    mel = librosa.feature.melspectrogram(y=y, **PARAMS.librosa_melspectrogram_kwargs())
    db = librosa.power_to_db(mel, **PARAMS.librosa_power_to_db_kwargs())
    return librosa.feature.mfcc(S=db, **PARAMS.librosa_mfcc_kwargs()).T


def trim(y: np.ndarray) -> np.ndarray:
    """The speech: from the first to the last frame within trim_db of the loudest.

    Frames are win_length samples every hop_length, uncentred (a signal shorter
    than one frame is zero-padded to one); a frame's energy is its mean square.
    """
    win, hop = PARAMS.win_length, PARAMS.hop_length
    padded = np.pad(y.astype(np.float64), (0, max(0, win - len(y))))
    energy = (librosa.util.frame(padded, frame_length=win, hop_length=hop, axis=0) ** 2).mean(axis=1)
    if energy.max() <= 0:
        return y
    with np.errstate(divide="ignore"):
        level_db = 10 * np.log10(energy / energy.max())
    loud = np.flatnonzero(level_db >= -PARAMS.trim_db)
    return y[loud[0] * hop: min(len(y), loud[-1] * hop + win)]


def middle(y: np.ndarray, length: int) -> np.ndarray:
    """The middle ``length`` samples (all of them if fewer)."""
    cut = max(0, len(y) - length)
    return y[cut // 2: cut // 2 + min(len(y), length)]


def model_input(y: np.ndarray) -> np.ndarray:
    """The clip's feature matrix, shape (n_frames, n_mfcc), built from librosa's MFCCs."""
    coefficients = librosa_mfcc(middle(trim(y), PARAMS.clip_samples))
    coefficients = (coefficients - coefficients.mean(axis=0)) / np.maximum(coefficients.std(axis=0), CMVN_EPS)
    n_frames = PARAMS.n_frames
    kept = coefficients[(len(coefficients) - min(len(coefficients), n_frames)) // 2:][:n_frames]
    out = np.zeros((n_frames, PARAMS.n_mfcc), dtype=np.float32)
    start = (n_frames - len(kept)) // 2
    out[start:start + len(kept)] = kept
    return out


def main() -> None:
    golden = {"params": PARAMS.to_dict(), "signals": {}}
    for name, samples in golden_signals().items():
        golden["signals"][name] = {
            "mfcc_librosa": np.round(librosa_mfcc(samples), 4).tolist(),
            "clip_features": np.round(model_input(samples), 4).tolist(),
        }
    out = Path(__file__).with_name("mfcc.json")
    out.write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
