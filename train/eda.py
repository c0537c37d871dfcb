"""Exploratory data analysis of one or several corpora: PNGs plus a Markdown page.

Per clip: duration, peak level and active speech level (dBFS, the RMS of the
20 ms frames within 30 dB of the loudest, as ``capture.speech_power``), and
whether it starts or ends inside the word (a tightly trimmed take that lost
its onset or coda). Per speaker and per corpus: their distributions. The MFCC plot shows what the
model sees: ``clip_features`` (trimmed, normalised per clip) with a colour bar.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..config import FeatureParams
from ..features import clip_features
from ..resample import resample
from ..wav import read_wav
from .capture import LEVEL_FRAME, frame_powers, speech_power
from .datasets import Clip, load_many, problem_summary

PLOTS = ("waveforms.png", "mfcc.png", "balance.png", "levels.png", "durations.png")
CUT_EDGE_DB = 15.0
"""A clip whose first (last) 20 ms frame (capture.LEVEL_FRAME) lies within this many dB of its loudest frame starts (ends)
inside the word: the recording was trimmed into it, and its first (last) sound is missing."""


@dataclasses.dataclass(frozen=True)
class ClipStats:
    """Duration (s), rate (Hz), peak and active speech level (dBFS) of one readable clip, and the
    levels of its first and last 20 ms relative to its loudest (dB, at most 0)."""

    clip: Clip
    seconds: float
    rate: int
    peak_dbfs: float
    speech_dbfs: float
    start_db: float
    end_db: float


def _dbfs(power: float) -> float:
    return float(10 * np.log10(max(power, 1e-12)))


def edge_levels(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """Energy of the first and of the last 20 ms frame of a clip, in dB relative to its loudest
    frame (0 for a clip shorter than two frames or silent throughout)."""
    energy, _ = frame_powers(samples, rate)
    if len(energy) < 2:
        return 0.0, 0.0
    peak = energy.max()
    if peak <= 0:
        return 0.0, 0.0
    return _dbfs(energy[0] / peak), _dbfs(energy[-1] / peak)


def clip_stats(clip: Clip) -> ClipStats:
    x, rate = read_wav(clip.path)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return ClipStats(clip, len(x) / rate, int(rate), _dbfs(peak ** 2), _dbfs(speech_power(x, rate)),
                     *edge_levels(x, int(rate)))


def _cut_shares(group: list[ClipStats]) -> dict:
    """Shares of ``group`` starting and ending inside the word (see CUT_EDGE_DB)."""
    return {"cut_start": float(np.mean([g.start_db > -CUT_EDGE_DB for g in group])),
            "cut_end": float(np.mean([g.end_db > -CUT_EDGE_DB for g in group]))}


def corpus_stats(clips: list[Clip]) -> tuple[list[ClipStats], list[tuple[str, str]]]:
    """Stats of every readable clip, and (file name, reason) for the others."""
    stats, problems = [], []
    for clip in clips:
        try:
            stats.append(clip_stats(clip))
        except Exception as exc:  # noqa: BLE001 - reported on the page, never silently dropped
            problems.append((clip.name, f"{type(exc).__name__}: {exc}"))
    return stats, problems


def speaker_table(stats: list[ClipStats]) -> list[dict]:
    """Per speaker (corpus order, then name): clips, medians of duration and levels, and the
    shares of clips starting and ending inside the word."""
    rows: dict[tuple[str, str], list[ClipStats]] = {}
    for s in stats:
        rows.setdefault((s.clip.corpus, s.clip.speaker), []).append(s)
    out = []
    for (corpus, speaker), group in sorted(rows.items()):
        out.append({"corpus": corpus, "speaker": speaker, "clips": len(group),
                    "seconds": float(np.median([g.seconds for g in group])),
                    "peak_dbfs": float(np.median([g.peak_dbfs for g in group])),
                    "speech_dbfs": float(np.median([g.speech_dbfs for g in group])),
                    **_cut_shares(group)})
    return out


def corpus_table(stats: list[ClipStats], window: float) -> list[dict]:
    """Per corpus: clips, speakers, rates, duration range, medians of the levels and the shares
    of clips starting and ending inside the word."""
    out = []
    for corpus in sorted({s.clip.corpus for s in stats}):
        group = [s for s in stats if s.clip.corpus == corpus]
        seconds = np.array([g.seconds for g in group])
        out.append({"corpus": corpus, "clips": len(group),
                    "speakers": len({g.clip.speaker for g in group}),
                    "rates": sorted({g.rate for g in group}),
                    "seconds_median": float(np.median(seconds)), "seconds_min": float(seconds.min()),
                    "seconds_max": float(seconds.max()), "longer_than_window": int((seconds > window).sum()),
                    "peak_dbfs": float(np.median([g.peak_dbfs for g in group])),
                    "speech_dbfs": float(np.median([g.speech_dbfs for g in group])),
                    **_cut_shares(group)})
    return out


def _colours(corpora: list[str]) -> dict[str, str]:
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    return {c: palette[i % len(palette)] for i, c in enumerate(corpora)}


def _examples(stats: list[ClipStats], corpus: str) -> dict[int, ClipStats]:
    out: dict[int, ClipStats] = {}
    for s in stats:
        if s.clip.corpus == corpus and s.clip.digit not in out:
            out[s.clip.digit] = s
    return out


def _plot_waveforms_and_mfcc(plt, stats, corpora, params, out: Path) -> None:
    """One example per digit and corpus: waveform, and the model's normalised MFCC input."""
    rows = len(corpora)
    fig_w, axes_w = plt.subplots(rows, 10, figsize=(20, 2.2 * rows + 0.6), squeeze=False, sharey=True)
    fig_m, axes_m = plt.subplots(rows, 10, figsize=(20, 2.2 * rows + 0.6), squeeze=False,
                                 constrained_layout=True)
    image = None
    for r, corpus in enumerate(corpora):
        examples = _examples(stats, corpus)
        for d in range(10):
            aw, am = axes_w[r, d], axes_m[r, d]
            if d not in examples:
                aw.set_axis_off()
                am.set_axis_off()
                continue
            clip = examples[d].clip
            x, sr = read_wav(clip.path)
            aw.plot(np.arange(len(x)) / sr, x, lw=0.5)
            aw.set_title(f"{corpus}: {clip.name}", fontsize=8)
            y = resample(x, sr, params.sample_rate)
            features = clip_features(y, params)
            image = am.imshow(features.T, origin="lower", aspect="auto", cmap="coolwarm",
                              vmin=-3, vmax=3, extent=(0, params.clip_seconds, 0, params.n_mfcc))
            am.set_title(f"{corpus}: {d} ({clip.speaker})", fontsize=8)
            if d == 0:
                am.set_ylabel("coefficient")
            if r == rows - 1:
                am.set_xlabel("s")
                aw.set_xlabel("s")
    if image is not None:
        fig_m.colorbar(image, ax=axes_m, shrink=0.8, label="normalised MFCC (per-clip CMVN)")
    fig_m.suptitle("Model input (clip_features: trimmed, centred, per-clip normalised); "
                   "zero outside the speech", fontsize=10)
    fig_w.tight_layout()
    fig_w.savefig(out / "waveforms.png", dpi=90)
    fig_m.savefig(out / "mfcc.png", dpi=90)
    plt.close(fig_w)
    plt.close(fig_m)


def _plot_balance(plt, stats, corpora, colours, out: Path) -> None:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 4), gridspec_kw={"width_ratios": [1, 2]})
    width = 0.8 / len(corpora)
    for i, corpus in enumerate(corpora):
        digits = [s.clip.digit for s in stats if s.clip.corpus == corpus]
        a1.bar(np.arange(10) + i * width - 0.4 + width / 2, np.bincount(digits, minlength=10),
               width, label=corpus, color=colours[corpus])
    a1.set_xticks(range(10))
    a1.set_xlabel("digit")
    a1.set_ylabel("clips")
    a1.set_title("clips per digit")
    a1.legend()
    speakers = speaker_table(stats)
    a2.bar(range(len(speakers)), [s["clips"] for s in speakers],
           color=[colours[s["corpus"]] for s in speakers])
    a2.set_xticks(range(len(speakers)), [s["speaker"] for s in speakers], rotation=90, fontsize=7)
    a2.set_ylabel("clips")
    a2.set_title("clips per speaker")
    fig.tight_layout()
    fig.savefig(out / "balance.png", dpi=100)
    plt.close(fig)


def _per_speaker_boxes(ax, stats, colours, value, ylabel: str, title: str) -> None:
    speakers = speaker_table(stats)
    data = [[value(s) for s in stats if (s.clip.corpus, s.clip.speaker) == (row["corpus"], row["speaker"])]
            for row in speakers]
    boxes = ax.boxplot(data, patch_artist=True, showfliers=False)
    for patch, row in zip(boxes["boxes"], speakers):
        patch.set_facecolor(colours[row["corpus"]])
        patch.set_alpha(0.6)
    ax.set_xticks(range(1, len(speakers) + 1), [r["speaker"] for r in speakers], rotation=90, fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)


def _plot_levels(plt, stats, colours, out: Path) -> None:
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(8, 0.45 * len(speaker_table(stats)) + 2), 7), sharex=True)
    _per_speaker_boxes(a1, stats, colours, lambda s: s.peak_dbfs, "dBFS", "peak level per clip")
    _per_speaker_boxes(a2, stats, colours, lambda s: s.speech_dbfs, "dBFS",
                       "active speech level per clip (RMS of frames within 30 dB of the loudest)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.6) for c in colours.values()]
    a1.legend(handles, list(colours), loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "levels.png", dpi=100)
    plt.close(fig)


def _plot_durations(plt, stats, corpora, colours, window: float, out: Path) -> None:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 4), gridspec_kw={"width_ratios": [1, 2]})
    bins = np.linspace(0, max(s.seconds for s in stats), 40)
    for corpus in corpora:
        a1.hist([s.seconds for s in stats if s.clip.corpus == corpus], bins=bins, alpha=0.6,
                label=corpus, color=colours[corpus])
    a1.axvline(window, color="k", ls="--", label=f"model window {window} s")
    a1.set_xlabel("clip duration (s)")
    a1.set_ylabel("clips")
    a1.legend()
    _per_speaker_boxes(a2, stats, colours, lambda s: s.seconds, "s", "clip duration per speaker")
    a2.axhline(window, color="k", ls="--")
    fig.tight_layout()
    fig.savefig(out / "durations.png", dpi=100)
    plt.close(fig)


def _level_notes(speakers: list[dict]) -> str:
    """Sentences naming speakers whose active level is 10 dB or more from the median speaker."""
    median = float(np.median([s["speech_dbfs"] for s in speakers]))
    notes = [f"{s['speaker']} ({s['corpus']}) is {abs(s['speech_dbfs'] - median):.0f} dB "
             f"{'quieter' if s['speech_dbfs'] < median else 'louder'} than the median speaker"
             for s in speakers if abs(s["speech_dbfs"] - median) >= 10]
    head = f"Median active speech level over speakers: {median:.1f} dBFS."
    return head + (" " + "; ".join(notes) + "." if notes else " No speaker is 10 dB or more away from it.")


def run_eda(data, out, params: FeatureParams | None = None, cache_dir=None, echo=print) -> Path:
    """Write PLOTS and eda.md into ``out`` for one corpus folder or several (``data`` a list)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = params or FeatureParams()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = load_many(data)
    stats, unreadable = corpus_stats(ds.clips)
    if not stats:
        from ..errors import EdgeError

        raise EdgeError(f"no readable clip ({problem_summary(unreadable)})")
    corpora = sorted({s.clip.corpus for s in stats})
    colours = _colours(corpora)
    window = params.clip_seconds
    _plot_waveforms_and_mfcc(plt, stats, corpora, params, out)
    _plot_balance(plt, stats, corpora, colours, out)
    _plot_levels(plt, stats, colours, out)
    _plot_durations(plt, stats, corpora, colours, window, out)
    corpus_rows = corpus_table(stats, window)
    speaker_rows = speaker_table(stats)
    corpus_md = "\n".join(
        f"| {c['corpus']} | {c['clips']} | {c['speakers']} | {', '.join(str(r) for r in c['rates'])} "
        f"| {c['seconds_median']:.2f} ({c['seconds_min']:.2f}-{c['seconds_max']:.2f}) "
        f"| {c['longer_than_window']} | {c['peak_dbfs']:.1f} | {c['speech_dbfs']:.1f} "
        f"| {100 * c['cut_start']:.0f}% / {100 * c['cut_end']:.0f}% |"
        for c in corpus_rows)
    speaker_md = "\n".join(
        f"| {s['corpus']} | {s['speaker']} | {s['clips']} | {s['seconds']:.2f} | {s['peak_dbfs']:.1f} "
        f"| {s['speech_dbfs']:.1f} | {100 * s['cut_start']:.0f}% / {100 * s['cut_end']:.0f}% |"
        for s in speaker_rows)
    skipped = problem_summary(ds.problems + unreadable) or "No file skipped."
    names = ", ".join(f"`{Path(p)}`" for p in ([data] if isinstance(data, (str, Path)) else data))
    page = out / "eda.md"
    page.write_text(f"""# Corpus overview: {', '.join(corpora)}

{len(stats)} clips, {len(speaker_rows)} speakers, from {names}. {skipped}

## The corpora side by side

| corpus | clips | speakers | rate (Hz) | duration, s: median (min-max) | longer than {window} s | peak, dBFS (median) | speech, dBFS (median) | starts / ends inside the word |
|---|---:|---:|---|---|---:|---:|---:|---:|
{corpus_md}

## Levels per speaker
{_level_notes(speaker_rows)} Peak is the largest sample; speech level is the RMS
of the 20 ms frames within 30 dB of the loudest frame (silence excluded). A clip
starts (ends) inside the word when its first (last) {1000 * LEVEL_FRAME:.0f} ms lie within
{CUT_EDGE_DB:.0f} dB of its loudest {1000 * LEVEL_FRAME:.0f} ms: the recording was trimmed into
the word, and its first (last) sound, such as the "th" of "three", may be missing.

![levels](levels.png)

| corpus | speaker | clips | duration, s (median) | peak, dBFS (median) | speech, dBFS (median) | starts / ends inside the word |
|---|---|---:|---:|---:|---:|---:|
{speaker_md}

## Durations
![durations](durations.png)

## One example per digit and corpus
![waveforms](waveforms.png)

What the model sees: trimmed at {params.trim_db} dB below the loudest frame,
{params.n_mfcc} MFCCs normalised per clip (zero mean, unit variance per
coefficient), centred in the {window} s window; the colour bar is in units of
that normalisation.

![MFCC](mfcc.png)

## Class balance
![balance](balance.png)
""")
    return page
