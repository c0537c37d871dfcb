"""Interleaved timing and the statistics the results report (medians and spreads)."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

Tick = Callable[[int], None]


def time_over_clips(actions: dict[str, Callable[[Any], Any]], clips: Sequence[Any], rounds: int,
                    tick: Tick = lambda n: None) -> dict[str, np.ndarray]:
    """Seconds per clip of each action, one value per round, shape (rounds,) each.

    Every round runs every action over all clips in turn, so load from other
    processes falls on all of them alike and per-round ratios stay fair. One
    untimed pass over the clips warms each action up first.
    """
    for action in actions.values():
        for clip in clips:
            action(clip)
    seconds = {name: np.empty(rounds) for name in actions}
    for r in range(rounds):
        for name, action in actions.items():
            started = time.perf_counter()
            for clip in clips:
                action(clip)
            seconds[name][r] = (time.perf_counter() - started) / len(clips)
        tick(1)
    return seconds


def spread_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median and interquartile range of durations in seconds, in milliseconds."""
    p25, p50, p75 = np.percentile(np.asarray(seconds) * 1e3, [25, 50, 75])
    return {"median_ms": round(float(p50), 4), "p25_ms": round(float(p25), 4),
            "p75_ms": round(float(p75), 4)}


def ratio(theirs: Sequence[float], ours: Sequence[float]) -> dict[str, float]:
    """Median and interquartile range of the paired ratio theirs / ours (above 1: ours wins)."""
    paired = np.asarray(theirs, dtype=np.float64) / np.asarray(ours, dtype=np.float64)
    p25, p50, p75 = np.percentile(paired, [25, 50, 75])
    return {"median": round(float(p50), 2), "p25": round(float(p25), 2), "p75": round(float(p75), 2)}
