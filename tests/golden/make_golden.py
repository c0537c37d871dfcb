"""Regenerate tests/golden/mfcc.json: librosa's MFCCs of signals the tests build.

Run with the [train] extra: python tests/golden/make_golden.py
The runtime-only test (tests/test_features_golden.py) checks the NumPy path
against these values, so a device without librosa can verify itself.
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
from audiomnist_edge.features import clip_features  # noqa: E402

# The golden parameters are spelled out, so changing the package defaults does not move them.
PARAMS = FeatureParams(sample_rate=8000, clip_seconds=1.0, n_fft=256, win_length=200, hop_length=80,
                       n_mels=40, fmin=20.0, fmax=4000.0, db_amin=1e-8, n_mfcc=13, trim_db=30.0,
                       cmvn=True)


def main() -> None:
    golden = {"params": PARAMS.to_dict(), "signals": {}}
    for name, samples in golden_signals().items():
        mel = librosa.feature.melspectrogram(y=samples, **PARAMS.librosa_melspectrogram_kwargs())
        db = librosa.power_to_db(mel, **PARAMS.librosa_power_to_db_kwargs())
        mfcc = librosa.feature.mfcc(S=db, **PARAMS.librosa_mfcc_kwargs()).T
        golden["signals"][name] = {
            "mfcc_librosa": np.round(mfcc, 4).tolist(),
            "clip_features": np.round(clip_features(samples, PARAMS), 4).tolist(),
        }
    out = Path(__file__).with_name("mfcc.json")
    out.write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
