"""The ``train``, ``evaluate`` and ``eda`` commands (need the [train] extra)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ..errors import EdgeError, require_extra
from ..options import finite, parse_warps
from .models import ARCHS

SPLIT = click.Choice(["random", "speaker", "official"])


def _setup():
    require_extra("train", "tensorflow", "keras", "matplotlib")
    from .fit import _quiet_tf

    _quiet_tf()


def _check_run(run_or_model: str, needs_model: bool = True) -> None:
    """A one-line error unless RUN_OR_MODEL is a .keras file or a run folder with readable files."""
    path = Path(run_or_model)
    if not path.is_dir():
        return
    if needs_model and not (path / "model.keras").is_file():
        raise EdgeError(f"{path}: not a run folder (no model.keras)")
    if (path / "run.json").exists():
        try:
            info = json.loads((path / "run.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EdgeError(f"{path}/run.json: unreadable ({exc})") from None
        if not isinstance(info, dict) or not isinstance(info.get("recipe", {}), dict):
            raise EdgeError(f"{path}/run.json: not a run description (a JSON object with a recipe)")


def _echo(message: str) -> None:
    click.echo(message, err=True)


@click.command()
@click.option("--data", required=True, multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Corpus folder: FSDD layout (recordings/) or AudioMNIST (data/NN/), detected "
                   "automatically. Repeat to train on several corpora at once (rates may differ).")
@click.option("--arch", type=click.Choice(ARCHS), default="cnn", show_default=True)
@click.option("--split", "split_name", type=SPLIT, default="official", show_default=True,
              help="random: stratified 75/25; speaker: speaker-independent fold (--fold); "
                   "official: FSDD takes 0-4 as test.")
@click.option("--fold", type=click.IntRange(0), default=None, help="Fold of --split speaker (default 0).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default runs/ARCH-SPLIT-TIMESTAMP); written whole at the end.")
@click.option("--force", is_flag=True, help="Replace an existing --out run folder.")
@click.option("--epochs", type=click.IntRange(1), default=40, help="Training epochs.", show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True)
@click.option("--lr", "learning_rate", type=click.FloatRange(0, 10, min_open=True), default=2e-3,
              show_default=True, callback=finite)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--augment", "copies", type=click.IntRange(0, 100), default=4, show_default=True,
              help="Augmented copies per training clip (speed, gain, shift, noise, mel warp); 0 = off.")
@click.option("--capture", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Probability per augmented copy of the capture chain (rooms, padding and noise "
                   "floor, noise at 0-30 dB SNR, gain -30..+6 dB, mic colour, clipping) in place of "
                   "plain gain/shift/noise.")
@click.option("--warp-up", type=click.FloatRange(0, 0.3), default=0.0, show_default=True,
              help="Mel-filterbank warp above 1 (bands read higher, so formants show lower, as from a longer "
                   "vocal tract): each copy's warp factor is drawn "
                   "from [0.88, 1 + W] instead of [0.88, 1].")
@click.option("--edge-cut", type=click.FloatRange(0, 0.2), default=0.0, show_default=True,
              help="Cut up to this many seconds off each augmented copy's word at its start and, "
                   "independently, its end (each side with probability 0.5): onsets and codas a "
                   "recording lost, as in FSDD's tightly trimmed takes.")
@click.option("--synth", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="Folder of synthetic clips (python -m audiomnist_edge.train.synth) added to training; "
                   "repeatable.")
@click.option("--synth-copies", type=click.IntRange(0, 100), default=1, show_default=True)
@click.option("--backwards-unknown", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of the real training clips also trained played backwards, as the unknown class "
                   "(real voices saying no digit).")
@click.option("--features", "features", default="default", show_default=True,
              help="'default', 'seed' (whole clip, no trim/CMVN) or a features.json file.")
@click.option("--patience", type=click.IntRange(0), default=0,
              help="Early stopping patience in epochs (0 = off).")
@click.option("--width", type=click.IntRange(1, 1024), default=None,
              help="Convolution width of cnn/dscnn/tcresnet (cnn default 32: 16-32-64 filters; tcresnet 16: 24-32-48).")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True, callback=finite)
@click.option("--spec-masks", type=click.IntRange(0, 10), default=0, show_default=True,
              help="SpecAugment-style masks, drawn afresh each epoch: N spans of up to 10 frames and N of "
                   "up to 3 coefficients zeroed per training example; 0 = off.")
@click.option("--mixup", type=click.FloatRange(0, 10), default=0.0, show_default=True, callback=finite,
              help="Mixup: every training digit blended with another digit of its batch, labels alike, with "
                   "weights from Beta(A, A) (A = 0.2-0.4 is usual; the unknown class is never mixed); 0 = off.")
@click.option("--teacher", "teachers", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="Distil from this run: its model trained on the same split (fold K's model of "
                   "`evaluate RUN --folds` for --split speaker --fold K, else RUN/model-int8.tflite) "
                   "softens the training targets; repeatable (their mean).")
@click.option("--teacher-weight", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of the teachers' probabilities in each training target.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Feature cache (default ~/.cache/audiomnist-edge or $AUDIOMNIST_EDGE_CACHE).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Any other recipe field (arch, model_kwargs), augment.FIELD or features.FIELD, VALUE "
                   "JSON, applied after the options above, as `evaluate --folds --set` does; repeatable.")
@click.option("-v", "--verbose", is_flag=True, help="Print Keras progress per epoch.")
def train(data, arch, split_name, fold, out, force, epochs, batch_size, learning_rate, seed, copies,
          capture, warp_up, edge_cut, synth, synth_copies, backwards_unknown, features, patience, width,
          label_smoothing, spec_masks, mixup, teachers, teacher_weight, cache_dir, settings, verbose):
    """Train a model on a corpus and write a run folder.

    \b
    The run folder holds model.keras, features.json, normalisation.json,
    run.json, metrics.json, confusion.png, curves.png and report.md.
    \b
    Examples:
      audiomnist-edge train --data ../shared/datasets/fsdd --split official
      audiomnist-edge train --data ../shared/datasets/fsdd --data ../shared/datasets/hd-en \\
          --split speaker --fold 2
      audiomnist-edge train --data DIR --arch ann --features seed --augment 0
      audiomnist-edge train --data DIR --set arch=ensemble \\
          --set 'model_kwargs={"members": [{"width": 32}, {"width": 32, "pooling": "attention"}]}'
    """
    if features not in ("default", "seed") and not os.path.isfile(features):
        raise click.BadParameter(f"{features!r} is not 'default', 'seed' or a features.json file",
                                 param_hint="--features")
    _setup()
    from .augment import AugmentParams
    from .fit import Recipe, resolve_params, run

    recipe = Recipe(arch=arch, epochs=epochs,
                    batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                    patience=patience, augment=AugmentParams(copies=copies, capture=capture, warp_up=warp_up,
                                                            edge_cut=edge_cut),
                    label_smoothing=label_smoothing, spec_masks=spec_masks, mixup=mixup,
                    model_kwargs={"width": width} if width and arch != "ann" else {},
                    synth=[os.path.abspath(p) for p in synth] or None, synth_copies=synth_copies,
                    backwards_unknown=backwards_unknown,
                    teachers=[os.path.abspath(t) for t in teachers] or None, teacher_weight=teacher_weight)
    try:
        params = resolve_params(features)
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {features}: {exc}", param_hint="--features") from None
    if settings:
        from .variant import apply_settings

        recipe, params = apply_settings(recipe, params, settings)
    run(data, out, split_name, fold, recipe, params, cache_dir,
        progress=True, verbose=2 if verbose else 0, echo=_echo, force=force)


@click.command()
@click.argument("run_or_model", type=click.Path(exists=True))
@click.option("--data", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="Corpus folder(s) (default: the run's, from run.json); repeatable.")
@click.option("--split", "split_name", type=SPLIT, default=None,
              help="Split to score (default: the run's own split).")
@click.option("--fold", type=int, default=None)
@click.option("--folds", "all_folds", is_flag=True,
              help="Train and score every speaker-independent fold with the run's recipe "
                   "(accuracy per fold and per held-out speaker).")
@click.option("--only", type=str, default=None, help="With --folds: comma-separated fold numbers.")
@click.option("--rescore", is_flag=True,
              help="With --folds: score the saved int8 fold models (RUN/folds/) again without training, "
                   "e.g. after a change in how decisions are made; Keras figures are kept.")
@click.option("--warps", callback=parse_warps, metavar="W[,W...]",
              help="With --rescore: the mel warps the fold models decide over (written into their files) "
                   "[default: 1 and the middle of the recipe's training warp range].")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="With --folds and --out: train the folds of a variation of the run's recipe, KEY a recipe "
                   "field (label_smoothing), augment.FIELD or features.FIELD, VALUE JSON; repeatable.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="With --folds: the variation's run folder (its run.json, folds.json and fold models); "
                   "RUN stays as it is.")
@click.option("--conditions", "capture_conditions", is_flag=True,
              help="Score the run's int8 model (device runtime) on its held-out clips under "
                   "every capture condition (noise, rooms, hum, telephone, ...); with --folds, each "
                   "fold model (with --rescore: the saved ones, without training).")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="With --conditions: the .tflite to score (default RUN/model-int8.tflite).")
@click.option("--decision", type=click.Choice(["clip", "predict"]), default="clip", show_default=True,
              help="With --conditions on one run: Model.classify on the whole clip (what the model "
                   "hears) or what `predict` reports (segmentation, shift averaging, confidence "
                   "gate). --folds --conditions scores both.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON on stdout.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None)
def evaluate(run_or_model, data, split_name, fold, all_folds, only, rescore, warps, settings, out,
             capture_conditions, model_path, decision, as_json, cache_dir):
    """Re-score a run (or a .keras model) on a split of a corpus.

    \b
    With --folds, retrain with the run's recipe on every speaker-independent
    fold (leave-one-speaker-out on FSDD alone, 4 corpus-balanced groups of 4 on
    FSDD + HD-EN, 5 groups on AudioMNIST), convert each fold's model to int8
    and score it through the device runtime; report each fold, the mean, the
    standard deviation and the worst fold. The result is written to
    RUN/folds.json after every fold, the fold models to RUN/folds/.
    \b
    With --conditions, score the int8 model through the device runtime on the
    run's held-out clips under each capture condition (seeded, deterministic);
    with --folds too, every fold's int8 model on its held-out speakers.
    \b
    Examples:
      audiomnist-edge evaluate runs/cnn-official-X --json
      audiomnist-edge evaluate runs/cnn-official-X --data ../shared/datasets/fsdd --folds
      audiomnist-edge evaluate runs/cnn-official-X --conditions
      audiomnist-edge evaluate runs/cnn-official-X --folds --conditions
      audiomnist-edge evaluate runs/cnn-official-X --folds --rescore
      audiomnist-edge evaluate runs/cnn-official-X --folds --rescore --conditions
      audiomnist-edge evaluate runs/cnn-official-X --folds --only 0 \\
          --set label_smoothing=0.1 --set augment.edge_cut=0.15 --out runs/variation
    """
    if (settings or out) and (not all_folds or rescore):
        raise click.UsageError("--set and --out go with --folds (and not --rescore)")
    if settings and not out:
        raise click.UsageError("--set needs --out: a variation gets a run folder of its own")
    _check_run(run_or_model, needs_model=not (all_folds or capture_conditions))
    _setup()
    from .evaluate import evaluate as score
    from .evaluate import folds

    if capture_conditions and not all_folds:
        from .conditions import format_table, run_table

        result = run_table(run_or_model, model_path, data or None, progress=not as_json,
                           decision=decision)
        click.echo(json.dumps(result, indent=1) if as_json else format_table(result))
        return

    if all_folds:
        path = Path(run_or_model)
        run_dir = path if path.is_dir() else path.parent
        if not (run_dir / "run.json").is_file():
            raise click.UsageError("--folds needs a run folder (with run.json) for its recipe")
        try:
            only_folds = [int(k) for k in only.split(",")] if only else None
        except ValueError:
            raise click.BadParameter(f"{only!r} is not a comma-separated list of fold numbers",
                                     param_hint="--only") from None
        if out:
            from .variant import write_variant

            run_dir = write_variant(run_dir, out, settings)
        info = json.loads((run_dir / "run.json").read_text())
        if rescore:
            if not (run_dir / "folds.json").is_file():
                raise EdgeError(f"{run_dir}: no folds.json to rescore; run `evaluate {run_dir} --folds` first")
            from .evaluate import rescore_folds

            result = rescore_folds(run_dir, cache_dir, progress=not as_json, warps=warps,
                                   conditions=capture_conditions)
        else:
            result = folds(run_dir, data or info["data"], only=only_folds, cache_dir=cache_dir,
                           progress=not as_json, echo=_echo, conditions=capture_conditions)
        if as_json:
            click.echo(json.dumps(result, indent=1))
        else:
            click.echo(f"split: speaker ({result['protocol']}), {len(result['folds'])} folds, "
                       "int8 through the device runtime (Keras float32 in brackets)")
            for row in result["folds"]:
                click.echo(f"  fold {row['fold']} {','.join(row['test_speakers']):>28}: "
                           f"accuracy {row['accuracy']:.4f} ({row['keras_accuracy']:.4f}) "
                           f"on {row['n_test']} clips")
                if "speakers" in row:  # folds.json of earlier versions have no per-speaker figures
                    click.echo("    " + ", ".join(f"{name} {acc:.3f}" for name, acc in row["speakers"].items()))
            click.echo(f"mean {result['mean']:.4f} ({result['keras']['mean']:.4f})  "
                       f"std {result['std']:.4f}  worst {result['worst']:.4f} "
                       f"({result['keras']['worst']:.4f}, fold {result['worst_fold']})")
            if "conditions" in result:
                from .conditions import format_fold_table

                click.echo(format_fold_table(result))
        return
    result = score(run_or_model, data, split_name, fold, cache_dir, progress=not as_json)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    where = f"split: {result['split']}" + (f" fold {result['fold']}" if result["fold"] is not None else "")
    click.echo(f"{where}: accuracy {result['accuracy']:.4f} on {result['n_test']} clips, "
               f"macro F1 {result['macro']['f1']:.4f}")
    for digit, row in result["per_class"].items():
        click.echo(f"  {digit}: precision {row['precision']:.3f} recall {row['recall']:.3f} "
                   f"F1 {row['f1']:.3f}")


@click.command()
@click.option("--data", required=True, multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Corpus folder; repeat to compare several corpora on one page.")
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None)
def eda(data, out, cache_dir):
    """Exploratory plots of one or several corpora and a page comparing them.

    \b
    Per-speaker levels (peak and active speech dBFS) and durations, the
    model's normalised MFCC input per digit and corpus, class balance.
    \b
    Examples:
      audiomnist-edge eda --data ../shared/datasets/fsdd --out eda/
      audiomnist-edge eda --data ../shared/datasets/fsdd --data ../shared/datasets/hd-en --out eda/
    """
    require_extra("train", "matplotlib")
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgeError(f"cannot create {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK):
        raise EdgeError(f"cannot write into {out}: permission denied")
    from .eda import run_eda

    page = run_eda(list(data), out, cache_dir=cache_dir, echo=_echo)
    click.echo(str(page))
