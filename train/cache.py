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
import dataclasses
import hashlib
import json
import multiprocessing
import os
import pwd
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..atomic import write_file
from ..config import FeatureParams
from ..errors import EdgeError
from ..features import clip_features
from ..resample import resample
from ..wav import read_wav
from .augment import AugmentParams, augmented_features
from .datasets import LABELS, Clip

CACHE_VERSION = 1


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache folder: ``cache_dir``, else $AUDIOMNIST_EDGE_CACHE, else ~/.cache/audiomnist-edge.

    Empty variables count as unset; a HOME that is not an absolute path falls
    back to the account's home from the password database.
    """
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get("AUDIOMNIST_EDGE_CACHE"):
        return Path(os.environ["AUDIOMNIST_EDGE_CACHE"])
    home = os.environ.get("HOME", "")
    if not os.path.isabs(home):
        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            home = ""
    if not os.path.isabs(home):
        raise EdgeError("no home folder for the feature cache; set AUDIOMNIST_EDGE_CACHE or pass --cache-dir")
    return Path(home) / ".cache" / "audiomnist-edge"


def _load_cached(path: Path, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, list] | None:
    """The cached (x, ok, problems) at ``path`` if it is complete and of ``shape``; else None
    (a missing, truncated or corrupt file is a miss, rewritten by the caller)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            problems = [tuple(p) for p in json.loads(str(data["problems"]))]
            x, ok = data["x"], data["ok"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
    if x.shape != shape or x.dtype != np.float32 or ok.shape != shape[:1] or ok.dtype != bool:
        return None
    return x, ok, problems


def _save_cached(path: Path, x: np.ndarray, ok: np.ndarray, problems: list) -> None:
    """Write the cache file whole (unique temporary file, then rename); warn and go on if impossible."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, lambda handle: np.savez(handle, x=x, ok=ok, problems=json.dumps(problems)),
                   force=True)
    except (OSError, EdgeError) as exc:
        print(f"warning: feature cache not written ({exc}); continuing without it", file=sys.stderr)


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
    """Worker: (index, path, params json, augment dict or None, copies, seed, backwards, mel warp)
    -> (index, array | error)."""
    index, path, params_json, aug_dict, copies, seed, backwards, warp = job
    params = FeatureParams.from_json(params_json)
    try:
        samples = load_samples(path, params.sample_rate)
    except Exception as exc:  # reported, never silently dropped
        return index, f"{type(exc).__name__}: {exc}"
    if backwards:
        samples = np.ascontiguousarray(samples[::-1])
    if aug_dict is None:
        return index, clip_features(samples, params, warp=warp)
    aug = AugmentParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in aug_dict.items()})
    rng = np.random.default_rng([seed, index])
    return index, augmented_features(samples, params, aug, rng, copies)


def extract(clips: list[Clip], params: FeatureParams, aug: AugmentParams | None = None,
            copies: int | None = None, seed: int = 0, cache_dir: str | Path | None = None,
            workers: int | None = None, progress: bool = True, label: str = "features",
            backwards: bool = False, warp: float = 1.0) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Features of ``clips``: (x, ok, problems).

    Without ``aug``: x has shape (n, *input_shape). With ``aug``: ``copies``
    (default aug.copies) augmented matrices per clip, shape (n, copies, *input_shape),
    clip i's copies drawn from a generator seeded by (seed, i), so they do not
    depend on the worker count. ``backwards`` plays every clip backwards first;
    ``warp`` is the mel warp of the clean features (one of a model's test-time views).
    ``ok`` flags the readable clips; ``problems``
    lists (file name, reason) for the others (their rows are zero).
    """
    n_copies = (aug.copies if copies is None else copies) if aug else 0
    key_src = json.dumps({
        "v": CACHE_VERSION, "params": params.stable_hash(), "files": _files_digest(clips),
        "aug": aug.to_dict() if aug else None, "copies": n_copies, "seed": seed if aug else None,
        **({"backwards": True} if backwards else {}), **({"warp": warp} if warp != 1.0 else {}),
    }, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
    path = cache_root(cache_dir) / "features" / f"{label}-{key}.npz"
    shape = (len(clips), n_copies, *params.input_shape) if aug else (len(clips), *params.input_shape)
    cached = _load_cached(path, shape) if path.is_file() else None
    if cached is not None:
        return cached
    x = np.zeros(shape, dtype=np.float32)
    ok = np.zeros(len(clips), dtype=bool)
    problems: list[tuple[str, str]] = []
    # a non-digit word keeps its edges: "sixty" cut short would be a "six" labelled unknown
    word_aug = dataclasses.replace(aug, edge_cut=0.0, edge_cut_db=None).to_dict() if aug else None
    jobs = [(i, str(c.path), params.to_json(), (aug.to_dict() if c.digit < len(LABELS) else word_aug)
             if aug else None, n_copies, seed, backwards, warp) for i, c in enumerate(clips)]
    workers = workers or min(2, os.cpu_count() or 1)
    results = _run(jobs, workers, progress, label)
    for index, result in results:
        if isinstance(result, str):
            problems.append((clips[index].name, result))
        else:
            x[index] = result
            ok[index] = True
    _save_cached(path, x, ok, problems)
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
