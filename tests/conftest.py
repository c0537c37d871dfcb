"""Shared fixtures: where the corpora (FSDD, HD-EN) are, and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FSDD_ENV = "AUDIOMNIST_EDGE_FSDD"
HDEN_ENV = "AUDIOMNIST_EDGE_HDEN"


def require(condition: object, why: str) -> None:
    """Skip the test unless ``condition`` holds; in CI (``$CI`` set) fail instead.

    For facilities a test needs from the machine (a dataset, root and mount
    rights, sshd, PulseAudio, espeak-ng): CI must never go green by skipping.
    """
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def fsdd_root() -> Path:
    """The FSDD folder: $AUDIOMNIST_EDGE_FSDD, else ../shared/datasets/fsdd beside the repo."""
    return Path(os.environ.get(FSDD_ENV, REPO.parent / "shared" / "datasets" / "fsdd"))


def hd_en_root() -> Path:
    """The HD-EN folder: $AUDIOMNIST_EDGE_HDEN, else ../shared/datasets/hd-en beside the repo."""
    return Path(os.environ.get(HDEN_ENV, REPO.parent / "shared" / "datasets" / "hd-en"))


def _corpus(root: Path, name: str, env: str) -> Path:
    """A corpus root holding recordings/; skips locally, fails in CI, when absent."""
    require((root / "recordings").is_dir(), f"{name} not found at {root} (set {env})")
    return root


@pytest.fixture(scope="session")
def fsdd() -> Path:
    """The FSDD root (6 speakers, 8 kHz)."""
    return _corpus(fsdd_root(), "FSDD", FSDD_ENV)


@pytest.fixture(scope="session")
def hd_en() -> Path:
    """The HD-EN root (10 speakers, 16 kHz)."""
    return _corpus(hd_en_root(), "HD-EN", HDEN_ENV)


@pytest.fixture(scope="session")
def fsdd_test_clips(fsdd: Path) -> list[Path]:
    """FSDD's official test clips (takes 0-4), sorted: 300 files."""
    return sorted(p for p in (fsdd / "recordings").glob("*.wav") if int(p.stem.split("_")[2]) < 5)
