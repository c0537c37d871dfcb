"""Constants for the raw MFCC columns (FeatureParams.raw_mean and raw_std) and for
normalising by a fixed scale (FeatureParams.cmn_scale).

A model with raw columns sees the MFCCs before per-clip normalisation beside the
normalised ones. An int8 model quantizes its whole input with one scale, and the
raw c0 (mean about -240, spread about 70) would crush every other column, so the
raw columns are standardised by fixed per-coefficient constants first. This
measures them on the speech frames of a set of corpus folders. Measure them on
clips every fold trains on (the synthetic speakers) and no held-out speaker
informs the input scale.

    python -m audiomnist_edge.train.raw_stats --data DIR [--data DIR ...] [--max-clips N] [--cmn]

prints the ``--set features.raw_mean=[...] --set features.raw_std=[...]`` arguments
of ``evaluate --folds`` (the same keys go into a features.json for ``train``), so

    audiomnist-edge evaluate runs/default --folds $(python -m audiomnist_edge.train.raw_stats ...) --out runs/raw

With ``--cmn`` it prints ``--set features.cmn_scale=[...]``: each coefficient's
deviation from its clip's mean, pooled over the clips.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..config import FeatureParams
from ..errors import EdgeError
from ..features import speech_mfcc
from .cache import load_samples
from .datasets import load_many


def _speech_mfccs(paths: list[Path], params: FeatureParams) -> list[np.ndarray]:
    """The MFCCs of each clip's trimmed speech, the frames ``clip_features`` normalises, (k, n_mfcc) each."""
    return [speech_mfcc(load_samples(path, params.sample_rate), params) for path in paths]


def raw_mfcc_stats(paths: list[Path], params: FeatureParams) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and standard deviation per coefficient (n_mfcc each, rounded to 0.1) of the
    clips' speech MFCCs, pooled."""
    pooled = np.concatenate(_speech_mfccs(paths, params))
    return (tuple(round(float(v), 1) for v in pooled.mean(axis=0)),
            tuple(round(max(float(v), 0.1), 1) for v in pooled.std(axis=0)))


def cmn_scale(paths: list[Path], params: FeatureParams) -> tuple[float, ...]:
    """Standard deviation per coefficient (n_mfcc values, rounded to 0.01) of the clips' speech
    MFCCs less each clip's own mean, pooled: a fixed ``cmn_scale``."""
    pooled = np.concatenate([raw - raw.mean(axis=0) for raw in _speech_mfccs(paths, params)])
    return tuple(round(max(float(v), 0.01), 2) for v in pooled.std(axis=0))


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True, help="a corpus folder (repeatable)")
    parser.add_argument("--max-clips", type=int, default=1000, help="clips drawn at random (seed 0)")
    parser.add_argument("--features", help="features.json of the run to measure for (default: the defaults)")
    parser.add_argument("--cmn", action="store_true", help="print a cmn_scale instead of raw_mean and raw_std")
    args = parser.parse_args(argv)
    try:
        params = FeatureParams.from_json(Path(args.features).read_text()) if args.features else FeatureParams()
        clips = load_many(args.data, synthetic=True).clips
        chosen = np.random.default_rng(0).permutation(len(clips))[: args.max_clips]
        paths = [clips[i].path for i in sorted(chosen)]
        if args.cmn:
            settings = {"cmn_scale": cmn_scale(paths, params)}
        else:
            settings = dict(zip(("raw_mean", "raw_std"), raw_mfcc_stats(paths, params)))
    except (EdgeError, OSError) as exc:
        sys.exit(f"error: {exc}")
    compact = {"separators": (",", ":")}  # no spaces: each setting stays one argument in $(...)
    print(" ".join(f"--set features.{key}={json.dumps(list(value), **compact)}" for key, value in settings.items()))


if __name__ == "__main__":
    main()
