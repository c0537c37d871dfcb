"""Exploratory data analysis of a corpus: PNGs plus a Markdown page."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import FeatureParams
from ..features import mfcc
from ..wav import read_wav
from .datasets import load, problem_summary


def run_eda(data, out, params: FeatureParams | None = None, cache_dir=None, echo=print) -> Path:
    """Write waveforms.png, mfcc.png, balance.png, durations.png and eda.md into ``out``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = params or FeatureParams()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = load(data)
    digits = ds.digits
    examples = {}
    for d in range(10):
        idx = np.flatnonzero(digits == d)
        if len(idx):
            examples[d] = ds.clips[idx[0]]
    # waveforms and MFCCs of one example per digit
    fig_w, axes_w = plt.subplots(2, 5, figsize=(14, 5), sharey=True)
    fig_m, axes_m = plt.subplots(2, 5, figsize=(14, 5))
    for d in range(10):
        aw, am = axes_w.flat[d], axes_m.flat[d]
        if d not in examples:
            aw.set_axis_off(); am.set_axis_off()
            continue
        clip = examples[d]
        x, sr = read_wav(clip.path)
        aw.plot(np.arange(len(x)) / sr, x, lw=0.5)
        aw.set_title(f"{d}: {clip.name}", fontsize=9)
        aw.set_xlabel("s")
        from ..resample import resample
        y = resample(x, sr, params.sample_rate) if sr != params.sample_rate else x
        m = mfcc(y, params)
        am.imshow(m.T, origin="lower", aspect="auto", cmap="magma",
                  extent=(0, len(y) / params.sample_rate, 0, params.n_mfcc))
        am.set_title(f"{d}: MFCC", fontsize=9)
        am.set_xlabel("s")
    fig_w.tight_layout(); fig_w.savefig(out / "waveforms.png", dpi=100); plt.close(fig_w)
    fig_m.tight_layout(); fig_m.savefig(out / "mfcc.png", dpi=100); plt.close(fig_m)
    # class balance per digit and per speaker
    speakers = ds.speakers
    counts = np.zeros((len(speakers), 10), dtype=int)
    pos = {s: i for i, s in enumerate(speakers)}
    for c in ds.clips:
        counts[pos[c.speaker], c.digit] += 1
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4))
    a1.bar(range(10), counts.sum(0))
    a1.set_xticks(range(10)); a1.set_xlabel("digit"); a1.set_ylabel("clips"); a1.set_title("clips per digit")
    a2.bar(range(len(speakers)), counts.sum(1))
    a2.set_xticks(range(len(speakers)), speakers, rotation=90, fontsize=7)
    a2.set_ylabel("clips"); a2.set_title("clips per speaker")
    fig.tight_layout(); fig.savefig(out / "balance.png", dpi=100); plt.close(fig)
    # durations (from the header-free sample count)
    durations = []
    for c in ds.clips:
        try:
            x, sr = read_wav(c.path)
            durations.append(len(x) / sr)
        except Exception:
            pass
    durations = np.array(durations)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(durations, bins=40)
    ax.axvline(params.clip_seconds, color="r", ls="--", label=f"model window {params.clip_seconds} s")
    ax.set_xlabel("clip duration (s)"); ax.set_ylabel("clips"); ax.legend()
    fig.tight_layout(); fig.savefig(out / "durations.png", dpi=100); plt.close(fig)
    table = "\n".join(f"| {s} | " + " | ".join(str(v) for v in row) + f" | {row.sum()} |"
                      for s, row in zip(speakers, counts))
    page = out / "eda.md"
    page.write_text(f"""# Corpus overview: {ds.root} ({ds.layout})

{len(ds.clips)} clips, {len(speakers)} speakers. Durations: median {np.median(durations):.2f} s,
min {durations.min():.2f} s, max {durations.max():.2f} s; {int((durations > params.clip_seconds).sum())} clips
are longer than the model's {params.clip_seconds} s window. {problem_summary(ds.problems) or 'No file skipped.'}

## One example per digit
![waveforms](waveforms.png)

![MFCC](mfcc.png)

## Class balance
![balance](balance.png)

| speaker | {' | '.join(str(d) for d in range(10))} | total |
|---|{'---|' * 11}
{table}

## Clip durations
![durations](durations.png)
""")
    return page
