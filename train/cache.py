"""Feature extraction, in parallel, cached on disk.

The cache key is the hash of the feature configuration
(``FeatureParams.stable_hash()``), the augmentation settings and seed, and the
input files (paths, sizes, modification times), so a second run with the same
inputs loads the arrays at once. Default location ``~/.cache/audiomnist-edge``
(override with ``$AUDIOMNIST_EDGE_CACHE`` or ``cache_dir=``).

Every array is exactly what the NumPy runtime computes: read_wav -> resample to
``params.sample_rate`` -> (augmentation) -> ``clip_features``.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import sys
from pathlib import Path

import numpy as np

from ..config import FeatureParams
from ..features import clip_features
from ..resample import resample
from ..wav import read_wav
from .augment import AugmentParams, augmented_features
from .datasets import Clip

CACHE_VERSION = 1


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir:
        return Path(cache_dir)
    return Path(os.environ.get("AUDIOMNIST_EDGE_CACHE", Path.home() / ".cache" / "audiomnist-edge"))


def load_samples(path: str | Path, rate: int) -> np.ndarray:
    """A file's samples at ``rate`` (float32 mono)."""
    samples, sr = read_wav(path)
    return resample(samples, sr, rate) if sr != rate else samples


def _files_digest(clips: list[Clip]) -> str:
    h = hashlib.sha256()
    for clip in clips:
        st = clip.path.stat()
        h.update(f"{clip.path.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _work(job):
    """Worker: (index, path, params json, augment dict or None, copies, seed) -> (index, array | error)."""
    index, path, params_json, aug_dict, copies, seed = job
    params = FeatureParams.from_json(params_json)
    try:
        samples = load_samples(path, params.sample_rate)
    except Exception as exc:  # reported, never silently dropped
        return index, f"{type(exc).__name__}: {exc}"
    if aug_dict is None:
        return index, clip_features(samples, params)
    aug = AugmentParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in aug_dict.items()})
    rng = np.random.default_rng([seed, index])
    return index, augmented_features(samples, params, aug, rng, copies)


def extract(clips: list[Clip], params: FeatureParams, aug: AugmentParams | None = None,
            copies: int | None = None, seed: int = 0, cache_dir: str | Path | None = None,
            workers: int | None = None, progress: bool = True, label: str = "features",
            ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Features of ``clips``: (x, ok, problems).

    Without ``aug``: x has shape (n, *input_shape). With ``aug``: ``copies``
    (default aug.copies) augmented matrices per clip, shape (n, copies, *input_shape),
    clip i's copies drawn from a generator seeded by (seed, i), so they do not
    depend on the worker count. ``ok`` flags the readable clips; ``problems``
    lists (file name, reason) for the others (their rows are zero).
    """
    n_copies = (aug.copies if copies is None else copies) if aug else 0
    key_src = json.dumps({
        "v": CACHE_VERSION, "params": params.stable_hash(), "files": _files_digest(clips),
        "aug": aug.to_dict() if aug else None, "copies": n_copies, "seed": seed if aug else None,
    }, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
    path = cache_root(cache_dir) / "features" / f"{label}-{key}.npz"
    shape = (len(clips), n_copies, *params.input_shape) if aug else (len(clips), *params.input_shape)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                problems = [tuple(p) for p in json.loads(str(data["problems"]))]
                if data["x"].shape == shape:
                    return data["x"], data["ok"], problems
        except (OSError, ValueError, KeyError):
            pass
    x = np.zeros(shape, dtype=np.float32)
    ok = np.zeros(len(clips), dtype=bool)
    problems: list[tuple[str, str]] = []
    jobs = [(i, str(c.path), params.to_json(), aug.to_dict() if aug else None, n_copies, seed)
            for i, c in enumerate(clips)]
    workers = workers or min(2, os.cpu_count() or 1)
    results = _run(jobs, workers, progress, label)
    for index, result in results:
        if isinstance(result, str):
            problems.append((clips[index].name, result))
        else:
            x[index] = result
            ok[index] = True
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, ok=ok, problems=json.dumps(problems))
    tmp.replace(path)
    return x, ok, problems


def _run(jobs, workers, progress, label):
    import click

    chunk = max(1, min(64, len(jobs) // (workers * 8) or 1))
    if workers <= 1 or len(jobs) < 64:
        iterator = map(_work, jobs)
        pool = None
    else:
        # fork is cheapest and needs no __main__ guard, but is unsafe once TensorFlow's
        # threads exist; then fall back to a fresh interpreter per worker.
        method = "fork" if sys.platform == "linux" and "tensorflow" not in sys.modules else "spawn"
        ctx = multiprocessing.get_context(method)
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx)
        iterator = pool.map(_work, jobs, chunksize=chunk)
    try:
        if progress:
            with click.progressbar(iterator, length=len(jobs), label=label, file=sys.stderr) as bar:
                return list(bar)
        return list(iterator)
    finally:
        if pool:
            pool.shutdown()
