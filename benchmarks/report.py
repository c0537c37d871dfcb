"""Benchmark results as JSON, a Markdown table and a PNG chart, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .resample_compare import markdown_rows as resample_rows

NAMES = {
    "librosa": "librosa melspectrogram + power_to_db + mfcc(S=)",
    "librosa_y": "librosa.feature.mfcc(y=)",
    "python_speech_features": "python_speech_features.mfcc",
    "float32_tflite": "float32 TFLite",
    "keras_call": "Keras model(x)",
    "keras_predict": "Keras model.predict(x)",
    "tensorflow_lite": "int8 model on tf.lite (imports TensorFlow)",
    "tensorflow_keras": "Keras model (imports TensorFlow)",
}


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(temp))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _ratio_cell(r: dict[str, float]) -> str:
    return f"**{r['median']:.1f}x** ({r['p25']:.1f}-{r['p75']:.1f})"


def _verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return "yes" if value >= target else "**no**"


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(comparison, ours, theirs, ratio, target, met) rows of the headline table."""
    rows = []
    mfcc = results["mfcc"]
    ours = mfcc["times"]["numpy"]["median_ms"]
    for name, target in (("librosa", 5.0), ("librosa_y", 5.0), ("python_speech_features", 1.0)):
        r = mfcc["speedup"][name]
        rows.append((f"MFCC, 1 s clip: NumPy vs {NAMES[name]}", f"{ours:.3f} ms",
                     f"{mfcc['times'][name]['median_ms']:.3f} ms", _ratio_cell(r),
                     f">= {target:g}x", _verdict(r["median"], target)))
    resampling = results.get("resample")
    if resampling:
        for kind, label, target in (("whole", "1 s clip", 5.0), ("stream", "1 s in 50 ms blocks", None)):
            ours_key, theirs_key = ("soxr", "numpy") if kind == "whole" else ("soxr_stream", "numpy_stream")
            r = resampling["speedup"][kind]
            rows.append((f"resampling 48 -> 8 kHz, {label}: soxr vs NumPy polyphase",
                         f"{resampling['times'][ours_key]['median_ms']:.3f} ms",
                         f"{resampling['times'][theirs_key]['median_ms']:.3f} ms", _ratio_cell(r),
                         f">= {target:g}x" if target else "", _verdict(r["median"], target)))
    model = results.get("model")
    if model:
        ours = model["times"]["int8_tflite"]["median_ms"]
        for name in ("float32_tflite", "keras_call", "keras_predict"):
            r = model["speedup"][name]
            rows.append((f"inference, batch 1: int8 TFLite vs {NAMES[name]}", f"{ours:.3f} ms",
                         f"{model['times'][name]['median_ms']:.3f} ms", _ratio_cell(r), "", ""))
    process = results["process"]
    for name, r in process["cold_start_ratio"].items():
        rows.append((f"cold start to first decision: edge vs {NAMES[name]}",
                     f"{process['cold_start_ms']['edge']['median']:.0f} ms",
                     f"{process['cold_start_ms'][name]['median']:.0f} ms", _ratio_cell(r),
                     ">= 10x", _verdict(r["median"], 10.0)))
    for name, r in process["memory_ratio"].items():
        rows.append((f"peak RSS: edge vs {NAMES[name]}",
                     f"{process['peak_rss_mb']['edge']['median']:.0f} MB",
                     f"{process['peak_rss_mb'][name]['median']:.0f} MB", _ratio_cell(r),
                     ">= 5x", _verdict(r["median"], 5.0)))
    e2e = results["stages"]["end_to_end"]
    rows.append(("end to end, samples -> digit, 1 s clip at 8 kHz (p50)", f"{e2e['p50']:.3f} ms",
                 "", "", "< 1 ms", "yes" if e2e["p50"] < 1.0 else "**no**"))
    return rows


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown: context, headline table, stages and scaling."""
    ctx = results["context"]
    lines = [
        f"Measured {ctx['date']} on {ctx['cpu']} ({ctx['machine']}, load {ctx['load_average'][0]:.1f}), "
        f"Python {ctx['python']}, {ctx['backend']}; {ctx['clips']}; {ctx['rounds']} interleaved rounds. "
        "Ratios are theirs / ours per round (above 1: ours is faster or smaller): "
        "median with the interquartile range in brackets.",
        "",
        "| comparison | ours | theirs | ratio | target | met |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    lines += ["", "Device stages per 1 s clip (`audiomnist-edge bench` figures, ms):", "",
              "| stage | p50 | p95 | p99 |", "|---|---:|---:|---:|"]
    for stage, figures in results["stages"].items():
        lines.append(f"| {stage} | {figures['p50']:.3f} | {figures['p95']:.3f} | {figures['p99']:.3f} |")
    if results.get("resample"):
        lines += ["", "Resampling 48 kHz -> 8 kHz: tone levels after resampling, dB re the input "
                  "(3.7 kHz: passband flatness; 4.1 kHz: above the new Nyquist frequency, so aliasing):",
                  ""] + resample_rows(results["resample"])
    lines += ["", "Scaling with clip length (median ms per call):", "",
              "| seconds | NumPy MFCC | librosa MFCC | end to end |", "|---:|---:|---:|---:|"]
    for row in results["scaling"]["by_length"]:
        lines.append(f"| {row['seconds']:g} | {row['numpy']['median_ms']:.3f} | "
                     f"{row['librosa']['median_ms']:.3f} | {row['end_to_end']['median_ms']:.3f} |")
    if results.get("batch"):
        lines += ["", "Offline scoring, samples -> decision (median ms per clip):", "",
                  "| batch | edge, one clip at a time | NumPy features + Keras predict(batch) |",
                  "|---:|---:|---:|"]
        for row in results["batch"]["by_batch"]:
            lines.append(f"| {row['batch']} | {row['edge_loop']['median_ms']:.3f} | "
                         f"{row['keras_predict']['median_ms']:.3f} |")
    return "\n".join(lines) + "\n"


def chart(results: dict[str, Any], path: Path) -> None:
    """Four panels: speed-up ratios, cost by clip length, cost by batch size, cold start/memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    ratios = {f"MFCC vs {k}": v for k, v in results["mfcc"]["speedup"].items()}
    if results.get("resample"):
        ratios.update({f"soxr vs NumPy resampling ({k})": v for k, v in results["resample"]["speedup"].items()})
    if results.get("model"):
        ratios.update({f"int8 vs {k}": v for k, v in results["model"]["speedup"].items()})
    ratios.update({f"cold start vs {k}": v for k, v in results["process"]["cold_start_ratio"].items()})
    ratios.update({f"memory vs {k}": v for k, v in results["process"]["memory_ratio"].items()})
    ax = axes[0, 0]
    names = list(ratios)
    medians = [ratios[n]["median"] for n in names]
    errors = [[ratios[n]["median"] - ratios[n]["p25"] for n in names],
              [ratios[n]["p75"] - ratios[n]["median"] for n in names]]
    ax.barh(names, medians, xerr=errors, color="tab:blue")
    ax.axvline(1, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("theirs / ours (median, IQR); > 1: ours faster or smaller")
    ax.set_title("Ratios, same machine, same run")
    ax.tick_params(axis="y", labelsize=8)

    ax = axes[0, 1]
    rows = results["scaling"]["by_length"]
    seconds = [r["seconds"] for r in rows]
    for key, label in (("numpy", "NumPy MFCC"), ("librosa", "librosa MFCC"), ("end_to_end", "end to end")):
        ax.plot(seconds, [r[key]["median_ms"] for r in rows], "o-", label=label)
    ax.set(xscale="log", yscale="log", xlabel="clip length (s)", ylabel="ms per call",
           title="Cost by clip length")
    ax.legend()

    ax = axes[1, 0]
    if results.get("batch"):
        rows = results["batch"]["by_batch"]
        sizes = [r["batch"] for r in rows]
        ax.plot(sizes, [r["edge_loop"]["median_ms"] for r in rows], "o-", label="edge, one at a time")
        ax.plot(sizes, [r["keras_predict"]["median_ms"] for r in rows], "o-",
                label="NumPy features + Keras predict")
        ax.set(xscale="log", yscale="log", xlabel="batch size (clips)", ylabel="ms per clip",
               title="Offline scoring by batch size")
        ax.legend()
    else:
        ax.set_axis_off()

    ax = axes[1, 1]
    process = results["process"]
    names = list(process["cold_start_ms"])
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [process["cold_start_ms"][n]["median"] for n in names], 0.4,
           label="cold start (ms)")
    ax2 = ax.twinx()
    ax2.bar([i + 0.2 for i in x], [process["peak_rss_mb"][n]["median"] for n in names], 0.4,
            color="tab:orange", label="peak RSS (MB)")
    ax.set_xticks(list(x), names)
    ax.set_ylabel("cold start, ms")
    ax2.set_ylabel("peak RSS, MB")
    ax.set_title("Fresh process: start to first decision")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(results: dict[str, Any], out: Path) -> list[Path]:
    """Write bench.json, bench.md and bench.png into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "bench.json", out / "bench.md", out / "bench.png"]
    _atomic_write(paths[0], lambda p: p.write_text(json.dumps(results, indent=1) + "\n"))
    _atomic_write(paths[1], lambda p: p.write_text(markdown(results)))
    _atomic_write(paths[2], lambda p: chart(results, p))
    return paths
