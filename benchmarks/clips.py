"""The clips every benchmark runs on: FSDD recordings when present, else synthetic ones."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from audiomnist_edge.bench import synthetic_utterance
from audiomnist_edge.features import centre_crop
from audiomnist_edge.resample import resample
from audiomnist_edge.wav import read_wav

REPO = Path(__file__).resolve().parents[1]


def repo_relative(path: str | Path) -> str:
    """``path`` relative to the repository: committed reports must not name this machine's folders."""
    return os.path.relpath(Path(path).resolve(), REPO)


def default_fsdd() -> Path:
    """$AUDIOMNIST_EDGE_FSDD, else ../shared/datasets/fsdd beside the repository."""
    return Path(os.environ.get("AUDIOMNIST_EDGE_FSDD", REPO.parent / "shared" / "datasets" / "fsdd"))


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """The middle ``length`` samples, or the signal centred in zeros when shorter."""
    samples = centre_crop(samples, length)
    out = np.zeros(length, dtype=np.float32)
    start = (length - len(samples)) // 2
    out[start:start + len(samples)] = samples
    return out


def recordings(data: Path | None, count: int, sample_rate: int) -> tuple[list[np.ndarray], str]:
    """Up to ``count`` recordings at ``sample_rate`` (FSDD test takes, spread over digits
    and speakers), and where they came from; synthetic utterances when there is no FSDD."""
    folder = (data or default_fsdd()) / "recordings"
    files = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    if not files:
        return [synthetic_utterance(sample_rate, seed=i) for i in range(count)], "synthetic utterances"
    step = max(1, len(files) // count)
    chosen = files[::step][:count]
    signals = []
    for path in chosen:
        samples, rate = read_wav(path)
        signals.append(resample(samples, rate, sample_rate))
    return signals, f"{len(chosen)} FSDD recordings from {os.path.relpath(folder.resolve(), REPO)}"


def one_second(signals: list[np.ndarray], sample_rate: int) -> list[np.ndarray]:
    """Each signal fitted to exactly one second."""
    return [fit_length(s, sample_rate) for s in signals]


def of_length(signals: list[np.ndarray], seconds: float, sample_rate: int) -> np.ndarray:
    """The signals played one after another (repeating) until ``seconds`` long."""
    n = int(round(seconds * sample_rate))
    joined = np.concatenate(signals)
    return np.resize(joined, n).astype(np.float32)
