"""Run every benchmark once and write benchmarks/results/bench.{json,md,png}.

    python -m benchmarks.run --model M.tflite --run RUN_DIR      # full run (a few minutes)
    python -m benchmarks.run --quick --out /tmp/bench            # smoke run (seconds)

RUN_DIR is the training run the model was converted from (the Keras and float32
comparisons need its model.keras); the README's Training section makes
``runs/default`` with the default recipe. Paths in the results are written
relative to the repository, so they mean the same on every checkout.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import click

from audiomnist_edge.bench import cpu_name, measure_stages
from audiomnist_edge.errors import EdgeError
from audiomnist_edge.features import clip_features
from audiomnist_edge.model import Model
from audiomnist_edge.resample import default_engine
from audiomnist_edge.wav import wav_bytes

from . import clips as clip_sets
from . import mfcc_compare, model_compare, process_compare, resample_compare
from .report import write_results

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
MAKE_RUN = "the README's default recipe (Training: `audiomnist-edge train ... --out runs/default`)"
LENGTHS = [0.5, 1, 2, 5, 10, 30]
BATCHES = [1, 8, 32, 128, 512]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              help="int8 model file (default: the packaged model).")
@click.option("--run", "run_dir", type=click.Path(file_okay=False),
              help="Training run folder (model.keras, features.json): enables the float32 and Keras "
                   f"comparisons. The default model's: {MAKE_RUN}")
@click.option("--float32", "float32_path", type=click.Path(exists=True, dir_okay=False),
              help="float32 TFLite model (default: converted from the run's model.keras).")
@click.option("--data", type=click.Path(file_okay=False),
              help="FSDD folder for the clips (default: $AUDIOMNIST_EDGE_FSDD or ../shared/datasets/fsdd).")
@click.option("--clips", "n_clips", type=click.IntRange(1), default=20, show_default=True,
              help="Clips timed per round.")
@click.option("--rounds", type=click.IntRange(2), default=30, show_default=True,
              help="Interleaved timing rounds (ratios are per round).")
@click.option("--cold-runs", type=click.IntRange(1), default=5, show_default=True,
              help="Fresh processes per runtime for cold start and memory.")
@click.option("--quick", is_flag=True, help="Smoke run: 3 clips, 2 rounds, 1 cold run, short scaling.")
@click.option("--out", type=click.Path(file_okay=False), default=str(RESULTS), show_default=True,
              help="Folder for bench.json, bench.md and bench.png.")
def main(model_path: str | None, run_dir: str | None, float32_path: str | None, data: str | None,
         n_clips: int, rounds: int, cold_runs: int, quick: bool, out: str) -> None:
    """Benchmark the edge runtime against librosa, python_speech_features, the
    float32 TFLite model, Keras and TensorFlow processes, and its two resamplers,
    in one run on the same clips.

    \b
    Examples:
      python -m benchmarks.run --model edge/models/default.tflite --run runs/default
      python -m benchmarks.run --quick --out /tmp/bench-smoke
    """
    if run_dir and not (Path(run_dir) / "model.keras").is_file():
        raise click.UsageError(f"{run_dir} is not a training run (no model.keras); "
                               f"the default model's run is made with: {MAKE_RUN}")
    if not run_dir:
        click.echo("no --run: skipping the float32 and Keras comparisons (see --help to make one)", err=True)
    lengths, batches, stage_repeat = LENGTHS, BATCHES, 300
    if quick:
        n_clips, rounds, cold_runs, lengths, batches, stage_repeat = 3, 2, 1, [0.5, 1], [1, 4], 20
    int8 = Model.load(model_path)
    params, rate = int8.params, int8.params.sample_rate
    signals, source = clip_sets.recordings(Path(data) if data else None, n_clips, rate)
    one_second = clip_sets.one_second(signals, rate)
    run = Path(run_dir) if run_dir else None
    err = click.get_text_stream("stderr")
    results: dict = {}

    click.echo("MFCC: NumPy vs librosa vs python_speech_features", err=True)
    with click.progressbar(length=rounds, file=err) as bar:
        results["mfcc"] = mfcc_compare.compare(one_second, params, rounds, bar.update)

    if default_engine() == "soxr":
        click.echo("resampling 48 kHz -> 8 kHz: soxr vs NumPy", err=True)
        at_48k = resample_compare.at_source_rate(one_second, rate)
        with click.progressbar(length=rounds, file=err) as bar:
            results["resample"] = resample_compare.compare(at_48k, rounds, bar.update)
    else:
        click.echo("soxr is not installed: no resampling comparison", err=True)

    click.echo("device stages (audiomnist-edge bench)", err=True)
    results["stages"] = measure_stages(int8, wav_bytes(one_second[0], rate), stage_repeat, 20)

    click.echo("scaling with clip length", err=True)
    by_length = {s: clip_sets.of_length(signals, s, rate) for s in lengths}
    with click.progressbar(length=len(lengths), file=err) as bar:
        results["scaling"] = mfcc_compare.scaling(by_length, params, lambda y: int8.classify(y, rate),
                                                  rounds, bar.update)
    if run is not None:
        keras_model = model_compare.load_keras(run)
        float32 = model_compare.float32_model(int8, keras_model, Path(float32_path) if float32_path else None)
        features = [clip_features(x, params) for x in one_second]
        click.echo("models: int8 vs float32 TFLite vs Keras", err=True)
        with click.progressbar(length=rounds, file=err) as bar:
            results["model"] = model_compare.compare(features, int8, float32, keras_model, rounds, bar.update)
        click.echo("offline scoring by batch size", err=True)
        with click.progressbar(length=len(batches), file=err) as bar:
            results["batch"] = model_compare.batch_scaling(one_second, int8, keras_model, batches,
                                                           max(2, rounds // 5), bar.update)

    click.echo("processes: cold start and peak memory", err=True)
    with tempfile.TemporaryDirectory(prefix="audiomnist-bench-") as scratch:
        wav = Path(scratch) / "clip.wav"
        wav.write_bytes(wav_bytes(one_second[0], rate))
        with click.progressbar(length=cold_runs, file=err) as bar:
            results["process"] = process_compare.compare(int8.path, run, wav, cold_runs, bar.update)

    results["context"] = {
        "date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(), "machine": platform.machine(),
        "python": platform.python_version(), "backend": f"{int8.backend.name} {int8.backend.version}",
        "load_average": list(os.getloadavg()), "clips": source, "rounds": rounds,
        "model": clip_sets.repo_relative(int8.path), "run": clip_sets.repo_relative(run) if run else None,
        "quick": quick,
    }
    for path in write_results(results, Path(out)):
        click.echo(path)


if __name__ == "__main__":
    try:
        main(standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (EdgeError, RuntimeError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        sys.exit(130)
